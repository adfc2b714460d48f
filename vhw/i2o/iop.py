"""The IOP behind BAR0: messaging unit, executive and one BSA DDM per disk.

:class:`Iop` is the BarHandler the PCI function calls.  A post to the
inbound port (0x40) is processed inline: each frame is decoded
(:func:`~vhw.i2o.frames.decode_request`), routed by target TID and its
frame released at once (requests that are held keep a copy).  Undecodable
frames get a FAIL reply naming the preserved MFA, which stays the host's
(B4).  Replies that find no free reply frame wait in a bounded queue that
every write to the outbound port (0x44) drains.

TIDs: 0x000 the executive, 0x008 + n the n-th disk.  Organization id
default 0x0000: no I2O SIG number is ours, and any value other than DPT's
0x001B keeps NetBSD and asr off their DPT-specific paths.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..pci.dma import Dma
from . import frames as f
from .bsa import BlockStorage, Disk
from .executive import NO_REPLY_FUNCTIONS, Executive, ExecutiveIdentity, IopState, Target, error
from .mu import EMPTY, REG_INBOUND, REG_OUTBOUND, MessagingUnit

__all__ = ["Disk", "IopConfig", "Iop", "FIRST_DDM_TID"]

log = logging.getLogger(__name__)

BAR_SIZE = 0x10000
FRAME_BASE = 0x1000
#: The first DDM TID; 2-7 stay free like on real IOPs (peer IOP ids).
FIRST_DDM_TID = 0x008
#: Replies waiting for a reply frame; beyond this they are dropped and counted.
MAX_PENDING_REPLIES = 1024


@dataclass(frozen=True)
class IopConfig:
    iop_id: int = 2            # the executive's IOP id (unit+2 as Linux assigns; SysTabSet may change it)
    org_id: int = 0x0000       # see the module docstring
    product_id: str = "vhw virtual IOP"   # 24 chars max in the status block
    vendor: str = "vhw"
    product: str = "I2O IOP"
    revision: str = "1.0"
    serial: str = ""
    inbound_frames: int = 64
    inbound_frame_size: int = 128  # bytes
    max_outbound: int = 256


class Iop:
    """The IOP behind BAR0: messaging unit + executive + DDMs (one BSA per disk)."""

    bar_size = BAR_SIZE

    def __init__(self, dma: Dma, *, irq: Callable[[bool], None] | None = None,
                 config: IopConfig = IopConfig(), disks: Sequence[Disk] = (),
                 pci_location: tuple[int, int, int] = (0, 5, 0)) -> None:
        self.dma = dma
        self.config = config
        self.pci_location = pci_location
        #: PCI vendor/device ids published in the HRT's PCI bus info.
        self.pci_ids: tuple[int, int] = (0x1234, 0x0E01)
        #: IOP-level counters; :attr:`stats` adds the messaging unit's.
        self.counters: Counter = Counter()
        self.mu = MessagingUnit(self._write_guest, irq=irq, bar_size=BAR_SIZE,
                                frame_base=FRAME_BASE, frame_size=config.inbound_frame_size,
                                frame_count=config.inbound_frames,
                                max_outbound=config.max_outbound)
        self._pending: deque[bytes] = deque()
        #: vhw.faults.IopFaults asked per message (set by IopAttachment); None: no faults.
        self.faults = None
        self.fault_index = 0
        #: Replies a fault holds back: [due time or None (withheld), release generation, reply].
        self._held: list[list] = []
        self.executive = Executive(self, ExecutiveIdentity(
            iop_id=config.iop_id, org_id=config.org_id, product_id=config.product_id,
            vendor=config.vendor, product=config.product, revision=config.revision,
            serial=config.serial, inbound_frames=config.inbound_frames,
            inbound_frame_size=config.inbound_frame_size, max_outbound=config.max_outbound))
        self.disks = [BlockStorage(FIRST_DDM_TID + n, self, disk, org_id=config.org_id,
                                   vendor=config.vendor, revision=config.revision)
                      for n, disk in enumerate(disks)]
        self.executive.devices = list(self.disks)
        self.targets: dict[int, Target] = {t.tid: t for t in [self.executive, *self.disks]}

    # -- BarHandler ----------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        """BAR0 load."""
        faults = self.faults
        if faults is not None and (faults.armed or self._held):
            return self._read_with_faults(offset, size, faults)
        return self.mu.read(offset, size)

    def _read_with_faults(self, offset: int, size: int, faults) -> int:
        if self._held:
            self._release_held(faults)
        if offset == REG_INBOUND and size == 4 and faults.frames_exhausted(self.fault_index):
            return EMPTY  # "no free frame": the host must wait and read again (B2)
        return self.mu.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        """BAR0 store: a post to 0x40 runs the message(s) now; a free reply
        frame at 0x44 lets waiting replies out."""
        self.mu.write(offset, value, size)
        if size != 4:
            return
        if offset == REG_INBOUND:
            self._process()
        elif offset == REG_OUTBOUND:
            self._flush_replies()

    @property
    def stats(self) -> Counter:
        """Every counter of the IOP and its messaging unit, merged (a copy)."""
        merged = Counter(self.counters)
        merged.update(self.mu.stats)
        return merged

    @property
    def irq_level(self) -> bool:
        return self.mu.irq_level

    # -- lifecycle -------------------------------------------------------------------
    def reset(self) -> None:
        """PCI reset / power-on: write-back data reaches the images first,
        then MU, executive and DDMs return to power-on state."""
        for d in self.disks:
            d.reset()
        self.executive.power_on()
        self._pending.clear()
        self._drop_held("reset")
        self.mu.reset()

    def close(self) -> None:
        """Write back dirty blocks and make every disk's storage durable
        (the storages stay open: their owner closes them)."""
        errors = []
        for d in self.disks:
            try:
                d.close()
            except OSError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    # -- what targets call (executive.Host) ---------------------------------------------
    def emit(self, reply: bytes) -> None:
        """Send a reply now, or queue it until the host frees a reply frame."""
        self.counters["replies"] += 1
        if not self._pending and self.mu.post_reply(reply):
            return
        if len(self._pending) >= MAX_PENDING_REPLIES:
            self.counters["reply_overflow"] += 1
            log.warning("i2o: reply queue full, reply dropped")
            return
        self._pending.append(reply)

    @property
    def page_size(self) -> int:
        return self.executive.host_page_size

    def lct_changed(self) -> None:
        self.executive.lct_changed()

    def iop_reset(self) -> None:
        """ExecIopReset: reply frames and undelivered replies are forgotten."""
        self.counters["replies_dropped_by_reset"] += len(self._pending)
        self._pending.clear()
        self._drop_held("ExecIopReset")
        self.mu.reset_outbound()

    def outbound_init(self, reply_frame_size: int) -> None:
        """ExecOutboundInit: as a reset of the outbound side, then the new frame size."""
        self.iop_reset()
        self.mu.configure_outbound(reply_frame_size)

    @property
    def pending_replies(self) -> int:
        return len(self._pending)

    @property
    def held_requests(self) -> int:
        """Requests answered only later: LctNotify and EventRegister."""
        return len(self.executive.held_lct) + sum(len(t.events) for t in self.targets.values())

    # -- internals -------------------------------------------------------------------------
    def _write_guest(self, addr: int, data: bytes) -> None:
        self.dma.write(addr, data)

    def _flush_replies(self) -> None:
        while self._pending and self.mu.post_reply(self._pending[0]):
            self._pending.popleft()

    def _process(self) -> None:
        for msg in self.mu.posted_messages():
            self.counters["messages"] += 1
            request = f.decode_request(msg.data)
            if isinstance(request, f.TransportFailure):
                self.counters["transport_failures"] += 1
                self.mu.preserve(msg.mfa)
                self.emit(f.encode_failure_reply(msg.data, request, msg.mfa,
                                                 iop_id=self.executive.iop_id))
                continue
            self.mu.release(msg.mfa)
            faults = self.faults
            if faults is not None and faults.armed and request.header.function not in NO_REPLY_FUNCTIONS:
                answer = self._dispatch_with_faults(request, faults)
            else:
                answer = self._dispatch(request)
            if answer is not None:
                self.emit(answer)

    # -- fault injection (vhw.faults) ------------------------------------------------------
    def _dispatch_with_faults(self, req: f.Request, faults) -> bytes | None:
        h = req.header
        decision = faults.on_message(self.fault_index, h.function, h.target_tid)
        if decision is None:
            return self._dispatch(req)
        where = {"iop": self.fault_index, "function": int(h.function), "tid": h.target_tid,
                 "transaction_context": h.transaction_context}
        if decision.action == "fail":
            # Not run: reply word 4 carries ReqStatus and DetailedStatus (B4, I2O 1.5 table 3-2).
            status, detail = decision.params["status"], decision.params.get("detail", 0x0018)
            faults.took_effect("fail", status=status, detail=detail, **where)
            return error(req, detail, status)
        answer = self._dispatch(req)
        if answer is None:  # answered later (LctNotify, EventRegister): nothing to hold now
            log.info("i2o: fault %s: function %#x has no reply now; nothing held", decision.action, h.function)
            return None
        if decision.action == "delay":
            seconds = decision.params["seconds"]
            faults.took_effect("delay", seconds=seconds, **where)
            self._held.append([faults.clock() + seconds, None, answer])
        else:  # withhold
            faults.took_effect("withhold", **where)
            self._held.append([None, faults.release_generation, answer])
        return None

    def _release_held(self, faults) -> None:
        """Post held replies whose delay ran out or that release() let go."""
        now, generation = faults.clock(), faults.release_generation
        keep = []
        for item in self._held:
            due, seen, reply = item
            if (due is not None and now >= due) or (due is None and seen != generation):
                log.info("i2o: fault: held reply released (%d bytes)", len(reply))
                self.emit(reply)
            else:
                keep.append(item)
        self._held = keep

    def _drop_held(self, why: str) -> None:
        if self._held:
            log.warning("i2o: %s: %d delayed or withheld repl(ies) dropped", why, len(self._held))
            self.counters["held_replies_dropped"] += len(self._held)
            self._held = []

    def _dispatch(self, req: f.Request) -> bytes | None:
        target = self.targets.get(req.header.target_tid)
        if target is None:
            if req.header.function == f.Function.UTIL_NOP:
                return None
            return error(req, f.DetailedStatus.INVALID_TARGET_ADDRESS)
        if (target is not self.executive and self.executive.state not in _DDM_STATES
                and req.header.function != f.Function.UTIL_NOP):
            return error(req, f.DetailedStatus.INVALID_REQUEST)
        try:
            return target.handle(req)
        except Exception:  # a bug here must not take the guest's reply with it
            log.exception("i2o: TID %#x function %#x failed", target.tid, req.header.function)
            self.counters["internal_error"] += 1
            if req.header.function in NO_REPLY_FUNCTIONS:
                return None
            return error(req, f.DetailedStatus.UNKNOWN_ERROR, f.ReqStatus.TRANSACTION_ERROR)


#: DDMs answer once the outbound queue exists (pst uses them from HOLD).
_DDM_STATES = {IopState.HOLD, IopState.READY, IopState.OPERATIONAL}
