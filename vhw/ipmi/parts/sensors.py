"""Sensors: their description, their readings over time, and the events they raise.

A sensor is described once (``[[bmc.sensors]]`` in the machine description,
parsed by ``SensorsConfig.from_list``) and lives as a ``Sensor`` in
``bmc.parts["sensors"]``.  Readings come from a constant, a timeline (seconds
since the BMC started -> value, step or linear) or ``set_value`` at run time.

Threshold sensors (event/reading type 01h) turn a value into an 8-bit raw
reading through the SDR linearisation y = (M*x + B*10^K1) * 10^K2 (IPMI 2.0
section 36.3) and compare *raw* readings with raw thresholds, as a real BMC
does, with hysteresis (section 36.2).  Discrete sensors carry a state bit per
offset (chapter 42).  A change that asserts or deasserts an enabled event
becomes a platform event record (type 02h, section 32.1, table 32-1; event
data per table 29-6), which goes to the SEL (``bmc.parts["sel"].add``) and to
the event message buffer (``messaging.post_event``), unless the event
receiver is disabled (Set Event Receiver FFh, section 29.1).

Sans-I/O: time is passed in.  ``next_deadline()`` tells the runner when a
timeline will next change a raw reading, so crossings happen on time even
when nobody asks.
"""

from __future__ import annotations

import itertools
import math
import struct
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable, Mapping, Sequence

from ...errors import DescriptionError
from ...tables import Table

#: Sensor type codes (IPMI 2.0 table 42-3).  "power" is an alias of the
#: Power Supply type that input/output power sensors in watts usually carry.
SENSOR_TYPES: dict[str, int] = {
    "temperature": 0x01,
    "voltage": 0x02,
    "current": 0x03,
    "fan": 0x04,
    "physical_security": 0x05,
    "platform_security": 0x06,
    "processor": 0x07,
    "power_supply": 0x08,
    "power": 0x08,
    "power_unit": 0x09,
    "cooling_device": 0x0A,
    "other_units": 0x0B,
    "memory": 0x0C,
    "drive_slot": 0x0D,
    "system_firmware_progress": 0x0F,
    "event_logging_disabled": 0x10,
    "system_event": 0x12,
    "critical_interrupt": 0x13,
    "button": 0x14,
    "watchdog2": 0x23,
    "management_subsystem_health": 0x28,
    "battery": 0x29,
}

#: Sensor unit type codes (IPMI 2.0 table 43-15), the ones worth naming.
UNITS: dict[str, int] = {
    "unspecified": 0,
    "degrees_c": 1,
    "degrees_f": 2,
    "kelvin": 3,
    "volts": 4,
    "amps": 5,
    "watts": 6,
    "joules": 7,
    "rpm": 18,
    "hz": 19,
    "percent": 0,  # percentage is units-1 bit 0, base unit unspecified
}

#: What a sensor type measures unless the description says otherwise.
DEFAULT_UNIT = {0x01: "degrees_c", 0x02: "volts", 0x03: "amps", 0x04: "rpm", 0x08: "watts"}
#: Types that are threshold sensors unless ``kind`` says otherwise.
THRESHOLD_TYPES = frozenset({0x01, 0x02, 0x03, 0x04, 0x08, 0x0B})

#: Sensor-specific offsets a discrete sensor of a type supports by default (table 42-3).
DEFAULT_OFFSETS = {
    0x05: range(0, 7),  # physical security: 0 = general chassis intrusion
    0x07: range(0, 11),  # processor: 7 = processor presence detected
    0x08: range(0, 7),  # power supply: 0 = presence detected
    0x09: range(0, 8),  # power unit: 0 = power off / power down
    0x12: range(0, 6),  # system event
    0x23: (0, 1, 2, 3, 8),  # watchdog 2
}

#: Threshold names in the bit order of every threshold mask (tables 35-8, 43-1).
THRESHOLDS = ("lnc", "lc", "lnr", "unc", "uc", "unr")
UPPER = frozenset({"unc", "uc", "unr"})
#: The event offset of a threshold's "natural" crossing (table 42-2):
#: going low for lower thresholds, going high for upper ones.
NATURAL_OFFSET = {"lnc": 0x00, "lc": 0x02, "lnr": 0x04, "unc": 0x07, "uc": 0x09, "unr": 0x0B}
#: Thresholds must be ordered lnr <= lc <= lnc < unc <= uc <= unr.
ORDER = ("lnr", "lc", "lnc", "unc", "uc", "unr")

#: Event/reading type codes (table 42-1).
READING_TYPE_THRESHOLD = 0x01
READING_TYPE_SENSOR_SPECIFIC = 0x6F

#: The watchdog sensor every vhw BMC has (vhw.ipmi.parts.watchdog logs its events).
WATCHDOG_SENSOR_NUMBER = 0x01
WATCHDOG_SENSOR_TYPE = 0x23

#: The BMC as event generator: slave address 20h, channel 0, LUN 0; EvMRev 04h (IPMI 2.0).
GENERATOR_ID = 0x0020
EVM_REV = 0x04

#: Record kinds, the SDR type each becomes (sections 43.1-43.3).
RECORD_KINDS = ("full", "compact", "event_only")

_M_RANGE = (-512, 511)  # 10-bit two's complement (table 43-1, bytes 25-28)
_EXP_RANGE = (-8, 7)  # 4-bit two's complement (byte 30)


# -- linearisation -------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """Linear conversion y = (M*x + B*10^K1) * 10^K2 of an unsigned raw byte (section 36.3)."""

    m: int = 1
    b: int = 0
    k1: int = 0
    k2: int = 0

    @property
    def step(self) -> float:
        """Engineering units per raw count."""
        return self.m * 10.0**self.k2

    def to_value(self, raw: int) -> float:
        return (self.m * raw + self.b * 10.0**self.k1) * 10.0**self.k2

    def raw_float(self, value: float) -> float:
        """The raw reading as a real number, before rounding and clamping."""
        return (value / 10.0**self.k2 - self.b * 10.0**self.k1) / self.m

    def to_raw(self, value: float) -> int:
        """The nearest raw byte; values outside the range stick at 0 or 255."""
        return min(255, max(0, math.floor(self.raw_float(value) + 0.5)))

    def counts(self, delta: float) -> int:
        """A difference in engineering units (hysteresis) as raw counts."""
        return min(255, max(0, math.floor(abs(delta) / self.step + 0.5)))

    @classmethod
    def for_range(cls, lo: float, hi: float) -> Conversion:
        """M, B, K1, K2 so that raw 0..255 covers [lo, hi] as finely as 10-bit M allows.

        The smallest K2 whose M (rounded up, so 255 counts reach ``hi``)
        still fits gives the finest resolution; B*10^K1 is the offset ``lo``
        in units of 10^K2, rounded down so raw 0 is at or below ``lo``.
        """
        span = (hi - lo) / 255.0
        for k2 in range(_EXP_RANGE[0], _EXP_RANGE[1] + 1):
            m = max(1, math.ceil(span / 10.0**k2 - 1e-9))
            if m > _M_RANGE[1]:
                continue
            offset = lo / 10.0**k2
            for k1 in range(_EXP_RANGE[0], _EXP_RANGE[1] + 1):
                b = math.floor(offset / 10.0**k1 + 1e-9)
                if _M_RANGE[0] <= b <= _M_RANGE[1]:
                    k1 = k1 if b else 0
                    break
            else:
                continue
            for m_try in (m, m + 1, m + 2):
                conv = cls(m_try, b, k1, k2)
                if m_try <= _M_RANGE[1] and conv.to_value(255) >= hi - 1e-9 * max(1.0, abs(hi)):
                    return conv
        raise ValueError(f"no M/B/K1/K2 cover {lo}..{hi} with 8-bit readings")


# -- the description -----------------------------------------------------------


@dataclass(frozen=True)
class SensorConfig:
    """One sensor as described; immutable.  Thresholds and values in engineering units."""

    name: str
    number: int
    sensor_type: int
    threshold: bool
    reading_type: int
    unit: int = 0
    percentage: bool = False
    entity_id: int = 0x07  # system board (table 43-13)
    entity_instance: int = 1
    conversion: Conversion = field(default_factory=Conversion)
    thresholds: tuple[tuple[str, float], ...] = ()
    settable: frozenset[str] = frozenset()
    #: (positive-going, negative-going) hysteresis in engineering units.
    hysteresis: tuple[float, float] = (0.0, 0.0)
    #: Events the sensor can generate (the SDR masks) ...
    assertion_mask: int = 0
    deassertion_mask: int = 0
    #: ... and those enabled at power-up.
    assertion_enabled: int = 0
    deassertion_enabled: int = 0
    #: Discrete: offsets the sensor reports (the SDR discrete reading mask).
    reading_mask: int = 0
    events_enabled: bool = True
    scanning: bool = True
    auto_rearm: bool = True
    value: float | None = None
    #: Discrete state bits at start.
    state: int = 0
    #: ((seconds since BMC start, value or state bits), ...), sorted.
    timeline: tuple[tuple[float, float], ...] = ()
    interpolation: str = "step"
    record: str = "full"

    @property
    def threshold_map(self) -> dict[str, float]:
        return dict(self.thresholds)


def watchdog_sensor_config() -> SensorConfig:
    """The Watchdog 2 sensor (number 01h): discrete, sensor-specific offsets 0-3 and 8."""
    mask = sum(1 << o for o in DEFAULT_OFFSETS[WATCHDOG_SENSOR_TYPE])
    return SensorConfig(
        name="Watchdog",
        number=WATCHDOG_SENSOR_NUMBER,
        sensor_type=WATCHDOG_SENSOR_TYPE,
        threshold=False,
        reading_type=READING_TYPE_SENSOR_SPECIFIC,
        entity_id=0x07,
        assertion_mask=mask,
        assertion_enabled=mask,
        reading_mask=mask,
        record="compact",
    )


@dataclass(frozen=True)
class SensorsConfig:
    """Every described sensor (the watchdog sensor is added by the part, not listed here)."""

    sensors: tuple[SensorConfig, ...] = ()

    def __iter__(self):
        return iter(self.sensors)

    def __len__(self) -> int:
        return len(self.sensors)

    @classmethod
    def from_list(cls, items: Any, key: str = "bmc.sensors") -> SensorsConfig:
        """Validate the ``[[bmc.sensors]]`` array; errors name the key."""
        if items is None:
            return cls()
        if not isinstance(items, list):
            raise DescriptionError(key, "must be an array of tables ([[bmc.sensors]])")
        out: list[SensorConfig] = []
        for i, item in enumerate(items):
            s = _parse_sensor(item, f"{key}[{i}]")
            for other in out:
                if other.number == s.number:
                    raise DescriptionError(f"{key}[{i}].number", f"sensor number {s.number:#04x} used twice")
                if other.name == s.name:
                    raise DescriptionError(f"{key}[{i}].name", f"sensor name {s.name!r} used twice")
            out.append(s)
        return cls(tuple(out))


_SENSOR_KEYS = {
    "name", "number", "type", "kind", "reading_type", "unit", "entity", "range", "m", "b", "k1", "k2",
    "thresholds", "settable_thresholds", "hysteresis", "assertion_events", "deassertion_events",
    "events_enabled", "scanning", "auto_rearm", "value", "timeline", "interpolation", "state",
    "offsets", "record",
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(d: Mapping, key: str, name: str, lo: int, hi: int, default: int | None = None) -> int:
    v = d.get(name, default)
    if not _is_int(v) or not lo <= v <= hi:
        raise DescriptionError(f"{key}.{name}", f"must be an integer {lo}..{hi}, not {v!r}")
    return v


def _bool(d: Mapping, key: str, name: str, default: bool) -> bool:
    v = d.get(name, default)
    if not isinstance(v, bool):
        raise DescriptionError(f"{key}.{name}", "must be true or false")
    return v


def _offsets(v: Any, key: str, allowed: int | None = None) -> int:
    """A list of discrete offsets 0..14 as a bit mask."""
    if not isinstance(v, list) or not all(_is_int(o) and 0 <= o <= 14 for o in v):
        raise DescriptionError(key, "must be a list of event offsets 0..14")
    mask = sum(1 << o for o in v)
    if allowed is not None and mask & ~allowed:
        bad = [o for o in v if not allowed >> o & 1]
        raise DescriptionError(key, f"offset(s) {bad} not in this sensor's offsets")
    return mask


def _parse_sensor(d: Any, key: str) -> SensorConfig:
    Table(d, key).expect(_SENSOR_KEYS)

    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise DescriptionError(f"{key}.name", "required: the sensor's ID string")
    try:
        encoded = name.encode("latin-1")
    except UnicodeEncodeError:
        raise DescriptionError(f"{key}.name", "must be Latin-1 text (the SDR ID string is 8-bit)") from None
    if len(encoded) > 16:
        raise DescriptionError(f"{key}.name", f"{name!r} is {len(encoded)} bytes; an SDR ID string holds 16")

    if "number" not in d:
        raise DescriptionError(f"{key}.number", "required: 1..254")
    number = _int(d, key, "number", 1, 254)
    if number == WATCHDOG_SENSOR_NUMBER:
        raise DescriptionError(f"{key}.number", "1 is the BMC's watchdog sensor; pick 2..254")

    raw_type = d.get("type")
    if isinstance(raw_type, str) and raw_type in SENSOR_TYPES:
        sensor_type = SENSOR_TYPES[raw_type]
    elif _is_int(raw_type) and 0 <= raw_type <= 0xFF:
        sensor_type = raw_type
    else:
        raise DescriptionError(f"{key}.type", f"must be one of {', '.join(SENSOR_TYPES)} or a type code 0..255, not {raw_type!r}")
    if sensor_type == WATCHDOG_SENSOR_TYPE:
        raise DescriptionError(f"{key}.type", "the watchdog sensor (number 1) is built in")

    kind = d.get("kind", "threshold" if sensor_type in THRESHOLD_TYPES else "discrete")
    if kind not in ("threshold", "discrete"):
        raise DescriptionError(f"{key}.kind", f"must be threshold or discrete, not {kind!r}")
    threshold = kind == "threshold"

    interpolation = d.get("interpolation", "step")
    if interpolation not in ("step", "linear"):
        raise DescriptionError(f"{key}.interpolation", "must be step or linear")

    common: dict[str, Any] = dict(
        name=name,
        number=number,
        sensor_type=sensor_type,
        threshold=threshold,
        events_enabled=_bool(d, key, "events_enabled", True),
        scanning=_bool(d, key, "scanning", True),
        auto_rearm=_bool(d, key, "auto_rearm", True),
        interpolation=interpolation,
    )
    entity = d.get("entity", [0x07, 1])
    if _is_int(entity):
        entity = [entity, 1]
    if not (isinstance(entity, list) and len(entity) == 2 and _is_int(entity[0]) and 0 <= entity[0] <= 0xFF
            and _is_int(entity[1]) and 0 <= entity[1] <= 0x7F):
        raise DescriptionError(f"{key}.entity", "must be an entity ID 0..255 or [entity ID, instance 0..127]")
    common.update(entity_id=entity[0], entity_instance=entity[1])

    record = d.get("record", "full" if threshold else "compact")
    if record not in RECORD_KINDS:
        raise DescriptionError(f"{key}.record", f"must be one of {', '.join(RECORD_KINDS)}")
    if threshold and record != "full":
        raise DescriptionError(f"{key}.record", "a threshold sensor needs a full record (its linearisation lives there)")
    common["record"] = record

    if threshold:
        return _parse_threshold(d, key, common)
    return _parse_discrete(d, key, common)


def _parse_threshold(d: Mapping, key: str, common: dict[str, Any]) -> SensorConfig:
    for bad in ("state", "offsets", "reading_type"):
        if bad in d:
            raise DescriptionError(f"{key}.{bad}", "only discrete sensors have this")
    unit_name = d.get("unit", DEFAULT_UNIT.get(common["sensor_type"], "unspecified"))
    if unit_name not in UNITS:
        raise DescriptionError(f"{key}.unit", f"must be one of {', '.join(UNITS)}, not {unit_name!r}")

    explicit = [k for k in ("m", "b", "k1", "k2") if k in d]
    if "range" in d and explicit:
        raise DescriptionError(f"{key}.{explicit[0]}", "give either range or m/b/k1/k2, not both")
    if "range" in d:
        rng = d["range"]
        if not (isinstance(rng, list) and len(rng) == 2 and all(_is_num(x) for x in rng) and rng[0] < rng[1]):
            raise DescriptionError(f"{key}.range", "must be [low, high] with low < high")
        try:
            conv = Conversion.for_range(float(rng[0]), float(rng[1]))
        except ValueError as e:
            raise DescriptionError(f"{key}.range", str(e)) from None
    else:
        m = _int(d, key, "m", *_M_RANGE, default=1)
        if m <= 0:
            raise DescriptionError(f"{key}.m", "must be positive (readings rise with the raw value)")
        conv = Conversion(m, _int(d, key, "b", *_M_RANGE, default=0),
                          _int(d, key, "k1", *_EXP_RANGE, default=0), _int(d, key, "k2", *_EXP_RANGE, default=0))
    lo, hi = conv.to_value(0), conv.to_value(255)

    def in_range(v: Any, where: str) -> float:
        if not _is_num(v):
            raise DescriptionError(where, "must be a number")
        if not lo - conv.step / 2 <= v <= hi + conv.step / 2:
            raise DescriptionError(where, f"{v} is outside the sensor's range {lo:g}..{hi:g}")
        return float(v)

    th_table = d.get("thresholds", {})
    if not isinstance(th_table, Mapping):
        raise DescriptionError(f"{key}.thresholds", "must be a table like {unc = 80, uc = 90}")
    thresholds: dict[str, float] = {}
    for name, v in th_table.items():
        if name not in THRESHOLDS:
            raise DescriptionError(f"{key}.thresholds.{name}", f"unknown threshold; use {', '.join(ORDER)}")
        thresholds[name] = in_range(v, f"{key}.thresholds.{name}")
    present = [t for t in ORDER if t in thresholds]
    for a, b in itertools.pairwise(present):
        ra, rb = conv.to_raw(thresholds[a]), conv.to_raw(thresholds[b])
        if (ra >= rb) if (a not in UPPER and b in UPPER) else (ra > rb):
            relation = "above" if (a not in UPPER and b in UPPER) else "at or above"
            raise DescriptionError(f"{key}.thresholds.{b}",
                                   f"must be {relation} {a} ({thresholds[a]:g}) in raw counts, not {thresholds[b]:g}")

    settable_list = d.get("settable_thresholds", present)
    if not isinstance(settable_list, list) or any(t not in thresholds for t in settable_list):
        raise DescriptionError(f"{key}.settable_thresholds", "must list thresholds this sensor has")

    hyst = d.get("hysteresis", 0)
    if _is_num(hyst):
        hyst = [hyst, hyst]
    if not (isinstance(hyst, list) and len(hyst) == 2 and all(_is_num(h) and h >= 0 for h in hyst)):
        raise DescriptionError(f"{key}.hysteresis", "must be a number >= 0 or [positive-going, negative-going]")

    natural = sum(1 << NATURAL_OFFSET[t] for t in thresholds)

    def events(name: str) -> int:
        v = d.get(name, list(thresholds))
        if not isinstance(v, list) or any(t not in thresholds for t in v):
            raise DescriptionError(f"{key}.{name}", "must list thresholds this sensor has")
        return sum(1 << NATURAL_OFFSET[t] for t in v)

    value = None
    if "value" in d:
        value = in_range(d["value"], f"{key}.value")
    timeline = _timeline(d, key, lambda v, where: in_range(v, where))
    if value is not None and timeline:
        raise DescriptionError(f"{key}.timeline", "give either value or timeline, not both")
    return SensorConfig(
        **common,
        reading_type=READING_TYPE_THRESHOLD,
        unit=UNITS[unit_name],
        percentage=unit_name == "percent",
        conversion=conv,
        thresholds=tuple((t, thresholds[t]) for t in THRESHOLDS if t in thresholds),
        settable=frozenset(settable_list),
        hysteresis=(float(hyst[0]), float(hyst[1])),
        assertion_mask=natural,
        deassertion_mask=natural,
        assertion_enabled=events("assertion_events"),
        deassertion_enabled=events("deassertion_events"),
        value=value,
        timeline=timeline,
    )


def _parse_discrete(d: Mapping, key: str, common: dict[str, Any]) -> SensorConfig:
    for bad in ("thresholds", "settable_thresholds", "hysteresis", "range", "m", "b", "k1", "k2", "value", "unit"):
        if bad in d:
            raise DescriptionError(f"{key}.{bad}", "only threshold sensors have this")
    if common["interpolation"] != "step":
        raise DescriptionError(f"{key}.interpolation", "a discrete sensor's states can only step")
    reading_type = _int(d, key, "reading_type", 0x02, 0x7F, default=READING_TYPE_SENSOR_SPECIFIC)
    if reading_type == READING_TYPE_THRESHOLD:
        raise DescriptionError(f"{key}.reading_type", "01h is the threshold type; use kind = \"threshold\"")
    default_offsets = list(DEFAULT_OFFSETS.get(common["sensor_type"], range(0, 15)))
    reading_mask = _offsets(d.get("offsets", default_offsets), f"{key}.offsets")
    assertion = _offsets(d.get("assertion_events", [o for o in range(15) if reading_mask >> o & 1]),
                         f"{key}.assertion_events", reading_mask)
    deassertion = _offsets(d.get("deassertion_events", []), f"{key}.deassertion_events", reading_mask)
    state = _offsets(d.get("state", []), f"{key}.state", reading_mask)
    timeline = _timeline(d, key, lambda v, where: float(_offsets(v, where, reading_mask)))
    if "state" in d and timeline:
        raise DescriptionError(f"{key}.timeline", "give either state or timeline, not both")
    return SensorConfig(
        **common,
        reading_type=reading_type,
        reading_mask=reading_mask,
        assertion_mask=reading_mask,
        deassertion_mask=reading_mask,
        assertion_enabled=assertion,
        deassertion_enabled=deassertion,
        state=state,
        timeline=timeline,
    )


def _timeline(d: Mapping, key: str, parse_value) -> tuple[tuple[float, float], ...]:
    if "timeline" not in d:
        return ()
    tl = d["timeline"]
    where = f"{key}.timeline"
    if not isinstance(tl, list) or not tl:
        raise DescriptionError(where, "must be a list of [seconds, value] pairs")
    out: list[tuple[float, float]] = []
    for i, point in enumerate(tl):
        if not (isinstance(point, list) and len(point) == 2 and _is_num(point[0]) and point[0] >= 0):
            raise DescriptionError(f"{where}[{i}]", "must be [seconds since BMC start >= 0, value]")
        if out and point[0] <= out[-1][0]:
            raise DescriptionError(f"{where}[{i}]", "times must increase")
        out.append((float(point[0]), parse_value(point[1], f"{where}[{i}][1]")))
    return tuple(out)


# -- events ---------------------------------------------------------------------


def event_record(sensor_type: int, number: int, reading_type: int, deassertion: bool,
                 data1: int, data2: int = 0xFF, data3: int = 0xFF, generator: int = GENERATOR_ID,
                 evm_rev: int = EVM_REV) -> bytes:
    """A 16-byte system event record (SEL type 02h, table 32-1); the SEL stamps ID and time."""
    return struct.pack("<HBIHBBBBBBB", 0, 0x02, 0, generator, evm_rev, sensor_type, number,
                       (0x80 if deassertion else 0) | (reading_type & 0x7F), data1, data2, data3)


# -- the live sensor --------------------------------------------------------------


class Sensor:
    """One sensor's present state: thresholds, enables, event status, value override."""

    def __init__(self, config: SensorConfig):
        self.config = config
        self.conversion = config.conversion
        self._override: float | None = None
        self._override_set = False
        self.power_on_defaults()

    def power_on_defaults(self) -> None:
        """Thresholds, hysteresis and enables as the SDR says (what a BMC cold reset restores)."""
        c = self.config
        self.thresholds_raw: dict[str, int] = {t: self.conversion.to_raw(v) for t, v in c.thresholds}
        self.hysteresis_raw = (self.conversion.counts(c.hysteresis[0]), self.conversion.counts(c.hysteresis[1]))
        self.events_enabled = c.events_enabled
        self.scanning_enabled = c.scanning
        self.assertion_enabled = c.assertion_enabled
        self.deassertion_enabled = c.deassertion_enabled
        self.clear_event_status()

    def clear_event_status(self) -> None:
        #: Offsets asserted since the last re-arm (latched when auto re-arm is off).
        self.asserted = 0
        #: Offsets that saw a deassertion since the last re-arm.
        self.deasserted = 0

    # -- identity ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def number(self) -> int:
        return self.config.number

    @property
    def sensor_type(self) -> int:
        return self.config.sensor_type

    @property
    def is_threshold(self) -> bool:
        return self.config.threshold

    # -- readings ------------------------------------------------------------
    def set_override(self, value: float | None) -> None:
        """A value (or state bits) set at run time; it replaces the description's."""
        self._override = value
        self._override_set = True

    def source_value(self, elapsed: float) -> float | None:
        """The value (threshold) or state bits (discrete) ``elapsed`` s after BMC start."""
        c = self.config
        if self._override_set:
            return self._override
        if c.timeline:
            return _timeline_value(c.timeline, elapsed, c.interpolation)
        return c.value if c.threshold else float(c.state)

    def raw(self, elapsed: float) -> int | None:
        """The raw reading byte, None when unavailable (no value)."""
        v = self.source_value(elapsed)
        if v is None or not self.config.threshold:
            return None
        return self.conversion.to_raw(v)

    def reading(self, elapsed: float) -> float | None:
        """The reading in engineering units as a client decodes it (quantised to the raw byte)."""
        raw = self.raw(elapsed)
        return None if raw is None else self.conversion.to_value(raw)

    def state(self, elapsed: float) -> int:
        """Discrete state bits (0 for threshold sensors)."""
        if self.config.threshold:
            return 0
        v = self.source_value(elapsed)
        return int(v or 0) & 0x7FFF

    def comparison_status(self, raw: int | None) -> int:
        """Get Sensor Reading byte 4 [5:0]: at or past each threshold, now (table 35-15)."""
        if raw is None:
            return 0
        bits = 0
        for i, t in enumerate(THRESHOLDS):
            tr = self.thresholds_raw.get(t)
            if tr is not None and (raw >= tr if t in UPPER else raw <= tr):
                bits |= 1 << i
        return bits

    def next_change(self, elapsed: float) -> float | None:
        """Seconds since BMC start when the raw reading or state may next change, or None."""
        c = self.config
        if self._override_set or not c.timeline:
            return None
        later = [t for t, _ in c.timeline if t > elapsed]
        next_point = later[0] if later else None
        if c.interpolation == "linear" and c.threshold and next_point is not None:
            i = next(i for i, (t, _) in enumerate(c.timeline) if t > elapsed)
            if i > 0:
                (t0, v0), (t1, v1) = c.timeline[i - 1], c.timeline[i]
                r0, r1 = self.conversion.raw_float(v0), self.conversion.raw_float(v1)
                if r1 != r0:
                    rate = (r1 - r0) / (t1 - t0)
                    r_now = r0 + rate * (elapsed - t0)
                    half = math.floor(r_now + 0.5) + 0.5 if rate > 0 else math.floor(r_now + 0.5) - 0.5
                    t = elapsed + (half - r_now) / rate + 1e-9
                    return min(next_point, max(t, elapsed + 1e-6))
        return next_point

    # -- events --------------------------------------------------------------
    def evaluate(self, elapsed: float) -> list[bytes]:
        """Update the event status from the present reading; the event records to send."""
        if not self.scanning_enabled:
            return []
        if self.config.threshold:
            return self._evaluate_thresholds(self.raw(elapsed))
        return self._evaluate_states(self.state(elapsed))

    def _event(self, offset: int, deassertion: bool, data2: int = 0xFF, data3: int = 0xFF) -> list[bytes]:
        enabled = self.deassertion_enabled if deassertion else self.assertion_enabled
        if not self.events_enabled or not enabled >> offset & 1:
            return []
        c = self.config
        data1 = offset | (0x50 if c.threshold else 0x00)  # table 29-6: trigger reading/threshold in 2/3
        return [event_record(c.sensor_type, c.number, c.reading_type, deassertion, data1, data2, data3)]

    def _evaluate_thresholds(self, raw: int | None) -> list[bytes]:
        if raw is None:
            return []
        out: list[bytes] = []
        hpos, hneg = self.hysteresis_raw
        for t in THRESHOLDS:  # assertions, mildest first
            tr = self.thresholds_raw.get(t)
            bit = 1 << NATURAL_OFFSET[t]
            if tr is None or self.asserted & bit:
                continue
            if raw >= tr if t in UPPER else raw <= tr:
                self.asserted |= bit
                out += self._event(NATURAL_OFFSET[t], False, raw, tr)
        if self.config.auto_rearm:
            for t in reversed(THRESHOLDS):  # deassertions, most severe first
                tr = self.thresholds_raw.get(t)
                bit = 1 << NATURAL_OFFSET[t]
                if tr is None or not self.asserted & bit:
                    continue
                if raw < tr - hpos if t in UPPER else raw > tr + hneg:
                    self.asserted &= ~bit
                    self.deasserted |= bit
                    out += self._event(NATURAL_OFFSET[t], True, raw, tr)
        return out

    def _evaluate_states(self, state: int) -> list[bytes]:
        out: list[bytes] = []
        new = state & ~self.asserted
        gone = self.asserted & ~state if self.config.auto_rearm else 0  # manual re-arm latches
        for offset in range(15):
            if new >> offset & 1:
                out += self._event(offset, False)
        for offset in range(15):
            if gone >> offset & 1:
                out += self._event(offset, True)
        self.deasserted |= gone
        self.asserted = (self.asserted | new) & ~gone
        return out

    # -- commands ------------------------------------------------------------
    def set_thresholds(self, new_raw: Mapping[str, int]) -> None:
        """Set Sensor Thresholds: the caller has checked settability and order."""
        self.thresholds_raw.update(new_raw)

    def thresholds_in_order(self, candidate: Mapping[str, int]) -> bool:
        """Raw thresholds keep lnr <= lc <= lnc < unc <= uc <= unr."""
        present = [(t, candidate[t]) for t in ORDER if t in candidate]
        for (a, ra), (b, rb) in itertools.pairwise(present):
            if (ra >= rb) if (a not in UPPER and b in UPPER) else (ra > rb):
                return False
        return True


def _timeline_value(points: Sequence[tuple[float, float]], elapsed: float, interpolation: str) -> float:
    if elapsed <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= elapsed < t1:
            if interpolation == "linear":
                return v0 + (v1 - v0) * (elapsed - t0) / (t1 - t0)
            return v0
    return points[-1][1]


# -- the part -------------------------------------------------------------------


class Sensors:
    """Every sensor of one BMC, and the BMC's event receiver setting; ``bmc.parts["sensors"]``.

    Time: the BMC "starts" at the first ``poll(now)``; timelines count from there.
    """

    def __init__(self, bmc: Any, config: SensorsConfig | Iterable[SensorConfig] = ()):
        self.bmc = bmc
        configs = [watchdog_sensor_config(), *config]
        self._sensors: dict[int, Sensor] = {c.number: Sensor(c) for c in configs}
        self.epoch: float | None = None
        self.event_receiver_reset()

    def event_receiver_reset(self) -> None:
        #: Set/Get Event Receiver (section 29.1): the BMC itself by default; FFh disables events.
        self.receiver_address = 0x20
        self.receiver_lun = 0

    # -- queries (also for DCMI) -------------------------------------------------
    def __iter__(self):
        return iter(sorted(self._sensors.values(), key=lambda s: s.number))

    def __len__(self) -> int:
        return len(self._sensors)

    def find(self, number: int) -> Sensor | None:
        return self._sensors.get(number)

    def get(self, key: int | str) -> Sensor:
        """A sensor by number or name; KeyError if there is none."""
        if isinstance(key, int):
            sensor = self._sensors.get(key)
        else:
            sensor = next((s for s in self._sensors.values() if s.name == key), None)
        if sensor is None:
            raise KeyError(f"no sensor {key!r}")
        return sensor

    def by_type(self, sensor_type: int | str) -> list[Sensor]:
        """Sensors of a type (code or name from SENSOR_TYPES), in number order."""
        code = SENSOR_TYPES[sensor_type] if isinstance(sensor_type, str) else sensor_type
        return [s for s in self if s.sensor_type == code]

    def elapsed(self, now: float) -> float:
        return 0.0 if self.epoch is None else max(0.0, now - self.epoch)

    def reading(self, key: int | str, now: float) -> float | None:
        """A sensor's reading in engineering units at ``now``, as clients decode it."""
        return self.get(key).reading(self.elapsed(now))

    # -- run-time changes ------------------------------------------------------
    def set_value(self, key: int | str, value: float | None, now: float) -> None:
        """Fix a threshold sensor's value (None = reading unavailable); events follow at once."""
        sensor = self.get(key)
        if not sensor.is_threshold:
            raise ValueError(f"sensor {sensor.name!r} is discrete: use set_state")
        sensor.set_override(None if value is None else float(value))
        self.poll(now)

    def set_state(self, key: int | str, offsets: Iterable[int], now: float) -> None:
        """Set a discrete sensor's asserted offsets; events follow at once."""
        sensor = self.get(key)
        if sensor.is_threshold:
            raise ValueError(f"sensor {sensor.name!r} is a threshold sensor: use set_value")
        bits = 0
        for o in offsets:
            if not 0 <= o <= 14:
                raise ValueError(f"offset {o} is not 0..14")
            bits |= 1 << o
        sensor.set_override(float(bits))
        self.poll(now)

    def rearm(self, sensor: Sensor, now: float, assertion: int | None = None, deassertion: int | None = None) -> None:
        """Re-arm Sensor Events (section 35.12): clear event status, re-evaluate, re-send.

        None re-arms everything; masks re-arm only those offsets.
        """
        if assertion is None and deassertion is None:
            sensor.clear_event_status()
        else:
            sensor.asserted &= ~(assertion or 0)
            sensor.deasserted &= ~(deassertion or 0)
        self._deliver(sensor.evaluate(self.elapsed(now)))

    def changed(self, sensor: Sensor, now: float) -> None:
        """Thresholds, hysteresis or enables changed: re-evaluate now."""
        self._deliver(sensor.evaluate(self.elapsed(now)))

    # -- time ----------------------------------------------------------------
    def poll(self, now: float) -> None:
        if self.epoch is None:
            self.epoch = now
        elapsed = self.elapsed(now)
        for sensor in self:
            self._deliver(sensor.evaluate(elapsed))

    def next_deadline(self) -> float | None:
        if self.epoch is None:
            return self.bmc.now  # the first poll starts the clock and scans once
        elapsed = self.elapsed(self.bmc.now)
        earliest = None  # asked on every request: a plain loop, no lists
        for sensor in self._sensors.values():
            t = sensor.next_change(elapsed)
            if t is not None and (earliest is None or t < earliest):
                earliest = t
        return None if earliest is None else self.epoch + earliest

    def cold_reset(self) -> None:
        """Section 20.2: sensor functions re-initialise; thresholds and enables from the SDRs."""
        for sensor in self._sensors.values():
            sensor.power_on_defaults()
        self.event_receiver_reset()

    # -- events ---------------------------------------------------------------
    def _deliver(self, records: list[bytes]) -> None:
        if self.receiver_address == 0xFF:
            return
        for record in records:
            deliver_event(self.bmc, record, to_buffer=True)


def deliver_event(bmc: Any, record: bytes, *, to_buffer: bool) -> int | None:
    """Log an event record in the SEL and offer it to the event message buffer.

    Returns the SEL record ID, or None without a SEL.
    """
    record_id = None
    sel = bmc.parts.get("sel")
    if sel is not None:
        record_id = sel.add(record)
    if to_buffer:
        messaging = bmc.parts.get("messaging")
        if messaging is not None:
            messaging.post_event(record)
    return record_id


def create_part(bmc: Any, config: Any) -> Sensors:
    """``bmc.parts["sensors"]`` from ``config.sensors`` (a SensorsConfig, or None for the watchdog alone)."""
    sensors = getattr(config, "sensors", None) if config is not None else None
    return Sensors(bmc, sensors or ())
