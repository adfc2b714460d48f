"""Sans-I/O codec for QEMU's ``ipmi-bmc-extern`` byte stream.

This is the OpenIPMI "VM" serial protocol (docs/ipmi-extern.md):
IPMI messages end in ``0xA0``, control commands end in ``0xA1``, ``0xAA``
escapes the next byte (which has bit 4 set on the wire), and a message ends
with a two's-complement checksum over its unescaped bytes, sequence byte
included.  The codec never touches a socket: feed it bytes with
``receive_data`` and it returns events; the ``encode_*`` functions return the
bytes to write.  Malformed input never raises.  The frame is dropped, counted
in ``stats`` under a reason, logged, and decoding resumes after the next
terminator (a stream with no start marker can only resync there).

Section numbers (§N) are those of docs/ipmi-extern.md.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag

from .ipmb import checksum

log = logging.getLogger(__name__)

#: Ends an IPMI message (request or response).
MSG_END = 0xA0
#: Ends a control command.
CTRL_END = 0xA1
#: The next byte has bit 4 set and must have it cleared.
ESCAPE = 0xAA
#: A frame body with no terminator or escape byte in it (the fast path).
_PLAIN_FRAME = re.compile(rb"[^\xa0\xa1\xaa]*")
ESCAPE_BIT = 0x10
_SPECIAL = frozenset((MSG_END, CTRL_END, ESCAPE))

#: The protocol version both sides announce on connect (§5).
PROTOCOL_VERSION = 1

#: Frames (seq..checksum, unescaped) longer than this are dropped.  QEMU never
#: sends more than 302 (a 300-byte netfn..data plus seq and checksum, §4).
DEFAULT_MAX_FRAME = 512

#: Shortest request: seq, netfn/lun, cmd, checksum (§4).
MIN_REQUEST = 4
#: Shortest response: seq, netfn/lun, cmd, CC, checksum; QEMU drops shorter.
MIN_RESPONSE = 5


class ControlOp(IntEnum):
    """Control command opcodes, the same in QEMU 7.2 and OpenIPMI (§5)."""

    NOATTN = 0x00
    ATTN = 0x01
    ATTN_IRQ = 0x02
    POWEROFF = 0x03
    RESET = 0x04
    ENABLE_IRQ = 0x05
    DISABLE_IRQ = 0x06
    SEND_NMI = 0x07
    CAPABILITIES = 0x08
    GRACEFUL_SHUTDOWN = 0x09
    DISABLE = 0x0A
    ENABLE = 0x0B
    VERSION = 0xFF


class Capability(IntFlag):
    """Bits of the CAPABILITIES argument QEMU sends on connect (§5)."""

    NONE = 0
    POWER = 0x01
    RESET = 0x02
    IRQ = 0x04
    NMI = 0x08
    ATTN = 0x10
    GRACEFUL_SHUTDOWN = 0x20
    DISABLE_ENABLE = 0x40


#: What each BMC -> VM command needs the peer to have advertised.
REQUIRED_CAPABILITY: dict[ControlOp, Capability] = {
    ControlOp.VERSION: Capability.NONE,
    ControlOp.NOATTN: Capability.ATTN,
    ControlOp.ATTN: Capability.ATTN,
    ControlOp.ATTN_IRQ: Capability.ATTN | Capability.IRQ,
    ControlOp.POWEROFF: Capability.POWER,
    ControlOp.RESET: Capability.RESET,
    ControlOp.ENABLE_IRQ: Capability.IRQ,
    ControlOp.DISABLE_IRQ: Capability.IRQ,
    ControlOp.SEND_NMI: Capability.NMI,
    ControlOp.GRACEFUL_SHUTDOWN: Capability.GRACEFUL_SHUTDOWN,
    ControlOp.DISABLE: Capability.DISABLE_ENABLE,
    ControlOp.ENABLE: Capability.DISABLE_ENABLE,
}

#: Assumed until CAPABILITIES arrives.  QEMU always advertises ATTN and IRQ
#: (§5 notes), and the BMC sends its attention state before QEMU's
#: CAPABILITIES has been read (§13 capture), so these two must not wait.
ASSUMED_CAPABILITIES = Capability.ATTN | Capability.IRQ


class Role(Enum):
    """Which end this codec plays; it decodes what the other end sends."""

    BMC = "bmc"  # vhw: receives requests, sends responses
    VM = "vm"  # QEMU's side: used by test peers and tools


@dataclass(frozen=True)
class Request:
    """An IPMI request from QEMU.  ``seq`` is QEMU's, echo it (§7)."""

    seq: int
    netfn: int
    lun: int
    cmd: int
    data: bytes


@dataclass(frozen=True)
class Response:
    """An IPMI response from the BMC (decoded only in the VM role)."""

    seq: int
    netfn: int
    lun: int
    cmd: int
    cc: int
    data: bytes


@dataclass(frozen=True)
class Control:
    """A control command; ``arg`` is the first argument byte, if any.

    Like QEMU, only the opcode and first argument byte carry meaning; further
    bytes are ignored (§2).
    """

    op: ControlOp
    arg: int | None = None


Event = Request | Response | Control


# -- encoding ---------------------------------------------------------------


def escape(data: bytes) -> bytes:
    """Escape every A0/A1/AA as AA, byte|0x10 (§2)."""
    if not _SPECIAL.intersection(data):
        return bytes(data)
    out = bytearray()
    for b in data:
        if b in _SPECIAL:
            out += bytes((ESCAPE, b | ESCAPE_BIT))
        else:
            out.append(b)
    return bytes(out)


def _check_header(seq: int, netfn: int, lun: int, cmd: int) -> None:
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"seq {seq} out of range")
    if not 0 <= netfn <= 0x3F:
        raise ValueError(f"netfn 0x{netfn:x} out of range")
    if not 0 <= lun <= 3:
        raise ValueError(f"lun {lun} out of range")
    if not 0 <= cmd <= 0xFF:
        raise ValueError(f"cmd 0x{cmd:x} out of range")


def _encode_message(seq: int, netfn: int, lun: int, cmd: int, body: bytes) -> bytes:
    _check_header(seq, netfn, lun, cmd)
    frame = bytes((seq, netfn << 2 | lun, cmd)) + bytes(body)
    return escape(frame + bytes((checksum(frame),))) + bytes((MSG_END,))


def encode_response(seq: int, netfn_req: int, lun: int, cmd: int, cc_and_data: bytes) -> bytes:
    """A response frame: seq and cmd echoed, netfn = request netfn | 1, same LUN (§4).

    ``cc_and_data`` must hold at least the completion code; QEMU drops a
    response without one.
    """
    if len(cc_and_data) < 1:
        raise ValueError("a response needs a completion code")
    return _encode_message(seq, netfn_req | 1, lun, cmd, cc_and_data)


def encode_request(seq: int, netfn: int, lun: int, cmd: int, data: bytes = b"") -> bytes:
    """A request frame as QEMU sends it; for test peers and tools."""
    return _encode_message(seq, netfn, lun, cmd, data)


def encode_control(op: int, arg: int | None = None) -> bytes:
    """A control command: opcode, optional argument byte, A1 (no checksum, §5)."""
    body = bytes((int(op),)) if arg is None else bytes((int(op), arg))
    return escape(body) + bytes((CTRL_END,))


# -- decoding ---------------------------------------------------------------

#: Reasons a frame is dropped; the keys of ``ExternCodec.stats`` besides the
#: counts of good frames.
DROP_REASONS = (
    "bad_checksum",
    "short",
    "overlong",
    "escape_at_terminator",
    "unknown_control",
)


class ExternCodec:
    """One connection's decoder state plus what the peer told us about itself.

    Make a new one per connection: capabilities and a half-received frame do
    not survive a reconnect.  ``stats`` may be shared between connections to
    keep running totals.
    """

    def __init__(
        self,
        role: Role = Role.BMC,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        stats: dict[str, int] | None = None,
    ) -> None:
        if max_frame < MIN_RESPONSE:
            raise ValueError(f"max_frame {max_frame} is below the shortest message")
        self.role = role
        self.max_frame = max_frame
        self.stats: dict[str, int] = stats if stats is not None else {}
        #: Version the peer announced, None until it did.
        self.peer_version: int | None = None
        #: Capabilities the peer advertised, None until it did.
        self.peer_capabilities: Capability | None = None
        self._buf = bytearray()
        self._escaped = False
        self._overflow = False
        self._warned: set[str] = set()

    # -- peer state -------------------------------------------------------
    @property
    def capabilities(self) -> Capability:
        """The advertised capabilities, or the safe assumption before them."""
        if self.peer_capabilities is None:
            return ASSUMED_CAPABILITIES
        return self.peer_capabilities

    def can(self, op: ControlOp) -> bool:
        """Whether the peer accepts ``op``: every required capability bit is set."""
        need = REQUIRED_CAPABILITY.get(ControlOp(op))
        if need is None:  # CAPABILITIES is VM -> BMC only
            return False
        return need & self.capabilities == need

    @property
    def pending(self) -> int:
        """Unescaped bytes of an unfinished frame (lost if the stream ends)."""
        return len(self._buf)

    # -- input ------------------------------------------------------------
    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; returns every event they completed, in order."""
        if (
            data[-1:] == b"\xa0" and not self._buf and not self._escaped
            and len(data) <= self.max_frame and _PLAIN_FRAME.fullmatch(data, 0, len(data) - 1)
        ):
            # The common case: exactly one whole, unescaped message.
            event = self._message(bytes(data[:-1]))
            return [event] if event is not None else []
        events: list[Event] = []
        buf = self._buf
        for b in data:
            if b in (MSG_END, CTRL_END):
                event = self._end_frame(b)
                if event is not None:
                    events.append(event)
                buf = self._buf
            elif b == ESCAPE:
                # AA AA leaves one escape pending, as in QEMU's receiver.
                self._escaped = True
            else:
                if self._escaped:
                    b &= ~ESCAPE_BIT
                    self._escaped = False
                if self._overflow:
                    continue
                if len(buf) >= self.max_frame:
                    self._overflow = True
                    buf.clear()
                    continue
                buf.append(b)
        return events

    def _end_frame(self, terminator: int) -> Event | None:
        frame = bytes(self._buf)
        escaped, overflow = self._escaped, self._overflow
        self._buf = bytearray()
        self._escaped = False
        self._overflow = False
        if overflow:
            return self._drop("overlong", f"frame longer than {self.max_frame} bytes")
        if escaped:
            return self._drop("escape_at_terminator", f"escape pending at 0x{terminator:02X}: {frame.hex()}")
        if not frame:
            self._count("empty")
            return None
        if terminator == CTRL_END:
            return self._control(frame)
        return self._message(frame)

    def _message(self, frame: bytes) -> Event | None:
        minimum = MIN_REQUEST if self.role is Role.BMC else MIN_RESPONSE
        if len(frame) < minimum:
            return self._drop("short", f"{len(frame)}-byte message: {frame.hex()}")
        if sum(frame) & 0xFF:
            return self._drop(
                "bad_checksum",
                f"checksum 0x{frame[-1]:02X}, expected 0x{checksum(frame[:-1]):02X}: {frame.hex()}",
            )
        seq, netfn, lun, cmd = frame[0], frame[1] >> 2, frame[1] & 3, frame[2]
        if self.role is Role.BMC:
            self._count("requests")
            return Request(seq, netfn, lun, cmd, frame[3:-1])
        self._count("responses")
        return Response(seq, netfn, lun, cmd, frame[3], frame[4:-1])

    def _control(self, frame: bytes) -> Event | None:
        try:
            op = ControlOp(frame[0])
        except ValueError:
            return self._drop("unknown_control", f"opcode 0x{frame[0]:02X}")
        arg = frame[1] if len(frame) > 1 else None
        if op is ControlOp.VERSION:
            self.peer_version = arg
        elif op is ControlOp.CAPABILITIES:
            self.peer_capabilities = Capability(arg or 0)
        self._count("controls")
        return Control(op, arg)

    def _drop(self, reason: str, detail: str) -> Event | None:
        """Count (and log once per reason) a frame that is dropped: no event."""
        self._count(reason)
        # Warn once per reason and connection: a broken peer must not flood the log.
        if reason in self._warned:
            log.debug("extern: dropped frame (%s): %s", reason, detail)
        else:
            self._warned.add(reason)
            log.warning("extern: dropped frame (%s): %s", reason, detail)
        return None

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1
