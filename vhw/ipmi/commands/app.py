"""App NetFn (06h): identity, message flags and queues, channels, system info.

Section and table numbers are IPMI 2.0 rev 1.1.  Privileges follow the
spec's command table (appendix G); "local only" commands are registered for
the system interface channel only.  The watchdog commands (22h/24h/25h),
ACPI power state (06h/07h), self test (04h) and cold/warm reset (02h/03h)
live in commands/watchdog.py and commands/chassis.py.
"""

from __future__ import annotations

from array import array
from typing import Any

from pyipmi.msgs import bmc as pm_bmc
from pyipmi.msgs import device_messaging as pm_dm

from ..wire import msgs
from ..core.bmc import CC, command, Bmc, Context, IpmiError, NetFn, Privilege
from ..parts.channels import AccessMode, ChannelAccess, Channels, Medium
from ..core.config import BMC_ADDRESS
from ..wire.ipmb import IpmbFrameError, IpmbRequest
from ..parts.satellite import Satellite
from ..parts.messaging import GLOBAL_ENABLES_RESERVED, Messaging
from ..parts.sysinfo import REVISION, SystemInfo

APP = NetFn.APP
LOCAL_ONLY = ("system",)

#: Command-specific completion codes.
CC_EMPTY = 0x80  # Get Message / Read Event Message Buffer: nothing there
CC_SEND_NAK_ON_WRITE = 0x83  # Send Message: no device ACKed the address
CC_SESSIONLESS_CHANNEL = 0x82  # Set/Get Channel Access on a session-less channel
CC_ACCESS_MODE_UNSUPPORTED = 0x83  # Set Channel Access

# Set/Get Channel Access "which setting" codes, byte 2/3 [7:6].
_DONT_SET, _NON_VOLATILE, _VOLATILE = 0, 1, 2


def _messaging(bmc: Bmc) -> Messaging:
    return bmc.parts["messaging"]


def _channels(bmc: Bmc) -> Channels:
    return bmc.parts["channels"]


# -- identity -------------------------------------------------------------------


@command(APP, 0x01, privilege=Privilege.USER, name="Get Device ID")
def get_device_id(bmc: Bmc, ctx: Context, req: bytes):
    """Section 20.1.  Trailing request bytes are ignored on purpose: Linux
    ipmi_ssif probes with a 65-byte Get Device ID and must get an answer
    (docs/ipmi-extern.md section 10)."""
    return _device_id_bytes(bmc.config.identity)


#: id(identity) -> (identity, its encoded answer); the identity is kept so its id stays its own.
_DEVICE_ID_CACHE: dict[int, tuple[Any, bytes]] = {}


def _device_id_bytes(identity) -> bytes:
    """Encoded once per identity: the guest's first and most frequent request.

    Looked up by identity, not by value: hashing the identity's fields on
    every request costs more than the lookup."""
    hit = _DEVICE_ID_CACHE.get(id(identity))
    if hit is not None and hit[0] is identity:
        return hit[1]
    if len(_DEVICE_ID_CACHE) >= 64:
        _DEVICE_ID_CACHE.clear()
    encoded = msgs.device_id_response(identity)._encode()[1:]
    _DEVICE_ID_CACHE[id(identity)] = (identity, encoded)
    return encoded


@command(APP, 0x08, privilege=Privilege.USER, request=pm_bmc.GetDeviceGuidReq,
         response=pm_bmc.GetDeviceGuidRsp, name="Get Device GUID")
def get_device_guid(bmc: Bmc, ctx: Context, req):
    """Section 20.8; SMBIOS byte order (uuid.bytes_le), as dmidecode shows it."""
    rsp = pm_bmc.GetDeviceGuidRsp()
    rsp.device_guid = array("B", bmc.config.device_guid.bytes_le)
    return rsp


@command(APP, 0x37, privilege=Privilege.CALLBACK, request=msgs.GetSystemGuidReq,
         response=msgs.GetSystemGuidRsp, name="Get System GUID")
def get_system_guid(bmc: Bmc, ctx: Context, req):
    """Section 22.14; the same byte order as Get Device GUID."""
    rsp = msgs.GetSystemGuidRsp()
    rsp.system_guid = array("B", bmc.config.system_guid.bytes_le)
    return rsp


# -- global enables and message flags ----------------------------------------------


@command(APP, 0x2E, privilege=Privilege.ADMINISTRATOR, request=pm_dm.SetBmcGlobalEnablesReq,
         channels=LOCAL_ONLY, name="Set BMC Global Enables")
def set_bmc_global_enables(bmc: Bmc, ctx: Context, req):
    """Section 22.1, table 22-2; bit 4 is reserved."""
    value = int(req.enables._value)
    if value & GLOBAL_ENABLES_RESERVED:
        raise IpmiError(CC.INVALID_DATA_FIELD, "reserved bit 4 set")
    _messaging(bmc).set_enables(value)


@command(APP, 0x2F, privilege=Privilege.USER, request=pm_dm.GetBmcGlobalEnablesReq,
         response=pm_dm.GetBmcGlobalEnablesRsp, name="Get BMC Global Enables")
def get_bmc_global_enables(bmc: Bmc, ctx: Context, req):
    """Section 22.2."""
    rsp = pm_dm.GetBmcGlobalEnablesRsp()
    rsp.enables._value = int(_messaging(bmc).enables)
    return rsp


@command(APP, 0x30, privilege=Privilege.ADMINISTRATOR, request=pm_dm.ClearMessageFlagsReq,
         channels=LOCAL_ONLY, name="Clear Message Flags")
def clear_message_flags(bmc: Bmc, ctx: Context, req):
    """Section 22.3: clearing a flag flushes the queue or buffer behind it."""
    _messaging(bmc).clear_flags(int(req.clear._value))


@command(APP, 0x31, privilege=Privilege.USER, request=pm_dm.GetMessageFlagsReq,
         response=pm_dm.GetMessageFlagsRsp, channels=LOCAL_ONLY, name="Get Message Flags")
def get_message_flags(bmc: Bmc, ctx: Context, req):
    """Section 22.4, table 22-5."""
    rsp = pm_dm.GetMessageFlagsRsp()
    rsp.flag._value = int(_messaging(bmc).flags())
    return rsp


@command(APP, 0x32, privilege=Privilege.ADMINISTRATOR, request=pm_dm.EnableMessageChannelReceiveReq,
         response=pm_dm.EnableMessageChannelReceiveRsp, channels=LOCAL_ONLY,
         name="Enable Message Channel Receive")
def enable_message_channel_receive(bmc: Bmc, ctx: Context, req):
    """Section 22.5: 00b disable, 01b enable, 10b query, 11b reserved."""
    channel = _channels(bmc).resolve(req.channel.number, ctx.channel)
    if channel is None:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"no channel {req.channel.number}")
    state = req.channel.state
    m = _messaging(bmc)
    if state == 3:
        raise IpmiError(CC.INVALID_DATA_FIELD, "channel state 11b is reserved")
    if state in (0, 1):
        m.set_channel_receive(channel.number, bool(state))
    rsp = pm_dm.EnableMessageChannelReceiveRsp()
    rsp.channel.number = channel.number
    rsp.channel.state = int(m.channel_receive_enabled(channel.number))
    return rsp


@command(APP, 0x33, privilege=Privilege.USER, request=pm_dm.GetMessageReq,
         response=pm_dm.GetMessageRsp, channels=LOCAL_ONLY, name="Get Message")
def get_message(bmc: Bmc, ctx: Context, req):
    """Section 22.6: byte 2 = privilege<<4 | channel, then the message; 80h if empty."""
    msg = _messaging(bmc).pop_message()
    if msg is None:
        raise IpmiError(CC_EMPTY)
    rsp = pm_dm.GetMessageRsp()
    rsp.channel.number = msg.channel
    rsp.channel.privilege_level = msg.privilege
    rsp.data = array("B", msg.data)
    return rsp


@command(APP, 0x35, privilege=Privilege.USER, request=pm_dm.ReadEventMessageBufferReq,
         response=pm_dm.ReadEventMessageBufferRsp, channels=LOCAL_ONLY,
         name="Read Event Message Buffer")
def read_event_message_buffer(bmc: Bmc, ctx: Context, req):
    """Section 22.8: the 16-byte event, 80h when the buffer is empty."""
    record = _messaging(bmc).read_event()
    if record is None:
        raise IpmiError(CC_EMPTY)
    rsp = pm_dm.ReadEventMessageBufferRsp()
    rsp.event_data = array("B", record)
    return rsp


# -- Send Message -------------------------------------------------------------------


@command(APP, 0x34, privilege=Privilege.USER, request=pm_dm.SendMessageReq,
         response=pm_dm.SendMessageRsp, name="Send Message")
def send_message(bmc: Bmc, ctx: Context, req):
    """Section 22.7, tables 22-10/22-11: bridge an IPMB request.

    The addressed controller answers at once; the IPMB response frame goes
    into the receive message queue (channel in byte 2 of Get Message, the
    frame minus its leading rqSA, as Linux' ipmi_msghandler reads it), or,
    for a LAN session asking for tracking (01b), to that session.  No
    controller at the address: 83h "NAK on write".
    """
    tracking = req.channel.tracking
    if tracking == 3:
        raise IpmiError(CC.INVALID_DATA_FIELD, "tracking 11b is reserved")
    channel = _channels(bmc).resolve(req.channel.number, ctx.channel)
    if channel is None:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"no channel {req.channel.number}")
    if channel.medium != Medium.IPMB:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"channel {channel.number} is not an IPMB channel")
    try:
        frame = IpmbRequest.parse(bytes(req.data))
    except IpmbFrameError as e:
        raise IpmiError(e.cc, str(e)) from None

    m = _messaging(bmc)
    to_session = ctx.session_id is not None and tracking == 1
    if not to_session and not m.queue_has_room():
        raise IpmiError(CC.NODE_BUSY, "receive message queue full")

    if frame.rs_addr == BMC_ADDRESS:
        inner = Context(channel=channel.number, privilege=ctx.privilege, interface=ctx.interface,
                        lun=frame.rs_lun, requester_address=frame.rq_addr, requester_lun=frame.rq_lun)
        answer = bmc.handle(frame.netfn, frame.cmd, frame.data, inner, bmc.now)
        cc, data = answer.cc, answer.data
    else:
        sat = bmc.config.satellite(channel.number, frame.rs_addr)
        if sat is None:
            raise IpmiError(CC_SEND_NAK_ON_WRITE, f"no controller at 0x{frame.rs_addr:02X}")
        cc, data = Satellite(sat).answer(frame.netfn, frame.rs_lun, frame.cmd, frame.data)

    response = frame.response(cc, data)
    if to_session and ctx.session_id is not None:
        m.deliver_tracked(ctx.session_id, response)
    else:
        m.enqueue(channel.number, response[1:], privilege=0)
    return None  # CC 00h; no data when sent from the system interface (22.7)


# -- channels -----------------------------------------------------------------------


@command(APP, 0x42, privilege=Privilege.USER, request=pm_dm.GetChannelInfoReq,
         response=pm_dm.GetChannelInfoRsp, name="Get Channel Info")
def get_channel_info(bmc: Bmc, ctx: Context, req):
    """Section 22.24, table 22-30; media and protocols from tables 6-2/6-3."""
    chans = _channels(bmc)
    channel = chans.resolve(req.channel.number, ctx.channel)
    if channel is None:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"no channel {req.channel.number}")
    info = chans.info(channel, ctx.interface)
    rsp = pm_dm.GetChannelInfoRsp()
    rsp.channel.number = info.number
    rsp.medium.type = int(info.medium)
    rsp.protocol.type = int(info.protocol)
    rsp.session.active_count = info.active_sessions
    rsp.session.support = int(info.session_support)
    rsp.vendor_id = info.vendor_id
    rsp.auxiliary_info = array("B", info.aux)
    return rsp


@command(APP, 0x40, privilege=Privilege.ADMINISTRATOR, request=msgs.SetChannelAccessReq,
         response=msgs.SetChannelAccessRsp, name="Set Channel Access")
def set_channel_access(bmc: Bmc, ctx: Context, req):
    """Section 22.22, table 22-28 (the openUBMC reference, seed 002).

    82h on a session-less channel, 83h for an access mode the channel does
    not support, CCh for reserved values and for disabling user level
    authentication, which this BMC does not support.  Volatile and
    non-volatile settings are separate; everything is checked before
    anything is changed.
    """
    chans = _channels(bmc)
    channel = chans.resolve(req.channel.number, ctx.channel)
    if channel is None:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"no channel {req.channel.number}")
    if channel.sessionless:
        raise IpmiError(CC_SESSIONLESS_CHANNEL, f"channel {channel.number} is session-less")
    a, p = req.access, req.privilege
    if a.set == 3 or p.set == 3:
        raise IpmiError(CC.INVALID_DATA_FIELD, "set selector 11b is reserved")
    if a.set != _DONT_SET:
        if a.user_level_auth_disabled:
            raise IpmiError(CC.INVALID_DATA_FIELD, "disabling user level authentication is not supported")
        if AccessMode(a.access_mode) not in channel.supported_access_modes:
            raise IpmiError(CC_ACCESS_MODE_UNSUPPORTED, f"access mode {a.access_mode}")
    if p.set != _DONT_SET and not Privilege.CALLBACK <= p.limit <= Privilege.OEM:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"privilege limit {p.limit}")

    for which, volatile in ((_NON_VOLATILE, False), (_VOLATILE, True)):
        current = chans.access(channel, volatile=volatile)
        new = current
        if a.set == which:
            new = ChannelAccess(
                access_mode=AccessMode(a.access_mode),
                privilege_limit=new.privilege_limit,
                alerting_disabled=bool(a.alerting_disabled),
                per_message_auth_disabled=bool(a.per_message_auth_disabled),
                user_level_auth_disabled=False,
            )
        if p.set == which:
            new = ChannelAccess(new.access_mode, p.limit, new.alerting_disabled,
                                new.per_message_auth_disabled, new.user_level_auth_disabled)
        if new != current:
            chans.set_access(channel, new, volatile=volatile)


@command(APP, 0x41, privilege=Privilege.USER, request=msgs.GetChannelAccessReq,
         response=msgs.GetChannelAccessRsp, name="Get Channel Access")
def get_channel_access(bmc: Bmc, ctx: Context, req):
    """Section 22.23, table 22-29: 01b non-volatile, 10b volatile; 82h if session-less."""
    chans = _channels(bmc)
    channel = chans.resolve(req.channel.number, ctx.channel)
    if channel is None:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"no channel {req.channel.number}")
    if channel.sessionless:
        raise IpmiError(CC_SESSIONLESS_CHANNEL, f"channel {channel.number} is session-less")
    if req.access.which not in (_NON_VOLATILE, _VOLATILE):
        raise IpmiError(CC.INVALID_DATA_FIELD, f"access type {req.access.which} is reserved")
    access = chans.access(channel, volatile=req.access.which == _VOLATILE)
    rsp = msgs.GetChannelAccessRsp()
    rsp.access.access_mode = int(access.access_mode)
    rsp.access.user_level_auth_disabled = int(access.user_level_auth_disabled)
    rsp.access.per_message_auth_disabled = int(access.per_message_auth_disabled)
    rsp.access.alerting_disabled = int(access.alerting_disabled)
    rsp.privilege.limit = access.privilege_limit
    return rsp


# -- system info parameters -------------------------------------------------------


def _sysinfo(bmc: Bmc) -> SystemInfo:
    return bmc.parts["sysinfo"]


@command(APP, 0x58, privilege=Privilege.ADMINISTRATOR, request=msgs.SetSystemInfoParametersReq,
         response=msgs.SetSystemInfoParametersRsp, name="Set System Info Parameters")
def set_system_info_parameters(bmc: Bmc, ctx: Context, req):
    """Section 22.14a: 80h unsupported parameter, 81h set-in-progress claimed."""
    _sysinfo(bmc).set(req.parameter_selector, bytes(req.parameter_data))


@command(APP, 0x59, privilege=Privilege.USER, request=msgs.GetSystemInfoParametersReq,
         response=msgs.GetSystemInfoParametersRsp, name="Get System Info Parameters")
def get_system_info_parameters(bmc: Bmc, ctx: Context, req):
    """Section 22.14b: revision 11h, then the data unless 'revision only'."""
    data = _sysinfo(bmc).get(req.parameter_selector, req.set_selector, req.block_selector)
    rsp = msgs.GetSystemInfoParametersRsp()
    rsp.revision = REVISION
    rsp.parameter_data = array("B", b"" if req.request.revision_only else data)
    return rsp
