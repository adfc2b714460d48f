"""The IOP executive (TID 0) and what every I2O target shares.

Executive behaviour follows docs/i2o-mpqemu.md B7 (the Linux,
NetBSD and FreeBSD init sequences) and B8 (status block, HRT, LCT, system
table).  The utility class messages every target answers (B6 "Utility":
NOP, ParamsGet/Set, Claim/ClaimRelease, EventRegister/Ack, Abort) live in
:class:`Target`, so DDMs get them for free.

Power-on state is RESET (2).  Linux ``i2o_iop_activate`` then skips its own
ExecIopReset (it resets only READY/OPERATIONAL/HOLD/FAILED) and goes
straight to OutboundInit; NetBSD ``iop_reset`` always resets, which from
RESET is just as valid.  Both then see HOLD after OutboundInit.

Sans-I/O: guest memory is the injected ``dma`` (read/write raising
``DmaError``), replies leave through :meth:`Host.emit`, nothing blocks.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol
from collections.abc import Callable, Sequence

from ..pci.dma import Dma, DmaError
from . import frames as f
from .params import (DEVICE_IDENTITY, EXEC_IOP_HARDWARE, Field, ParamStore, ScalarGroup,
                     identity_groups, text)

log = logging.getLogger(__name__)


class IopState(IntEnum):
    """Executive states (B6 "IOP states")."""

    INITIALIZING = 0x01
    RESET = 0x02
    HOLD = 0x04
    READY = 0x05
    OPERATIONAL = 0x08
    FAILED = 0x10
    FAULTED = 0x11


#: ExecIopReset status byte values (Linux I2O_CMD_IN_PROGRESS / REJECTED).
RESET_IN_PROGRESS = 0x01
RESET_REJECTED = 0x02
#: ExecOutboundInit status word values (I2O_EXEC_OUTBOUND_INIT_*).
OUTBOUND_INIT_IN_PROGRESS = 1
OUTBOUND_INIT_REJECTED = 2
OUTBOUND_INIT_FAILED = 3
OUTBOUND_INIT_COMPLETE = 4

STATUS_BLOCK_SIZE = 88
OUTBOUND_INIT_SGL_WORD = 6
LCT_HEADER_WORDS = 3
LCT_ENTRY_WORDS = 9
HRT_ENTRY_WORDS = 4
CLASS_EXECUTIVE = 0x000
CLASS_ANY = 0xFFFFFFFF
I2O_BUS_PCI = 4

# UtilClaim flags (NetBSD i2o.h I2O_UTIL_CLAIM_*): the claim type is bits 24-31.
CLAIM_PRIMARY = 0x01
CLAIM_MANAGEMENT = 0x04
# Generic event indicators (I2O_EVENT_GEN_*).
EVENT_FIELD_MODIFIED = 0x01000000
EVENT_DEVICE_RESET = 0x04000000
EVENT_EXEC_MODIFIED_LCT = 0x00000200

#: Functions whose request never gets a reply frame (B10 "Functions that
#: never produce a reply frame"): StatusGet, OutboundInit, IopReset, NOP.
#: EventRegister and a not-yet-due LctNotify are held instead.
NO_REPLY_FUNCTIONS = frozenset({f.Function.UTIL_NOP, f.Function.EXEC_STATUS_GET,
                                f.Function.EXEC_OUTBOUND_INIT, f.Function.EXEC_IOP_RESET})


# ---------------------------------------------------------------------------
# data movement through SGLs


def gather(dma: Dma, elements: Sequence[f.SglElement], length: int | None = None) -> bytes:
    """Bytes the host offers through ``elements`` (IMMEDIATE data inline,
    SIMPLE buffers by DMA), at most ``length``.  DmaError propagates."""
    out = bytearray()
    want = sum(e.count for e in elements) if length is None else length
    for e in elements:
        if len(out) >= want:
            break
        n = min(e.count, want - len(out))
        if e.data is not None:
            out += e.data[:n]
        elif n and e.address is not None:
            out += dma.read(e.address, n)
    return bytes(out)


def scatter(dma: Dma, elements: Sequence[f.SglElement], data: bytes) -> tuple[int, bool]:
    """Write ``data`` across the host's SIMPLE buffers in order.

    Returns (bytes written, DMA failed).  Data beyond the buffers is cut;
    IMMEDIATE elements cannot receive data and are skipped.
    """
    done = 0
    for e in elements:
        if done >= len(data):
            break
        if e.address is None:
            continue
        n = min(e.count, len(data) - done)
        try:
            dma.write(e.address, data[done:done + n])
        except DmaError:
            return done, True
        done += n
    return done, False


def reply(req: f.Request, status: int = f.ReqStatus.SUCCESS,
          detail: int = f.DetailedStatus.SUCCESS, body: bytes = b"") -> bytes:
    return f.encode_reply(req.header, status, detail, body)


def error(req: f.Request, detail: int,
          status: int = f.ReqStatus.ERROR_NO_DATA_TRANSFER) -> bytes:
    return f.encode_reply(req.header, status, detail)


# ---------------------------------------------------------------------------
# targets


class Host(Protocol):
    """What targets need from the IOP around them."""

    dma: Dma
    counters: Counter

    @property
    def page_size(self) -> int:
        """The host page size ExecOutboundInit gave (PAGE_LIST pieces)."""

    def emit(self, reply: bytes) -> None: ...
    def lct_changed(self) -> None: ...


@dataclass
class EventRegistration:
    """A held UtilEventRegister: its header (contexts to echo) and mask."""

    header: f.Header
    mask: int


class Target:
    """An addressable I2O device (TID) with its parameter groups, claims and
    event registrations: the utility class every device implements."""

    class_id: int = 0

    def __init__(self, tid: int, host: Host, params: ParamStore) -> None:
        self.tid = tid
        self.host = host
        self.params = params
        self.claims: dict[int, tuple[int, int]] = {}  # claim type -> (initiator TID, ictx)
        self.events: dict[tuple[int, int], EventRegistration] = {}

    # -- state ---------------------------------------------------------------
    @property
    def user_tid(self) -> int:
        """The LCT user TID: the primary claimant's TID, else 0xFFF (none)."""
        owner = self.claims.get(CLAIM_PRIMARY)
        return owner[0] if owner else f.NO_TID

    def reset(self) -> None:
        """Power-on/IopReset: claims and event registrations are forgotten."""
        self.claims.clear()
        self.events.clear()
        self._set_owner()

    def lct_entry(self, change_ind: int) -> bytes:
        """This target's 9-word LCT entry (B8 LCT)."""
        return struct.pack("<HHIIHHII8sI", LCT_ENTRY_WORDS, self.tid & 0xFFF, change_ind, 0,
                           (self.class_id & 0xFFF) | 1 << 12, self.org_id, 0,
                           (self.user_tid & 0xFFF) | (self.parent_tid & 0xFFF) << 12,
                           self.identity_tag, self.event_capabilities)

    org_id: int = 0
    parent_tid: int = f.IOP_TID
    identity_tag: bytes = b""
    event_capabilities: int = 0

    def notify(self, indicator: int, data: bytes = b"") -> None:
        """Deliver an event to every registration whose mask selects it
        (UtilEventRegister replies: word 4 = indicator, then event data)."""
        for reg in list(self.events.values()):
            if reg.mask & indicator:
                body = struct.pack("<I", indicator) + data + b"\0" * (-len(data) % 4)
                req = reg.header
                hdr = f.Header(f.Function.UTIL_EVENT_REGISTER, req.target_tid, req.initiator_tid,
                               req.initiator_context, req.transaction_context,
                               size=f.HEADER_WORDS + len(body) // 4, flags=f.MsgFlags.REPLY)
                self.host.counters["events"] += 1
                self.host.emit(hdr.encode() + body)

    # -- dispatch --------------------------------------------------------------
    def handle(self, req: f.Request) -> bytes | None:
        """A request for this TID: the reply, or None when none is due now
        (no-reply functions and held requests)."""
        fn = req.header.function
        handler = _UTILITY.get(fn)
        if handler is not None:
            return handler(self, req)
        return self.handle_class(req)

    def handle_class(self, req: f.Request) -> bytes | None:
        """Class-specific functions; the base class supports none."""
        return error(req, f.DetailedStatus.UNSUPPORTED_FUNCTION)

    # -- utility class ------------------------------------------------------------
    def _nop(self, req: f.Request) -> None:
        return None

    def _params(self, req: f.Request) -> bytes:
        """UtilParamsGet/Set (B9): operation list from SGL buffer 1 (IMMEDIATE
        or SIMPLE data-out), results to buffer 2."""
        sgl = req.sgl(page_size=self.host.page_size)
        if isinstance(sgl, f.RequestError):
            return error(req, sgl.detail)
        if len(sgl.buffers) < 2:
            return error(req, f.DetailedStatus.MISSING_PARAMETER)
        try:
            oplist = gather(self.host.dma, sgl.buffers[0], length=4096)
        except DmaError:
            self.host.counters["dma_error"] += 1
            return error(req, f.DetailedStatus.INVALID_PARAMETER)
        setting = req.header.function == f.Function.UTIL_PARAMS_SET
        outcome = self.params.execute(oplist, setting=setting)
        results = outcome.results
        room = sum(e.count for e in sgl.buffers[1])
        written, failed = scatter(self.host.dma, sgl.buffers[1], results[:room])
        if failed:
            self.host.counters["dma_error"] += 1
            return error(req, f.DetailedStatus.INVALID_PARAMETER,
                         f.ReqStatus.ERROR_PARTIAL_TRANSFER if written else
                         f.ReqStatus.ERROR_NO_DATA_TRANSFER)
        if outcome.modified:
            self.notify(EVENT_FIELD_MODIFIED)
        if written < outcome.required:
            # NetBSD iop_field_get_all accepts exactly this as "data present":
            # ERROR_PARTIAL_XFER with UNKNOWN_ERROR when the buffer was short.
            return reply(req, f.ReqStatus.ERROR_PARTIAL_TRANSFER, f.DetailedStatus.UNKNOWN_ERROR)
        if not outcome.all_ok:
            # Linux i2o_parm_issue reads the block status; any non-zero
            # ReqStatus also fails NetBSD's field getters.
            return reply(req, f.ReqStatus.ERROR_PARTIAL_TRANSFER, f.DetailedStatus.INVALID_PARAMETER)
        return reply(req)

    def _claim(self, req: f.Request) -> bytes:
        """UtilClaim: one claimant per claim type; the claimant is the
        initiator TID plus its initiator context (one per OSM).  A claim
        another claimant holds fails with DEVICE_BUSY."""
        kind = req.word(4) >> 24
        if not CLAIM_PRIMARY <= kind <= CLAIM_MANAGEMENT:
            return error(req, f.DetailedStatus.INVALID_PARAMETER)
        who = (req.header.initiator_tid, req.header.initiator_context)
        holder = self.claims.get(kind)
        if holder is not None and holder != who:
            return error(req, f.DetailedStatus.DEVICE_BUSY)
        if holder is None:
            self.claims[kind] = who
            if kind == CLAIM_PRIMARY:
                self._set_owner()
                self.host.lct_changed()
        return reply(req)

    def _claim_release(self, req: f.Request) -> bytes:
        kind = req.word(4) >> 24
        who = (req.header.initiator_tid, req.header.initiator_context)
        if self.claims.get(kind) != who:
            return error(req, f.DetailedStatus.INVALID_REQUEST)
        del self.claims[kind]
        if kind == CLAIM_PRIMARY:
            self._set_owner()
            self.host.lct_changed()
        return reply(req)

    def _set_owner(self) -> None:
        ident = self.params.groups.get(DEVICE_IDENTITY)
        if ident is not None:
            ident.put(1, self.user_tid)

    def _event_register(self, req: f.Request) -> None:
        """Held: replies come only with events; mask 0 unregisters."""
        key = (req.header.initiator_tid, req.header.initiator_context)
        mask = req.word(4)
        if mask:
            self.events[key] = EventRegistration(req.header, mask)
        else:
            self.events.pop(key, None)
        return None

    def _ack(self, req: f.Request) -> bytes:
        return reply(req)

    def _abort(self, req: f.Request) -> bytes:
        """Nothing is ever in progress between posts: 0 aborted (reply word 5)."""
        return reply(req, body=struct.pack("<I", 0))


_UTILITY: dict[int, Callable[[Target, f.Request], bytes | None]] = {
    f.Function.UTIL_NOP: Target._nop,
    f.Function.UTIL_ABORT: Target._abort,
    f.Function.UTIL_PARAMS_GET: Target._params,
    f.Function.UTIL_PARAMS_SET: Target._params,
    f.Function.UTIL_CLAIM: Target._claim,
    f.Function.UTIL_CLAIM_RELEASE: Target._claim_release,
    f.Function.UTIL_EVENT_REGISTER: Target._event_register,
    f.Function.UTIL_EVENT_ACK: Target._ack,
}


# ---------------------------------------------------------------------------
# the executive


@dataclass(frozen=True)
class ExecutiveIdentity:
    """Static facts the status block, HRT and parameter groups publish."""

    iop_id: int
    org_id: int
    product_id: str
    vendor: str
    product: str
    revision: str
    serial: str
    inbound_frames: int
    inbound_frame_size: int
    max_outbound: int


@dataclass
class HeldLctNotify:
    request: f.Request
    buffer: tuple[f.SglElement, ...]
    change_ind: int
    class_filter: int


class ExecutiveHost(Host, Protocol):
    pci_location: tuple[int, int, int]
    pci_ids: tuple[int, int]

    def iop_reset(self) -> None: ...
    def outbound_init(self, reply_frame_size: int) -> None: ...


class Executive(Target):
    """The executive: state machine, status block, HRT, LCT, system table."""

    class_id = CLASS_EXECUTIVE
    identity_tag = b"vhw-exec"

    def __init__(self, host: ExecutiveHost, ident: ExecutiveIdentity) -> None:
        params = ParamStore(identity_groups(
            class_id=CLASS_EXECUTIVE, tid=f.IOP_TID, vendor=ident.vendor, product=ident.product,
            description="I2O executive", revision=ident.revision, serial=ident.serial,
            ddm_name="vhw executive"))
        params.add(ScalarGroup(EXEC_IOP_HARDWARE, [
            Field("i2o_vendor_id", "H"), Field("product_id", "H"), Field("processor_memory", "I"),
            Field("permanent_memory", "I"), Field("capabilities", "I"),
            Field("processor_type", "B"), Field("processor_version", "B")],
            [ident.org_id, 0x0001, 0, 0, 0, 0, 0]))
        super().__init__(f.IOP_TID, host, params)
        self.xhost = host
        self.ident = ident
        self.org_id = ident.org_id
        self.parent_tid = f.NO_TID
        self.devices: list[Target] = []
        self.power_on()

    def power_on(self) -> None:
        """The state a PCI reset leaves: RESET, nothing held, LCT indicator 1
        (so a change-indicator-0 LctNotify is answered at once)."""
        self.state = IopState.RESET
        self.iop_id = self.ident.iop_id
        self.init_code = 0
        self.host_page_size = 4096
        self.change_ind = 1
        self.held_lct: list[HeldLctNotify] = []
        super().reset()

    # -- tables ----------------------------------------------------------------
    def status_block(self) -> bytes:
        """The 88-byte status block (B8), sync byte 0xFF last."""
        ident = self.ident
        head = struct.pack(
            "<HHHHHBBHBBIII24sII6I3x",
            ident.org_id, 0, self.iop_id & 0xFFF, 0, f.VERSION_15 << 12, self.state, 0,
            ident.inbound_frame_size // 4, self.init_code, 0, ident.inbound_frames,
            ident.inbound_frames, ident.max_outbound, text(ident.product_id, 24),
            self.lct_size(), 0, 0, 0, 0, 0, 0, 0)
        return head + b"\xff"

    def lct_size(self) -> int:
        return 4 * (LCT_HEADER_WORDS + LCT_ENTRY_WORDS * (1 + len(self.devices)))

    def lct(self, class_filter: int = CLASS_ANY) -> bytes:
        """Header + the executive entry + one entry per DDM (B8 LCT)."""
        targets = [self, *self.devices]
        if class_filter != CLASS_ANY:
            targets = [t for t in targets if t.class_id == class_filter & 0xFFF]
        entries = b"".join(t.lct_entry(self.change_ind) for t in targets)
        words = LCT_HEADER_WORDS + len(entries) // 4
        return struct.pack("<HHII", words, 0 | 1 << 12, 0, self.change_ind) + entries

    def hrt(self) -> bytes:
        """One PCI entry for this IOP at ``pci_location`` (B8 HRT)."""
        bus, device, function = self.xhost.pci_location
        vendor, device_id = self.xhost.pci_ids
        entry = struct.pack("<IHBB4BHH", bus << 16 | f.IOP_TID, f.IOP_TID, bus & 0xFF, I2O_BUS_PCI,
                            function & 0xFF, device & 0xFF, bus & 0xFF, 0, vendor, device_id)
        return struct.pack("<HBBI", 1, HRT_ENTRY_WORDS, 1, 0) + entry

    # -- LCT changes ---------------------------------------------------------------
    def lct_changed(self) -> None:
        """Bump the change indicator and answer held LctNotify requests it
        now satisfies (B7 Linux step 10: held until the LCT changes)."""
        self.change_ind += 1
        still = []
        for held in self.held_lct:
            if held.change_ind < self.change_ind:
                self.host.emit(self._send_lct(held.request, held.buffer, held.class_filter))
            else:
                still.append(held)
        self.held_lct = still
        self.notify(EVENT_EXEC_MODIFIED_LCT)

    def _send_lct(self, req: f.Request, buffer: Sequence[f.SglElement], class_filter: int) -> bytes:
        """DMA the LCT, cut to the buffer: drivers read table_size from the
        header and retry with a bigger buffer (Linux i2o_device_parse_lct,
        NetBSD iop_lct_get)."""
        written, failed = scatter(self.host.dma, buffer, self.lct(class_filter))
        if failed:
            self.host.counters["dma_error"] += 1
            return error(req, f.DetailedStatus.INVALID_PARAMETER)
        return reply(req)

    # -- executive class functions ------------------------------------------------
    def handle_class(self, req: f.Request) -> bytes | None:
        handler = _EXECUTIVE.get(req.header.function)
        if handler is None:
            return error(req, f.DetailedStatus.UNSUPPORTED_FUNCTION)
        return handler(self, req)

    def _dma_word(self, req: f.Request, lo_word: int, value: int) -> None:
        addr = req.word(lo_word) | req.word(lo_word + 1) << 32
        try:
            self.host.dma.write(addr, struct.pack("<I", value))
        except DmaError:
            self.host.counters["dma_error"] += 1

    def _status_get(self, req: f.Request) -> None:
        """No reply frame: the block goes to words 6/7, length word 8; the
        host polls byte 87 for 0xFF, so it is written last (B7 step 2)."""
        addr = req.word(6) | req.word(7) << 32
        length = min(req.word(8), STATUS_BLOCK_SIZE)
        block = self.status_block()[:length]
        try:
            if length == STATUS_BLOCK_SIZE:
                self.host.dma.write(addr, block[:-1])
                self.host.dma.write(addr + STATUS_BLOCK_SIZE - 1, block[-1:])
            elif block:
                self.host.dma.write(addr, block)
        except DmaError:
            self.host.counters["dma_error"] += 1
        return None

    def _iop_reset(self, req: f.Request) -> None:
        """Status byte 1 (in progress) to words 6/7 and back to RESET:
        reply frames, queued replies and held requests are forgotten; the
        inbound FIFO keeps offering frames (NetBSD waits for one)."""
        for t in [self, *self.devices]:
            t.reset()
        self.state = IopState.RESET
        self.init_code = 0
        self.held_lct = []
        self.xhost.iop_reset()
        self._dma_word(req, 6, RESET_IN_PROGRESS)
        return None

    def _outbound_init(self, req: f.Request) -> None:
        """Body: host page size, init code | reply frame words << 16; the
        status word (SIMPLE SGL) must end at exactly 4 (B7 NetBSD step 4).
        NetBSD ``iop_ofifo_init`` appends the SGL at word 6 without setting
        the SGL offset, so 0 means 6 here."""
        offset = req.header.sgl_offset or OUTBOUND_INIT_SGL_WORD
        sgl = (f.parse_sgl(req.data, offset) if offset <= req.header.size
               else f.RequestError(f.DetailedStatus.MESSAGE_TOO_SMALL, "no status SGL"))
        if isinstance(sgl, f.RequestError) or not sgl.elements or sgl.elements[0].address is None:
            self.host.counters["bad_outbound_init"] += 1
            return None
        words = req.word(5) >> 16
        if self.state not in (IopState.RESET, IopState.HOLD) or words * 4 < f.REPLY_WORDS * 4:
            status = OUTBOUND_INIT_REJECTED
        else:
            self.init_code = req.word(5) & 0xFF
            page = req.word(4)
            self.host_page_size = page if 512 <= page <= 1 << 16 and not page & page - 1 else 4096
            self.xhost.outbound_init(words * 4)
            self.state = IopState.HOLD
            status = OUTBOUND_INIT_COMPLETE
        scatter(self.host.dma, sgl.elements[:1], struct.pack("<I", status))
        return None

    def _iop_clear(self, req: f.Request) -> bytes:
        if self.state == IopState.RESET:
            return error(req, f.DetailedStatus.INVALID_REQUEST)
        self.state = IopState.HOLD
        return reply(req)

    def _hrt_get(self, req: f.Request) -> bytes:
        """HRT cut to the buffer; Linux re-asks with entries*len*4 bytes."""
        sgl = req.sgl(page_size=self.host.page_size)
        if isinstance(sgl, f.RequestError):
            return error(req, sgl.detail)
        if not sgl.buffers:
            return error(req, f.DetailedStatus.MISSING_PARAMETER)
        _, failed = scatter(self.host.dma, sgl.buffers[0], self.hrt())
        if failed:
            self.host.counters["dma_error"] += 1
            return error(req, f.DetailedStatus.INVALID_PARAMETER)
        return reply(req)

    def _lct_notify(self, req: f.Request) -> bytes | None:
        """Answer now when the request's indicator is 0 or below ours,
        otherwise hold it until the LCT changes (Linux exec-osm comment:
        "reply is sent after change indicator of the LCT is > change_ind")."""
        sgl = req.sgl(page_size=self.host.page_size)
        if isinstance(sgl, f.RequestError):
            return error(req, sgl.detail)
        if not sgl.buffers:
            return error(req, f.DetailedStatus.MISSING_PARAMETER)
        class_filter, wanted = req.word(4), req.word(5)
        if wanted == 0 or wanted < self.change_ind:
            return self._send_lct(req, sgl.buffers[0], class_filter)
        self.held_lct.append(HeldLctNotify(req, sgl.buffers[0], wanted, class_filter))
        self.host.counters["lct_held"] += 1
        return None

    def _sys_tab_set(self, req: f.Request) -> bytes:
        """IOP id in word 4 as ``unit+2`` (Linux) or ``(unit+2) << 12``
        (NetBSD); three SGL buffers (system table, private memory, private
        I/O).  Only the system table's header is read, so that a table the
        IOP cannot reach is refused; Linux's private windows are the
        windows themselves, not descriptions of them."""
        if self.state not in (IopState.HOLD, IopState.READY, IopState.OPERATIONAL):
            return error(req, f.DetailedStatus.INVALID_REQUEST)
        sgl = req.sgl(page_size=self.host.page_size)
        if isinstance(sgl, f.RequestError):
            return error(req, sgl.detail)
        raw = req.word(4)
        iop_id = raw & 0xFFF or (raw >> 12) & 0xFFF
        if iop_id in (f.IOP_TID, f.HOST_TID):
            return error(req, f.DetailedStatus.INVALID_PARAMETER)
        if sgl.buffers:
            try:
                gather(self.host.dma, sgl.buffers[0], length=16)
            except DmaError:
                self.host.counters["dma_error"] += 1
                return error(req, f.DetailedStatus.INVALID_PARAMETER)
        self.iop_id = iop_id
        if self.state == IopState.HOLD:
            self.state = IopState.READY
        return reply(req)

    def _sys_enable(self, req: f.Request) -> bytes:
        if self.state not in (IopState.READY, IopState.OPERATIONAL):
            return error(req, f.DetailedStatus.INVALID_REQUEST)
        self.state = IopState.OPERATIONAL
        return reply(req)

    def _sys_quiesce(self, req: f.Request) -> bytes:
        if self.state not in (IopState.READY, IopState.OPERATIONAL):
            return error(req, f.DetailedStatus.INVALID_REQUEST)
        self.state = IopState.READY
        return reply(req)

    def _path_enable(self, req: f.Request) -> bytes:
        if self.state not in (IopState.READY, IopState.OPERATIONAL):
            return error(req, f.DetailedStatus.INVALID_REQUEST)
        return reply(req)


_EXECUTIVE: dict[int, Callable[[Executive, f.Request], bytes | None]] = {
    f.Function.EXEC_STATUS_GET: Executive._status_get,
    f.Function.EXEC_IOP_RESET: Executive._iop_reset,
    f.Function.EXEC_OUTBOUND_INIT: Executive._outbound_init,
    f.Function.EXEC_IOP_CLEAR: Executive._iop_clear,
    f.Function.EXEC_HRT_GET: Executive._hrt_get,
    f.Function.EXEC_LCT_NOTIFY: Executive._lct_notify,
    f.Function.EXEC_SYS_TAB_SET: Executive._sys_tab_set,
    f.Function.EXEC_SYS_ENABLE: Executive._sys_enable,
    f.Function.EXEC_SYS_QUIESCE: Executive._sys_quiesce,
    f.Function.EXEC_PATH_ENABLE: Executive._path_enable,
}
