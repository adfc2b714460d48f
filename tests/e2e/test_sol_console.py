"""Serial over LAN to a real guest (issue 5 item 6; IPMI 2.0 chapters 15, 24, 26).

The machine has vhw's BMC with a LAN listener on 127.0.0.1 port 0 and
``[bmc.sol] port = "ttyS1"``: QEMU's second serial port is the BMC's SOL
port, and the guest's /init keeps a shell on /dev/ttyS1 (``vhw.sol=ttyS1``).
The host's ``ipmitool -I lanplus -C 3 sol activate`` runs under a
pseudo-terminal (it puts its terminal in raw mode) and must be a live console:

* Activate Payload (24.1) answers with the LAN server's own UDP port, so
  ipmitool stays on the session's port;
* what we type reaches the guest shell as SOL payload data (15.9), and the
  shell's output comes back in SOL packets the BMC sends on its own
  (character accumulation and retries, 15.10), encrypted and authenticated
  per cipher suite 3 (AES-CBC-128, HMAC-SHA1-96);
* a second activation while one is active is refused with 80h "payload
  already active on another session" (24.1);
* the escape ``~.`` deactivates (Deactivate Payload, 24.2): ipmitool exits and
  Get Payload Activation Status (24.4) shows instance 1 inactive.

The LAN server lives on the test's event loop: ipmitool runs as an asyncio
subprocess and the pty is read with ``loop.add_reader``.
"""

import asyncio
import os
import re
import termios
import tty

from vhw.machine.description import parse_description

ADMIN = ("admin", "password")


def sol_desc():
    return parse_description({
        "machine": {},
        "bmc": {"backend": "vhw", "interfaces": ["kcs"], "lan": "127.0.0.1:0", "sol": {"port": "ttyS1"},
                "users": [{"id": 2, "name": ADMIN[0], "password": ADMIN[1], "privilege": "administrator"}]},
    })


def ipmitool_argv(m, *args: str) -> list[str]:
    host, port = m.bmc_service.lan_address
    return ["ipmitool", "-I", "lanplus", "-H", host, "-p", str(port), "-U", ADMIN[0], "-P", ADMIN[1],
            "-C", "3", *args]


async def lanplus(m, *args: str, timeout: float = 90) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *ipmitool_argv(m, *args), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(errors="replace")


class PtyClient:
    """``ipmitool sol activate`` with a pseudo-terminal as its stdin/stdout/stderr."""

    def __init__(self):
        self.master = self.slave = -1
        self.proc = None
        self.buf = bytearray()
        self._more = asyncio.Event()

    async def start(self, argv: list[str]) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave, termios.TCSANOW)  # ipmitool sets raw mode itself; no echo either way
        os.set_blocking(self.master, False)
        asyncio.get_running_loop().add_reader(self.master, self._readable)
        self.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=self.slave, stdout=self.slave, stderr=self.slave, start_new_session=True)
        os.close(self.slave)
        self.slave = -1

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO: the slave side is closed (ipmitool exited)
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.buf += data
        self._more.set()

    def text(self) -> str:
        return self.buf.decode(errors="replace")

    async def expect(self, pattern: str, timeout: float) -> re.Match:
        async def wait():
            while True:
                found = re.search(pattern, self.text())
                if found:
                    return found
                if self.proc.returncode is not None and not self._more.is_set():
                    raise AssertionError(f"ipmitool exited ({self.proc.returncode}) before {pattern!r}:\n{self.text()}")
                self._more.clear()
                try:
                    await asyncio.wait_for(self._more.wait(), 1.0)
                except TimeoutError:
                    pass

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} within {timeout} s; the terminal shows:\n{self.text()}") from None

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.master >= 0:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            self.master = -1


def test_ipmitool_sol_activate_is_a_live_console_on_the_guest(make_machine):
    async def scenario():
        async with make_machine(sol_desc()) as m:
            assert m.bmc_service.lan_address is not None
            # Get Payload Activation Status (24.4): instance capacity 1, none active.
            rc, out = await lanplus(m, "raw", "0x06", "0x4a", "0x01")
            assert rc == 0 and out.split() == ["01", "00", "00"], out

            console = PtyClient()
            try:
                await console.start(ipmitool_argv(m, "sol", "activate"))
                await console.expect(r"SOL Session operational", 90)
                # Activate Payload again while active: refused, 80h (24.1).
                rc, out = await lanplus(m, "sol", "activate")
                assert rc != 0 and re.search(r"already active", out, re.I), out
                rc, out = await lanplus(m, "raw", "0x06", "0x4a", "0x01")
                assert rc == 0 and out.split() == ["01", "01", "00"], out
                # SOL parameter 8 (26.3) names the port the payload is on: the LAN server's.
                rc, out = await lanplus(m, "sol", "info")
                assert rc == 0 and re.search(rf"Payload Port\s*:\s*{m.bmc_service.lan_address[1]}\b", out), out

                # The guest's shell on ttyS1: its output comes back only over SOL.
                # Retype until it answers: the shell may still be starting.
                for attempt in range(6):
                    console.type("echo SOL-$((6*7))\r")
                    try:
                        await console.expect(r"SOL-42", 30)
                        break
                    except AssertionError:
                        if attempt == 5:
                            raise
                # The escape (ipmitool: "~." at the start of a line) deactivates the payload.
                console.type("\r")
                await asyncio.sleep(0.5)
                console.type("~.")
                await asyncio.wait_for(console.proc.wait(), 60)
                assert console.proc.returncode == 0, console.text()
            finally:
                await console.close()

            rc, out = await lanplus(m, "raw", "0x06", "0x4a", "0x01")
            assert rc == 0 and out.split() == ["01", "00", "00"], out
            assert m.bmc_service.bmc.parts["sol"].active is None

    asyncio.run(scenario())
