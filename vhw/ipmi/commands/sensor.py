"""Sensor/Event commands (NetFn 04h, IPMI 2.0 chapters 29 and 35).

The sensors are ``bmc.parts["sensors"]`` (vhw.ipmi.parts.sensors), the device SDRs
``bmc.parts["sdr"]`` (vhw.ipmi.parts.sdr).  A sensor number nobody has answers CBh.

python-ipmi's definitions are used where they match the spec; these are
defined here instead (not registered in python-ipmi's registry):

- Get Sensor Reading response: python-ipmi names bits 7/6 of byte 3
  "event_message_disabled"/"sensor_scanning_disabled", but a 1 there means
  *enabled* (table 35-15); the local names say what the bits mean.
- Re-arm Sensor Events request: bytes 3-6 are optional (table 35-16);
  python-ipmi requires them, so a 2-byte re-arm would get C7h.
- Get Device SDR Info request: the "operation" byte is optional (table 35-2);
  python-ipmi has no fields, so the dispatcher would refuse it with C8h.
- Set/Get Event Receiver: the address is an 8-bit slave address where FFh
  disables event generation (table 29-1); python-ipmi splits off bit 0.
- Get Sensor Reading Factors and Get Sensor Event Status: missing.
- Platform Event Message: python-ipmi never decodes the generator ID byte
  the system interface carries; the handler parses the bytes itself.
"""

from __future__ import annotations

from pyipmi.msgs import sensor as ps
from pyipmi.msgs.message import Bitfield, CompletionCode, Message, Optional, UnsignedInt

from ..core.bmc import CC, command, Context, IpmiError, NetFn, Privilege
from ..parts.sensors import THRESHOLDS, Sensor, Sensors, deliver_event, event_record

CMD_SET_EVENT_RECEIVER = 0x00
CMD_GET_EVENT_RECEIVER = 0x01
CMD_PLATFORM_EVENT = 0x02
CMD_GET_DEVICE_SDR_INFO = 0x20
CMD_GET_DEVICE_SDR = 0x21
CMD_RESERVE_DEVICE_SDR_REPOSITORY = 0x22
CMD_GET_SENSOR_READING_FACTORS = 0x23
CMD_SET_SENSOR_HYSTERESIS = 0x24
CMD_GET_SENSOR_HYSTERESIS = 0x25
CMD_SET_SENSOR_THRESHOLD = 0x26
CMD_GET_SENSOR_THRESHOLD = 0x27
CMD_SET_SENSOR_EVENT_ENABLE = 0x28
CMD_GET_SENSOR_EVENT_ENABLE = 0x29
CMD_REARM_SENSOR_EVENTS = 0x2A
CMD_GET_SENSOR_EVENT_STATUS = 0x2B
CMD_GET_SENSOR_READING = 0x2D

SE = NetFn.SENSOR_EVENT

#: Generator ID for a 7-byte Platform Event from the system interface (no
#: generator byte, as ipmitool sends it, ipmitool issue #111): system
#: management software ID 41h (table 5-4).
SYSTEM_SOFTWARE_GENERATOR = 0x41


# -- messages python-ipmi lacks or gets wrong ------------------------------------------
def _sensor_flags(name: str) -> Bitfield:
    """Byte 2 of Get Sensor Reading / Get Sensor Event Status (tables 35-15, 35-17)."""
    return Bitfield(
        name,
        1,
        Bitfield.ReservedBit(5, 0),
        Bitfield.Bit("reading_unavailable", 1, 0),
        Bitfield.Bit("scanning_enabled", 1, 0),
        Bitfield.Bit("event_messages_enabled", 1, 0),
    )


class GetSensorReadingRsp(Message):
    """Get Sensor Reading, table 35-15: raw reading, flags, then state bytes."""

    __netfn__ = SE | 1
    __cmdid__ = CMD_GET_SENSOR_READING
    __fields__ = (
        CompletionCode(),
        UnsignedInt("sensor_reading", 1, 0),
        _sensor_flags("flags"),
        Optional(UnsignedInt("states1", 1)),
        Optional(UnsignedInt("states2", 1)),
    )


class RearmSensorEventsReq(Message):
    """Re-arm Sensor Events, table 35-16: [7] of byte 2 = 0 re-arms all; masks optional."""

    __netfn__ = SE
    __cmdid__ = CMD_REARM_SENSOR_EVENTS
    __fields__ = (
        UnsignedInt("sensor_number", 1),
        Bitfield("re_arm", 1, Bitfield.ReservedBit(7, 0), Bitfield.Bit("selected_only", 1, 0)),
        Optional(UnsignedInt("assertion_low", 1)),
        Optional(UnsignedInt("assertion_high", 1)),
        Optional(UnsignedInt("deassertion_low", 1)),
        Optional(UnsignedInt("deassertion_high", 1)),
    )


class GetSensorEventStatusReq(Message):
    __netfn__ = SE
    __cmdid__ = CMD_GET_SENSOR_EVENT_STATUS
    __fields__ = (UnsignedInt("sensor_number", 1),)


class GetSensorEventStatusRsp(Message):
    """Get Sensor Event Status, table 35-17."""

    __netfn__ = SE | 1
    __cmdid__ = CMD_GET_SENSOR_EVENT_STATUS
    __fields__ = (
        CompletionCode(),
        _sensor_flags("flags"),
        UnsignedInt("assertion_low", 1, 0),
        UnsignedInt("assertion_high", 1, 0),
        UnsignedInt("deassertion_low", 1, 0),
        UnsignedInt("deassertion_high", 1, 0),
    )


class GetSensorReadingFactorsReq(Message):
    __netfn__ = SE
    __cmdid__ = CMD_GET_SENSOR_READING_FACTORS
    __fields__ = (UnsignedInt("sensor_number", 1), UnsignedInt("reading", 1))


class GetSensorReadingFactorsRsp(Message):
    """Get Sensor Reading Factors, table 35-6: next reading, then SDR bytes 25-30."""

    __netfn__ = SE | 1
    __cmdid__ = CMD_GET_SENSOR_READING_FACTORS
    __fields__ = (
        CompletionCode(),
        UnsignedInt("next_reading", 1, 0),
        UnsignedInt("m_ls", 1, 0),
        UnsignedInt("m_ms_tolerance", 1, 0),
        UnsignedInt("b_ls", 1, 0),
        UnsignedInt("b_ms_accuracy", 1, 0),
        UnsignedInt("accuracy_direction", 1, 0),
        UnsignedInt("exponents", 1, 0),
    )


class GetDeviceSdrInfoReq(Message):
    """Get Device SDR Info, table 35-2: optional byte, [0] 1b = SDR count, 0b = sensor count."""

    __netfn__ = SE
    __cmdid__ = CMD_GET_DEVICE_SDR_INFO
    __fields__ = (Optional(UnsignedInt("operation", 1)),)


class SetEventReceiverReq(Message):
    """Set Event Receiver, table 29-1: 8-bit slave address (FFh = disable), LUN."""

    __netfn__ = SE
    __cmdid__ = CMD_SET_EVENT_RECEIVER
    __fields__ = (
        UnsignedInt("address", 1),
        Bitfield("receiver", 1, Bitfield.Bit("lun", 2, 0), Bitfield.ReservedBit(6, 0)),
    )


class GetEventReceiverReq(Message):
    __netfn__ = SE
    __cmdid__ = CMD_GET_EVENT_RECEIVER
    __fields__ = ()


class GetEventReceiverRsp(Message):
    __netfn__ = SE | 1
    __cmdid__ = CMD_GET_EVENT_RECEIVER
    __fields__ = (
        CompletionCode(),
        UnsignedInt("address", 1, 0x20),
        Bitfield("receiver", 1, Bitfield.Bit("lun", 2, 0), Bitfield.ReservedBit(6, 0)),
    )


class EmptyRsp(Message):
    __fields__ = (CompletionCode(),)


# -- helpers ------------------------------------------------------------------------------
def _sensors(bmc) -> Sensors:
    return bmc.parts["sensors"]  # the row\'s ``requires`` checked it is there


def _sensor(bmc, ctx: Context, number: int) -> Sensor:
    sensor = _sensors(bmc).find(number) if ctx.lun == 0 else None
    if sensor is None:
        raise IpmiError(CC.NOT_PRESENT, f"no sensor {number:#04x} on LUN {ctx.lun}")
    return sensor


def _threshold_sensor(bmc, ctx: Context, number: int) -> Sensor:
    sensor = _sensor(bmc, ctx, number)
    if not sensor.is_threshold:
        raise IpmiError(CC.ILLEGAL_FOR_SENSOR_OR_RECORD, f"sensor {number:#04x} is discrete")
    return sensor


def _sdr_part(bmc):
    return bmc.parts["sdr"]  # the row\'s ``requires`` checked it is there


def _fill_flags(flags, sensor: Sensor, unavailable: bool) -> None:
    flags.event_messages_enabled = int(sensor.events_enabled)
    flags.scanning_enabled = int(sensor.scanning_enabled)
    flags.reading_unavailable = int(unavailable)


# -- event receiver and platform events (chapter 29) -----------------------------------
@command(SE, CMD_SET_EVENT_RECEIVER, privilege=Privilege.ADMINISTRATOR, request=SetEventReceiverReq, requires=("sensors",))
def set_event_receiver(bmc, ctx: Context, req) -> None:
    """Section 29.1: where the BMC sends its sensors' events; FFh turns them off."""
    sensors = _sensors(bmc)
    sensors.receiver_address = req.address
    sensors.receiver_lun = req.receiver.lun
    return None


@command(SE, CMD_GET_EVENT_RECEIVER, privilege=Privilege.USER, request=GetEventReceiverReq,
         response=GetEventReceiverRsp, requires=("sensors",))
def get_event_receiver(bmc, ctx: Context, req) -> Message:
    """Section 29.2."""
    sensors = _sensors(bmc)
    rsp = GetEventReceiverRsp()
    rsp.address = sensors.receiver_address
    rsp.receiver.lun = sensors.receiver_lun
    return rsp


@command(SE, CMD_PLATFORM_EVENT, privilege=Privilege.OPERATOR)
def platform_event(bmc, ctx: Context, data: bytes) -> None:
    """Section 29.3, table 29-5: an event from outside the BMC, logged in the SEL.

    From the system interface the request starts with the generator ID (8
    bytes); ipmitool leaves it out (7 bytes, issue #111), and then it is
    system management software (41h).  On other channels the generator is
    the requester (slave address or software ID, channel, LUN) and event
    data 2 and 3 may be left off (FFh).  Events system software sends are
    not echoed back into its own event message buffer; events from other
    channels are offered to it like the BMC's own.
    """
    if ctx.is_system_interface:
        if len(data) == 8:
            generator, body = data[0], data[1:]
        elif len(data) == 7:
            generator, body = SYSTEM_SOFTWARE_GENERATOR, data
        else:
            raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data)} bytes; 8 (or 7 without generator ID)")
        generator_id = generator
    else:
        if not 5 <= len(data) <= 7:
            raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data)} bytes; 5..7")
        body = data + b"\xff" * (7 - len(data))
        generator_id = (ctx.requester_address & 0xFF) | ((ctx.channel & 0x0F) << 12) | ((ctx.requester_lun & 3) << 8)
    evm_rev, sensor_type, number, dir_type, d1, d2, d3 = body
    if evm_rev not in (0x03, 0x04):
        raise IpmiError(CC.INVALID_DATA_FIELD, f"event message revision {evm_rev:#04x}")
    record = event_record(sensor_type, number, dir_type & 0x7F, bool(dir_type & 0x80), d1, d2, d3,
                          generator=generator_id, evm_rev=evm_rev)
    deliver_event(bmc, record, to_buffer=not ctx.is_system_interface)
    return None


# -- device SDRs (sections 35.2-35.4) ------------------------------------------------------
@command(SE, CMD_GET_DEVICE_SDR_INFO, privilege=Privilege.USER, request=GetDeviceSdrInfoReq,
         response=ps.GetDeviceSdrInfoRsp, requires=("sdr", "sensors"))
def get_device_sdr_info(bmc, ctx: Context, req) -> Message:
    """Section 35.2: sensors (or SDRs) on LUN 0; static population, so no timestamp."""
    sdr = _sdr_part(bmc)
    rsp = ps.GetDeviceSdrInfoRsp()
    count_sdrs = req.operation is not None and req.operation & 1
    rsp.number_of_sensors = len(sdr.device_records) if count_sdrs else len(_sensors(bmc))
    rsp.flags.lun0_has_sensors = 1
    rsp.flags.lun1_has_sensors = 0
    rsp.flags.lun2_has_sensors = 0
    rsp.flags.lun3_has_sensors = 0
    rsp.flags.dynamic_population = 0
    rsp.sensor_population_change = None
    return rsp


@command(SE, CMD_GET_DEVICE_SDR, privilege=Privilege.USER, request=ps.GetDeviceSdrReq,
         response=ps.GetDeviceSdrRsp, requires=("sdr",))
def get_device_sdr(bmc, ctx: Context, req) -> Message:
    """Section 35.3: like Get SDR, over the device's own sensor records."""
    next_id, data = _sdr_part(bmc).read_device(req.reservation_id, req.record_id, req.offset, req.bytes_to_read)
    rsp = ps.GetDeviceSdrRsp()
    rsp.next_record_id = next_id
    rsp.record_data = data
    return rsp


@command(SE, CMD_RESERVE_DEVICE_SDR_REPOSITORY, privilege=Privilege.USER,
         request=ps.ReserveDeviceSdrRepositoryReq, response=ps.ReserveDeviceSdrRepositoryRsp, requires=("sdr",))
def reserve_device_sdr_repository(bmc, ctx: Context, req) -> Message:
    """Section 35.4."""
    rsp = ps.ReserveDeviceSdrRepositoryRsp()
    rsp.reservation_id = _sdr_part(bmc).device_reservations.reserve()
    return rsp


# -- sensor commands (sections 35.5-35.14) ----------------------------------------------------
@command(SE, CMD_GET_SENSOR_READING_FACTORS, privilege=Privilege.USER,
         request=GetSensorReadingFactorsReq, response=GetSensorReadingFactorsRsp, requires=("sensors",))
def get_sensor_reading_factors(bmc, ctx: Context, req) -> Message:
    """Section 35.5: vhw sensors are linear, one set of factors for every reading,
    so "next reading" echoes the one asked about."""
    conv = _threshold_sensor(bmc, ctx, req.sensor_number).conversion
    m10, b10 = conv.m & 0x3FF, conv.b & 0x3FF
    rsp = GetSensorReadingFactorsRsp()
    rsp.next_reading = req.reading
    rsp.m_ls, rsp.m_ms_tolerance = m10 & 0xFF, (m10 >> 8) << 6
    rsp.b_ls, rsp.b_ms_accuracy = b10 & 0xFF, (b10 >> 8) << 6
    rsp.accuracy_direction = 0
    rsp.exponents = ((conv.k2 & 0x0F) << 4) | (conv.k1 & 0x0F)
    return rsp


@command(SE, CMD_SET_SENSOR_HYSTERESIS, privilege=Privilege.OPERATOR,
         request=ps.SetSensorHysteresisReq, response=ps.SetSensorHysteresisRsp, requires=("sensors",))
def set_sensor_hysteresis(bmc, ctx: Context, req) -> None:
    """Section 35.6: raw counts; byte 2 (mask) is reserved, FFh."""
    sensor = _threshold_sensor(bmc, ctx, req.sensor_number)
    if not sensor.config.thresholds:
        raise IpmiError(CC.ILLEGAL_FOR_SENSOR_OR_RECORD, "sensor has no thresholds")
    sensor.hysteresis_raw = (req.positive_going_hysteresis, req.negative_going_hysteresis)
    _sensors(bmc).changed(sensor, bmc.now)
    return None


@command(SE, CMD_GET_SENSOR_HYSTERESIS, privilege=Privilege.USER,
         request=ps.GetSensorHysteresisReq, response=ps.GetSensorHysteresisRsp, requires=("sensors",))
def get_sensor_hysteresis(bmc, ctx: Context, req) -> Message:
    """Section 35.7."""
    sensor = _threshold_sensor(bmc, ctx, req.sensor_number)
    rsp = ps.GetSensorHysteresisRsp()
    rsp.positive_going_hysteresis, rsp.negative_going_hysteresis = sensor.hysteresis_raw
    return rsp


@command(SE, CMD_SET_SENSOR_THRESHOLD, privilege=Privilege.OPERATOR,
         request=ps.SetSensorThresholdsReq, response=ps.SetSensorThresholdsRsp, requires=("sensors",))
def set_sensor_thresholds(bmc, ctx: Context, req) -> None:
    """Section 35.8: only thresholds the SDR marks settable (else CCh); the
    result must keep lnr <= lc <= lnc < unc <= uc <= unr (else CCh)."""
    sensor = _threshold_sensor(bmc, ctx, req.sensor_number)
    wanted = {t: getattr(req.threshold, _PYIPMI_NAME[t]) for t in THRESHOLDS if getattr(req.set_mask, _PYIPMI_NAME[t])}
    unsettable = [t for t in wanted if t not in sensor.config.settable]
    if unsettable:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"threshold(s) {unsettable} not settable")
    candidate = {**sensor.thresholds_raw, **wanted}
    if not sensor.thresholds_in_order(candidate):
        raise IpmiError(CC.INVALID_DATA_FIELD, f"thresholds out of order: {candidate}")
    sensor.set_thresholds(wanted)
    _sensors(bmc).changed(sensor, bmc.now)
    return None


#: python-ipmi's names for the thresholds (its "cr" is our "c").
_PYIPMI_NAME = {"lnc": "lnc", "lc": "lcr", "lnr": "lnr", "unc": "unc", "uc": "ucr", "unr": "unr"}


@command(SE, CMD_GET_SENSOR_THRESHOLD, privilege=Privilege.USER,
         request=ps.GetSensorThresholdsReq, response=ps.GetSensorThresholdsRsp, requires=("sensors",))
def get_sensor_thresholds(bmc, ctx: Context, req) -> Message:
    """Section 35.9: readable mask and raw values; unreadable ones read 0."""
    sensor = _threshold_sensor(bmc, ctx, req.sensor_number)
    rsp = ps.GetSensorThresholdsRsp()
    for t in THRESHOLDS:
        raw = sensor.thresholds_raw.get(t)
        setattr(rsp.readable_mask, _PYIPMI_NAME[t], int(raw is not None))
        setattr(rsp.threshold, _PYIPMI_NAME[t], raw or 0)
    return rsp


@command(SE, CMD_SET_SENSOR_EVENT_ENABLE, privilege=Privilege.OPERATOR,
         request=ps.SetSensorEventEnableReq, response=ps.SetSensorEventEnableRsp, requires=("sensors",))
def set_sensor_event_enable(bmc, ctx: Context, req) -> None:
    """Section 35.10: [7] all event messages, [6] scanning, [5:4] 01b enable /
    10b disable the selected events (11b reserved: CCh).  Events the SDR does
    not list stay off."""
    sensor = _sensor(bmc, ctx, req.sensor_number)
    action = req.enable.config
    if action == 0b11:
        raise IpmiError(CC.INVALID_DATA_FIELD, "event enable action 11b is reserved")
    was_scanning = sensor.scanning_enabled
    sensor.events_enabled = bool(req.enable.event_message)
    sensor.scanning_enabled = bool(req.enable.sensor_scanning)
    if action:
        assertion = (req.byte3 or 0) | (req.byte4 or 0) << 8
        deassertion = (req.byte5 or 0) | (req.byte6 or 0) << 8
        if action == 0b01:
            sensor.assertion_enabled |= assertion & sensor.config.assertion_mask
            sensor.deassertion_enabled |= deassertion & sensor.config.deassertion_mask
        else:
            sensor.assertion_enabled &= ~assertion
            sensor.deassertion_enabled &= ~deassertion
    if sensor.scanning_enabled and not was_scanning:
        _sensors(bmc).changed(sensor, bmc.now)
    return None


@command(SE, CMD_GET_SENSOR_EVENT_ENABLE, privilege=Privilege.USER,
         request=ps.GetSensorEventEnableReq, response=ps.GetSensorEventEnableRsp, requires=("sensors",))
def get_sensor_event_enable(bmc, ctx: Context, req) -> Message:
    """Section 35.11."""
    sensor = _sensor(bmc, ctx, req.sensor_number)
    rsp = ps.GetSensorEventEnableRsp()
    rsp.enabled.event_message = int(sensor.events_enabled)
    rsp.enabled.sensor_scanning = int(sensor.scanning_enabled)
    rsp.byte3, rsp.byte4 = sensor.assertion_enabled & 0xFF, sensor.assertion_enabled >> 8 & 0x7F
    rsp.byte5, rsp.byte6 = sensor.deassertion_enabled & 0xFF, sensor.deassertion_enabled >> 8 & 0x7F
    return rsp


@command(SE, CMD_REARM_SENSOR_EVENTS, privilege=Privilege.OPERATOR,
         request=RearmSensorEventsReq, response=EmptyRsp, requires=("sensors",))
def rearm_sensor_events(bmc, ctx: Context, req) -> None:
    """Section 35.12: clear the event status and re-send events for conditions still present."""
    sensor = _sensor(bmc, ctx, req.sensor_number)
    if req.re_arm.selected_only:
        assertion = (req.assertion_low or 0) | (req.assertion_high or 0) << 8
        deassertion = (req.deassertion_low or 0) | (req.deassertion_high or 0) << 8
        _sensors(bmc).rearm(sensor, bmc.now, assertion, deassertion)
    else:
        _sensors(bmc).rearm(sensor, bmc.now)
    return None


@command(SE, CMD_GET_SENSOR_EVENT_STATUS, privilege=Privilege.USER,
         request=GetSensorEventStatusReq, response=GetSensorEventStatusRsp, requires=("sensors",))
def get_sensor_event_status(bmc, ctx: Context, req) -> Message:
    """Section 35.13: which events are asserted (and were deasserted) since the last re-arm."""
    sensors = _sensors(bmc)
    sensor = _sensor(bmc, ctx, req.sensor_number)
    elapsed = sensors.elapsed(bmc.now)
    rsp = GetSensorEventStatusRsp()
    unavailable = sensor.is_threshold and sensor.raw(elapsed) is None
    _fill_flags(rsp.flags, sensor, unavailable or not sensor.scanning_enabled)
    rsp.assertion_low, rsp.assertion_high = sensor.asserted & 0xFF, sensor.asserted >> 8 & 0x7F
    rsp.deassertion_low, rsp.deassertion_high = sensor.deasserted & 0xFF, sensor.deasserted >> 8 & 0x7F
    return rsp


@command(SE, CMD_GET_SENSOR_READING, privilege=Privilege.USER,
         request=ps.GetSensorReadingReq, response=GetSensorReadingRsp, requires=("sensors",))
def get_sensor_reading(bmc, ctx: Context, req) -> Message:
    """Section 35.14, table 35-15.

    Threshold sensors: raw reading, flags, byte 4 = C0h | "at or past"
    bits per threshold.  Discrete sensors: reading byte 0, states 0-7,
    80h | states 8-14.  No value (or scanning off) sets "reading unavailable".
    """
    sensors = _sensors(bmc)
    sensor = _sensor(bmc, ctx, req.sensor_number)
    elapsed = sensors.elapsed(bmc.now)
    rsp = GetSensorReadingRsp()
    if sensor.is_threshold:
        raw = sensor.raw(elapsed)
        unavailable = raw is None or not sensor.scanning_enabled
        rsp.sensor_reading = 0 if unavailable else raw
        rsp.states1 = 0xC0 | (0 if unavailable else sensor.comparison_status(raw))
    else:
        unavailable = not sensor.scanning_enabled
        state = sensor.state(elapsed)
        rsp.sensor_reading = 0
        rsp.states1 = state & 0xFF
        rsp.states2 = 0x80 | (state >> 8 & 0x7F)
    _fill_flags(rsp.flags, sensor, unavailable)
    return rsp

