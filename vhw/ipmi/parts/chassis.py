"""The chassis: system power as the BMC knows it (IPMI 2.0 chapter 28).

The BMC keeps running while the VM is off, and it never changes the power
state on its own say-so: it *asks* (``Power`` actions) and the machine layer,
which watches QMP and relaunches QEMU, *confirms* with ``vm_powered_on``,
``vm_powered_off`` and ``vm_reset``.  Between the two a request is pending;
the pending request decides what a repeated command does (a second "power
up" while the first is under way is a success, not a second relaunch) and
which restart cause the confirmation is recorded with.

Sans-I/O: times are passed in; the part only queues actions on the Bmc.

Non-volatile (store namespace "chassis"): the power restore policy, and
whether power was last on, which the "previous" policy needs after AC loss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

from ...errors import DescriptionError
from ...tables import Table
from ..core.actions import Power, PowerOp

log = logging.getLogger(__name__)


class RestartCause(IntEnum):
    """System restart causes (IPMI 2.0 section 28.11, table 28-11)."""

    UNKNOWN = 0x0
    CHASSIS_CONTROL = 0x1
    RESET_BUTTON = 0x2
    POWER_BUTTON = 0x3
    WATCHDOG = 0x4
    OEM = 0x5
    POLICY_ALWAYS_ON = 0x6  # power restored because the policy is "always power up"
    POLICY_PREVIOUS = 0x7  # power restored because the policy is "restore previous state"
    PEF_RESET = 0x8
    PEF_POWER_CYCLE = 0x9
    SOFT_RESET = 0xA  # e.g. CTRL-ALT-DEL, or the guest rebooting itself
    RTC_WAKEUP = 0xB


class IdentifyState(IntEnum):
    """Chassis identify state as Get Chassis Status reports it (table 28-3, byte 3 [5:4])."""

    OFF = 0
    TIMED = 1
    INDEFINITE = 2


#: Power restore policies: config name -> the 2-bit code of Get Chassis Status
#: byte 1 [6:5] and Set Power Restore Policy byte 1 [2:0] (section 28.8).
RESTORE_POLICIES: dict[str, int] = {"always-off": 0, "previous": 1, "always-on": 2}
#: Set Power Restore Policy byte 1 value meaning "no change, just report support".
RESTORE_POLICY_NO_CHANGE = 3
STORE_NAMESPACE = "chassis"


@dataclass(frozen=True)
class ChassisConfig:
    """How the virtual chassis is built; the ``[bmc.chassis]`` table.

    Keys are the field names, like the rest of ``[bmc]`` (``power_restore_policy``).
    """

    #: What to do with power when vhw starts the machine ("AC applied").
    power_restore_policy: str = "always-off"
    #: Seconds the machine layer keeps the VM off during a power cycle
    #: (section 28.3: "a power off interval of at least 1 second").
    power_cycle_interval: int = 1
    #: Identify interval when Chassis Identify carries no byte 1 (section 28.5: 15 s).
    identify_interval: int = 15
    #: Get POH Counter's minutes per count (60: the counter counts hours).
    poh_minutes_per_count: int = 60
    #: Get Chassis Capabilities flags (section 28.1, byte 2).
    intrusion_sensor: bool = False
    front_panel_lockout: bool = False
    diagnostic_interrupt: bool = True
    power_interlock: bool = False
    #: Get Chassis Capabilities device addresses (8-bit slave addresses; 0x20 = the BMC).
    fru_device_address: int = 0x20
    sdr_device_address: int = 0x20
    sel_device_address: int = 0x20
    sm_device_address: int = 0x20
    bridge_device_address: int = 0x20

    @classmethod
    def from_dict(cls, d: dict, key: str) -> ChassisConfig:
        """Validate a ``[bmc.chassis]`` table; DescriptionError names the bad key."""
        if d is None:
            return cls()
        t = Table(d, key)
        t.expect(f.name for f in fields(cls))
        values = {name: _check(name, value, t.key(name)) for name, value in d.items()}
        return cls(**values)


_RANGES = {
    "power_cycle_interval": (1, 255, " seconds"),
    "identify_interval": (1, 255, " seconds"),
    "poh_minutes_per_count": (1, 255, " minutes"),
}


def _check(name: str, value: Any, where: str) -> Any:
    default = getattr(ChassisConfig, name)
    if name == "power_restore_policy":
        if value not in RESTORE_POLICIES:
            raise DescriptionError(where, f"must be one of {', '.join(RESTORE_POLICIES)}; got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise DescriptionError(where, f"must be true or false, not {value!r}")
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise DescriptionError(where, f"must be an integer, not {value!r}")
    if name.endswith("_device_address"):
        if not 0 <= value <= 0xFE or value & 1:
            raise DescriptionError(where, f"must be an even 8-bit slave address (0x00..0xFE); got {value:#x}")
        return value
    lo, hi, unit = _RANGES[name]
    if not lo <= value <= hi:
        raise DescriptionError(where, f"must be between {lo} and {hi}{unit}; got {value}")
    return value


@dataclass
class _Pending:
    """A power request sent to the machine layer and not yet confirmed."""

    op: PowerOp
    cause: RestartCause
    channel: int


class Chassis:
    """Power state, restart cause, identify, POH and restore policy of one machine."""

    def __init__(self, bmc: Any, config: ChassisConfig | None = None) -> None:
        self.bmc = bmc
        self.config = config or ChassisConfig()
        self._store = getattr(bmc, "store", None)
        self._restore_policy: str = self._saved("restore_policy", self.config.power_restore_policy)
        #: Confirmed by the machine layer; the VM starts off until it says so.
        self.power_on = False
        #: "Last 'Power is on' state was entered via IPMI command" (table 28-3 byte 2 [4]).
        self.last_on_via_ipmi = False
        self.restart_cause = RestartCause.UNKNOWN
        self.restart_channel = 0
        self._pending: _Pending | None = None
        self._on_since: float | None = None
        self._on_seconds = 0.0
        self._identify_until: float | None = None
        self._identify_forever = False

    # -- non-volatile settings ------------------------------------------------
    def _saved(self, key: str, default: Any) -> Any:
        return self._store.get(STORE_NAMESPACE, key, default) if self._store is not None else default

    def _save(self, key: str, value: Any) -> None:
        if self._store is not None:
            self._store.put(STORE_NAMESPACE, key, value)

    @property
    def restore_policy(self) -> str:
        """"always-off", "previous" or "always-on"; kept in the store."""
        return self._restore_policy

    @restore_policy.setter
    def restore_policy(self, name: str) -> None:
        if name not in RESTORE_POLICIES:
            raise ValueError(f"power restore policy {name!r}")
        self._restore_policy = name
        self._save("restore_policy", name)

    @property
    def previous_power_on(self) -> bool:
        """Whether power was on when the BMC last saw it (for the "previous" policy)."""
        return bool(self._saved("power_on", False))

    @property
    def pending_cause(self) -> RestartCause:
        """The restart cause a pending power request will be recorded with."""
        return self._pending.cause if self._pending is not None else RestartCause.UNKNOWN

    # -- what the machine layer tells us ----------------------------------
    def vm_powered_on(self, now: float, cause: RestartCause | None = None) -> None:
        """The VM is running (QEMU launched, or resumed from a power cycle).

        ``cause`` None means "whatever the BMC asked for", or unknown if it
        asked for nothing.
        """
        if self.power_on:
            return
        pending = self._take_pending(PowerOp.ON, PowerOp.CYCLE)
        self.power_on = True
        self._save("power_on", True)
        self._on_since = now
        resolved = cause if cause is not None else (pending.cause if pending else RestartCause.UNKNOWN)
        self._record_restart(resolved, pending)
        self.last_on_via_ipmi = resolved == RestartCause.CHASSIS_CONTROL

    def vm_powered_off(self, now: float) -> None:
        """The VM is gone (QEMU exited, or stopped after a guest shutdown).

        A power cycle in progress stays pending: the "on" half is to come.
        The watchdog stops: with the system off there is nothing to guard.
        """
        if not self.power_on:
            return
        self._accumulate_poh(now)
        self.power_on = False
        self._save("power_on", False)
        self._on_since = None
        if self._pending is not None and self._pending.op is not PowerOp.CYCLE:
            self._pending = None
        watchdog = self.bmc.parts.get("watchdog")
        if watchdog is not None:
            watchdog.system_powered_off(now)
        self._system_gone()

    def vm_reset(self, now: float, cause: RestartCause | None = None) -> None:
        """The VM was reset (QMP RESET).

        The watchdog keeps running, as on hardware (Linux's ipmi_watchdog
        relies on it to catch a reboot that hangs); message queues are dropped.
        """
        if not self.power_on:
            log.warning("VM reset reported while the chassis is off; ignored")
            return
        # A machine layer may carry out a power cycle as a plain reset.
        pending = self._take_pending(PowerOp.RESET, PowerOp.CYCLE)
        resolved = cause if cause is not None else (pending.cause if pending else RestartCause.UNKNOWN)
        self._record_restart(resolved, pending)
        self._system_gone()

    def apply_power_restore_policy(self, previous_on: bool) -> bool:
        """At machine start ("AC applied"): ask for power-on if the policy says so."""
        if self.restore_policy == "always-on":
            self.request(PowerOp.ON, RestartCause.POLICY_ALWAYS_ON, why="power restore policy always-on")
            return True
        if self.restore_policy == "previous" and previous_on:
            self.request(PowerOp.ON, RestartCause.POLICY_PREVIOUS, why="power restore policy previous")
            return True
        return False

    # -- requests ---------------------------------------------------------
    def request(self, op: PowerOp, cause: RestartCause, *, channel: int = 0, why: str) -> None:
        """Ask the machine layer for ``op``; remember why, for the restart cause."""
        if op is not PowerOp.NMI:
            self._pending = _Pending(op, cause, channel)
        self.bmc.emit(Power(op, why))

    def target_on(self) -> bool | None:
        """Where power is heading: on, off, or None when the guest decides (soft off)."""
        if self._pending is not None:
            if self._pending.op in (PowerOp.ON, PowerOp.CYCLE):
                return True
            if self._pending.op is PowerOp.OFF:
                return False
            if self._pending.op is PowerOp.SOFT_OFF:
                return None
        return self.power_on

    # -- identify ---------------------------------------------------------
    def identify(self, now: float, interval: int | None, force: bool) -> None:
        """Chassis Identify (section 28.5): force wins, interval 0 turns it off."""
        if force:
            self._identify_forever = True
            self._identify_until = None
            return
        self._identify_forever = False
        seconds = self.config.identify_interval if interval is None else interval
        self._identify_until = now + seconds if seconds else None

    def identify_state(self, now: float) -> IdentifyState:
        if self._identify_forever:
            return IdentifyState.INDEFINITE
        if self._identify_until is not None and now < self._identify_until:
            return IdentifyState.TIMED
        return IdentifyState.OFF

    # -- POH --------------------------------------------------------------
    def poh_counter(self, now: float) -> int:
        """Power-on counts since the BMC started, at ``poh_minutes_per_count`` each."""
        seconds = self._on_seconds
        if self._on_since is not None:
            seconds += max(0.0, now - self._on_since)
        return int(seconds // (60 * self.config.poh_minutes_per_count)) & 0xFFFFFFFF

    # -- BMC reset --------------------------------------------------------
    def cold_reset(self) -> None:
        """A BMC cold reset forgets volatile state: the identify light goes off.

        Power, restart cause, policy and POH describe the system, not the BMC,
        and survive (the host keeps running while its BMC reboots).
        """
        self._identify_forever = False
        self._identify_until = None

    # -- internals --------------------------------------------------------
    def _take_pending(self, *ops: PowerOp) -> _Pending | None:
        pending = self._pending
        if pending is not None and pending.op in ops:
            self._pending = None
            return pending
        return None

    def _record_restart(self, cause: RestartCause, pending: _Pending | None) -> None:
        self.restart_cause = RestartCause(cause)
        self.restart_channel = pending.channel if pending is not None else 0

    def _system_gone(self) -> None:
        """Nobody is left to read queued messages or events (docs/ipmi-extern.md section 12)."""
        messaging = self.bmc.parts.get("messaging")
        reset = getattr(messaging, "system_reset", None)
        if reset is not None:
            reset()

    def _accumulate_poh(self, now: float) -> None:
        if self._on_since is not None:
            self._on_seconds += max(0.0, now - self._on_since)


def create_part(bmc: Any, config: Any) -> Chassis:
    """The chassis part for ``bmc.parts["chassis"]``; ``config`` is a BmcConfig or None."""
    chassis_config = getattr(config, "chassis", None) if config is not None else None
    return Chassis(bmc, chassis_config or ChassisConfig())
