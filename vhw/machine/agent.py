"""Host side of the guest agent (docs/agent-protocol.md).

``AgentCodec`` is the sans-I/O part: it formats requests and parses answer
lines.  ``AgentClient`` is the thin asyncio adapter over a stream pair (the
virtio-serial port's socketpair): one request at a time, answers matched by id.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
from dataclasses import dataclass

from ..errors import AgentTimeout, GuestError

#: Extra host-side wait beyond a command's own timeout before giving up on
#: the agent (the agent kills the command at its timeout and answers).
GRACE = 10.0
#: StreamReader limit: answers carry whole outputs as one base64 line.
STREAM_LIMIT = 256 * 1024 * 1024


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode() if data else "-"


def unb64(field: str) -> bytes:
    if field == "-":
        return b""
    try:
        return base64.b64decode(field, validate=True)
    except binascii.Error as e:
        raise GuestError(f"agent sent invalid base64: {e}") from None


@dataclass(frozen=True)
class RunResult:
    """How a guest command ended and what it wrote."""

    how: str  # "exit", "signal" or "timeout"
    code: int
    stdout: bytes
    stderr: bytes

    @property
    def returncode(self) -> int:
        """subprocess-style: the exit status, or -N when killed by signal N."""
        return self.code if self.how == "exit" else -self.code

    @property
    def timed_out(self) -> bool:
        return self.how == "timeout"

    def check(self, what: str = "command") -> RunResult:
        """Raise GuestError unless the command exited 0."""
        if self.how != "exit" or self.code != 0:
            raise GuestError(
                f"guest {what} ended with {self.how} {self.code}\n"
                f"stdout: {self.stdout.decode(errors='replace')[-2000:]}\n"
                f"stderr: {self.stderr.decode(errors='replace')[-2000:]}"
            )
        return self

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


class AgentError(GuestError):
    """The agent answered ERR: an errno from the guest and its message."""

    def __init__(self, errno: int, message: str):
        self.errno = errno
        self.message = message
        super().__init__(f"guest agent error {errno}: {message}")


class AgentCodec:
    """Formats requests, parses answers; knows nothing of streams."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    @staticmethod
    def ping(rid: int) -> bytes:
        return f"PING {rid}\n".encode()

    @staticmethod
    def run(rid: int, command: str, timeout: float | None, stdin: bytes) -> bytes:
        ms = 0 if not timeout else max(1, int(timeout * 1000))
        return f"RUN {rid} {ms} {b64(command.encode())} {b64(stdin)}\n".encode()

    @staticmethod
    def put(rid: int, path: str, data: bytes, mode: int) -> bytes:
        return f"PUT {rid} {mode:o} {b64(path.encode())} {b64(data)}\n".encode()

    @staticmethod
    def get(rid: int, path: str) -> bytes:
        return f"GET {rid} {b64(path.encode())}\n".encode()

    @staticmethod
    def parse(line: bytes) -> tuple[str, int, list[str]]:
        """Split an answer line into (verb, id, fields)."""
        parts = line.decode("ascii", errors="replace").rstrip("\r\n").split(" ")
        verb = parts[0]
        if verb == "READY":
            return verb, 0, parts[1:]
        if len(parts) < 2 or not parts[1].isdigit():
            raise GuestError(f"agent sent a malformed line: {line[:200]!r}")
        return verb, int(parts[1]), parts[2:]

    @staticmethod
    def result(verb: str, fields: list[str]):
        """Turn a parsed answer into a value, or raise its error."""
        if verb == "ERR":
            errno = int(fields[0]) if fields and fields[0].lstrip("-").isdigit() else 0
            msg = unb64(fields[1]).decode(errors="replace") if len(fields) > 1 else ""
            raise AgentError(errno, msg)
        if verb == "RES" and len(fields) == 4:
            return RunResult(fields[0], int(fields[1]), unb64(fields[2]), unb64(fields[3]))
        if verb == "DATA" and len(fields) == 1:
            return unb64(fields[0])
        if verb in ("OK", "PONG") and not fields:
            return None
        raise GuestError(f"agent sent an unexpected answer: {verb} {' '.join(fields)[:200]}")


class AgentClient:
    """Talks to the guest agent over an asyncio stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._codec = AgentCodec()
        self._lock = asyncio.Lock()
        self.uptime_at_ready: float | None = None

    async def wait_ready(self, timeout: float) -> float:
        """Wait for the agent's READY line; returns the guest's uptime then."""
        while True:
            line = await asyncio.wait_for(self._readline(), timeout)
            verb, _, fields = self._codec.parse(line) if line.startswith(b"READY") else ("", 0, [])
            if verb == "READY":
                self.uptime_at_ready = float(fields[0]) if fields else 0.0
                return self.uptime_at_ready

    async def _readline(self) -> bytes:
        line = await self._reader.readline()
        if not line:
            raise GuestError("the guest agent's channel closed (did the guest stop?)")
        return line

    async def _call(self, rid: int, request: bytes, timeout: float | None):
        async with self._lock:
            self._writer.write(request)
            await self._writer.drain()
            try:
                while True:
                    line = await asyncio.wait_for(self._readline(), timeout)
                    verb, got, fields = self._codec.parse(line)
                    if verb == "READY":  # a new agent: the request died with the old one
                        self.uptime_at_ready = float(fields[0]) if fields else 0.0
                        raise GuestError("the guest restarted (its agent said READY again) before answering")
                    if got == rid:
                        return self._codec.result(verb, fields)
            except TimeoutError:
                raise AgentTimeout(f"the guest agent did not answer within {timeout:.0f} s") from None

    async def ping(self, timeout: float = 10.0) -> None:
        rid = self._codec.next_id()
        await self._call(rid, self._codec.ping(rid), timeout)

    async def run(self, command: str, *, timeout: float | None = 60.0, stdin: bytes = b"") -> RunResult:
        """Run ``/bin/sh -c command`` in the guest.

        The guest kills the command's process group after ``timeout`` seconds
        (the result then has ``how == "timeout"``); None means no limit.
        """
        rid = self._codec.next_id()
        wait = None if timeout is None else timeout + GRACE
        return await self._call(rid, self._codec.run(rid, command, timeout, stdin), wait)

    async def put(self, path: str, data: bytes, mode: int = 0o644, timeout: float = 60.0) -> None:
        rid = self._codec.next_id()
        await self._call(rid, self._codec.put(rid, path, data, mode), timeout)

    async def get(self, path: str, timeout: float = 60.0) -> bytes:
        rid = self._codec.next_id()
        return await self._call(rid, self._codec.get(rid, path), timeout)
