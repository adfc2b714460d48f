"""The host side of the agent protocol (docs/agent-protocol.md), without a guest."""

import asyncio
import base64
import socket

import pytest

from vhw.errors import AgentTimeout, GuestError
from vhw.machine.agent import AgentClient, AgentCodec, AgentError, RunResult


def test_run_request_encodes_command_timeout_and_stdin():
    line = AgentCodec.run(7, "echo hi", 2.5, b"")
    assert line == f"RUN 7 2500 {base64.b64encode(b'echo hi').decode()} -\n".encode()
    assert AgentCodec.run(1, "x", None, b"\x00\xff").split()[2] == b"0"


def test_answers_parse_to_values_and_errors():
    verb, rid, fields = AgentCodec.parse(b"RES 3 exit 1 " + base64.b64encode(b"out") + b" -\n")
    assert (verb, rid) == ("RES", 3)
    assert AgentCodec.result(verb, fields) == RunResult("exit", 1, b"out", b"")
    with pytest.raises(AgentError) as info:
        AgentCodec.result("ERR", ["2", base64.b64encode(b"No such file").decode()])
    assert info.value.errno == 2 and "No such file" in str(info.value)
    with pytest.raises(GuestError):
        AgentCodec.parse(b"RES x\n")
    with pytest.raises(GuestError):
        AgentCodec.result("RES", ["exit", "0", "!!notbase64", "-"])


def test_run_result_returncode_is_subprocess_style():
    assert RunResult("exit", 3, b"", b"").returncode == 3
    assert RunResult("signal", 9, b"", b"").returncode == -9
    assert RunResult("timeout", 9, b"", b"").timed_out
    with pytest.raises(GuestError):
        RunResult("exit", 1, b"", b"boom").check()


def _fake_guest(answers):
    """A socketpair whose far end answers each request line with a canned line."""
    host, guest = socket.socketpair()

    async def serve():
        reader, writer = await asyncio.open_connection(sock=guest)
        writer.write(b"READY 1.50\n")
        for answer in answers:
            line = await reader.readline()
            if not line:
                return
            rid = line.split()[1]
            if answer is not None:
                writer.write(answer.replace(b"{id}", rid))
                await writer.drain()
        await reader.read()

    return host, serve


def test_client_matches_answers_by_id_and_skips_stale_lines():
    async def main():
        host, serve = _fake_guest([b"PONG 999\nPONG {id}\n", b"DATA {id} " + base64.b64encode(b"abc") + b"\n"])
        task = asyncio.create_task(serve())
        reader, writer = await asyncio.open_connection(sock=host)
        client = AgentClient(reader, writer)
        assert await client.wait_ready(5) == 1.5
        await client.ping()
        assert await client.get("/etc/x") == b"abc"
        writer.close()
        task.cancel()

    asyncio.run(main())


def test_client_times_out_when_the_agent_is_silent():
    async def main():
        host, serve = _fake_guest([None])
        task = asyncio.create_task(serve())
        reader, writer = await asyncio.open_connection(sock=host)
        client = AgentClient(reader, writer)
        await client.wait_ready(5)
        with pytest.raises(AgentTimeout):
            await client.ping(timeout=0.2)
        writer.close()
        task.cancel()

    asyncio.run(main())


def test_a_guest_restart_during_a_request_is_an_error_not_a_hang():
    async def main():
        host, serve = _fake_guest([b"READY 0.90\n"])
        task = asyncio.create_task(serve())
        reader, writer = await asyncio.open_connection(sock=host)
        client = AgentClient(reader, writer)
        await client.wait_ready(5)
        with pytest.raises(GuestError, match="restarted"):
            await client.run("reboot -f", timeout=30)
        assert client.uptime_at_ready == 0.9
        writer.close()
        task.cancel()

    asyncio.run(main())
