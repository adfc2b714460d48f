"""Set/Get LAN Configuration Parameters (Transport NetFn 0Ch, commands 01h/02h;
IPMI 2.0 sections 23.1-23.2, table 23-4).  The parameters live in the
lanconfig part (vhw.ipmi.parts.lanconfig); privileges are appendix G's: Set needs
Administrator, Get Operator.  The channel byte names the LAN channel (0Eh is
the present channel, so in-band 0Eh means the system interface: CCh).
"""

from __future__ import annotations

from ..core.bmc import CC, command, Bmc, Context, IpmiError, NetFn, Privilege
from ..parts.lanconfig import PARAMETER_REVISION, LanConfig, LanConfigError

CMD_SET_LAN_CONFIG = 0x01
CMD_GET_LAN_CONFIG = 0x02


def _lanconfig(bmc: Bmc, ctx: Context, channel_byte: int) -> LanConfig:
    part = bmc.parts["lanconfig"]  # the row's ``requires`` checked it is there
    number = channel_byte & 0x0F
    channels = bmc.parts.get("channels")
    channel = channels.resolve(number, ctx.channel) if channels is not None else None
    resolved = channel.number if channel is not None else number
    if resolved != part.channel:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"channel {number} is not the LAN channel {part.channel}")
    return part


@command(NetFn.TRANSPORT, CMD_SET_LAN_CONFIG, privilege=Privilege.ADMINISTRATOR,
         name="Set LAN Configuration Parameters", requires=("lanconfig",))
def set_lan_config(bmc: Bmc, ctx: Context, data: bytes) -> None:
    """Section 23.1: byte 1 [3:0] channel, byte 2 parameter selector, then the
    parameter data.  80h unsupported parameter, 81h 'set in progress' already
    claimed, 82h read-only parameter."""
    if len(data) < 2:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, "Set LAN Configuration Parameters needs channel and parameter")
    if data[0] & 0xF0:
        raise IpmiError(CC.INVALID_DATA_FIELD, "reserved bits in the channel byte")
    part = _lanconfig(bmc, ctx, data[0])
    try:
        part.set(data[1], bytes(data[2:]))
    except LanConfigError as e:
        raise IpmiError(e.cc, e.why) from None


@command(NetFn.TRANSPORT, CMD_GET_LAN_CONFIG, privilege=Privilege.OPERATOR,
         name="Get LAN Configuration Parameters", requires=("lanconfig",))
def get_lan_config(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 23.2: byte 1 [7] 'get parameter revision only', [3:0] channel;
    byte 2 parameter selector; byte 3 set selector; byte 4 block selector.
    Response: revision 11h, then the parameter data (none with [7] set)."""
    if len(data) != 4:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data)} data bytes, want 4")
    part = _lanconfig(bmc, ctx, data[0])
    if data[0] & 0x80:
        return bytes([PARAMETER_REVISION])
    try:
        body = part.get(data[1], data[2], data[3])
    except LanConfigError as e:
        raise IpmiError(e.cc, e.why) from None
    return bytes([PARAMETER_REVISION]) + body
