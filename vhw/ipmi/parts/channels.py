"""The BMC's channels: what Get Channel Info reports and Channel Access holds.

Channel numbers (IPMI 2.0 section 6.3, table 6-1): 0 is the primary IPMB,
1..0Bh are implementation-specific (here: configured IPMB or LAN channels),
0Eh means "the channel this request came in on", 0Fh is the system
interface.  Session-less channels (IPMB, the system interface) have no
channel access settings: Set/Get Channel Access answer 82h for them.
LAN channels keep a non-volatile and a volatile (active) setting apart, as
the spec and the measured ipmi_sim do (sections 22.22-22.23).  The
non-volatile one lives in the store (namespace "channels"); at every start
the volatile one is loaded from it, as a BMC does after a power up or reset
(section 22.22: volatile settings are "cleared" to the non-volatile ones).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import IntEnum
from typing import Any
from collections.abc import Callable, Iterable

from ..core.bmc import PRESENT_CHANNEL, SYSTEM_INTERFACE

#: IANA Enterprise Number of the IPMI forum (7154), used for the standard
#: channel protocol types (Get Channel Info bytes 6:8, table 22-29).
IPMI_IANA = 7154


#: The ``[[bmc.channels]]`` values (the description's words for tables 6-3,
#: 22-28 and 6-1).
CHANNEL_MEDIA = ("ipmb", "lan")
ACCESS_MODES = {"disabled": 0, "pre_boot": 1, "always": 2, "shared": 3}
PRIVILEGES = {"callback": 1, "user": 2, "operator": 3, "administrator": 4, "oem": 5}


@dataclass(frozen=True)
class ChannelConfig:
    """One IPMB or LAN channel (channel 0Fh, the system interface, is implicit)."""

    number: int
    medium: str
    #: Non-volatile defaults for Set/Get Channel Access (LAN channels only).
    access_mode: int = ACCESS_MODES["always"]
    privilege_limit: int = PRIVILEGES["administrator"]


class Medium(IntEnum):
    """Channel medium types (IPMI 2.0 table 6-3)."""

    IPMB = 0x01
    LAN_802_3 = 0x04
    SYSTEM_INTERFACE = 0x0C


class Protocol(IntEnum):
    """Channel protocol types (IPMI 2.0 table 6-2)."""

    IPMB = 0x01
    IPMI_SMBUS = 0x04
    KCS = 0x05
    SMIC = 0x06
    BT_10 = 0x07
    BT_15 = 0x08


class SessionSupport(IntEnum):
    """Get Channel Info byte 5 [7:6]."""

    SESSIONLESS = 0
    SINGLE = 1
    MULTI = 2
    SESSION_BASED = 3


class AccessMode(IntEnum):
    """Channel access modes, bits [2:0] of Set/Get Channel Access byte 2."""

    DISABLED = 0
    PRE_BOOT = 1
    ALWAYS = 2
    SHARED = 3


#: System interface protocol per configured interface type.  SSIF is IPMI
#: over SMBus (protocol 4), BT on IPMI >= 1.5 is BT-15.
INTERFACE_PROTOCOL = {"kcs": Protocol.KCS, "bt": Protocol.BT_15, "ssif": Protocol.IPMI_SMBUS}

#: Get Channel Info auxiliary bytes for channel 0Fh: SMS interrupt type and
#: event message buffer interrupt type.  60h = "assigned by ACPI / Plug and
#: Play BIOS" (the ISA KCS/BT IRQ comes from SMBIOS/ACPI); FFh = none (SSIF
#: has no interrupt in QEMU, docs/ipmi-extern.md section 9).
SYSTEM_INTERFACE_AUX = {"kcs": b"\x60\x60", "bt": b"\x60\x60", "ssif": b"\xff\xff"}

#: LAN channels support these access modes; "shared" only means something
#: for a serial port BIOS shares with the BMC, so it answers 83h.
LAN_ACCESS_MODES = frozenset({AccessMode.DISABLED, AccessMode.PRE_BOOT, AccessMode.ALWAYS})


@dataclass(frozen=True)
class ChannelAccess:
    access_mode: AccessMode = AccessMode.ALWAYS
    privilege_limit: int = 4
    alerting_disabled: bool = False
    per_message_auth_disabled: bool = False
    user_level_auth_disabled: bool = False


@dataclass(frozen=True)
class ChannelInfo:
    number: int
    medium: Medium
    protocol: Protocol
    session_support: SessionSupport
    active_sessions: int
    vendor_id: int
    aux: bytes


@dataclass
class Channel:
    number: int
    medium: Medium
    non_volatile: ChannelAccess | None = None
    volatile: ChannelAccess | None = None

    @property
    def sessionless(self) -> bool:
        return self.medium != Medium.LAN_802_3

    @property
    def supported_access_modes(self) -> frozenset[AccessMode]:
        return LAN_ACCESS_MODES if not self.sessionless else frozenset()


class Channels:
    """The channel table of one BMC plus per-channel access settings."""

    def __init__(self, configs: Iterable[ChannelConfig], interfaces: Iterable[str], store: Any = None):
        self.interfaces = tuple(interfaces) or ("kcs",)
        #: vhw.store.Store for the non-volatile settings; None keeps them in memory.
        self.store = store
        saved = store.items(STORE_NAMESPACE) if store is not None else {}
        self._channels: dict[int, Channel] = {}
        for c in configs:
            if c.medium == "lan":
                nv = ChannelAccess(AccessMode(c.access_mode), c.privilege_limit)
                if str(c.number) in saved:
                    nv = _access_from_json(saved[str(c.number)])
                self._channels[c.number] = Channel(c.number, Medium.LAN_802_3, nv, nv)
            else:
                self._channels[c.number] = Channel(c.number, Medium.IPMB)
        self._channels[SYSTEM_INTERFACE] = Channel(SYSTEM_INTERFACE, Medium.SYSTEM_INTERFACE)
        #: How many sessions are active on a channel; the session layer
        #: replaces this when it exists.
        self.active_sessions: Callable[[int], int] = lambda channel: 0

    def numbers(self) -> list[int]:
        return sorted(self._channels)

    def resolve(self, number: int, present: int) -> Channel | None:
        """The channel ``number`` names, 0Eh meaning ``present``; None if absent."""
        if number == PRESENT_CHANNEL:
            number = present
        return self._channels.get(number)

    def info(self, channel: Channel, interface: str) -> ChannelInfo:
        """Get Channel Info (22.24); ``interface`` is the asker's, for 0Fh."""
        if channel.medium == Medium.SYSTEM_INTERFACE:
            iface = interface if interface in INTERFACE_PROTOCOL else self.interfaces[0]
            return ChannelInfo(channel.number, channel.medium, INTERFACE_PROTOCOL[iface],
                               SessionSupport.SESSIONLESS, 0, IPMI_IANA, SYSTEM_INTERFACE_AUX[iface])
        if channel.medium == Medium.LAN_802_3:
            count = max(0, min(0x3F, self.active_sessions(channel.number)))
            return ChannelInfo(channel.number, channel.medium, Protocol.IPMB,
                               SessionSupport.MULTI, count, IPMI_IANA, b"\x00\x00")
        return ChannelInfo(channel.number, channel.medium, Protocol.IPMB,
                           SessionSupport.SESSIONLESS, 0, IPMI_IANA, b"\x00\x00")

    def access(self, channel: Channel, *, volatile: bool) -> ChannelAccess:
        value = channel.volatile if volatile else channel.non_volatile
        if value is None:
            raise ValueError(f"channel {channel.number} is session-less: no channel access")
        return value

    def set_access(self, channel: Channel, access: ChannelAccess, *, volatile: bool) -> None:
        if channel.sessionless:
            raise ValueError(f"channel {channel.number} is session-less: no channel access")
        if volatile:
            channel.volatile = access
        else:
            channel.non_volatile = access
            if self.store is not None:
                self.store.put(STORE_NAMESPACE, str(channel.number), _access_to_json(access))

    def bmc_restart(self) -> None:
        """A BMC cold reset: volatile settings come back from non-volatile ones."""
        for ch in self._channels.values():
            if ch.non_volatile is not None:
                ch.volatile = replace(ch.non_volatile)

    def cold_reset(self) -> None:
        """Cold Reset (20.2) restarts the BMC: section 22.22's volatile reload."""
        self.bmc_restart()


STORE_NAMESPACE = "channels"


def _access_to_json(access: ChannelAccess) -> dict:
    d = asdict(access)
    d["access_mode"] = int(access.access_mode)
    return d


def _access_from_json(d: dict) -> ChannelAccess:
    return ChannelAccess(AccessMode(int(d["access_mode"])), int(d["privilege_limit"]),
                         bool(d["alerting_disabled"]), bool(d["per_message_auth_disabled"]),
                         bool(d["user_level_auth_disabled"]))
