"""RMCP and ASF presence ping/pong: a sans-I/O codec (IPMI 2.0 section 13.1-13.2, ASF 2.0 section 3.2).

RMCP header (4 bytes): version 06h, reserved 00h, sequence number (FFh: no
RMCP ACK wanted), class of message: bit 7 = ACK, bits [4:0] = class (06h ASF,
07h IPMI, 08h OEM).  An ASF message follows for class 06h: IANA enterprise
number 4542 (00 00 11 BE, MS byte first), message type, message tag,
reserved, data length, data.  Presence Ping is type 80h with no data; the
Presence Pong (40h) carries 16 bytes: IANA 4542, OEM-defined 0, supported
entities (bit 7: IPMI supported; [3:0] 01h: ASF version 1.0), supported
interactions, 6 reserved bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import WireError

RMCP_VERSION = 0x06
SEQ_NO_ACK = 0xFF
CLASS_ASF = 0x06
CLASS_IPMI = 0x07
CLASS_OEM = 0x08
ACK_BIT = 0x80

ASF_IANA = 4542
ASF_PING = 0x80
ASF_PONG = 0x40
#: Pong supported entities: IPMI supported (bit 7), ASF version 1.0 (01h).
ENTITIES_IPMI = 0x81
#: Pong supported interactions: none of the ASF security extensions (RMCP+ is
#: negotiated through IPMI, not announced here; bit 5 would claim ASF RSP).
INTERACTIONS = 0x00


class RmcpError(WireError):
    """A datagram that is not a well-formed RMCP message (dropped, counted)."""


@dataclass(frozen=True)
class RmcpHeader:
    seq: int
    cls: int  # class bits [4:0]
    ack: bool = False

    def to_bytes(self) -> bytes:
        return bytes([RMCP_VERSION, 0, self.seq & 0xFF, (self.cls & 0x1F) | (ACK_BIT if self.ack else 0)])

    @property
    def wants_ack(self) -> bool:
        return not self.ack and self.seq != SEQ_NO_ACK


def parse(datagram: bytes) -> tuple[RmcpHeader, bytes]:
    """Split a datagram into its RMCP header and the class body; RmcpError if not RMCP."""
    if len(datagram) < 4:
        raise RmcpError(f"{len(datagram)} bytes: shorter than an RMCP header")
    version, _reserved, seq, cls = datagram[0], datagram[1], datagram[2], datagram[3]
    if version != RMCP_VERSION:
        raise RmcpError(f"RMCP version {version:#04x}, not 06h")
    return RmcpHeader(seq, cls & 0x1F, bool(cls & ACK_BIT)), bytes(datagram[4:])


def ack_for(header: RmcpHeader) -> bytes:
    """The RMCP ACK of a message (ASF 2.0 3.2.2.2: same sequence and class, ACK bit set, no data)."""
    return RmcpHeader(header.seq, header.cls, ack=True).to_bytes()


def pack(cls: int, body: bytes, seq: int = SEQ_NO_ACK) -> bytes:
    return RmcpHeader(seq, cls).to_bytes() + body


@dataclass(frozen=True)
class AsfMessage:
    iana: int
    type: int
    tag: int
    data: bytes = b""

    def to_bytes(self) -> bytes:
        return struct.pack(">IBBBB", self.iana, self.type, self.tag, 0, len(self.data)) + self.data


def parse_asf(body: bytes) -> AsfMessage:
    if len(body) < 8:
        raise RmcpError(f"ASF message of {len(body)} bytes: shorter than its 8-byte header")
    iana, mtype, tag, _reserved, length = struct.unpack_from(">IBBBB", body)
    if len(body) < 8 + length:
        raise RmcpError(f"ASF data length {length} but {len(body) - 8} bytes follow")
    return AsfMessage(iana, mtype, tag, bytes(body[8:8 + length]))


def pong(ping_tag: int) -> bytes:
    """The Presence Pong body answering a ping with ``ping_tag`` (ASF 2.0 3.2.4.3)."""
    data = struct.pack(">II", ASF_IANA, 0) + bytes([ENTITIES_IPMI, INTERACTIONS]) + bytes(6)
    return AsfMessage(ASF_IANA, ASF_PONG, ping_tag, data).to_bytes()


def ping(tag: int = 0, seq: int = SEQ_NO_ACK) -> bytes:
    """A whole Presence Ping datagram (for tests and clients)."""
    return pack(CLASS_ASF, AsfMessage(ASF_IANA, ASF_PING, tag).to_bytes(), seq)


def handle_asf(header: RmcpHeader, body: bytes) -> list[bytes]:
    """Answer an ASF-class message: an ACK if asked for, a Pong for a Ping; RmcpError if malformed."""
    if header.ack:
        return []  # an ACK of something we sent; nothing to do
    msg = parse_asf(body)
    out = [ack_for(header)] if header.wants_ack else []
    if msg.iana == ASF_IANA and msg.type == ASF_PING:
        out.append(pack(CLASS_ASF, pong(msg.tag), SEQ_NO_ACK))
    return out
