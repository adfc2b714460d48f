"""Sensors: description, linearisation, thresholds and events, Sensor/Event NetFn commands (IPMI 2.0 ch. 29, 35, 36)."""

from __future__ import annotations

import struct

import pytest
from pyipmi.errors import DecodingError
from pyipmi.msgs import sensor as pyipmi_sensor

import vhw.ipmi.commands  # noqa: F401  (registers the handlers)
from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import CC, Context, NetFn, Privilege
from vhw.ipmi.commands.sensor import GetSensorReadingRsp
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.parts.sensors import Conversion, SensorsConfig

SE = NetFn.SENSOR_EVENT
LAN_OPERATOR = Context(channel=1, privilege=Privilege.OPERATOR, interface="lan", session_id=7,
                       requester_address=0x81, requester_lun=0)

CPU = {
    "name": "CPU Temp", "number": 0x10, "type": "temperature", "range": [0, 127.5],
    "thresholds": {"lnc": 10, "unc": 80, "uc": 90, "unr": 100}, "hysteresis": 2.0, "value": 40.0,
}
CPU_NO_VALUE = {k: v for k, v in CPU.items() if k != "value"}
INTRUSION = {"name": "Intrusion", "number": 0x20, "type": "physical_security", "state": [],
             "deassertion_events": [0]}


class FakeSel:
    """Records what the sensors log (the real SEL is another part's business)."""

    def __init__(self):
        self.records: list[bytes] = []

    def add(self, record: bytes) -> int:
        self.records.append(bytes(record))
        return len(self.records)


def make_bmc(*sensors, fake_sel=True):
    bmc = create_bmc(BmcConfig.from_dict({"sensors": [dict(s) for s in sensors]}))
    if fake_sel:
        bmc.parts["sel"] = FakeSel()
    bmc.parts["messaging"].set_enables(0x0C)  # event message buffer on (table 22-2)
    bmc.poll(0.0)
    return bmc


SYSTEM_INTERFACE = Context()  # frozen: safe to share as a default


def call(bmc, cmd, data=b"", now=None, ctx=SYSTEM_INTERFACE, netfn=SE):
    return bmc.handle(netfn, cmd, bytes(data), ctx, bmc.now if now is None else now)


def events(bmc) -> list[bytes]:
    return bmc.parts["sel"].records


# -- the description ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, key",
    [
        ({"thresholds": {"unc": 80, "uc": 70}}, "bmc.sensors[0].thresholds.uc"),
        ({"thresholds": {"lnc": 50, "unc": 50}}, "bmc.sensors[0].thresholds.unc"),
        ({"number": 1}, "bmc.sensors[0].number"),
        ({"number": 255}, "bmc.sensors[0].number"),
        ({"name": "A very long sensor name"}, "bmc.sensors[0].name"),
        ({"colour": "red"}, "bmc.sensors[0].colour"),
        ({"type": "toaster"}, "bmc.sensors[0].type"),
        ({"value": 400}, "bmc.sensors[0].value"),
        ({"timeline": [[0, 40], [0, 50]], "value": None}, "bmc.sensors[0].timeline[1]"),
        ({"m": 2}, "bmc.sensors[0].m"),
        ({"hysteresis": -1}, "bmc.sensors[0].hysteresis"),
        ({"settable_thresholds": ["lnr"]}, "bmc.sensors[0].settable_thresholds"),
    ],
)
def test_description_errors_name_the_key(change, key):
    item = {**CPU, **change}
    item = {k: v for k, v in item.items() if v is not None}
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"sensors": [item]})
    assert e.value.args[0] == key or key in str(e.value)


def test_duplicate_numbers_and_discrete_offsets_are_refused():
    with pytest.raises(DescriptionError, match=r"bmc.sensors\[1\].number"):
        SensorsConfig.from_list([CPU, {**INTRUSION, "number": CPU["number"]}], "bmc.sensors")
    with pytest.raises(DescriptionError, match=r"bmc.sensors\[0\].state"):
        SensorsConfig.from_list([{**INTRUSION, "state": [9]}], "bmc.sensors")


def test_watchdog_sensor_always_exists():
    """The BMC's watchdog sensor (number 01h, type 23h) is there with no description at all."""
    bmc = create_bmc(BmcConfig.from_dict({}))
    wd = bmc.parts["sensors"].get(1)
    assert (wd.sensor_type, wd.config.reading_type, wd.is_threshold) == (0x23, 0x6F, False)


# -- linearisation (section 36.3) --------------------------------------------------------------


@pytest.mark.parametrize("lo, hi", [(0, 127.5), (-40, 125), (0, 15), (0, 15000), (0.5, 3.3), (100, 1200), (0, 1)])
def test_range_linearisation_round_trips_within_one_lsb(lo, hi):
    """ipmitool's y = (M*x + B*10^K1) * 10^K2 of the raw byte gives back the value within one LSB."""
    conv = Conversion.for_range(lo, hi)
    assert -512 <= conv.m <= 511 and conv.m > 0 and -512 <= conv.b <= 511
    assert -8 <= conv.k1 <= 7 and -8 <= conv.k2 <= 7
    lsb = conv.m * 10.0**conv.k2
    assert (conv.m * 0 + conv.b * 10.0**conv.k1) * 10.0**conv.k2 <= lo + 1e-9
    assert (conv.m * 255 + conv.b * 10.0**conv.k1) * 10.0**conv.k2 >= hi - 1e-9
    assert lsb <= 2 * (hi - lo) / 255 + 1e-12  # fine enough: at most twice the ideal step
    for i in range(101):
        value = lo + (hi - lo) * i / 100
        x = conv.to_raw(value)
        y = (conv.m * x + conv.b * 10.0**conv.k1) * 10.0**conv.k2
        assert abs(y - value) <= lsb + 1e-9, (value, x, y)


# -- thresholds, hysteresis, events (sections 29.7, 36.2) -------------------------------------


def test_crossing_with_hysteresis_gives_exactly_one_event_each_way():
    """Table 29-6: threshold event data 1 = 01b/01b in [7:4] + offset; data 2 trigger reading, 3 threshold."""
    bmc = make_bmc(CPU)
    sensors = bmc.parts["sensors"]
    conv = sensors.get("CPU Temp").conversion
    assert events(bmc) == []
    sensors.set_value("CPU Temp", 81.0, 1.0)
    assert len(events(bmc)) == 1
    # wobble around the threshold inside the 2-degree hysteresis: nothing new
    for t, v in ((2.0, 79.0), (3.0, 81.0), (4.0, 78.5), (5.0, 80.0)):
        sensors.set_value("CPU Temp", v, t)
    assert len(events(bmc)) == 1
    sensors.set_value("CPU Temp", 77.0, 6.0)  # below 80 - 2: deasserted
    assert len(events(bmc)) == 2
    rid, rtype, ts, gen, evm, stype, num, dirtype, d1, d2, d3 = struct.unpack("<HBIHBBBBBBB", events(bmc)[0])
    assert (rtype, gen, evm, stype, num) == (0x02, 0x0020, 0x04, 0x01, 0x10)
    assert dirtype == 0x01  # assertion, threshold event/reading type
    assert d1 == 0x50 | 0x07  # upper non-critical going high (table 42-2 offset 07h)
    assert (d2, d3) == (conv.to_raw(81.0), conv.to_raw(80.0))
    deassert = events(bmc)[1]
    assert deassert[12] == 0x81 and deassert[13] == 0x57  # deassertion: dir bit 7
    # the event message buffer got the assertion (and attention was raised)
    assert bmc.parts["messaging"].read_event() == events(bmc)[0]


def test_jump_past_several_thresholds_asserts_each_once_mildest_first():
    bmc = make_bmc(CPU)
    bmc.parts["sensors"].set_value(0x10, 120.0, 1.0)
    assert [r[13] & 0x0F for r in events(bmc)] == [0x07, 0x09, 0x0B]
    bmc.parts["sensors"].set_value(0x10, 121.0, 2.0)
    assert len(events(bmc)) == 3


def test_lower_threshold_going_low():
    bmc = make_bmc(CPU)
    bmc.parts["sensors"].set_value(0x10, 5.0, 1.0)
    assert [r[13] for r in events(bmc)] == [0x50 | 0x00]


def test_value_past_a_threshold_at_start_is_reported_by_the_first_scan():
    bmc = make_bmc({**CPU, "value": 95.0})
    assert [r[13] & 0x0F for r in events(bmc)] == [0x07, 0x09]


def test_step_timeline_crosses_on_time_without_requests():
    """The timeline counts from the BMC's first poll; next_deadline() brings the runner back in time."""
    item = CPU_NO_VALUE | {"timeline": [[0, 40.0], [30, 85.0]]}
    bmc = create_bmc(BmcConfig.from_dict({"sensors": [item]}))
    bmc.parts["sel"] = FakeSel()
    bmc.poll(1000.0)  # BMC start
    assert bmc.next_deadline() == pytest.approx(1030.0)
    bmc.poll(1029.9)
    assert events(bmc) == []
    bmc.poll(bmc.next_deadline())
    assert len(events(bmc)) == 1
    assert bmc.parts["sensors"].reading("CPU Temp", 1031.0) == pytest.approx(85.0)
    assert bmc.next_deadline() is None


def test_linear_timeline_crosses_at_the_interpolated_time():
    item = CPU_NO_VALUE | {"timeline": [[0, 40.0], [40, 120.0]], "interpolation": "linear"}
    bmc = create_bmc(BmcConfig.from_dict({"sensors": [item]}))
    bmc.parts["sel"] = FakeSel()
    now, polls = 0.0, 0
    while not events(bmc):
        bmc.poll(now)
        nd = bmc.next_deadline()
        assert nd is not None and nd > now or events(bmc)
        now, polls = nd, polls + 1
    # 80 degrees is reached at 20 s; one raw count is 0.5 degrees = 0.25 s
    assert 19.7 <= bmc.now <= 20.01
    assert polls < 300


def test_discrete_state_events_and_deassertion():
    """Sensor-specific (6Fh) events: data 1 = offset, data 2/3 unspecified (FFh), table 29-6."""
    bmc = make_bmc(INTRUSION)
    bmc.parts["sensors"].set_state("Intrusion", [0], 1.0)
    bmc.parts["sensors"].set_state("Intrusion", [], 2.0)
    assert [(r[10], r[11], r[12], r[13], r[14], r[15]) for r in events(bmc)] == [
        (0x05, 0x20, 0x6F, 0x00, 0xFF, 0xFF),
        (0x05, 0x20, 0xEF, 0x00, 0xFF, 0xFF),
    ]


def test_manual_rearm_latches_until_rearm_then_resends():
    """Section 35.12: re-arm clears the event status; a condition still present is reported again."""
    bmc = make_bmc({**CPU, "auto_rearm": False})
    sensors = bmc.parts["sensors"]
    sensors.set_value(0x10, 85.0, 1.0)
    sensors.set_value(0x10, 40.0, 2.0)
    assert len(events(bmc)) == 1  # no deassertion without auto re-arm
    assert call(bmc, 0x2B, [0x10]).data[1] == 0x80  # UNC going high still latched
    sensors.set_value(0x10, 85.0, 3.0)
    assert call(bmc, 0x2A, [0x10, 0x00]).cc == CC.OK  # 2-byte re-arm all
    assert len(events(bmc)) == 2


def test_event_receiver_ffh_disables_sensor_events():
    """Section 29.1: FFh as receiver address turns event message generation off."""
    bmc = make_bmc(CPU)
    assert call(bmc, 0x00, [0xFF, 0x00]).cc == CC.OK
    assert call(bmc, 0x01).data == bytes([0xFF, 0x00])
    bmc.parts["sensors"].set_value(0x10, 99.0, 1.0)
    assert events(bmc) == []
    assert call(bmc, 0x00, [0x20, 0x00]).cc == CC.OK
    assert call(bmc, 0x01).data == bytes([0x20, 0x00])


def test_events_reach_the_real_sel():
    bmc = make_bmc(CPU, fake_sel=False)
    before = len(bmc.parts["sel"])
    bmc.parts["sensors"].set_value(0x10, 85.0, 1.0)
    assert len(bmc.parts["sel"]) == before + 1


# -- commands (chapter 35) ---------------------------------------------------------------------


def test_get_sensor_reading_threshold():
    """Table 35-15: raw reading; byte 3 [7] events on, [6] scanning on; byte 4 C0h | at-or-past bits."""
    bmc = make_bmc(CPU)
    conv = bmc.parts["sensors"].get(0x10).conversion
    rsp = call(bmc, 0x2D, [0x10])
    assert rsp.cc == CC.OK and rsp.data == bytes([conv.to_raw(40.0), 0xC0, 0xC0])
    bmc.parts["sensors"].set_value(0x10, 95.0, 1.0)
    assert call(bmc, 0x2D, [0x10]).data[2] == 0xC0 | 0x08 | 0x10  # at or above UNC and UC


def test_get_sensor_reading_unavailable_and_discrete_and_missing():
    bmc = make_bmc(CPU_NO_VALUE, INTRUSION)
    assert call(bmc, 0x2D, [0x10]).data[1] & 0x20  # reading unavailable
    bmc.parts["sensors"].set_state(0x20, [0, 4], 1.0)
    assert call(bmc, 0x2D, [0x20]).data == bytes([0x00, 0xC0, 0x11, 0x80])
    assert call(bmc, 0x2D, [0x77]).cc == CC.NOT_PRESENT
    assert call(bmc, 0x2D, [0x01]).cc == CC.OK  # the watchdog sensor


def test_python_ipmi_get_sensor_reading_bit_names_are_inverted():
    """python-ipmi calls byte 3 bits 7/6 '..._disabled'; a 1 there means enabled (table 35-15)."""
    theirs = pyipmi_sensor.GetSensorReadingRsp()
    theirs._decode(bytes([0x00, 0x40, 0xC0, 0xC0]))
    assert theirs.config.event_message_disabled == 1  # "disabled" = 1 for an enabled sensor
    ours = GetSensorReadingRsp()
    ours._decode(bytes([0x00, 0x40, 0xC0, 0xC0]))
    assert ours.flags.event_messages_enabled == 1 and ours.flags.scanning_enabled == 1


def test_python_ipmi_rearm_requires_optional_bytes():
    """Table 35-16 makes bytes 3-6 optional; python-ipmi refuses a 2-byte Re-arm, vhw takes it."""
    with pytest.raises(DecodingError):
        pyipmi_sensor.RearmSensorEventsReq()._decode(bytes([0x10, 0x00]))
    bmc = make_bmc(CPU)
    assert call(bmc, 0x2A, [0x10, 0x00]).cc == CC.OK
    assert call(bmc, 0x2A, [0x10, 0x80, 0x80, 0x00, 0x00, 0x00]).cc == CC.OK
    assert call(bmc, 0x2A, [0x99, 0x00]).cc == CC.NOT_PRESENT


def test_get_and_set_sensor_thresholds():
    """Sections 35.8/35.9: settable mask from the SDR; CCh for unsettable or out of order."""
    bmc = make_bmc({**CPU, "settable_thresholds": ["unc", "uc"]})
    conv = bmc.parts["sensors"].get(0x10).conversion
    rsp = call(bmc, 0x27, [0x10])
    assert rsp.data[0] == 0b111001  # lnc, unc, uc, unr readable
    assert rsp.data[1:] == bytes([conv.to_raw(10), 0, 0, conv.to_raw(80), conv.to_raw(90), conv.to_raw(100)])
    # set UNC to 70 degrees (raw 140): fine
    assert call(bmc, 0x26, [0x10, 0x08, 0, 0, 0, 140, 0, 0]).cc == CC.OK
    assert call(bmc, 0x27, [0x10]).data[4] == 140
    # unr is not settable
    assert call(bmc, 0x26, [0x10, 0x20, 0, 0, 0, 0, 0, 250]).cc == CC.INVALID_DATA_FIELD
    # UC below UNC: out of order
    assert call(bmc, 0x26, [0x10, 0x10, 0, 0, 0, 0, 100, 0]).cc == CC.INVALID_DATA_FIELD
    # a new threshold under the reading raises the event at once
    bmc.parts["sensors"].set_value(0x10, 60.0, 1.0)
    assert call(bmc, 0x26, [0x10, 0x08, 0, 0, 0, 100, 0, 0]).cc == CC.OK
    assert [r[13] for r in events(bmc)] == [0x57]
    assert call(bmc, 0x27, [0x20]).cc == CC.NOT_PRESENT
    assert call(bmc, 0x26, [0x10, 0x08, 0, 0, 0, 100, 0, 0], ctx=Context(
        channel=1, privilege=Privilege.USER, interface="lan", session_id=1)).cc == CC.INSUFFICIENT_PRIVILEGE


def test_discrete_sensor_has_no_thresholds():
    bmc = make_bmc(INTRUSION)
    assert call(bmc, 0x27, [0x20]).cc == CC.ILLEGAL_FOR_SENSOR_OR_RECORD


def test_sensor_event_enable_get_set():
    """Sections 35.10/35.11: [7] events, [6] scanning, [5:4] 01b enable / 10b disable selected."""
    bmc = make_bmc(CPU)
    rsp = call(bmc, 0x29, [0x10])
    # lnc going low (bit 0), unc/uc/unr going high (bits 7, 9, 11)
    assert rsp.data == bytes([0xC0, 0x81, 0x0A, 0x81, 0x0A])
    assert call(bmc, 0x28, [0x10, 0xE0, 0x80, 0x00, 0x81, 0x0A]).cc == CC.OK  # disable UNC assert + all deasserts
    assert call(bmc, 0x29, [0x10]).data == bytes([0xC0, 0x01, 0x0A, 0x00, 0x00])
    bmc.parts["sensors"].set_value(0x10, 85.0, 1.0)
    assert events(bmc) == []  # UNC going high is off
    assert call(bmc, 0x28, [0x10, 0xD0, 0x80]).cc == CC.OK  # enable it again
    assert call(bmc, 0x28, [0x10, 0xF0]).cc == CC.INVALID_DATA_FIELD  # 11b reserved
    assert call(bmc, 0x28, [0x10, 0x40]).cc == CC.OK  # all event messages off
    bmc.parts["sensors"].set_value(0x10, 95.0, 2.0)
    assert events(bmc) == []
    assert call(bmc, 0x2D, [0x10]).data[1] == 0x40


def test_get_sensor_event_status():
    """Table 35-17: assertion status bytes 3-4, deassertion 5-6."""
    bmc = make_bmc(CPU)
    bmc.parts["sensors"].set_value(0x10, 91.0, 1.0)
    assert call(bmc, 0x2B, [0x10]).data == bytes([0xC0, 0x80, 0x02, 0x00, 0x00])
    bmc.parts["sensors"].set_value(0x10, 50.0, 2.0)
    assert call(bmc, 0x2B, [0x10]).data == bytes([0xC0, 0x00, 0x00, 0x80, 0x02])


def test_get_sensor_reading_factors_match_the_sdr():
    """Table 35-6: bytes 2-7 are the SDR's bytes 25-30 (M, tolerance, B, accuracy, exponents)."""
    bmc = make_bmc(CPU)
    rsp = call(bmc, 0x23, [0x10, 0x40])
    sdr = next(r for r in bmc.parts["sdr"].records.values() if r[3] == 0x01 and r[7] == 0x10)
    assert rsp.cc == CC.OK and rsp.data == bytes([0x40]) + sdr[24:30]
    assert call(bmc, 0x23, [0x20, 0x00]).cc == CC.NOT_PRESENT


def test_sensor_hysteresis_get_set():
    bmc = make_bmc(CPU)
    assert call(bmc, 0x25, [0x10, 0xFF]).data == bytes([4, 4])  # 2 degrees at 0.5/count
    assert call(bmc, 0x24, [0x10, 0xFF, 10, 6]).cc == CC.OK
    assert call(bmc, 0x25, [0x10, 0xFF]).data == bytes([10, 6])
    sensors = bmc.parts["sensors"]
    sensors.set_value(0x10, 81.0, 1.0)
    sensors.set_value(0x10, 77.0, 2.0)  # within 5 degrees: still asserted
    assert len(events(bmc)) == 1


def test_platform_event_from_system_interface_8_and_7_bytes():
    """Section 29.3: with the generator ID byte (8 bytes) or without (ipmitool, 7 bytes)."""
    bmc = make_bmc(CPU)
    body = [0x04, 0x07, 0x42, 0x6F, 0x01, 0xFF, 0xFF]
    assert call(bmc, 0x02, [0x33] + body).cc == CC.OK
    assert call(bmc, 0x02, body).cc == CC.OK
    assert call(bmc, 0x02, body[:5]).cc == CC.REQUEST_LENGTH_INVALID
    a, b = events(bmc)
    assert a[7:9] == bytes([0x33, 0x00]) and b[7:9] == bytes([0x41, 0x00])
    assert a[9:] == b[9:] == bytes(body)
    assert bmc.parts["messaging"].read_event() is None  # not echoed to system software


def test_platform_event_from_lan_uses_the_requester_and_fills_the_buffer():
    bmc = make_bmc(CPU)
    assert call(bmc, 0x02, [0x04, 0x07, 0x42, 0x6F, 0x01], ctx=LAN_OPERATOR).cc == CC.OK
    (rec,) = events(bmc)
    assert rec[7:9] == bytes([0x81, 0x10]) and rec[13:] == bytes([0x01, 0xFF, 0xFF])
    assert bmc.parts["messaging"].read_event() == rec
    assert call(bmc, 0x02, [0x02, 0x07, 0x42, 0x6F, 0x01, 0, 0], ctx=LAN_OPERATOR).cc == CC.INVALID_DATA_FIELD


def test_device_sdr_info_reserve_and_get():
    """Sections 35.2-35.4, with the optional operation byte python-ipmi cannot carry."""
    bmc = make_bmc(CPU, INTRUSION)
    assert call(bmc, 0x20).data == bytes([3, 0x01])  # watchdog + 2 sensors on LUN 0
    assert call(bmc, 0x20, [0x01]).data == bytes([3, 0x01])
    assert not getattr(pyipmi_sensor.GetDeviceSdrInfoReq, "__fields__", ())  # python-ipmi: no operation byte
    rid = int.from_bytes(call(bmc, 0x22).data, "little")
    rsp = call(bmc, 0x21, rid.to_bytes(2, "little") + bytes([0, 0, 0, 0xFF]))
    assert rsp.cc == CC.OK and rsp.data[2 + 3] == 0x02  # watchdog: compact record first
    nxt = int.from_bytes(rsp.data[:2], "little")
    rsp = call(bmc, 0x21, rid.to_bytes(2, "little") + nxt.to_bytes(2, "little") + bytes([5, 3]))
    assert rsp.cc == CC.OK and rsp.data[2:] == bytes([0x20, 0x00, 0x10])  # record key of CPU Temp
    assert call(bmc, 0x21, (rid + 1).to_bytes(2, "little") + bytes([0, 0, 5, 3])).cc == CC.RESERVATION_CANCELLED


def test_cold_reset_restores_thresholds_and_enables():
    bmc = make_bmc(CPU)
    call(bmc, 0x26, [0x10, 0x08, 0, 0, 0, 150, 0, 0])
    call(bmc, 0x28, [0x10, 0x00])
    bmc.parts["sensors"].cold_reset()
    assert call(bmc, 0x27, [0x10]).data[4] == bmc.parts["sensors"].get(0x10).conversion.to_raw(80)
    assert call(bmc, 0x29, [0x10]).data[0] == 0xC0


def test_by_type_and_reading_for_dcmi():
    bmc = make_bmc(CPU, INTRUSION, {"name": "Inlet", "number": 0x11, "type": "temperature", "value": 23})
    temps = bmc.parts["sensors"].by_type("temperature")
    assert [s.name for s in temps] == ["CPU Temp", "Inlet"]
    assert bmc.parts["sensors"].by_type(0x05)[0].name == "Intrusion"
    assert temps[1].reading(0.0) == 23.0
    assert bmc.parts["sensors"].reading("CPU Temp", 0.0) == pytest.approx(40.0)
