"""FRU device 0 (IPMI 2.0 chapter 34) and its image (Platform Management FRU
Information Storage Definition v1.0), checked with python-ipmi's FRU parser."""

from __future__ import annotations

import array
import datetime
import struct
import tomllib
from pathlib import Path

import pytest
from pyipmi.fru import FruInventory

from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import CC, Context, NetFn, Privilege
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.parts.fru import FruConfig, encode_string
from vhw.store import Store

STORAGE = NetFn.STORAGE
AREA_INFO, READ, WRITE = 0x10, 0x11, 0x12
SYSTEM = Context()
USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=7)
EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "small-1u.toml"

DESCRIPTION = {
    "chassis": {"type": "rack_mount", "part_number": "CH-1U", "serial_number": "CHS0001", "extra": ["rails"]},
    "board": {
        "manufacture_date": datetime.datetime(2024, 2, 29, 8, 15, tzinfo=datetime.UTC),
        "manufacturer": "Virtual Hardware Works",
        "product": "VHW-MB-1U",
        "serial_number": "MB0001",
        "part_number": "MB-R2",
        "fru_file_id": "fru.bin",
        "extra": ["BIOS 2.1", "X"],
    },
    "product": {
        "manufacturer": "Virtual Hardware Works",
        "name": "VHW Server 1U",
        "part_number": "SRV-1U",
        "version": "R2",
        "serial_number": "SRV0001",
        "asset_tag": "LAB-0042",
        "fru_file_id": "fru.bin",
    },
    "multirecord": [
        {"type": "power_supply", "capacity": 550, "peak_capacity": 600, "hold_up_time": 1, "hot_swap": True},
        {"type_id": 0xC2, "data": "f0 b1 00 01 02"},
    ],
}


def make_bmc(fru: dict | None = None, store: Store | None = None):
    return create_bmc(BmcConfig.from_dict({"fru": DESCRIPTION if fru is None else fru}), store)


def call(bmc, cmd: int, data: bytes, ctx: Context = SYSTEM):
    return bmc.handle(STORAGE, cmd, bytes(data), ctx, 0.0)


def read_all(bmc, chunk: int = 32) -> bytes:
    size = struct.unpack("<H", call(bmc, AREA_INFO, b"\x00").data[:2])[0]
    out = b""
    while len(out) < size:
        r = call(bmc, READ, struct.pack("<BHB", 0, len(out), min(chunk, size - len(out))))
        assert r.cc == CC.OK
        assert r.data[0] == len(r.data) - 1
        out += r.data[1:]
    return out


def decode(image: bytes) -> FruInventory:
    return FruInventory(array.array("B", image))


# -- the image ------------------------------------------------------------------------
def test_image_decodes_with_python_ipmi_to_the_description():
    """The image read through Read FRU Data decodes, checksums included, to the
    description's strings (FRU spec sections 10, 11, 12)."""
    inv = decode(read_all(make_bmc()))
    c, b, p = inv.chassis_info_area, inv.board_info_area, inv.product_info_area
    assert c.type == 0x17 and str(c.part_number) == "CH-1U" and str(c.serial_number) == "CHS0001"
    assert [str(f) for f in c.custom_chassis_info] == ["rails"]
    assert b.mfg_date == datetime.datetime(2024, 2, 29, 8, 15)
    assert [str(f) for f in (b.manufacturer, b.product_name, b.serial_number, b.part_number, b.fru_file_id)] == [
        "Virtual Hardware Works", "VHW-MB-1U", "MB0001", "MB-R2", "fru.bin"]
    assert [str(f) for f in b.custom_mfg_info] == ["BIOS 2.1", "X"]
    assert [str(f) for f in (p.manufacturer, p.name, p.part_number, p.version, p.serial_number, p.asset_tag,
                             p.fru_file_id)] == [
        "Virtual Hardware Works", "VHW Server 1U", "SRV-1U", "R2", "SRV0001", "LAB-0042", "fru.bin"]
    records = inv.multirecord_area.records
    assert [(r.record_type_id, r.format_version) for r in records] == [(0x00, 2), (0xC2, 2)]
    assert [r.end_of_list for r in records] == [False, True]
    assert bytes(records[1].raw) == bytes.fromhex("f0b1000102")
    assert records[1].manufacturer_id == 0x00B1F0


def test_common_header_and_areas_follow_the_layout_rules():
    """Section 8: format version 1, offsets in multiples of 8 bytes, PAD 00h,
    zero checksum.  Sections 10-12: version 1, length in multiples of 8, C1h
    after the last field, zero checksum over the whole area."""
    image = make_bmc().parts["fru"][0].image
    header = image[:8]
    assert header[0] == 0x01 and header[1] == 0 and header[6] == 0 and sum(header) % 256 == 0
    offsets = [o * 8 for o in header[2:5]]
    assert offsets[0] == 8 and offsets[0] < offsets[1] < offsets[2]
    for start in offsets:
        length = image[start + 1] * 8
        area = image[start:start + length]
        assert area[0] == 0x01 and sum(area) % 256 == 0
        assert 0xC1 in area
    assert header[5] * 8 >= offsets[2] + image[offsets[2] + 1] * 8


def test_multirecord_checksums_and_power_supply_layout():
    """Section 16.1: header = type, [7] end of list + [3:0] version 2h, length,
    record checksum, header checksum (both zero checksums).  Section 18.1: the
    Power Supply Information record is 24 bytes; capacity [11:0] of bytes 0-1,
    peak capacity [11:0] and hold-up time [15:12] of bytes 18-19."""
    image = make_bmc().parts["fru"][0].image
    at = image[5] * 8
    header, payload = image[at:at + 5], image[at + 5:at + 5 + image[at + 2]]
    assert header[0] == 0x00 and header[1] == 0x02 and header[2] == 24
    assert sum(header) % 256 == 0 and (sum(payload) + header[3]) % 256 == 0
    assert struct.unpack_from("<H", payload, 0)[0] == 550
    assert struct.unpack_from("<H", payload, 18)[0] == 1 << 12 | 600
    assert payload[17] == 0b1110  # hot swap, autoswitch, power factor correction
    last = image[at + 5 + 24:at + 5 + 24 + 5]
    assert last[0] == 0xC2 and last[1] == 0x82


def test_default_size_and_zero_fill():
    image = make_bmc().parts["fru"][0].image
    assert len(image) == 1024 and image[-16:] == bytes(16)


def test_no_fru_table_gives_a_small_product_area():
    inv = decode(create_bmc(BmcConfig()).parts["fru"][0].image)
    assert inv.chassis_info_area is None and inv.board_info_area is None
    assert str(inv.product_info_area.manufacturer) == "vhw"


def test_empty_fru_table_gives_just_a_header():
    image = make_bmc({}).parts["fru"][0].image
    assert image[:8] == bytes([1, 0, 0, 0, 0, 0, 0, 0xFF])


def test_type_length_bytes():
    """Section 13: [7:6] 11b = 8-bit ASCII + Latin-1 (English), [5:0] length;
    C0h is an empty field.  That type needs at least two bytes (C1h ends the
    fields), so one character goes as 6-bit packed ASCII (10b, section 13.3)."""
    assert encode_string("") == b"\xc0"
    assert encode_string("AB") == b"\xc2AB"
    assert encode_string("A") == bytes([0x81, ord("A") - 0x20])
    assert encode_string("é" * 2) == b"\xc2\xe9\xe9"
    assert encode_string("x" * 63)[0] == 0xFF


def test_the_example_file_builds():
    data = tomllib.loads(EXAMPLE.read_text())
    bmc_table = {k: v for k, v in data["bmc"].items() if k != "backend"}
    inv = decode(create_bmc(BmcConfig.from_dict(bmc_table)).parts["fru"][0].image)
    assert str(inv.product_info_area.name) == "VHW Server 1U"


# -- commands -------------------------------------------------------------------------
def test_get_fru_inventory_area_info():
    """34.1: area size in bytes, LS byte first; byte 3 bit 0 = 0, accessed by bytes."""
    r = call(make_bmc(), AREA_INFO, b"\x00")
    assert r.cc == CC.OK and r.data == struct.pack("<HB", 1024, 0)


def test_unknown_fru_device_is_cb():
    bmc = make_bmc()
    assert call(bmc, AREA_INFO, b"\x01").cc == CC.NOT_PRESENT
    assert call(bmc, READ, struct.pack("<BHB", 7, 0, 8)).cc == CC.NOT_PRESENT
    assert call(bmc, WRITE, struct.pack("<BH", 7, 0) + b"x").cc == CC.NOT_PRESENT


def test_area_info_needs_its_byte():
    assert call(make_bmc(), AREA_INFO, b"").cc == CC.REQUEST_LENGTH_INVALID


def test_read_fru_data_at_the_end_and_beyond():
    """34.2: count returned is 1-based and may be less than asked at the end of
    the area; an offset beyond the area is out of range (C9h)."""
    bmc = make_bmc()
    r = call(bmc, READ, struct.pack("<BHB", 0, 1020, 16))
    assert r.cc == CC.OK and r.data[0] == 4 and len(r.data) == 5
    assert call(bmc, READ, struct.pack("<BHB", 0, 1024, 1)).cc == CC.PARAMETER_OUT_OF_RANGE


def test_read_fru_data_sized_to_the_interface():
    """KCS carries a 255-byte read; BT's 255-byte buffer does not, and CAh
    ("cannot return number of requested data bytes") makes the client ask for less."""
    bmc = make_bmc()
    assert call(bmc, READ, struct.pack("<BHB", 0, 0, 255)).data[0] == 255
    bt = Context(interface="bt")
    assert call(bmc, READ, struct.pack("<BHB", 0, 0, 255), ctx=bt).cc == CC.CANNOT_RETURN_REQUESTED_BYTES
    assert call(bmc, READ, struct.pack("<BHB", 0, 0, 200), ctx=bt).cc == CC.OK
    assert read_all(bmc, chunk=255) == read_all(bmc, chunk=16)


def test_write_fru_data_returns_count_and_reads_back():
    """34.3: response byte 2 is the count written."""
    bmc = make_bmc()
    r = call(bmc, WRITE, struct.pack("<BH", 0, 1000) + b"hello")
    assert r.cc == CC.OK and r.data == b"\x05"
    assert call(bmc, READ, struct.pack("<BHB", 0, 1000, 5)).data == b"\x05hello"


def test_write_past_the_end_changes_nothing():
    bmc = make_bmc()
    before = read_all(bmc)
    assert call(bmc, WRITE, struct.pack("<BH", 0, 1020) + b"12345").cc == CC.PARAMETER_OUT_OF_RANGE
    assert read_all(bmc) == before


def test_write_needs_operator_read_needs_user():
    """Appendix G: Read FRU Data User, Write FRU Data Operator."""
    bmc = make_bmc()
    assert call(bmc, READ, struct.pack("<BHB", 0, 0, 8), ctx=USER).cc == CC.OK
    assert call(bmc, WRITE, struct.pack("<BH", 0, 0) + b"x", ctx=USER).cc == CC.INSUFFICIENT_PRIVILEGE


def test_writes_survive_a_restart_and_win_over_the_description(tmp_path):
    """FRU data is non-volatile: what a client wrote is what the rebuilt BMC
    serves, even when the description now says something else."""
    path = tmp_path / "state.sqlite"
    store = Store(path)
    bmc = make_bmc(store=store)
    product = make_bmc().parts["fru"][0].image[4] * 8
    # rewrite the product area's asset tag in place: same length, new checksum
    image = bytearray(read_all(bmc))
    at = bytes(image).index(b"LAB-0042")
    image[at:at + 8] = b"LAB-9999"
    length = image[product + 1] * 8
    image[product + length - 1] = 0
    image[product + length - 1] = -sum(image[product:product + length]) & 0xFF
    for offset in range(0, len(image), 16):
        assert call(bmc, WRITE, struct.pack("<BH", 0, offset) + bytes(image[offset:offset + 16])).data == b"\x10"
    store.close()

    store = Store(path)
    changed = dict(DESCRIPTION, product=dict(DESCRIPTION["product"], name="Something Else"))
    again = make_bmc(changed, store=store)
    inv = decode(read_all(again))
    assert str(inv.product_info_area.asset_tag) == "LAB-9999"
    assert str(inv.product_info_area.name) == "VHW Server 1U"
    store.close()


# -- description ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fru, key, words",
    [
        ({"board": {"manufacture_date": "yesterday"}}, "bmc.fru.board.manufacture_date", "date-time"),
        ({"board": {"manufacture_date": datetime.date(1990, 1, 1)}}, "bmc.fru.board.manufacture_date", "1996"),
        ({"board": {"manufacturer": "x" * 64}}, "bmc.fru.board.manufacturer", "63"),
        ({"product": {"name": "a"}}, "bmc.fru.product.name", "6-bit ASCII"),
        ({"product": {"name": "€uro"}}, "bmc.fru.product.name", "Latin-1"),
        ({"product": {"colour": "red"}}, "bmc.fru.product.colour", "unknown key"),
        ({"chassis": {"type": "spaceship"}}, "bmc.fru.chassis.type", "rack_mount"),
        ({"chassis": {"extra": "one"}}, "bmc.fru.chassis.extra", "list of strings"),
        ({"chassis": {"extra": ["ok", "y" * 70]}}, "bmc.fru.chassis.extra[1]", "63"),
        ({"size": 16, "product": {"name": "VHW"}}, "bmc.fru.size", "needs 24 bytes"),
        ({"size": 1 << 16}, "bmc.fru.size", "0xffff"),
        ({"multirecord": [{"type": "dc_output"}]}, "bmc.fru.multirecord[0].type", "power_supply"),
        ({"multirecord": [{"data": "00"}]}, "bmc.fru.multirecord[0].type_id", "required"),
        ({"multirecord": [{"type_id": 0xC0, "data": "zz"}]}, "bmc.fru.multirecord[0].data", "hex"),
        ({"multirecord": [{"type": "power_supply", "capacity": 5000}]}, "bmc.fru.multirecord[0].capacity", "0xfff"),
        ({"board": {"extra": ["z" * 63] * 40}}, "bmc.fru.board", "2040"),
        ({"serial": "x"}, "bmc.fru.serial", "unknown key"),
    ],
)
def test_description_errors_name_the_key(fru, key, words):
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"fru": fru})
    assert e.value.key == key and words in e.value.reason


def test_manufacture_date_in_minutes_or_dates():
    """Section 11: Mfg. Date/Time, minutes from 0:00 1/1/96, LS byte first."""
    assert FruConfig.from_dict({"board": {"manufacture_date": 60}}, "f").board.manufacture_date == 60
    day = FruConfig.from_dict({"board": {"manufacture_date": datetime.date(1996, 1, 2)}}, "f")
    assert day.board.manufacture_date == 24 * 60
    image = make_bmc({"board": {"manufacture_date": 0x123456}}).parts["fru"][0].image
    assert image[8 + 3:8 + 6] == bytes([0x56, 0x34, 0x12])
