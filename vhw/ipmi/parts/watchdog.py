"""The BMC watchdog timer (IPMI 2.0 chapter 27).

A countdown in 100 ms ticks that system software keeps restarting; when it
runs out the BMC resets, powers down or power-cycles the system.  A
pre-timeout interrupt (NMI, SMI or the messaging interrupt) can warn the
guest ``pre-timeout interval`` seconds earlier.

Sans-I/O: the timer is a deadline, not a thread.  The runner calls
``poll(now)`` at ``next_deadline()``; Get Watchdog Timer computes the present
countdown from ``now``, so a read-back is exact at any instant.

What an expiry does, in the order QEMU and the guest saw it behind ipmi_sim
(docs/ipmi-extern.md section 11: ATTN_IRQ for the event, then
RESET): set the timer-use expiration flag, log the watchdog sensor event (SEL
and event message buffer) unless "don't log", then ask for the power action
through the chassis, which records restart cause "watchdog" once the machine
layer confirms.  The timer then stops.
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ..core.actions import Power, PowerOp
from .chassis import RestartCause

log = logging.getLogger(__name__)


class TimerUse(IntEnum):
    """Set Watchdog Timer byte 1 [2:0] (section 27.6); 0, 6, 7 are reserved."""

    BIOS_FRB2 = 1
    BIOS_POST = 2
    OS_LOAD = 3
    SMS_OS = 4
    OEM = 5


class TimeoutAction(IntEnum):
    """Set Watchdog Timer byte 2 [2:0]."""

    NONE = 0
    HARD_RESET = 1
    POWER_DOWN = 2
    POWER_CYCLE = 3


class PreTimeoutInterrupt(IntEnum):
    """Set Watchdog Timer byte 2 [6:4]."""

    NONE = 0
    SMI = 1
    NMI = 2
    MESSAGING = 3


#: Sensor type "Watchdog 2" (IPMI 2.0 table 42-3).
WATCHDOG_SENSOR_TYPE = 0x23
#: The BMC's watchdog sensor number; the SDR for it must carry the same number.
WATCHDOG_SENSOR_NUMBER = 0x01
#: Watchdog 2 event offsets (table 42-3): expiry by action, and the pre-timeout interrupt.
EXPIRY_OFFSET = {
    TimeoutAction.NONE: 0x00,  # timer expired, status only
    TimeoutAction.HARD_RESET: 0x01,
    TimeoutAction.POWER_DOWN: 0x02,
    TimeoutAction.POWER_CYCLE: 0x03,
}
TIMER_INTERRUPT_OFFSET = 0x08

_POWER_OP = {
    TimeoutAction.HARD_RESET: PowerOp.RESET,
    TimeoutAction.POWER_DOWN: PowerOp.OFF,
    TimeoutAction.POWER_CYCLE: PowerOp.CYCLE,
}

#: BMC's own generator ID (slave address 0x20, channel 0, LUN 0) and EvM revision 2.0.
_GENERATOR_ID = 0x0020
_EVM_REV = 0x04
_SENSOR_SPECIFIC = 0x6F  # assertion, sensor-specific event/reading type


@dataclass(frozen=True)
class WatchdogSettings:
    """What the last Set Watchdog Timer said."""

    timer_use: TimerUse
    dont_log: bool
    action: TimeoutAction
    pretimeout_interrupt: PreTimeoutInterrupt
    pretimeout_interval: int  # seconds
    initial_countdown: int  # 100 ms ticks


def watchdog_event(sensor_number: int, offset: int, interrupt: int, timer_use: int) -> bytes:
    """A 16-byte SEL record (type 02h) for a Watchdog 2 sensor event.

    Record ID and timestamp are left 0: the SEL assigns both when it adds
    the record.  Event data 1 says byte 2 is a sensor-specific extension
    (interrupt type [7:4], timer use [3:0], table 42-3) and byte 3 unused.
    """
    return struct.pack(
        "<HBIHBBBBBBB",
        0x0000,
        0x02,
        0,
        _GENERATOR_ID,
        _EVM_REV,
        WATCHDOG_SENSOR_TYPE,
        sensor_number,
        _SENSOR_SPECIFIC,
        0xC0 | offset,
        ((interrupt & 0x0F) << 4) | (timer_use & 0x0F),
        0xFF,
    )


class Watchdog:
    """One watchdog timer; ``bmc.parts["watchdog"]``."""

    def __init__(self, bmc: Any, *, sensor_number: int = WATCHDOG_SENSOR_NUMBER) -> None:
        self.bmc = bmc
        self.sensor_number = sensor_number
        self._power_on_defaults()

    def _power_on_defaults(self) -> None:
        #: None until the first Set Watchdog Timer: Reset then answers 0x80.
        self.settings: WatchdogSettings | None = None
        #: Timer use expiration flags, bit n = timer use n expired (section 27.7 byte 5).
        self.expiration_flags = 0
        self.running = False
        self._expires_at = 0.0
        self._stopped_countdown = 0
        self._pretimeout_done = False

    # -- commands ---------------------------------------------------------
    def set(self, now: float, settings: WatchdogSettings, *, dont_stop: bool, clear_flags: int) -> None:
        """Set Watchdog Timer (section 27.6).

        Without "don't stop" the timer stops.  With it, a running timer
        restarts from the new countdown and keeps running (a pending
        pre-timeout is re-armed); a stopped one stays stopped.
        """
        self.settings = settings
        self.expiration_flags &= ~clear_flags & 0x3E
        if dont_stop and self.running:
            self._start(now)
        else:
            self.running = False
            self._stopped_countdown = settings.initial_countdown

    def reset(self, now: float) -> bool:
        """Reset Watchdog Timer (section 27.5): (re)start from the initial countdown.

        False if the timer was never set (the command's CC 0x80).
        """
        if self.settings is None:
            return False
        self._start(now)
        return True

    def present_countdown(self, now: float) -> int:
        """The countdown in 100 ms ticks at ``now``, as Get Watchdog Timer reports it."""
        if not self.running:
            return self._stopped_countdown
        remaining = round((self._expires_at - now) * 10, 6)
        return max(0, math.ceil(remaining))

    # -- time -------------------------------------------------------------
    def next_deadline(self) -> float | None:
        if not self.running:
            return None
        if self._pretimeout_pending():
            return min(self._pretimeout_at(), self._expires_at)
        return self._expires_at

    def poll(self, now: float) -> None:
        if not self.running:
            return
        if self._pretimeout_pending() and now >= self._pretimeout_at():
            self._fire_pretimeout()
        if now >= self._expires_at:
            self._expire()

    def expire_now(self, now: float) -> bool:
        """Fault injection: the countdown reaches zero at ``now``, by the same path
        as ``poll``: a pending pre-timeout interrupt first, then the expiry.
        False (nothing happens) when the timer is not running."""
        if not self.running:
            return False
        self._expires_at = now
        self.poll(now)
        return True

    # -- what the rest of the BMC tells us -------------------------------
    def system_powered_off(self, now: float) -> None:
        """The system went off: stop counting (there is nothing left to reset)."""
        if self.running:
            self._stopped_countdown = self.present_countdown(now)
            self.running = False

    def cold_reset(self) -> None:
        """A BMC cold reset: back to power-on state, never set, flags clear."""
        self._power_on_defaults()

    # -- internals --------------------------------------------------------
    def _start(self, now: float) -> None:
        assert self.settings is not None
        self.running = True
        self._pretimeout_done = False
        self._expires_at = now + self.settings.initial_countdown / 10

    def _pretimeout_pending(self) -> bool:
        return (
            self.settings is not None
            and self.settings.pretimeout_interrupt != PreTimeoutInterrupt.NONE
            and not self._pretimeout_done
        )

    def _pretimeout_at(self) -> float:
        assert self.settings is not None
        return self._expires_at - self.settings.pretimeout_interval

    def _fire_pretimeout(self) -> None:
        s = self.settings
        assert s is not None
        self._pretimeout_done = True
        if not s.dont_log:
            self._log(TIMER_INTERRUPT_OFFSET)
        if s.pretimeout_interrupt == PreTimeoutInterrupt.NMI:
            self.bmc.emit(Power(PowerOp.NMI, "watchdog pre-timeout"))
        elif s.pretimeout_interrupt == PreTimeoutInterrupt.MESSAGING:
            messaging = self.bmc.parts.get("messaging")
            if messaging is not None:
                messaging.set_pretimeout()
            else:
                log.warning("watchdog pre-timeout: no messaging part to raise the flag")
        else:  # SMI: QEMU offers no way to inject one
            log.info("watchdog pre-timeout SMI: not deliverable to a QEMU guest; logged only")

    def _expire(self) -> None:
        s = self.settings
        assert s is not None
        self.running = False
        self._stopped_countdown = 0
        self.expiration_flags |= 1 << s.timer_use
        if not s.dont_log:
            self._log(EXPIRY_OFFSET[s.action])
        op = _POWER_OP.get(s.action)
        if op is None:
            return
        chassis = self.bmc.parts.get("chassis")
        if chassis is None:
            self.bmc.emit(Power(op, "watchdog expired"))
        elif not chassis.power_on:
            log.info("watchdog expired with the system off: %s not requested", op.value)
        else:
            chassis.request(op, RestartCause.WATCHDOG, why="watchdog expired")

    def _log(self, offset: int) -> None:
        s = self.settings
        assert s is not None
        record = watchdog_event(self.sensor_number, offset, s.pretimeout_interrupt, s.timer_use)
        sel = self.bmc.parts.get("sel")
        if sel is not None:
            sel.add(record)
        messaging = self.bmc.parts.get("messaging")
        if messaging is not None:
            messaging.post_event(record)


def create_part(bmc: Any, config: Any) -> Watchdog:
    """The watchdog part for ``bmc.parts["watchdog"]``; ``config`` (a BmcConfig) is not needed yet."""
    return Watchdog(bmc)
