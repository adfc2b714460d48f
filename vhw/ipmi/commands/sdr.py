"""SDR repository commands (Storage NetFn 0Ah, 20h-27h, IPMI 2.0 chapter 33).

The repository is ``bmc.parts["sdr"]`` (vhw.ipmi.parts.sdr).  python-ipmi's
definitions (pyipmi.msgs.sdr) match the spec and are used as they are.
Enter/Exit SDR Repository Update Mode (2Ah/2Bh) are not implemented: the
repository supports non-modal updates only, as Get SDR Repository Info says.
"""

from __future__ import annotations

from pyipmi.msgs import sdr as pd
from pyipmi.msgs.message import Message

from ..core.bmc import CC, command, Context, IpmiError, NetFn, Privilege
from ..parts.sdr import SDR_VERSION, UNIT_COUNT, UNIT_SIZE, SdrRepository

CMD_GET_SDR_REPOSITORY_INFO = 0x20
CMD_GET_SDR_REPOSITORY_ALLOCATION_INFO = 0x21
CMD_RESERVE_SDR_REPOSITORY = 0x22
CMD_GET_SDR = 0x23
CMD_ADD_SDR = 0x24
CMD_PARTIAL_ADD_SDR = 0x25
CMD_DELETE_SDR = 0x26
CMD_CLEAR_SDR_REPOSITORY = 0x27

ST = NetFn.STORAGE

#: Clear SDR Repository byte 6 (table 33-7).
CLEAR_INITIATE = 0xAA
CLEAR_GET_STATUS = 0x00
#: Erasure status: completed ([3:0] = 1).
ERASURE_COMPLETED = 0x1


def _sdr(bmc) -> SdrRepository:
    return bmc.parts["sdr"]  # the row\'s ``requires`` checked it is there


@command(ST, CMD_GET_SDR_REPOSITORY_INFO, privilege=Privilege.USER,
         request=pd.GetSdrRepositoryInfoReq, response=pd.GetSdrRepositoryInfoRsp, requires=("sdr",))
def get_sdr_repository_info(bmc, ctx: Context, req) -> Message:
    """Section 33.9, table 33-3: version 51h, count, free space, timestamps, support."""
    sdr = _sdr(bmc)
    rsp = pd.GetSdrRepositoryInfoRsp()
    rsp.sdr_version = SDR_VERSION
    rsp.record_count = len(sdr.records)
    rsp.free_space = sdr.free_bytes()
    rsp.most_recent_addition = sdr.last_addition
    rsp.most_recent_erase = sdr.last_erase
    rsp.support.get_allocation_info = 1
    rsp.support.reserve = 1
    rsp.support.partial_add = 1
    rsp.support.delete = 1
    rsp.support.update_type = 0b01  # non-modal
    rsp.support.overflow_flag = 0
    return rsp


@command(ST, CMD_GET_SDR_REPOSITORY_ALLOCATION_INFO, privilege=Privilege.USER,
         request=pd.GetSdrRepositoryAllocationInfoReq, response=pd.GetSdrRepositoryAllocationInfoRsp, requires=("sdr",))
def get_sdr_repository_allocation_info(bmc, ctx: Context, req) -> Message:
    """Section 33.10: 16-byte units; records are kept packed, so all free units are one block."""
    sdr = _sdr(bmc)
    rsp = pd.GetSdrRepositoryAllocationInfoRsp()
    rsp.number_of_units = UNIT_COUNT
    rsp.unit_size = UNIT_SIZE
    rsp.free_units = sdr.free_units()
    rsp.largest_free_block = sdr.free_units()
    rsp.maximum_record_size = -(-(5 + 255) // UNIT_SIZE)
    return rsp


@command(ST, CMD_RESERVE_SDR_REPOSITORY, privilege=Privilege.USER,
         request=pd.ReserveSdrRepositoryReq, response=pd.ReserveSdrRepositoryRsp, requires=("sdr",))
def reserve_sdr_repository(bmc, ctx: Context, req) -> Message:
    """Section 33.11: a new ID; the previous one is cancelled."""
    rsp = pd.ReserveSdrRepositoryRsp()
    rsp.reservation_id = _sdr(bmc).reservations.reserve()
    return rsp


@command(ST, CMD_GET_SDR, privilege=Privilege.USER, request=pd.GetSdrReq, response=pd.GetSdrRsp, requires=("sdr",))
def get_sdr(bmc, ctx: Context, req) -> Message:
    """Section 33.12: partial reads; FFh = to the end; more than sdr.MAX_READ bytes at once: CAh."""
    next_id, data = _sdr(bmc).read(req.reservation_id, req.record_id, req.offset, req.bytes_to_read)
    rsp = pd.GetSdrRsp()
    rsp.next_record_id = next_id
    rsp.record_data = data
    return rsp


@command(ST, CMD_ADD_SDR, privilege=Privilege.OPERATOR, request=pd.AddSdrReq, response=pd.AddSdrRsp, requires=("sdr",))
def add_sdr(bmc, ctx: Context, req) -> Message:
    """Section 33.13: the whole record, header included; the BMC picks the ID."""
    rsp = pd.AddSdrRsp()
    rsp.record_id = _sdr(bmc).add(bytes(req.record_data))
    return rsp


@command(ST, CMD_PARTIAL_ADD_SDR, privilege=Privilege.OPERATOR,
         request=pd.PartialAddSdrReq, response=pd.PartialAddSdrRsp, requires=("sdr",))
def partial_add_sdr(bmc, ctx: Context, req) -> Message:
    """Section 33.14: byte 6 [3:0] 0h = more to come, 1h = last part."""
    if req.status.in_progress not in (0, 1):
        raise IpmiError(CC.INVALID_DATA_FIELD, f"in-progress {req.status.in_progress}")
    rsp = pd.PartialAddSdrRsp()
    rsp.record_id = _sdr(bmc).partial_add(req.reservation_id, req.record_id, req.offset,
                                          req.status.in_progress == 1, bytes(req.record_data))
    return rsp


@command(ST, CMD_DELETE_SDR, privilege=Privilege.OPERATOR, request=pd.DeleteSdrReq, response=pd.DeleteSdrRsp, requires=("sdr",))
def delete_sdr(bmc, ctx: Context, req) -> Message:
    """Section 33.15."""
    rsp = pd.DeleteSdrRsp()
    rsp.record_id = _sdr(bmc).delete(req.reservation_id, req.record_id)
    return rsp


@command(ST, CMD_CLEAR_SDR_REPOSITORY, privilege=Privilege.OPERATOR,
         request=pd.ClearSdrRepositoryReq, response=pd.ClearSdrRepositoryRsp, requires=("sdr",))
def clear_sdr_repository(bmc, ctx: Context, req) -> Message:
    """Section 33.16: 'CLR' and AAh erase (at once), 00h asks the status."""
    if bytes(req.key) != b"CLR":
        raise IpmiError(CC.INVALID_DATA_FIELD, f"key {bytes(req.key)!r} is not 'CLR'")
    sdr = _sdr(bmc)
    if req.cmd == CLEAR_INITIATE:
        sdr.clear(req.reservation_id)
    elif req.cmd == CLEAR_GET_STATUS:
        sdr.reservations.check(req.reservation_id, required=True)
    else:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"clear operation {req.cmd:#04x}")
    rsp = pd.ClearSdrRepositoryRsp()
    rsp.status.erase_in_progress = ERASURE_COMPLETED
    return rsp
