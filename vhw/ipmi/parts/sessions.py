"""The LAN session table and ``LanContext``: what IPMI 1.5 and RMCP+ share.

CONTRACT for the LAN transports (IPMI v1.5 in ``session15.py``, RMCP+ in
``rmcpplus.py``), stable from here on:

``LanContext`` -- one per Bmc, made by ``lan_context(bmc)`` (idempotent, kept
in ``bmc.parts["lan"]``); its attributes:

- ``bmc``       the one ``Bmc`` (the single truth; in-band and LAN share it):
                every request goes ``bmc.handle(netfn, cmd, data, ctx, now)``;
                the transport acts on the actions it queued once the answer
                is out (``BmcRunner.settle``)
- ``users``     ``bmc.parts["users"]`` (``find_by_name``, ``password(uid)``
                16/20 bytes NUL padded, ``privilege_limit(uid, channel)``,
                ``enabled(uid)``, ``access(uid, channel).ipmi_messaging``)
- ``channels``  ``bmc.parts["channels"]``; ``channel_access()`` is the
                volatile (active) access of the LAN channel
- ``channel``   the LAN channel number (1)
- ``sessions``  the ``SessionTable`` below, shared by v1.5 and v2.0 sessions
- ``auth_type_enables``  dict privilege (1..5) -> IPMI 1.5 auth type bit mask
                (bit 0 none, 1 MD2, 2 MD5, 4 straight password, 5 OEM); the
                LAN configuration parameter 2 (table 23-4) reads and writes it
- ``stats``     counters (``"rmcp_malformed"``, ``"auth_failed"``, ...);
                ``count(key)`` bumps one
- ``challenges`` pending Get Session Challenge answers (temporary session ID
                -> ``Challenge``), made by ``new_challenge(...)``, used up by
                Activate Session
- ``login_guard``  ``LoginGuard``: ``blocked(peer, user_id, now)`` and
                ``failed(...)``/``succeeded(...)`` -- the per (peer IP, user)
                exponential backoff for wrong passwords; RAKP uses it too.
- ``channel_open()`` False when the LAN channel's access mode is "disabled"
                (no sessions may be activated then)
- ``session_privilege_limit(user_id)`` min(user limit on the channel, channel
                privilege limit), or None when the user may not log in here.

``SessionTable(max_sessions=..., timeout=60)``:

- ``allocate(kind, user_id, privilege_max, peer, now=..., session_id=None) -> Session | None``
  (None when full: answer "out of sessions" -- Activate Session 81h, Open
  Session status 02h "insufficient resources to create a session")
- ``get(session_id) -> Session | None`` (does not touch ``last_activity``;
  call ``session.touch(now)`` after a packet authenticated)
- ``close(session_id) -> bool``; ``expire(now) -> list[Session]`` (idle
  longer than ``timeout`` seconds); ``count()``; ``by_handle(h)``;
  ``__iter__`` over active sessions, oldest first.
- ``on_close``: callables ``f(session)`` told of every session that goes
  away, closed or timed out (the LAN context uses it to end the session's
  SOL payload, IPMI 2.0 section 24.1: a payload lives in its session).

``Session`` (a plain mutable object): ``id`` (nonzero random 32-bit, the
BMC's session ID), ``handle`` (1..max, Get Session Info), ``kind`` ("v15" |
"v20"), ``user_id``, ``privilege`` (current; starts at USER or the max if
lower, section 22.17), ``privilege_max``, ``peer`` ((ip, port)),
``last_activity``, ``inbound`` (a ``SequenceWindow``: ``accept(seq) -> bool``),
``outbound_seq`` (the last sequence number the BMC sent; ``next_outbound_seq()``), ``auth_type`` (v1.5),
``attrs`` (a dict: the RMCP+ side keeps its keys/algorithms there, e.g.
``attrs["sik"]``, ``attrs["k1"]``, ``attrs["console_session_id"]``), and
``touch(now)``.  ``Context`` for a request inside a session is
``session.context(channel, rq_addr, rq_lun)``.

Nothing here has a clock: every operation that depends on time takes ``now``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator

from ..core.bmc import Context, Privilege
from .channels import AccessMode

log = logging.getLogger(__name__)

#: IPMI 1.5 authentication types (section 13.6, table 13-17 "Authentication Type").
AUTH_NONE = 0
AUTH_MD2 = 1
AUTH_MD5 = 2
AUTH_PASSWORD = 4
AUTH_OEM = 5
AUTH_RMCPP = 6  # "format = RMCP+ (IPMI v2.0 only)"

#: The 1.5 auth types this BMC can compute (MD2 comes from pycryptodome:
#: OpenSSL 3, behind hashlib, dropped it).
SUPPORTED_AUTH_TYPES = frozenset({AUTH_NONE, AUTH_MD2, AUTH_MD5, AUTH_PASSWORD})

#: Default auth type enables: MD2, MD5 and straight password at every
#: privilege, "none" only when the configuration asks for it.
DEFAULT_AUTH_MASK = (1 << AUTH_MD2) | (1 << AUTH_MD5) | (1 << AUTH_PASSWORD)

DEFAULT_MAX_SESSIONS = 16
DEFAULT_TIMEOUT = 60.0
#: Window of accepted inbound sequence numbers (section 6.12.13: 8 for v1.5;
#: RMCP+ uses 16 per section 6.12.13/13.28.x -- pass ``size=16``).
WINDOW = 8

LAN_CHANNEL = 1
#: How many Get Session Challenge answers may wait for their Activate Session,
#: and for how long (seconds).
MAX_CHALLENGES = 64
CHALLENGE_LIFETIME = 30.0


class SequenceWindow:
    """Inbound session sequence numbers: accept new ones, refuse replays.

    A number up to ``size`` above the highest seen moves the window; one up to
    ``size`` below it is accepted once (out-of-order delivery); duplicates and
    older ones are refused (IPMI 2.0 section 6.12.13).  Arithmetic is modulo
    2**32; 0 is never a valid in-session number.
    """

    def __init__(self, initial: int, size: int = WINDOW):
        #: The highest accepted number; starts one below the first expected.
        self.last = (initial - 1) & 0xFFFFFFFF
        self.size = size
        self.seen = 0  # bit i: last - i was received

    def accept(self, seq: int) -> bool:
        seq &= 0xFFFFFFFF
        if seq == 0:
            return False
        ahead = (seq - self.last) & 0xFFFFFFFF
        if 0 < ahead <= self.size:
            self.seen = ((self.seen << ahead) | 1) & ((1 << (self.size + 1)) - 1)
            self.last = seq
            return True
        behind = (self.last - seq) & 0xFFFFFFFF
        if behind <= self.size:
            bit = 1 << behind
            if self.seen & bit:
                return False
            self.seen |= bit
            return True
        return False


@dataclass(eq=False)
class Session:
    id: int
    handle: int
    kind: str
    user_id: int
    privilege_max: int
    peer: Any
    last_activity: float
    privilege: int = Privilege.USER
    inbound: SequenceWindow = field(default_factory=lambda: SequenceWindow(1))
    outbound_seq: int = 0
    auth_type: int = AUTH_NONE
    attrs: dict = field(default_factory=dict)
    #: The last Context made (its key, the Context): a session's requests mostly share one.
    _context: tuple | None = field(default=None, repr=False)

    def touch(self, now: float) -> None:
        self.last_activity = max(self.last_activity, now)

    def next_outbound_seq(self) -> int:
        """The sequence number of the next packet the BMC sends: one more than the last.

        ``outbound_seq`` is the last number used; for a v1.5 session it starts
        at the console's "initial outbound sequence number" (section 22.17),
        and the first in-session packet carries that plus one (the console
        counts the initial number as already received).  0 is skipped.
        """
        nxt = (self.outbound_seq + 1) & 0xFFFFFFFF
        self.outbound_seq = nxt or 1
        return self.outbound_seq

    def context(self, channel: int = LAN_CHANNEL, rq_addr: int = 0x81, rq_lun: int = 0) -> Context:
        """The dispatcher's Context for a request inside this session.

        Made again whenever anything it holds changed (the privilege after Set
        Session Privilege Level, say); a Context is frozen, so sharing it is safe.
        """
        key = (channel, self.privilege, self.kind, self.id, self.user_id, rq_addr, rq_lun, self.peer)
        cached = self._context
        if cached is not None and cached[0] == key:
            return cached[1]
        ctx = Context(channel=channel, privilege=Privilege(self.privilege),
                      interface="lanplus" if self.kind == "v20" else "lan",
                      session_id=self.id, user_id=self.user_id,
                      requester_address=rq_addr, requester_lun=rq_lun, peer=self.peer)
        self._context = (key, ctx)
        return ctx


@dataclass
class Challenge:
    """A Get Session Challenge answer waiting for its Activate Session (section 22.16)."""

    temp_id: int
    user_id: int
    auth_type: int
    challenge: bytes
    peer: Any
    created: float


class SessionTable:
    """Active LAN sessions, bounded; v1.5 and RMCP+ sessions share the slots."""

    def __init__(self, max_sessions: int = DEFAULT_MAX_SESSIONS, timeout: float = DEFAULT_TIMEOUT):
        self.max_sessions = max(1, min(0x3F, int(max_sessions)))
        self.timeout = float(timeout)
        self._sessions: dict[int, Session] = {}
        #: Told of each session that goes away (``close`` or ``expire``).
        self.on_close: list = []

    def _gone(self, session: Session) -> None:
        for listener in list(self.on_close):
            try:
                listener(session)
            except Exception:  # a listener's bug must not keep a session slot
                log.exception("session-close listener failed for 0x%08X", session.id)

    def allocate(self, kind: str, user_id: int, privilege_max: int, peer: Any, now: float = 0.0,
                 session_id: int | None = None) -> Session | None:
        """A new session, or None when every slot is taken (or ``session_id`` is in use)."""
        if len(self._sessions) >= self.max_sessions:
            return None
        used = {s.handle for s in self._sessions.values()}
        handle = next(h for h in range(1, self.max_sessions + 1) if h not in used)
        if session_id is not None:
            sid = session_id & 0xFFFFFFFF
            if sid in (0, 0xFFFFFFFF) or sid in self._sessions:
                return None
        else:
            while True:
                sid = secrets.randbits(32)
                if sid not in (0, 0xFFFFFFFF) and sid not in self._sessions:
                    break
        initial = Privilege.USER if privilege_max >= Privilege.USER else int(privilege_max)
        s = Session(id=sid, handle=handle, kind=kind, user_id=user_id, privilege_max=int(privilege_max),
                    peer=peer, last_activity=now, privilege=initial)
        self._sessions[sid] = s
        return s

    def get(self, session_id: int) -> Session | None:
        return self._sessions.get(session_id)

    def by_handle(self, handle: int) -> Session | None:
        return next((s for s in self._sessions.values() if s.handle == handle), None)

    def close(self, session_id: int) -> bool:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        self._gone(session)
        return True

    def expire(self, now: float) -> list[Session]:
        gone = [s for s in self._sessions.values() if now - s.last_activity > self.timeout]
        for s in gone:
            del self._sessions[s.id]
            log.info("LAN session 0x%08X (user %d, %s) timed out", s.id, s.user_id, s.kind)
        for s in gone:
            self._gone(s)
        return gone

    def count(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)


class LoginGuard:
    """Wrong-password backoff per (peer IP, user): 2**(n-3) s after n >= 3 failures, capped.

    While blocked, a login attempt is answered with an error at once (never
    silence: a client must not hang), without checking the password.
    """

    def __init__(self, free_failures: int = 3, cap: float = 30.0, max_entries: int = 1024):
        self.free_failures = free_failures
        self.cap = cap
        self.max_entries = max_entries
        self._entries: dict[tuple, tuple[int, float]] = {}

    @staticmethod
    def _key(peer: Any, user_id: int | None) -> tuple:
        host = peer[0] if isinstance(peer, tuple) and peer else peer
        return (host, user_id)

    def blocked(self, peer: Any, user_id: int | None, now: float) -> bool:
        entry = self._entries.get(self._key(peer, user_id))
        return entry is not None and now < entry[1]

    def failed(self, peer: Any, user_id: int | None, now: float) -> None:
        key = self._key(peer, user_id)
        n = self._entries.get(key, (0, 0.0))[0] + 1
        delay = 0.0 if n < self.free_failures else min(self.cap, 2.0 ** (n - self.free_failures))
        if len(self._entries) >= self.max_entries and key not in self._entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (n, now + delay)

    def succeeded(self, peer: Any, user_id: int | None) -> None:
        self._entries.pop(self._key(peer, user_id), None)


class LanContext:
    """The BMC-side objects the LAN transports need (see the module docstring)."""

    def __init__(self, bmc, *, channel: int = LAN_CHANNEL, max_sessions: int = DEFAULT_MAX_SESSIONS,
                 timeout: float = DEFAULT_TIMEOUT, auth_none: bool = False):
        self.bmc = bmc
        self.channel = channel
        self.sessions = SessionTable(max_sessions=max_sessions, timeout=timeout)
        mask = DEFAULT_AUTH_MASK | ((1 << AUTH_NONE) if auth_none else 0)
        self.auth_type_enables: dict[int, int] = {int(p): mask for p in Privilege}
        self.stats: dict[str, int] = {}
        self.login_guard = LoginGuard()
        #: Pending Get Session Challenge answers (temporary session ID -> Challenge).
        self.challenges: dict[int, Challenge] = {}
        #: When the RMCP+ layer next looks for half-open and idle sessions
        #: (at most once a second, not on every packet).
        self.next_expiry = 0.0
        if self.channels is not None:
            self.channels.active_sessions = self.active_sessions
        #: Inbound SOL payloads (type 1) of RMCP+ sessions go here (rmcpplus);
        #: the SOL part's handler when the BMC has one.
        sol = bmc.parts.get("sol")
        self.sol_handler = sol.sol_handler if sol is not None else None
        self.sessions.on_close.append(self._session_closed)

    def _session_closed(self, session: Session) -> None:
        """A session went away: so does its SOL payload (section 24.1)."""
        sol = self.bmc.parts.get("sol")
        if sol is not None:
            sol.session_closed(session.id)

    def rmcpplus_session(self, session_id: int) -> Any:
        """The RMCP+ side (``rmcpplus.RmcpPlusSession``) of an active session, or None."""
        base = self.sessions.get(session_id)
        return base.attrs.get("rmcpplus") if base is not None and base.kind == "v20" else None

    @property
    def users(self) -> Any:
        return self.bmc.parts.get("users")

    @property
    def channels(self) -> Any:
        return self.bmc.parts.get("channels")

    def new_challenge(self, user_id: int, auth_type: int, peer: Any, now: float) -> Challenge:
        """Remember a Get Session Challenge answer; bounded, oldest dropped first."""
        pending = self.challenges
        for tid in [t for t, c in pending.items() if now - c.created > CHALLENGE_LIFETIME]:
            del pending[tid]
        while len(pending) >= MAX_CHALLENGES:
            pending.pop(next(iter(pending)))
        while True:
            tid = secrets.randbits(32)
            if tid not in (0, 0xFFFFFFFF) and tid not in pending and self.sessions.get(tid) is None:
                break
        c = Challenge(tid, user_id, auth_type, secrets.token_bytes(16), peer, now)
        pending[tid] = c
        return c

    def count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def active_sessions(self, channel: int) -> int:
        return self.sessions.count() if channel == self.channel else 0

    def channel_access(self):
        chans = self.channels
        ch = chans.resolve(self.channel, self.channel) if chans is not None else None
        if ch is None or ch.sessionless:
            return None
        return chans.access(ch, volatile=True)

    def channel_open(self) -> bool:
        return self.channel_limits()[0]

    def channel_limits(self) -> tuple[bool, int]:
        """(open, privilege limit) of the channel's volatile access, read once (every packet asks)."""
        access = self.channel_access()
        if access is None:
            return False, 0
        return access.access_mode != AccessMode.DISABLED, int(access.privilege_limit)

    def session_privilege_limit(self, user_id: int) -> int | None:
        users, access = self.users, self.channel_access()
        if users is None or access is None:
            return None
        try:
            if not users.enabled(user_id):
                return None
            ua = users.access(user_id, self.channel)
        except ValueError:
            return None
        if ua.privilege == 0x0F or not ua.ipmi_messaging or ua.privilege < 1:
            return None
        return min(ua.privilege, access.privilege_limit)


def lan_context(bmc, **kwargs) -> LanContext:
    """The Bmc's one LanContext, made on first use (kept in ``bmc.parts["lan"]``)."""
    ctx = bmc.parts.get("lan")
    if ctx is None:
        ctx = LanContext(bmc, **kwargs)
        bmc.parts["lan"] = ctx
        attach = getattr(bmc.parts.get("lanconfig"), "attach_lan", None)
        if attach is not None:  # stored LAN parameters (auth type enables) apply
            attach(ctx)
    return ctx
