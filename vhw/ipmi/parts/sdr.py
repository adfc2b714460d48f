"""The SDR repository (IPMI 2.0 chapters 33 and 43) and the device SDRs (section 35.2-35.4).

The repository is generated from the sensor description: a full sensor record
(01h, table 43-1) per threshold sensor, a compact (02h, table 43-2) or
event-only (03h, table 43-3) record per discrete sensor, a FRU device locator
(11h, table 43-7) for FRU 0 and a management controller device locator (12h,
table 43-8) for the BMC.  As long as nobody changes it, it is regenerated at
every start, so an edited description shows.  The first Add, Partial Add,
Delete or Clear makes it the machine's own: from then on it lives in
``bmc.store`` (namespace "sdr") and is used instead of the generated one.

Reservations (section 33.11): any change cancels the present reservation, so
a reader holding the old ID gets C5h and starts over.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from typing import Any
from collections.abc import Iterable, Mapping

from ..core.bmc import CC, IpmiError
from .sensors import THRESHOLDS, SensorConfig, Sensors

log = logging.getLogger(__name__)

SDR_VERSION = 0x51
TYPE_FULL = 0x01
TYPE_COMPACT = 0x02
TYPE_EVENT_ONLY = 0x03
TYPE_FRU_LOCATOR = 0x11
TYPE_MC_LOCATOR = 0x12
SENSOR_RECORD_TYPES = frozenset({TYPE_FULL, TYPE_COMPACT, TYPE_EVENT_ONLY})

HEADER_SIZE = 5
BMC_ADDRESS = 0x20
#: Entity IDs (table 43-13).
ENTITY_SYSTEM_BOARD = 0x07
ENTITY_MANAGEMENT_MODULE = 0x06
#: FRU device locator device type "FRU inventory device behind management controller" (table 43-12).
DEVICE_TYPE_FRU_INVENTORY = 0x10

#: Allocation: 16-byte units, 1024 of them (16 KiB), like a small BMC's flash area.
UNIT_SIZE = 16
UNIT_COUNT = 1024
#: Largest read answered in one Get SDR; a longer one gets CAh and the client
#: reads in pieces (ipmitool halves its read size on CAh).
MAX_READ = 64
#: Get SDR Repository Info "operation support" (table 33-3): non-modal updates
#: (01b in [6:5]), Delete, Partial Add, Reserve and Get Allocation Info.
SUPPORT_BITS = 0x20 | 0x08 | 0x04 | 0x02 | 0x01
#: Timestamps before anything was added or erased (section 33.9).
NO_TIMESTAMP = 0xFFFFFFFF

NAMESPACE = "sdr"
FIRST_RECORD = 0x0000
LAST_RECORD = 0xFFFF


# -- record builders ------------------------------------------------------------------


def id_string(text: str) -> bytes:
    """Type/length byte (8-bit Latin-1, [7:6] = 11b, section 43.15) and the bytes, at most 16."""
    raw = text.encode("latin-1", "replace")[:16]
    return bytes([0xC0 | len(raw)]) + raw


def with_header(record_id: int, record_type: int, body: bytes) -> bytes:
    """Record header (ID, SDR version 51h, type, length of what follows) plus body."""
    return struct.pack("<HBBB", record_id, SDR_VERSION, record_type, len(body)) + body


def _key_and_entity(c: SensorConfig) -> bytes:
    # owner ID (BMC, [0] = 0: IPMB address), owner LUN 0 on channel 0, number, entity, instance
    return bytes([BMC_ADDRESS, 0x00, c.number, c.entity_id, c.entity_instance & 0x7F])


def _initialization(c: SensorConfig) -> int:
    """Byte 11: init scanning/events (and thresholds/hysteresis) and the power-up enables."""
    bits = 0x40 | 0x20  # init scanning, init events
    if c.threshold and c.thresholds:
        bits |= 0x10 | 0x08  # init thresholds, init hysteresis
    if c.events_enabled:
        bits |= 0x02
    if c.scanning:
        bits |= 0x01
    return bits


def _capabilities(c: SensorConfig) -> int:
    """Byte 12: auto re-arm, hysteresis and threshold access, per-event enables (00b)."""
    bits = 0x40 if c.auto_rearm else 0
    if c.threshold and c.thresholds:
        bits |= 0x20  # hysteresis readable and settable
        bits |= 0x08 if c.settable else 0x04  # thresholds readable (and settable)
    return bits


def threshold_masks(c: SensorConfig) -> tuple[int, int, int]:
    """Bytes 15-20 of a full record: assertion, deassertion, readable|settable<<8 (table 43-1)."""
    names = c.threshold_map
    lower_readable = sum(1 << (12 + i) for i, t in enumerate(("lnc", "lc", "lnr")) if t in names)
    upper_readable = sum(1 << (12 + i) for i, t in enumerate(("unc", "uc", "unr")) if t in names)
    readable = sum(1 << i for i, t in enumerate(THRESHOLDS) if t in names)
    settable = sum(1 << i for i, t in enumerate(THRESHOLDS) if t in c.settable)
    return c.assertion_mask | lower_readable, c.deassertion_mask | upper_readable, readable | settable << 8


def full_record(c: SensorConfig, record_id: int = 0) -> bytes:
    """Full sensor record (type 01h, table 43-1) of a threshold sensor."""
    conv = c.conversion
    assertion, deassertion, readable_settable = threshold_masks(c)
    m10, b10 = conv.m & 0x3FF, conv.b & 0x3FF
    raw = {t: conv.to_raw(v) for t, v in c.thresholds}
    hpos, hneg = conv.counts(c.hysteresis[0]), conv.counts(c.hysteresis[1])
    body = _key_and_entity(c) + bytes([
        _initialization(c),
        _capabilities(c),
        c.sensor_type,
        c.reading_type,
    ]) + struct.pack("<HHH", assertion, deassertion, readable_settable) + bytes([
        0x01 if c.percentage else 0x00,  # units 1: unsigned, no rate, no modifier
        c.unit,  # units 2: base unit
        0x00,  # units 3: modifier unit
        0x00,  # linear
        m10 & 0xFF, (m10 >> 8) << 6,  # M, tolerance 0
        b10 & 0xFF, (b10 >> 8) << 6,  # B, accuracy 0
        0x00,  # accuracy, accuracy exponent, sensor direction unspecified
        ((conv.k2 & 0x0F) << 4) | (conv.k1 & 0x0F),
        0x00,  # analog characteristic flags: no nominal / normal max / normal min
        0x00, 0x00, 0x00,  # nominal, normal maximum, normal minimum
        0xFF, 0x00,  # sensor maximum and minimum raw reading
        raw.get("unr", 0), raw.get("uc", 0), raw.get("unc", 0),
        raw.get("lnr", 0), raw.get("lc", 0), raw.get("lnc", 0),
        hpos, hneg,
        0x00, 0x00,  # reserved
        0x00,  # OEM
    ]) + id_string(c.name)
    return with_header(record_id, TYPE_FULL, body)


def compact_record(c: SensorConfig, record_id: int = 0) -> bytes:
    """Compact sensor record (type 02h, table 43-2) of a discrete sensor."""
    body = _key_and_entity(c) + bytes([
        _initialization(c),
        _capabilities(c),
        c.sensor_type,
        c.reading_type,
    ]) + struct.pack("<HHH", c.assertion_mask, c.deassertion_mask, c.reading_mask) + bytes([
        0xC0,  # units 1: no analog reading
        0x00, 0x00,  # base and modifier unit
        0x00, 0x00,  # no record sharing
        0x00, 0x00,  # hysteresis
        0x00, 0x00, 0x00,  # reserved
        0x00,  # OEM
    ]) + id_string(c.name)
    return with_header(record_id, TYPE_COMPACT, body)


def event_only_record(c: SensorConfig, record_id: int = 0) -> bytes:
    """Event-only sensor record (type 03h, table 43-3): a number, a type, no readings."""
    body = _key_and_entity(c) + bytes([
        c.sensor_type,
        c.reading_type,
        0x00, 0x00,  # no record sharing
        0x00,  # reserved
        0x00,  # OEM
    ]) + id_string(c.name)
    return with_header(record_id, TYPE_EVENT_ONLY, body)


def fru_locator_record(name: str = "System FRU", fru_id: int = 0, record_id: int = 0) -> bytes:
    """FRU device locator (type 11h, table 43-7) for a logical FRU device behind the BMC."""
    body = bytes([
        BMC_ADDRESS,  # device access address
        fru_id,  # FRU device ID
        0x80,  # logical FRU device, LUN 0, private bus 0
        0x00,  # channel 0
        0x00,  # reserved
        DEVICE_TYPE_FRU_INVENTORY,
        0x00,  # device type modifier
        ENTITY_SYSTEM_BOARD, 1,
        0x00,  # OEM
    ]) + id_string(name)
    return with_header(record_id, TYPE_FRU_LOCATOR, body)


def mc_locator_record(capabilities: int, name: str = "vhw BMC", record_id: int = 0) -> bytes:
    """Management controller device locator (type 12h, table 43-8) for the BMC itself.

    ``capabilities`` (byte 9) has the layout of Get Device ID's additional
    device support byte (table 20-2), so the identity's value goes in as is.
    """
    body = bytes([
        BMC_ADDRESS,  # device slave address
        0x00,  # channel 0
        0x00,  # no ACPI notifications; global init: enable event generation
        capabilities & 0xFF,
        0x00, 0x00, 0x00,  # reserved
        ENTITY_MANAGEMENT_MODULE, 1,
        0x00,  # OEM
    ]) + id_string(name)
    return with_header(record_id, TYPE_MC_LOCATOR, body)


def sensor_record(c: SensorConfig, record_id: int = 0) -> bytes:
    return {"full": full_record, "compact": compact_record, "event_only": event_only_record}[c.record](c, record_id)


def generate(sensor_configs: Iterable[SensorConfig], *, capabilities: int = 0x83) -> list[bytes]:
    """The repository for a description, IDs 1, 2, ...: sensors by number, then the locators."""
    records = [sensor_record(c) for c in sorted(sensor_configs, key=lambda c: c.number)]
    records.append(fru_locator_record())
    records.append(mc_locator_record(capabilities))
    return [restamp(r, i + 1) for i, r in enumerate(records)]


def restamp(record: bytes, record_id: int) -> bytes:
    return struct.pack("<H", record_id) + bytes(record[2:])


def read_record(records: Mapping[int, bytes], record_id: int, offset: int, count: int) -> tuple[int, bytes]:
    """Get SDR / Get Device SDR (sections 33.12, 35.3): the next ID and the bytes asked for.

    0000h is the first record, FFFFh the last; FFh bytes means "to the end".
    Reading past the end returns what is there; a read longer than one
    response carries (MAX_READ) is refused with CAh.
    """
    ids = sorted(records)
    if not ids:
        raise IpmiError(CC.NOT_PRESENT, "the repository is empty")
    if record_id == FIRST_RECORD:
        record_id = ids[0]
    elif record_id == LAST_RECORD:
        record_id = ids[-1]
    data = records.get(record_id)
    if data is None:
        raise IpmiError(CC.NOT_PRESENT, f"no record {record_id:#06x}")
    if offset >= len(data):
        raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"offset {offset} past the record's {len(data)} bytes")
    wanted = len(data) - offset if count == 0xFF else count
    if wanted > MAX_READ:
        raise IpmiError(CC.CANNOT_RETURN_REQUESTED_BYTES, f"{wanted} bytes > {MAX_READ} per read")
    i = ids.index(record_id)
    next_id = ids[i + 1] if i + 1 < len(ids) else LAST_RECORD
    return next_id, data[offset:offset + wanted]


def _digest(records: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(len(r).to_bytes(2, "little") + r)
    return h.hexdigest()


class Reservations:
    """One reservation at a time (section 33.11); a new one or a change cancels the old."""

    def __init__(self) -> None:
        self._last = 0
        self.current = 0  # 0 = none

    def reserve(self) -> int:
        self._last = self._last % 0xFFFF + 1
        self.current = self._last
        return self.current

    def cancel(self) -> None:
        self.current = 0

    def check(self, reservation_id: int, *, required: bool) -> None:
        """C5h for a stale ID, or for none where one is required."""
        if reservation_id == 0 and not required:
            return
        if reservation_id == 0 or reservation_id != self.current:
            raise IpmiError(CC.RESERVATION_CANCELLED, f"reservation {reservation_id:#06x} is not current")


class SdrRepository:
    """The BMC's SDR repository and device SDRs; ``bmc.parts["sdr"]``."""

    def __init__(self, bmc: Any, generated: list[bytes]):
        self.bmc = bmc
        self.generated = list(generated)
        self.reservations = Reservations()
        self.device_reservations = Reservations()
        #: Device SDRs (Get Device SDR): the generated sensor records, never changed by Add/Delete.
        self.device_records = {r[0] | r[1] << 8: r for r in self.generated if r[3] in SENSOR_RECORD_TYPES}
        self._partial: tuple[int, bytearray] | None = None
        self.records: dict[int, bytes] = {}
        self.last_addition = NO_TIMESTAMP
        self.last_erase = NO_TIMESTAMP
        self.own = False  # True once changed: then it lives in the store
        self._load()

    # -- persistence ------------------------------------------------------------
    def _load(self) -> None:
        store = self.bmc.store
        meta = store.get(NAMESPACE, "meta") if store is not None else None
        if meta is None:
            self.records = {i + 1: r for i, r in enumerate(self.generated)}
            return
        self.own = True
        self.records = dict(store.records(NAMESPACE))
        self.last_addition = int(meta.get("last_addition", NO_TIMESTAMP))
        self.last_erase = int(meta.get("last_erase", NO_TIMESTAMP))
        if meta.get("generated_from") != _digest(self.generated):
            log.warning("SDR repository: using the stored, changed repository; the description's "
                        "sensors have changed since (Clear SDR Repository to start from them again)")

    def _save(self) -> None:
        store = self.bmc.store
        self.own = True
        if store is None:
            return
        with store.transaction():
            store.clear(NAMESPACE)
            for record_id, data in sorted(self.records.items()):
                store.append(NAMESPACE, data, record_id)
            store.put(NAMESPACE, "meta", {
                "last_addition": self.last_addition,
                "last_erase": self.last_erase,
                "generated_from": _digest(self.generated),
            })

    def _timestamp(self) -> int:
        """The BMC clock for addition/erase times: SEL time when there is a SEL, else seconds since start."""
        sel = self.bmc.parts.get("sel")
        clock = getattr(sel, "time", None)
        if callable(clock):
            return int(clock(self.bmc.now)) & 0xFFFFFFFF
        sensors = self.bmc.parts.get("sensors")
        return int(sensors.elapsed(self.bmc.now)) if sensors is not None else int(self.bmc.now)

    # -- info -----------------------------------------------------------------
    def used_units(self) -> int:
        return sum(-(-len(r) // UNIT_SIZE) for r in self.records.values())

    def free_units(self) -> int:
        return max(0, UNIT_COUNT - self.used_units())

    def free_bytes(self) -> int:
        return min(0xFFFE, self.free_units() * UNIT_SIZE)

    # -- reading ---------------------------------------------------------------
    def read(self, reservation_id: int, record_id: int, offset: int, count: int) -> tuple[int, bytes]:
        self.reservations.check(reservation_id, required=offset != 0)
        return read_record(self.records, record_id, offset, count)

    def read_device(self, reservation_id: int, record_id: int, offset: int, count: int) -> tuple[int, bytes]:
        self.device_reservations.check(reservation_id, required=offset != 0)
        return read_record(self.device_records, record_id, offset, count)

    # -- changes -----------------------------------------------------------------
    def _next_id(self) -> int:
        taken = set(self.records)
        if self._partial is not None:
            taken.add(self._partial[0])
        candidate = max(taken, default=0) + 1
        if candidate < LAST_RECORD:
            return candidate
        free = next((i for i in range(1, LAST_RECORD) if i not in taken), None)
        if free is None:
            raise IpmiError(CC.OUT_OF_SPACE, "no record IDs left")
        return free

    def _check_record(self, data: bytes) -> None:
        if len(data) < HEADER_SIZE or data[4] != len(data) - HEADER_SIZE:
            raise IpmiError(CC.INVALID_DATA_FIELD, "record length byte does not match the record")
        if -(-len(data) // UNIT_SIZE) > self.free_units():
            raise IpmiError(CC.OUT_OF_SPACE, "SDR repository full")

    def _commit(self, record_id: int, data: bytes) -> int:
        self.records[record_id] = restamp(data, record_id)
        self.last_addition = self._timestamp()
        self.reservations.cancel()
        self._save()
        return record_id

    def add(self, data: bytes) -> int:
        """Add SDR (section 33.13): the BMC assigns the ID."""
        self._check_record(data)
        return self._commit(self._next_id(), data)

    def partial_add(self, reservation_id: int, record_id: int, offset: int, last: bool, data: bytes) -> int:
        """Partial Add SDR (section 33.14): the first part (ID 0000h, offset 0) carries the header."""
        self.reservations.check(reservation_id, required=True)
        if record_id == 0:
            if offset != 0 or len(data) < HEADER_SIZE:
                raise IpmiError(CC.INVALID_DATA_FIELD, "the first part starts at offset 0 with the header")
            self._partial = None
            self._partial = (self._next_id(), bytearray(data))
        else:
            if self._partial is None or self._partial[0] != record_id:
                raise IpmiError(CC.INVALID_DATA_FIELD, f"no partial add in progress for {record_id:#06x}")
            if offset != len(self._partial[1]):
                raise IpmiError(CC.INVALID_DATA_FIELD, f"offset {offset}, expected {len(self._partial[1])}")
            self._partial[1].extend(data)
        new_id, buf = self._partial
        if len(buf) > HEADER_SIZE + buf[4]:
            self._partial = None
            raise IpmiError(CC.INVALID_DATA_FIELD, "more data than the record's length byte says")
        if not last:
            return new_id
        self._partial = None
        self._check_record(bytes(buf))
        return self._commit(new_id, bytes(buf))

    def delete(self, reservation_id: int, record_id: int) -> int:
        """Delete SDR (section 33.15)."""
        self.reservations.check(reservation_id, required=True)
        if record_id not in self.records:
            raise IpmiError(CC.NOT_PRESENT, f"no record {record_id:#06x}")
        del self.records[record_id]
        self.reservations.cancel()
        self._save()
        return record_id

    def clear(self, reservation_id: int) -> None:
        """Clear SDR Repository (section 33.16): done at once, so "erasure completed"."""
        self.reservations.check(reservation_id, required=True)
        self.records.clear()
        self._partial = None
        self.last_erase = self._timestamp()
        self.reservations.cancel()
        self._save()

    def cold_reset(self) -> None:
        self.reservations.cancel()
        self.device_reservations.cancel()
        self._partial = None


def create_part(bmc: Any, config: Any) -> SdrRepository:
    """``bmc.parts["sdr"]``, generated from the sensors part (made before it in PARTS)."""
    sensors: Sensors | None = bmc.parts.get("sensors")
    configs = [s.config for s in sensors] if sensors is not None else []
    identity = getattr(config, "identity", None)
    capabilities = getattr(identity, "additional_support", 0x83)
    return SdrRepository(bmc, generate(configs, capabilities=capabilities))

