"""The System Event Log (IPMI 2.0 chapter 31): the BMC's non-volatile event log.

Every entry is a 16-byte record (section 32).  The SEL stamps the record ID
(bytes 0-1) of every record it adds, and the timestamp (bytes 3-6) of system
event records (type 02h) and timestamped OEM records (C0h-DFh) from its own
clock; non-timestamped OEM records (E0h-FFh) are kept as given.

Entries, the overflow flag, the last add and erase timestamps, the clock
adjustment made by Set SEL Time and the UTC offset live in ``bmc.store``
(namespace "sel"), each change one transaction, so a restarted BMC on the same
state file shows the same log.  Reservations are volatile, as on a real BMC.

When the log is full, new events are dropped and the overflow flag is set
(section 31.2: "events have been dropped due to lack of space in the SEL");
Add SEL Entry then answers C4h "out of space".  Clear SEL is the only way to
make room besides Delete SEL Entry; there is no circular mode.

The SEL clock (section 31.10) is ``base + adjust + (now - origin)``: ``now``
is the monotonic time the runner passes in; ``base`` comes from the
description; ``adjust`` is what Set SEL Time changed, persisted.  With
clock = "host" (default), base is the host's UTC time at monotonic 0, read
once when the part is created, and origin is 0: a set time survives BMC and
host restarts.  With a fixed start or "pre-init", the clock counts from the
BMC's first ``poll``: a restarted BMC starts again at the described time plus
the adjustment.
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from ...errors import DescriptionError
from ...tables import Table
from ..core.bmc import CC, IpmiError

NAMESPACE = "sel"
RECORD_SIZE = 16
#: Get SEL Info byte 1: SEL version 1.5/2.0 (section 31.2).
SEL_VERSION = 0x51
#: Record IDs with a meaning in requests (sections 31.5, 31.8).
FIRST_ENTRY = 0x0000
LAST_ENTRY = 0xFFFF
#: Highest record ID the SEL hands out (0000h and FFFFh are reserved).
MAX_RECORD_ID = 0xFFFE
#: Timestamp "unspecified": no entry ever added, never erased (section 37).
TIMESTAMP_UNSPECIFIED = 0xFFFFFFFF
#: Get SEL Time UTC Offset when never set (section 31.11a): 07FFh.
UTC_OFFSET_UNSPECIFIED = 0x07FF
UTC_OFFSET_LIMIT = 1440
#: Timestamps up to 20000000h count seconds since BMC initialisation (section 37).
PRE_INIT_LIMIT = 0x20000000
#: Clear SEL erasure progress (section 31.9): the erase here is instant.
ERASE_IN_PROGRESS = 0x0
ERASE_COMPLETED = 0x1

SYSTEM_EVENT_RECORD = 0x02


def is_timestamped(record_type: int) -> bool:
    """Record types whose bytes 3-6 are a timestamp the SEL fills in (section 32)."""
    return record_type == SYSTEM_EVENT_RECORD or 0xC0 <= record_type <= 0xDF


@dataclass(frozen=True)
class SelConfig:
    """The ``[bmc.sel]`` table."""

    #: How many 16-byte entries fit before events are dropped.
    entries: int = 512
    #: Where the SEL clock starts: "host" (the host's UTC clock), "pre-init"
    #: (0, counting seconds since BMC start, section 37), or a fixed time:
    #: seconds since 1970 or a TOML date-time.
    clock: str | int = "host"
    #: Initial Get SEL Time UTC Offset in minutes; None = unspecified (07FFh).
    utc_offset: int | None = None

    @classmethod
    def from_dict(cls, d: Any, key: str) -> SelConfig:
        r = Table(d, key)
        entries = r.integer("entries", cls.entries, 1, MAX_RECORD_ID)
        clock = _clock(r.raw("clock", cls.clock), r.key("clock"))
        utc_offset = None
        if r.has("utc_offset"):
            utc_offset = r.integer("utc_offset", 0, -UTC_OFFSET_LIMIT, UTC_OFFSET_LIMIT)
        r.finish()
        return cls(entries=entries, clock=clock, utc_offset=utc_offset)


def _clock(v: Any, where: str) -> str | int:
    if v in ("host", "pre-init"):
        return v
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.UTC)
        v = int(v.timestamp())
    elif isinstance(v, datetime.date):
        v = int(datetime.datetime(v.year, v.month, v.day, tzinfo=datetime.UTC).timestamp())
    if isinstance(v, bool) or not isinstance(v, int):
        raise DescriptionError(where, '"host", "pre-init", seconds since 1970 or a date-time like 2024-01-01T00:00:00Z')
    if not 0 <= v < TIMESTAMP_UNSPECIFIED:
        raise DescriptionError(where, f"must be 0..0xFFFFFFFE seconds since 1970, not {v}")
    return v


class Sel:
    """The log itself: records, reservations and the clock.

    Methods raise ``IpmiError`` with the completion code a command answers.
    ``clock_base`` is the SEL time at the origin before any Set SEL Time;
    ``clock`` gives the BMC's latest ``now`` (for adds without one).
    """

    def __init__(self, store: Any, config: SelConfig, clock_base: float, *,
                 clock: Callable[[], float], relative: bool) -> None:
        self.store = store
        self.capacity = config.entries
        self._clock = clock
        self._clock_base = clock_base
        #: The monotonic time the SEL clock counts from: 0 for a clock tied to
        #: the host's, the first ``now`` seen for one that starts with the BMC.
        self._origin: float | None = None if relative else 0.0
        self._reservation = 0  # 0 = none held
        self._last_reservation = 0
        self._erase_reservation = 0  # the one that started the last erase
        self._partial: tuple[int, bytearray] | None = None  # Partial Add in progress
        state = store.items(NAMESPACE)
        self._adjust = float(state.get("time_adjust", 0.0))
        described_offset = UTC_OFFSET_UNSPECIFIED if config.utc_offset is None else config.utc_offset & 0xFFFF
        self._utc_offset = int(state.get("utc_offset", described_offset))
        self.overflow = bool(state.get("overflow", False))
        self.last_add = int(state.get("last_add", TIMESTAMP_UNSPECIFIED))
        self.last_erase = int(state.get("last_erase", TIMESTAMP_UNSPECIFIED))
        self._next_id = int(state.get("next_id", 1))
        self._records: dict[int, bytes] = dict(store.records(NAMESPACE))

    # -- time ------------------------------------------------------------
    def poll(self, now: float) -> None:
        self._elapsed(now)

    def _elapsed(self, now: float | None) -> float:
        now = self._clock() if now is None else now
        if self._origin is None:
            self._origin = now
        return now - self._origin

    def time(self, now: float | None = None) -> int:
        """SEL time in seconds (section 31.10), as a 32-bit timestamp."""
        t = int(self._clock_base + self._adjust + self._elapsed(now))
        return min(max(t, 0), TIMESTAMP_UNSPECIFIED - 1)

    def set_time(self, seconds: int, now: float | None = None) -> None:
        """Set SEL Time: from now on the clock counts from ``seconds``."""
        self._adjust = seconds - self._clock_base - self._elapsed(now)
        self.store.put(NAMESPACE, "time_adjust", self._adjust)

    @property
    def utc_offset(self) -> int:
        """Minutes, signed; UTC_OFFSET_UNSPECIFIED if never set."""
        v = self._utc_offset
        return v if v == UTC_OFFSET_UNSPECIFIED else (v - 0x10000 if v & 0x8000 else v)

    def set_utc_offset(self, minutes: int) -> None:
        if minutes != UTC_OFFSET_UNSPECIFIED and not -UTC_OFFSET_LIMIT <= minutes <= UTC_OFFSET_LIMIT:
            raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"UTC offset {minutes} minutes")
        self._utc_offset = minutes & 0xFFFF
        self.store.put(NAMESPACE, "utc_offset", self._utc_offset)

    # -- entries -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    @property
    def free_entries(self) -> int:
        return max(0, self.capacity - len(self._records))

    def record_ids(self) -> list[int]:
        return sorted(self._records)

    def add(self, record: bytes, now: float | None = None) -> int | None:
        """Log a 16-byte record; returns its record ID, or None if the SEL is
        full (the event is dropped and the overflow flag set)."""
        record = bytes(record)
        if len(record) != RECORD_SIZE:
            raise ValueError(f"a SEL record is {RECORD_SIZE} bytes, not {len(record)}")
        if not self.free_entries:
            if not self.overflow:
                self.overflow = True
                self.store.put(NAMESPACE, "overflow", True)
            return None
        return self._store_record(self._take_id(), record, now)

    def _take_id(self) -> int:
        rid = self._next_id
        while rid in self._records:  # only after wrapping past MAX_RECORD_ID
            rid = rid % MAX_RECORD_ID + 1
        return rid

    def _store_record(self, rid: int, record: bytes, now: float | None) -> int:
        stamp = self.time(now)
        data = bytearray(record)
        data[0:2] = struct.pack("<H", rid)
        if is_timestamped(data[2]):
            data[3:7] = struct.pack("<I", stamp)
        with self.store.transaction():
            self.store.append(NAMESPACE, bytes(data), record_id=rid)
            self.store.put(NAMESPACE, "last_add", stamp)
            self.store.put(NAMESPACE, "next_id", rid % MAX_RECORD_ID + 1)
        self._records[rid] = bytes(data)
        self.last_add = stamp
        self._next_id = rid % MAX_RECORD_ID + 1
        return rid

    def resolve(self, record_id: int) -> int:
        """The record a request means: 0000h first, FFFFh last; CBh if absent."""
        if not self._records:
            raise IpmiError(CC.NOT_PRESENT, "SEL is empty")
        if record_id == FIRST_ENTRY:
            return min(self._records)
        if record_id == LAST_ENTRY:
            return max(self._records)
        if record_id not in self._records:
            raise IpmiError(CC.NOT_PRESENT, f"no SEL record {record_id:#06x}")
        return record_id

    def get(self, record_id: int) -> tuple[int, bytes]:
        """(next record ID or FFFFh, the record) for a Get SEL Entry."""
        rid = self.resolve(record_id)
        later = [i for i in self._records if i > rid]
        return (min(later) if later else LAST_ENTRY), self._records[rid]

    def delete(self, record_id: int) -> int:
        rid = self.resolve(record_id)
        self.store.delete_record(NAMESPACE, rid)
        del self._records[rid]
        self._cancel_reservation()
        return rid

    def clear(self, now: float | None = None) -> None:
        """Erase every entry and the overflow flag; the clock and UTC offset stay."""
        stamp = self.time(now)
        with self.store.transaction():
            for rid in list(self._records):
                self.store.delete_record(NAMESPACE, rid)
            self.store.put(NAMESPACE, "overflow", False)
            self.store.put(NAMESPACE, "last_erase", stamp)
            self.store.put(NAMESPACE, "next_id", 1)
        self._records.clear()
        self.overflow = False
        self.last_erase = stamp
        self._next_id = 1
        self._erase_reservation = self._reservation
        self._cancel_reservation()

    # -- Partial Add SEL Entry (section 31.7) ------------------------------
    def partial_add(self, record_id: int, offset: int, last: bool, data: bytes, now: float | None = None) -> int:
        """One part of a record sent in pieces; the record is added with the
        last part.  The first part (record ID 0000h, offset 0) gets the ID the
        following parts must name."""
        if record_id == FIRST_ENTRY:
            if offset != 0:
                raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, "a new partial record starts at offset 0")
            if not self.free_entries:
                raise IpmiError(CC.OUT_OF_SPACE, "SEL full")
            rid = self._take_id()
            self._next_id = rid % MAX_RECORD_ID + 1  # keep the ID from plain adds meanwhile
            self._partial = (rid, bytearray())
        elif self._partial is None or self._partial[0] != record_id:
            raise IpmiError(CC.NOT_PRESENT, f"no partial add in progress for record {record_id:#06x}")
        rid, buf = self._partial
        if offset != len(buf):
            raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"offset {offset}, expected {len(buf)}")
        if len(buf) + len(data) > RECORD_SIZE:
            self._partial = None
            raise IpmiError(0x80, "record longer than 16 bytes")
        buf += data
        if not last:
            return rid
        self._partial = None
        if len(buf) != RECORD_SIZE:
            raise IpmiError(0x80, f"record is {len(buf)} bytes, not 16")
        if not self.free_entries:
            raise IpmiError(CC.OUT_OF_SPACE, "SEL full")
        return self._store_record(rid, bytes(buf), now)

    # -- reservations (section 31.4) ----------------------------------------
    def reserve(self) -> int:
        """A new reservation ID (never 0000h); the previous one is cancelled."""
        self._last_reservation = self._last_reservation % 0xFFFF + 1
        self._reservation = self._last_reservation
        return self._reservation

    def check_reservation(self, reservation_id: int, *, erase_status: bool = False) -> None:
        """C5h unless ``reservation_id`` is the one held.  Asking for the
        erasure status may also name the reservation that started the erase:
        clearing cancels it, and FreeIPMI polls the status with it."""
        if reservation_id and reservation_id == self._reservation:
            return
        if erase_status and reservation_id and reservation_id == self._erase_reservation:
            return
        raise IpmiError(CC.RESERVATION_CANCELLED, f"reservation {reservation_id:#06x} is not valid")

    def _cancel_reservation(self) -> None:
        self._reservation = 0

    def cold_reset(self) -> None:
        """A BMC reset cancels reservations (section 31.4); the log stays."""
        self._cancel_reservation()
        self._erase_reservation = 0
        self._partial = None


def create_part(bmc: Any, config: Any) -> Sel:
    """The part for ``bmc.parts["sel"]``; ``config`` is a BmcConfig or None."""
    sel_config = getattr(config, "sel", None) or SelConfig()
    if sel_config.clock == "host":
        base, relative = bmc.host_clock_base, False
    elif sel_config.clock == "pre-init":
        base, relative = 0.0, True
    else:
        base, relative = float(sel_config.clock), True
    if bmc.store is None:
        from ..core.nonvolatile import MemoryStore

        bmc.store = MemoryStore()
    return Sel(bmc.store, sel_config, base, clock=lambda: bmc.now, relative=relative)
