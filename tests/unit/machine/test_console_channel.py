"""The console channel (vhw.machine.serial.ConsoleChannel) against a real
interactive shell on a real tty: a shell on a pty, with busybox's applets as
the guest's tools.  What a guest's shell and tty do to the bytes (echo,
ONLCR, SIGINT dropping the rest of a line) is what the channel must undo.

The shell is the host's /bin/sh (dash, an ash like the BSDs' sh), so the
PATH decides which tools the "guest" has; busybox sh (the Linux guest's)
runs its applets whatever PATH says, and is tried where that does not
matter."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import shutil
import subprocess
import termios

import pytest

from vhw.errors import GuestError
from vhw.machine.serial import PUT_CHUNK, ConsoleChannel, ConsoleDriver, ConsoleLogin

BUSYBOX = shutil.which("busybox")
pytestmark = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox (Debian busybox-static; `make deps`)")
LOGIN = ConsoleLogin(user=None, shell_prompt=r"# ?$", timeout=10)


def applets(where, leave_out=()) -> str:
    """A directory of busybox applet links: the guest's PATH."""
    where.mkdir()
    names = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        if name not in leave_out:
            os.symlink(BUSYBOX, where / name)
    return str(where)


class PtyShell:
    """``busybox sh -i`` on a pty's slave; the channel talks to the master, as to a serial console."""

    def __init__(self, path: str, tmp, sh: tuple[str, ...]):
        self.path, self.tmp, self.sh = path, tmp, sh

    async def __aenter__(self) -> ConsoleChannel:
        master, slave = pty.openpty()
        self.master = master

        def controlling_tty():
            # A guest's getty starts its shell with default signal dispositions; a
            # test run started in the background (make ... &) ignores SIGINT and
            # SIGQUIT, and exec would pass that on to the shell and its commands.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGQUIT, signal.SIG_DFL)
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = await asyncio.create_subprocess_exec(
            *self.sh, "-i", stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling_tty,
            env={"PATH": self.path, "PS1": "# ", "HOME": str(self.tmp), "TMPDIR": "/tmp"})
        os.close(slave)
        self.driver = ConsoleDriver(lambda data: os.write(master, data), name="pty")
        loop = asyncio.get_running_loop()

        def readable():
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if chunk:
                self.driver.feed(chunk)
            else:
                loop.remove_reader(master)
                self.driver.eof()

        loop.add_reader(master, readable)
        self.channel = ConsoleChannel(self.driver, LOGIN)
        await self.channel.wait_ready()
        return self.channel

    async def __aexit__(self, *exc):
        asyncio.get_running_loop().remove_reader(self.master)
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        os.close(self.master)


SHELLS = {"dash": ("/bin/sh",), "busybox-ash": (BUSYBOX or "busybox", "sh")}


def shell(tmp_path, sh="dash", **kw):
    return PtyShell(applets(tmp_path / "bin", **kw), tmp_path, SHELLS[sh])


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_run_keeps_stdout_stderr_and_the_exit_status_apart(tmp_path, sh):
    """The agent's RUN semantics (docs/agent-protocol.md) over a tty: streams kept apart, \\r\\n undone."""
    async def main():
        async with shell(tmp_path, sh) as ch:
            r = await ch.run("printf 'one\\ntwo\\n'; echo oops >&2; exit 3")
            assert (r.how, r.returncode, r.stdout, r.stderr) == ("exit", 3, b"one\ntwo\n", b"oops\n")
            # Output that looks like a marker is output, not a frame.
            r = await ch.run("echo VHW1X; echo 'VHW''2X' 0; echo done")
            assert r.stdout == b"VHW1X\nVHW2X 0\ndone\n" and r.returncode == 0
            r = await ch.run("if true; then\n  echo multi-line\nfi")
            assert r.stdout == b"multi-line\n"

    asyncio.run(main())


def test_stdin_is_dev_null_unless_given(tmp_path):
    """A command never reads the console (it would eat what vhw types next)."""
    async def main():
        async with shell(tmp_path) as ch:
            r = await ch.run("cat; echo after", timeout=10)
            assert r.stdout == b"after\n"
            r = await ch.run("tr a-z A-Z", stdin=b"hello\nworld\n")
            assert r.stdout == b"HELLO\nWORLD\n"

    asyncio.run(main())


@pytest.mark.parametrize("sh", sorted(SHELLS))
def test_a_command_past_its_timeout_is_interrupted_and_the_shell_is_back(tmp_path, sh):
    """how == "timeout" as the agent reports it; the next command runs normally."""
    async def main():
        async with shell(tmp_path, sh) as ch:
            r = await ch.run("echo started; sleep 30", timeout=1)
            assert r.how == "timeout" and r.timed_out and r.stdout.strip() == b"started"
            r = await ch.run("echo still here")
            assert (r.returncode, r.stdout) == (0, b"still here\n")

    asyncio.run(main())


@pytest.mark.parametrize("leave_out", [(), ("uudecode", "uuencode")], ids=["uudecode", "base64"])
def test_files_cross_the_console_byte_exact(tmp_path, leave_out):
    """put/get: every byte value, a file larger than one put command, and the mode;
    POSIX uudecode/uuencode -m, or base64 where a guest has only that."""
    data = bytes(range(256)) * (PUT_CHUNK // 256 + 300)  # two put commands

    async def main():
        async with shell(tmp_path, leave_out=leave_out) as ch:
            target = str(tmp_path / "blob.bin")
            await ch.put(target, data, 0o750)
            assert (await ch.get(target)) == data
            assert (await ch.run(f"stat -c %a {target}")).stdout == b"750\n"
            await ch.put(target, b"", 0o644)  # truncated
            assert (await ch.get(target)) == b""
            assert ch.file_tool == ("base64" if leave_out else "uudecode")

    asyncio.run(main())
    assert (tmp_path / "blob.bin").stat().st_size == 0


def test_a_guest_without_base64_tools_is_told_plainly(tmp_path):
    async def main():
        async with shell(tmp_path, leave_out=("uudecode", "uuencode", "base64")) as ch:
            with pytest.raises(GuestError, match="neither uudecode/uuencode nor base64"):
                await ch.put(str(tmp_path / "x"), b"data")

    asyncio.run(main())


def test_reading_a_missing_file_is_an_error_naming_it(tmp_path):
    async def main():
        async with shell(tmp_path) as ch:
            with pytest.raises(GuestError, match="reading /nonexistent/file failed"):
                await ch.get("/nonexistent/file")

    asyncio.run(main())


def test_a_console_that_closes_mid_command_is_an_error_not_a_hang(tmp_path):
    async def main():
        async with shell(tmp_path) as ch:
            ch.driver.eof()  # QEMU went away
            with pytest.raises(GuestError, match="the console closed"):
                await asyncio.wait_for(ch.run("sleep 5"), 10)

    asyncio.run(main())


def test_nothing_runs_before_the_login(tmp_path):
    async def main():
        driver = ConsoleDriver(lambda data: None, name="fresh")
        with pytest.raises(GuestError, match="not logged in yet"):
            await ConsoleChannel(driver, LOGIN).run("true")

    asyncio.run(main())
