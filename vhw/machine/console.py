"""The guest's serial console: one reader, a log file, its tail kept for errors.

Everything QEMU writes to the console lands in ``console.log`` as it
arrives; tests attach that file when they fail.  The console has exactly one
reader (:meth:`ConsoleLog.follow`), which also hands every chunk to the
consumers attached to it: the console channel of a guest driven over its
console (vhw.machine.serial), the SPARC ok-prompt driver, a copy to stdout.
``wait_for`` lets callers wait for a line such as the firmware's prompt.
"""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Protocol

TAIL_BYTES = 64 * 1024


class ConsoleConsumer(Protocol):
    """Something that reads the console with the log: fed every chunk, told when it closes."""

    def feed(self, chunk: bytes) -> None: ...

    def eof(self) -> None: ...


class ConsoleLog:
    def __init__(self, path: Path, trace=None):
        self.path = Path(path)
        #: vhw.trace.Trace that also records the console bytes (channel "console").
        self.trace = trace
        self._file = open(self.path, "ab")
        self._tail = bytearray()
        self._changed = asyncio.Event() if _has_loop() else None
        self.total = 0
        self._consumers: list[ConsoleConsumer] = []

    def attach(self, consumer: ConsoleConsumer) -> None:
        """Also hand every chunk from now on to ``consumer``."""
        self._consumers.append(consumer)

    def detach(self, consumer: ConsoleConsumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    async def follow(self, sock: socket.socket) -> asyncio.StreamWriter:
        """Start reading the console socket into the log; returns its writer (for typing)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        reader, writer = await asyncio.open_connection(sock=sock)
        self._reading = asyncio.get_running_loop().create_task(self._read(reader, writer))
        return writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                self.feed(chunk)
        except ConnectionError:
            pass
        finally:
            for consumer in list(self._consumers):
                consumer.eof()
            writer.close()

    async def stop(self) -> None:
        """Stop reading (the console socket is going away)."""
        task = getattr(self, "_reading", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def feed(self, chunk: bytes) -> None:
        if self._file.closed:
            return
        self._file.write(chunk)
        self._file.flush()
        if self.trace is not None:
            self.trace.record("console", "out", chunk)
        self.total += len(chunk)
        self._tail += chunk
        del self._tail[:-TAIL_BYTES]
        if self._changed is not None:
            self._changed.set()
        for consumer in list(self._consumers):
            consumer.feed(chunk)

    def note(self, text: bytes) -> None:
        """Write a line of vhw's own into the log (what was typed), not into the tail."""
        if not self._file.closed:
            self._file.write(text)
            self._file.flush()

    def tail_text(self, lines: int = 30) -> str:
        text = self._tail.decode(errors="replace").replace("\r", "")
        return "\n".join("  " + line for line in text.splitlines()[-lines:])

    async def wait_for(self, pattern: str | bytes, timeout: float) -> re.Match:
        """Wait until the console (its recent tail) matches a regex."""
        pat = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed

        async def match():
            while True:
                m = pat.search(self._tail)
                if m:
                    return m
                changed.clear()
                await changed.wait()

        return await asyncio.wait_for(match(), timeout)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class Mirror:
    """A console consumer copying the console to a binary stream (``vhw prom run`` shows it live)."""

    def __init__(self, out) -> None:
        self.out = out

    def feed(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.out.flush()

    def eof(self) -> None:
        pass


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
