"""SOL configuration parameters (Transport NetFn 0Ch, 21h/22h; IPMI 2.0
section 26.2-26.3) and the payload commands (App NetFn 06h, 48h-4Dh;
chapter 24).  The state lives in the SOL part (vhw.ipmi.parts.sol.Sol).

SOL is payload type 1, instance 1, one activation at a time (Activate
Payload answers 80h while it is active).  Payloads ride RMCP+ sessions, so
Activate/Deactivate Payload need a session (in-band they answer C1h, as a
command not available on that channel).
"""

from __future__ import annotations

import struct

from ..core.bmc import CC, command, Bmc, Context, IpmiError, NetFn, Privilege
from ..parts.sol import PARAMETER_REVISION, Sol, SolError
from ..wire.sol_payload import INSTANCE, MAX_PAYLOAD, PAYLOAD_SOL

CMD_SET_SOL_CONFIG = 0x21
CMD_GET_SOL_CONFIG = 0x22
CMD_ACTIVATE_PAYLOAD = 0x48
CMD_DEACTIVATE_PAYLOAD = 0x49
CMD_GET_PAYLOAD_ACTIVATION_STATUS = 0x4A
CMD_GET_PAYLOAD_INSTANCE_INFO = 0x4B
CMD_SET_USER_PAYLOAD_ACCESS = 0x4C
CMD_GET_USER_PAYLOAD_ACCESS = 0x4D

# Activate Payload completion codes (section 24.1).
CC_ALREADY_ACTIVE = 0x80
CC_PAYLOAD_DISABLED = 0x81
CC_LIMIT_REACHED = 0x82
CC_NO_ENCRYPTION = 0x83
CC_NEED_ENCRYPTION = 0x84
# Deactivate Payload (section 24.2).
CC_ALREADY_DEACTIVATED = 0x80

NO_VLAN = 0xFFFF


def _sol(bmc: Bmc) -> Sol:
    return bmc.parts["sol"]  # the row\'s ``requires`` checked it is there


def _channel(bmc: Bmc, ctx: Context, byte: int, sol: Sol) -> int:
    number = byte & 0x0F
    channels = bmc.parts.get("channels")
    channel = channels.resolve(number, ctx.channel) if channels is not None else None
    resolved = channel.number if channel is not None else number
    if resolved != sol.channel:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"channel {number} carries no SOL")
    return resolved


def _length(data: bytes, *allowed: int) -> None:
    if len(data) not in allowed:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data)} data bytes, want {allowed}")


def _sol_payload(data: bytes) -> None:
    if data[0] & 0x3F != PAYLOAD_SOL:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"payload type {data[0] & 0x3F:#x} is not supported")


# -- SOL configuration parameters -----------------------------------------------------------


@command(NetFn.TRANSPORT, CMD_SET_SOL_CONFIG, privilege=Privilege.ADMINISTRATOR,
         name="Set SOL Configuration Parameters", requires=("sol",))
def set_sol_config(bmc: Bmc, ctx: Context, data: bytes) -> None:
    """Section 26.2: byte 1 [3:0] channel, byte 2 parameter, then its data.
    80h unsupported, 81h set in progress claimed, 82h read only."""
    if len(data) < 2:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, "channel and parameter needed")
    sol = _sol(bmc)
    _channel(bmc, ctx, data[0], sol)
    try:
        sol.set(data[1], bytes(data[2:]))
    except SolError as e:
        raise IpmiError(e.cc, e.why) from None


@command(NetFn.TRANSPORT, CMD_GET_SOL_CONFIG, privilege=Privilege.USER,
         name="Get SOL Configuration Parameters", requires=("sol",))
def get_sol_config(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 26.3: byte 1 [7] revision only, [3:0] channel; byte 2
    parameter; bytes 3-4 set and block selectors.  Revision 11h first."""
    _length(data, 4)
    sol = _sol(bmc)
    _channel(bmc, ctx, data[0], sol)
    if data[0] & 0x80:
        return bytes([PARAMETER_REVISION])
    try:
        return bytes([PARAMETER_REVISION]) + sol.get(data[1])
    except SolError as e:
        raise IpmiError(e.cc, e.why) from None


# -- payload activation (chapter 24) --------------------------------------------------------


@command(NetFn.APP, CMD_ACTIVATE_PAYLOAD, privilege=Privilege.USER, channels=("session",),
         name="Activate Payload", requires=("sol",))
def activate_payload(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 24.1, SOL's auxiliary data (table 24-2): byte 3 [7]
    encryption, [6] authentication.  Response: 4 auxiliary bytes, inbound and
    outbound payload size, the payload's UDP port, VLAN (FFFFh: none)."""
    _length(data, 6)
    _sol_payload(data)
    sol = _sol(bmc)
    if data[1] & 0x0F != INSTANCE:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"SOL instance {data[1] & 0x0F}: only instance 1")
    if sol.active is not None:
        raise IpmiError(CC_ALREADY_ACTIVE, "SOL is already active")
    if not sol.enabled:
        raise IpmiError(CC_PAYLOAD_DISABLED, "SOL is disabled (SOL parameter 1)")
    if ctx.user_id is not None and not sol.payload_access(sol.channel, ctx.user_id)[0] & 0x02:
        raise IpmiError(CC_PAYLOAD_DISABLED, f"user {ctx.user_id} has no SOL payload access")
    force_enc, force_auth, min_priv = sol.auth()
    if ctx.privilege < min_priv:
        raise IpmiError(CC.INSUFFICIENT_PRIVILEGE, f"SOL needs privilege {min_priv}")
    encrypted = bool(data[2] & 0x80)
    authenticated = bool(data[2] & 0x40)
    if force_enc and not encrypted:
        raise IpmiError(CC_NEED_ENCRYPTION, "SOL parameter 2 forces encryption")
    sol.activate(ctx.session_id or 0, ctx.user_id, encrypted=encrypted or force_enc,
                 authenticated=authenticated or force_auth)
    return bytes(4) + struct.pack("<HHHH", MAX_PAYLOAD, MAX_PAYLOAD, sol.payload_port(), NO_VLAN)


@command(NetFn.APP, CMD_DEACTIVATE_PAYLOAD, privilege=Privilege.USER, channels=("session",),
         name="Deactivate Payload", requires=("sol",))
def deactivate_payload(bmc: Bmc, ctx: Context, data: bytes) -> None:
    """Section 24.2: payload type, instance, 4 auxiliary bytes.  80h when the
    instance is not active.  Any session of sufficient privilege may end it."""
    _length(data, 6)
    _sol_payload(data)
    sol = _sol(bmc)
    if data[1] & 0x0F != INSTANCE or sol.active is None:
        raise IpmiError(CC_ALREADY_DEACTIVATED, "SOL is not active")
    sol.deactivate()


@command(NetFn.APP, CMD_GET_PAYLOAD_ACTIVATION_STATUS, privilege=Privilege.USER,
         name="Get Payload Activation Status", requires=("sol",))
def get_payload_activation_status(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 24.4: instance capacity (1), then the 16-bit activation bitmap."""
    _length(data, 1)
    _sol_payload(data)
    sol = _sol(bmc)
    return bytes([1, 0x01 if sol.active is not None else 0x00, 0x00])


@command(NetFn.APP, CMD_GET_PAYLOAD_INSTANCE_INFO, privilege=Privilege.USER,
         name="Get Payload Instance Info", requires=("sol",))
def get_payload_instance_info(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 24.5: session ID that activated the instance (0: inactive),
    then 12 payload-specific bytes (SOL: byte 1 the port number, 1)."""
    _length(data, 2)
    _sol_payload(data)
    sol = _sol(bmc)
    if data[1] & 0x0F != INSTANCE:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"SOL instance {data[1] & 0x0F}")
    a = sol.active
    if a is None:
        return bytes(4) + bytes(12)
    return struct.pack("<I", a.session_id) + bytes([1]) + bytes(11)


def _user(bmc: Bmc, byte: int) -> int:
    uid = byte & 0x3F
    users = bmc.parts.get("users")
    top = users.max_users if users is not None else 15
    if not 1 <= uid <= top:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"user ID {uid} outside 1..{top}")
    return uid


@command(NetFn.APP, CMD_SET_USER_PAYLOAD_ACCESS, privilege=Privilege.ADMINISTRATOR,
         name="Set User Payload Access", requires=("sol",))
def set_user_payload_access(bmc: Bmc, ctx: Context, data: bytes) -> None:
    """Section 24.6: channel, user ID with [7:6] operation (00b enable, 01b
    disable the payloads whose bits are set), standard payloads 1..7 bitmap
    (bit 0 reserved), 3 more bytes (reserved / OEM payloads)."""
    _length(data, 6)
    sol = _sol(bmc)
    channel = _channel(bmc, ctx, data[0], sol)
    uid = _user(bmc, data[1])
    op = data[1] >> 6
    if op > 1:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"operation {op}")
    bits = bytes([data[2] & 0xFE, data[3], data[4], data[5]])
    old = sol.payload_access(channel, uid)
    new = bytes((o | b) if op == 0 else (o & ~b & 0xFF) for o, b in zip(old, bits, strict=False))
    sol.set_payload_access(channel, uid, new)


@command(NetFn.APP, CMD_GET_USER_PAYLOAD_ACCESS, privilege=Privilege.OPERATOR,
         name="Get User Payload Access", requires=("sol",))
def get_user_payload_access(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 24.7: the four payload-enable bytes of a user on a channel."""
    _length(data, 2)
    sol = _sol(bmc)
    channel = _channel(bmc, ctx, data[0], sol)
    return sol.payload_access(channel, _user(bmc, data[1]))
