"""Chassis commands (NetFn 00h, IPMI 2.0 chapter 28).

Decoding and encoding only; the state lives in the chassis part
(``bmc.parts["chassis"]``, vhw.ipmi.parts.chassis).  Privileges are those of
IPMI 2.0 appendix G.

python-ipmi's definitions are used where they are right.  It has none for
Chassis Identify, Set Power Restore Policy and Get System Restart Cause;
those are defined here (not registered in python-ipmi's registry).
"""

from __future__ import annotations

from pyipmi.msgs import chassis as pm
from pyipmi.msgs.message import Bitfield, CompletionCode, Message, Optional, UnsignedInt

from ..core.actions import PowerOp
from ..core.bmc import CC, command, Context, IpmiError, NetFn, Privilege
from ..parts.chassis import RESTORE_POLICIES, RESTORE_POLICY_NO_CHANGE, Chassis, RestartCause

CMD_GET_CHASSIS_CAPABILITIES = 0x00
CMD_GET_CHASSIS_STATUS = 0x01
CMD_CHASSIS_CONTROL = 0x02
CMD_CHASSIS_IDENTIFY = 0x04
CMD_SET_POWER_RESTORE_POLICY = 0x06
CMD_GET_SYSTEM_RESTART_CAUSE = 0x07
CMD_GET_POH_COUNTER = 0x0F

#: Chassis Control byte 1 (section 28.3, table 28-4).
CONTROL_POWER_DOWN = 0
CONTROL_POWER_UP = 1
CONTROL_POWER_CYCLE = 2
CONTROL_HARD_RESET = 3
CONTROL_DIAGNOSTIC_INTERRUPT = 4
CONTROL_SOFT_SHUTDOWN = 5


# -- messages python-ipmi lacks or gets wrong ------------------------------
class ChassisIdentifyReq(Message):
    """Section 28.5: both bytes optional; byte 2 only after byte 1.

    Byte 2 is a plain integer: python-ipmi cannot decode an Optional Bitfield
    (Optional creates no bit wrapper for the Bitfield to fill).
    """

    __netfn__ = NetFn.CHASSIS
    __cmdid__ = CMD_CHASSIS_IDENTIFY
    __fields__ = (
        Optional(UnsignedInt("interval", 1)),
        Optional(UnsignedInt("force", 1)),
    )


class SetPowerRestorePolicyReq(Message):
    __netfn__ = NetFn.CHASSIS
    __cmdid__ = CMD_SET_POWER_RESTORE_POLICY
    __fields__ = (Bitfield("policy", 1, Bitfield.Bit("policy", 3), Bitfield.ReservedBit(5, 0)),)


class SetPowerRestorePolicyRsp(Message):
    """Section 28.8: the policies the chassis supports, one bit each."""

    __netfn__ = NetFn.CHASSIS | 1
    __cmdid__ = CMD_SET_POWER_RESTORE_POLICY
    __fields__ = (
        CompletionCode(),
        Bitfield(
            "support",
            1,
            Bitfield.Bit("always_off", 1),
            Bitfield.Bit("previous", 1),
            Bitfield.Bit("always_on", 1),
            Bitfield.ReservedBit(5, 0),
        ),
    )


class GetSystemRestartCauseReq(Message):
    __netfn__ = NetFn.CHASSIS
    __cmdid__ = CMD_GET_SYSTEM_RESTART_CAUSE
    __fields__ = ()


class GetSystemRestartCauseRsp(Message):
    """Section 28.11: cause [3:0] (table 28-11), then the channel it came over."""

    __netfn__ = NetFn.CHASSIS | 1
    __cmdid__ = CMD_GET_SYSTEM_RESTART_CAUSE
    __fields__ = (
        CompletionCode(),
        Bitfield("restart_cause", 1, Bitfield.Bit("cause", 4), Bitfield.ReservedBit(4, 0)),
        UnsignedInt("channel", 1),
    )


def _chassis(bmc) -> Chassis:
    return bmc.parts["chassis"]  # the row\'s ``requires`` checked it is there


# -- handlers ---------------------------------------------------------------
@command(
    NetFn.CHASSIS,
    CMD_GET_CHASSIS_CAPABILITIES,
    privilege=Privilege.USER,
    request=pm.GetChassisCapabilitiesReq,
    response=pm.GetChassisCapabilitiesRsp,
    requires=("chassis",),
)
def get_chassis_capabilities(bmc, ctx: Context, req) -> Message:
    """Section 28.1.  Always the full response, bridge address included
    (ipmi_sim answered without a length, and FreeIPMI timed out)."""
    cfg = _chassis(bmc).config
    rsp = pm.GetChassisCapabilitiesRsp()
    flags = rsp.capabilities_flags
    flags.intrusion_sensor = int(cfg.intrusion_sensor)
    flags.frontpanel_lockout = int(cfg.front_panel_lockout)
    flags.diagnostic_interrupt = int(cfg.diagnostic_interrupt)
    flags.power_interlock = int(cfg.power_interlock)
    rsp.fru_info_device_address = cfg.fru_device_address
    rsp.sdr_device_address = cfg.sdr_device_address
    rsp.sel_device_address = cfg.sel_device_address
    rsp.system_management_device_address = cfg.sm_device_address
    rsp.bridge_device_address = cfg.bridge_device_address
    return rsp


@command(
    NetFn.CHASSIS,
    CMD_GET_CHASSIS_STATUS,
    privilege=Privilege.USER,
    request=pm.GetChassisStatusReq,
    response=pm.GetChassisStatusRsp,
    requires=("chassis",),
)
def get_chassis_status(bmc, ctx: Context, req) -> Message:
    """Section 28.2, table 28-3: power as the machine layer last confirmed it.

    The optional byte 4 (front panel buttons) is left out: there are none.
    """
    chassis = _chassis(bmc)
    rsp = pm.GetChassisStatusRsp()
    rsp.current_power_state.power_on = int(chassis.power_on)
    rsp.current_power_state.power_restore_policy = RESTORE_POLICIES[chassis.restore_policy]
    rsp.last_power_event.power_is_on_via_ipmi_command = int(chassis.last_on_via_ipmi)
    rsp.misc_chassis_state.chassis_id_state = int(chassis.identify_state(bmc.now))
    rsp.misc_chassis_state.id_cmd_state_info_support = 1
    return rsp


@command(
    NetFn.CHASSIS,
    CMD_CHASSIS_CONTROL,
    privilege=Privilege.OPERATOR,
    request=pm.ChassisControlReq,
    response=pm.ChassisControlRsp,
    requires=("chassis",),
)
def chassis_control(bmc, ctx: Context, req) -> None:
    """Section 28.3, table 28-4.  At most one Power action per request.

    - power down / soft shutdown with power already off (or going off): success,
      no action; power up with power on (or coming on): success, no action.
      Repeating a request is not an error (anchors: Ironic expects that).
    - power cycle with power off: CC D5h and no action, as table 28-4
      recommends.  Hard reset and diagnostic interrupt with power off: D5h too,
      there is no running system to reset or interrupt.
    """
    chassis = _chassis(bmc)
    control = int(req.control)  # the whole byte: [7:4] are reserved
    on = chassis.power_on
    target = chassis.target_on()

    def ask(op: PowerOp, why: str) -> None:
        chassis.request(op, RestartCause.CHASSIS_CONTROL, channel=ctx.channel, why=why)

    if control == CONTROL_POWER_DOWN:
        if target is not False:
            ask(PowerOp.OFF, "chassis control power down")
    elif control == CONTROL_POWER_UP:
        if target is not True:
            ask(PowerOp.ON, "chassis control power up")
    elif control == CONTROL_POWER_CYCLE:
        if not on:
            raise IpmiError(CC.NOT_SUPPORTED_IN_PRESENT_STATE, "power cycle with power off")
        ask(PowerOp.CYCLE, "chassis control power cycle")
    elif control == CONTROL_HARD_RESET:
        if not on:
            raise IpmiError(CC.NOT_SUPPORTED_IN_PRESENT_STATE, "hard reset with power off")
        ask(PowerOp.RESET, "chassis control hard reset")
    elif control == CONTROL_DIAGNOSTIC_INTERRUPT:
        if not on:
            raise IpmiError(CC.NOT_SUPPORTED_IN_PRESENT_STATE, "diagnostic interrupt with power off")
        ask(PowerOp.NMI, "chassis control diagnostic interrupt")
    elif control == CONTROL_SOFT_SHUTDOWN:
        if on and target is not False:
            ask(PowerOp.SOFT_OFF, "chassis control soft shutdown")
    else:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"chassis control 0x{control:02X}")
    return None


@command(
    NetFn.CHASSIS,
    CMD_CHASSIS_IDENTIFY,
    privilege=Privilege.OPERATOR,
    request=ChassisIdentifyReq,
    requires=("chassis",),
)
def chassis_identify(bmc, ctx: Context, req: ChassisIdentifyReq) -> None:
    """Section 28.5: no data = default interval, byte 1 = seconds (0 = off),
    byte 2 bit 0 = on until turned off (overrides byte 1)."""
    force = req.force is not None and bool(req.force & 0x01)
    _chassis(bmc).identify(bmc.now, req.interval, force)
    return None


@command(
    NetFn.CHASSIS,
    CMD_SET_POWER_RESTORE_POLICY,
    privilege=Privilege.OPERATOR,
    request=SetPowerRestorePolicyReq,
    response=SetPowerRestorePolicyRsp,
    requires=("chassis",),
)
def set_power_restore_policy(bmc, ctx: Context, req: SetPowerRestorePolicyReq) -> Message:
    """Section 28.8: set the policy (3 = no change) and report which are supported."""
    chassis = _chassis(bmc)
    code = req.policy.policy
    if code != RESTORE_POLICY_NO_CHANGE:
        names = {v: k for k, v in RESTORE_POLICIES.items()}
        if code not in names:
            raise IpmiError(CC.INVALID_DATA_FIELD, f"power restore policy {code}")
        chassis.restore_policy = names[code]
    rsp = SetPowerRestorePolicyRsp()
    rsp.support.always_off = 1
    rsp.support.previous = 1
    rsp.support.always_on = 1
    return rsp


@command(
    NetFn.CHASSIS,
    CMD_GET_SYSTEM_RESTART_CAUSE,
    privilege=Privilege.USER,
    request=GetSystemRestartCauseReq,
    response=GetSystemRestartCauseRsp,
    requires=("chassis",),
)
def get_system_restart_cause(bmc, ctx: Context, req) -> Message:
    """Section 28.11 -- command 07h (QEMU's ipmi-bmc-sim wrongly answers it at 09h,
    which is Get System Boot Options)."""
    chassis = _chassis(bmc)
    rsp = GetSystemRestartCauseRsp()
    rsp.restart_cause.cause = int(chassis.restart_cause)
    rsp.channel = chassis.restart_channel
    return rsp


@command(
    NetFn.CHASSIS,
    CMD_GET_POH_COUNTER,
    privilege=Privilege.USER,
    request=pm.GetPohCounterReq,
    response=pm.GetPohCounterRsp,
    requires=("chassis",),
)
def get_poh_counter(bmc, ctx: Context, req) -> Message:
    """Section 28.14: minutes per count, then the 32-bit count of powered-on time."""
    chassis = _chassis(bmc)
    rsp = pm.GetPohCounterRsp()
    rsp.minutes_per_count = chassis.config.poh_minutes_per_count
    rsp.counter_reading = chassis.poh_counter(bmc.now)
    return rsp
