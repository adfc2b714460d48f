"""A guest's serial console as a way in: prompts, login, commands, files.

For guests without the vhw agent (FreeBSD, illumos and NetBSD images, or
the Linux guest booted with ``access = "console"``) the serial console is
the only channel.  Two layers:

* :class:`ConsoleDriver` is expect/send: it is fed what the console prints
  (by the machine's one console reader, which also writes console.log),
  matches regular expressions against it with a timeout on every wait, and
  types.  Everything typed is noted in the console log, so the log is the
  transcript a person debugging a failed boot wants to read.
* :class:`ConsoleChannel` is the same ``run``/``put``/``get`` the agent
  offers (vhw.machine.agent), over a logged-in POSIX shell: a command's
  stdout, stderr and exit status come back framed by unique markers; files
  go both ways as base64 through ``uudecode``/``uuencode -m`` (POSIX), or
  ``base64`` where a guest lacks those.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AgentTimeout, GuestError
from .agent import RunResult

#: How much of the received text an error message quotes.
TAIL = 500
#: Terminal control sequences (busybox ash asks for the cursor position with
#: ESC[6n after its prompt); they are dropped before matching.
CSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
#: A control sequence cut by the end of a chunk (completed by the next one).
_CSI_START = re.compile(rb"\x1b(\[[0-9;?]*)?$")
#: Bytes before the end of what was already searched that a new search looks at again
#: (longer than any prompt or marker a pattern has to see whole).
RESCAN = 4096
#: Seconds a command interrupted at its timeout gets to give the shell back.
INTERRUPT_GRACE = 10.0
#: Base64 text per line typed into a here-document (well under any tty's line limit).
B64_LINE = 76
#: Bytes of base64 text per ``put`` command (larger files take several, appended).
PUT_CHUNK = 48 * 1024
_B64_ALPHABET = re.compile(rb"^[A-Za-z0-9+/=]+$")


class ConsoleDriver:
    """Expect/send over a console: fed what it prints, writing with ``write``."""

    def __init__(self, write: Callable[[bytes], object], *, name: str = "console",
                 note: Callable[[bytes], None] | None = None) -> None:
        self._write = write
        self.name = name
        #: Called with a line describing what was typed (the console log's transcript).
        self._note = note
        self.buffer = b""  # received and not yet consumed by an expect
        self.received = bytearray()  # the recent past, for error messages
        self.closed = False
        self._partial = b""  # the start of a control sequence the next chunk completes
        self._searched = 0  # how much of buffer the last, failed search covered
        self._arrived = asyncio.Event()
        self._markers = itertools.count(1)

    @classmethod
    def over(cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, name: str = "console",
             transcript: str | Path | None = None) -> ConsoleDriver:
        """A driver reading a stream pair itself (tests, and consoles no machine logs)."""
        log = open(transcript, "ab") if transcript else None

        def note(line: bytes) -> None:
            if log is not None:
                log.write(line)
                log.flush()

        driver = cls(writer.write, name=name, note=note)

        async def pump() -> None:
            try:
                while chunk := await reader.read(4096):
                    note(chunk)
                    driver.feed(chunk)
            except ConnectionError:
                pass
            finally:
                driver.eof()
                if log is not None:
                    log.close()

        driver._pump = asyncio.get_running_loop().create_task(pump())  # type: ignore[attr-defined]
        return driver

    # -- input -------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        """What the console printed (called by its one reader)."""
        self.received += chunk
        del self.received[:-64 * 1024]
        data = self._partial + chunk
        cut = _CSI_START.search(data, max(0, len(data) - 32))
        self._partial = data[cut.start():] if cut else b""
        self.buffer += CSI.sub(b"", data[:cut.start()] if cut else data)
        self._arrived.set()

    def eof(self) -> None:
        """The console closed (QEMU exited)."""
        self.closed = True
        self._arrived.set()

    def discard(self) -> None:
        """Forget what was received and not matched (e.g. before a new boot's login)."""
        self.buffer = b""
        self._searched = 0

    # -- primitives --------------------------------------------------------------
    async def send(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        if self._note is not None:
            self._note(b"\n<<< sent: " + data.replace(b"\r", b"\\r").replace(b"\n", b"\\n")[:300] + b" >>>\n")
        self._write(data)
        await asyncio.sleep(0)

    async def sendline(self, text: str = "") -> None:
        await self.send(text + "\r")

    async def expect(self, patterns, timeout: float) -> tuple[int, re.Match]:
        """Wait until one of ``patterns`` (regex strings/bytes) matches what came in.

        Returns (index, match); the buffer keeps only what followed the match.
        """
        if isinstance(patterns, (str, bytes, re.Pattern)):
            patterns = [patterns]
        index, match, _ = await self._search(patterns, timeout)
        return index, match

    async def read_until(self, pattern, timeout: float) -> tuple[bytes, re.Match]:
        """What came in before ``pattern`` (a regex with no leading wildcard), and the match.

        Large outputs (a file crossing the console) arrive in small chunks;
        each is searched once, not the whole output again and again."""
        _, match, before = await self._search([pattern], timeout)
        return before, match

    async def _search(self, patterns, timeout: float) -> tuple[int, re.Match, bytes]:
        compiled = [p if isinstance(p, re.Pattern) else re.compile(p.encode() if isinstance(p, str) else p)
                    for p in patterns]
        deadline = time.monotonic() + timeout
        self._searched = 0
        while True:
            start = max(0, self._searched - RESCAN)
            hits = [(m.start(), i, m) for i, rx in enumerate(compiled) if (m := rx.search(self.buffer, start))]
            if hits:
                _, index, match = min(hits, key=lambda h: (h[0], h[1]))
                before = self.buffer[:match.start()]
                self.buffer = self.buffer[match.end():]
                self._searched = 0
                return index, match, before
            self._searched = len(self.buffer)
            if self.closed:
                raise GuestError(f"{self.name}: the console closed while waiting for "
                                 f"{_names(patterns)}; last output:\n{self.tail()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError(self._timeout_message(patterns, timeout))
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                raise GuestError(self._timeout_message(patterns, timeout)) from None

    def tail(self) -> str:
        return CSI.sub(b"", bytes(self.received[-TAIL:])).decode(errors="replace")

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

    def markers(self) -> tuple[str, str]:
        """A fresh pair of (typed, printed) forms of a marker: the typed form
        is split by quotes, so the echoed command line never matches it."""
        n = next(self._markers)
        word = f"VHW{n}X"
        return f"'{word[:3]}''{word[3:]}'", word


@dataclass(frozen=True)
class ConsoleStep:
    """Wait for ``expect`` (a regex) on the console, then type ``send``."""

    expect: str
    send: str
    timeout: float = 600.0


@dataclass(frozen=True)
class ConsoleLogin:
    """How a guest's console gets from power-on to a shell prompt."""

    #: Boot loader steps before the login prompt (menus, loader prompts).
    steps: tuple[ConsoleStep, ...] = ()
    #: Log in as this user at a login prompt; None: the console is a shell already.
    user: str | None = "root"
    password: str | None = None
    shell_prompt: str = r"[#$%>] ?$"
    #: Seconds from power-on to the shell prompt.
    timeout: float = 1800.0


class ConsoleChannel:
    """``run``/``put``/``get`` over a logged-in POSIX shell on the serial console.

    The same calls as vhw.machine.agent.AgentClient, so a test or the
    machine does not care which it has.  Differences a test may notice:
    output comes through the tty, so ``\\r\\n`` becomes ``\\n``; a command's
    stdin is /dev/null unless ``stdin`` is given; a command that outlives its
    timeout is interrupted (SIGINT) and reported as ``how == "timeout"``.
    """

    kind = "console"

    def __init__(self, driver: ConsoleDriver, login: ConsoleLogin) -> None:
        self.driver = driver
        self.login = login
        self._lock = asyncio.Lock()
        self._ready = False
        self._files: tuple[str, str] | None = None  # (decode, encode) command forms, probed once

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def file_tool(self) -> str | None:
        """How files cross this console: "uudecode" or "base64" (None until the first put/get)."""
        return self._files[0] if self._files else None

    def lost(self) -> None:
        """The guest went away (reset, power off): the next use logs in again."""
        self._ready = False
        self._files = None

    async def wait_ready(self, timeout: float | None = None) -> float:
        """From power-on (or a reset) to a prepared shell: boot steps, login, tty set-up.

        Returns the seconds it took (the agent returns the guest's uptime)."""
        started = time.monotonic()
        limit = self.login.timeout if timeout is None else timeout
        async with self._lock:
            await self.reach_shell(started + limit)
            # No echo: what we type (here-documents of base64) is not printed back.
            await self._framed("stty -echo 2>/dev/null; true", 60, redirect="")
            self._ready = True
        return time.monotonic() - started

    async def reach_shell(self, deadline: float) -> None:
        """The boot loader steps and the login, up to the first shell prompt (by ``deadline``, monotonic)."""
        d = self.driver
        for step in self.login.steps:
            await d.expect([step.expect], min(step.timeout, _left(deadline)))
            await d.send(step.send)
        if self.login.user is not None:
            await d.login(self.login.user, self.login.password, shell_prompt=self.login.shell_prompt,
                          timeout=_left(deadline))
        else:
            await d.sendline("")
            await d.expect([re.compile(self.login.shell_prompt.encode(), re.M)], _left(deadline))

    async def run(self, command: str, *, timeout: float | None = 60.0, stdin: bytes = b"") -> RunResult:
        """Run ``command`` in a subshell of the guest's shell."""
        self._need_ready()
        async with self._lock:
            redirect = "</dev/null"
            if stdin:
                path = f"/tmp/.vhw-stdin.{next(self.driver._markers)}"
                await self._put_locked(path, stdin, 0o600)
                redirect = f"<{path}"
            return await self._framed(command, timeout, redirect=redirect)

    async def put(self, path: str, data: bytes, mode: int = 0o644, timeout: float = 600.0) -> None:
        """Write a file in the guest (created or truncated, then chmod ``mode``)."""
        self._need_ready()
        async with self._lock:
            await self._put_locked(path, data, mode, timeout)

    async def get(self, path: str, timeout: float = 600.0) -> bytes:
        """Read a whole file from the guest."""
        self._need_ready()
        async with self._lock:
            _, encode = await self._file_tools()
            r = await self._framed(encode.format(path=shlex.quote(path)), timeout)
            if r.returncode != 0:
                raise GuestError(f"{self.driver.name}: reading {path} failed: "
                                 f"{(r.stderr or r.stdout).decode(errors='replace').strip()[-300:]}")
            return _decode_base64_listing(r.stdout)

    async def ping(self, timeout: float = 10.0) -> None:
        r = await self.run("true", timeout=timeout)
        if r.returncode != 0:
            raise GuestError(f"{self.driver.name}: the shell does not answer")

    # -- the framing -------------------------------------------------------------
    async def _framed(self, command: str, timeout: float | None, *, redirect: str = "</dev/null") -> RunResult:
        """One command line: begin marker, ``command``'s stdout, end marker and status, its stderr, done.

        stderr goes to a file in the guest and is printed after the status,
        so the two streams stay apart on one console.
        """
        d = self.driver
        (b_typed, begin), (e_typed, end), (f_typed, done) = d.markers(), d.markers(), d.markers()
        err = f"/tmp/.vhw-stderr.{begin}"
        rest = f"cat {err} 2>/dev/null; rm -f {err}; echo {f_typed}"
        await d.sendline(f"echo {b_typed}; ( {command}\n) {redirect} 2>{err}; echo {e_typed} $?; {rest}")
        wait = 3600.0 if timeout is None else timeout
        how = "exit"
        status_line = re.compile(re.escape(end).encode() + rb" (\d+)\r?\n")
        try:
            await d.expect([re.escape(begin).encode() + rb"\r?\n"], max(wait, 30.0))
            out, match = await d.read_until(status_line, wait)
        except GuestError:
            if d.closed:
                raise
            # Interrupt the command (SIGINT to the foreground group).  An
            # interactive shell drops the rest of the line on SIGINT (ash, bash,
            # ksh), so the end of the frame is typed again at its new prompt.
            await d.send(b"\x03")
            await asyncio.sleep(0.2)
            await d.sendline(f"echo {e_typed} 130; {rest}")
            try:
                out, match = await d.read_until(status_line, INTERRUPT_GRACE)
            except GuestError:
                raise AgentTimeout(f"{d.name}: the command did not end within {wait:g} s and the shell did not "
                                   f"come back after an interrupt; last output:\n{d.tail()}") from None
            how = "timeout"
        if how == "timeout":  # what the interrupted command printed, not the prompt that followed
            out = re.sub(self.login.shell_prompt.encode() + rb"\s*$", b"", out.rstrip(b"\r\n"), flags=re.M)
        stdout = _tty_text(out)
        status = int(match.group(1))
        written, _ = await d.read_until(re.escape(done).encode() + rb"\r?\n", 60)
        stderr = _tty_text(written)
        if how == "timeout":
            return RunResult("timeout", 9, stdout, stderr)
        return RunResult("exit", status, stdout, stderr)

    # -- files ---------------------------------------------------------------------
    async def _file_tools(self) -> tuple[str, str]:
        """The guest's way to decode and encode base64: uudecode/uuencode -m (POSIX), else base64."""
        if self._files is None:
            r = await self._framed("command -v uudecode; command -v uuencode; command -v base64", 60)
            have = r.stdout.decode(errors="replace")
            if "uudecode" in have and "uuencode" in have:
                self._files = ("uudecode", "uuencode -m {path} /dev/stdout")
            elif "base64" in have:
                self._files = ("base64", "base64 {path}")
            else:
                raise GuestError(f"{self.driver.name}: the guest has neither uudecode/uuencode nor base64, "
                                 "so files cannot cross its console")
        return self._files

    async def _put_locked(self, path: str, data: bytes, mode: int, timeout: float = 600.0) -> None:
        decode, _ = await self._file_tools()
        text = base64.b64encode(data).decode()
        quoted = shlex.quote(path)
        chunks = [text[i:i + PUT_CHUNK] for i in range(0, len(text), PUT_CHUNK)] or [""]
        part = f"{path}.vhw-part"
        for index, chunk in enumerate(chunks):
            lines = "\n".join(chunk[i:i + B64_LINE] for i in range(0, len(chunk), B64_LINE))
            target = shlex.quote(part if len(chunks) > 1 else path)
            if decode == "uudecode":
                body = f"begin-base64 600 /dev/stdout\n{lines}\n====\n"
                decoder = "uudecode"
            else:
                body = f"{lines}\n"
                decoder = "base64 -d"
            append = ">>" if index else ">"
            command = f"{decoder} <<'VHW_EOF' {append} {target}\n{body}VHW_EOF"
            if len(chunks) > 1 and index == len(chunks) - 1:
                command += f"\nmv -f {shlex.quote(part)} {quoted}"
            r = await self._framed(command, timeout)
            if r.returncode != 0:
                raise GuestError(f"{self.driver.name}: writing {path} failed: "
                                 f"{(r.stderr or r.stdout).decode(errors='replace').strip()[-300:]}")
        r = await self._framed(f"chmod {mode:o} {quoted}", 60)
        if r.returncode != 0:
            raise GuestError(f"{self.driver.name}: chmod {mode:o} {path} failed: {r.stderr.decode(errors='replace')}")

    def _need_ready(self) -> None:
        if not self._ready:
            raise GuestError(f"{self.driver.name}: not logged in yet (or the guest restarted); "
                             "wait_ready() first")


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _tty_text(data: bytes) -> bytes:
    """Output as the program wrote it: the tty's ONLCR made every \\n a \\r\\n."""
    return data.replace(b"\r\n", b"\n")


def _decode_base64_listing(listing: bytes) -> bytes:
    """The bytes of a ``uuencode -m`` or ``base64`` listing; stray console lines are skipped."""
    lines = [line.strip() for line in listing.splitlines()]
    if any(line.startswith(b"begin-base64") for line in lines):
        start = next(i for i, line in enumerate(lines) if line.startswith(b"begin-base64"))
        body = []
        for line in lines[start + 1:]:
            if line == b"====":
                break
            body.append(line)
        lines = body
    payload = b"".join(line for line in lines if _B64_ALPHABET.match(line))
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError as e:
        raise GuestError(f"the guest's base64 listing does not decode: {e}") from None


def _names(patterns: Sequence) -> str:
    shown = [p.pattern if isinstance(p, re.Pattern) else p for p in patterns]
    return " or ".join(repr(p.decode(errors="replace") if isinstance(p, bytes) else p) for p in shown)
