"""User commands (App NetFn 06h, IPMI 2.0 sections 22.26-22.30).

Decoding and encoding only; the table lives in the users part
(``bmc.parts["users"]``, vhw.ipmi.parts.users).  Requests are taken as raw bytes:
the layouts are short and the completion codes depend on exact lengths
(Set User Password's 16- and 20-byte forms).  Privileges are appendix G's:
the Get commands need Operator, the Set commands Administrator.

User access is kept for every channel of the channel table, the system
interface included: ``ipmitool user list`` in the guest asks about channel
0Eh (the present channel), which is 0Fh there.  On a session-less channel
the setting is stored and reported but has nothing to restrict.
"""

from __future__ import annotations

from ..core.bmc import CC, command, Bmc, Context, IpmiError, NetFn, Privilege
from ..parts.users import NAME_BYTES, NO_ACCESS, PASSWORD_16, PASSWORD_20, ChannelAccessSpec, UserError, Users

CMD_SET_USER_ACCESS = 0x43
CMD_GET_USER_ACCESS = 0x44
CMD_SET_USER_NAME = 0x45
CMD_GET_USER_NAME = 0x46
CMD_SET_USER_PASSWORD = 0x47

#: Set User Password operations (table 22-36, byte 2 [1:0]).
OP_DISABLE, OP_ENABLE, OP_SET, OP_TEST = 0, 1, 2, 3
#: Set User Password completion codes (section 22.30).
CC_PASSWORD_MISMATCH = 0x80
CC_PASSWORD_WRONG_SIZE = 0x81


def _users(bmc: Bmc) -> Users:
    return bmc.parts["users"]  # the row\'s ``requires`` checked it is there


def _uid(users: Users, byte: int) -> int:
    uid = byte & 0x3F
    if not 1 <= uid <= users.max_users:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"user ID {uid} is outside 1..{users.max_users}")
    return uid


def _channel(bmc: Bmc, ctx: Context, number: int) -> int:
    number &= 0x0F
    channels = bmc.parts.get("channels")
    channel = channels.resolve(number, ctx.channel) if channels is not None else None
    if channel is None:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"no channel {number}")
    return channel.number


def _length(data: bytes, *allowed: int) -> None:
    if len(data) not in allowed:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data)} data bytes, want {allowed}")


@command(NetFn.APP, CMD_SET_USER_ACCESS, privilege=Privilege.ADMINISTRATOR, name="Set User Access", requires=("users",))
def set_user_access(bmc: Bmc, ctx: Context, data: bytes) -> None:
    """Section 22.26, table 22-33: byte 1 bit 7 enables changing the callback,
    link-auth and IPMI-messaging bits; byte 3 is the privilege limit (0 is
    reserved: CCh); the optional byte 4 the session limit."""
    _length(data, 3, 4)
    users = _users(bmc)
    channel = _channel(bmc, ctx, data[0])
    uid = _uid(users, data[1])
    limit = data[2] & 0x0F
    if not (1 <= limit <= 5 or limit == NO_ACCESS):
        raise IpmiError(CC.INVALID_DATA_FIELD, f"privilege limit {limit:#x}")
    old = users.access(uid, channel)
    change_bits = bool(data[0] & 0x80)
    new = ChannelAccessSpec(
        privilege=limit,
        callback_only=bool(data[0] & 0x40) if change_bits else old.callback_only,
        link_auth=bool(data[0] & 0x20) if change_bits else old.link_auth,
        ipmi_messaging=bool(data[0] & 0x10) if change_bits else old.ipmi_messaging,
        session_limit=data[3] & 0x0F if len(data) == 4 else old.session_limit,
    )
    users.set_access(uid, channel, new)


@command(NetFn.APP, CMD_GET_USER_ACCESS, privilege=Privilege.OPERATOR, name="Get User Access", requires=("users",))
def get_user_access(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 22.27, table 22-34: maximum IDs, enable status and enabled
    count, fixed-name count, then the user's access on the channel."""
    _length(data, 2)
    users = _users(bmc)
    channel = _channel(bmc, ctx, data[0])
    uid = _uid(users, data[1])
    access = users.access(uid, channel)
    user = users.user(uid)
    return bytes([
        users.max_users & 0x3F,
        (user.enable_status << 6) | (users.enabled_count() & 0x3F),
        users.fixed_name_count() & 0x3F,
        (access.callback_only << 6) | (access.link_auth << 5) | (access.ipmi_messaging << 4) | access.privilege,
    ])


@command(NetFn.APP, CMD_SET_USER_NAME, privilege=Privilege.ADMINISTRATOR, name="Set User Name", requires=("users",))
def set_user_name(bmc: Bmc, ctx: Context, data: bytes) -> None:
    """Section 22.28: user ID, then 16 name bytes (NUL padded).  CCh for user
    1 (its null name is fixed), for a name that is not printable ASCII, and
    for a name another user already has: the LAN side finds users by name,
    so names are kept unique."""
    _length(data, 1 + NAME_BYTES)
    users = _users(bmc)
    uid = _uid(users, data[0])
    try:
        users.set_name(uid, data[1:])
    except UserError as e:
        raise IpmiError(CC.INVALID_DATA_FIELD, str(e)) from None


@command(NetFn.APP, CMD_GET_USER_NAME, privilege=Privilege.OPERATOR, name="Get User Name", requires=("users",))
def get_user_name(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 22.29: the 16-byte name, NUL padded (all NULs for user 1)."""
    _length(data, 1)
    users = _users(bmc)
    return users.user(_uid(users, data[0])).name.ljust(NAME_BYTES, b"\x00")


@command(NetFn.APP, CMD_SET_USER_PASSWORD, privilege=Privilege.ADMINISTRATOR, name="Set User Password", requires=("users",))
def set_user_password(bmc: Bmc, ctx: Context, data: bytes) -> None:
    """Section 22.30, table 22-36.  Byte 1 bit 7 selects the 20-byte form;
    byte 2 the operation: 00b disable user, 01b enable user, 10b set
    password, 11b test password.  Set and test carry exactly 16 or 20
    password bytes (else C7h); disable and enable need none (any are
    ignored).  Test answers 80h when the size matches and the data does not,
    81h when the password was stored in the other size."""
    if len(data) < 2:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, "Set User Password needs at least 2 bytes")
    users = _users(bmc)
    uid = _uid(users, data[0])
    size = PASSWORD_20 if data[0] & 0x80 else PASSWORD_16
    op = data[1] & 0x03
    if op == OP_DISABLE:
        users.set_enabled(uid, False)
        return None
    if op == OP_ENABLE:
        users.set_enabled(uid, True)
        return None
    _length(data, 2 + size)
    password = data[2:]
    if op == OP_SET:
        users.set_password(uid, password)
        return None
    verdict = users.test_password(uid, password)
    if verdict == "wrong size":
        raise IpmiError(CC_PASSWORD_WRONG_SIZE, f"user {uid}'s password is not stored as {size} bytes")
    if verdict == "mismatch":
        raise IpmiError(CC_PASSWORD_MISMATCH, f"user {uid}: password test failed")
    return None
