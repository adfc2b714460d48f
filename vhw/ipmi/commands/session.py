"""Session commands: App NetFn 38h-3Dh (IPMI 2.0 sections 22.13-22.20).

Get Channel Authentication Capabilities (38h), Get Session Challenge (39h),
Activate Session (3Ah), Set Session Privilege Level (3Bh), Close Session
(3Ch), Get Session Info (3Dh).  They go through the one dispatcher like every
command; the LAN session state they read and change is the Bmc's
``LanContext`` (``bmc.parts["lan"]``, made on first use).  What they need of
the packet (the peer's address, the session ID it carried) is in the
``Context``; the session layers read the outcome back from the session table.
"""

from __future__ import annotations

import ipaddress
import secrets
import struct

from ..core.bmc import CC, command, Bmc, Context, IpmiError, NetFn, Privilege
from ..parts.sessions import SUPPORTED_AUTH_TYPES, LanContext, SequenceWindow, lan_context

APP = NetFn.APP

#: Completion codes of Get Session Challenge (table 22-15).
CC_INVALID_USER_NAME = 0x81
CC_NULL_USER_DISABLED = 0x82
#: Activate Session (table 22-17).
CC_NO_SESSION_SLOT = 0x81
CC_NO_SLOT_FOR_USER = 0x82
CC_INVALID_SESSION_ID = 0x85
CC_PRIVILEGE_EXCEEDS_LIMIT = 0x86
#: Set Session Privilege Level (table 22-18).
CC_LEVEL_NOT_AVAILABLE = 0x80
CC_LEVEL_EXCEEDS_LIMIT = 0x81
#: Close Session (table 22-19).
CC_CLOSE_INVALID_ID = 0x87
CC_CLOSE_INVALID_HANDLE = 0x88


def _lan(bmc: Bmc) -> LanContext:
    return lan_context(bmc)


def _lan_channel_of(bmc: Bmc, ctx: Context, number: int):
    chans = bmc.parts.get("channels")
    ch = chans.resolve(number, ctx.channel) if chans is not None else None
    if ch is None or ch.sessionless:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"channel {number} has no sessions")
    return ch


def _login_status(lan: LanContext) -> int:
    """Get Channel Authentication Capabilities byte 3 [2:0] (table 22-15)."""
    users = lan.users
    if users is None:
        return 0
    status = 0
    if lan.session_privilege_limit(1) is not None:
        status |= 0x01 if not any(users.password(1)) else 0x02
    for uid in range(2, users.max_users + 1):
        if users.user(uid).name and lan.session_privilege_limit(uid) is not None:
            status |= 0x04
            break
    return status


@command(APP, 0x38, privilege=Privilege.CALLBACK, sessionless=True, name="Get Channel Authentication Capabilities")
def get_channel_auth_capabilities(bmc: Bmc, ctx: Context, req: bytes):
    """Section 22.13, table 22-15.  Byte 1 bit 7 asks for the IPMI v2.0 extended data."""
    if len(req) != 2:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID if len(req) < 2 else CC.REQUEST_FIELD_LENGTH_EXCEEDED)
    extended = bool(req[0] & 0x80)
    if req[0] & 0x70 or req[1] & 0xF0:
        raise IpmiError(CC.INVALID_DATA_FIELD, "reserved bits set")
    priv = req[1] & 0x0F
    if not Privilege.CALLBACK <= priv <= Privilege.OEM:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"privilege level {priv}")
    channel = _lan_channel_of(bmc, ctx, req[0] & 0x0F)
    lan = _lan(bmc)
    supported = sum(1 << t for t in SUPPORTED_AUTH_TYPES)
    types = lan.auth_type_enables.get(priv, 0) & supported & 0x3F
    access = bmc.parts["channels"].access(channel, volatile=True)
    flags = _login_status(lan)
    if access.per_message_auth_disabled:
        flags |= 0x10
    if access.user_level_auth_disabled:
        flags |= 0x08
    byte2 = types | (0x80 if extended else 0)
    byte4 = 0x03 if extended else 0  # IPMI 1.5 and 2.0 (RMCP+) sessions
    return bytes([channel.number, byte2, flags, byte4, 0, 0, 0, 0])


@command(APP, 0x39, privilege=Privilege.CALLBACK, sessionless=True, interfaces=("lan",), name="Get Session Challenge")
def get_session_challenge(bmc: Bmc, ctx: Context, req: bytes):
    """Section 22.16, table 22-15: a temporary session ID and a 16-byte challenge (IPMI v1.5 LAN only)."""
    lan = _lan(bmc)
    if len(req) != 17:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID if len(req) < 17 else CC.REQUEST_FIELD_LENGTH_EXCEEDED)
    auth_type = req[0] & 0x0F
    enabled_any = 0
    for mask in lan.auth_type_enables.values():
        enabled_any |= mask
    if auth_type not in SUPPORTED_AUTH_TYPES or not enabled_any >> auth_type & 1:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"auth type {auth_type} not enabled")
    name = bytes(req[1:17]).split(b"\x00", 1)[0]
    users = lan.users
    if users is None:
        raise IpmiError(CC_INVALID_USER_NAME, "no user table")
    if not name:
        uid = 1
        if lan.session_privilege_limit(uid) is None:
            raise IpmiError(CC_NULL_USER_DISABLED, "the null user is disabled")
    else:
        uid = users.find_by_name(name)
        if uid is None or lan.session_privilege_limit(uid) is None:
            raise IpmiError(CC_INVALID_USER_NAME, f"user {name!r} unknown or without LAN access")
    c = lan.new_challenge(uid, auth_type, ctx.peer, bmc.now)
    return struct.pack("<I", c.temp_id) + c.challenge


@command(APP, 0x3A, privilege=Privilege.CALLBACK, interfaces=("lan",), name="Activate Session")
def activate_session(bmc: Bmc, ctx: Context, req: bytes):
    """Section 22.17, table 22-16.

    The packet carries the temporary session ID of a Get Session Challenge
    answer, and the v1.5 layer checked its authentication code with the
    challenge's user's password; the challenge is used up here.  The new
    session has the temporary ID as its ID.
    """
    lan = _lan(bmc)
    sid = ctx.session_id
    challenge = lan.challenges.pop(sid, None) if sid is not None and lan.sessions.get(sid) is None else None
    if challenge is None:
        raise IpmiError(CC_INVALID_SESSION_ID, "no pending challenge for this session ID")
    if len(req) != 22:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID if len(req) < 22 else CC.REQUEST_FIELD_LENGTH_EXCEEDED)
    auth_type, max_priv = req[0] & 0x0F, req[1] & 0x0F
    if bytes(req[2:18]) != challenge.challenge:
        raise IpmiError(CC_INVALID_SESSION_ID, "challenge string does not match")
    if auth_type != challenge.auth_type:
        raise IpmiError(CC.INVALID_DATA_FIELD, "auth type differs from the challenge's")
    if not Privilege.CALLBACK <= max_priv <= Privilege.OEM:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"privilege level {max_priv}")
    if not lan.auth_type_enables.get(max_priv, 0) >> auth_type & 1:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"auth type {auth_type} not enabled at privilege {max_priv}")
    if not lan.channel_open():
        raise IpmiError(CC_NO_SESSION_SLOT, "LAN channel access mode is disabled")
    limit = lan.session_privilege_limit(challenge.user_id)
    if limit is None or max_priv > limit:
        raise IpmiError(CC_PRIVILEGE_EXCEEDS_LIMIT, f"privilege {max_priv} above the limit {limit}")
    user_limit = lan.users.access(challenge.user_id, lan.channel).session_limit
    if user_limit and sum(1 for s in lan.sessions if s.user_id == challenge.user_id) >= user_limit:
        raise IpmiError(CC_NO_SLOT_FOR_USER, f"user {challenge.user_id} has {user_limit} sessions already")
    (initial_outbound,) = struct.unpack_from("<I", req, 18)
    lan.sessions.expire(bmc.now)
    session = lan.sessions.allocate("v15", challenge.user_id, max_priv, ctx.peer, now=bmc.now,
                                    session_id=challenge.temp_id)
    if session is None:
        raise IpmiError(CC_NO_SESSION_SLOT, "session table full")
    initial_inbound = secrets.randbits(31) + 1
    session.auth_type = auth_type
    session.outbound_seq = initial_outbound
    session.inbound = SequenceWindow(initial_inbound)
    return bytes([auth_type]) + struct.pack("<II", session.id, initial_inbound) + bytes([max_priv])


@command(APP, 0x3B, privilege=Privilege.CALLBACK, channels=("session",),
         name="Set Session Privilege Level")
def set_session_privilege(bmc: Bmc, ctx: Context, req: bytes):
    """Section 22.18, table 22-18: 0 answers the present level; above the limits: 80h/81h."""
    if len(req) != 1:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID if not req else CC.REQUEST_FIELD_LENGTH_EXCEEDED)
    lan = _lan(bmc)
    session = lan.sessions.get(ctx.session_id) if ctx.session_id is not None else None
    if session is None:
        raise IpmiError(CC.INVALID_COMMAND, "no such session")
    level = req[0] & 0x0F
    if req[0] & 0xF0 or level > Privilege.OEM:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"privilege level {req[0]:#x}")
    if level == 0:
        return bytes([session.privilege])
    limit = lan.session_privilege_limit(session.user_id)
    if limit is None or level > limit:
        raise IpmiError(CC_LEVEL_EXCEEDS_LIMIT, f"level {level} above the user/channel limit {limit}")
    if level > session.privilege_max:
        raise IpmiError(CC_LEVEL_NOT_AVAILABLE, f"level {level} above the session's maximum")
    session.privilege = level
    return bytes([level])


@command(APP, 0x3C, privilege=Privilege.CALLBACK, name="Close Session")
def close_session(bmc: Bmc, ctx: Context, req: bytes):
    """Section 22.19: a session closes itself; closing another one needs ADMINISTRATOR."""
    if len(req) not in (4, 5):
        raise IpmiError(CC.REQUEST_LENGTH_INVALID if len(req) < 4 else CC.REQUEST_FIELD_LENGTH_EXCEEDED)
    lan = _lan(bmc)
    (sid,) = struct.unpack_from("<I", req)
    if sid == 0:
        if len(req) != 5:
            raise IpmiError(CC.REQUEST_LENGTH_INVALID, "session ID 0 needs a session handle")
        session = lan.sessions.by_handle(req[4])
        if session is None:
            raise IpmiError(CC_CLOSE_INVALID_HANDLE, f"no session handle {req[4]}")
    else:
        session = lan.sessions.get(sid)
        if session is None:
            raise IpmiError(CC_CLOSE_INVALID_ID, f"no session 0x{sid:08X}")
    if session.id != ctx.session_id and ctx.privilege < Privilege.ADMINISTRATOR:
        raise IpmiError(CC.INSUFFICIENT_PRIVILEGE, "closing another session needs ADMINISTRATOR")
    lan.sessions.close(session.id)
    return None


def _peer_bytes(peer) -> bytes:
    try:
        host, port = peer[0], int(peer[1])
        ip = ipaddress.ip_address(host)
        raw = ip.packed if ip.version == 4 else (ip.ipv4_mapped.packed if ip.ipv4_mapped else bytes(4))
        return raw + bytes(6) + struct.pack("<H", port)  # LS byte first (table 22-20)
    except (TypeError, ValueError, IndexError):
        return bytes(12)


@command(APP, 0x3D, privilege=Privilege.USER, name="Get Session Info")
def get_session_info(bmc: Bmc, ctx: Context, req: bytes):
    """Section 22.20, table 22-20: by index (0 = this session), handle (FEh) or ID (FFh)."""
    if not req:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID)
    lan = _lan(bmc)
    index = req[0]
    sessions = list(lan.sessions)
    if index == 0xFF:
        if len(req) != 5:
            raise IpmiError(CC.REQUEST_LENGTH_INVALID if len(req) < 5 else CC.REQUEST_FIELD_LENGTH_EXCEEDED)
        session = lan.sessions.get(struct.unpack_from("<I", req, 1)[0])
        if session is None:
            raise IpmiError(CC.INVALID_DATA_FIELD, "no such session ID")
    elif index == 0xFE:
        if len(req) != 2:
            raise IpmiError(CC.REQUEST_LENGTH_INVALID if len(req) < 2 else CC.REQUEST_FIELD_LENGTH_EXCEEDED)
        session = lan.sessions.by_handle(req[1])
        if session is None:
            raise IpmiError(CC.INVALID_DATA_FIELD, "no such session handle")
    else:
        if len(req) != 1:
            raise IpmiError(CC.REQUEST_FIELD_LENGTH_EXCEEDED)
        if index == 0:
            session = lan.sessions.get(ctx.session_id) if ctx.session_id else None
        elif index <= lan.sessions.max_sessions:
            by_handle = sorted(sessions, key=lambda s: s.handle)
            session = by_handle[index - 1] if index <= len(by_handle) else None
        else:
            raise IpmiError(CC.INVALID_DATA_FIELD, f"session index {index}")
    head = bytes([session.handle if session else 0, lan.sessions.max_sessions & 0x3F, len(sessions) & 0x3F])
    if session is None:
        return head
    aux = (1 if session.kind == "v20" else 0) << 4
    return head + bytes([session.user_id & 0x3F, session.privilege & 0x0F, aux | (lan.channel & 0x0F)]) \
        + _peer_bytes(session.peer)
