"""The offline Linux guest boots under QEMU and the agent runs commands exactly."""

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from vhw.errors import GuestError, QemuError
from vhw.machine.description import default_description, parse_description

ALL_BYTES = bytes(range(256)) * 64

#: These tests are about the boot itself: never from a snapshot.
pytestmark = pytest.mark.cold_boot


def test_agent_runs_commands_with_exact_status_output_and_files(make_machine, linux_image):
    async def scenario():
        async with make_machine(default_description()) as m:
            r = await m.run("uname -r")
            assert r.returncode == 0
            assert r.stdout.decode().strip() == linux_image.manifest["kernel"]["release"]

            r = await m.run("echo out; echo err >&2; exit 3")
            assert (r.how, r.code, r.stdout, r.stderr) == ("exit", 3, b"out\n", b"err\n")

            r = await m.run("kill -TERM $$")
            assert (r.how, r.code, r.returncode) == ("signal", 15, -15)

            # Binary-safe both ways: every byte value through PUT, cat and GET.
            await m.agent.put("/tmp/all.bin", ALL_BYTES)
            r = await m.run("cat /tmp/all.bin")
            assert r.stdout == ALL_BYTES
            assert await m.agent.get("/tmp/all.bin") == ALL_BYTES
            r = await m.run("cat", stdin=ALL_BYTES)
            assert r.stdout == ALL_BYTES

            r = await m.run("sleep 30", timeout=1)
            assert r.timed_out
            assert (await m.run("echo still-alive")).stdout == b"still-alive\n"

            with pytest.raises(GuestError, match="error 2"):
                await m.agent.get("/no/such/file")

    asyncio.run(scenario())


@pytest.mark.parametrize("interface, driver", [("kcs", "ipmi_si"), ("bt", "ipmi_si"), ("ssif", "ipmi_ssif")])
def test_builtin_qemu_bmc_is_found_on_each_interface(make_machine, interface, driver):
    """guest-linux.md §12: the image's drivers find KCS, BT and SSIF (QEMU's ipmi-bmc-sim)."""
    desc = default_description(interfaces=(interface,), backend="qemu")

    async def scenario():
        async with make_machine(desc) as m:
            r = await m.run(f"cat /sys/class/ipmi/ipmi0/device/type 2>/dev/null; dmesg | grep {driver}")
            assert interface in r.stdout.decode().lower(), r.stdout
            r = await m.run("ipmitool -I open mc info", timeout=60)
            assert r.returncode == 0, r.stderr
            assert "IPMI Version" in r.stdout.decode()

    asyncio.run(scenario())


def test_a_guest_that_never_comes_up_is_a_clear_error(make_machine):
    desc = parse_description({"machine": {"append": "rdinit=/bin/false", "boot-timeout": 8}})

    async def scenario():
        with pytest.raises(GuestError) as info:
            async with make_machine(desc):
                pass
        assert "not ready within 8 s" in str(info.value)
        assert "console log" in str(info.value)

    asyncio.run(scenario())


def test_qemu_refusing_its_command_line_reports_its_stderr(make_machine):
    async def scenario():
        with pytest.raises(QemuError) as info:
            async with make_machine(default_description(), extra_args=["-device", "no-such-device"]):
                pass
        assert "no-such-device" in str(info.value)
        assert "QEMU said" in str(info.value)

    asyncio.run(scenario())


def test_missing_qemu_is_a_clear_error(make_machine, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))

    async def scenario():
        with pytest.raises(QemuError, match="qemu-system-x86_64 not found on PATH; install QEMU"):
            async with make_machine(default_description()):
                pass

    asyncio.run(scenario())


def test_cli_run_prints_guest_output_and_exits_with_its_status(linux_image):
    vhw = [sys.executable, "-m", "vhw.cli"]
    r = subprocess.run(vhw + ["run", "-q", "--", "uname", "-a"], capture_output=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("Linux vhw-guest " + linux_image.manifest["kernel"]["release"])
    r = subprocess.run(vhw + ["run", "-q", "--", "echo oops >&2; exit 7"], capture_output=True, timeout=180)
    assert r.returncode == 7 and r.stderr.endswith(b"oops\n")


def test_qemu_dies_with_its_parent(tmp_path, linux_image):
    """guest-linux.md §9: PR_SET_PDEATHSIG, no orphan QEMU after the parent dies."""
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        from vhw.machine.description import default_description
        from vhw.machine.launcher import Machine
        async def main():
            m = Machine(default_description(), workdir={str(tmp_path / 'm')!r})
            await m.start()
            print(m.qemu_pid, flush=True)
            os._exit(1)
        asyncio.run(main())
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=180)
    pid = int(r.stdout.split()[-1])
    for _ in range(50):
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            break
        asyncio.run(asyncio.sleep(0.1))
    else:
        os.kill(pid, 9)
        pytest.fail(f"QEMU {pid} outlived its parent")
