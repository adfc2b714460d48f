"""The IOP executive driven only through BAR0 loads/stores and DMA, as the
Linux and NetBSD drivers do it (docs/i2o-mpqemu.md B7/B8).  The host side
(``FakeGuestMemory``, ``HostDriver``) is in i2o/helpers.py.
"""

from __future__ import annotations

import struct

import pytest

from vhw.i2o import frames as f
from vhw.i2o.executive import IopState
from vhw.i2o.iop import Iop
from vhw.i2o.mu import EMPTY, OUTBOUND_POST_BIT, REG_INBOUND, REG_INTR_MASK, REG_INTR_STATUS
from vhw.i2o.params import ParamOp, encode_operations

from i2o.helpers import (BUF, MEM_SIZE, STATUS_ADDR, TCTX, FakeGuestMemory, HostDriver, linux_bringup, message, ram_disk)


@pytest.fixture
def rig():
    mem = FakeGuestMemory()
    levels: list[bool] = []
    iop = Iop(mem, irq=levels.append, pci_location=(0, 7, 0))
    yield iop, mem, levels
    iop.close()


def lct_entries(lct: bytes) -> list[dict]:
    size = struct.unpack_from("<H", lct)[0]
    out = []
    for off in range(12, size * 4, 36):
        esize, tid, chg, flags, cls, org, sub, user, tag, ev = struct.unpack_from("<HHIIHHII8sI", lct, off)
        out.append({"tid": tid & 0xFFF, "class": cls & 0xFFF, "user": user & 0xFFF,
                    "parent": (user >> 12) & 0xFFF, "size": esize})
    return out


# ---------------------------------------------------------------------------


def test_linux_init_sequence(rig):
    """B7 "Linux (i2o_iop_add)" steps 1-11, every status the doc names."""
    iop, mem, levels = rig
    host = HostDriver(iop, mem)
    # 1. "Mask 0xFFFFFFFF, request a shared IRQ, mask 0."
    iop.write(REG_INTR_MASK, 4, 0xFFFFFFFF)
    iop.write(REG_INTR_MASK, 4, 0)
    assert iop.read(REG_INTR_MASK, 4) == 0
    # 2. "ExecStatusGet ... no reply frame: the host polls byte 87 of the
    #    88-byte status block for 0xFF ... It rejects an i2o_version above 1."
    sb = host.status_get()
    assert sb[87] == 0xFF
    assert mem.writes[-1] == (STATUS_ADDR + 87, b"\xff")      # the sync byte lands last
    assert struct.unpack_from("<H", sb, 8)[0] >> 12 <= 1
    assert iop.read(REG_INTR_STATUS, 4) == 0                   # and no reply frame
    # 3. power-on state RESET: Linux resets only READY/OPERATIONAL/HOLD/FAILED.
    assert sb[10] == IopState.RESET
    # B8 status block fields drivers use.
    assert struct.unpack_from("<H", sb, 12)[0] == 128 // 4      # inbound frame size, words
    assert struct.unpack_from("<3I", sb, 16) == (64, 64, 256)
    assert sb[28:52].rstrip(b"\0") == b"vhw virtual IOP"
    assert struct.unpack_from("<I", sb, 52)[0] == 12 + 36       # expected_lct_size
    # 4. "ExecOutboundInit ... The host polls while the status is <= 1. Then
    #    it writes 128 frame addresses to 0x44."
    assert host.outbound_init() == 4
    host.give_frames(128)
    assert iop.mu.free_outbound == 128
    assert iop.mu.reply_frame_size == 512
    # 5./6. state was RESET so no IopClear; "StatusGet must now say HOLD".
    assert host.state() == IopState.HOLD
    # 7. "ExecHrtGet ... Retried with a bigger buffer if entries x entry
    #    length x 4 exceeds it."
    r = host.hrt_get(8)
    assert (r.status, r.header.transaction_context) == (0, TCTX | 1)
    entries, entry_len = struct.unpack_from("<HB", mem.mem, BUF)
    need = entries * entry_len * 4
    assert need == 16 > 8
    mem.mem[BUF:BUF + 64] = bytes(64)
    assert host.hrt_get(8 + need).status == 0
    adapter, ctid, busnum, bustype, fn, dev, bus = struct.unpack_from("<IHBBBBB", mem.mem, BUF + 8)
    assert (bustype, fn, dev, bus) == (4, 0, 7, 0)              # PCI, pci_location
    # 8. "StatusGet again, then ExecSysTabSet: body[0] = IOP id (unit + 2)".
    host.status_get()
    assert host.sys_tab_set(2).status == 0
    # 9. "StatusGet must say READY, then ExecSysEnable (waits for the reply)."
    assert host.state() == IopState.READY
    r = host.call(message(f.Function.EXEC_SYS_ENABLE))
    assert (r.status, r.detail) == (0, 0)
    assert host.state() == IopState.OPERATIONAL
    assert levels and levels[-1] is False and True in levels    # INTx rose and fell
    # 10. "ExecLctNotify ... change indicator 0 ... Waits ... then parses the LCT."
    host.lct_notify(0)
    (r,) = host.replies()
    assert r.status == 0 and r.header.function == f.Function.EXEC_LCT_NOTIFY
    lct = mem.read(BUF, 64)
    change = struct.unpack_from("<I", lct, 8)[0]
    assert [e["class"] for e in lct_entries(lct)] == [0x000]
    #     "leaves an LctNotify with change indicator + 1 outstanding, which
    #     the IOP must hold until the LCT changes."
    host.lct_notify(change + 1)
    assert host.replies() == [] and iop.held_requests == 1
    # 11. "UtilEventRegister (5 words, mask 0xFFFFFFFF), replied to only when
    #     events occur; sysfs vendor/product ids = UtilParamsGet group 0x0000,
    #     fields 0 and 1."
    host.post(message(f.Function.UTIL_EVENT_REGISTER, struct.pack("<I", 0xFFFFFFFF)))
    assert host.replies() == []
    for field, want in ((0, 0x0000), (1, 0x0001)):
        r, res = host.params(0, encode_operations([(ParamOp.FIELD_GET, 0x0000, [field], b"")]))
        assert r.status == 0
        assert struct.unpack_from("<H", res, 8)[0] == want       # Linux copies from result + 8


def test_linux_resets_a_running_iop_and_sees_reset_state(rig):
    """B7 Linux step 3: "0x01 (in progress): wait until the inbound FIFO
    yields an MFA again, post a NOP in it, then StatusGet, which must say RESET"."""
    iop, mem, _ = rig
    host = linux_bringup(iop, mem)
    host.lct_notify(0)
    host.replies()
    host.lct_notify(99)                                        # held, then forgotten
    assert host.state() == IopState.OPERATIONAL
    assert host.iop_reset() == 1
    assert iop.held_requests == 0 and iop.mu.free_outbound == 0
    mfa = iop.read(REG_INBOUND, 4)
    assert mfa != EMPTY
    host.nop(mfa)
    assert host.state() == IopState.RESET
    assert iop.mu.free_inbound == 64


def test_netbsd_init_sequence(rig):
    """B7 "NetBSD (iop_init + iop_config_interrupts)"."""
    iop, mem, _ = rig
    host = HostDriver(iop, mem)
    # 1. "Mask the outbound FIFO interrupt." (read-modify-write of bit 3)
    iop.write(REG_INTR_MASK, 4, iop.read(REG_INTR_MASK, 4) | OUTBOUND_POST_BIT)
    # 2. "Always ExecIopReset. The status word must become exactly 1 ... then
    #    an MFA must appear ...; that MFA is released as a NOP."
    assert host.iop_reset() == 1
    mfa = iop.read(REG_INBOUND, 4)
    assert mfa != EMPTY
    host.nop(mfa)
    # 3. "StatusGet: frame size = inbound frame size x 4, capped at 128 bytes;
    #    queue depths capped at 256."
    sb = host.status_get()
    assert sb[87] == 0xFF and sb[10] == IopState.RESET
    assert struct.unpack_from("<H", sb, 12)[0] * 4 == 128
    assert struct.unpack_from("<I", sb, 24)[0] <= 256
    # 4. "ExecOutboundInit with init code | (frame size / 4) << 16 and one
    #    SIMPLE SGL to a status word that must read exactly 4" -- NetBSD's
    #    iop_ofifo_init leaves the SGL offset field 0.
    assert host.outbound_init(frame_words=128 // 4, sgl_offset=0) == 4
    # 5. "Post the reply frames, then unmask."
    host.give_frames(256, 128)
    iop.write(REG_INTR_MASK, 4, iop.read(REG_INTR_MASK, 4) & ~OUTBOUND_POST_BIT)
    # 6. "HrtGet twice (header, then the full table)".
    assert host.hrt_get(24).status == 0
    n = struct.unpack_from("<H", mem.mem, BUF)[0]
    assert host.hrt_get(8 + 16 * n).status == 0
    #    "SysTabSet with 3 SIMPLE data-out SGLs", IOP id as (unit + 2) << 12.
    assert host.sys_tab_set(2 << 12).status == 0
    assert struct.unpack_from("<H", host.status_get(), 4)[0] == 2
    #    "SysEnable (SUCCESS, ERROR_NO_DATA or INVALID_REQUEST are all accepted)".
    assert host.call(message(f.Function.EXEC_SYS_ENABLE)).status == 0
    #    "UtilEventRegister (no reply)".
    host.post(message(f.Function.UTIL_EVENT_REGISTER, struct.pack("<I", 0xFFFFFFFF)))
    assert host.replies() == []
    #    "LctNotify sized by expected_lct_size, re-read if the table size differs".
    esize = struct.unpack_from("<I", host.status_get(), 52)[0]
    host.lct_notify(0, esize)
    (r,) = host.replies()
    assert r.status == 0 and struct.unpack_from("<H", mem.mem, BUF)[0] * 4 == esize
    #    "a reconfiguration thread that keeps an LctNotify with change
    #    indicator + 1 outstanding for ever."
    host.lct_notify(struct.unpack_from("<I", mem.mem, BUF + 8)[0] + 1, esize)
    assert host.replies() == []


def test_lct_lists_one_bsa_per_disk_and_truncates_to_the_buffer():
    """B8 LCT: executive entry plus one class-0x010 entry per disk, user_tid
    0xFFF; a short buffer gets the head of the table, the header says how
    much to ask for (Linux "LCT too large, reallocating")."""
    mem = FakeGuestMemory()
    iop = Iop(mem, disks=[ram_disk(name=f"d{i}.img") for i in range(2)])
    try:
        host = linux_bringup(iop, mem)
        host.lct_notify(0, 40)
        assert host.replies()[0].status == 0
        size = struct.unpack_from("<H", mem.mem, BUF)[0]
        assert size == 3 + 3 * 9
        assert mem.mem[BUF + 40:BUF + 44] == bytes(4)          # nothing past the buffer
        host.lct_notify(0, size * 4)
        host.replies()
        entries = lct_entries(mem.read(BUF, size * 4))
        assert [(e["tid"], e["class"], e["user"], e["size"]) for e in entries] == [
            (0x000, 0x000, 0xFFF, 9), (0x008, 0x010, 0xFFF, 9), (0x009, 0x010, 0xFFF, 9)]
        assert all(e["parent"] == 0 for e in entries[1:])
    finally:
        iop.close()


def test_held_lct_notify_is_answered_when_a_claim_changes_the_lct():
    """A held LctNotify is answered once the LCT changes; a primary claim
    shows in the entry's user TID and bumps the change indicator."""
    mem = FakeGuestMemory()
    iop = Iop(mem, disks=[ram_disk()])
    try:
        host = linux_bringup(iop, mem)
        host.lct_notify(0)
        host.replies()
        change = struct.unpack_from("<I", mem.mem, BUF + 8)[0]
        host.lct_notify(change)                                  # not below ours: held
        assert host.replies() == []
        host.post(message(f.Function.UTIL_CLAIM, struct.pack("<I", 0x01000000), tid=8))
        got = host.replies()
        assert sorted((r.header.function, r.status) for r in got) == [
            (f.Function.UTIL_CLAIM, 0), (f.Function.EXEC_LCT_NOTIFY, 0)]
        assert struct.unpack_from("<I", mem.mem, BUF + 8)[0] == change + 1
        assert [e["user"] for e in lct_entries(mem.read(BUF, 84))] == [0xFFF, f.HOST_TID]
        # another OSM (other initiator context) cannot take the primary claim
        r = host.call(message(f.Function.UTIL_CLAIM, struct.pack("<I", 0x01000000), tid=8, ictx=7))
        assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, f.DetailedStatus.DEVICE_BUSY)
        r = host.call(message(f.Function.UTIL_CLAIM_RELEASE, struct.pack("<I", 0x01000000), tid=8,
                              ictx=7))
        assert r.detail == f.DetailedStatus.INVALID_REQUEST
        r = host.call(message(f.Function.UTIL_CLAIM_RELEASE, struct.pack("<I", 0x01000000), tid=8))
        assert r.status == 0
    finally:
        iop.close()


def test_state_errors_and_unknown_targets(rig):
    """Wrong state -> 0x12 INVALID_REQUEST, unknown TID -> 0x13, function the
    target lacks -> 0x0A; contexts echoed bit-exactly."""
    iop, mem, _ = rig
    host = HostDriver(iop, mem)
    host.outbound_init()
    host.give_frames()
    r = host.call(message(f.Function.EXEC_SYS_ENABLE, ictx=0xDEADBEEF, tctx=0xFFFFFFFF))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, 0x12)
    assert (r.header.initiator_context, r.header.transaction_context) == (0xDEADBEEF, 0xFFFFFFFF)
    assert host.state() == IopState.HOLD
    r = host.call(message(f.Function.UTIL_PARAMS_GET, tid=0x123))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, 0x13)
    r = host.call(message(f.Function.BSA_BLOCK_READ, tid=0))
    assert r.detail == 0x0A
    r = host.call(message(f.Function.PRIVATE, struct.pack("<I", 0x1B0000)))
    assert r.detail == 0x0A
    assert host.call(message(f.Function.EXEC_SYS_QUIESCE)).detail == 0x12
    assert host.call(message(f.Function.EXEC_IOP_CLEAR)).status == 0
    host.sys_tab_set(3)
    assert host.call(message(f.Function.EXEC_SYS_ENABLE)).status == 0
    assert host.call(message(f.Function.EXEC_PATH_ENABLE, struct.pack("<I", 3))).status == 0
    assert host.call(message(f.Function.EXEC_SYS_QUIESCE)).status == 0
    assert host.state() == IopState.READY
    assert struct.unpack_from("<H", host.status_get(), 4)[0] == 3


def test_outbound_init_is_rejected_once_running(rig):
    """Status word 2 (REJECTED) when the IOP is past HOLD; RESET first."""
    iop, mem, _ = rig
    host = linux_bringup(iop, mem)
    assert host.outbound_init() == 2
    assert host.state() == IopState.OPERATIONAL


def test_undecodable_frame_gets_fail_reply_with_preserved_mfa(rig):
    """B4 failure reply: FAIL flag, contexts echoed, the preserved MFA; the
    host recycles that frame with a UtilNOP."""
    iop, mem, _ = rig
    host = linux_bringup(iop, mem)
    free_before = iop.mu.free_inbound
    bad = message(f.Function.EXEC_SYS_ENABLE, ictx=0xCAFE, tctx=0xF00D)
    bad = bytes([bad[0] & 0xF0 | 0x7]) + bad[1:]               # version 7
    mfa = host.post(bad)
    (r,) = host.replies()
    assert r.failed and (r.header.initiator_context, r.header.transaction_context) == (0xCAFE, 0xF00D)
    severity, code, preserved = f.failure_fields(r)
    assert (code, preserved) == (f.FailureCode.INVALID_VERSION, mfa)
    assert iop.mu.free_inbound == free_before - 1
    host.nop(mfa)
    assert iop.mu.free_inbound == free_before and host.replies() == []


def test_replies_wait_for_a_reply_frame_and_flush_on_0x44(rig):
    """Replies are never lost: queued while no frame is free, sent when the
    host writes a free frame to 0x44."""
    iop, mem, _ = rig
    host = HostDriver(iop, mem)
    host.outbound_init()
    for tctx in (1, 2, 3):
        host.post(message(f.Function.EXEC_IOP_CLEAR, tctx=tctx))
    assert iop.pending_replies == 3 and host.replies() == []
    host.give_frames(2)
    assert [r.header.transaction_context for r in host.replies()] == [1, 2, 3]
    assert iop.pending_replies == 0


def test_status_get_to_unmapped_memory_is_counted_not_raised(rig):
    iop, mem, _ = rig
    host = HostDriver(iop, mem)
    host.post(message(f.Function.EXEC_STATUS_GET, struct.pack("<5I", 0, 0, MEM_SIZE - 8, 0, 88)))
    assert iop.stats["dma_error"] == 1
    assert host.status_get()[87] == 0xFF


def test_pci_reset_returns_to_power_on(rig):
    iop, mem, _ = rig
    host = linux_bringup(iop, mem)
    host.sys_tab_set(5)
    iop.reset()
    sb = host.status_get()
    assert sb[10] == IopState.RESET and struct.unpack_from("<H", sb, 4)[0] == 2
    assert iop.mu.free_outbound == 0 and iop.mu.free_inbound == 64


def test_reply_queue_is_bounded_and_counts_overflow(rig, monkeypatch):
    import vhw.i2o.iop as iop_module
    monkeypatch.setattr(iop_module, "MAX_PENDING_REPLIES", 3)
    iop, mem, _ = rig
    host = HostDriver(iop, mem)
    host.outbound_init()
    for tctx in range(5):
        host.post(message(f.Function.EXEC_IOP_CLEAR, tctx=tctx))
    assert iop.pending_replies == 3 and iop.stats["reply_overflow"] == 2
    host.give_frames(8)
    assert [r.header.transaction_context for r in host.replies()] == [0, 1, 2]
