"""IPMB frames and the satellite controllers that answer them.

Send Message (App 34h) carries a complete IPMB request; the BMC checks it,
lets the addressed controller answer, and returns an IPMB response frame.
Layouts per IPMI 2.0 section 5.5 / IPMB v1.0 section 2.11:

    request:  rsSA, netFn<<2|rsLUN, chk1, rqSA, rqSeq<<2|rqLUN, cmd, data..., chk2
    response: rqSA, netFn<<2|rqLUN, chk1, rsSA, rqSeq<<2|rsLUN, cmd, cc, data..., chk2

chk1 covers the first two bytes, chk2 everything from the third-party address
(byte 3) to the last data byte; each makes its span sum to 0 mod 256.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bmc import CC, NetFn
from .config import SatelliteConfig
from .msgs import device_id_response

#: The smallest IPMB request: the 7 header/checksum bytes and no data.
MIN_REQUEST = 7


def checksum(data: bytes) -> int:
    """Two's-complement checksum: the byte that makes ``data`` sum to 0."""
    return -sum(data) & 0xFF


class IpmbFrameError(ValueError):
    """An encapsulated IPMB request that cannot be sent; ``cc`` says why."""

    def __init__(self, cc: int, why: str):
        self.cc = cc
        super().__init__(why)


@dataclass(frozen=True)
class IpmbRequest:
    rs_sa: int
    netfn: int
    rs_lun: int
    rq_sa: int
    rq_seq: int
    rq_lun: int
    cmd: int
    data: bytes

    @classmethod
    def parse(cls, frame: bytes) -> IpmbRequest:
        """Decode and check a request frame (both checksums, request NetFn)."""
        if len(frame) < MIN_REQUEST:
            raise IpmbFrameError(CC.REQUEST_LENGTH_INVALID, f"IPMB request of {len(frame)} bytes, need {MIN_REQUEST}")
        if checksum(frame[0:2]) != frame[2]:
            raise IpmbFrameError(CC.INVALID_DATA_FIELD, "IPMB header checksum mismatch")
        if checksum(frame[3:-1]) != frame[-1]:
            raise IpmbFrameError(CC.INVALID_DATA_FIELD, "IPMB data checksum mismatch")
        netfn = frame[1] >> 2
        if netfn & 1:
            raise IpmbFrameError(CC.INVALID_DATA_FIELD, "encapsulated message is a response, not a request")
        return cls(
            rs_sa=frame[0],
            netfn=netfn,
            rs_lun=frame[1] & 3,
            rq_sa=frame[3],
            rq_seq=frame[4] >> 2,
            rq_lun=frame[4] & 3,
            cmd=frame[5],
            data=bytes(frame[6:-1]),
        )

    def response(self, cc: int, data: bytes = b"") -> bytes:
        """The IPMB response frame answering this request."""
        head = bytes([self.rq_sa, ((self.netfn | 1) << 2) | self.rq_lun])
        body = bytes([self.rs_sa, (self.rq_seq << 2) | self.rs_lun, self.cmd, cc]) + data
        return head + bytes([checksum(head)]) + body + bytes([checksum(body)])


class Satellite:
    """A simple management controller on IPMB: it answers Get Device ID.

    Everything else gets C1 (invalid command), LUNs other than 0 get C2, as a
    minimal IPMB controller would answer (IPMI 2.0 table 5-2).
    """

    def __init__(self, config: SatelliteConfig):
        self.config = config

    def answer(self, netfn: int, lun: int, cmd: int, data: bytes) -> tuple[int, bytes]:
        if lun != 0:
            return CC.INVALID_FOR_LUN, b""
        if netfn == NetFn.APP and cmd == 0x01:  # Get Device ID
            if data:
                return CC.REQUEST_LENGTH_INVALID, b""
            return CC.OK, device_id_response(self.config.identity)._encode()[1:]
        return CC.INVALID_COMMAND, b""
