"""Drive a guest through its serial console: wait for prompts, log in, run commands.

For guests without the vhw agent (the downloaded FreeBSD, illumos and NetBSD
images), the serial console is the only way in.  The driver is deliberately
plain: regular expressions over the bytes received, a timeout on every wait,
and a transcript of everything that went each way, which is what a person
debugging a failed boot wants to read.

``run`` frames a command's output with a unique marker and the exit status,
so it works on any POSIX-ish shell (sh, ksh, bash, csh's ``$status`` aside)
without knowing its prompt.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from pathlib import Path

from ..errors import GuestError

#: How much of the received text an error message quotes.
TAIL = 500
#: Terminal control sequences (busybox ash asks for the cursor position with
#: ESC[6n after its prompt); they are dropped before matching.
CSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class ConsoleDriver:
    """Expect/send over an asyncio stream pair, with a transcript file."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 transcript: str | Path | None = None, name: str = "console") -> None:
        self.reader, self.writer, self.name = reader, writer, name
        self.buffer = b""           # received and not yet consumed by an expect
        self.received = bytearray()  # everything, for error messages
        self._transcript = open(transcript, "ab") if transcript else None
        self._markers = itertools.count(1)

    def close(self) -> None:
        if self._transcript is not None:
            self._transcript.close()
            self._transcript = None

    def _log(self, direction: str, data: bytes) -> None:
        if self._transcript is None:
            return
        if direction == "sent":
            self._transcript.write(b"\n<<< sent: " + data.replace(b"\r", b"\\r").replace(b"\n", b"\\n") + b" >>>\n")
        else:
            self._transcript.write(data)
        self._transcript.flush()

    # -- primitives --------------------------------------------------------------
    async def send(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self._log("sent", data)
        self.writer.write(data)
        await self.writer.drain()

    async def sendline(self, text: str = "") -> None:
        await self.send(text + "\r")

    async def expect(self, patterns, timeout: float) -> tuple[int, re.Match]:
        """Wait until one of ``patterns`` (regex strings/bytes) matches what came in.

        Returns (index, match); the buffer keeps only what followed the match.
        """
        if isinstance(patterns, (str, bytes)):
            patterns = [patterns]
        compiled = [re.compile(p.encode() if isinstance(p, str) else p) for p in patterns]
        deadline = time.monotonic() + timeout
        while True:
            hits = [(m.start(), i, m) for i, rx in enumerate(compiled) if (m := rx.search(self.buffer))]
            if hits:
                _, index, match = min(hits, key=lambda h: (h[0], h[1]))
                self.buffer = self.buffer[match.end():]
                return index, match
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError(self._timeout_message(patterns, timeout))
            try:
                chunk = await asyncio.wait_for(self.reader.read(4096), left)
            except TimeoutError:
                raise GuestError(self._timeout_message(patterns, timeout)) from None
            if not chunk:
                raise GuestError(f"{self.name}: the console closed while waiting for "
                                 f"{_names(patterns)}; last output:\n{self.tail()}")
            self._log("received", chunk)
            self.received += chunk
            self.buffer = CSI.sub(b"", self.buffer + chunk)

    def tail(self) -> str:
        return bytes(self.received[-TAIL:]).decode(errors="replace")

    def _timeout_message(self, patterns, timeout: float) -> str:
        return f"{self.name}: no {_names(patterns)} within {timeout:g} s; last output:\n{self.tail()}"

    # -- sessions ----------------------------------------------------------------
    async def login(self, user: str, password: str | None, *, login_prompt: str = r"login: ?$",
                    password_prompt: str = r"[Pp]assword: ?$", shell_prompt: str = r"[#$%>] ?$",
                    timeout: float = 300) -> None:
        """Answer the login prompt (and the password prompt if one comes) until a shell prompt."""
        await self.expect([re.compile(login_prompt.encode(), re.M)], timeout)
        await self.sendline(user)
        patterns = [re.compile(password_prompt.encode(), re.M), re.compile(shell_prompt.encode(), re.M),
                    re.compile(rb"[Ll]ogin incorrect")]
        index, _ = await self.expect(patterns, 60)
        if index == 0:
            if password is None:
                raise GuestError(f"{self.name}: {user} needs a password and the recipe has none")
            await self.sendline(password)
            index, _ = await self.expect(patterns[1:], 60)
            index += 1
        if index == 2:
            raise GuestError(f"{self.name}: login as {user} was refused; last output:\n{self.tail()}")

    async def run(self, command: str, timeout: float = 120) -> tuple[int, str]:
        """Run ``command`` in the logged-in shell; (exit status, output).

        The marker is printed by ``echo`` with its parts split by quotes, so the
        echoed command line never matches it, only the real output does.
        """
        n = next(self._markers)
        begin, end = f"VHW{n}B", f"VHW{n}E"
        b1, b2, e1, e2 = begin[:3], begin[3:], end[:3], end[3:]
        await self.sendline(f"echo '{b1}''{b2}'; {command}; echo '{e1}''{e2}' $?")
        await self.expect([re.escape(begin).encode() + rb"\r?\n"], timeout)
        _, match = await self.expect([rb"([\s\S]*?)" + re.escape(end).encode() + rb" (\d+)\r?\n"], timeout)
        output = match.group(1).decode(errors="replace").replace("\r\n", "\n")
        return int(match.group(2)), output


def _names(patterns) -> str:
    shown = [p.pattern if isinstance(p, re.Pattern) else p for p in patterns]
    return " or ".join(repr(p.decode(errors="replace") if isinstance(p, bytes) else p) for p in shown)
