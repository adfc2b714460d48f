"""Set/Get System Boot Options (Chassis NetFn 00h, commands 08h/09h;
IPMI 2.0 sections 28.12-28.13).  The parameters live in the bootopts part
(vhw.ipmi.parts.bootopts).  QEMU's ipmi-bmc-sim answers Get System Restart Cause at
09h; here 09h is what the spec says it is.
"""

from __future__ import annotations

from ..core.bmc import CC, command, Bmc, Context, IpmiError, NetFn, Privilege
from ..parts.bootopts import PARAMETER_VERSION, BootOptions

CMD_SET_SYSTEM_BOOT_OPTIONS = 0x08
CMD_GET_SYSTEM_BOOT_OPTIONS = 0x09


def _bootopts(bmc: Bmc) -> BootOptions:
    return bmc.parts["bootopts"]  # the row\'s ``requires`` checked it is there


@command(NetFn.CHASSIS, CMD_SET_SYSTEM_BOOT_OPTIONS, privilege=Privilege.OPERATOR,
         name="Set System Boot Options", requires=("bootopts",))
def set_system_boot_options(bmc: Bmc, ctx: Context, data: bytes) -> None:
    """Section 28.12: byte 1 [7] marks the parameter invalid/locked (1b) or
    valid/unlocked (0b), [6:0] selects it; the parameter data follows.
    80h for an unsupported parameter, 81h when 'set in progress' is claimed."""
    if not data:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, "no parameter selector")
    _bootopts(bmc).set(data[0] & 0x7F, data[1:], lock=bool(data[0] & 0x80))


@command(NetFn.CHASSIS, CMD_GET_SYSTEM_BOOT_OPTIONS, privilege=Privilege.OPERATOR,
         name="Get System Boot Options", requires=("bootopts",))
def get_system_boot_options(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 28.13: request parameter selector, set selector, block selector
    (tools send all three; the selectors default to 0 when left out).
    Response: parameter version 01h, the selector with bit 7 = invalid/locked,
    then the parameter data."""
    if not 1 <= len(data) <= 3:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data)} data bytes, want 1..3")
    param = data[0] & 0x7F
    set_selector = data[1] if len(data) > 1 else 0
    block_selector = data[2] if len(data) > 2 else 0
    part = _bootopts(bmc)
    body = part.get(param, set_selector, block_selector)
    return bytes([PARAMETER_VERSION, param | (0x80 if part.is_locked(param) else 0)]) + body
