"""The block storage DDM on an in-memory medium (Linux i2o_block.c layout:
word 4 control flags, word 5 byte count, words 6-7 byte offset, SGL at 8).
The same model over real image files: test_image_file.py."""

from __future__ import annotations

import os
import struct

import pytest

from i2o.helpers import (DATA, DISK_SIZE, MEM_SIZE, TID, FakeGuestMemory, HostDriver, linux_bringup,
                         message, ram_disk, rw, simple_sgl)
from vhw.i2o import frames as f
from vhw.i2o.bsa import EVENT_DEVICE_RESET, EVENT_VOLUME_LOAD, EVENT_VOLUME_UNLOAD, BsaStatus, Disk, MemoryStorage
from vhw.i2o.iop import Iop
from vhw.i2o.params import BSA_CACHE_CONTROL, BSA_DEVICE_INFO, BSA_MEDIA_INFO, ParamOp, encode_operations

def rig(**disk):
    """An IOP with one disk of DISK_SIZE zeros, brought up as Linux does; (iop, guest RAM, host, medium)."""
    d = ram_disk(DISK_SIZE, **disk)
    mem = FakeGuestMemory()
    iop = Iop(mem, disks=[d])
    assert isinstance(d.storage, MemoryStorage)
    return iop, mem, linux_bringup(iop, mem), d.storage


class FailingStorage(MemoryStorage):
    """A medium whose every access fails, as a vanished or broken image does."""

    def read(self, offset: int, count: int) -> bytes:
        raise OSError(5, "Input/output error")

    def write(self, offset: int, data: bytes) -> None:
        raise OSError(5, "Input/output error")

    def flush(self) -> None:
        raise OSError(5, "Input/output error")


def test_write_through_reaches_the_file_before_the_reply_and_reads_back():
    iop, mem, host, disk = rig()
    payload = os.urandom(3 * 512)
    # the data spans three guest buffers of different sizes
    mem.write(DATA, payload[:512])
    mem.write(DATA + 0x3000, payload[512:1024 + 100])
    mem.write(DATA + 0x8000, payload[1124:])
    sgl = simple_sgl((DATA, 512), (DATA + 0x3000, 612), (DATA + 0x8000, 412), to_iop=True)
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 4096, len(payload), sgl))
    assert (r.status, r.detail) == (0, 0)
    assert struct.unpack_from("<I", r.body)[0] == len(payload)  # "body[1]" transfer count
    assert bytes(disk.data)[4096:4096 + len(payload)] == payload
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 4096, len(payload),
                     simple_sgl((DATA + 0x10000, 1000), (DATA + 0x20000, 536))))
    assert r.status == 0 and struct.unpack_from("<I", r.body)[0] == len(payload)
    assert mem.read(DATA + 0x10000, 1000) + mem.read(DATA + 0x20000, 536) == payload
    assert r.header.transaction_context == 0x80000009
    iop.close()


def test_write_back_holds_data_until_cache_flush_and_close_loses_nothing():
    iop, mem, host, disk = rig(write_back=True)
    a, b = os.urandom(1024), os.urandom(512)
    mem.write(DATA, a)
    assert host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 1024, simple_sgl((DATA, 1024), to_iop=True))).status == 0
    assert bytes(disk.data)[:1024] == bytes(1024)            # still only in the cache
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 512, 512, simple_sgl((DATA + 0x4000, 512))))
    assert r.status == 0 and mem.read(DATA + 0x4000, 512) == a[512:]  # reads see the cache
    assert disk.flushes == 0
    assert host.call(message(f.Function.BSA_CACHE_FLUSH, struct.pack("<I", 60 << 16), tid=TID)).status == 0
    assert bytes(disk.data)[:1024] == a and disk.flushes == 1   # written back, then made durable
    mem.write(DATA, b)
    host.call(rw(f.Function.BSA_BLOCK_WRITE, 8192, 512, simple_sgl((DATA, 512), to_iop=True)))
    iop.close()
    assert bytes(disk.data)[8192:8704] == b


def test_pci_reset_flushes_write_back_data():
    iop, mem, host, disk = rig(write_back=True)
    mem.write(DATA, b"\x5a" * 512)
    host.call(rw(f.Function.BSA_BLOCK_WRITE, 512, 512, simple_sgl((DATA, 512), to_iop=True)))
    iop.reset()
    assert bytes(disk.data)[512:1024] == b"\x5a" * 512
    iop.close()


@pytest.mark.parametrize("offset,count", [
    (DISK_SIZE - 512, 1024),   # past the end
    (100, 512),                # not a block multiple
    (0, 500),
    (1 << 40, 512),
])
def test_out_of_range_or_unaligned_requests_are_refused(offset, count):
    iop, mem, host, disk = rig()
    r = host.call(rw(f.Function.BSA_BLOCK_READ, offset, count, simple_sgl((DATA, 4096))))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, f.DetailedStatus.INVALID_PARAMETER)
    assert struct.unpack_from("<I", r.body)[0] == 0
    iop.close()


def test_sgl_smaller_than_the_transfer_is_refused():
    iop, mem, host, _ = rig()
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 1024, simple_sgl((DATA, 512), to_iop=True)))
    assert r.detail == f.DetailedStatus.INVALID_PARAMETER
    iop.close()


def test_read_only_media_refuses_writes():
    iop, mem, host, disk = rig(read_only=True)
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 512, simple_sgl((DATA, 512), to_iop=True)))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, BsaStatus.WRITE_PROTECTED)
    assert host.call(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512)))).status == 0
    iop.close()


def test_dma_errors_become_error_replies():
    iop, mem, host, disk = rig()
    disk.data[:] = b"\x11" * DISK_SIZE
    # read: the second buffer is outside guest RAM -> partial transfer
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 0, 1024,
                     simple_sgl((DATA, 512), (MEM_SIZE - 100, 512))))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_PARTIAL_TRANSFER, BsaStatus.BUS_FAILURE)
    assert struct.unpack_from("<I", r.body)[0] == 512
    # write: nothing is written when the data cannot be fetched
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 512, simple_sgl((MEM_SIZE, 512), to_iop=True)))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, BsaStatus.BUS_FAILURE)
    assert bytes(disk.data)[:512] == b"\x11" * 512
    iop.close()


def test_eject_lock_mount_and_events():
    """Locked media cannot be ejected; ejected media answers
    MEDIA_NOT_PRESENT until mounted; registrants get VOLUME events."""
    iop, mem, host, _ = rig()
    host.post(message(f.Function.UTIL_EVENT_REGISTER, struct.pack("<I", 0xFFFFFFFF), tid=TID, tctx=0x42))
    assert host.replies() == []
    assert host.call(message(f.Function.BSA_MEDIA_LOCK, struct.pack("<I", 0xFFFFFFFF), tid=TID)).status == 0
    r = host.call(message(f.Function.BSA_MEDIA_EJECT, struct.pack("<I", 0xFFFFFFFF), tid=TID))
    assert r.detail == BsaStatus.MEDIA_LOCKED
    host.call(message(f.Function.BSA_MEDIA_UNLOCK, struct.pack("<I", 0xFFFFFFFF), tid=TID))
    host.post(message(f.Function.BSA_MEDIA_EJECT, struct.pack("<I", 0xFFFFFFFF), tid=TID))
    event, done = host.replies()
    assert (event.word4, event.header.transaction_context, done.status) == (EVENT_VOLUME_UNLOAD, 0x42, 0)
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512))))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, BsaStatus.MEDIA_NOT_PRESENT)
    assert host.call(message(f.Function.BSA_STATUS_CHECK, tid=TID)).detail == BsaStatus.MEDIA_NOT_PRESENT
    host.post(message(f.Function.BSA_MEDIA_MOUNT, struct.pack("<2I", 0xFFFFFFFF, 0), tid=TID))
    event, done = host.replies()
    assert event.word4 == EVENT_VOLUME_LOAD and done.status == 0
    assert host.call(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512)))).status == 0
    assert host.call(message(f.Function.BSA_STATUS_CHECK, tid=TID)).status == 0
    host.post(message(f.Function.BSA_DEVICE_RESET, tid=TID))
    event, done = host.replies()
    assert (event.word4, done.status) == (EVENT_DEVICE_RESET, 0)
    iop.close()


def test_linux_probe_parameters():
    """i2o_block_probe: block size from 0x0004 field 1 or 0x0000 field 3,
    capacity from 0x0004 field 0 or 0x0000 field 4, power 0x0000 field 2."""
    iop, mem, host, _ = rig(write_back=True)
    def field(group, idx, size):
        r, res = host.params(TID, encode_operations([(ParamOp.FIELD_GET, group, [idx], b"")]),
                             result_len=8 + size)
        assert r.status == 0 and res[6] == 0
        return int.from_bytes(res[8:8 + size], "little")
    assert field(BSA_MEDIA_INFO, 1, 4) == 512
    assert field(BSA_MEDIA_INFO, 0, 8) == DISK_SIZE
    assert field(BSA_DEVICE_INFO, 3, 4) == 512
    assert field(BSA_DEVICE_INFO, 4, 8) == DISK_SIZE
    assert field(BSA_DEVICE_INFO, 2, 2) == 0
    assert field(BSA_CACHE_CONTROL, 3, 1) == 2                    # write-back policy
    assert field(BSA_DEVICE_INFO, 6, 4) & 0x08                    # media loaded
    iop.close()


def test_unsupported_bsa_function_and_short_message():
    iop, mem, host, _ = rig()
    assert host.call(message(f.Function.BSA_MEDIA_FORMAT, tid=TID)).detail == f.DetailedStatus.UNSUPPORTED_FUNCTION
    r = host.call(message(f.Function.BSA_BLOCK_READ, struct.pack("<2I", 0, 512), tid=TID))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, f.DetailedStatus.MESSAGE_TOO_SMALL)
    iop.close()


def test_disks_refuse_requests_before_outbound_init():
    """In RESET the DDMs are not running: INVALID_REQUEST (0x12), kept until
    the host offers a reply frame; an OutboundInit starts a new queue and
    forgets replies still waiting for the old one."""
    mem = FakeGuestMemory()
    iop = Iop(mem, disks=[ram_disk(DISK_SIZE)])
    host = HostDriver(iop, mem)
    host.post(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512))))
    assert iop.pending_replies == 1
    host.give_frames(1)
    (r,) = host.replies()
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, f.DetailedStatus.INVALID_REQUEST)
    host.post(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512))))
    host.post(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512))))
    assert iop.pending_replies == 1                              # one went to the free frame
    host.outbound_init()
    assert iop.pending_replies == 0 and iop.stats["replies_dropped_by_reset"] == 1
    iop.close()


def test_medium_size_must_be_a_block_multiple_and_the_block_size_of_512s():
    with pytest.raises(ValueError, match="size 1000 is not a multiple of 512"):
        Iop(FakeGuestMemory(), disks=[ram_disk(1000)])
    with pytest.raises(ValueError, match="size 4096 is not a multiple of 3072"):
        Iop(FakeGuestMemory(), disks=[ram_disk(4096, block_size=3072)])
    with pytest.raises(ValueError, match="block size 256"):
        Iop(FakeGuestMemory(), disks=[ram_disk(4096, block_size=256)])


def test_a_failing_medium_is_a_device_failure_not_a_crash():
    """The medium failing is the device's fault, not the guest's: BSA
    DEVICE_FAILURE (I2O_BSA_DSC_DEVICE_FAILURE), counted; a write-back
    reset that cannot write keeps its dirty blocks for the next flush."""
    storage = FailingStorage(DISK_SIZE)
    mem = FakeGuestMemory()
    iop = Iop(mem, disks=[Disk(storage, name="broken.img", write_back=True)])
    host = linux_bringup(iop, mem)
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512))))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, BsaStatus.DEVICE_FAILURE)
    mem.write(DATA, b"\x33" * 512)
    assert host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 512, simple_sgl((DATA, 512), to_iop=True))).status == 0
    assert iop.disks[0].dirty_bytes == 512                     # write-back: only in the cache so far
    r = host.call(message(f.Function.BSA_CACHE_FLUSH, struct.pack("<I", 60 << 16), tid=TID))
    assert r.detail == BsaStatus.DEVICE_FAILURE
    iop.reset()                                                # logged, not raised
    assert iop.disks[0].dirty_bytes == 512
    assert iop.stats["disk_error"] == 3
    with pytest.raises(OSError):
        iop.close()


def page_list(addrs: list[int], total: int, *, to_iop: bool = False) -> bytes:
    """NetBSD iop_msg_map_bio: ``total | PAGE_LIST | END_BUFFER | END`` then
    one address per piece, each running to the next PAGE_SIZE boundary."""
    flags = 0xE0 | (0x04 if to_iop else 0)
    return struct.pack(f"<{1 + len(addrs)}I", flags << 24 | total, *addrs)


def test_page_list_sgl_moves_data_page_by_page():
    iop, mem, host, disk = rig()                 # OutboundInit said PAGE_SIZE 4096
    payload = os.urandom(4096 + 1024)
    # three pieces: 0x200 bytes up to the first page end, a full page, 0x200 more
    pages = [DATA + 0xE00, DATA + 0x5000, DATA + 0x9000]
    mem.write(pages[0], payload[:0x200])
    mem.write(pages[1], payload[0x200:0x1200])
    mem.write(pages[2], payload[0x1200:])
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, len(payload), page_list(pages, len(payload), to_iop=True)))
    assert r.status == 0 and bytes(disk.data)[:len(payload)] == payload
    back = [DATA + 0x20000 + 0x800, DATA + 0x30000]          # 0x800 + 0xC00 bytes
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 0, len(payload), page_list(back, len(payload))))
    assert r.status == 0
    assert mem.read(back[0], 0x800) + mem.read(back[1], 0xC00) == payload
    iop.close()


def test_page_list_parsing_and_truncation():
    msg = bytes(32) + page_list([0x1F00, 0x3000], 0x400)
    sgl = f.parse_sgl(msg, 8, page_size=0x1000)
    assert [(e.address, e.count, e.last) for e in sgl.elements] == [(0x1F00, 0x100, False), (0x3000, 0x300, True)]
    assert len(sgl.buffers) == 1
    assert isinstance(f.parse_sgl(msg[:-4], 8, page_size=0x1000), f.RequestError)   # address missing
    assert isinstance(f.parse_sgl(msg, 8), f.RequestError)                           # page size unknown


def test_unixware_ptosm_pass_through():
    """Seed 003 (UnixWare ptosm): "For each Data[] element ... the ptosm
    driver creates a scatter/gather list (SGL) entry on the end of the
    Message ... Each dynamically created SGL will be of type SIMPLE. All
    messages must be of a type that generate a SINGLE_REPLY frame."  B10:
    InitiatorContext = a kernel function pointer, TransactionContext = an
    mblk pointer, both echoed bit-exactly."""
    iop, mem, host, disk = rig()
    disk.data[:] = bytes(range(256)) * (DISK_SIZE // 256)
    ictx, tctx = 0xC0123456, 0xD0FEDCBA
    # BsaBlockRead with two READ Data[] buffers (EOB|SIMPLE, +LAST on the last)
    sgl = (struct.pack("<II", 0x50000000 | 512, DATA) + struct.pack("<II", 0xD0000000 | 512, DATA + 0x2000))
    body = struct.pack("<4I", 0, 1024, 512, 0)
    frame = f.Header(f.Function.BSA_BLOCK_READ, target_tid=TID, initiator_context=ictx,
                     transaction_context=tctx, size=8 + 4, sgl_offset=8).encode() + body + sgl
    r = host.call(frame)
    assert (r.header.initiator_context, r.header.transaction_context) == (ictx, tctx)
    assert r.status == 0 and struct.unpack_from("<I", r.body)[0] == 1024
    assert mem.read(DATA, 512) + mem.read(DATA + 0x2000, 512) == bytes(disk.data)[512:1536]
    # UtilParamsGet with a WRITE buffer (op list, +DIR) and a READ buffer (results)
    ops = encode_operations([(ParamOp.FIELD_GET, BSA_DEVICE_INFO, [4], b"")])
    mem.write(DATA + 0x4000, ops)
    sgl = (struct.pack("<II", 0x54000000 | len(ops), DATA + 0x4000)
           + struct.pack("<II", 0xD0000000 | 64, DATA + 0x5000))
    frame = f.Header(f.Function.UTIL_PARAMS_GET, target_tid=TID, initiator_context=ictx,
                     transaction_context=tctx, size=5 + 4, sgl_offset=5).encode() + bytes(4) + sgl
    r = host.call(frame)
    assert (r.status, r.header.initiator_context, r.header.transaction_context) == (0, ictx, tctx)
    assert struct.unpack_from("<Q", mem.mem, DATA + 0x5000 + 8)[0] == DISK_SIZE
    iop.close()
