"""DCMI basics (DCMI 1.5; Group Extension NetFn 2Ch, group ID DCh).

Every DCMI request and response carries the group extension ID DCh as its
first data byte (IPMI 2.0 section 5.1, "Group Extension"); a request for
another group answers C1h, there being no other group here.

- Get DCMI Capability Info (01h): parameters 1-5, conformance 1.5,
  parameter revision 02h.
- Get Power Reading (02h): from a power sensor (type 08h in watts) when the
  description has one, else ``[bmc.dcmi] power_watts``; min/max/average over
  the samples taken since the BMC started (one per second at most, taken
  whenever the BMC runs); no sensor and no value = measurement not active.
- Get/Set Asset Tag (06h/08h) and Get/Set Management Controller Identifier
  String (09h/0Ah): 16-byte chunks at an offset; both non-volatile (store
  namespace "dcmi").  The asset tag is at most 64 bytes, ASCII or UTF-8 with
  a byte order mark; the ID string at most 63 bytes plus its NUL.
- Get Temperature Readings (10h): the temperature sensors of entity 37h/40h
  (inlet air), 03h/41h (processor), 07h/42h (baseboard), 8 per response.

The state (strings, power samples) and the ``[bmc.dcmi]`` table live here
too, as the part ``bmc.parts["dcmi"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import DescriptionError
from ...tables import Table
from ...store import Store
from ..bmc import CC, command, Bmc, Context, IpmiError, NetFn, Privilege

GROUP_ID = 0xDC
#: DCMI specification conformance 1.5 (major, minor) and parameter revision 02h.
CONFORMANCE = bytes([0x01, 0x05])
PARAMETER_REVISION = 0x02
STORE_NAMESPACE = "dcmi"

CMD_GET_CAPABILITY_INFO = 0x01
CMD_GET_POWER_READING = 0x02
CMD_GET_ASSET_TAG = 0x06
CMD_SET_ASSET_TAG = 0x08
CMD_GET_MC_ID_STRING = 0x09
CMD_SET_MC_ID_STRING = 0x0A
CMD_GET_TEMPERATURE_READINGS = 0x10

CHUNK = 16
ASSET_TAG_MAX = 64
MC_ID_MAX = 63  # 64 bytes with the terminating NUL
UTF8_BOM = b"\xef\xbb\xbf"
#: Get Power Reading modes.
MODE_SYSTEM_POWER_STATISTICS = 0x01
MODE_ENHANCED_STATISTICS = 0x02
POWER_MEASUREMENT_ACTIVE = 0x40
#: Temperature sensors: DCMI entity IDs (DCMI 1.5 table 6-16) -> IPMI entity ID.
TEMPERATURE_ENTITIES = {0x40: 0x37, 0x41: 0x03, 0x42: 0x07, 0x37: 0x37, 0x03: 0x03, 0x07: 0x07}
SENSOR_TYPE_TEMPERATURE = 0x01
SENSOR_TYPE_POWER = 0x08
UNIT_WATTS = 6
READINGS_PER_RESPONSE = 8
#: Seconds between two power samples.
SAMPLE_INTERVAL = 1.0


@dataclass(frozen=True)
class DcmiConfig:
    """The ``[bmc.dcmi]`` table."""

    #: Initial asset tag (later Set Asset Tag writes win).
    asset_tag: str = ""
    #: Initial management controller ID string (from_dict: the machine name).
    mc_id: str | None = None
    #: Power reading when there is no power sensor; None = not measured.
    power_watts: int | None = None
    #: Name of the sensor the power reading comes from; None = the first
    #: power sensor in watts, if any.
    power_sensor: str | None = None

    @classmethod
    def from_dict(cls, d: Any, key: str, *, machine: str = "vhw") -> DcmiConfig:
        """Validate the table; the ID string defaults to the machine name."""
        if d is None:
            return cls(mc_id=machine[:MC_ID_MAX])
        Table(d, key).expect(("asset_tag", "mc_id", "power_watts", "power_sensor"))
        asset_tag = d.get("asset_tag", "")
        if not isinstance(asset_tag, str) or len(encode_text(asset_tag)) > ASSET_TAG_MAX:
            raise DescriptionError(f"{key}.asset_tag", f"must be a string of at most {ASSET_TAG_MAX} bytes")
        mc_id = d.get("mc_id", machine[:MC_ID_MAX])
        if (not isinstance(mc_id, str) or len(mc_id.encode("utf-8")) > MC_ID_MAX):
            raise DescriptionError(f"{key}.mc_id", f"must be a string of at most {MC_ID_MAX} bytes")
        watts = d.get("power_watts")
        if watts is not None and (isinstance(watts, bool) or not isinstance(watts, int) or not 0 <= watts <= 0xFFFF):
            raise DescriptionError(f"{key}.power_watts", "must be 0..65535 watts")
        sensor = d.get("power_sensor")
        if sensor is not None and not isinstance(sensor, str):
            raise DescriptionError(f"{key}.power_sensor", "must be a sensor name")
        return cls(asset_tag, mc_id, watts, sensor)


def encode_text(text: str) -> bytes:
    """ASCII as is; anything else as UTF-8 behind a byte order mark (DCMI asset tag format)."""
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        return UTF8_BOM + text.encode("utf-8")


def decode_text(raw: bytes) -> str:
    return raw[len(UTF8_BOM):].decode("utf-8", "replace") if raw.startswith(UTF8_BOM) else raw.decode("latin-1")


class Dcmi:
    """Asset tag, MC ID string and power statistics of one BMC."""

    def __init__(self, bmc: Any, config: DcmiConfig):
        self.bmc = bmc
        self.config = config
        self.store: Store = bmc.store if bmc.store is not None else Store(None)
        saved = self.store.items(STORE_NAMESPACE)
        self.asset_tag = bytes.fromhex(saved["asset_tag"]) if "asset_tag" in saved else encode_text(config.asset_tag)
        default_id = (config.mc_id if config.mc_id is not None else "vhw").encode("utf-8")[:MC_ID_MAX]
        self.mc_id = bytes.fromhex(saved["mc_id"]) if "mc_id" in saved else default_id
        self._start: float | None = None
        self._last_sample: float | None = None
        self._samples: list[int] = []

    # -- strings -----------------------------------------------------------------
    def write_asset_tag(self, offset: int, chunk: bytes) -> int:
        self.asset_tag = _write(self.asset_tag, offset, chunk, ASSET_TAG_MAX)
        self.store.put(STORE_NAMESPACE, "asset_tag", self.asset_tag.hex())
        return len(self.asset_tag)

    def write_mc_id(self, offset: int, chunk: bytes) -> int:
        """The string ends at the first NUL written (tools send it with the last chunk)."""
        new = _write(self.mc_id, offset, chunk, MC_ID_MAX + 1)
        self.mc_id = new.split(b"\x00", 1)[0]
        self.store.put(STORE_NAMESPACE, "mc_id", self.mc_id.hex())
        return len(self.mc_id)

    # -- power -------------------------------------------------------------------
    def poll(self, now: float) -> None:
        if self._start is None:
            self._start = now
        if self._last_sample is None or now - self._last_sample >= SAMPLE_INTERVAL:
            watts = self.power_now(now)
            self._last_sample = now
            if watts is not None:
                self._samples.append(watts)
                del self._samples[:-3600]  # an hour of samples is plenty

    def power_now(self, now: float) -> int | None:
        sensors = self.bmc.parts.get("sensors")
        sensor = _power_sensor(sensors, self.config.power_sensor) if sensors is not None else None
        if sensor is not None:
            value = sensors.reading(sensor.number, now)
            return None if value is None else max(0, min(0xFFFF, round(value)))
        return self.config.power_watts

    def power_reading(self, now: float) -> tuple[int, int, int, int, int, bool]:
        """(current, minimum, maximum, average, period in ms, measurement active)."""
        self.poll(now)
        current = self.power_now(now)
        if current is None or not self._samples:
            return 0, 0, 0, 0, 0, False
        period_ms = int((now - (self._start or now)) * 1000) & 0xFFFFFFFF
        s = self._samples
        return current, min(s), max(s), round(sum(s) / len(s)), period_ms, True


def _power_sensor(sensors: Any, name: str | None) -> Any:
    if name is not None:
        try:
            return sensors.get(name)
        except KeyError:
            return None
    return next((s for s in sensors.by_type(SENSOR_TYPE_POWER)
                 if s.is_threshold and s.config.unit == UNIT_WATTS), None)


def _write(old: bytes, offset: int, chunk: bytes, limit: int) -> bytes:
    """Write ``chunk`` at ``offset``; the value ends where the write ends."""
    if offset > len(old):
        raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"offset {offset} beyond the {len(old)} bytes written")
    if offset + len(chunk) > limit:
        raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"{offset + len(chunk)} bytes exceed {limit}")
    return old[:offset] + bytes(chunk)


def create_part(bmc: Any, config: Any) -> Dcmi:
    """The part for ``bmc.parts["dcmi"]``; the default ID string is the machine name."""
    return Dcmi(bmc, getattr(config, "dcmi", None) or DcmiConfig())


# -- the commands -----------------------------------------------------------------------


def _dcmi(bmc: Bmc) -> Dcmi:
    return bmc.parts["dcmi"]  # the row\'s ``requires`` checked it is there


def _body(data: bytes, *lengths: int) -> bytes:
    """Check the group ID and the length; returns the bytes after the group ID."""
    if not data or data[0] != GROUP_ID:
        raise IpmiError(CC.INVALID_COMMAND, "not a DCMI request (group extension ID is not DCh)")
    if lengths and len(data) - 1 not in lengths:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data) - 1} bytes after the group ID, want {lengths}")
    return data[1:]


def _read_chunk(value: bytes, offset: int, count: int) -> bytes:
    if count > CHUNK:
        raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"at most {CHUNK} bytes per read, not {count}")
    return bytes([GROUP_ID, len(value)]) + value[offset:offset + count]


def _dcmi_command(cmd: int, privilege: Privilege, name: str, **options):
    return command(NetFn.GROUP_EXTENSION, cmd, privilege=privilege, name=name, **options)


@_dcmi_command(CMD_GET_CAPABILITY_INFO, Privilege.USER, "DCMI Get Capability Info")
def get_capability_info(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """DCMI 1.5 section 6.1.1: conformance, parameter revision, parameter data.

    1: supported capabilities (byte 1 reserved in revision 02h; byte 2 bit 0
       power management/monitoring; byte 3 bit 0 in-band system interface);
    2: mandatory attributes (SEL size and flush policy, asset tag support,
       temperature sampling period);
    3: optional attributes (power management controller: the BMC, 20h);
    4: manageability access (the LAN channels of the channel table, no serial);
    5: enhanced power statistics (no rolling averages: 0 periods).
    """
    (param,) = _body(data, 1)
    if param == 1:
        payload = bytes([0x00, 0x01, 0x01])
    elif param == 2:
        sel = bmc.parts.get("sel")
        entries = min(getattr(sel, "capacity", 0), 0x0FFF)
        # [11:0] entries; [14] entire-SEL flush on rollover no, [15] rollover no:
        # a full SEL drops new events (IPMI 2.0 section 31).
        payload = entries.to_bytes(2, "little") + bytes([0x04, 0x00, 0x01])
    elif param == 3:
        payload = bytes([0x40, 0x00])  # 7-bit address field 20h (the BMC) in [7:1]; channel 0
    elif param == 4:
        channels = bmc.parts.get("channels")
        lan = [n for n in (channels.numbers() if channels is not None else [])
               if not channels.resolve(n, n).sessionless and n != 0x0F]
        payload = bytes([lan[0] if lan else 0xFF, lan[1] if len(lan) > 1 else 0xFF, 0xFF])
    elif param == 5:
        payload = bytes([0x00])
    else:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"DCMI capability parameter {param}")
    return bytes([GROUP_ID]) + CONFORMANCE + bytes([PARAMETER_REVISION]) + payload


@_dcmi_command(CMD_GET_POWER_READING, Privilege.USER, "DCMI Get Power Reading", requires=("dcmi",))
def get_power_reading(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """DCMI 1.5 section 6.6.1: mode 01h (system power statistics; 02h, the
    enhanced statistics, is not offered: CCh), then current, minimum, maximum
    and average watts, the IPMI timestamp, the statistics period in ms and
    the state (bit 6: power measurement active)."""
    mode, _attributes, _reserved = _body(data, 3)
    if mode != MODE_SYSTEM_POWER_STATISTICS:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"power reading mode {mode:#x}")
    current, low, high, average, period_ms, active = _dcmi(bmc).power_reading(bmc.now)
    sel = bmc.parts.get("sel")
    timestamp = sel.time(bmc.now) if sel is not None else int(bmc.now)  # pre-init time: seconds since start
    out = bytearray([GROUP_ID])
    for watts in (current, low, high, average):
        out += watts.to_bytes(2, "little")
    out += (timestamp & 0xFFFFFFFF).to_bytes(4, "little") + period_ms.to_bytes(4, "little")
    out.append(POWER_MEASUREMENT_ACTIVE if active else 0x00)
    return bytes(out)


@_dcmi_command(CMD_GET_ASSET_TAG, Privilege.USER, "DCMI Get Asset Tag", requires=("dcmi",))
def get_asset_tag(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """DCMI 1.5 section 6.4.2: offset, count (<= 16) -> total length, bytes.
    Count 0 just reports the length (ipmitool's first read)."""
    offset, count = _body(data, 2)
    return _read_chunk(_dcmi(bmc).asset_tag, offset, count)


@_dcmi_command(CMD_SET_ASSET_TAG, Privilege.ADMINISTRATOR, "DCMI Set Asset Tag", requires=("dcmi",))
def set_asset_tag(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """DCMI 1.5 section 6.4.3: offset, count, bytes -> total length.  The tag
    ends where the write ends, so a shorter new tag written from offset 0
    replaces a longer old one; 64 bytes at most (C9h beyond)."""
    body = _body(data)
    if len(body) < 2 or len(body) - 2 != body[1] or body[1] > CHUNK:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, "offset, count (<= 16) and count bytes")
    return bytes([GROUP_ID, _dcmi(bmc).write_asset_tag(body[0], body[2:])])


@_dcmi_command(CMD_GET_MC_ID_STRING, Privilege.USER, "DCMI Get Management Controller Identifier String", requires=("dcmi",))
def get_mc_id_string(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """DCMI 1.5 section 6.4.6: offset, count (<= 16) -> string length
    (without the NUL), bytes."""
    offset, count = _body(data, 2)
    return _read_chunk(_dcmi(bmc).mc_id, offset, count)


@_dcmi_command(CMD_SET_MC_ID_STRING, Privilege.ADMINISTRATOR, "DCMI Set Management Controller Identifier String", requires=("dcmi",))
def set_mc_id_string(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """DCMI 1.5 section 6.4.7: offset, count, bytes (the last chunk carries
    the NUL) -> the string's length; 64 bytes with the NUL at most."""
    body = _body(data)
    if len(body) < 2 or len(body) - 2 != body[1] or body[1] > CHUNK:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, "offset, count (<= 16) and count bytes")
    return bytes([GROUP_ID, _dcmi(bmc).write_mc_id(body[0], body[2:])])


@_dcmi_command(CMD_GET_TEMPERATURE_READINGS, Privilege.USER, "DCMI Get Temperature Readings")
def get_temperature_readings(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """DCMI 1.5 section 6.7.3: sensor type 01h, entity ID, entity instance
    (00h = all), instance start (for "all") -> total instances, how many
    follow (<= 8), then per reading a signed-magnitude degree byte and the
    entity instance.  Unreadable sensors are left out."""
    sensor_type, entity, instance, start = _body(data, 4)
    if sensor_type != SENSOR_TYPE_TEMPERATURE:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"sensor type {sensor_type:#x} (only 01h, temperature)")
    if entity not in TEMPERATURE_ENTITIES:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"entity {entity:#x}")
    sensors = bmc.parts.get("sensors")
    found = []
    for s in (sensors.by_type(SENSOR_TYPE_TEMPERATURE) if sensors is not None else []):
        if s.is_threshold and s.config.entity_id == TEMPERATURE_ENTITIES[entity]:
            found.append((s.config.entity_instance, sensors.reading(s.number, bmc.now)))
    found.sort(key=lambda item: item[0])
    if instance:
        chosen = [f for f in found if f[0] == instance]
    else:
        chosen = [f for f in found if f[0] >= start][:READINGS_PER_RESPONSE]
    out = bytearray([GROUP_ID, len(found), 0])
    for inst, value in chosen:
        if value is None:
            continue
        degrees = max(-127, min(127, round(value)))
        out += bytes([(0x80 | -degrees) if degrees < 0 else degrees, inst])
        out[2] += 1
    return bytes(out)
