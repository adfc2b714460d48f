"""BMC device commands (App NetFn 06h, IPMI 2.0 chapter 20): resets,
self test, ACPI power state.

A Cold or Warm Reset is answered first and carried out just after: the
handler only marks the reset pending, and the ``device`` part performs it on
the next ``poll`` (its ``next_deadline`` is "now", so the runner polls right
after sending the answer).  The reset calls ``cold_reset()`` or
``warm_reset()`` on every part that has one:

- Cold Reset (section 20.2) "reinitializes event, communication and sensor
  functions": volatile state goes back to power-on values (watchdog never
  set, identify off, ACPI state unknown; the messaging and channel parts
  decide theirs).  System power, restart cause and POH describe the host and
  are not touched.
- Warm Reset (section 20.3) resets communication interfaces but leaves
  "current configurations of interrupt enables, thresholds, etc." alone:
  only parts with a ``warm_reset`` act (none of the chassis or watchdog
  state is communication state, so the watchdog keeps counting).
"""

from __future__ import annotations

import logging
from typing import Any

from pyipmi.msgs import bmc as pm
from pyipmi.msgs.message import Bitfield, CompletionCode, Message

from ..core.bmc import CC, command, Context, IpmiError, NetFn, Privilege

log = logging.getLogger(__name__)

CMD_COLD_RESET = 0x02
CMD_WARM_RESET = 0x03
CMD_GET_SELF_TEST_RESULTS = 0x04
CMD_SET_ACPI_POWER_STATE = 0x06
CMD_GET_ACPI_POWER_STATE = 0x07

#: Self test result byte: "no error" (section 20.4).
SELF_TEST_NO_ERROR = 0x55

#: ACPI power state codes (section 20.6).
ACPI_UNKNOWN = 0x2A
ACPI_NO_CHANGE = 0x7F
ACPI_SYSTEM_STATES = frozenset({*range(0x00, 0x0B), 0x20, 0x21, ACPI_UNKNOWN})
ACPI_DEVICE_STATES = frozenset({0x00, 0x01, 0x02, 0x03, ACPI_UNKNOWN})


# -- messages python-ipmi lacks (its ACPI ones are marked not implemented) --
def _state_byte(name: str) -> Bitfield:
    return Bitfield(name, 1, Bitfield.Bit("state", 7), Bitfield.Bit("set", 1))


class SetAcpiPowerStateReq(Message):
    """Section 20.6: [7] = set this state, [6:0] = the state (7Fh = no change)."""

    __netfn__ = NetFn.APP
    __cmdid__ = CMD_SET_ACPI_POWER_STATE
    __fields__ = (_state_byte("system"), _state_byte("device"))


class GetAcpiPowerStateReq(Message):
    __netfn__ = NetFn.APP
    __cmdid__ = CMD_GET_ACPI_POWER_STATE
    __fields__ = ()


class GetAcpiPowerStateRsp(Message):
    """Section 20.7: system state, device state; bit 7 of each reserved."""

    __netfn__ = NetFn.APP | 1
    __cmdid__ = CMD_GET_ACPI_POWER_STATE
    __fields__ = (
        CompletionCode(),
        Bitfield("system", 1, Bitfield.Bit("state", 7), Bitfield.ReservedBit(1, 0)),
        Bitfield("device", 1, Bitfield.Bit("state", 7), Bitfield.ReservedBit(1, 0)),
    )


# -- the part ---------------------------------------------------------------
class BmcDevice:
    """The BMC as a device: the ACPI power state system software last told
    it (only stored, section 20.6) and a reset waiting for its answer to go out."""

    def __init__(self, bmc: Any) -> None:
        self.bmc = bmc
        self.acpi_system_state = ACPI_UNKNOWN
        self.acpi_device_state = ACPI_UNKNOWN
        self.pending_reset: str | None = None  # "cold" or "warm"

    def next_deadline(self) -> float | None:
        return self.bmc.now if self.pending_reset else None

    def poll(self, now: float) -> None:
        kind, self.pending_reset = self.pending_reset, None
        if kind is not None:
            reset_parts(self.bmc, kind)

    def cold_reset(self) -> None:
        self.acpi_system_state = ACPI_UNKNOWN
        self.acpi_device_state = ACPI_UNKNOWN


def reset_parts(bmc: Any, kind: str) -> None:
    """Call ``<kind>_reset()`` on every part that has one."""
    log.info("BMC %s reset", kind)
    for part in list(bmc.parts.values()):
        reset = getattr(part, f"{kind}_reset", None)
        if reset is not None:
            reset()


def create_part(bmc: Any, config: Any) -> BmcDevice:
    """The part for ``bmc.parts["device"]``; created on first use if not assembled."""
    return BmcDevice(bmc)


def _device(bmc) -> BmcDevice:
    device = bmc.parts.get("device")
    if device is None:
        device = bmc.parts["device"] = BmcDevice(bmc)
    return device


# -- handlers ---------------------------------------------------------------
@command(NetFn.APP, CMD_COLD_RESET, privilege=Privilege.ADMINISTRATOR, request=pm.ColdResetReq)
def cold_reset(bmc, ctx: Context, req) -> None:
    """Section 20.2: answered with CC 00h, then carried out (see the module doc)."""
    _device(bmc).pending_reset = "cold"
    return None


@command(NetFn.APP, CMD_WARM_RESET, privilege=Privilege.ADMINISTRATOR, request=pm.WarmResetReq)
def warm_reset(bmc, ctx: Context, req) -> None:
    """Section 20.3: answered with CC 00h, then carried out."""
    _device(bmc).pending_reset = "warm"
    return None


@command(
    NetFn.APP,
    CMD_GET_SELF_TEST_RESULTS,
    privilege=Privilege.USER,
    request=pm.GetSelftestResultsReq,
    response=pm.GetSelftestResultsRsp,
)
def get_self_test_results(bmc, ctx: Context, req) -> Message:
    """Section 20.4: 55h 00h, no error."""
    rsp = pm.GetSelftestResultsRsp()
    rsp.result = SELF_TEST_NO_ERROR
    return rsp


@command(
    NetFn.APP,
    CMD_SET_ACPI_POWER_STATE,
    privilege=Privilege.ADMINISTRATOR,
    request=SetAcpiPowerStateReq,
)
def set_acpi_power_state(bmc, ctx: Context, req: SetAcpiPowerStateReq) -> None:
    """Section 20.6: store the states whose "set" bit is on; an undefined
    state code answers CCh and changes nothing."""
    updates = {}
    for name, valid in (("system", ACPI_SYSTEM_STATES), ("device", ACPI_DEVICE_STATES)):
        field = getattr(req, name)
        if not field.set or field.state == ACPI_NO_CHANGE:
            continue
        if field.state not in valid:
            raise IpmiError(CC.INVALID_DATA_FIELD, f"ACPI {name} power state 0x{field.state:02X}")
        updates[name] = field.state
    device = _device(bmc)
    if "system" in updates:
        device.acpi_system_state = updates["system"]
    if "device" in updates:
        device.acpi_device_state = updates["device"]
    return None


@command(
    NetFn.APP,
    CMD_GET_ACPI_POWER_STATE,
    privilege=Privilege.USER,
    request=GetAcpiPowerStateReq,
    response=GetAcpiPowerStateRsp,
)
def get_acpi_power_state(bmc, ctx: Context, req) -> Message:
    """Section 20.7."""
    device = _device(bmc)
    rsp = GetAcpiPowerStateRsp()
    rsp.system.state = device.acpi_system_state
    rsp.device.state = device.acpi_device_state
    return rsp
