"""Sans-I/O model of the I2O messaging unit behind BAR0.

Register map and FIFO rules are docs/i2o-mpqemu.md B2:

* 0x30 interrupt status: bit 3 = outbound post FIFO not empty (raw, unmasked;
  Linux and NetBSD ISRs loop on it);
* 0x34 interrupt mask: bit 3 set = outbound-post interrupt masked;
* 0x40 inbound port: read pops a free inbound MFA (offset of a frame inside
  the BAR) or 0xFFFFFFFF; write posts a frame the host has filled;
* 0x44 outbound port: read pops a reply MFA (a guest physical address) or
  0xFFFFFFFF; write returns a free reply frame to the IOP.

Inbound frames live in the BAR (the MU owns the bytes); reply frames live in
guest memory and are written through the ``write_guest`` callable.  INTx is a
level, "outbound post FIFO non-empty and unmasked" (part A, device-model
rule); ``irq`` is called on every change of that level.  Every guest access
is answered and none raises: bad MFAs, odd sizes and overflowing FIFOs are
counted in ``stats`` and logged.  No clocks, no threads.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass
from enum import Enum
from collections.abc import Callable

log = logging.getLogger(__name__)

REG_INTR_STATUS = 0x30
REG_INTR_MASK = 0x34
REG_INBOUND = 0x40
REG_OUTBOUND = 0x44
#: Status/mask bit for the outbound post FIFO (B2).
OUTBOUND_POST_BIT = 0x08
EMPTY = 0xFFFFFFFF
_REGS_END = 0x48
_MASKS = {4: 0xFFFFFFFF, 8: (1 << 64) - 1}


class FrameState(Enum):
    """Who owns an inbound frame; the accounting B2 calls required."""

    FREE = "free"        # in the inbound free FIFO
    HOST = "host"        # popped by the host (or preserved after a failure)
    POSTED = "posted"    # posted, not yet taken by the executive
    IOP = "iop"          # taken by the executive, awaiting release()


@dataclass(frozen=True)
class PostedMessage:
    """A frame the host posted: its MFA and a snapshot of the whole frame."""

    mfa: int
    data: bytes


class MessagingUnit:
    """The MU registers, inbound frame area and both FIFO pairs.

    ``frame_base``/``frame_size``/``frame_count`` place the inbound frames in
    the BAR; the status block advertises ``frame_size // 4`` words and
    ``frame_count`` frames.  ``max_outbound`` bounds the free reply FIFO so a
    guest writing 0x44 in a loop cannot grow it without limit.
    """

    def __init__(self, write_guest: Callable[[int, bytes], None], *,
                 irq: Callable[[bool], None] | None = None,
                 bar_size: int = 0x10000, frame_base: int = 0x1000,
                 frame_size: int = 128, frame_count: int = 64,
                 max_outbound: int = 256, reply_frame_size: int = 128,
                 initial_mask: int = 0) -> None:
        if frame_size % 4 or frame_size < 16 or frame_base < _REGS_END:
            raise ValueError("frames must be word multiples placed after the registers")
        if frame_base + frame_size * frame_count > bar_size:
            raise ValueError("frame area does not fit in the BAR")
        self._write_guest = write_guest
        self._irq = irq
        self.bar_size = bar_size
        self.frame_base = frame_base
        self.frame_size = frame_size
        self.frame_count = frame_count
        self.max_outbound = max_outbound
        self._default_reply_size = reply_frame_size
        self._initial_mask = initial_mask & 0xFFFFFFFF
        self.stats: Counter[str] = Counter()
        self._area = bytearray(frame_size * frame_count)
        self.reset()

    # ---------------------------------------------------------------- state

    def reset(self) -> None:
        """Back to power-on: all frames free and zeroed, outbound FIFOs empty,
        mask at its initial value, the line low."""
        self._area[:] = bytes(len(self._area))
        self._state = {self._mfa(i): FrameState.FREE for i in range(self.frame_count)}
        self._in_free: deque[int] = deque(self._state)
        self._in_posted: deque[int] = deque()
        self.mask = self._initial_mask
        self.reply_frame_size = self._default_reply_size
        self.reset_outbound()

    def reset_outbound(self) -> None:
        """Forget every reply frame (ExecIopReset / ExecOutboundInit: the host
        re-posts its frames afterwards, B7)."""
        self._out_free: deque[int] = deque()
        self._out_free_set: set[int] = set()
        self._out_posted: deque[int] = deque()
        self._out_posted_set: set[int] = set()
        self._update_irq()

    def configure_outbound(self, reply_frame_size: int) -> None:
        """Set the reply frame size the host chose in ExecOutboundInit."""
        self.reply_frame_size = max(20, reply_frame_size)

    def _mfa(self, index: int) -> int:
        return self.frame_base + index * self.frame_size

    @property
    def status(self) -> int:
        """Interrupt status register: bit 3 while a reply waits (raw)."""
        return OUTBOUND_POST_BIT if self._out_posted else 0

    @property
    def irq_level(self) -> bool:
        """The INTx level; re-assert on resample while it stays True."""
        return bool(self._out_posted) and not self.mask & OUTBOUND_POST_BIT

    @property
    def free_inbound(self) -> int:
        return len(self._in_free)

    @property
    def free_outbound(self) -> int:
        return len(self._out_free)

    def frame_state(self, mfa: int) -> FrameState | None:
        return self._state.get(mfa)

    def _update_irq(self) -> None:
        level = self.irq_level
        if level != getattr(self, "_level", False):
            self._level = level
            if self._irq is not None:
                try:
                    self._irq(level)
                except Exception:  # the line's owner failed; the MU goes on
                    log.exception("irq callback failed")
                    self.stats["irq_error"] += 1

    # ------------------------------------------------------- BAR accesses

    def read(self, offset: int, size: int = 4) -> int:
        """A guest load of ``size`` bytes at BAR offset ``offset``."""
        if size == 4:  # the registers drivers poll, without the general path
            if offset == REG_OUTBOUND:
                return self._pop_outbound()
            if offset == REG_INTR_STATUS:
                return self.status
            if offset == REG_INBOUND:
                return self._pop_inbound()
        if size not in (1, 2, 4, 8) or offset < 0 or offset + size > self.bar_size:
            self.stats["bad_access"] += 1
            return (1 << (8 * size)) - 1 if 0 < size <= 8 else EMPTY
        if self.frame_base <= offset and offset + size <= self.frame_base + len(self._area):
            start = offset - self.frame_base
            return int.from_bytes(self._area[start:start + size], "little")
        if offset in (REG_INBOUND, REG_OUTBOUND):
            if size != 4:  # a port pop must be one whole 32-bit read
                self.stats["port_size"] += 1
                return (1 << (8 * size)) - 1
            return self._pop_inbound() if offset == REG_INBOUND else self._pop_outbound()
        regs = {REG_INTR_STATUS: self.status, REG_INTR_MASK: self.mask}
        value = 0
        for i in range(size):
            reg = (offset + i) & ~3
            if reg in regs:
                value |= ((regs[reg] >> (8 * ((offset + i) & 3))) & 0xFF) << (8 * i)
            elif reg in (REG_INBOUND, REG_OUTBOUND):
                value |= 0xFF << (8 * i)  # partial port reads never pop
        return value

    def write(self, offset: int, value: int, size: int = 4) -> None:
        """A guest store of ``size`` bytes of ``value`` at BAR offset ``offset``."""
        if size == 8 or size == 4:  # filling a frame: most stores, checked first
            start = offset - self.frame_base
            if start >= 0 and start + size <= len(self._area):
                self._area[start:start + size] = (value & _MASKS[size]).to_bytes(size, "little")
                return
        if size not in (1, 2, 4, 8) or offset < 0 or offset + size > self.bar_size:
            self.stats["bad_access"] += 1
            return
        value &= (1 << (8 * size)) - 1
        if self.frame_base <= offset and offset + size <= self.frame_base + len(self._area):
            start = offset - self.frame_base
            self._area[start:start + size] = value.to_bytes(size, "little")
            return
        if offset in (REG_INBOUND, REG_OUTBOUND) and size == 4:
            if offset == REG_INBOUND:
                self._post_inbound(value)
            else:
                self._free_outbound(value)
            return
        if offset == REG_INTR_MASK and size == 4:
            self.mask = value
            self._update_irq()
            return
        if REG_INTR_MASK <= offset < REG_INTR_MASK + 4 and offset + size <= REG_INTR_MASK + 4:
            shift = 8 * (offset - REG_INTR_MASK)
            keep = ~(((1 << (8 * size)) - 1) << shift) & 0xFFFFFFFF
            self.mask = (self.mask & keep) | value << shift
            self._update_irq()
            return
        self.stats["ignored_write"] += 1

    # -------------------------------------------------------------- FIFOs

    def _pop_inbound(self) -> int:
        if not self._in_free:
            self.stats["inbound_empty"] += 1
            return EMPTY
        mfa = self._in_free.popleft()
        self._state[mfa] = FrameState.HOST
        return mfa

    def _post_inbound(self, mfa: int) -> None:
        if self._state.get(mfa) is not FrameState.HOST:
            log.warning("host posted MFA %#x it does not own (%s)", mfa, self._state.get(mfa))
            self.stats["bad_post"] += 1
            return
        self._state[mfa] = FrameState.POSTED
        self._in_posted.append(mfa)

    def _pop_outbound(self) -> int:
        if not self._out_posted:
            return EMPTY
        mfa = self._out_posted.popleft()
        self._out_posted_set.discard(mfa)
        self._update_irq()
        return mfa

    def _free_outbound(self, addr: int) -> None:
        if addr == EMPTY or addr in self._out_free_set or addr in self._out_posted_set:
            self.stats["bad_free"] += 1
            return
        if len(self._out_free) >= self.max_outbound:
            self.stats["outbound_overflow"] += 1
            return
        self._out_free.append(addr)
        self._out_free_set.add(addr)

    # --------------------------------------------------- executive side

    def frame_bytes(self, mfa: int) -> bytes:
        """The current contents of inbound frame ``mfa`` (empty if no frame)."""
        if mfa not in self._state:
            return b""
        start = mfa - self.frame_base
        return bytes(self._area[start:start + self.frame_size])

    def posted_messages(self) -> list[PostedMessage]:
        """Take every posted frame, oldest first; each stays the IOP's until
        :meth:`release` (or :meth:`preserve` after a transport failure)."""
        out = []
        while self._in_posted:
            mfa = self._in_posted.popleft()
            self._state[mfa] = FrameState.IOP
            out.append(PostedMessage(mfa, self.frame_bytes(mfa)))
        return out

    def release(self, mfa: int) -> None:
        """The executive is done with a frame: back on the free FIFO."""
        if self._state.get(mfa) is not FrameState.IOP:
            self.stats["bad_release"] += 1
            return
        self._state[mfa] = FrameState.FREE
        self._in_free.append(mfa)

    def preserve(self, mfa: int) -> None:
        """Hand a frame back to the host instead of freeing it: a failure
        reply names it as the preserved MFA, which the host recycles (B4)."""
        if self._state.get(mfa) is not FrameState.IOP:
            self.stats["bad_release"] += 1
            return
        self._state[mfa] = FrameState.HOST

    def post_reply(self, reply: bytes) -> bool:
        """DMA ``reply`` into a free reply frame and queue its address.

        False when the host has given no free frame (the caller keeps the
        reply and retries after the next 0x44 write).  A reply longer than
        the negotiated frame is cut, logged and counted, never dropped.
        """
        if not self._out_free:
            self.stats["no_reply_frame"] += 1
            return False
        if len(reply) > self.reply_frame_size:
            log.warning("reply of %d bytes cut to %d", len(reply), self.reply_frame_size)
            self.stats["reply_truncated"] += 1
            reply = reply[:self.reply_frame_size]
        addr = self._out_free.popleft()
        self._out_free_set.discard(addr)
        try:
            self._write_guest(addr, bytes(reply))
        except Exception:  # unmapped guest memory: still hand the frame back
            log.exception("reply DMA to %#x failed", addr)
            self.stats["dma_error"] += 1
        self._out_posted.append(addr)
        self._out_posted_set.add(addr)
        self._update_irq()
        return True
