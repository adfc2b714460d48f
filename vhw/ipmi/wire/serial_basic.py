"""Basic Mode (IPMI 2.0 section 14.4), sans-I/O.

A Basic Mode packet is one IPMB-format message (section 14.4.2) between a
start character A0h and a stop character A5h:

    A0  rsAddr  NetFn/rsLUN  chk1  rqAddr  rqSeq/rqLUN  Cmd  Data...  chk2  A5

``chk1`` makes rsAddr+NetFn sum to zero, ``chk2`` does the same for rqAddr
through the data (two's complement, as on the IPMB, section 5.?/table 14-2).
Inside a packet the framing characters are escaped with AAh followed by a
substitute (section 14.4.1, table 14-3):

    A0h -> AA B0    A5h -> AA B5    A6h -> AA B6    AAh -> AA BA    1Bh -> AA 3B

A6h alone is the packet handshake: the BMC sends it when its input buffer
is free for the next packet (14.4.1).  The response (section 14.4.3) swaps
the addresses, answers with NetFn+1 and the requester's LUN, and puts the
completion code first in the data.

``BasicCodec`` turns bytes into ``BasicRequest``s; ``encode_response`` and
``encode_packet`` make bytes; ``BasicMode`` answers requests through a
dispatch callable.  Nothing here raises on bad input: a packet with a bad
escape, a bad checksum, the wrong length or another responder address is
dropped and counted in ``stats`` (the requester retries, 14.4.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable

from ..core.bmc import CC, Privilege, Response
from .ipmb import MIN_REQUEST, IpmbFrameError, IpmbRequest
from ..parts.serial import SerialLogin

START, STOP, HANDSHAKE, ESCAPE, ESC = 0xA0, 0xA5, 0xA6, 0xAA, 0x1B
#: Table 14-3: character -> the byte that follows AAh in its place.
ESCAPED = {START: 0xB0, STOP: 0xB5, HANDSHAKE: 0xB6, ESCAPE: 0xBA, ESC: 0x3B}
UNESCAPED = {v: k for k, v in ESCAPED.items()}
BMC_ADDRESS = 0x20
#: Smallest message: rsAddr NetFn chk1 rqAddr rqSeq Cmd chk2.
MIN_MESSAGE = MIN_REQUEST
#: Longest message kept; every serial BMC takes 40-byte messages (14.4.2).
MAX_MESSAGE = 255


def escape(raw: bytes) -> bytes:
    out = bytearray()
    for b in raw:
        if b in ESCAPED:
            out += bytes([ESCAPE, ESCAPED[b]])
        else:
            out.append(b)
    return bytes(out)


def encode_packet(message: bytes) -> bytes:
    """Frame an IPMB-format message: A0, escaped bytes, A5."""
    return bytes([START]) + escape(message) + bytes([STOP])


#: A Basic Mode packet carries one IPMB-format request (14.4.2).
BasicRequest = IpmbRequest


def encode_request(req: BasicRequest) -> bytes:
    return encode_packet(req.encode())


def encode_response(req: BasicRequest, rsp: Response) -> bytes:
    """The response packet to ``req`` (14.4.3): addresses and LUNs swapped, NetFn+1."""
    return encode_packet(req.response(rsp.cc, rsp.data))


def decode_message(msg: bytes) -> BasicRequest | str:
    """An unescaped message -> a request, or the reason it is dropped."""
    try:
        return IpmbRequest.parse(msg, requests_only=False)
    except IpmbFrameError as e:
        return f"dropped_{e.reason}"


class BasicCodec:
    """Bytes in -> complete, checksummed requests.  Never raises."""

    def __init__(self, *, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.stats: dict[str, int] = {}
        self._msg = bytearray()
        self._in_packet = False
        self._escape = False

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _drop(self, why: str) -> None:
        self._count(why)
        self._in_packet = False
        self._escape = False
        self._msg.clear()

    def feed(self, data: bytes) -> list[BasicRequest]:
        out: list[BasicRequest] = []
        for b in bytes(data):
            if b == START:
                if self._in_packet and self._msg:
                    self._count("dropped_restarted")
                self._msg.clear()
                self._in_packet = True
                self._escape = False
            elif b == HANDSHAKE:
                continue  # the other side's handshake; never part of a message
            elif not self._in_packet:
                self._count("ignored_outside_packet")
            elif self._escape:
                if b not in UNESCAPED:
                    self._drop("dropped_bad_escape")
                    continue
                self._escape = False
                self._append(UNESCAPED[b])
            elif b == ESCAPE:
                self._escape = True
            elif b == STOP:
                result = decode_message(bytes(self._msg))
                self._in_packet = False
                self._msg.clear()
                if isinstance(result, str):
                    self._count(result)
                else:
                    out.append(result)
            elif b == ESC:
                self._drop("dropped_unescaped_esc")
            else:
                self._append(b)
        return out

    def _append(self, b: int) -> None:
        if len(self._msg) >= self.max_message:
            self._drop("dropped_too_long")
        else:
            self._msg.append(b)


Dispatch = Callable[[int, int, bytes, int, Privilege, "int | None"], Response]


@dataclass
class BasicMode:
    """The Basic Mode side of a serial channel: bytes in, bytes out."""

    dispatch: Dispatch
    login: SerialLogin = field(default_factory=SerialLogin)
    #: Send the A6h handshake once a packet is taken off the input buffer.
    handshake: bool = True

    def __post_init__(self) -> None:
        self.codec = BasicCodec()
        self.stats = self.codec.stats

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for req in self.codec.feed(data):
            if self.handshake:
                out.append(HANDSHAKE)
            if req.rs_addr != BMC_ADDRESS:
                self._count("dropped_not_for_bmc")
                continue
            if req.netfn & 1:
                self._count("dropped_response_netfn")
                continue
            if not self.login.active:
                self._count("dropped_no_session")
                continue
            try:
                rsp = self.dispatch(req.netfn, req.cmd, req.data, req.rs_lun, self.login.privilege,
                                    self.login.user_id)
            except Exception:  # the dispatcher promises not to raise; answer anyway
                rsp = Response(CC.UNSPECIFIED)
            out += encode_response(req, rsp)
        return bytes(out)
