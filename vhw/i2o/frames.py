"""Sans-I/O codecs for I2O 1.5 message frames, replies and SIMPLE SGLs.

Layouts follow docs/i2o-mpqemu.md part B (B3 header, B4 replies,
B5 SGLs, B6 function codes); numeric values were checked against the I2O SIG
header set (i2omsg.h, as shipped in FreeBSD asr and NetBSD i2o.h) and Linux
``i2o-dev.h``.  All words are little-endian.

Decoders never raise on guest input: they return a :class:`TransportFailure`
(the frame itself is unusable, I2O 1.5 §3.4.2.1.2 "message failure", answered
with a FAIL reply carrying the preserved MFA) or a :class:`RequestError` (the
frame is fine but its contents are not, answered with a normal reply carrying
ReqStatus and DetailedStatus, B4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

#: I2O 1.5 is version nibble 1 ("VERSION_11" in Linux, I2OVER15).
VERSION_15 = 0x1
#: Special TIDs (B3): the IOP's executive is TID 0, the host is TID 1.
IOP_TID = 0x000
HOST_TID = 0x001
#: A "no TID" value in LCT user_tid fields.
NO_TID = 0xFFF

HEADER_WORDS = 4
#: UtilNOP may be three words long (no transaction context).
MIN_MESSAGE_WORDS = 3
#: A single reply is the header plus the status word (B4).
REPLY_WORDS = 5
#: A failure reply adds versions/severity/code, IOP/host ids, age limit and
#: the preserved MFA as a 64-bit value (NetBSD ``struct i2o_fault_reply``).
FAILURE_REPLY_WORDS = 9


class Function(IntEnum):
    """Function codes (B6), verified against Linux i2o-dev.h and i2omsg.h."""

    UTIL_NOP = 0x00
    UTIL_ABORT = 0x01
    UTIL_PARAMS_SET = 0x05
    UTIL_PARAMS_GET = 0x06
    UTIL_CLAIM = 0x09
    UTIL_CLAIM_RELEASE = 0x0B
    UTIL_CONFIG_DIALOG = 0x10
    UTIL_EVENT_REGISTER = 0x13
    UTIL_EVENT_ACK = 0x14
    BSA_STATUS_CHECK = 0x25
    BSA_DEVICE_RESET = 0x27
    BSA_BLOCK_READ = 0x30
    BSA_BLOCK_WRITE = 0x31
    BSA_BLOCK_WRITE_VERIFY = 0x33
    BSA_MEDIA_VERIFY = 0x35
    BSA_CACHE_FLUSH = 0x37
    BSA_MEDIA_MOUNT = 0x41
    BSA_MEDIA_EJECT = 0x43
    BSA_MEDIA_FORMAT = 0x45
    BSA_MEDIA_LOCK = 0x49
    BSA_MEDIA_UNLOCK = 0x4B
    BSA_POWER_MANAGEMENT = 0x70
    BSA_BLOCK_REASSIGN = 0x71
    EXEC_STATUS_GET = 0xA0
    EXEC_OUTBOUND_INIT = 0xA1
    EXEC_LCT_NOTIFY = 0xA2
    EXEC_SYS_TAB_SET = 0xA3
    EXEC_HRT_GET = 0xA8
    EXEC_IOP_RESET = 0xBD
    EXEC_IOP_CLEAR = 0xBE
    EXEC_SYS_QUIESCE = 0xC3
    EXEC_SYS_ENABLE = 0xD1
    EXEC_PATH_ENABLE = 0xD3
    PRIVATE = 0xFF


class MsgFlags(IntFlag):
    """Message flags, the byte at bits 8-15 of word 0 (B3)."""

    STATIC = 0x01
    CONTEXT_64 = 0x02
    MULTI = 0x10
    FAIL = 0x20
    LAST = 0x40
    REPLY = 0x80


class ReqStatus(IntEnum):
    """Reply ReqStatus, bits 24-31 of reply word 4 (B4; I2O_REPLY_STATUS_*)."""

    SUCCESS = 0x00
    ABORT_DIRTY = 0x01
    ABORT_NO_DATA_TRANSFER = 0x02
    ABORT_PARTIAL_TRANSFER = 0x03
    ERROR_DIRTY = 0x04
    ERROR_NO_DATA_TRANSFER = 0x05
    ERROR_PARTIAL_TRANSFER = 0x06
    PROCESS_ABORT_DIRTY = 0x08
    PROCESS_ABORT_NO_DATA_TRANSFER = 0x09
    PROCESS_ABORT_PARTIAL_TRANSFER = 0x0A
    TRANSACTION_ERROR = 0x0B
    PROGRESS_REPORT = 0x80


class DetailedStatus(IntEnum):
    """Common DetailedStatus codes (I2O 1.5 table 3-2).

    There is no ReqStatus "bad target": a wrong TID is ERROR_NO_DATA_TRANSFER
    with INVALID_TARGET_ADDRESS (or, at transport level, failure code 0x8D).
    Some vendor headers renumber these alphabetically; these are the SIG
    values, which the doc's examples (0x0A, 0x12, 0x13, 0x19) confirm.
    """

    SUCCESS = 0x0000
    BAD_KEY = 0x0002
    TCL_ERROR = 0x0003
    REPLY_BUFFER_FULL = 0x0004
    NO_SUCH_PAGE = 0x0005
    INSUFFICIENT_RESOURCE_SOFT = 0x0006
    INSUFFICIENT_RESOURCE_HARD = 0x0007
    CHAIN_BUFFER_TOO_LARGE = 0x0009
    UNSUPPORTED_FUNCTION = 0x000A
    DEVICE_LOCKED = 0x000B
    DEVICE_RESET = 0x000C
    INAPPROPRIATE_FUNCTION = 0x000D
    INVALID_INITIATOR_ADDRESS = 0x000E
    INVALID_MESSAGE_FLAGS = 0x000F
    INVALID_OFFSET = 0x0010
    INVALID_PARAMETER = 0x0011
    INVALID_REQUEST = 0x0012
    INVALID_TARGET_ADDRESS = 0x0013
    MESSAGE_TOO_LARGE = 0x0014
    MESSAGE_TOO_SMALL = 0x0015
    MISSING_PARAMETER = 0x0016
    TIMEOUT = 0x0017
    UNKNOWN_ERROR = 0x0018
    UNKNOWN_FUNCTION = 0x0019
    UNSUPPORTED_VERSION = 0x001A
    DEVICE_BUSY = 0x001B
    DEVICE_NOT_AVAILABLE = 0x001C


class FailureCode(IntEnum):
    """Transport failure codes (I2O 1.5 table 3-3)."""

    SERVICE_SUSPENDED = 0x81
    SERVICE_TERMINATED = 0x82
    CONGESTION = 0x83
    FAIL = 0x84
    STATE_ERROR = 0x85
    TIME_OUT = 0x86
    ROUTING_FAILURE = 0x87
    INVALID_VERSION = 0x88
    INVALID_OFFSET = 0x89
    INVALID_MSG_FLAGS = 0x8A
    FRAME_TOO_SMALL = 0x8B
    FRAME_TOO_LARGE = 0x8C
    INVALID_TARGET_ID = 0x8D
    INVALID_INITIATOR_ID = 0x8E
    INVALID_INITIATOR_CONTEXT = 0x8F
    UNKNOWN_FAILURE = 0xFF


class Severity(IntFlag):
    """Failure severity bits (I2O_SEVERITY_*)."""

    FORMAT_ERROR = 0x1
    PATH_ERROR = 0x2
    PATH_STATE = 0x4
    CONGESTION = 0x8


# --------------------------------------------------------------------------
# header


@dataclass(slots=True)
class Header:
    """The 4-word standard message frame header (B3).

    Not frozen: frozen dataclasses pay a setattr call per field, and one
    header is built per message on the register round-trip path.

    ``size`` counts 32-bit words of the whole message, header included;
    ``sgl_offset`` is in words from the frame start, 0 meaning "no SGL".
    """

    function: int
    target_tid: int = IOP_TID
    initiator_tid: int = HOST_TID
    initiator_context: int = 0
    transaction_context: int = 0
    size: int = HEADER_WORDS
    sgl_offset: int = 0
    flags: int = 0
    version: int = VERSION_15

    def encode(self) -> bytes:
        """Pack into 16 bytes; out-of-range fields are masked, never raised."""
        w0 = ((self.version & 0xF) | (self.sgl_offset & 0xF) << 4
              | (self.flags & 0xFF) << 8 | (self.size & 0xFFFF) << 16)
        w1 = ((self.target_tid & 0xFFF) | (self.initiator_tid & 0xFFF) << 12
              | (self.function & 0xFF) << 24)
        return _HEADER.pack(w0, w1, self.initiator_context & 0xFFFFFFFF,
                            self.transaction_context & 0xFFFFFFFF)

    @classmethod
    def unpack(cls, data: bytes) -> Header:
        """Split the header fields out of at least 8 bytes, no validation.

        Missing context words read as 0 so that even a runt frame's contexts
        can be echoed in its failure reply.
        """
        if len(data) < 16:
            data = bytes(data).ljust(16, b"\0")
        w0, w1, ictx, tctx = _HEADER.unpack_from(data)
        return cls(w1 >> 24, w1 & 0xFFF, (w1 >> 12) & 0xFFF, ictx, tctx,
                   w0 >> 16, (w0 >> 4) & 0xF, (w0 >> 8) & 0xFF, w0 & 0xF)


@dataclass(frozen=True)
class TransportFailure:
    """The frame cannot be processed: answer with :func:`encode_failure_reply`."""

    code: FailureCode
    severity: Severity
    reason: str


@dataclass(frozen=True)
class RequestError:
    """The request is well framed but wrong: answer with :func:`encode_reply`."""

    detail: DetailedStatus
    reason: str
    status: ReqStatus = ReqStatus.ERROR_NO_DATA_TRANSFER


@dataclass(frozen=True)
class Request:
    """A validated request: its header and exactly ``header.size`` words."""

    header: Header
    data: bytes

    @property
    def body(self) -> bytes:
        """Words 4.. (a 3-word NOP has none), SGL included."""
        return self.data[16:]

    def word(self, index: int) -> int:
        """Word ``index`` of the frame, 0 when past the end (lenient reads)."""
        chunk = self.data[index * 4:index * 4 + 4]
        return int.from_bytes(chunk.ljust(4, b"\0"), "little")

    def sgl(self, *, mem_limit: int = 1 << 32, page_size: int | None = None) -> Sgl | RequestError:
        """The message's SGL (empty when ``sgl_offset`` is 0); PAGE_LIST
        elements are accepted when the host's ``page_size`` is known."""
        if self.header.sgl_offset == 0:
            return Sgl(())
        return parse_sgl(self.data, self.header.sgl_offset, mem_limit=mem_limit,
                         page_size=page_size)


_REJECTED_FLAGS = int(MsgFlags.REPLY | MsgFlags.FAIL | MsgFlags.CONTEXT_64)
_REPLY_FLAG = int(MsgFlags.REPLY)
_HEADER = struct.Struct("<4I")


def decode_request(frame: bytes) -> Request | TransportFailure:
    """Validate a posted frame's header (B3); ``frame`` is the whole MU frame.

    The checks are the ones the spec's transport failure codes name: version,
    size against the frame, SGL offset inside the message, and flags a host
    may not send (REPLY, FAIL, and 64-bit contexts, which this IOP does not
    offer).  TIDs are the executive's business.
    """
    if len(frame) < 8:
        return TransportFailure(FailureCode.FRAME_TOO_SMALL, Severity.FORMAT_ERROR,
                                f"frame of {len(frame)} bytes")
    hdr = Header.unpack(frame)
    if hdr.version != VERSION_15:
        return TransportFailure(FailureCode.INVALID_VERSION, Severity.FORMAT_ERROR,
                                f"version {hdr.version}")
    if hdr.size < MIN_MESSAGE_WORDS:
        return TransportFailure(FailureCode.FRAME_TOO_SMALL, Severity.FORMAT_ERROR,
                                f"message size {hdr.size} words")
    if hdr.size * 4 > len(frame):
        return TransportFailure(FailureCode.FRAME_TOO_LARGE, Severity.FORMAT_ERROR,
                                f"message size {hdr.size} words > frame {len(frame) // 4}")
    if hdr.sgl_offset and not HEADER_WORDS <= hdr.sgl_offset <= hdr.size:
        return TransportFailure(FailureCode.INVALID_OFFSET, Severity.FORMAT_ERROR,
                                f"SGL offset {hdr.sgl_offset} in a {hdr.size}-word message")
    if hdr.flags & _REJECTED_FLAGS:
        return TransportFailure(FailureCode.INVALID_MSG_FLAGS, Severity.FORMAT_ERROR,
                                f"message flags {hdr.flags:#04x}")
    return Request(hdr, bytes(frame[:hdr.size * 4]))


# --------------------------------------------------------------------------
# replies


@dataclass(frozen=True)
class Reply:
    """A decoded single reply frame (B4), for tests and guest-side tools."""

    header: Header
    status: int
    detail: int
    body: bytes = b""
    word4: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.header.flags & MsgFlags.FAIL)


def encode_reply(request: Header, status: int = ReqStatus.SUCCESS,
                 detail: int = DetailedStatus.SUCCESS, body: bytes = b"") -> bytes:
    """A single reply to ``request``: REPLY flag, both contexts echoed
    bit-exactly, word 4 = DetailedStatus | ReqStatus << 24 (B4).

    ``body`` (reply words 5..) is zero-padded to a word boundary.
    """
    if body:
        body = bytes(body) + b"\0" * (-len(body) % 4)
    hdr = Header(request.function, request.target_tid, request.initiator_tid,
                 request.initiator_context, request.transaction_context,
                 REPLY_WORDS + len(body) // 4, 0, _REPLY_FLAG)
    return hdr.encode() + struct.pack("<I", (detail & 0xFFFF) | (status & 0xFF) << 24) + body


def encode_failure_reply(frame: bytes, failure: TransportFailure, mfa: int, *,
                         iop_id: int = 0, host_unit: int = 0, age_limit: int = 0) -> bytes:
    """A FAIL reply for an unusable frame (B4 "failure reply").

    Contexts come from whatever the frame holds; the preserved MFA tells the
    host which inbound frame it must recycle (with a UtilNOP).
    """
    req = Header.unpack(frame)
    hdr = Header(function=req.function, target_tid=req.target_tid,
                 initiator_tid=req.initiator_tid,
                 initiator_context=req.initiator_context,
                 transaction_context=req.transaction_context,
                 size=FAILURE_REPLY_WORDS, flags=MsgFlags.REPLY | MsgFlags.FAIL)
    w4 = VERSION_15 | VERSION_15 << 8 | (failure.severity & 0xFF) << 16 | (failure.code & 0xFF) << 24
    w5 = (iop_id & 0xFFF) | (host_unit & 0xFFFF) << 16
    return hdr.encode() + struct.pack("<5I", w4, w5, age_limit & 0xFFFFFFFF,
                                      mfa & 0xFFFFFFFF, 0)


def decode_reply(data: bytes) -> Reply | None:
    """Parse a reply frame; None when it is not one (too short, no REPLY flag)."""
    if len(data) < REPLY_WORDS * 4:
        return None
    hdr = Header.unpack(data)
    if not hdr.flags & MsgFlags.REPLY or hdr.size < REPLY_WORDS:
        return None
    (w4,) = struct.unpack_from("<I", data, 16)
    end = min(len(data), hdr.size * 4)
    return Reply(hdr, status=w4 >> 24, detail=w4 & 0xFFFF, body=bytes(data[20:end]), word4=w4)


def failure_fields(reply: Reply) -> tuple[int, int, int]:
    """(severity, failure code, preserved MFA) of a FAIL reply."""
    w4 = reply.word4
    mfa = int.from_bytes(reply.body[8:12].ljust(4, b"\0"), "little")
    return (w4 >> 16) & 0xFF, w4 >> 24, mfa


# --------------------------------------------------------------------------
# scatter-gather lists (B5)


class SglFlags(IntFlag):
    """Flag byte of an SGL element (bits 24-31 of its first word)."""

    CONTEXT_COUNT = 0x03
    DIR_OUT = 0x04        # data flows host -> IOP
    LOCAL_ADDRESS = 0x08
    SIMPLE = 0x10
    PAGE_LIST = 0x20
    CHAIN = 0x30          # == SIMPLE | PAGE_LIST: compare with MODE_MASK
    END_OF_BUFFER = 0x40
    LAST_ELEMENT = 0x80


MODE_MASK = 0x30
# Plain ints of SglFlags for the per-message path (IntFlag arithmetic costs
# microseconds per operation, and every register access is already paid for).
_DIR_OUT, _LOCAL_ADDRESS, _CONTEXT_COUNT = (int(f) for f in (
    SglFlags.DIR_OUT, SglFlags.LOCAL_ADDRESS, SglFlags.CONTEXT_COUNT))
_SIMPLE, _PAGE_LIST, _END_OF_BUFFER, _LAST_ELEMENT = (int(f) for f in (
    SglFlags.SIMPLE, SglFlags.PAGE_LIST, SglFlags.END_OF_BUFFER, SglFlags.LAST_ELEMENT))
#: Special elements (address mode 0), decoded by the whole flag byte minus
#: the LAST/END_OF_BUFFER bits.
SPECIAL_IGNORE = 0x00
SPECIAL_IMMEDIATE = 0x0C
MAX_COUNT = 0xFFFFFF


@dataclass(slots=True)  # not frozen: built per element per message (see Header)
class SglElement:
    """A SIMPLE element (guest physical ``address``, ``count`` bytes) or an
    IMMEDIATE one (``data`` inline, ``address`` None)."""

    flags: int
    count: int
    address: int | None = None
    data: bytes | None = None

    @property
    def to_iop(self) -> bool:
        """True for data-out (host -> IOP), the DIR bit."""
        return bool(self.flags & _DIR_OUT)

    @property
    def last(self) -> bool:
        return bool(self.flags & _LAST_ELEMENT)

    @property
    def end_of_buffer(self) -> bool:
        return bool(self.flags & _END_OF_BUFFER)


@dataclass(frozen=True)
class Sgl:
    """A parsed SGL: elements in order, grouped into buffers on END_OF_BUFFER
    (UtilParamsGet's "SGL 1 / SGL 2", SysTabSet's three tables, B5/B9)."""

    elements: tuple[SglElement, ...]
    buffers: tuple[tuple[SglElement, ...], ...] = field(default=())

    @property
    def total(self) -> int:
        return sum(e.count for e in self.elements)


def encode_simple(count: int, address: int, *, to_iop: bool = False,
                  last: bool = False, end_of_buffer: bool = True) -> bytes:
    """One SIMPLE element: ``flags|count`` then the 32-bit address (B5)."""
    flags = SglFlags.SIMPLE | (SglFlags.DIR_OUT if to_iop else 0)
    flags |= (SglFlags.LAST_ELEMENT if last else 0) | (SglFlags.END_OF_BUFFER if end_of_buffer else 0)
    return struct.pack("<II", int(flags) << 24 | (count & MAX_COUNT), address & 0xFFFFFFFF)


def encode_immediate(data: bytes, *, last: bool = False, end_of_buffer: bool = True) -> bytes:
    """An IMMEDIATE element (``0x4C000000|n`` then the data, word-padded)."""
    flags = SPECIAL_IMMEDIATE | (0x80 if last else 0) | (0x40 if end_of_buffer else 0)
    return struct.pack("<I", flags << 24 | len(data)) + bytes(data) + b"\0" * (-len(data) % 4)


def parse_sgl(message: bytes, offset_words: int, *, mem_limit: int = 1 << 32,
              page_size: int | None = None) -> Sgl | RequestError:
    """Walk SIMPLE and IMMEDIATE elements from ``offset_words`` to the end of
    ``message`` (or to the LAST element).

    Every count and address is checked: a truncated element is
    MESSAGE_TOO_SMALL, a buffer past ``mem_limit`` (or the 32-bit space),
    local addresses, context words and unsupported modes (CHAIN, 64-bit
    attributes, and PAGE_LIST unless ``page_size`` is given) are
    INVALID_PARAMETER.  An empty list is valid.
    """
    words = len(message) // 4
    pos = offset_words
    elements: list[SglElement] = []
    if pos < HEADER_WORDS or pos > words:
        return RequestError(DetailedStatus.INVALID_OFFSET, f"SGL offset {pos} of {words} words")
    while pos < words:
        (w,) = struct.unpack_from("<I", message, pos * 4)
        flags, count = w >> 24, w & MAX_COUNT
        mode = flags & MODE_MASK
        if mode == _SIMPLE:
            if flags & (_LOCAL_ADDRESS | _CONTEXT_COUNT):
                return RequestError(DetailedStatus.INVALID_PARAMETER,
                                    f"SIMPLE element flags {flags:#04x} at word {pos}")
            if pos + 2 > words:
                return RequestError(DetailedStatus.MESSAGE_TOO_SMALL,
                                    f"SIMPLE element at word {pos} truncated")
            (addr,) = struct.unpack_from("<I", message, pos * 4 + 4)
            if addr + count > mem_limit:
                return RequestError(DetailedStatus.INVALID_PARAMETER,
                                    f"buffer {addr:#x}+{count:#x} beyond {mem_limit:#x}")
            elements.append(SglElement(flags, count, address=addr))
            pos += 2
        elif mode == _PAGE_LIST and page_size:
            chunks = _page_list(message, pos, flags, count, page_size, mem_limit)
            if isinstance(chunks, RequestError):
                return chunks
            elements.extend(chunks[0])
            pos = chunks[1]
            if flags & _LAST_ELEMENT:
                break
            continue
        elif mode == 0 and flags & 0x3F == SPECIAL_IMMEDIATE:
            nwords = (count + 3) // 4
            if pos + 1 + nwords > words:
                return RequestError(DetailedStatus.MESSAGE_TOO_SMALL,
                                    f"IMMEDIATE element of {count} bytes at word {pos} truncated")
            start = pos * 4 + 4
            elements.append(SglElement(flags, count, data=bytes(message[start:start + count])))
            pos += 1 + nwords
        elif mode == 0 and flags & 0x3F == SPECIAL_IGNORE:
            pos += 1
            if flags & _LAST_ELEMENT:
                break
            continue
        else:
            return RequestError(DetailedStatus.INVALID_PARAMETER,
                                f"unsupported SGL element flags {flags:#04x} at word {pos}")
        if elements[-1].last:
            break
    return Sgl(tuple(elements), _group(elements))


def _page_list(message: bytes, pos: int, flags: int, count: int, page_size: int,
               mem_limit: int) -> tuple[list[SglElement], int] | RequestError:
    """A PAGE_LIST element (NetBSD ``iop_msg_map_bio`` for fragmented
    transfers): ``flags|total`` then one address per page; each piece runs
    from its address to the next host page boundary.  Returned as one
    SIMPLE-like element per piece; only the last keeps LAST/END_OF_BUFFER."""
    if flags & (_LOCAL_ADDRESS | _CONTEXT_COUNT):
        return RequestError(DetailedStatus.INVALID_PARAMETER,
                            f"PAGE_LIST element flags {flags:#04x} at word {pos}")
    words = len(message) // 4
    inner = flags & 0x3F   # without LAST_ELEMENT / END_OF_BUFFER
    pieces: list[SglElement] = []
    remaining, pos = count, pos + 1
    while remaining:
        if pos >= words:
            return RequestError(DetailedStatus.MESSAGE_TOO_SMALL,
                                f"PAGE_LIST of {count} bytes truncated at word {pos}")
        (addr,) = struct.unpack_from("<I", message, pos * 4)
        n = min(page_size - addr % page_size, remaining)
        if addr + n > mem_limit:
            return RequestError(DetailedStatus.INVALID_PARAMETER,
                                f"page {addr:#x}+{n:#x} beyond {mem_limit:#x}")
        pieces.append(SglElement(inner, n, address=addr))
        remaining -= n
        pos += 1
    if pieces:
        last = pieces[-1]
        pieces[-1] = SglElement(flags, last.count, address=last.address)
    return pieces, pos


def _group(elements: list[SglElement]) -> tuple[tuple[SglElement, ...], ...]:
    buffers: list[tuple[SglElement, ...]] = []
    current: list[SglElement] = []
    for e in elements:
        current.append(e)
        if e.end_of_buffer or e.last:
            buffers.append(tuple(current))
            current = []
    if current:
        buffers.append(tuple(current))
    return tuple(buffers)
