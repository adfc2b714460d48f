"""The guest's serial console: logged to a file, its tail kept for errors.

The console is a log, not a control channel (commands go through the agent),
so everything QEMU writes to it lands in ``console.log`` as it arrives; tests
attach that file when they fail.  ``wait_for`` lets callers wait for a line
such as the firmware's prompt.
"""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

TAIL_BYTES = 64 * 1024


class ConsoleLog:
    def __init__(self, path: Path, trace=None):
        self.path = Path(path)
        #: vhw.trace.Trace that also records the console bytes (channel "console").
        self.trace = trace
        self._file = open(self.path, "ab")
        self._tail = bytearray()
        self._changed = asyncio.Event() if _has_loop() else None
        self.total = 0
        #: Also hand every chunk to this (e.g. to copy the console to stdout).
        self.mirror = None

    async def follow(self, sock: socket.socket) -> None:
        """Copy the console socket into the log until it closes."""
        if self._changed is None:
            self._changed = asyncio.Event()
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            while chunk := await reader.read(65536):
                self.feed(chunk)
        finally:
            writer.close()

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
        if self.mirror is not None:
            self.mirror(chunk)

    def tail_text(self, lines: int = 30) -> str:
        text = self._tail.decode(errors="replace").replace("\r", "")
        return "\n".join("  " + line for line in text.splitlines()[-lines:])

    async def wait_for(self, pattern: str | bytes, timeout: float) -> re.Match:
        """Wait until the console (its recent tail) matches a regex."""
        pat = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        if self._changed is None:
            self._changed = asyncio.Event()

        async def match():
            while True:
                m = pat.search(self._tail)
                if m:
                    return m
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(match(), timeout)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
