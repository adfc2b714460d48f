"""SDR repository (IPMI 2.0 chapter 33) and the records generated from the sensors (chapter 43)."""

from __future__ import annotations

import struct

import pyipmi
import pytest
from pyipmi.interfaces.base import Interface
from pyipmi.sdr import (
    SdrCompactSensorRecord,
    SdrFruDeviceLocator,
    SdrFullSensorRecord,
    SdrManagementControllerDeviceLocator,
)

import vhw.ipmi.commands  # noqa: F401  (registers the handlers)
from vhw.ipmi.parts import sdr as sdr_mod
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import CC, Context, NetFn
from vhw.ipmi.core.config import BmcConfig
from vhw.store import Store

ST = NetFn.STORAGE
SENSORS = [
    {"name": "CPU Temp", "number": 0x10, "type": "temperature", "range": [-40, 125],
     "thresholds": {"lc": 5, "unc": 80, "uc": 90, "unr": 100}, "hysteresis": 2, "value": 42},
    {"name": "12V", "number": 0x11, "type": "voltage", "range": [0, 15],
     "thresholds": {"lc": 10.8, "uc": 13.2}, "value": 12.05},
    {"name": "Intrusion", "number": 0x20, "type": "physical_security", "state": [0]},
    {"name": "CPU0", "number": 0x21, "type": "processor", "record": "event_only"},
]


def make_bmc(store=None, sensors=SENSORS):
    return create_bmc(BmcConfig.from_dict({"sensors": [dict(s) for s in sensors]}), store)


def call(bmc, cmd, data=b"", netfn=ST):
    return bmc.handle(netfn, cmd, bytes(data), Context(), 1.0)


def reserve(bmc) -> int:
    rsp = call(bmc, 0x22)
    assert rsp.cc == CC.OK
    return int.from_bytes(rsp.data, "little")


def get_sdr(bmc, record_id, offset=0, count=0xFF, reservation=0):
    return call(bmc, 0x23, struct.pack("<HHBB", reservation, record_id, offset, count))


def all_records(bmc) -> list[bytes]:
    out, rid = [], 0
    while rid != 0xFFFF:
        rsp = get_sdr(bmc, rid)
        assert rsp.cc == CC.OK
        rid = int.from_bytes(rsp.data[:2], "little")
        out.append(rsp.data[2:])
    return out


class DirectInterface(Interface):
    """python-ipmi talking straight to a Bmc in this process."""

    NAME = "vhw-direct"

    def __init__(self, bmc):
        self.bmc = bmc

    def send_and_receive_raw(self, target, lun, netfn, raw_bytes):
        return self.bmc.handle(netfn, raw_bytes[0], raw_bytes[1:], Context(lun=lun), 1.0).to_bytes()


def python_ipmi(bmc) -> pyipmi.Ipmi:
    return pyipmi.Ipmi(interface=DirectInterface(bmc), target=pyipmi.Target(0x20))


# -- the generated records -------------------------------------------------------------------


def test_record_types_and_lengths():
    """Full 01h = 48 + n bytes (table 43-1), compact 02h = 32 + n (43-2), event-only 03h = 17 + n
    (43-3), FRU locator 11h = 16 + n (43-7), MC locator 12h = 16 + n (43-8); byte 5 = length - 5."""
    records = all_records(make_bmc())
    shape = [(r[3], r[7] if r[3] < 0x10 else None, len(r)) for r in records]
    assert shape == [
        (0x02, 0x01, 32 + len("Watchdog")),
        (0x01, 0x10, 48 + len("CPU Temp")),
        (0x01, 0x11, 48 + len("12V")),
        (0x02, 0x20, 32 + len("Intrusion")),
        (0x03, 0x21, 17 + len("CPU0")),
        (0x11, None, 16 + len("System FRU")),
        (0x12, None, 16 + len("vhw BMC")),
    ]
    for i, r in enumerate(records):
        assert r[2] == 0x51 and r[4] == len(r) - 5
        assert int.from_bytes(r[:2], "little") == i + 1


def test_python_ipmi_decodes_every_record():
    """A real client's parser (pyipmi.sdr) reads the repository and converts readings like the description."""
    bmc = make_bmc()
    ipmi = python_ipmi(bmc)
    records = list(ipmi.sdr_repository_entries())
    kinds = [type(r) for r in records]
    assert kinds == [SdrCompactSensorRecord, SdrFullSensorRecord, SdrFullSensorRecord, SdrCompactSensorRecord,
                     pyipmi.sdr.SdrEventOnlySensorRecord, SdrFruDeviceLocator, SdrManagementControllerDeviceLocator]
    wd, cpu, v12, intrusion, cpu0, fru, mc = records
    assert (wd.number, wd.sensor_type_code, wd.event_reading_type_code, wd.device_id_string) == (1, 0x23, 0x6F, "Watchdog")
    assert (cpu.device_id_string, cpu.number, cpu.sensor_type_code, cpu.units_2) == ("CPU Temp", 0x10, 0x01, 1)
    assert "threshold_read_and_setable" in cpu.capabilities and "auto_rearm" in cpu.capabilities
    for rec, expected in ((cpu, 42.0), (v12, 12.05)):
        raw = ipmi.get_sensor_reading(rec.number)[0]
        assert rec.convert_sensor_raw_to_value(raw) == pytest.approx(expected, abs=rec.m * 10.0**rec.k2)
    assert cpu.convert_sensor_raw_to_value(cpu.threshold["ucr"]) == pytest.approx(90.0, abs=0.65)
    assert v12.convert_sensor_raw_to_value(v12.threshold["lcr"]) == pytest.approx(10.8, abs=0.06)
    assert intrusion.device_id_string == "Intrusion" and intrusion.sensor_type_code == 0x05
    assert cpu0.device_id_string == "CPU0" and cpu0.sensor_type == 0x07
    assert fru.device_id_string == "System FRU" and fru.fru_device_id == 0
    assert mc.device_id_string == "vhw BMC" and mc.device_slave_address == 0x10  # 7-bit form of 20h
    assert ipmi.get_sdr_repository_info().record_count == 7


def test_full_record_masks():
    """Table 43-1 bytes 15-20: event masks with the threshold reading masks, readable | settable << 8."""
    bmc = make_bmc()
    full = next(r for r in bmc.parts["sdr"].records.values() if r[3] == 0x01 and r[7] == 0x10)
    assertion, deassertion, thresholds = struct.unpack("<HHH", full[14:20])
    # lc going low (offset 2); unc/uc/unr going high (7, 9, 11); lower reading mask: lc (bit 13)
    assert assertion == (1 << 2) | (1 << 7) | (1 << 9) | (1 << 11) | (1 << 13)
    # upper reading mask: unc, uc, unr (bits 12-14)
    assert deassertion == (1 << 2) | (1 << 7) | (1 << 9) | (1 << 11) | (0b111 << 12)
    assert thresholds == 0b111010 | 0b111010 << 8


# -- info, allocation, reservations, reads --------------------------------------------------------


def test_get_sdr_repository_info_and_allocation():
    """Table 33-3: version 51h, count, free space, timestamps (FFFFFFFFh: never), support 2Fh."""
    bmc = make_bmc()
    rsp = call(bmc, 0x20)
    version, count, free, added, erased, support = struct.unpack("<BHHIIB", rsp.data)
    assert (version, count, added, erased, support) == (0x51, 7, 0xFFFFFFFF, 0xFFFFFFFF, 0x2F)
    units, size, free_units, largest, max_record = struct.unpack("<HHHHB", call(bmc, 0x21).data)
    assert (units, size) == (sdr_mod.UNIT_COUNT, sdr_mod.UNIT_SIZE) and free_units == largest
    assert free == free_units * size
    assert units - free_units == sum(-(-len(r) // size) for r in all_records(bmc))


def test_get_sdr_walks_first_to_last():
    bmc = make_bmc()
    assert get_sdr(bmc, 0xFFFF).data[2:4] == bytes([7, 0])  # FFFFh = the last record
    assert get_sdr(bmc, 0xFFFF).data[:2] == b"\xff\xff"
    assert get_sdr(bmc, 0x0002).data[:2] == bytes([3, 0])
    assert get_sdr(bmc, 0x0042).cc == CC.NOT_PRESENT


def test_partial_reads_need_a_reservation():
    """Section 33.12: a reservation is needed for reads with a non-zero offset."""
    bmc = make_bmc()
    whole = get_sdr(bmc, 2).data[2:]
    assert get_sdr(bmc, 2, offset=5, count=10).cc == CC.RESERVATION_CANCELLED
    rid = reserve(bmc)
    header = get_sdr(bmc, 2, 0, 5, rid)
    assert header.data[2:] == whole[:5]
    pieces, offset = [], 5
    while offset < len(whole):
        rsp = get_sdr(bmc, 2, offset, 16, rid)
        assert rsp.cc == CC.OK
        pieces.append(rsp.data[2:])
        offset += 16
    assert whole[:5] + b"".join(pieces) == whole  # the last piece is cut at the record's end
    assert get_sdr(bmc, 2, len(whole), 1, rid).cc == CC.PARAMETER_OUT_OF_RANGE


def test_read_longer_than_a_response_carries_gets_cah():
    bmc = make_bmc()
    rid = reserve(bmc)
    assert get_sdr(bmc, 2, 0, sdr_mod.MAX_READ + 1, rid).cc == CC.CANNOT_RETURN_REQUESTED_BYTES
    long_record = sdr_mod.with_header(0, 0xC0, bytes(100))  # an OEM record of 105 bytes
    new_id = int.from_bytes(call(bmc, 0x24, long_record).data, "little")
    assert get_sdr(bmc, new_id).cc == CC.CANNOT_RETURN_REQUESTED_BYTES  # FFh: the whole 105 bytes
    assert get_sdr(bmc, new_id, 0, 32).cc == CC.OK


def test_reservation_cancelled_by_a_change():
    """Section 33.11: any change cancels the reservation; the old ID then gets C5h."""
    bmc = make_bmc()
    rid = reserve(bmc)
    assert get_sdr(bmc, 2, 5, 4, rid).cc == CC.OK
    assert call(bmc, 0x24, sdr_mod.fru_locator_record("Extra FRU", fru_id=1)).cc == CC.OK
    assert get_sdr(bmc, 2, 5, 4, rid).cc == CC.RESERVATION_CANCELLED
    assert get_sdr(bmc, 2, 0, 5, rid).cc == CC.RESERVATION_CANCELLED
    assert call(bmc, 0x26, struct.pack("<HH", rid, 2)).cc == CC.RESERVATION_CANCELLED
    rid2 = reserve(bmc)
    assert rid2 != rid
    reserve(bmc)  # a newer reservation cancels rid2 too
    assert get_sdr(bmc, 2, 5, 4, rid2).cc == CC.RESERVATION_CANCELLED


# -- changes ------------------------------------------------------------------------------------------


def test_add_delete_sdr():
    bmc = make_bmc()
    record = sdr_mod.fru_locator_record("Extra FRU", fru_id=1)
    rsp = call(bmc, 0x24, record)
    new_id = int.from_bytes(rsp.data, "little")
    assert rsp.cc == CC.OK and new_id == 8
    stored = get_sdr(bmc, new_id).data[2:]
    assert stored[:2] == bytes([8, 0]) and stored[2:] == record[2:]  # the BMC sets the ID
    assert call(bmc, 0x24, record[:-1]).cc == CC.INVALID_DATA_FIELD  # length byte disagrees
    rid = reserve(bmc)
    assert call(bmc, 0x26, struct.pack("<HH", rid, 3)).data == bytes([3, 0])
    assert get_sdr(bmc, 3).cc == CC.NOT_PRESENT
    assert get_sdr(bmc, 2).data[:2] == bytes([4, 0])  # the chain skips it
    assert call(bmc, 0x26, struct.pack("<HH", reserve(bmc), 3)).cc == CC.NOT_PRESENT


def test_partial_add_sdr():
    """Section 33.14: ID 0000h for the first part; [3:0] of byte 6: 0 = more, 1 = last."""
    bmc = make_bmc()
    record = sdr_mod.mc_locator_record(0x20, "Satellite")
    rid = reserve(bmc)
    first = call(bmc, 0x25, struct.pack("<HHBB", rid, 0, 0, 0) + record[:10])
    assert first.cc == CC.OK
    new_id = int.from_bytes(first.data, "little")
    assert get_sdr(bmc, new_id).cc == CC.NOT_PRESENT  # not there before the last part
    assert call(bmc, 0x25, struct.pack("<HHBB", rid, new_id, 11, 0) + record[10:12]).cc == CC.INVALID_DATA_FIELD
    assert call(bmc, 0x25, struct.pack("<HHBB", rid, new_id, 10, 1) + record[10:]).data == first.data
    assert get_sdr(bmc, new_id).data[4:] == record[2:]
    # the completed add cancelled the reservation
    assert call(bmc, 0x25, struct.pack("<HHBB", rid, 0, 0, 1) + record).cc == CC.RESERVATION_CANCELLED
    # a last part that leaves the record short of its length byte
    rid = reserve(bmc)
    assert call(bmc, 0x25, struct.pack("<HHBB", rid, 0, 0, 1) + record[:-2]).cc == CC.INVALID_DATA_FIELD


def test_clear_sdr_repository():
    """Section 33.16: 'CLR', AAh initiates, 00h gets status; erasure completes at once (01h)."""
    bmc = make_bmc()
    rid = reserve(bmc)
    assert call(bmc, 0x27, struct.pack("<H", rid) + b"CLX\xaa").cc == CC.INVALID_DATA_FIELD
    assert call(bmc, 0x27, struct.pack("<H", rid) + b"CLR\x55").cc == CC.INVALID_DATA_FIELD
    assert call(bmc, 0x27, struct.pack("<H", rid) + b"CLR\x00").data == b"\x01"
    assert call(bmc, 0x27, struct.pack("<H", rid) + b"CLR\xaa").data == b"\x01"
    assert get_sdr(bmc, 0).cc == CC.NOT_PRESENT
    info = struct.unpack("<BHHIIB", call(bmc, 0x20).data)
    assert info[1] == 0 and info[4] != 0xFFFFFFFF  # count 0, erase time stamped
    assert call(bmc, 0x27, struct.pack("<H", rid) + b"CLR\xaa").cc == CC.RESERVATION_CANCELLED


# -- persistence ---------------------------------------------------------------------------------


def test_changes_persist_across_a_rebuilt_bmc(tmp_path):
    path = tmp_path / "state.sqlite"
    bmc = make_bmc(Store(path))
    record = sdr_mod.fru_locator_record("Extra FRU", fru_id=1)
    call(bmc, 0x24, record)
    call(bmc, 0x26, struct.pack("<HH", reserve(bmc), 4))
    before = all_records(bmc)
    bmc.store.close()

    again = make_bmc(Store(path))
    assert all_records(again) == before
    assert struct.unpack("<BHHIIB", call(again, 0x20).data)[3] != 0xFFFFFFFF  # addition time kept


def test_a_cleared_repository_stays_empty_after_restart(tmp_path):
    path = tmp_path / "state.sqlite"
    bmc = make_bmc(Store(path))
    call(bmc, 0x27, struct.pack("<H", reserve(bmc)) + b"CLR\xaa")
    bmc.store.close()
    assert get_sdr(make_bmc(Store(path)), 0).cc == CC.NOT_PRESENT


def test_an_unchanged_repository_follows_the_description(tmp_path):
    path = tmp_path / "state.sqlite"
    bmc = make_bmc(Store(path))
    assert len(all_records(bmc)) == 7
    assert bmc.store.records("sdr") == []  # nothing stored until a change
    bmc.store.close()
    assert len(all_records(make_bmc(Store(path), sensors=SENSORS[:2]))) == 5


# -- Get Device ID -----------------------------------------------------------------------------------


def test_device_id_claims_sensor_and_sdr_repository_devices():
    """Table 20-2 byte 6: [0] sensor device, [1] SDR repository device."""
    rsp = make_bmc().handle(NetFn.APP, 0x01, b"", Context(), 1.0)
    assert rsp.data[5] & 0x03 == 0x03
