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

The state (strings, power samples) and the ``[bmc.dcmi]`` table are the
part ``vhw.ipmi.parts.dcmi`` (``bmc.parts["dcmi"]``).
"""

from __future__ import annotations

from ..core.bmc import CC, Bmc, Context, IpmiError, NetFn, Privilege, command
from ..parts.dcmi import (
    CHUNK,
    CMD_GET_ASSET_TAG,
    CMD_GET_CAPABILITY_INFO,
    CMD_GET_MC_ID_STRING,
    CMD_GET_POWER_READING,
    CMD_GET_TEMPERATURE_READINGS,
    CMD_SET_ASSET_TAG,
    CMD_SET_MC_ID_STRING,
    CONFORMANCE,
    Dcmi,
    GROUP_ID,
    MODE_SYSTEM_POWER_STATISTICS,
    PARAMETER_REVISION,
    POWER_MEASUREMENT_ACTIVE,
    READINGS_PER_RESPONSE,
    SENSOR_TYPE_TEMPERATURE,
    TEMPERATURE_ENTITIES,
)


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
        lan = [] if channels is None else [n for n in channels.numbers()
                                           if n != 0x0F and not channels.resolve(n, n).sessionless]
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
    if sensors is not None:
        for s in sensors.by_type(SENSOR_TYPE_TEMPERATURE):
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
