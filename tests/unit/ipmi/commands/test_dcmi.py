"""DCMI basics (DCMI 1.5, Group Extension NetFn 2Ch, group ID DCh).

The byte layouts checked here are the ones ipmitool's lib/ipmi_dcmi.c reads
(``dcmi discover``, ``dcmi power reading``, ``dcmi asset_tag``,
``dcmi get_mc_id_string``, ``dcmi get_temp_reading``).
"""

from __future__ import annotations

import pytest

from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.core.config import BmcConfig
from vhw.store import Store

DCMI = 0x2C
SI = Context()
#: The host's UTC time at now = 0 (2024-01-01), as the transport side would read it.
HOST_CLOCK_BASE = 1704067200.0
LAN_OPERATOR = Context(channel=1, privilege=Privilege.OPERATOR, interface="lan", session_id=1)


def make_bmc(dcmi=None, sensors=None, store=None, machine="rack7-node3"):
    table = {}
    if dcmi is not None:
        table["dcmi"] = dcmi
    if sensors is not None:
        table["sensors"] = sensors
    return create_bmc(BmcConfig.from_dict(table, machine=machine), store=store, host_clock_base=HOST_CLOCK_BASE)


def call(bmc, cmd, data, now=0.0, ctx=SI):
    return bmc.handle(DCMI, cmd, bytes(data), ctx, now)


# -- group extension framing ----------------------------------------------------
def test_every_response_starts_with_the_group_id_and_other_groups_are_c1h():
    """IPMI 2.0 section 5.1: the group extension ID is the first byte of the
    request and of the response; a group this BMC does not implement is C1h."""
    bmc = make_bmc()
    assert call(bmc, 0x01, [0xDC, 0x01]).data[0] == 0xDC
    assert call(bmc, 0x01, [0x00, 0x01]).cc == 0xC1  # PICMG's group
    assert call(bmc, 0x01, []).cc == 0xC1
    assert call(bmc, 0x01, [0xDC]).cc == 0xC7


# -- Get DCMI Capability Info (6.1.1) --------------------------------------------
def test_capability_parameters_as_ipmitool_dcmi_discover_reads_them():
    """`ipmitool dcmi discover` reads parameters 1..4: group ID, conformance
    (01h 05h: DCMI 1.5, which ipmitool accepts), parameter revision 02h."""
    bmc = make_bmc()
    p1 = call(bmc, 0x01, [0xDC, 0x01])
    assert p1.cc == 0 and p1.data[:4] == bytes([0xDC, 0x01, 0x05, 0x02])
    assert p1.data[4:] == bytes([0x00, 0x01, 0x01])  # power management; in-band system interface
    p2 = call(bmc, 0x01, [0xDC, 0x02]).data[4:]
    assert int.from_bytes(p2[:2], "little") & 0xFFF == 512  # the SEL's capacity
    assert p2[2] & 0x04  # asset tag supported
    assert call(bmc, 0x01, [0xDC, 0x03]).data[4:] == bytes([0x40, 0x00])  # ipmitool: "20h (BMC)"
    assert call(bmc, 0x01, [0xDC, 0x04]).data[4:] == bytes([0x01, 0xFF, 0xFF])  # LAN channel 1
    assert call(bmc, 0x01, [0xDC, 0x05]).data[4:] == bytes([0x00])  # no rolling averages
    assert call(bmc, 0x01, [0xDC, 0x06]).cc == 0xCC


# -- Get Power Reading (6.6.1) ---------------------------------------------------
def power(rsp):
    d = rsp.data
    words = [int.from_bytes(d[i:i + 2], "little") for i in (1, 3, 5, 7)]
    return words, int.from_bytes(d[9:13], "little"), int.from_bytes(d[13:17], "little"), d[17]


def test_power_reading_from_the_description_value():
    """Response: current, minimum, maximum, average (2 bytes each), IPMI
    timestamp, statistics period in ms, state (bit 6: measurement active)."""
    bmc = make_bmc({"power_watts": 180})
    call(bmc, 0x02, [0xDC, 0x01, 0x00, 0x00], now=10.0)
    rsp = call(bmc, 0x02, [0xDC, 0x01, 0x00, 0x00], now=25.0)
    assert rsp.cc == 0 and len(rsp.data) == 18
    watts, timestamp, period_ms, state = power(rsp)
    assert watts == [180, 180, 180, 180] and period_ms == 15000 and state == 0x40
    assert timestamp == HOST_CLOCK_BASE + 25  # the SEL clock: the host's time, not pre-init


def test_power_reading_follows_a_power_sensor():
    sensors = [{"name": "PSU Input", "number": 0x30, "type": "power", "unit": "watts", "range": [0, 1000],
                "timeline": [[0, 100], [10, 300]]}]
    bmc = make_bmc({"power_watts": 5}, sensors=sensors)
    call(bmc, 0x02, [0xDC, 0x01, 0, 0], now=0.0)
    rsp = call(bmc, 0x02, [0xDC, 0x01, 0, 0], now=20.0)
    (current, low, high, average), *_ = power(rsp)
    assert abs(current - 300) <= 4 and abs(low - 100) <= 4 and abs(high - 300) <= 4
    assert low < average < high


def test_no_power_source_reports_measurement_inactive_and_mode_2_is_not_offered():
    bmc = make_bmc()
    watts, _, _, state = power(call(bmc, 0x02, [0xDC, 0x01, 0, 0]))
    assert watts == [0, 0, 0, 0] and state == 0
    assert call(bmc, 0x02, [0xDC, 0x02, 0x05, 0]).cc == 0xCC
    assert call(bmc, 0x02, [0xDC, 0x01, 0]).cc == 0xC7


# -- Asset tag and MC ID string (6.4.2, 6.4.3, 6.4.6, 6.4.7) ----------------------------
def read_all(bmc, cmd):
    """ipmitool's reading loop: the length first, then 16-byte chunks."""
    total = call(bmc, cmd, [0xDC, 0, 0]).data[1]
    out = b""
    while len(out) < total:
        rsp = call(bmc, cmd, [0xDC, len(out), min(16, total - len(out))])
        assert rsp.cc == 0 and rsp.data[1] == total
        out += rsp.data[2:]
    return out


def write_all(bmc, cmd, raw: bytes):
    for offset in range(0, len(raw), 16):
        chunk = raw[offset:offset + 16]
        rsp = call(bmc, cmd, [0xDC, offset, len(chunk)] + list(chunk))
        assert rsp.cc == 0, hex(rsp.cc)
    return rsp.data[1]


def test_asset_tag_from_the_description_then_written_in_chunks():
    bmc = make_bmc({"asset_tag": "RACK-7"})
    assert read_all(bmc, 0x06) == b"RACK-7"
    tag = b"A" * 40
    assert write_all(bmc, 0x08, tag) == 40
    assert read_all(bmc, 0x06) == tag
    assert write_all(bmc, 0x08, b"short") == 5  # the tag ends where the write ends
    assert read_all(bmc, 0x06) == b"short"


def test_asset_tag_limits():
    """64 bytes at most, 16 per request; a count that does not match the data is C7h."""
    bmc = make_bmc()
    write_all(bmc, 0x08, b"x" * 64)
    assert call(bmc, 0x08, [0xDC, 64, 1, 0x41]).cc == 0xC9
    assert call(bmc, 0x06, [0xDC, 0, 17]).cc == 0xC9
    assert call(bmc, 0x08, [0xDC, 0, 3, 0x41]).cc == 0xC7
    assert call(bmc, 0x08, [0xDC, 0, 1, 0x41], ctx=LAN_OPERATOR).cc == 0xD4


def test_utf8_asset_tag_carries_a_byte_order_mark():
    bmc = make_bmc({"asset_tag": "Büro 3"})
    assert read_all(bmc, 0x06) == b"\xef\xbb\xbf" + "Büro 3".encode()


def test_mc_id_string_defaults_to_the_machine_name_and_ends_at_the_nul():
    """ipmitool's set_mc_id_string sends the string with its NUL (strlen + 1)."""
    bmc = make_bmc()
    assert read_all(bmc, 0x09) == b"rack7-node3"
    assert write_all(bmc, 0x0A, b"bmc-of-a-very-long-host-name\0") == 28
    assert read_all(bmc, 0x09) == b"bmc-of-a-very-long-host-name"
    assert call(bmc, 0x0A, [0xDC, 60, 5] + [0x41] * 5).cc == 0xC9


def test_description_errors_name_the_key():
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"dcmi": {"asset_tag": "x" * 65}})
    assert e.value.key == "bmc.dcmi.asset_tag"
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"dcmi": {"power_watt": 3}})
    assert e.value.key == "bmc.dcmi.power_watt"


# -- Get Temperature Readings (6.7.3) ---------------------------------------------------
TEMPERATURES = [
    {"name": "Inlet Temp", "number": 0x10, "type": "temperature", "entity": [0x37, 1], "value": 24},
    {"name": "CPU1 Temp", "number": 0x11, "type": "temperature", "entity": [0x03, 1], "value": 55},
    {"name": "CPU2 Temp", "number": 0x12, "type": "temperature", "entity": [0x03, 2], "value": 57},
    {"name": "Cold Spot", "number": 0x13, "type": "temperature", "entity": [0x07, 1], "range": [-64, 63],
     "value": -5},
]


def test_temperature_readings_per_entity_as_ipmitool_reads_them():
    """Request: sensor type 01h, entity (40h/41h/42h or 37h/03h/07h), instance
    (0 = all), start instance.  Response: total instances, count, then
    (signed-magnitude degrees, instance) pairs."""
    bmc = make_bmc(sensors=TEMPERATURES)
    cpu = call(bmc, 0x10, [0xDC, 0x01, 0x41, 0x00, 0x00])
    assert cpu.cc == 0 and cpu.data == bytes([0xDC, 2, 2, 55, 1, 57, 2])
    assert call(bmc, 0x10, [0xDC, 0x01, 0x03, 0x02, 0x00]).data == bytes([0xDC, 2, 1, 57, 2])
    assert call(bmc, 0x10, [0xDC, 0x01, 0x40, 0x00, 0x00]).data == bytes([0xDC, 1, 1, 24, 1])
    cold = call(bmc, 0x10, [0xDC, 0x01, 0x42, 0x00, 0x00]).data
    assert cold[:3] == bytes([0xDC, 1, 1]) and cold[3] & 0x80 and abs((cold[3] & 0x7F) - 5) <= 1
    assert call(bmc, 0x10, [0xDC, 0x02, 0x41, 0, 0]).cc == 0xCC  # only temperature
    assert call(bmc, 0x10, [0xDC, 0x01, 0x99, 0, 0]).cc == 0xCC


def test_no_temperature_sensors_means_no_instances():
    assert call(make_bmc(), 0x10, [0xDC, 0x01, 0x40, 0, 0]).data == bytes([0xDC, 0, 0])


def test_asset_tag_and_id_string_persist(tmp_path):
    path = tmp_path / "m.db"
    bmc = make_bmc(store=Store(path))
    write_all(bmc, 0x08, b"TAG-42")
    write_all(bmc, 0x0A, b"new-id\0")
    bmc.store.close()
    again = make_bmc(store=Store(path))
    assert read_all(again, 0x06) == b"TAG-42" and read_all(again, 0x09) == b"new-id"
