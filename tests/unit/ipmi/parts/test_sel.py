"""The System Event Log and its commands (IPMI 2.0 chapter 31), through the dispatcher."""

from __future__ import annotations

import struct

import pytest

from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import CC, Context, NetFn, Privilege
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.parts.sel import UTC_OFFSET_UNSPECIFIED, SelConfig
from vhw.store import Store

STORAGE = NetFn.STORAGE
GET_INFO, GET_ALLOC, RESERVE, GET_ENTRY, ADD, PARTIAL_ADD, DELETE, CLEAR = range(0x40, 0x48)
GET_TIME, SET_TIME, GET_UTC, SET_UTC = 0x48, 0x49, 0x5C, 0x5D
SYSTEM = Context()
USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=7)
START = 1_700_000_000  # SEL time at the BMC's first instant in these tests


def make_bmc(store: Store | None = None, **sel) -> Bmc:  # noqa: F821
    """A BMC whose SEL clock shows START at its first instant, now = 0."""
    config = BmcConfig.from_dict({"sel": {"clock": START, **sel}})
    bmc = create_bmc(config, store)
    bmc.poll(0.0)  # the BMC starts running: a fixed SEL clock counts from here
    return bmc


def call(bmc, cmd: int, data: bytes = b"", ctx: Context = SYSTEM, now: float = 0.0):
    return bmc.handle(STORAGE, cmd, bytes(data), ctx, now)


def event(sensor_number: int = 0x30, offset: int = 0x01, record_type: int = 0x02) -> bytes:
    """A system event record as a client sends it: ID and timestamp left 0."""
    return struct.pack("<HBIHBBBBBBB", 0, record_type, 0, 0x0020, 0x04, 0x01, sensor_number, 0x01, offset, 0xFF, 0xFF)


def add(bmc, record: bytes | None = None, now: float = 0.0) -> int:
    r = call(bmc, ADD, record or event(), now=now)
    assert r.cc == CC.OK, hex(r.cc)
    return struct.unpack("<H", r.data)[0]


def reserve(bmc) -> int:
    r = call(bmc, RESERVE)
    assert r.cc == CC.OK
    return struct.unpack("<H", r.data)[0]


def get_entry(bmc, record_id: int, *, reservation: int = 0, offset: int = 0, count: int = 0xFF, ctx=SYSTEM):
    return call(bmc, GET_ENTRY, struct.pack("<HHBB", reservation, record_id, offset, count), ctx=ctx)


def info(bmc, now: float = 0.0) -> dict:
    r = call(bmc, GET_INFO, now=now)
    assert r.cc == CC.OK and len(r.data) == 14
    version, entries, free, added, erased, support = struct.unpack("<BHHIIB", r.data)
    return dict(version=version, entries=entries, free=free, added=added, erased=erased, support=support)


# -- Get SEL Info / Allocation Info ------------------------------------------------
def test_get_sel_info_of_an_empty_sel():
    """31.2: version 51h; free space in bytes; FFFFFFFFh timestamps when never
    added or erased; operation support: allocation info, reserve, partial add,
    delete (bits 0-3), overflow (bit 7) clear."""
    assert info(make_bmc()) == dict(version=0x51, entries=0, free=512 * 16, added=0xFFFFFFFF,
                                    erased=0xFFFFFFFF, support=0x0F)


def test_get_sel_info_counts_entries_and_last_addition():
    bmc = make_bmc()
    add(bmc, now=5.0)
    add(bmc, now=9.0)
    i = info(bmc, now=10.0)
    assert i["entries"] == 2 and i["free"] == 510 * 16 and i["added"] == START + 9


def test_free_space_saturates_at_ffff():
    """31.2: "FFFFh indicates 65535 or more bytes of space are available"."""
    assert info(make_bmc(entries=8192))["free"] == 0xFFFF


def test_get_sel_allocation_info():
    """31.3: possible units, unit size, free units, largest free block, max record size (units)."""
    bmc = make_bmc(entries=64)
    add(bmc)
    r = call(bmc, GET_ALLOC)
    assert r.cc == CC.OK
    assert struct.unpack("<HHHHB", r.data) == (64, 16, 63, 63, 1)


# -- Add / Get -------------------------------------------------------------------------
def test_add_stamps_record_id_and_timestamp():
    """31.6: the SEL fills in the Record ID; for system event records (02h) the
    timestamp comes from the SEL clock (32.1)."""
    bmc = make_bmc()
    rid = add(bmc, event(), now=42.0)
    r = get_entry(bmc, rid)
    assert r.cc == CC.OK
    next_id, record = struct.unpack("<H", r.data[:2])[0], r.data[2:]
    assert next_id == 0xFFFF
    assert struct.unpack("<H", record[0:2])[0] == rid
    assert struct.unpack("<I", record[3:7])[0] == START + 42
    assert record[7:] == event()[7:]


def test_oem_records_timestamped_or_not_by_type():
    """32.2/32.3: C0h-DFh are timestamped OEM records, E0h-FFh are not: their
    bytes 3-15 are OEM data and must come back untouched."""
    bmc = make_bmc()
    stamped = add(bmc, bytes([0, 0, 0xC0]) + b"\x11" * 13, now=3.0)
    raw = add(bmc, bytes([0, 0, 0xE0]) + b"\x22" * 13, now=3.0)
    assert get_entry(bmc, stamped).data[2 + 3:2 + 7] == struct.pack("<I", START + 3)
    assert get_entry(bmc, raw).data[2 + 3:] == b"\x22" * 13


def test_first_last_and_next_record_ids():
    """31.5: 0000h = first entry, FFFFh = last entry; Next SEL Record ID,
    FFFFh after the last one."""
    bmc = make_bmc()
    ids = [add(bmc) for _ in range(3)]
    assert ids == [1, 2, 3]
    assert get_entry(bmc, 0x0000).data[:4] == struct.pack("<HH", 2, 1)
    assert get_entry(bmc, 0xFFFF).data[:4] == struct.pack("<HH", 0xFFFF, 3)
    assert get_entry(bmc, 2).data[:2] == struct.pack("<H", 3)


def test_get_absent_entry_is_cb():
    """Table 5-2 CBh: requested record not present; also for an empty SEL."""
    bmc = make_bmc()
    assert get_entry(bmc, 0x0000).cc == CC.NOT_PRESENT
    add(bmc)
    assert get_entry(bmc, 0x0042).cc == CC.NOT_PRESENT


def test_partial_read_needs_the_reservation():
    """31.5: "Reservation ID ... Only required for partial Get. Use 0000h otherwise."
    A stale reservation on a partial read answers C5h."""
    bmc = make_bmc()
    rid = add(bmc)
    assert get_entry(bmc, rid, offset=4, count=4).cc == CC.RESERVATION_CANCELLED
    res = reserve(bmc)
    r = get_entry(bmc, rid, reservation=res, offset=4, count=4)
    assert r.cc == CC.OK and r.data[2:] == get_entry(bmc, rid).data[2 + 4:2 + 8]
    # reading past the end returns what is there
    assert get_entry(bmc, rid, reservation=res, offset=12, count=10).data[2:] == get_entry(bmc, rid).data[2 + 12:]
    assert get_entry(bmc, rid, reservation=res, offset=16, count=1).cc == CC.PARAMETER_OUT_OF_RANGE


def test_get_sel_entry_at_user_privilege_add_needs_operator():
    """Appendix G: Get SEL Entry User, Add SEL Entry Operator."""
    bmc = make_bmc()
    add(bmc)
    assert get_entry(bmc, 0, ctx=USER).cc == CC.OK
    assert call(bmc, ADD, event(), ctx=USER).cc == CC.INSUFFICIENT_PRIVILEGE


def test_add_wrong_length():
    assert call(make_bmc(), ADD, bytes(15)).cc == CC.REQUEST_LENGTH_INVALID
    assert call(make_bmc(), ADD, bytes(17)).cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED


# -- full SEL ------------------------------------------------------------------------------
def test_full_sel_drops_events_and_sets_overflow():
    """31.2 Operation Support bit 7: "Overflow Flag. 1=Events have been dropped
    due to lack of space in the SEL."  Add SEL Entry on a full SEL answers
    C4h, "out of space" (table 5-2)."""
    bmc = make_bmc(entries=4)
    for _ in range(4):
        add(bmc)
    i = info(bmc)
    assert i["entries"] == 4 and i["free"] == 0 and not i["support"] & 0x80  # full, nothing dropped yet
    assert call(bmc, ADD, event()).cc == CC.OUT_OF_SPACE
    assert info(bmc)["support"] & 0x80
    # events the BMC itself logs are dropped the same way
    assert bmc.parts["sel"].add(event()) is None
    assert info(bmc)["entries"] == 4


def test_clear_resets_overflow_and_ids():
    bmc = make_bmc(entries=1)
    add(bmc)
    assert call(bmc, ADD, event()).cc == CC.OUT_OF_SPACE
    res = reserve(bmc)
    assert call(bmc, CLEAR, struct.pack("<H", res) + b"CLR\xaa").cc == CC.OK
    i = info(bmc)
    assert i["entries"] == 0 and not i["support"] & 0x80
    assert add(bmc) == 1


# -- Reserve / Delete / Clear -------------------------------------------------------------------
def test_reservations_are_never_zero_and_a_new_one_cancels_the_old():
    """31.4: a new Reserve SEL cancels the previous reservation; 0000h is not an ID."""
    bmc = make_bmc()
    rid = add(bmc)
    first = reserve(bmc)
    second = reserve(bmc)
    assert 0 not in (first, second) and first != second
    assert call(bmc, DELETE, struct.pack("<HH", first, rid)).cc == CC.RESERVATION_CANCELLED
    assert call(bmc, DELETE, struct.pack("<HH", 0, rid)).cc == CC.RESERVATION_CANCELLED
    r = call(bmc, DELETE, struct.pack("<HH", second, rid))
    assert r.cc == CC.OK and r.data == struct.pack("<H", rid)


def test_delete_cancels_the_reservation_add_does_not():
    """31.4: the reservation is cancelled when the SEL changes by deletion or
    erasure; new events are added without cancelling it (that is what lets a
    client read the log while the BMC keeps logging)."""
    bmc = make_bmc()
    a, b = add(bmc), add(bmc)
    res = reserve(bmc)
    add(bmc)
    assert get_entry(bmc, a, reservation=res, offset=1, count=2).cc == CC.OK
    assert call(bmc, DELETE, struct.pack("<HH", res, 0xFFFF)).data == struct.pack("<H", 3)
    assert call(bmc, DELETE, struct.pack("<HH", res, b)).cc == CC.RESERVATION_CANCELLED
    assert get_entry(bmc, a, reservation=res, offset=1, count=2).cc == CC.RESERVATION_CANCELLED
    assert [get_entry(bmc, i).cc for i in (a, b, 3)] == [CC.OK, CC.OK, CC.NOT_PRESENT]


def test_delete_absent_record_is_cb():
    bmc = make_bmc()
    add(bmc)
    assert call(bmc, DELETE, struct.pack("<HH", reserve(bmc), 0x99)).cc == CC.NOT_PRESENT


def test_clear_sel_needs_clr_and_a_valid_operation():
    """31.9: bytes 3-5 must be 'C' 'L' 'R' (43h 4Ch 52h); byte 6 AAh = initiate
    erase, 00h = get erasure status.  Anything else is invalid data (CCh)."""
    bmc = make_bmc()
    add(bmc)
    res = reserve(bmc)
    assert call(bmc, CLEAR, struct.pack("<H", res) + b"CLX\xaa").cc == CC.INVALID_DATA_FIELD
    assert call(bmc, CLEAR, struct.pack("<H", res) + b"CLR\x55").cc == CC.INVALID_DATA_FIELD
    assert call(bmc, CLEAR, struct.pack("<H", res) + b"CLR").cc == CC.REQUEST_LENGTH_INVALID
    assert info(bmc)["entries"] == 1


def test_clear_sel_erases_and_reports_completion():
    """31.9 response: erasure progress [3:0], 1h = erase completed.  The most
    recent erase timestamp is the SEL time of the erase (31.2).  Clearing
    cancels the reservation, but the erasure status may still be asked with
    it (FreeIPMI polls that way)."""
    bmc = make_bmc()
    add(bmc)
    res = reserve(bmc)
    assert call(bmc, CLEAR, struct.pack("<H", res) + b"CLR\x00").data == b"\x01"  # status before: nothing to do
    r = call(bmc, CLEAR, struct.pack("<H", res) + b"CLR\xaa", now=7.0)
    assert r.cc == CC.OK and r.data == b"\x01"
    i = info(bmc, now=8.0)
    assert i["entries"] == 0 and i["erased"] == START + 7
    assert call(bmc, CLEAR, struct.pack("<H", res) + b"CLR\x00").data == b"\x01"
    assert call(bmc, CLEAR, struct.pack("<H", res) + b"CLR\xaa").cc == CC.RESERVATION_CANCELLED
    assert call(bmc, CLEAR, struct.pack("<H", 0x4242) + b"CLR\xaa").cc == CC.RESERVATION_CANCELLED


def test_cold_reset_cancels_reservations():
    """31.4: reservations do not survive a BMC reset."""
    bmc = make_bmc()
    add(bmc)
    res = reserve(bmc)
    assert bmc.handle(NetFn.APP, 0x02, b"", SYSTEM, 1.0).cc == CC.OK
    bmc.poll(1.0)
    assert call(bmc, DELETE, struct.pack("<HH", res, 1), now=2.0).cc == CC.RESERVATION_CANCELLED


# -- Partial Add ----------------------------------------------------------------------------------
def partial(bmc, res, rid, offset, last, data):
    return call(bmc, PARTIAL_ADD, struct.pack("<HHBB", res, rid, offset, int(last)) + data, now=4.0)


def test_partial_add_in_pieces():
    """31.7: record ID 0000h for the first part; the response names the record
    the next parts go to; in-progress 1h marks the last part."""
    bmc = make_bmc()
    res = reserve(bmc)
    record = event(sensor_number=0x55)
    r = partial(bmc, res, 0, 0, False, record[:10])
    assert r.cc == CC.OK
    rid = struct.unpack("<H", r.data)[0]
    assert info(bmc)["entries"] == 0
    assert partial(bmc, res, rid, 10, True, record[10:]).data == struct.pack("<H", rid)
    stored = get_entry(bmc, rid).data[2:]
    assert stored[7:] == record[7:] and stored[3:7] == struct.pack("<I", START + 4)


def test_partial_add_errors():
    """31.7: 80h when the parts do not make a record; C5h without the reservation."""
    bmc = make_bmc()
    assert partial(bmc, 0, 0, 0, True, event()).cc == CC.RESERVATION_CANCELLED
    res = reserve(bmc)
    assert partial(bmc, res, 0, 0, True, event()[:8]).cc == 0x80
    rid = struct.unpack("<H", partial(bmc, res, 0, 0, False, event()[:8]).data)[0]
    assert partial(bmc, res, rid, 9, True, event()[8:]).cc == CC.PARAMETER_OUT_OF_RANGE
    assert partial(bmc, res, 0x77, 8, True, event()[8:]).cc == CC.NOT_PRESENT


# -- time -------------------------------------------------------------------------------------------
def test_get_and_set_sel_time():
    """31.10/31.11: the SEL clock runs with the BMC's time and can be set."""
    bmc = make_bmc()
    assert call(bmc, GET_TIME, now=10.0).data == struct.pack("<I", START + 10)
    assert call(bmc, SET_TIME, struct.pack("<I", 0x12345678), now=20.0).cc == CC.OK
    assert call(bmc, GET_TIME, now=25.5).data == struct.pack("<I", 0x12345678 + 5)
    assert call(bmc, SET_TIME, struct.pack("<I", 1), ctx=USER).cc == CC.INSUFFICIENT_PRIVILEGE


def test_pre_init_clock_counts_from_bmc_start():
    """Section 37: 00000000h-20000000h are seconds since the device initialised."""
    bmc = create_bmc(BmcConfig.from_dict({"sel": {"clock": "pre-init"}}))
    assert call(bmc, GET_TIME, now=1000.0).data == struct.pack("<I", 0)
    assert call(bmc, GET_TIME, now=1030.0).data == struct.pack("<I", 30)


def test_utc_offset_get_and_set():
    """31.11a/b: signed minutes, LS byte first, -1440..1440; 07FFh = unspecified."""
    bmc = make_bmc()
    assert call(bmc, GET_UTC).data == struct.pack("<H", UTC_OFFSET_UNSPECIFIED)
    assert call(bmc, SET_UTC, struct.pack("<h", -480)).cc == CC.OK
    assert call(bmc, GET_UTC).data == struct.pack("<h", -480)
    assert call(bmc, SET_UTC, struct.pack("<h", 1441)).cc == CC.PARAMETER_OUT_OF_RANGE
    assert call(bmc, SET_UTC, struct.pack("<h", -1441)).cc == CC.PARAMETER_OUT_OF_RANGE
    assert call(bmc, SET_UTC, struct.pack("<H", UTC_OFFSET_UNSPECIFIED)).cc == CC.OK
    assert call(bmc, GET_UTC).data == struct.pack("<H", UTC_OFFSET_UNSPECIFIED)
    assert call(make_bmc(utc_offset=60), GET_UTC).data == struct.pack("<h", 60)


# -- persistence ----------------------------------------------------------------------------------
def test_entries_flags_and_time_survive_a_restart(tmp_path):
    """Everything the SEL keeps is non-volatile: a BMC rebuilt on the same
    state file shows the same entries, flags, timestamps, clock and offset."""
    path = tmp_path / "state.sqlite"
    store = Store(path)
    bmc = make_bmc(store, entries=3)
    for n in range(3):
        add(bmc, event(sensor_number=n), now=float(n))
    assert call(bmc, ADD, event()).cc == CC.OUT_OF_SPACE
    call(bmc, SET_TIME, struct.pack("<I", START + 1000), now=10.0)
    call(bmc, SET_UTC, struct.pack("<h", 120))
    res = reserve(bmc)
    call(bmc, DELETE, struct.pack("<HH", res, 2))
    before = [get_entry(bmc, i).data for i in (1, 3)]
    store.close()

    store = Store(path)
    again = make_bmc(store, entries=3)
    assert [get_entry(again, i).data for i in (1, 3)] == before
    assert get_entry(again, 2).cc == CC.NOT_PRESENT
    i = info(again, now=10.0)
    assert i["entries"] == 2 and i["support"] & 0x80 and i["added"] == START + 2
    assert call(again, GET_TIME, now=10.0).data == struct.pack("<I", START + 1000)
    assert call(again, GET_UTC).data == struct.pack("<h", 120)
    assert add(again) == 4  # IDs go on where they were
    store.close()


def test_watchdog_expiry_lands_in_the_sel():
    """The watchdog part logs its Watchdog 2 event through bmc.parts["sel"].add."""
    bmc = make_bmc()
    bmc.parts["chassis"].vm_powered_on(0.0, __import__("vhw.ipmi.parts.chassis", fromlist=["x"]).RestartCause.POWER_BUTTON)
    # Set Watchdog Timer: SMS/OS, no action, 1.0 s; then Reset Watchdog Timer starts it.
    assert bmc.handle(NetFn.APP, 0x24, bytes([0x04, 0x00, 0, 0, 10, 0]), SYSTEM, 0.0).cc == CC.OK
    assert bmc.handle(NetFn.APP, 0x22, b"", SYSTEM, 0.0).cc == CC.OK
    bmc.poll(1.0)
    r = get_entry(bmc, 0xFFFF)
    assert r.cc == CC.OK
    record = r.data[2:]
    assert record[2] == 0x02 and record[10] == 0x23  # system event, Watchdog 2 sensor type
    assert struct.unpack("<I", record[3:7])[0] == START + 1


# -- description --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "table, key, words",
    [
        ({"entries": 0}, "bmc.sel.entries", "0x1..0xfffe"),
        ({"entries": "many"}, "bmc.sel.entries", "integer"),
        ({"clock": "local"}, "bmc.sel.clock", "host"),
        ({"utc_offset": 1500}, "bmc.sel.utc_offset", "0x5a0"),
        ({"size": 3}, "bmc.sel.size", "unknown key"),
    ],
)
def test_description_errors_name_the_key(table, key, words):
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"sel": table})
    assert e.value.key == key and words in e.value.reason


def test_description_clock_as_date_time():
    import datetime

    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    assert SelConfig.from_dict({"clock": when}, "bmc.sel").clock == int(when.timestamp())
    assert SelConfig.from_dict({}, "bmc.sel") == SelConfig()


def test_device_id_claims_sel_and_fru():
    """20.1 table 20-2, Additional Device Support: bit 2 SEL Device, bit 3 FRU Inventory Device."""
    support = create_bmc(BmcConfig()).handle(NetFn.APP, 0x01, b"", SYSTEM, 0.0).data[5]
    assert support & 0x0C == 0x0C
