"""Scapy layers for IPMI over LAN (IPMI 2.0 sections 13.1-13.8, 13.17-13.22; ASF 2.0 section 3.2).

Scapy has no RMCP/IPMI layers, so these are written from the spec.  They
serve two things: fuzzing the LAN server with ``scapy.packet.fuzz`` and
decoding captured traffic (``UDP`` port 623 is bound to ``RMCP``, so
``Ether(raw)`` or ``rdpcap`` of real traffic dissects down to the IPMI
message or the RMCP+ session setup payloads).

Layers:

- ``RMCP``: version 06h, reserved, sequence number (FFh: no ACK), ACK bit
  and class (06h ASF, 07h IPMI, 08h OEM).  Class 06h continues with
  ``ASF``; class 07h with ``IPMISession15`` or, when the authentication
  type nibble is 06h, ``RMCPPlus``.
- ``ASF``: IANA 4542, message type (80h Presence Ping, 40h Presence Pong),
  tag, reserved, data length; ``ASFPresencePong`` is the Pong's 16 bytes.
- ``IPMISession15``: auth type, session sequence number, session ID (both
  LS byte first), a 16-byte auth code when the auth type is not none, the
  message length; then ``IPMIMessage`` (and an optional legacy pad byte,
  dissected as padding).
- ``IPMIMessage``: rsAddr, netFn/rsLUN, checksum 1, rqAddr, rqSeq/rqLUN,
  cmd, data, checksum 2; ``None`` checksums are filled in when built.
  Responses have the same shape (the first data byte is the completion
  code; the addresses are the other way round).
- ``RMCPPlus``: auth type 06h, payload type with the encrypted and
  authenticated bits, OEM IANA and OEM payload ID for payload type 02h,
  session ID, session sequence number, payload length.  Unencrypted
  payloads continue with ``IPMIMessage`` (type 00h), ``OpenSessionRequest``
  (10h), ``OpenSessionResponse`` (11h), ``RAKP1`` (12h), ``RAKP2`` (13h),
  ``RAKP3`` (14h), ``RAKP4`` (15h); the session trailer of authenticated
  packets is left as padding.
"""

from __future__ import annotations

from typing import Any, ClassVar

from scapy.fields import (
    BitEnumField,
    BitField,
    ByteEnumField,
    ByteField,
    ConditionalField,
    Field,
    FieldLenField,
    IntField,
    LEIntField,
    LEShortField,
    ShortField,
    StrField,
    StrFixedLenField,
    StrLenField,
    X3BytesField,
    XByteField,
    XLEIntField,
)
from scapy.layers.inet import UDP
from scapy.packet import Packet, Raw, bind_layers

from ..ipmi.wire.ipmb import checksum

RMCP_PORT = 623

RMCP_CLASSES = {0x06: "ASF", 0x07: "IPMI", 0x08: "OEM"}
ASF_TYPES = {0x80: "presence_ping", 0x40: "presence_pong"}
AUTH_TYPES = {0x0: "none", 0x1: "MD2", 0x2: "MD5", 0x4: "password", 0x5: "OEM", 0x6: "RMCP+"}
PAYLOAD_TYPES = {0x00: "IPMI", 0x01: "SOL", 0x02: "OEM", 0x10: "open_session_request",
                 0x11: "open_session_response", 0x12: "RAKP1", 0x13: "RAKP2", 0x14: "RAKP3", 0x15: "RAKP4"}
PRIVILEGES = {0: "highest", 1: "callback", 2: "user", 3: "operator", 4: "administrator", 5: "OEM"}


class _AllButLastField(StrField):
    """The bytes of a layer up to, not including, its last byte (the IPMI message data)."""

    def getfield(self, pkt, s):
        if not s:
            return b"", b""
        return s[-1:], self.m2i(pkt, s[:-1])


class RMCP(Packet):
    name = "RMCP"
    fields_desc = [
        XByteField("version", 0x06),
        ByteField("reserved", 0),
        ByteField("seq", 0xFF),
        BitField("ack", 0, 1),
        BitField("class_reserved", 0, 2),
        BitEnumField("msg_class", 0x07, 5, RMCP_CLASSES),
    ]

    def guess_payload_class(self, payload):
        if self.msg_class == 0x06 and not self.ack:
            return ASF
        if self.msg_class == 0x07 and not self.ack and payload:
            if payload[0] & 0x0F == 0x06:
                return RMCPPlus
            return IPMISession15
        return Raw


class ASF(Packet):
    name = "ASF"
    fields_desc = [
        IntField("iana", 4542),
        ByteEnumField("msg_type", 0x80, ASF_TYPES),
        ByteField("tag", 0),
        ByteField("reserved", 0),
        ByteField("length", None),
    ]

    def post_build(self, p, pay):
        if self.length is None:
            p = p[:-1] + bytes([len(pay) & 0xFF])
        return p + pay

    def extract_padding(self, s):
        return s[:self.length], s[self.length:]

    def guess_payload_class(self, payload):
        if self.iana == 4542 and self.msg_type == 0x40:
            return ASFPresencePong
        return Raw


class ASFPresencePong(Packet):
    name = "ASF Presence Pong"
    fields_desc = [
        IntField("iana", 4542),
        IntField("oem", 0),
        XByteField("entities", 0x81),
        XByteField("interactions", 0x00),
        StrFixedLenField("reserved", b"\x00" * 6, 6),
    ]


class IPMISession15(Packet):
    name = "IPMI v1.5 session"
    fields_desc = [
        BitField("auth_reserved", 0, 4),
        BitEnumField("auth_type", 0, 4, AUTH_TYPES),
        LEIntField("seq", 0),
        XLEIntField("session_id", 0),
        ConditionalField(StrFixedLenField("auth_code", b"\x00" * 16, 16), lambda p: p.auth_type != 0),
        ByteField("length", None),
    ]

    def post_build(self, p, pay):
        if self.length is None:
            p = p[:-1] + bytes([len(pay) & 0xFF])
        return p + pay

    def extract_padding(self, s):
        return s[:self.length], s[self.length:]

    def guess_payload_class(self, payload):
        return IPMIMessage


class IPMIMessage(Packet):
    name = "IPMI message"
    fields_desc = [
        XByteField("rs_addr", 0x20),
        BitField("netfn", 0x06, 6),
        BitField("rs_lun", 0, 2),
        XByteField("checksum1", None),
        XByteField("rq_addr", 0x81),
        BitField("rq_seq", 0, 6),
        BitField("rq_lun", 0, 2),
        XByteField("cmd", 0x01),
        _AllButLastField("data", b""),
        XByteField("checksum2", None),
    ]

    def post_build(self, p, pay):
        if self.checksum1 is None:
            p = p[:2] + bytes([checksum(p[:2])]) + p[3:]
        if self.checksum2 is None:
            p = p[:-1] + bytes([checksum(p[3:-1])])
        return p + pay


class RMCPPlus(Packet):
    name = "RMCP+ session"
    fields_desc = [
        BitField("auth_reserved", 0, 4),
        BitEnumField("auth_type", 0x6, 4, AUTH_TYPES),
        BitField("encrypted", 0, 1),
        BitField("authenticated", 0, 1),
        BitEnumField("payload_type", 0x10, 6, PAYLOAD_TYPES),
        ConditionalField(XLEIntField("oem_iana", 0), lambda p: p.payload_type == 0x02),
        ConditionalField(LEShortField("oem_payload_id", 0), lambda p: p.payload_type == 0x02),
        XLEIntField("session_id", 0),
        LEIntField("seq", 0),
        LEShortField("length", None),
    ]

    def post_build(self, p, pay):
        if self.length is None:
            n = len(pay)
            p = p[:-2] + bytes([n & 0xFF, (n >> 8) & 0xFF])
        return p + pay

    def extract_padding(self, s):
        # What follows the payload is the session trailer (pad, pad length,
        # next header, AuthCode) of an authenticated packet.
        return s[:self.length], s[self.length:]

    def guess_payload_class(self, payload):
        if self.encrypted:
            return Raw
        return _PAYLOADS.get(self.payload_type, Raw)


def _algorithm_fields(prefix: str, ptype: int) -> list[Field[Any, Any]]:
    return [
        ByteField(f"{prefix}_payload_type", ptype),
        ShortField(f"{prefix}_reserved1", 0),
        ByteField(f"{prefix}_payload_length", 8),
        ByteField(f"{prefix}_algorithm", 0),
        X3BytesField(f"{prefix}_reserved2", 0),
    ]


class OpenSessionRequest(Packet):
    """RMCP+ Open Session Request (section 13.17, table 13-9)."""

    name = "RMCP+ Open Session Request"
    fields_desc: ClassVar[list[Any]] = [
        ByteField("tag", 0),
        BitField("priv_reserved", 0, 4),
        BitEnumField("max_privilege", 0, 4, PRIVILEGES),
        ShortField("reserved", 0),
        XLEIntField("console_session_id", 0),
    ] + _algorithm_fields("auth", 0x00) + _algorithm_fields("integrity", 0x01) \
      + _algorithm_fields("conf", 0x02)


class OpenSessionResponse(Packet):
    """RMCP+ Open Session Response (section 13.18, table 13-10); algorithms only when status is 0."""

    name = "RMCP+ Open Session Response"
    fields_desc: ClassVar[list[Any]] = [
        ByteField("tag", 0),
        XByteField("status", 0),
        BitField("priv_reserved", 0, 4),
        BitEnumField("max_privilege", 0, 4, PRIVILEGES),
        ByteField("reserved", 0),
        XLEIntField("console_session_id", 0),
    ] + [ConditionalField(f, lambda p: p.status == 0)
         for f in [XLEIntField("bmc_session_id", 0)] + _algorithm_fields("auth", 0x00)
         + _algorithm_fields("integrity", 0x01) + _algorithm_fields("conf", 0x02)]


class RAKP1(Packet):
    """RAKP Message 1 (section 13.20, table 13-11)."""

    name = "RMCP+ RAKP 1"
    fields_desc = [
        ByteField("tag", 0),
        X3BytesField("reserved1", 0),
        XLEIntField("bmc_session_id", 0),
        StrFixedLenField("console_random", b"\x00" * 16, 16),
        BitField("role_reserved", 0, 3),
        BitField("name_only_lookup", 0, 1),
        BitEnumField("privilege", 4, 4, PRIVILEGES),
        ShortField("reserved2", 0),
        FieldLenField("username_length", None, length_of="username", fmt="B", adjust=lambda p, n: n & 0xFF),
        StrLenField("username", b"", length_from=lambda p: p.username_length),
    ]


class RAKP2(Packet):
    """RAKP Message 2 (section 13.21, table 13-12)."""

    name = "RMCP+ RAKP 2"
    fields_desc = [
        ByteField("tag", 0),
        XByteField("status", 0),
        ShortField("reserved", 0),
        XLEIntField("console_session_id", 0),
        ConditionalField(StrFixedLenField("bmc_random", b"\x00" * 16, 16), lambda p: p.status == 0),
        ConditionalField(StrFixedLenField("bmc_guid", b"\x00" * 16, 16), lambda p: p.status == 0),
        StrField("auth_code", b""),
    ]


class RAKP3(Packet):
    """RAKP Message 3 (section 13.22, table 13-13)."""

    name = "RMCP+ RAKP 3"
    fields_desc = [
        ByteField("tag", 0),
        XByteField("status", 0),
        ShortField("reserved", 0),
        XLEIntField("bmc_session_id", 0),
        StrField("auth_code", b""),
    ]


class RAKP4(Packet):
    """RAKP Message 4 (section 13.23, table 13-14)."""

    name = "RMCP+ RAKP 4"
    fields_desc = [
        ByteField("tag", 0),
        XByteField("status", 0),
        ShortField("reserved", 0),
        XLEIntField("console_session_id", 0),
        StrField("integrity_check", b""),
    ]


_PAYLOADS = {0x00: IPMIMessage, 0x10: OpenSessionRequest, 0x11: OpenSessionResponse,
             0x12: RAKP1, 0x13: RAKP2, 0x14: RAKP3, 0x15: RAKP4}

bind_layers(UDP, RMCP, dport=RMCP_PORT)
bind_layers(UDP, RMCP, sport=RMCP_PORT)
bind_layers(RMCP, ASF, msg_class=0x06)
bind_layers(RMCP, IPMISession15, msg_class=0x07)
bind_layers(ASF, ASFPresencePong, msg_type=0x40)
