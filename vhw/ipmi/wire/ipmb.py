"""The IPMB message codec: the one message format of IPMB, LAN and serial Basic Mode.

Send Message (App 34h) carries a complete IPMB request; IPMI v1.5 and RMCP+
LAN packets carry the same format (IPMI 2.0 section 13.8), so does serial
Basic Mode (14.4).  Layouts per IPMI 2.0 section 5.5 / IPMB v1.0 section 2.11:

    request:  rsSA, netFn<<2|rsLUN, chk1, rqSA, rqSeq<<2|rqLUN, cmd, data..., chk2
    response: rqSA, netFn<<2|rqLUN, chk1, rsSA, rqSeq<<2|rsLUN, cmd, cc, data..., chk2

chk1 covers the first two bytes, chk2 everything from the third-party address
(byte 3) to the last data byte; each makes its span sum to 0 mod 256.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.bmc import CC
from .errors import WireError

#: The smallest IPMB request: the 7 header/checksum bytes and no data.
MIN_REQUEST = 7
#: The BMC's slave address and the system software ID 40h as requester (5.5).
BMC_SA = 0x20
SOFTWARE_SA = 0x81


def checksum(data: bytes) -> int:
    """Two's-complement checksum: the byte that makes ``data`` sum to 0 mod 256.

    The one of IPMB and LAN messages (IPMI 2.0 section 13.8), serial Basic
    Mode (14.4), ipmi-bmc-extern frames and FRU areas (FRU spec 16.2).
    """
    return -sum(data) & 0xFF


class IpmbFrameError(WireError):
    """An IPMB-format message that does not parse; ``cc`` is the answer to it,
    ``reason`` a short name for counters ("too_short", "bad_checksum1", ...)."""

    def __init__(self, cc: int, why: str, reason: str = "malformed"):
        self.cc = cc
        self.reason = reason
        super().__init__(why)


@dataclass(frozen=True)
class IpmbRequest:
    """An IPMB-format request: the message format of IPMB, LAN (13.8) and serial Basic Mode (14.4)."""

    rs_addr: int
    netfn: int
    rs_lun: int
    rq_addr: int
    rq_seq: int
    rq_lun: int
    cmd: int
    data: bytes = b""

    @classmethod
    def parse(cls, frame: bytes, *, requests_only: bool = True) -> IpmbRequest:
        """Decode and check a request message (length, both checksums, and with
        ``requests_only`` an even NetFn); IpmbFrameError says why not."""
        if len(frame) < MIN_REQUEST:
            raise IpmbFrameError(CC.REQUEST_LENGTH_INVALID, f"IPMB request of {len(frame)} bytes, need {MIN_REQUEST}",
                                 "too_short")
        if checksum(frame[0:2]) != frame[2]:
            raise IpmbFrameError(CC.INVALID_DATA_FIELD, "IPMB header checksum mismatch", "bad_checksum1")
        if checksum(frame[3:-1]) != frame[-1]:
            raise IpmbFrameError(CC.INVALID_DATA_FIELD, "IPMB data checksum mismatch", "bad_checksum2")
        netfn = frame[1] >> 2
        if requests_only and netfn & 1:
            raise IpmbFrameError(CC.INVALID_DATA_FIELD, "encapsulated message is a response, not a request",
                                 "response")
        return cls(frame[0], netfn, frame[1] & 3, frame[3], frame[4] >> 2, frame[4] & 3, frame[5], bytes(frame[6:-1]))

    def encode(self) -> bytes:
        """The request message, checksums filled in."""
        return _message(self.rs_addr, self.netfn, self.rs_lun, self.rq_addr, self.rq_seq, self.rq_lun, self.cmd,
                        self.data)

    def response(self, cc: int, data: bytes = b"") -> bytes:
        """The response message answering this request: addresses and LUNs swapped, NetFn + 1."""
        return _message(self.rq_addr, self.netfn | 1, self.rq_lun, self.rs_addr, self.rq_seq, self.rs_lun, self.cmd,
                        bytes([cc & 0xFF]) + bytes(data))


def _message(first: int, netfn: int, first_lun: int, second: int, seq: int, second_lun: int, cmd: int,
             data: bytes) -> bytes:
    head = bytes([first, (netfn << 2) | first_lun])
    body = bytes([second, ((seq & 0x3F) << 2) | second_lun, cmd]) + bytes(data)
    return head + bytes([checksum(head)]) + body + bytes([checksum(body)])


def encode_request(netfn: int, cmd: int, data: bytes = b"", *, rq_seq: int = 0, rq_addr: int = SOFTWARE_SA,
                   rs_addr: int = BMC_SA, rq_lun: int = 0, rs_lun: int = 0) -> bytes:
    """A request message as a client sends it (BMC 20h from software ID 81h by default)."""
    return IpmbRequest(rs_addr, netfn, rs_lun, rq_addr, rq_seq, rq_lun, cmd, bytes(data)).encode()
