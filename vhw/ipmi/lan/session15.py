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
bytes after the RMCP header and returns whole datagrams to send back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import struct
from dataclasses import dataclass

from Crypto.Hash import MD2

from ..bmc import CC, Context, NetFn, Privilege
from . import rmcp
from .sessions import AUTH_MD2, AUTH_MD5, AUTH_NONE, AUTH_PASSWORD, SUPPORTED_AUTH_TYPES, LanContext, Session

log = logging.getLogger(__name__)

BMC_SA = 0x20
#: Commands a LAN client may send outside a session (section 13.14, 13.20):
#: Get Channel Authentication Capabilities, Get Session Challenge, Get Channel
#: Cipher Suites.  Activate Session comes with the temporary session ID.
SESSIONLESS = frozenset({(NetFn.APP, 0x38), (NetFn.APP, 0x39), (NetFn.APP, 0x54)})
ACTIVATE_SESSION = (NetFn.APP, 0x3A)
#: How many Get Session Challenge answers may wait for their Activate Session,
#: and for how long (seconds).
MAX_CHALLENGES = 64
CHALLENGE_LIFETIME = 30.0


class PacketError(ValueError):
    """A class-7 body that is not a well-formed IPMI v1.5 packet (dropped, counted)."""


@dataclass(frozen=True)
class SessionHeader:
    auth_type: int
    seq: int
    session_id: int
    auth_code: bytes | None = None


@dataclass(frozen=True)
class Request:
    rs_addr: int
    netfn: int
    rs_lun: int
    rq_addr: int
    rq_seq: int
    rq_lun: int
    cmd: int
    data: bytes


def checksum(data: bytes) -> int:
    """2's complement checksum (section 13.8): the bytes plus it sum to 0 mod 256."""
    return (-sum(data)) & 0xFF


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
    if len(msg) < 7:
        raise PacketError(f"IPMI message of {len(msg)} bytes: shorter than 7")
    if checksum(msg[:2]) != msg[2]:
        raise PacketError("header checksum mismatch")
    if checksum(msg[3:-1]) != msg[-1]:
        raise PacketError("data checksum mismatch")
    return Request(msg[0], msg[1] >> 2, msg[1] & 3, msg[3], msg[4] >> 2, msg[4] & 3, msg[5], bytes(msg[6:-1]))


def encode_request(netfn: int, cmd: int, data: bytes = b"", rq_seq: int = 0, rq_addr: int = 0x81,
                   rs_addr: int = BMC_SA, rq_lun: int = 0, rs_lun: int = 0) -> bytes:
    head = bytes([rs_addr, (netfn << 2) | rs_lun])
    rest = bytes([rq_addr, ((rq_seq & 0x3F) << 2) | rq_lun, cmd]) + bytes(data)
    return head + bytes([checksum(head)]) + rest + bytes([checksum(rest)])


def encode_response(req: Request, cc: int, data: bytes = b"") -> bytes:
    head = bytes([req.rq_addr, ((req.netfn | 1) << 2) | req.rq_lun])
    rest = bytes([req.rs_addr, (req.rq_seq << 2) | req.rs_lun, req.cmd, cc & 0xFF]) + bytes(data)
    return head + bytes([checksum(head)]) + rest + bytes([checksum(rest)])


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


@dataclass
class Challenge:
    """A Get Session Challenge answer waiting for its Activate Session (section 22.16)."""

    temp_id: int
    user_id: int
    auth_type: int
    challenge: bytes
    peer: object
    created: float


@dataclass
class Inflight:
    """What session commands need to know about the packet being dispatched."""

    peer: object
    header: SessionHeader
    challenge: Challenge | None = None
    session: Session | None = None
    #: Set by Activate Session when it created a session.
    new_session: Session | None = None


def new_challenge(lan: LanContext, user_id: int, auth_type: int, peer, now: float) -> Challenge:
    """Remember a Get Session Challenge answer; bounded, oldest dropped first."""
    pending = lan.challenges
    for tid in [t for t, c in pending.items() if now - c.created > CHALLENGE_LIFETIME]:
        del pending[tid]
    while len(pending) >= MAX_CHALLENGES:
        pending.pop(next(iter(pending)))
    while True:
        tid = secrets.randbits(32)
        if tid not in (0, 0xFFFFFFFF) and tid not in pending and lan.sessions.get(tid) is None:
            break
    c = Challenge(tid, user_id, auth_type, secrets.token_bytes(16), peer, now)
    pending[tid] = c
    return c


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
            return self._sessionless(header, req, peer)
        challenge = lan.challenges.get(header.session_id)
        if challenge is not None and (req.netfn, req.cmd) == ACTIVATE_SESSION:
            return self._activate(header, msg, req, challenge, peer, now)
        session = lan.sessions.get(header.session_id)
        if session is None or session.kind != "v15":
            lan.count("v15_unknown_session")
            return []
        return self._in_session(session, header, msg, req, peer, now)

    def _dispatch(self, req: Request, ctx: Context, inflight: Inflight) -> tuple[int, bytes]:
        lan = self.lan
        lan.inflight = inflight
        try:
            rsp = lan.runner.handle(req.netfn, req.cmd, req.data, ctx)
        finally:
            lan.inflight = None
        return rsp.cc, rsp.data

    def _sessionless(self, header: SessionHeader, req: Request, peer) -> list[bytes]:
        if header.auth_type != AUTH_NONE:
            self.lan.count("v15_sessionless_auth")
            return []
        if (req.netfn, req.cmd) not in SESSIONLESS:
            out = encode_response(req, CC.INSUFFICIENT_PRIVILEGE)
            return [encode_packet(AUTH_NONE, 0, 0, out)]
        command = self.lan.bmc.table.get(req.netfn, req.cmd)
        priv = command.privilege if command is not None else Privilege.CALLBACK
        ctx = Context(channel=self.lan.channel, privilege=Privilege(priv), interface="lan",
                      requester_address=req.rq_addr, requester_lun=req.rq_lun)
        cc, data = self._dispatch(req, ctx, Inflight(peer, header))
        out = [encode_packet(AUTH_NONE, 0, 0, encode_response(req, cc, data))]
        self.lan.runner.flush_actions()
        return out

    def _activate(self, header, msg, req, challenge: Challenge, peer, now: float) -> list[bytes]:
        lan = self.lan
        password = self._password(challenge.user_id)
        del lan.challenges[challenge.temp_id]  # one attempt per challenge

        def refuse(cc: int) -> list[bytes]:
            return [encode_packet(AUTH_NONE, 0, header.session_id, encode_response(req, cc))]

        if lan.login_guard.blocked(peer, challenge.user_id, now):
            lan.count("v15_login_blocked")
            return refuse(CC.INSUFFICIENT_PRIVILEGE)
        if header.auth_type != challenge.auth_type or not self._check(header, msg, password):
            lan.count("auth_failed")
            lan.login_guard.failed(peer, challenge.user_id, now)
            log.info("LAN v1.5 login of user %d from %s refused: authentication failed", challenge.user_id, peer)
            return refuse(CC.INSUFFICIENT_PRIVILEGE)
        ctx = Context(channel=lan.channel, privilege=Privilege.CALLBACK, interface="lan",
                      session_id=challenge.temp_id, user_id=challenge.user_id,
                      requester_address=req.rq_addr, requester_lun=req.rq_lun)
        inflight = Inflight(peer, header, challenge=challenge)
        cc, data = self._dispatch(req, ctx, inflight)
        if cc == CC.OK and inflight.new_session is not None:
            lan.login_guard.succeeded(peer, challenge.user_id)
        out = encode_response(req, cc, data)
        auth = challenge.auth_type if password is not None else AUTH_NONE
        # The Activate Session response carries the console's initial outbound
        # sequence number (section 22.17); later ones count up from it.
        seq = inflight.new_session.outbound_seq if inflight.new_session is not None else 0
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
        cc, data = self._dispatch(req, ctx, Inflight(peer, header, session=session))
        out = encode_response(req, cc, data)
        pkt = encode_packet(session.auth_type, session.next_outbound_seq(), session.id, out, password)
        lan.runner.flush_actions()
        return [pkt]
