"""RMCP+ sessions (IPMI 2.0 sections 13.6-13.32): sans-I/O.

The LAN server hands every RMCP class-7 packet whose authentication type byte
is 06h to ``RmcpPlus(lan_context).handle(packet, peer, now)`` and sends back
the packets it returns.  Nothing here touches a socket or a clock.

The packet (section 13.6, table 13-8), after the 4-byte RMCP header::

    06h | payload type [7]=encrypted [6]=authenticated [5:0] type
        | session ID (4, LE) | session sequence number (4, LE) | length (2, LE)
        | payload (AES-CBC-128: IV | ciphertext, 13.29)
        | [authenticated only] integrity pad FFh.. | pad length | next header 07h | AuthCode

Session setup (13.17-13.24): Open Session Request/Response (payloads 10h/11h),
RAKP 1/2 (12h/13h), RAKP 3/4 (14h/15h), all outside a session (ID 0).  Inside
an active session, IPMI payloads (00h) go through the BMC's one dispatcher
(``Bmc.handle``) with the session's privilege; SOL payloads (01h) go to
``lan_context.sol_handler`` when one is set.  Outside a session, the
dispatcher answers only the commands its table marks sessionless (Get
Channel Authentication Capabilities and Get Channel Cipher Suites here:
ipmitool asks for the latter first, section 22.15); what it refuses for
want of a session is dropped (13.14).  The transport acts on the actions
the requests queued once the packets are out.

The configuration is the ``[bmc.rmcpplus]`` table (``RmcpPlusConfig``):
enabled cipher suites (suite 0 only if listed), anonymous (null user name)
login and the BMC key K_G.  Wrong passwords are rate-limited by the LAN
context's shared ``login_guard`` (per peer address and user).

All state lives in the LAN context's shared session table (each RMCP+
session's keys in ``session.attrs["rmcpplus"]``), so a ``RmcpPlus`` made per
packet and one kept for good behave the same.
"""

from __future__ import annotations

import logging
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from ...errors import DescriptionError
from ...tables import Table

from ..core.bmc import Context, Privilege, Response
from .ipmb import IpmbFrameError, IpmbRequest
from . import crypto
from .crypto import CIPHER_SUITES, CipherSuite, SessionKeys

log = logging.getLogger(__name__)

RMCP_HEADER = bytes([0x06, 0x00, 0xFF, 0x07])
AUTH_TYPE_RMCPPLUS = 0x06
NEXT_HEADER = 0x07

# Payload types (table 13-16).
PT_IPMI, PT_SOL, PT_OEM = 0x00, 0x01, 0x02
PT_OPEN_REQ, PT_OPEN_RSP, PT_RAKP1, PT_RAKP2, PT_RAKP3, PT_RAKP4 = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15

# RMCP+ status codes (table 13-15).
ST_OK = 0x00
ST_NO_RESOURCES = 0x01
ST_INVALID_SESSION_ID = 0x02
ST_INVALID_AUTH_ALG = 0x04
ST_INVALID_INTEG_ALG = 0x05
ST_INACTIVE_SESSION = 0x08
ST_INVALID_ROLE = 0x09
ST_UNAUTHORIZED_ROLE = 0x0A
ST_INVALID_NAME_LENGTH = 0x0C
ST_UNAUTHORIZED_NAME = 0x0D
ST_INVALID_ICV = 0x0F
ST_INVALID_CONF_ALG = 0x10
ST_NO_CIPHER_SUITE_MATCH = 0x11
ST_ILLEGAL_PARAMETER = 0x12

#: Role byte bit 4 of RAKP 1 (table 13-18): 1 = name-only lookup.
NAME_ONLY_LOOKUP = 0x10

#: Sequence number window (section 6.12.13 for RMCP+ sessions): packets up to
#: this many ahead of the highest seen are accepted, and older ones not yet
#: seen within the same distance behind it.
SEQ_WINDOW = 32
#: A half-open session (Open Session answered, RAKP not finished) lives this long.
SETUP_TIMEOUT = 15.0
#: An idle active session is reclaimed after this long (section 6.12.15 allows 60 s).
SESSION_TIMEOUT = 60.0
#: Session slots when the LAN context does not bring its own table.
DEFAULT_MAX_SESSIONS = 16

DEFAULT_SUITES = (1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17)


# -- configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class RmcpPlusConfig:
    """The ``[bmc.rmcpplus]`` table."""

    #: Enabled cipher suites, in preference order; suite 0 only when listed.
    cipher_suites: tuple[int, ...] = DEFAULT_SUITES
    #: Allow a null user name (user 1, the anonymous user) to log in.
    allow_anonymous: bool = False
    #: K_G, the BMC key (section 13.31); None = keys come from the user's password.
    bmc_key: bytes | None = None

    @classmethod
    def from_dict(cls, d: Any, key: str = "bmc.rmcpplus") -> RmcpPlusConfig:
        if d is None:
            return cls()
        Table(d, key).expect(("cipher_suites", "allow_anonymous", "bmc_key"))
        suites = d.get("cipher_suites", list(DEFAULT_SUITES))
        if not isinstance(suites, list) or not suites:
            raise DescriptionError(f"{key}.cipher_suites", "must be a non-empty list of cipher suite IDs")
        for i, s in enumerate(suites):
            if isinstance(s, bool) or not isinstance(s, int) or s not in CIPHER_SUITES:
                raise DescriptionError(f"{key}.cipher_suites[{i}]",
                                       f"must be one of {', '.join(map(str, sorted(CIPHER_SUITES)))}")
            if s in suites[:i]:
                raise DescriptionError(f"{key}.cipher_suites[{i}]", f"suite {s} listed twice")
        anonymous = d.get("allow_anonymous", False)
        if not isinstance(anonymous, bool):
            raise DescriptionError(f"{key}.allow_anonymous", "must be true or false")
        raw = d.get("bmc_key")
        bmc_key = None
        if raw is not None:
            if not isinstance(raw, str) or not raw:
                raise DescriptionError(f"{key}.bmc_key", 'must be text or hex like "0x0102..", at most 20 bytes')
            if raw.lower().startswith("0x"):
                try:
                    bmc_key = bytes.fromhex(raw[2:])
                except ValueError:
                    raise DescriptionError(f"{key}.bmc_key", "is not valid hex") from None
            else:
                bmc_key = raw.encode("utf-8")
            if len(bmc_key) > crypto.PASSWORD_LENGTH:
                raise DescriptionError(f"{key}.bmc_key", "is longer than 20 bytes")
            if not any(bmc_key):
                bmc_key = None  # an all-zero K_G means "no BMC key" (13.31)
        return cls(tuple(suites), anonymous, bmc_key)


# -- sessions ----------------------------------------------------------------------------

SETUP, RAKP2_SENT, ACTIVE = "setup", "rakp2-sent", "active"


class SeqWindow:
    """Inbound sequence numbers of one kind (authenticated or not) of a session."""

    def __init__(self) -> None:
        self.highest = 0
        self.seen = 0  # bit i: highest - i was seen

    def accept(self, seq: int) -> bool:
        """True (and remembered) if ``seq`` is new and inside the window."""
        if seq == 0:
            return False
        if seq > self.highest:
            if seq - self.highest > SEQ_WINDOW:
                return False
            shift = seq - self.highest
            self.seen = ((self.seen << shift) | 1) & ((1 << SEQ_WINDOW) - 1)
            self.highest = seq
            return True
        back = self.highest - seq
        if back >= SEQ_WINDOW or self.seen & (1 << back):
            return False
        self.seen |= 1 << back
        return True


@dataclass(eq=False)
class RmcpPlusSession:
    """The RMCP+ side of one shared-table session (``base.attrs["rmcpplus"]``).

    ``base`` is the ``vhw.ipmi.parts.sessions.Session`` that the session
    commands (Set Session Privilege Level, Close Session, Get Session Info)
    see; the privilege, user and activity live there, keys and windows here.
    """

    base: Any
    console_session_id: int
    suite: CipherSuite
    channel: int = 1
    state: str = SETUP
    created: float = 0.0
    user_name: bytes = b""
    role: int = 0
    rm: bytes = b""
    rc: bytes = b""
    keys: SessionKeys | None = None
    out_seq: int = 0
    seq_auth: SeqWindow = field(default_factory=SeqWindow)
    seq_plain: SeqWindow = field(default_factory=SeqWindow)
    #: The last setup reply, resent when the console retransmits its request.
    last_reply: tuple[int, bytes, bytes] | None = None
    closed: bool = False

    @property
    def session_id(self) -> int:
        return self.base.id

    @property
    def peer(self) -> Any:
        return self.base.peer

    @property
    def user_id(self) -> int | None:
        return self.base.user_id or None

    @property
    def privilege(self) -> int:
        return self.base.privilege

    @privilege.setter
    def privilege(self, value: int) -> None:
        self.base.privilege = int(value)

    @property
    def max_privilege(self) -> int:
        return self.base.privilege_max

    @max_privilege.setter
    def max_privilege(self, value: int) -> None:
        self.base.privilege_max = int(value)

    @property
    def last_activity(self) -> float:
        return self.base.last_activity

    @property
    def active(self) -> bool:
        return self.state == ACTIVE and not self.closed


def _host(peer: Any) -> Any:
    return peer[0] if isinstance(peer, tuple) and peer else peer


# -- the protocol ------------------------------------------------------------------------


class RmcpPlus:
    """The RMCP+ session layer of one LAN channel."""

    def __init__(self, lan_context: Any) -> None:
        self.ctx = lan_context

    # -- context accessors ---------------------------------------------------------------
    @property
    def bmc(self) -> Any:
        return self.ctx.bmc

    @property
    def config(self) -> RmcpPlusConfig:
        cfg = getattr(self.ctx, "rmcpplus_config", None)
        if cfg is None:
            cfg = getattr(getattr(self.bmc, "config", None), "rmcpplus", None)
        return cfg if isinstance(cfg, RmcpPlusConfig) else RmcpPlusConfig()

    @property
    def users(self) -> Any:
        users = getattr(self.ctx, "users", None)
        return users if users is not None else self.bmc.parts.get("users")

    @property
    def channel(self) -> int:
        return int(getattr(self.ctx, "channel", 1))

    @property
    def table(self) -> Any:
        return self.ctx.sessions

    def _count(self, key: str) -> None:
        self.ctx.count("rmcpplus_" + key)

    def _get(self, sid: int) -> RmcpPlusSession | None:
        base = self.table.get(sid) if sid else None
        rp = base.attrs.get("rmcpplus") if base is not None and base.kind == "v20" else None
        return rp if isinstance(rp, RmcpPlusSession) else None

    def _remove(self, session: RmcpPlusSession) -> None:
        session.closed = True
        self.table.close(session.session_id)

    def _channel_limits(self) -> tuple[bool, int]:
        """(open, privilege limit) of this LAN channel's volatile access."""
        return self.ctx.channel_limits()

    def _guid(self) -> bytes:
        guid = getattr(getattr(self.bmc, "config", None), "system_guid", None)
        return guid.bytes_le if guid is not None else bytes(16)

    # -- entry point ---------------------------------------------------------------------
    def handle(self, packet: bytes, peer: Any, now: float) -> list[bytes]:
        """Answer one RMCP+ packet; never raises, returns the packets to send."""
        try:
            if now >= self.ctx.next_expiry:
                self.ctx.next_expiry = now + 1.0
                self.expire(now)
            return self._handle(bytes(packet), peer, now)
        except Exception:  # a bug must not kill the server; the packet is dropped
            log.exception("RMCP+ packet dropped: %s", bytes(packet)[:64].hex())
            self._count("internal_errors")
            return []

    def expire(self, now: float) -> None:
        """Reclaim half-open sessions here and idle ones through the shared table."""
        for s in self.sessions():
            if s.state != ACTIVE and now - s.last_activity > SETUP_TIMEOUT:
                self._remove(s)
        self.table.expire(now)

    def sessions(self) -> list[RmcpPlusSession]:
        out = []
        for base in self.table:
            rp = base.attrs.get("rmcpplus") if base.kind == "v20" else None
            if isinstance(rp, RmcpPlusSession):
                out.append(rp)
        return out

    def _handle(self, pkt: bytes, peer: Any, now: float) -> list[bytes]:
        if len(pkt) < 16 or pkt[:4] != RMCP_HEADER or pkt[4] & 0x0F != AUTH_TYPE_RMCPPLUS:
            return self._drop("malformed header")
        ptype_byte = pkt[5]
        encrypted, authenticated, ptype = bool(ptype_byte & 0x80), bool(ptype_byte & 0x40), ptype_byte & 0x3F
        if ptype == PT_OEM:
            return self._drop("OEM payloads are not supported")
        sid, seq, length = struct.unpack_from("<IIH", pkt, 6)
        end = 16 + length
        if end > len(pkt):
            return self._drop("payload length beyond the packet")
        payload, trailer = pkt[16:end], pkt[end:]
        enabled, _ = self._channel_limits()
        if not enabled:
            return self._drop("LAN channel disabled")
        if sid == 0:
            if encrypted or authenticated or trailer:
                return self._drop("protected packet outside a session")
            if ptype == PT_OPEN_REQ:
                return self._open_session(payload, peer, now)
            if ptype == PT_RAKP1:
                return self._rakp1(payload, peer, now)
            if ptype == PT_RAKP3:
                return self._rakp3(payload, peer, now)
            if ptype == PT_IPMI:
                return self._sessionless_ipmi(payload, peer, now)
            return self._drop(f"payload type {ptype:#x} outside a session")
        session = self._get(sid)
        if session is None or not session.active:
            return self._drop("unknown or inactive session")
        if session.peer != peer:
            return self._drop("session used from another address")
        keys = session.keys
        assert keys is not None
        suite = session.suite
        if suite.integrity != crypto.INTEG_NONE and not authenticated:
            return self._drop("unauthenticated packet in an integrity-protected session")
        if suite.confidentiality != crypto.CONF_NONE and not encrypted and ptype in (PT_IPMI, PT_SOL):
            return self._drop("unencrypted payload in an encrypted session")
        if authenticated:
            if suite.integrity == crypto.INTEG_NONE:
                return self._drop("authenticated bit without an integrity algorithm")
            n = crypto.AUTHCODE_LENGTH[suite.integrity]
            if len(trailer) < n + 2:
                return self._drop("short session trailer")
            code, next_header, pad_length = trailer[-n:], trailer[-n - 1], trailer[-n - 2]
            if next_header != NEXT_HEADER or pad_length > 3 or len(trailer) != n + 2 + pad_length:
                return self._drop("bad session trailer")
            if (len(pkt) - n - 4) % 4:
                return self._drop("integrity data is not a multiple of 4")
            if not keys.verify(pkt[4:len(pkt) - n], code):
                self._count("bad_authcode")
                return self._drop("AuthCode mismatch")
        elif trailer:
            return self._drop("trailing bytes")
        if encrypted:
            if suite.confidentiality == crypto.CONF_NONE:
                return self._drop("encrypted bit without a confidentiality algorithm")
            plain = keys.decrypt(payload)
            if plain is None:
                return self._drop("payload does not decrypt")
            payload = plain
        window = session.seq_auth if authenticated else session.seq_plain
        if not window.accept(seq):
            self._count("replays")
            return self._drop(f"sequence number {seq} outside the window or replayed")
        session.base.touch(now)
        if ptype == PT_IPMI:
            return self._session_ipmi(session, payload, now)
        if ptype == PT_SOL:
            hook = getattr(self.ctx, "sol_handler", None)
            if hook is None:
                return self._drop("no SOL handler")
            return list(hook(session, payload, now) or [])
        return self._drop(f"payload type {ptype:#x} inside a session")

    def _drop(self, why: str) -> list[bytes]:
        log.debug("RMCP+ packet dropped: %s", why)
        self._count("dropped")
        return []

    # -- packets out ---------------------------------------------------------------------
    @staticmethod
    def _setup_packet(ptype: int, body: bytes) -> bytes:
        return RMCP_HEADER + bytes([AUTH_TYPE_RMCPPLUS, ptype]) + struct.pack("<IIH", 0, 0, len(body)) + body

    def encode_payload(self, session: RmcpPlusSession, payload_type: int, data: bytes) -> bytes:
        """A packet carrying ``data`` to the console of ``session``, protected as the suite says."""
        return encode_payload(session, payload_type, data)

    # -- session setup (13.17-13.24) -------------------------------------------------------
    def _open_session(self, p: bytes, peer: Any, now: float) -> list[bytes]:
        if len(p) < 32:
            return self._drop("short Open Session Request")
        tag, requested = p[0], p[1] & 0x0F
        console_sid = struct.unpack_from("<I", p, 4)[0]

        def reply(status: int, session: RmcpPlusSession | None = None) -> list[bytes]:
            if session is None:
                body = bytes([tag, status, 0, 0]) + struct.pack("<I", console_sid)
            else:
                s = session.suite
                body = (bytes([tag, status, session.max_privilege, 0])
                        + struct.pack("<II", console_sid, session.session_id)
                        + bytes([0x00, 0, 0, 8, s.auth, 0, 0, 0])
                        + bytes([0x01, 0, 0, 8, s.integrity, 0, 0, 0])
                        + bytes([0x02, 0, 0, 8, s.confidentiality, 0, 0, 0]))
            self._count(f"open_session_{status:02x}")
            return [self._setup_packet(PT_OPEN_RSP, body)]

        algs = []
        for i, want in enumerate((0x00, 0x01, 0x02)):
            entry = p[8 + 8 * i:16 + 8 * i]
            if entry[0] != want or entry[3] != 8:
                return reply(ST_ILLEGAL_PARAMETER)
            algs.append(entry[4] & 0x3F)
        if console_sid == 0:
            return reply(ST_INVALID_SESSION_ID)
        if requested > Privilege.OEM:
            return reply(ST_INVALID_ROLE)
        enabled_ids = tuple(s for s in self.config.cipher_suites if s in CIPHER_SUITES)
        enabled = [CIPHER_SUITES[s] for s in enabled_ids]
        auth, integ, conf = algs
        if not any(s.auth == auth for s in enabled):
            return reply(ST_INVALID_AUTH_ALG)
        if not any(s.integrity == integ for s in enabled):
            return reply(ST_INVALID_INTEG_ALG)
        if not any(s.confidentiality == conf for s in enabled):
            return reply(ST_INVALID_CONF_ALG)
        suite = crypto.find_suite(auth, integ, conf, enabled_ids)
        if suite is None:
            return reply(ST_NO_CIPHER_SUITE_MATCH)
        channel_limit = self._channel_limits()[1]
        if requested == 0:
            granted = channel_limit  # "highest level matching": answered as the real level, never 0
        elif requested > channel_limit:
            return reply(ST_UNAUTHORIZED_ROLE)
        else:
            granted = requested
        # A retransmitted request: answer with the session it already made.
        for s in self.sessions():
            if s.state == SETUP and s.peer == peer and s.console_session_id == console_sid and s.suite == suite:
                s.base.touch(now)
                return reply(ST_OK, s)
        base = self.table.allocate("v20", 0, granted, peer, now=now)
        if base is None:
            return reply(ST_NO_RESOURCES)
        session = RmcpPlusSession(base, console_sid, suite, channel=self.channel, created=now)
        base.attrs["rmcpplus"] = session
        base.attrs["console_session_id"] = console_sid
        base.attrs["cipher_suite"] = suite.id
        return reply(ST_OK, session)

    def _rakp1(self, p: bytes, peer: Any, now: float) -> list[bytes]:
        if len(p) < 28:
            return self._drop("short RAKP 1")
        tag = p[0]
        bmc_sid = struct.unpack_from("<I", p, 4)[0]
        rm, role, name_len = p[8:24], p[24], p[27]
        session = self._get(bmc_sid)
        if session is None or session.peer != peer or session.state == ACTIVE:
            # No session to answer for: status 02h with the console ID unknown (0).
            return [self._setup_packet(PT_RAKP2, bytes([tag, ST_INVALID_SESSION_ID, 0, 0]) + bytes(4))]
        console = struct.pack("<I", session.console_session_id)

        def fail(status: int) -> list[bytes]:
            self._count(f"rakp2_{status:02x}")
            self._remove(session)
            return [self._setup_packet(PT_RAKP2, bytes([tag, status, 0, 0]) + console)]

        if session.state == RAKP2_SENT and session.last_reply and session.last_reply[0] == PT_RAKP2 \
                and session.rm == rm and session.role == role and session.last_reply[1] == p:
            session.base.touch(now)
            return [session.last_reply[2]]  # a retransmitted RAKP 1
        if name_len > 16 or len(p) < 28 + name_len:
            return fail(ST_INVALID_NAME_LENGTH)
        name = p[28:28 + name_len]
        privilege = role & 0x0F
        if role & 0xE0 or not Privilege.CALLBACK <= privilege <= Privilege.OEM:
            return fail(ST_INVALID_ROLE)
        users = self.users
        if users is None:
            return fail(ST_UNAUTHORIZED_NAME)
        if not name and not self.config.allow_anonymous:
            return fail(ST_UNAUTHORIZED_NAME)
        uid = users.find_by_name(name)
        limit = self.ctx.session_privilege_limit(uid) if uid is not None else None
        if uid is None or limit is None:
            return fail(ST_UNAUTHORIZED_NAME)
        guard = getattr(self.ctx, "login_guard", None)
        if guard is not None and guard.blocked(peer, uid, now):
            # Wrong passwords lately: refused at once, without a password check.
            self._count("login_blocked")
            return fail(ST_UNAUTHORIZED_NAME)
        limit = min(limit, session.max_privilege)
        if privilege > limit:
            if not role & NAME_ONLY_LOOKUP:
                return fail(ST_UNAUTHORIZED_ROLE)  # no user with this name at this privilege
            privilege = limit  # name-only lookup: the user's limit caps the session
            if privilege > session.max_privilege:
                return fail(ST_UNAUTHORIZED_ROLE)
        session.base.user_id = uid
        session.user_name, session.role, session.rm = bytes(name), role, bytes(rm)
        session.rc = secrets.token_bytes(16)
        session.max_privilege = privilege
        session.state = RAKP2_SENT
        session.base.touch(now)
        kuid = users.password(uid)
        guid = self._guid()
        code = crypto.rakp2_auth_code(session.suite.auth, kuid, session.console_session_id, session.session_id,
                                      session.rm, session.rc, guid, role, name)
        body = bytes([tag, ST_OK, 0, 0]) + console + session.rc + guid + code
        out = self._setup_packet(PT_RAKP2, body)
        session.last_reply = (PT_RAKP2, p, out)
        self._count("rakp2_00")
        return [out]

    def _rakp3(self, p: bytes, peer: Any, now: float) -> list[bytes]:
        if len(p) < 8:
            return self._drop("short RAKP 3")
        tag, status = p[0], p[1]
        bmc_sid = struct.unpack_from("<I", p, 4)[0]
        session = self._get(bmc_sid)
        if session is None or session.peer != peer:
            return [self._setup_packet(PT_RAKP4, bytes([tag, ST_INVALID_SESSION_ID, 0, 0]) + bytes(4))]
        console = struct.pack("<I", session.console_session_id)
        if session.state == ACTIVE:
            if session.last_reply and session.last_reply[0] == PT_RAKP4 and session.last_reply[1] == p:
                return [session.last_reply[2]]  # a retransmitted RAKP 3
            return self._drop("RAKP 3 for an active session")
        if session.state != RAKP2_SENT:
            self._remove(session)
            return [self._setup_packet(PT_RAKP4, bytes([tag, ST_INACTIVE_SESSION, 0, 0]) + console)]
        if status != ST_OK:
            self._remove(session)  # the console gave up (13.22)
            return []
        users = self.users
        assert session.user_id is not None
        kuid = users.password(session.user_id)
        suite = session.suite
        expected = crypto.rakp3_auth_code(suite.auth, kuid, session.rc, session.console_session_id,
                                          session.role, session.user_name)
        import hmac as _hmac

        if not _hmac.compare_digest(expected, p[8:]):
            self._remove(session)
            guard = getattr(self.ctx, "login_guard", None)
            if guard is not None:
                guard.failed(peer, session.base.user_id, now)
            self.ctx.count("auth_failed")
            self._count("rakp4_0f")
            log.info("RMCP+ login of %r from %s refused: wrong password", session.user_name, _host(peer))
            return [self._setup_packet(PT_RAKP4, bytes([tag, ST_INVALID_ICV, 0, 0]) + console)]
        guard = getattr(self.ctx, "login_guard", None)
        if guard is not None:
            guard.succeeded(peer, session.base.user_id)
        kg = self.config.bmc_key
        session.keys = SessionKeys.derive(suite, kuid, kg, session.rm, session.rc, session.role, session.user_name)
        icv = crypto.rakp4_icv(suite.auth, session.keys.sik, session.rm, session.session_id, self._guid())
        session.state = ACTIVE
        session.privilege = min(Privilege.USER, session.max_privilege)
        session.base.touch(now)
        out = self._setup_packet(PT_RAKP4, bytes([tag, ST_OK, 0, 0]) + console + icv)
        session.last_reply = (PT_RAKP4, p, out)
        self._count("rakp4_00")
        log.info("RMCP+ session %08x for user %d from %s (%s)", session.session_id, session.user_id,
                 _host(peer), suite)
        return [out]

    # -- IPMI payloads -------------------------------------------------------------------------
    def _parse_ipmi(self, p: bytes) -> IpmbRequest | None:
        try:
            return IpmbRequest.parse(p, requests_only=False)
        except IpmbFrameError as e:
            log.debug("RMCP+ IPMI message dropped: %s", e)
            return None

    def _sessionless_ipmi(self, p: bytes, peer: Any, now: float) -> list[bytes]:
        req = self._parse_ipmi(p)
        if req is None:
            return self._drop("bad IPMI message")
        ctx = Context(channel=self.channel, privilege=Privilege.CALLBACK, interface="lanplus",
                      requester_address=req.rq_addr, requester_lun=req.rq_lun, peer=peer)
        rsp = self.bmc.handle(req.netfn, req.cmd, req.data, ctx, now)
        if rsp.refused == "session":
            return self._drop(f"NetFn {req.netfn:#x} cmd {req.cmd:#x} needs a session")
        self._count(f"sessionless_{req.cmd:02x}")
        return [self._setup_packet(PT_IPMI, req.response(rsp.cc, rsp.data))]

    def _session_ipmi(self, session: RmcpPlusSession, p: bytes, now: float) -> list[bytes]:
        req = self._parse_ipmi(p)
        if req is None:
            return self._drop("bad IPMI message")
        ctx = session.base.context(session.channel, req.rq_addr, req.rq_lun)
        rsp: Response = self.bmc.handle(req.netfn, req.cmd, req.data, ctx, now)
        out = encode_payload(session, PT_IPMI, req.response(rsp.cc, rsp.data))
        if session.closed or self.table.get(session.session_id) is not session.base:
            self._remove(session)  # closed by Close Session (commands/session.py)
        return [out]


def encode_payload(session: RmcpPlusSession, payload_type: int, data: bytes) -> bytes:
    """One outbound packet of ``session`` with the suite's confidentiality and integrity.

    Also the way SOL (payload type 1) sends to the console.  Uses the BMC's
    own outbound sequence number (13.32).
    """
    keys = session.keys
    suite = session.suite
    session.out_seq = (session.out_seq % 0xFFFFFFFF) + 1
    flags = payload_type & 0x3F
    body = bytes(data)
    if keys is not None and suite.confidentiality != crypto.CONF_NONE:
        body = keys.encrypt(body)
        flags |= 0x80
    if suite.integrity != crypto.INTEG_NONE:
        flags |= 0x40
    head = bytes([AUTH_TYPE_RMCPPLUS, flags]) + struct.pack("<IIH", session.console_session_id, session.out_seq,
                                                             len(body))
    pkt = head + body
    if suite.integrity != crypto.INTEG_NONE and keys is not None:
        pad = (-(len(pkt) + 2)) % 4
        pkt += b"\xff" * pad + bytes([pad, NEXT_HEADER])
        pkt += keys.auth_code(pkt)
    return RMCP_HEADER + pkt
