"""The host side of the I2O model tests: guest RAM, a driver that works the
IOP through BAR0 loads/stores and DMA as Linux and NetBSD do
(docs/i2o.md; I2O 1.5 ch. 4), and the block-request builders of Linux's
i2o_block.c.  Shared by the executive, BSA, params, image-file and fuzz tests."""

from __future__ import annotations

import struct

from vhw.i2o import frames as f
from vhw.i2o.bsa import Disk, MemoryStorage
from vhw.i2o.iop import Iop
from vhw.i2o.mu import EMPTY, OUTBOUND_POST_BIT, REG_INBOUND, REG_INTR_MASK, REG_INTR_STATUS, REG_OUTBOUND
from vhw.pci.dma import DmaError

MEM_SIZE = 4 << 20
STATUS_ADDR = 0x1000
WORD_ADDR = 0x1100           # IopReset / OutboundInit status word
REPLY_BASE = 0x10000         # reply frames
REPLY_FRAME = 512            # Linux: 128 words
BUF = 0x100000               # HRT / LCT / systab / params buffers
DATA = 0x200000              # block data
TCTX = 0x80000000            # Linux sets bit 31 on post-wait transaction contexts


class FakeGuestMemory:
    """Guest RAM as a bytearray; outside it DMA raises DmaError like
    vhw.pci.memfd.GuestMemory does for unmapped addresses."""

    def __init__(self, size: int = MEM_SIZE) -> None:
        self.mem = bytearray(size)
        self.writes: list[tuple[int, bytes]] = []

    def _check(self, gpa: int, length: int) -> None:
        if gpa < 0 or length < 0 or gpa + length > len(self.mem):
            raise DmaError(gpa, length)

    def read(self, gpa: int, length: int) -> bytes:
        self._check(gpa, length)
        return bytes(self.mem[gpa:gpa + length])

    def write(self, gpa: int, data: bytes) -> None:
        self._check(gpa, len(data))
        self.mem[gpa:gpa + len(data)] = data
        self.writes.append((gpa, bytes(data)))

    def word(self, gpa: int) -> int:
        return int.from_bytes(self.mem[gpa:gpa + 4], "little")


def ram_disk(size: int = 4096, name: str = "disk.img", **kw) -> Disk:
    """A disk on a zero-filled MemoryStorage of ``size`` bytes."""
    return Disk(MemoryStorage(size), name=name, **kw)


def message(function: int, body: bytes = b"", *, tid: int = 0, sgl_offset: int = 0,
            ictx: int = 0x11223344, tctx: int = TCTX | 1, size: int | None = None) -> bytes:
    words = size if size is not None else 4 + (len(body) + 3) // 4
    return f.Header(function, target_tid=tid, initiator_context=ictx, transaction_context=tctx,
                    size=words, sgl_offset=sgl_offset).encode() + body


class HostDriver:
    """The host side of B2: pop an MFA, store the frame word by word, post;
    reply frames handed out at 0x44 and taken back by the ISR loop."""

    def __init__(self, iop: Iop, mem: FakeGuestMemory) -> None:
        self.iop, self.mem = iop, mem
        self.frame_size = REPLY_FRAME

    def post(self, frame: bytes) -> int:
        mfa = self.iop.read(REG_INBOUND, 4)
        assert mfa != EMPTY
        frame = frame + b"\0" * (-len(frame) % 4)
        for i in range(0, len(frame), 4):
            self.iop.write(mfa + i, 4, int.from_bytes(frame[i:i + 4], "little"))
        self.iop.write(REG_INBOUND, 4, mfa)
        return mfa

    def give_frames(self, count: int = 128, size: int = REPLY_FRAME) -> None:
        self.frame_size = size
        for i in range(count):
            self.iop.write(REG_OUTBOUND, 4, REPLY_BASE + i * size)

    def replies(self) -> list[f.Reply]:
        """The ISR loop: while status bit 3, pop 0x44, decode, give it back."""
        out = []
        while self.iop.read(REG_INTR_STATUS, 4) & OUTBOUND_POST_BIT:
            mfa = self.iop.read(REG_OUTBOUND, 4)
            assert REPLY_BASE <= mfa < REPLY_BASE + 256 * self.frame_size  # Linux BUG()s otherwise
            r = f.decode_reply(self.mem.read(mfa, self.frame_size))
            assert r is not None
            out.append(r)
            self.iop.write(REG_OUTBOUND, 4, mfa)
        return out

    def call(self, frame: bytes) -> f.Reply:
        """Post and expect exactly one reply (Linux i2o_msg_post_wait)."""
        self.post(frame)
        got = self.replies()
        assert len(got) == 1, got
        return got[0]

    # -- the executive messages, laid out as the drivers build them ----------
    def status_get(self) -> bytes:
        self.mem.mem[STATUS_ADDR:STATUS_ADDR + 88] = bytes(88)
        self.post(message(f.Function.EXEC_STATUS_GET,
                          struct.pack("<5I", 0, 0, STATUS_ADDR, 0, 88), ictx=0, tctx=0))
        return self.mem.read(STATUS_ADDR, 88)

    def state(self) -> int:
        return self.status_get()[10]

    def iop_reset(self) -> int:
        self.mem.mem[WORD_ADDR:WORD_ADDR + 4] = bytes(4)
        self.post(message(f.Function.EXEC_IOP_RESET, struct.pack("<4I", 0, 0, WORD_ADDR, 0),
                          ictx=0, tctx=0))
        return self.mem.word(WORD_ADDR)

    def outbound_init(self, frame_words: int = 128, *, sgl_offset: int = 6) -> int:
        self.mem.mem[WORD_ADDR:WORD_ADDR + 4] = bytes(4)
        self.post(message(f.Function.EXEC_OUTBOUND_INIT,
                          struct.pack("<4I", 4096, frame_words << 16 | 0x80, 0xD0000004, WORD_ADDR),
                          sgl_offset=sgl_offset))
        return self.mem.word(WORD_ADDR)

    def nop(self, mfa: int) -> None:
        """Recycle an MFA the host holds (i2o_msg_nop_mfa)."""
        for i, w in enumerate(struct.pack("<3I", 0x00030001, 0, 0)[j:j + 4] for j in range(0, 12, 4)):
            self.iop.write(mfa + 4 * i, 4, int.from_bytes(w, "little"))
        self.iop.write(REG_INBOUND, 4, mfa)

    def hrt_get(self, length: int) -> f.Reply:
        return self.call(message(f.Function.EXEC_HRT_GET, struct.pack("<2I", 0xD0000000 | length, BUF),
                                 sgl_offset=4))

    def sys_tab_set(self, iop_id: int) -> f.Reply:
        table = struct.pack("<BBHII", 1, 1, 0, 0, 0)
        self.mem.write(BUF, table)
        body = struct.pack("<8I", iop_id, 0, 0x54000000 | len(table), BUF, 0x54000000, 0,
                           0xD4000000, 0)
        return self.call(message(f.Function.EXEC_SYS_TAB_SET, body, sgl_offset=6))

    def lct_notify(self, change_ind: int, length: int = 8192) -> None:
        self.post(message(f.Function.EXEC_LCT_NOTIFY,
                          struct.pack("<4I", 0xFFFFFFFF, change_ind, 0xD0000000 | length, BUF),
                          sgl_offset=6, tctx=0))

    def params(self, tid: int, ops: bytes, *, setting: bool = False, result_len: int = 256,
               immediate: bool = True) -> tuple[f.Reply, bytes]:
        """UtilParamsGet/Set: the op list inline (Linux) or SIMPLE data-out (NetBSD)."""
        if immediate:
            sgl = f.encode_immediate(ops)
        else:
            self.mem.write(BUF + 0x8000, ops)
            sgl = f.encode_simple(len(ops), BUF + 0x8000, to_iop=True)
        sgl += f.encode_simple(result_len, BUF, last=True)
        fn = f.Function.UTIL_PARAMS_SET if setting else f.Function.UTIL_PARAMS_GET
        r = self.call(message(fn, struct.pack("<I", 0) + sgl, tid=tid, sgl_offset=5))
        return r, self.mem.read(BUF, result_len)


def linux_bringup(iop: Iop, mem: FakeGuestMemory) -> HostDriver:
    """B7 Linux steps 1-9 without assertions (for tests that need an
    OPERATIONAL IOP)."""
    host = HostDriver(iop, mem)
    iop.write(REG_INTR_MASK, 4, 0xFFFFFFFF)
    iop.write(REG_INTR_MASK, 4, 0)
    host.status_get()
    assert host.outbound_init() == 4
    host.give_frames()
    host.hrt_get(4096)
    host.sys_tab_set(2)
    host.call(message(f.Function.EXEC_SYS_ENABLE))
    return host


TID = 0x008
DISK_SIZE = 64 * 1024


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
