"""The serial channel (IPMI 2.0 chapter 14) judged by a real client: ipmitool.

Each test runs its own BMC in-process on a fresh pty and drives it with
``ipmitool -I serial-terminal`` (section 14.7, Terminal Mode) or
``ipmitool -I serial-basic`` (section 14.4, Basic Mode), device syntax
``-D <pty>:115200``.  Nothing is shared between tests, so they run in
parallel.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import time

import pytest

from vhw.ipmi.core.actions import PowerOp
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.io.serial_server import SerialServer
from vhw.ipmi.io.service import BmcService

pytestmark = pytest.mark.skipif(shutil.which("ipmitool") is None, reason="needs ipmitool")

MODES = ("terminal", "basic")
USERS = [{"id": 2, "name": "admin", "password": "secret", "privilege": "administrator"}]


class RecordingPowerPort:
    def __init__(self) -> None:
        self.ops: list[PowerOp] = []

    async def power(self, op: PowerOp, cause: str) -> None:
        self.ops.append(op)


def run(test):
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 120))

    return wrapper


class Bench:
    """One BMC with a serial channel on a new pty, and ipmitool pointed at it."""

    def __init__(self, mode: str, **serial) -> None:
        self.mode = mode
        self.service = BmcService(BmcConfig.from_dict({"users": USERS, "serial": {"mode": mode, **serial}}))
        self.power = RecordingPowerPort()
        self.service.runner.power_port = self.power
        self.server = SerialServer(self.service.runner, self.service.config.serial)
        self.path = ""

    async def __aenter__(self) -> Bench:
        self.path = await self.server.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.server.close()
        await self.service.close()

    async def ipmitool(self, *args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "ipmitool", "-I", f"serial-{self.mode}", "-D", f"{self.path}:115200", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
        return proc.returncode, out.decode(errors="replace")


def field(text: str, name: str) -> str:
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    raise AssertionError(f"{name!r} not in:\n{text}")


@pytest.mark.parametrize("mode", MODES)
@run
async def test_mc_info(mode):
    """14.7.4 / 14.4.3: Get Device ID over the serial channel, as ``ipmitool mc info`` shows it."""
    async with Bench(mode) as bench:
        rc, out = await bench.ipmitool("mc", "info")
        assert rc == 0, out
        assert field(out, "Device ID") == "32"
        assert field(out, "IPMI Version") == "2.0"
        assert field(out, "Firmware Revision") == "0.01"


@pytest.mark.parametrize("mode", MODES)
@run
async def test_chassis_status(mode):
    async with Bench(mode) as bench:
        rc, out = await bench.ipmitool("chassis", "status")
        assert rc == 0, out
        assert field(out, "System Power") == "off"


@pytest.mark.parametrize("mode", MODES)
@run
async def test_error_completion_code_passes_through(mode):
    """An unknown command's C1h reaches the client as the completion code, not as a lost answer."""
    async with Bench(mode) as bench:
        rc, out = await bench.ipmitool("raw", "0x06", "0xff")
        assert rc != 0
        assert "rsp=0xc1" in out, out


@pytest.mark.parametrize("mode", MODES)
@run
async def test_default_privilege_is_user(mode):
    """Without a login the channel runs at USER (documented in vhw.ipmi.parts.serial): power control is D4h."""
    async with Bench(mode) as bench:
        rc, out = await bench.ipmitool("chassis", "power", "off")
        assert rc != 0
        assert "Insufficient privilege" in out, out
        assert bench.power.ops == []


@pytest.mark.parametrize("mode", MODES)
@run
async def test_administrator_channel_powers_on(mode):
    """``privilege = "administrator"``: Chassis Control goes through the runner to the power port."""
    async with Bench(mode, privilege="administrator") as bench:
        rc, out = await bench.ipmitool("chassis", "power", "on")
        assert rc == 0, out
        for _ in range(100):
            if bench.power.ops:
                break
            await asyncio.sleep(0.02)
        assert bench.power.ops == [PowerOp.ON]


async def _terminal_say(path: str, text: bytes, until: bytes, timeout: float = 5.0) -> bytes:
    """Write a line to the pty as a terminal user would and read until ``until``."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        os.write(fd, text)
        got = b""
        deadline = time.monotonic() + timeout
        while until not in got and time.monotonic() < deadline:
            try:
                got += os.read(fd, 1024)
            except BlockingIOError:
                await asyncio.sleep(0.01)
        return got
    finally:
        os.close(fd)


@run
async def test_terminal_sys_pwd_then_ipmitool_is_administrator():
    """14.7.8: ``[SYS PWD -U name password]`` activates the session at the user's privilege.

    The session belongs to the channel, so an ipmitool started afterwards on
    the same line runs as ADMINISTRATOR; ``[SYS PWD -X]`` ends it.
    """
    async with Bench("terminal") as bench:
        got = await _terminal_say(bench.path, b"[SYS PWD -U admin secret]\r", b"[OK]")
        assert b"[OK]" in got
        rc, out = await bench.ipmitool("chassis", "power", "off")
        assert rc == 0, out
        got = await _terminal_say(bench.path, b"[SYS PWD -X]\r", b"[OK]")
        assert b"[OK]" in got
        rc, out = await bench.ipmitool("chassis", "power", "off")
        assert "Insufficient privilege" in out


@run
async def test_terminal_by_hand():
    """14.7: a person at a terminal types ``[18 00 01]`` and reads ``[1C 00 01 00 ...]``; echo included."""
    async with Bench("terminal") as bench:
        got = await _terminal_say(bench.path, b"[18 00 01]\r", b"]\r\n[1C")
        got += await _terminal_say(bench.path, b"", b"\r\n", 1.0) if not got.endswith(b"\r\n") else b""
        assert got.startswith(b"[18 00 01]\r\n[1C 00 01 00 20 01 00 01 02 ")


class NullModem:
    """Two ptys joined back to back: the BMC opens one slave as a serial device
    (through pyserial), ipmitool the other -- a null-modem cable in the test."""

    def __init__(self) -> None:
        import tty

        self.m1, self.s1 = os.openpty()
        self.m2, self.s2 = os.openpty()
        for fd in (self.s1, self.s2):
            tty.setraw(fd)
        for fd in (self.m1, self.m2):
            os.set_blocking(fd, False)
        self.bmc_device, self.client_device = os.ttyname(self.s1), os.ttyname(self.s2)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.m1, self._copy, self.m1, self.m2)
        loop.add_reader(self.m2, self._copy, self.m2, self.m1)

    @staticmethod
    def _copy(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
            os.write(dst, data)
        except OSError:
            pass

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in (self.m1, self.m2):
            loop.remove_reader(fd)
        for fd in (self.m1, self.s1, self.m2, self.s2):
            os.close(fd)


@pytest.mark.parametrize("mode", MODES)
@run
async def test_named_serial_device_through_pyserial(mode):
    """[bmc.serial] device = a tty path: opened through pyserial, judged by ipmitool on the far end."""
    cable = NullModem()
    cable.start()
    try:
        bench = Bench(mode, device=cable.bmc_device)
        async with bench:
            assert bench.server._serial is not None  # pyserial opened it
            bench.path = cable.client_device
            rc, out = await bench.ipmitool("mc", "info")
            assert rc == 0, out
            assert field(out, "Device ID") == "32"
    finally:
        cable.close()


@pytest.mark.parametrize("mode", MODES)
@run
async def test_vhw_bmc_serial_command_line(mode):
    """`vhw bmc --serial MODE:pty` prints the pty path; ipmitool talks to it; SIGINT stops it."""
    import re
    import signal
    import sys

    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "vhw.cli", "bmc", "--serial", f"{mode}:pty",
                                                stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        m = re.search(rb"on (/dev/pts/\d+)", line)
        assert m, line
        client = await asyncio.create_subprocess_exec(
            "ipmitool", "-I", f"serial-{mode}", "-D", f"{m.group(1).decode()}:115200", "mc", "info",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(client.communicate(), 90)
        assert client.returncode == 0, out
        assert field(out.decode(), "Device ID") == "32"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rest = await asyncio.wait_for(proc.stderr.read(), 30)
        await proc.wait()
    assert proc.returncode == 0
    assert b"BMC stopped" in rest
