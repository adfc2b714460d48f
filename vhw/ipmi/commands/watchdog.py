"""Watchdog commands (App NetFn 06h, IPMI 2.0 chapter 27).

The timer itself is ``bmc.parts["watchdog"]`` (vhw.ipmi.parts.watchdog).  Unlike
ipmi_sim, Get Watchdog Timer answers all 8 bytes (present countdown
included), Set Watchdog Timer answers just its completion code, and a
pre-timeout NMI is accepted (docs/ipmi-anchors.md section 2).
"""

from __future__ import annotations

from pyipmi.msgs import bmc as pm
from pyipmi.msgs.message import Message

from ..core.bmc import CC, command, Context, IpmiError, NetFn, Privilege
from ..parts.watchdog import PreTimeoutInterrupt, TimeoutAction, TimerUse, Watchdog, WatchdogSettings

CMD_RESET_WATCHDOG_TIMER = 0x22
CMD_SET_WATCHDOG_TIMER = 0x24
CMD_GET_WATCHDOG_TIMER = 0x25

#: Reset Watchdog Timer: "attempt to start un-initialized watchdog" (section 27.5).
CC_WATCHDOG_NOT_INITIALIZED = 0x80


def _watchdog(bmc) -> Watchdog:
    return bmc.parts["watchdog"]  # the row\'s ``requires`` checked it is there


@command(
    NetFn.APP,
    CMD_RESET_WATCHDOG_TIMER,
    privilege=Privilege.OPERATOR,
    request=pm.ResetWatchdogTimerReq,
    response=pm.ResetWatchdogTimerRsp,
    requires=("watchdog",),
)
def reset_watchdog_timer(bmc, ctx: Context, req) -> None:
    """Section 27.5: start or restart from the initial countdown; 80h before any Set."""
    if not _watchdog(bmc).reset(bmc.now):
        raise IpmiError(CC_WATCHDOG_NOT_INITIALIZED, "watchdog never set")
    return None


@command(
    NetFn.APP,
    CMD_SET_WATCHDOG_TIMER,
    privilege=Privilege.OPERATOR,
    request=pm.SetWatchdogTimerReq,
    response=pm.SetWatchdogTimerRsp,
    requires=("watchdog",),
)
def set_watchdog_timer(bmc, ctx: Context, req) -> None:
    """Section 27.6.

    Reserved timer uses (0, 6, 7), actions (4-7) and pre-timeout interrupts
    (4-7) answer CCh, as does a pre-timeout interval longer than the
    countdown (the interrupt would have to come before the timer starts;
    OpenBMC checks the same).  Reserved bits are ignored.
    """
    try:
        use = TimerUse(req.timer_use.timer_use)
        action = TimeoutAction(req.timer_actions.timeout_action)
        interrupt = PreTimeoutInterrupt(req.timer_actions.pre_timeout_interrupt)
    except ValueError as e:
        raise IpmiError(CC.INVALID_DATA_FIELD, str(e)) from None
    if req.pre_timeout_interval * 10 > req.initial_countdown:
        raise IpmiError(
            CC.INVALID_DATA_FIELD,
            f"pre-timeout {req.pre_timeout_interval} s > countdown {req.initial_countdown / 10} s",
        )
    settings = WatchdogSettings(
        timer_use=use,
        dont_log=bool(req.timer_use.dont_log),
        action=action,
        pretimeout_interrupt=interrupt,
        pretimeout_interval=req.pre_timeout_interval,
        initial_countdown=req.initial_countdown,
    )
    _watchdog(bmc).set(
        bmc.now,
        settings,
        dont_stop=bool(req.timer_use.dont_stop),
        clear_flags=req.timer_use_expiration_flags,
    )
    return None


@command(
    NetFn.APP,
    CMD_GET_WATCHDOG_TIMER,
    privilege=Privilege.USER,
    request=pm.GetWatchdogTimerReq,
    response=pm.GetWatchdogTimerRsp,
    requires=("watchdog",),
)
def get_watchdog_timer(bmc, ctx: Context, req) -> Message:
    """Section 27.7: settings, expiration flags, initial and *present* countdown."""
    watchdog = _watchdog(bmc)
    rsp = pm.GetWatchdogTimerRsp()
    s = watchdog.settings
    if s is not None:
        rsp.timer_use.timer_use = int(s.timer_use)
        rsp.timer_use.dont_log = int(s.dont_log)
        rsp.timer_actions.timeout_action = int(s.action)
        rsp.timer_actions.pre_timeout_interrupt = int(s.pretimeout_interrupt)
        rsp.pre_timeout_interval = s.pretimeout_interval
        rsp.initial_countdown = s.initial_countdown
    rsp.timer_use.is_running = int(watchdog.running)
    rsp.timer_use_expiration_flags = watchdog.expiration_flags
    rsp.present_countdown = watchdog.present_countdown(bmc.now)
    return rsp
