"""A machine's trace: every message on every transport, with timestamps.

Transports call :meth:`Trace.record` with the bytes exactly as they crossed
the wire (after any injected fault changed them), so a test can assert on
what the guest really saw.  Records go to memory (for assertions in the same
process) and, when paths are given, to a JSON-lines file.  Records are
written from the asyncio loop and from device threads (mpqemu), hence the
lock.

Channels: ``ipmi-kcs``/``ipmi-bt``/``ipmi-ssif`` (ipmi-bmc-extern frames),
``lan`` (RMCP/RMCP+ datagrams), ``mpqemu`` (x-pci-proxy-dev messages),
``console`` (serial console bytes), ``fault`` (an injected fault took
effect), ``prom`` (EEPROM option changes).  Directions: ``in`` (towards vhw),
``out`` (from vhw), ``event`` (neither: something happened).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

CHANNELS = ("ipmi-kcs", "ipmi-bt", "ipmi-ssif", "lan", "mpqemu", "console", "fault", "prom")
DIRECTIONS = ("in", "out", "event")


class Trace:
    """Records of one machine's traffic; thread-safe; cheap when disabled."""

    enabled = True

    def __init__(self, jsonl_path: str | Path | None = None, *, clock: Callable[[], float] = time.time,
                 keep: bool = True) -> None:
        self.path = Path(jsonl_path) if jsonl_path is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._keep = keep
        self._records: list[dict] = []
        self._file = open(self.path, "a", encoding="utf-8") if self.path is not None else None
        #: Extra sinks called with each record (e.g. the pcapng writer).
        self.sinks: list[Callable[[dict, bytes], None]] = []

    def record(self, channel: str, direction: str, data: bytes = b"", **fields: Any) -> None:
        """One message (or event) on ``channel``; ``fields`` are JSON-able details."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown trace channel {channel!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown trace direction {direction!r}")
        data = bytes(data)
        rec = {"t": self._clock(), "channel": channel, "dir": direction, "len": len(data), "hex": data.hex()}
        rec.update(fields)
        with self._lock:
            if self._keep:
                self._records.append(rec)
            if self._file is not None and not self._file.closed:
                self._file.write(json.dumps(rec, sort_keys=True) + "\n")
                self._file.flush()
            for sink in self.sinks:
                sink(rec, data)

    def records(self, channel: str | None = None, direction: str | None = None) -> list[dict]:
        """A copy of the records kept so far, optionally of one channel/direction."""
        with self._lock:
            return [r for r in self._records
                    if (channel is None or r["channel"] == channel) and (direction is None or r["dir"] == direction)]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            for sink in self.sinks:
                close = getattr(sink, "close", None)
                if close is not None:
                    close()
            self.sinks.clear()


class _NullTrace(Trace):
    """The trace of a machine nobody asked to trace: records nothing."""

    enabled = False

    def __init__(self) -> None:
        super().__init__(None, keep=False)

    def record(self, channel: str, direction: str, data: bytes = b"", **fields: Any) -> None:
        return None


NULL_TRACE: Trace = _NullTrace()
