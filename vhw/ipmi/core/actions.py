"""What the BMC model asks the outside world to do.

The model queues these (``Bmc.emit``); a transport or the machine layer takes
them (``Bmc.take_actions``) and acts: the extern transport turns attention and
interrupt changes into control commands, the power port turns power requests
into QMP commands or a QEMU relaunch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class AttentionState(Enum):
    """The SMS_ATN level the system interfaces should show."""

    NONE = "none"
    ATTN = "attn"
    ATTN_IRQ = "attn_irq"


class PowerOp(Enum):
    """Operations of the power port (one port, two adapters: QMP and the launcher, or extern control commands)."""

    OFF = "off"  # hard power down
    ON = "on"  # power up (relaunch QEMU when it is gone)
    CYCLE = "cycle"  # off, then on after the chassis' power-cycle interval
    RESET = "reset"  # hard reset
    NMI = "nmi"  # pulse diagnostic interrupt
    SOFT_OFF = "soft_off"  # ACPI power button (soft shutdown)


@dataclass(frozen=True)
class Attention:
    state: AttentionState


@dataclass(frozen=True)
class InterruptEnable:
    """Mirror of BMC Global Enables bit 0 (receive message queue interrupt)."""

    enabled: bool


@dataclass(frozen=True)
class Power:
    op: PowerOp
    #: Why, for logs and traces ("chassis control", "watchdog expired", ...).
    cause: str = ""


Action = Attention | InterruptEnable | Power
