"""IPMI v1.5 LAN sessions: packet codec and session state machine (IPMI 2.0 sections 13.6-13.8, 22.13-22.20).

After the 4-byte RMCP header (class 07h) an IPMI v1.5 packet is: the session
header -- authentication type (1 byte), session sequence number (4 bytes, LS
first), session ID (4 bytes, LS first), a 16-byte authentication code when
the type is not "none", the message length (1 byte) -- then the IPMI message
(rsAddr, netFn/rsLUN, checksum 1, rqAddr, rqSeq/rqLUN, cmd, data, checksum 2;
section 13.8, table 13-4) and an optional legacy pad byte.

Authentication codes (section 22.17.1): MD5(password + session ID + message
+ session sequence number + password), the password being the 16-byte field;
"straight password" sends the 16-byte password itself; MD2 is the MD5 formula
with MD2 (pycryptodome's, since OpenSSL 3 has none).

Everything here is sans-I/O: ``V15Handler.handle(body, peer, now)`` takes the
bytes after the RMCP header and returns whole datagrams to send back; the
requests go to ``Bmc.handle`` and the transport acts on the actions they
queued once the datagrams are out.  Which commands may come outside a
session is the dispatcher's rule (``Command.sessionless``), not this layer's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
from dataclasses import dataclass

from Crypto.Hash import MD2

from ..core.bmc import CC, Context, NetFn, Privilege
from .ipmb import IpmbFrameError, IpmbRequest
from .errors import WireError
from . import rmcp
from ..parts.sessions import (
    AUTH_MD2,
    AUTH_MD5,
    AUTH_NONE,
    AUTH_PASSWORD,
    SUPPORTED_AUTH_TYPES,
    Challenge,
    LanContext,
    Session,
)

log = logging.getLogger(__name__)

ACTIVATE_SESSION = (NetFn.APP, 0x3A)

#: The IPMI message inside a v1.5 packet (section 13.8).
Request = IpmbRequest


class PacketError(WireError):
    """A class-7 body that is not a well-formed IPMI v1.5 packet (dropped, counted)."""


@dataclass(frozen=True)
class SessionHeader:
    auth_type: int
    seq: int
    session_id: int
    auth_code: bytes | None = None


def parse_packet(body: bytes) -> tuple[SessionHeader, bytes]:
    """Session header and the IPMI message bytes of a class-7 body."""
    if len(body) < 10:
        raise PacketError(f"{len(body)} bytes: too short for a v1.5 session header")
    auth_type = body[0] & 0x0F
    if auth_type == 0x06:
        raise PacketError("RMCP+ packet given to the v1.5 codec")
    seq, sid = struct.unpack_from("<II", body, 1)
    pos = 9
    code = None
    if auth_type != AUTH_NONE:
        if len(body) < pos + 17:
            raise PacketError("too short for the authentication code")
        code = bytes(body[pos:pos + 16])
        pos += 16
    length = body[pos]
    pos += 1
    msg = bytes(body[pos:pos + length])
    if len(msg) != length:
        raise PacketError(f"message length {length} but {len(msg)} bytes follow")
    if len(body) - (pos + length) > 1:
        raise PacketError(f"{len(body) - pos - length} bytes after the message")
    return SessionHeader(auth_type, seq, sid, code), msg


def parse_request(msg: bytes) -> Request:
    """The IPMI request message of a v1.5 packet; PacketError if it does not parse."""
    try:
        return IpmbRequest.parse(msg, requests_only=False)
    except IpmbFrameError as e:
        raise PacketError(str(e)) from None


def encode_response(req: Request, cc: int, data: bytes = b"") -> bytes:
    return req.response(cc, data)


def password16(password: bytes) -> bytes | None:
    """The 16-byte key of v1.5 authentication; None for a 20-byte password that needs all 20."""
    if len(password) > 16 and any(password[16:]):
        return None
    return bytes(password[:16]).ljust(16, b"\x00")


def auth_code(auth_type: int, password: bytes, session_id: int, msg: bytes, seq: int) -> bytes:
    """Section 22.17.1: the 16-byte authentication code of a message."""
    if auth_type == AUTH_PASSWORD:
        return password
    if auth_type in (AUTH_MD5, AUTH_MD2):
        data = password + struct.pack("<I", session_id) + msg + struct.pack("<I", seq) + password
        return hashlib.md5(data).digest() if auth_type == AUTH_MD5 else MD2.new(data).digest()
    raise ValueError(f"auth type {auth_type} cannot be computed here")


def encode_packet(auth_type: int, seq: int, session_id: int, msg: bytes, password: bytes | None = None) -> bytes:
    """A whole RMCP datagram carrying ``msg`` in a v1.5 session wrapper."""
    body = bytes([auth_type]) + struct.pack("<II", seq, session_id)
    if auth_type != AUTH_NONE:
        body += auth_code(auth_type, password or bytes(16), session_id, msg, seq)
    return rmcp.pack(rmcp.CLASS_IPMI, body + bytes([len(msg)]) + msg)


class V15Handler:
    """The v1.5 session layer of one LanContext."""

    def __init__(self, lan: LanContext):
        self.lan = lan

    def _password(self, user_id: int) -> bytes | None:
        users = self.lan.users
        try:
            return password16(users.password(user_id)) if users is not None else None
        except ValueError:
            return None

    def _check(self, header: SessionHeader, msg: bytes, password: bytes | None) -> bool:
        if header.auth_type == AUTH_NONE:
            return True
        if password is None or header.auth_type not in SUPPORTED_AUTH_TYPES or header.auth_code is None:
            return False
        expected = auth_code(header.auth_type, password, header.session_id, msg, header.seq)
        return hmac.compare_digest(expected, header.auth_code)

    # -- the packet entry point -------------------------------------------------------
    def handle(self, body: bytes, peer, now: float) -> list[bytes]:
        lan = self.lan
        try:
            header, msg = parse_packet(body)
            req = parse_request(msg)
        except PacketError as e:
            lan.count("v15_malformed")
            log.debug("v1.5 packet from %s dropped: %s", peer, e)
            return []
        if header.session_id == 0:
            return self._sessionless(header, req, peer, now)
        challenge = lan.challenges.get(header.session_id)
        if challenge is not None and (req.netfn, req.cmd) == ACTIVATE_SESSION:
            return self._activate(header, msg, req, challenge, peer, now)
        session = lan.sessions.get(header.session_id)
        if session is None or session.kind != "v15":
            lan.count("v15_unknown_session")
            return []
        return self._in_session(session, header, msg, req, peer, now)

    def _dispatch(self, req: Request, ctx: Context, now: float) -> tuple[int, bytes]:
        rsp = self.lan.bmc.handle(req.netfn, req.cmd, req.data, ctx, now)
        return rsp.cc, rsp.data

    def _sessionless(self, header: SessionHeader, req: Request, peer, now: float) -> list[bytes]:
        if header.auth_type != AUTH_NONE:
            self.lan.count("v15_sessionless_auth")
            return []
        # No session: the dispatcher runs only the session-setup commands
        # (and answers D4h to the others).
        ctx = Context(channel=self.lan.channel, privilege=Privilege.CALLBACK, interface="lan",
                      requester_address=req.rq_addr, requester_lun=req.rq_lun, peer=peer)
        cc, data = self._dispatch(req, ctx, now)
        return [encode_packet(AUTH_NONE, 0, 0, encode_response(req, cc, data))]

    def _activate(self, header, msg, req, challenge: Challenge, peer, now: float) -> list[bytes]:
        lan = self.lan
        password = self._password(challenge.user_id)

        def refuse(cc: int) -> list[bytes]:
            lan.challenges.pop(challenge.temp_id, None)  # one attempt per challenge
            return [encode_packet(AUTH_NONE, 0, header.session_id, encode_response(req, cc))]

        if lan.login_guard.blocked(peer, challenge.user_id, now):
            lan.count("v15_login_blocked")
            return refuse(CC.INSUFFICIENT_PRIVILEGE)
        if header.auth_type != challenge.auth_type or not self._check(header, msg, password):
            lan.count("auth_failed")
            lan.login_guard.failed(peer, challenge.user_id, now)
            log.info("LAN v1.5 login of user %d from %s refused: authentication failed", challenge.user_id, peer)
            return refuse(CC.INSUFFICIENT_PRIVILEGE)
        # Authenticated with the challenge's user's password: Activate Session
        # (commands/session.py) uses the challenge up and makes the session
        # under the temporary ID.
        ctx = Context(channel=lan.channel, privilege=Privilege.CALLBACK, interface="lan",
                      session_id=challenge.temp_id, user_id=challenge.user_id,
                      requester_address=req.rq_addr, requester_lun=req.rq_lun, peer=peer)
        cc, data = self._dispatch(req, ctx, now)
        lan.challenges.pop(challenge.temp_id, None)  # one attempt per challenge
        session = lan.sessions.get(challenge.temp_id) if cc == CC.OK else None
        if session is not None:
            lan.login_guard.succeeded(peer, challenge.user_id)
        out = encode_response(req, cc, data)
        auth = challenge.auth_type if password is not None else AUTH_NONE
        # The Activate Session response carries the console's initial outbound
        # sequence number (section 22.17); later ones count up from it.
        seq = session.outbound_seq if session is not None else 0
        return [encode_packet(auth, seq, challenge.temp_id, out, password)]

    def _in_session(self, session: Session, header, msg, req, peer, now: float) -> list[bytes]:
        lan = self.lan
        password = self._password(session.user_id)
        if header.auth_type != session.auth_type or not self._check(header, msg, password):
            lan.count("v15_bad_auth")
            return []
        if not session.inbound.accept(header.seq):
            lan.count("v15_bad_sequence")
            return []
        session.touch(now)
        session.peer = peer
        ctx = session.context(lan.channel, req.rq_addr, req.rq_lun)
        cc, data = self._dispatch(req, ctx, now)
        out = encode_response(req, cc, data)
        return [encode_packet(session.auth_type, session.next_outbound_seq(), session.id, out, password)]
