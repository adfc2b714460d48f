"""The serial console driver against a stand-in for a BSD console: a login
prompt, a password prompt, a shell that echoes what is typed (as a tty does)
and runs it with the real /bin/sh."""

import asyncio
import re
import socket
import subprocess

import pytest

from vhw.errors import GuestError
from vhw.machine.serial import ConsoleDriver


async def fake_console(sock, password="secret", banner=b"\r\nFreeBSD/amd64 (vhw) (ttyu0)\r\n\r\nlogin: "):
    reader, writer = await asyncio.open_connection(sock=sock)

    async def line(echo=True):
        data = await reader.readuntil(b"\r")
        if echo:
            writer.write(data + b"\n")
        return data[:-1].decode()

    writer.write(banner)
    while True:
        user = await line()
        writer.write(b"Password:")
        if await line(echo=False) == password and user == "root":
            break
        writer.write(b"\r\nLogin incorrect\r\nlogin: ")
    writer.write(b"\r\nroot@vhw:~ # \x1b[6n")
    try:
        while True:
            cmd = await line()
            out = subprocess.run(["sh", "-c", cmd], capture_output=True).stdout
            writer.write(out.replace(b"\n", b"\r\n") + b"root@vhw:~ # \x1b[6n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def session(transcript=None, **kw):
    """A ConsoleDriver wired to a fake console (``kw`` go to fake_console), and the console's task."""
    host, guest = socket.socketpair()
    server = asyncio.ensure_future(fake_console(guest, **kw))
    reader, writer = await asyncio.open_connection(sock=host)
    return ConsoleDriver.over(reader, writer, name="fake", transcript=transcript), server


def test_login_then_a_shell_and_a_transcript_of_both_ways(tmp_path):
    """Login answers the prompts; the transcript has what came in and, marked, what was typed
    (the framed run/put/get over a real shell: test_console_channel.py)."""
    async def main():
        con, server = await session(transcript=tmp_path / "console.log")
        await con.login("root", "secret", timeout=5)
        await con.sendline("printf 'one\\ntwo\\n'")
        await con.expect([r"two\r\n"], timeout=5)
        server.cancel()
        await asyncio.sleep(0.05)
        return (tmp_path / "console.log").read_bytes()

    transcript = asyncio.run(main())
    assert b"login: " in transcript and b"<<< sent: root\\r >>>" in transcript
    assert b"one\r\ntwo" in transcript


def test_a_refused_login_is_an_error_naming_the_user():
    async def main():
        con, server = await session()
        with pytest.raises(GuestError, match="login as root was refused"):
            await con.login("root", "wrong", timeout=5)
        server.cancel()

    asyncio.run(main())


def test_a_password_prompt_without_a_password_is_an_error():
    async def main():
        con, server = await session()
        with pytest.raises(GuestError, match="root needs a password"):
            await con.login("root", None, timeout=5)
        server.cancel()

    asyncio.run(main())


def test_a_timeout_names_the_pattern_and_quotes_the_last_output():
    async def main():
        con, server = await session(banner=b"Booting...\r\nstill booting\r\n")
        with pytest.raises(GuestError) as e:
            await con.expect([r"login: ?$"], timeout=0.5)
        server.cancel()
        return str(e.value)

    text = asyncio.run(main())
    assert re.search(r"fake: no 'login: \?\$' within 0.5 s; last output:\n.*still booting", text, re.S)


def test_a_closed_console_is_an_error_not_a_hang():
    async def main():
        host, guest = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=host)
        con = ConsoleDriver.over(reader, writer, name="fake")
        guest.sendall(b"panic: going down\r\n")
        guest.close()
        with pytest.raises(GuestError, match="(?s)the console closed while waiting for 'login: '.*panic: going down"):
            await con.expect(["login: "], timeout=5)

    asyncio.run(main())
