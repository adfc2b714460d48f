"""Storage commands for FRU (IPMI 2.0 chapter 34) and SEL (chapter 31), NetFn 0Ah.

Decoding and encoding only; the state lives in ``bmc.parts["fru"]``
(vhw.ipmi.parts.fru) and ``bmc.parts["sel"]`` (vhw.ipmi.parts.sel).  The SDR repository
commands 20h-2Fh of this NetFn live in vhw.ipmi.commands.sdr.  Privileges
are those of IPMI 2.0 appendix G.

python-ipmi's SEL messages are used as they are.  Its FRU messages name a
field ``data`` (which Message.__init__ clobbers, see vhw.ipmi.wire.msgs), and it
has none for Partial Add SEL Entry or the SEL UTC offset: those are defined
here, unregistered.
"""

from __future__ import annotations

from pyipmi.msgs import sel as pm
from pyipmi.msgs.message import Bitfield, CompletionCode, Message, RemainingBytes, UnsignedInt

from ..parts import sel as sel_mod
from ..core.bmc import CC, command, Context, IpmiError, NetFn, Privilege

CMD_GET_FRU_INVENTORY_AREA_INFO = 0x10
CMD_READ_FRU_DATA = 0x11
CMD_WRITE_FRU_DATA = 0x12
CMD_GET_SEL_INFO = 0x40
CMD_GET_SEL_ALLOCATION_INFO = 0x41
CMD_RESERVE_SEL = 0x42
CMD_GET_SEL_ENTRY = 0x43
CMD_ADD_SEL_ENTRY = 0x44
CMD_PARTIAL_ADD_SEL_ENTRY = 0x45
CMD_DELETE_SEL_ENTRY = 0x46
CMD_CLEAR_SEL = 0x47
CMD_GET_SEL_TIME = 0x48
CMD_SET_SEL_TIME = 0x49
CMD_GET_SEL_TIME_UTC_OFFSET = 0x5C
CMD_SET_SEL_TIME_UTC_OFFSET = 0x5D

#: Clear SEL (section 31.9): the 'CLR' key and the two operations.
CLEAR_KEY = b"CLR"
CLEAR_INITIATE = 0xAA
CLEAR_GET_STATUS = 0x00
#: Get SEL Entry "bytes to read: FFh = read entire record" (section 31.5).
READ_ENTIRE_RECORD = 0xFF

#: Largest Read FRU Data count whose response the interface carries: QEMU's
#: BT buffer and SSIF take 255 bytes with netfn/cmd/CC (docs/ipmi-extern.md
#: sections 8-9), KCS and LAN more than a one-byte count can ask for.
MAX_FRU_READ = {"bt": 248, "ssif": 248}
MAX_FRU_READ_DEFAULT = 255

STORAGE = NetFn.STORAGE


# -- messages python-ipmi lacks -----------------------------------------------
class PartialAddSelEntryReq(Message):
    """Section 31.7: reservation, record ID (0000h first part), offset, in progress, data."""

    __netfn__ = STORAGE
    __cmdid__ = CMD_PARTIAL_ADD_SEL_ENTRY
    __fields__ = (
        UnsignedInt("reservation_id", 2),
        UnsignedInt("record_id", 2),
        UnsignedInt("offset", 1),
        Bitfield("progress", 1, Bitfield.Bit("last", 4), Bitfield.ReservedBit(4, 0)),
        RemainingBytes("record_data"),
    )


class PartialAddSelEntryRsp(Message):
    __netfn__ = STORAGE | 1
    __cmdid__ = CMD_PARTIAL_ADD_SEL_ENTRY
    __fields__ = (CompletionCode(), UnsignedInt("record_id", 2))


class GetSelTimeUtcOffsetReq(Message):
    __netfn__ = STORAGE
    __cmdid__ = CMD_GET_SEL_TIME_UTC_OFFSET
    __fields__ = ()


class GetSelTimeUtcOffsetRsp(Message):
    """Section 31.11a: signed minutes, LS byte first; 07FFh = unspecified."""

    __netfn__ = STORAGE | 1
    __cmdid__ = CMD_GET_SEL_TIME_UTC_OFFSET
    __fields__ = (CompletionCode(), UnsignedInt("offset", 2))


class SetSelTimeUtcOffsetReq(Message):
    __netfn__ = STORAGE
    __cmdid__ = CMD_SET_SEL_TIME_UTC_OFFSET
    __fields__ = (UnsignedInt("offset", 2),)


class GetFruInventoryAreaInfoReq(Message):
    __netfn__ = STORAGE
    __cmdid__ = CMD_GET_FRU_INVENTORY_AREA_INFO
    __fields__ = (UnsignedInt("fru_id", 1),)


class GetFruInventoryAreaInfoRsp(Message):
    """Section 34.1: area size in bytes, LS first; [0] 0 = accessed by bytes."""

    __netfn__ = STORAGE | 1
    __cmdid__ = CMD_GET_FRU_INVENTORY_AREA_INFO
    __fields__ = (
        CompletionCode(),
        UnsignedInt("area_size", 2),
        Bitfield("access", 1, Bitfield.Bit("by_words", 1), Bitfield.ReservedBit(7, 0)),
    )


class ReadFruDataReq(Message):
    __netfn__ = STORAGE
    __cmdid__ = CMD_READ_FRU_DATA
    __fields__ = (UnsignedInt("fru_id", 1), UnsignedInt("offset", 2), UnsignedInt("count", 1))


class ReadFruDataRsp(Message):
    """Section 34.2: count returned (1-based), then the data."""

    __netfn__ = STORAGE | 1
    __cmdid__ = CMD_READ_FRU_DATA
    __fields__ = (CompletionCode(), UnsignedInt("count", 1), RemainingBytes("fru_data"))


class WriteFruDataReq(Message):
    __netfn__ = STORAGE
    __cmdid__ = CMD_WRITE_FRU_DATA
    __fields__ = (UnsignedInt("fru_id", 1), UnsignedInt("offset", 2), RemainingBytes("fru_data"))


class WriteFruDataRsp(Message):
    """Section 34.3: count written (1-based)."""

    __netfn__ = STORAGE | 1
    __cmdid__ = CMD_WRITE_FRU_DATA
    __fields__ = (CompletionCode(), UnsignedInt("count_written", 1))


# -- helpers -----------------------------------------------------------------
def _sel(bmc) -> sel_mod.Sel:
    return bmc.parts["sel"]  # the row\'s ``requires`` checked it is there


def _fru(bmc, fru_id: int):
    devices = bmc.parts["fru"]  # the row's ``requires`` checked it is there
    device = devices.get(fru_id)
    if device is None:
        raise IpmiError(CC.NOT_PRESENT, f"no FRU device {fru_id}")
    return device


# -- FRU -------------------------------------------------------------------------
@command(STORAGE, CMD_GET_FRU_INVENTORY_AREA_INFO, privilege=Privilege.USER,
         request=GetFruInventoryAreaInfoReq, response=GetFruInventoryAreaInfoRsp, requires=("fru",))
def get_fru_inventory_area_info(bmc, ctx: Context, req) -> Message:
    """Section 34.1: the size of FRU device ``fru_id``; CBh if there is none."""
    device = _fru(bmc, req.fru_id)
    rsp = GetFruInventoryAreaInfoRsp()
    rsp.area_size = device.size
    rsp.access.by_words = 0
    return rsp


@command(STORAGE, CMD_READ_FRU_DATA, privilege=Privilege.USER,
         request=ReadFruDataReq, response=ReadFruDataRsp, requires=("fru",))
def read_fru_data(bmc, ctx: Context, req) -> Message:
    """Section 34.2: ``count`` bytes from ``offset``, fewer at the end of the
    area; C9h for an offset past it; CAh when the answer would not fit the
    interface, so the client retries with less (ipmitool and python-ipmi do)."""
    device = _fru(bmc, req.fru_id)
    if req.count > MAX_FRU_READ.get(ctx.interface, MAX_FRU_READ_DEFAULT):
        raise IpmiError(CC.CANNOT_RETURN_REQUESTED_BYTES, f"{req.count} bytes do not fit a {ctx.interface} response")
    data = device.read(req.offset, req.count)
    rsp = ReadFruDataRsp()
    rsp.count = len(data)
    rsp.fru_data = data
    return rsp


@command(STORAGE, CMD_WRITE_FRU_DATA, privilege=Privilege.OPERATOR,
         request=WriteFruDataReq, response=WriteFruDataRsp, requires=("fru",))
def write_fru_data(bmc, ctx: Context, req) -> Message:
    """Section 34.3: write and persist; C9h if the data runs past the area."""
    device = _fru(bmc, req.fru_id)
    rsp = WriteFruDataRsp()
    rsp.count_written = device.write(req.offset, bytes(req.fru_data))
    return rsp


# -- SEL ---------------------------------------------------------------------------
@command(STORAGE, CMD_GET_SEL_INFO, privilege=Privilege.USER,
         request=pm.GetSelInfoReq, response=pm.GetSelInfoRsp, requires=("sel",))
def get_sel_info(bmc, ctx: Context, req) -> Message:
    """Section 31.2: version 51h, entries, free bytes (FFFFh = 65535 or more),
    last add and erase times, and what this SEL supports: allocation info,
    reserve, partial add, delete; bit 7 = events were dropped."""
    sel = _sel(bmc)
    rsp = pm.GetSelInfoRsp()
    rsp.version = sel_mod.SEL_VERSION
    rsp.entries = len(sel)
    rsp.free_bytes = min(0xFFFF, sel.free_entries * sel_mod.RECORD_SIZE)
    rsp.most_recent_addition = sel.last_add
    rsp.most_recent_erase = sel.last_erase
    support = rsp.operation_support
    support.get_sel_allocation_info = 1
    support.reserve_sel = 1
    support.partial_add_sel_entry = 1
    support.delete_sel = 1
    support.overflow_flag = int(sel.overflow)
    return rsp


@command(STORAGE, CMD_GET_SEL_ALLOCATION_INFO, privilege=Privilege.USER,
         request=pm.GetSelAllocationInfoReq, response=pm.GetSelAllocationInfoRsp, requires=("sel",))
def get_sel_allocation_info(bmc, ctx: Context, req) -> Message:
    """Section 31.3: one 16-byte allocation unit per entry."""
    sel = _sel(bmc)
    rsp = pm.GetSelAllocationInfoRsp()
    rsp.possible_alloc_units = sel.capacity
    rsp.alloc_unit_size = sel_mod.RECORD_SIZE
    rsp.free_alloc_units = sel.free_entries
    rsp.largest_free_block = sel.free_entries
    rsp.max_record_size = 1
    return rsp


@command(STORAGE, CMD_RESERVE_SEL, privilege=Privilege.USER,
         request=pm.ReserveSelReq, response=pm.ReserveSelRsp, requires=("sel",))
def reserve_sel(bmc, ctx: Context, req) -> Message:
    """Section 31.4: a new reservation cancels the previous one."""
    rsp = pm.ReserveSelRsp()
    rsp.reservation_id = _sel(bmc).reserve()
    return rsp


@command(STORAGE, CMD_GET_SEL_ENTRY, privilege=Privilege.USER,
         request=pm.GetSelEntryReq, response=pm.GetSelEntryRsp, requires=("sel",))
def get_sel_entry(bmc, ctx: Context, req) -> Message:
    """Section 31.5: 0000h first, FFFFh last; a partial read (offset or fewer
    than 16 bytes) needs the current reservation, a whole one does not."""
    sel = _sel(bmc)
    length = req.length
    whole = req.offset == 0 and (length == READ_ENTIRE_RECORD or length >= sel_mod.RECORD_SIZE)
    if not whole:
        sel.check_reservation(req.reservation_id)
    if req.offset >= sel_mod.RECORD_SIZE:
        raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"offset {req.offset} beyond a 16-byte record")
    next_id, record = sel.get(req.record_id)
    end = sel_mod.RECORD_SIZE if length == READ_ENTIRE_RECORD else min(sel_mod.RECORD_SIZE, req.offset + length)
    rsp = pm.GetSelEntryRsp()
    rsp.next_record_id = next_id
    rsp.record_data = record[req.offset:end]
    return rsp


@command(STORAGE, CMD_ADD_SEL_ENTRY, privilege=Privilege.OPERATOR,
         request=pm.AddSelEntryReq, response=pm.AddSelEntryRsp, requires=("sel",))
def add_sel_entry(bmc, ctx: Context, req) -> Message:
    """Section 31.6: the SEL assigns the record ID (and the timestamp of
    timestamped types); C4h "out of space" when full, and the overflow flag."""
    record_id = _sel(bmc).add(bytes(req.record_data))
    if record_id is None:
        raise IpmiError(CC.OUT_OF_SPACE, "SEL full")
    rsp = pm.AddSelEntryRsp()
    rsp.record_id = record_id
    return rsp


@command(STORAGE, CMD_PARTIAL_ADD_SEL_ENTRY, privilege=Privilege.OPERATOR,
         request=PartialAddSelEntryReq, response=PartialAddSelEntryRsp, requires=("sel",))
def partial_add_sel_entry(bmc, ctx: Context, req) -> Message:
    """Section 31.7: a record in pieces under a reservation; 80h when the
    pieces do not make 16 bytes."""
    sel = _sel(bmc)
    sel.check_reservation(req.reservation_id)
    if req.progress.last not in (0, 1):
        raise IpmiError(CC.INVALID_DATA_FIELD, f"in-progress value {req.progress.last}")
    rsp = PartialAddSelEntryRsp()
    rsp.record_id = sel.partial_add(req.record_id, req.offset, bool(req.progress.last), bytes(req.record_data))
    return rsp


@command(STORAGE, CMD_DELETE_SEL_ENTRY, privilege=Privilege.OPERATOR,
         request=pm.DeleteSelEntryReq, response=pm.DeleteSelEntryRsp, requires=("sel",))
def delete_sel_entry(bmc, ctx: Context, req) -> Message:
    """Section 31.8: needs the current reservation, and cancels it."""
    sel = _sel(bmc)
    sel.check_reservation(req.reservation_id)
    rsp = pm.DeleteSelEntryRsp()
    rsp.record_id = sel.delete(req.record_id)
    return rsp


@command(STORAGE, CMD_CLEAR_SEL, privilege=Privilege.OPERATOR,
         request=pm.ClearSelReq, response=pm.ClearSelRsp, requires=("sel",))
def clear_sel(bmc, ctx: Context, req) -> Message:
    """Section 31.9: 'CLR' and AAh erase, 00h asks for the status; the erase
    is immediate, so both answer "erasure completed"."""
    sel = _sel(bmc)
    if bytes(req.key) != CLEAR_KEY:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"key {bytes(req.key)!r} is not 'CLR'")
    if req.cmd not in (CLEAR_INITIATE, CLEAR_GET_STATUS):
        raise IpmiError(CC.INVALID_DATA_FIELD, f"operation {req.cmd:#04x}")
    sel.check_reservation(req.reservation_id, erase_status=req.cmd == CLEAR_GET_STATUS)
    if req.cmd == CLEAR_INITIATE:
        sel.clear()
    rsp = pm.ClearSelRsp()
    rsp.status.erase_in_progress = sel_mod.ERASE_COMPLETED
    return rsp


@command(STORAGE, CMD_GET_SEL_TIME, privilege=Privilege.USER,
         request=pm.GetSelTimeReq, response=pm.GetSelTimeRsp, requires=("sel",))
def get_sel_time(bmc, ctx: Context, req) -> Message:
    """Section 31.10."""
    rsp = pm.GetSelTimeRsp()
    rsp.timestamp = _sel(bmc).time()
    return rsp


@command(STORAGE, CMD_SET_SEL_TIME, privilege=Privilege.OPERATOR,
         request=pm.SetSelTimeReq, requires=("sel",))
def set_sel_time(bmc, ctx: Context, req) -> None:
    """Section 31.11: kept across BMC restarts."""
    _sel(bmc).set_time(req.timestamp)


@command(STORAGE, CMD_GET_SEL_TIME_UTC_OFFSET, privilege=Privilege.USER,
         request=GetSelTimeUtcOffsetReq, response=GetSelTimeUtcOffsetRsp, requires=("sel",))
def get_sel_time_utc_offset(bmc, ctx: Context, req) -> Message:
    """Section 31.11a: minutes, two's complement; 07FFh if never set."""
    rsp = GetSelTimeUtcOffsetRsp()
    rsp.offset = _sel(bmc).utc_offset & 0xFFFF
    return rsp


@command(STORAGE, CMD_SET_SEL_TIME_UTC_OFFSET, privilege=Privilege.OPERATOR,
         request=SetSelTimeUtcOffsetReq, requires=("sel",))
def set_sel_time_utc_offset(bmc, ctx: Context, req) -> None:
    """Section 31.11b: -1440..1440 minutes or 07FFh (unspecified); else C9h."""
    minutes = req.offset - 0x10000 if req.offset & 0x8000 else req.offset
    _sel(bmc).set_utc_offset(minutes)
