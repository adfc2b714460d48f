"""The block storage DDM against real image files (Linux i2o_block.c layout:
word 4 control flags, word 5 byte count, words 6-7 byte offset, SGL at 8)."""

from __future__ import annotations

import os
import struct

import pytest

from test_i2o_executive import (DATA, MEM_SIZE, FakeGuestMemory, HostDriver, linux_bringup,
                                message)
from vhw.i2o import frames as f
from vhw.i2o.bsa import EVENT_DEVICE_RESET, EVENT_VOLUME_LOAD, EVENT_VOLUME_UNLOAD, BsaStatus
from vhw.i2o.iop import DiskConfig, Iop
from vhw.i2o.params import BSA_CACHE_CONTROL, BSA_DEVICE_INFO, BSA_MEDIA_INFO, ParamOp, encode_operations

TID = 0x008
DISK_SIZE = 64 * 1024


def make_image(tmp_path, name="disk.img", size=DISK_SIZE) -> os.PathLike:
    p = tmp_path / name
    p.write_bytes(bytes(size))
    return p


def rw(function: int, offset: int, count: int, sgl: bytes, *, tctx: int = 0x80000009) -> bytes:
    """Linux i2o_block_prep_req_fn: ctl flags, byte count, 64-bit byte offset, SGL at 8."""
    body = struct.pack("<4I", 0x201F0008, count, offset & 0xFFFFFFFF, offset >> 32) + sgl
    return message(function, body, tid=TID, sgl_offset=8, tctx=tctx)


def simple_sgl(*bufs: tuple[int, int], to_iop: bool = False) -> bytes:
    out = b""
    for i, (addr, n) in enumerate(bufs):
        out += f.encode_simple(n, addr, to_iop=to_iop, last=i == len(bufs) - 1,
                               end_of_buffer=i == len(bufs) - 1)
    return out


def rig(tmp_path, **disk):
    image = make_image(tmp_path)
    mem = FakeGuestMemory()
    iop = Iop(mem, disks=[DiskConfig(image, **disk)])
    return iop, mem, linux_bringup(iop, mem), image


def test_write_through_reaches_the_file_before_the_reply_and_reads_back(tmp_path):
    iop, mem, host, image = rig(tmp_path)
    payload = os.urandom(3 * 512)
    # the data spans three guest buffers of different sizes
    mem.write(DATA, payload[:512])
    mem.write(DATA + 0x3000, payload[512:1024 + 100])
    mem.write(DATA + 0x8000, payload[1124:])
    sgl = simple_sgl((DATA, 512), (DATA + 0x3000, 612), (DATA + 0x8000, 412), to_iop=True)
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 4096, len(payload), sgl))
    assert (r.status, r.detail) == (0, 0)
    assert struct.unpack_from("<I", r.body)[0] == len(payload)  # "body[1]" transfer count
    assert image.read_bytes()[4096:4096 + len(payload)] == payload
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 4096, len(payload),
                     simple_sgl((DATA + 0x10000, 1000), (DATA + 0x20000, 536))))
    assert r.status == 0 and struct.unpack_from("<I", r.body)[0] == len(payload)
    assert mem.read(DATA + 0x10000, 1000) + mem.read(DATA + 0x20000, 536) == payload
    assert r.header.transaction_context == 0x80000009
    iop.close()


def test_write_back_holds_data_until_cache_flush_and_close_loses_nothing(tmp_path):
    iop, mem, host, image = rig(tmp_path, write_back=True)
    a, b = os.urandom(1024), os.urandom(512)
    mem.write(DATA, a)
    assert host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 1024, simple_sgl((DATA, 1024), to_iop=True))).status == 0
    assert image.read_bytes()[:1024] == bytes(1024)            # still only in the cache
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 512, 512, simple_sgl((DATA + 0x4000, 512))))
    assert r.status == 0 and mem.read(DATA + 0x4000, 512) == a[512:]  # reads see the cache
    assert host.call(message(f.Function.BSA_CACHE_FLUSH, struct.pack("<I", 60 << 16), tid=TID)).status == 0
    assert image.read_bytes()[:1024] == a
    mem.write(DATA, b)
    host.call(rw(f.Function.BSA_BLOCK_WRITE, 8192, 512, simple_sgl((DATA, 512), to_iop=True)))
    iop.close()
    assert image.read_bytes()[8192:8704] == b


def test_pci_reset_flushes_write_back_data(tmp_path):
    iop, mem, host, image = rig(tmp_path, write_back=True)
    mem.write(DATA, b"\x5a" * 512)
    host.call(rw(f.Function.BSA_BLOCK_WRITE, 512, 512, simple_sgl((DATA, 512), to_iop=True)))
    iop.reset()
    assert image.read_bytes()[512:1024] == b"\x5a" * 512
    iop.close()


@pytest.mark.parametrize("offset,count", [
    (DISK_SIZE - 512, 1024),   # past the end
    (100, 512),                # not a block multiple
    (0, 500),
    (1 << 40, 512),
])
def test_out_of_range_or_unaligned_requests_are_refused(tmp_path, offset, count):
    iop, mem, host, image = rig(tmp_path)
    r = host.call(rw(f.Function.BSA_BLOCK_READ, offset, count, simple_sgl((DATA, 4096))))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, f.DetailedStatus.INVALID_PARAMETER)
    assert struct.unpack_from("<I", r.body)[0] == 0
    iop.close()


def test_sgl_smaller_than_the_transfer_is_refused(tmp_path):
    iop, mem, host, _ = rig(tmp_path)
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 1024, simple_sgl((DATA, 512), to_iop=True)))
    assert r.detail == f.DetailedStatus.INVALID_PARAMETER
    iop.close()


def test_read_only_media_refuses_writes(tmp_path):
    iop, mem, host, image = rig(tmp_path, read_only=True)
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 512, simple_sgl((DATA, 512), to_iop=True)))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, BsaStatus.WRITE_PROTECTED)
    assert host.call(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512)))).status == 0
    iop.close()


def test_dma_errors_become_error_replies(tmp_path):
    iop, mem, host, image = rig(tmp_path)
    image.write_bytes(b"\x11" * DISK_SIZE)
    # read: the second buffer is outside guest RAM -> partial transfer
    r = host.call(rw(f.Function.BSA_BLOCK_READ, 0, 1024,
                     simple_sgl((DATA, 512), (MEM_SIZE - 100, 512))))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_PARTIAL_TRANSFER, BsaStatus.BUS_FAILURE)
    assert struct.unpack_from("<I", r.body)[0] == 512
    # write: nothing is written when the data cannot be fetched
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 512, simple_sgl((MEM_SIZE, 512), to_iop=True)))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, BsaStatus.BUS_FAILURE)
    assert image.read_bytes()[:512] == b"\x11" * 512
    iop.close()


def test_eject_lock_mount_and_events(tmp_path):
    """Locked media cannot be ejected; ejected media answers
    MEDIA_NOT_PRESENT until mounted; registrants get VOLUME events."""
    iop, mem, host, _ = rig(tmp_path)
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


def test_linux_probe_parameters(tmp_path):
    """i2o_block_probe: block size from 0x0004 field 1 or 0x0000 field 3,
    capacity from 0x0004 field 0 or 0x0000 field 4, power 0x0000 field 2."""
    iop, mem, host, _ = rig(tmp_path, write_back=True)
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


def test_unsupported_bsa_function_and_short_message(tmp_path):
    iop, mem, host, _ = rig(tmp_path)
    assert host.call(message(f.Function.BSA_MEDIA_FORMAT, tid=TID)).detail == f.DetailedStatus.UNSUPPORTED_FUNCTION
    r = host.call(message(f.Function.BSA_BLOCK_READ, struct.pack("<2I", 0, 512), tid=TID))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, f.DetailedStatus.MESSAGE_TOO_SMALL)
    iop.close()


def test_disks_refuse_requests_before_outbound_init(tmp_path):
    """In RESET the DDMs are not running: INVALID_REQUEST (0x12), kept until
    the host offers a reply frame; an OutboundInit starts a new queue and
    forgets replies still waiting for the old one."""
    image = make_image(tmp_path)
    mem = FakeGuestMemory()
    iop = Iop(mem, disks=[DiskConfig(image)])
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


def test_image_size_must_be_a_block_multiple(tmp_path):
    image = make_image(tmp_path, size=1000)
    with pytest.raises(ValueError):
        Iop(FakeGuestMemory(), disks=[DiskConfig(image)])


def page_list(addrs: list[int], total: int, *, to_iop: bool = False) -> bytes:
    """NetBSD iop_msg_map_bio: ``total | PAGE_LIST | END_BUFFER | END`` then
    one address per piece, each running to the next PAGE_SIZE boundary."""
    flags = 0xE0 | (0x04 if to_iop else 0)
    return struct.pack(f"<{1 + len(addrs)}I", flags << 24 | total, *addrs)


def test_page_list_sgl_moves_data_page_by_page(tmp_path):
    iop, mem, host, image = rig(tmp_path)                 # OutboundInit said PAGE_SIZE 4096
    payload = os.urandom(4096 + 1024)
    # three pieces: 0x200 bytes up to the first page end, a full page, 0x200 more
    pages = [DATA + 0xE00, DATA + 0x5000, DATA + 0x9000]
    mem.write(pages[0], payload[:0x200])
    mem.write(pages[1], payload[0x200:0x1200])
    mem.write(pages[2], payload[0x1200:])
    r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, len(payload), page_list(pages, len(payload), to_iop=True)))
    assert r.status == 0 and image.read_bytes()[:len(payload)] == payload
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


def test_unixware_ptosm_pass_through(tmp_path):
    """Seed 003 (UnixWare ptosm): "For each Data[] element ... the ptosm
    driver creates a scatter/gather list (SGL) entry on the end of the
    Message ... Each dynamically created SGL will be of type SIMPLE. All
    messages must be of a type that generate a SINGLE_REPLY frame."  B10:
    InitiatorContext = a kernel function pointer, TransactionContext = an
    mblk pointer, both echoed bit-exactly."""
    iop, mem, host, image = rig(tmp_path)
    image.write_bytes(bytes(range(256)) * (DISK_SIZE // 256))
    ictx, tctx = 0xC0123456, 0xD0FEDCBA
    # BsaBlockRead with two READ Data[] buffers (EOB|SIMPLE, +LAST on the last)
    sgl = (struct.pack("<II", 0x50000000 | 512, DATA) + struct.pack("<II", 0xD0000000 | 512, DATA + 0x2000))
    body = struct.pack("<4I", 0, 1024, 512, 0)
    frame = f.Header(f.Function.BSA_BLOCK_READ, target_tid=TID, initiator_context=ictx,
                     transaction_context=tctx, size=8 + 4, sgl_offset=8).encode() + body + sgl
    r = host.call(frame)
    assert (r.header.initiator_context, r.header.transaction_context) == (ictx, tctx)
    assert r.status == 0 and struct.unpack_from("<I", r.body)[0] == 1024
    assert mem.read(DATA, 512) + mem.read(DATA + 0x2000, 512) == image.read_bytes()[512:1536]
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
