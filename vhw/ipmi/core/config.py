"""What one BMC is: its identity, interfaces, channels and IPMB neighbours.

``BmcConfig.from_dict`` turns the ``[bmc]`` table of a machine description
into a validated, immutable configuration.  Every mistake is reported as a
``DescriptionError`` naming the exact key ("bmc.satellites[1].address"), and
unknown keys are mistakes too: a misspelt option silently ignored is a test
that silently tests the wrong thing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

from ...errors import DescriptionError
from ...tables import Table

from ..parts.channels import ACCESS_MODES, CHANNEL_MEDIA, PRIVILEGES, ChannelConfig
from ..parts.chassis import ChassisConfig
from ..parts.dcmi import DcmiConfig
from ..parts.fru import FruConfig
from ..wire.rmcpplus import RmcpPlusConfig
from ..parts.sol import SolSpec
from ..parts.lanconfig import LanConfigSpec
from ..parts.sel import SelConfig
from ..parts.sensors import SensorsConfig
from ..parts.serial import SerialConfig
from ..parts.users import UsersConfig

#: The BMC's own IPMB slave address (IPMI 2.0 section 5.5, table 5-4).
BMC_ADDRESS = 0x20

#: Namespace for GUIDs derived from a machine name (uuid5), so the same
#: machine always shows the same GUIDs and two machines never share one.
GUID_NAMESPACE = uuid.UUID("5b0c3d1e-6a2f-4c8e-9d71-0f1e2a3b4c5d")

#: Get Device ID "additional device support" bits (IPMI 2.0 table 20-2).
ADDITIONAL_SUPPORT_BITS = {
    "sensor": 0x01,
    "sdr_repository": 0x02,
    "sel": 0x04,
    "fru_inventory": 0x08,
    "ipmb_event_receiver": 0x10,
    "ipmb_event_generator": 0x20,
    "bridge": 0x40,
    "chassis": 0x80,
}

INTERFACES = ("kcs", "bt", "ssif")

#: System Info Parameters strings are stored in 16-byte blocks; 256 bytes is
#: well above the spec's minimum and what tools write.
SYSTEM_INFO_MAX_BYTES = 256


#: Get Device ID's manufacturer: vhw has no IANA Private Enterprise Number of
#: its own, so it answers with the one IANA set aside for documentation and
#: examples (RFC 5612 section 2), which ipmitool names "Example Enterprise
#: Number for Documentation Use" instead of the "Unknown" (0) of QEMU's
#: ipmi-bmc-sim.  A description sets its own (``manufacturer_id``).
VHW_MANUFACTURER_ID = 32473
#: vhw's product ID under that number: "vh".
VHW_PRODUCT_ID = 0x7668


@dataclass(frozen=True)
class DeviceIdentity:
    """What Get Device ID reports (IPMI 2.0 section 20.1, table 20-2)."""

    device_id: int = 0x20
    device_revision: int = 1
    provides_device_sdrs: bool = False
    firmware_major: int = 0
    #: Decimal 0..99; encoded as BCD on the wire (table 20-2, byte 5).
    firmware_minor: int = 1
    ipmi_version: int = 0x02
    #: What this BMC really implements: the chassis device (0x80), the SEL
    #: (0x04), FRU inventory (0x08), sensors (0x01) and the SDR repository
    #: (0x02).  Event-receiver bits are claimed only once their commands exist.
    additional_support: int = 0x80 | 0x04 | 0x08 | 0x01 | 0x02
    manufacturer_id: int = VHW_MANUFACTURER_ID
    product_id: int = VHW_PRODUCT_ID
    #: Auxiliary firmware revision (4 bytes) or None to omit it.
    aux_firmware: bytes | None = None


@dataclass(frozen=True)
class SatelliteConfig:
    """A management controller on an IPMB channel, reachable by Send Message."""

    address: int
    channel: int = 0
    identity: DeviceIdentity = field(default_factory=DeviceIdentity)


def _default_channels() -> tuple[ChannelConfig, ...]:
    return (ChannelConfig(0, "ipmb"), ChannelConfig(1, "lan"))


@dataclass(frozen=True)
class BmcConfig:
    identity: DeviceIdentity = field(default_factory=DeviceIdentity)
    device_guid: uuid.UUID = field(default_factory=lambda: derive_guid("vhw", "device"))
    system_guid: uuid.UUID = field(default_factory=lambda: derive_guid("vhw", "system"))
    #: System interfaces QEMU gives the guest, first one the default.
    interfaces: tuple[str, ...] = ("kcs",)
    channels: tuple[ChannelConfig, ...] = field(default_factory=_default_channels)
    satellites: tuple[SatelliteConfig, ...] = ()
    #: Initial System Info Parameters (IPMI 2.0 table 22-16a), "" for none.
    system_firmware_version: str = ""
    system_name: str = ""
    primary_os_name: str = ""
    #: The parts' own tables, each read by the module of its part; None in
    #: a config made without ``from_dict`` (the part then takes its defaults).
    chassis: ChassisConfig | None = None
    users: UsersConfig | None = None
    dcmi: DcmiConfig | None = None
    sel: SelConfig | None = None
    fru: FruConfig | None = None
    sensors: SensorsConfig | None = None
    #: [bmc.lan_config], and [bmc.sol] (None: no SOL serial port).
    lan_config: LanConfigSpec | None = None
    sol: SolSpec | None = None
    #: "HOST:PORT" the BMC also serves IPMI over LAN on (UDP; port 0: any free
    #: port), or None for no LAN listener (``vhw.ipmi.io.lan_server``).
    lan: str | None = None
    #: [bmc.rmcpplus]: cipher suites, anonymous login, K_G.
    rmcpplus: RmcpPlusConfig | None = None
    #: [bmc.serial]: the serial channel, or None for none.
    serial: SerialConfig | None = None

    def channel(self, number: int) -> ChannelConfig | None:
        return next((c for c in self.channels if c.number == number), None)

    def satellite(self, channel: int, address: int) -> SatelliteConfig | None:
        return next((s for s in self.satellites if s.channel == channel and s.address == address), None)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, key: str = "bmc", *, machine: str = "vhw") -> BmcConfig:
        """Validate a description table; ``machine`` seeds the default GUIDs."""
        r = Table(d, key)
        identity = _identity(r, defaults=DeviceIdentity())
        device_guid = r.guid("device_guid", derive_guid(machine, "device"))
        system_guid = r.guid("system_guid", derive_guid(machine, "system"))
        interfaces = tuple(r.list_of_choices("interfaces", ["kcs"], INTERFACES))
        if not interfaces:
            raise DescriptionError(r.key("interfaces"), "must name at least one of " + ", ".join(INTERFACES))
        channels = _channels(r)
        satellites = _satellites(r, channels)
        strings = {}
        for name in ("system_firmware_version", "system_name", "primary_os_name"):
            strings[name] = r.string(name, "")
            if len(_system_info_bytes(strings[name])) > SYSTEM_INFO_MAX_BYTES - 2:
                raise DescriptionError(r.key(name), f"longer than {SYSTEM_INFO_MAX_BYTES - 2} bytes")
        chassis = _chassis(r)
        users = _users(r)
        dcmi = _dcmi(r, machine)
        sel = _sel(r)
        fru = _fru(r)
        sensors = _sensors(r)
        lan_config = LanConfigSpec.from_dict(r.raw("lan_config", None), r.key("lan_config"), machine=machine)
        sol = SolSpec.from_dict(r.raw("sol", None), r.key("sol"))
        lan = _lan_address(r)
        rmcpplus = RmcpPlusConfig.from_dict(r.raw("rmcpplus", None), r.key("rmcpplus"))
        serial = SerialConfig.from_dict(r.raw("serial", None), r.key("serial")) if r.has("serial") else None
        r.finish()
        return cls(
            identity=identity,
            serial=serial,
            lan=lan,
            rmcpplus=rmcpplus,
            device_guid=device_guid,
            system_guid=system_guid,
            interfaces=interfaces,
            channels=channels,
            satellites=satellites,
            chassis=chassis,
            users=users,
            dcmi=dcmi,
            sel=sel,
            fru=fru,
            sensors=sensors,
            lan_config=lan_config,
            sol=sol,
            **strings,
        )


def _lan_address(r: Table) -> str | None:
    """``lan = "127.0.0.1:9623"``: where the BMC listens for IPMI over LAN (UDP)."""
    v = r.raw("lan", None)
    if v is None:
        return None
    if not isinstance(v, str):
        raise DescriptionError(r.key("lan"), 'must be a string "HOST:PORT"')
    host, sep, port = v.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host.strip("[]"):
        raise DescriptionError(r.key("lan"), f'must be "HOST:PORT" (port 0..65535), not {v!r}')
    return v


def derive_guid(machine: str, role: str) -> uuid.UUID:
    """A stable GUID for ``role`` ("device", "system") of a named machine."""
    return uuid.uuid5(GUID_NAMESPACE, f"{machine}/{role}")


def _system_info_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


# -- validation helpers ---------------------------------------------------------


def _identity(r: Table, defaults: DeviceIdentity) -> DeviceIdentity:
    support = defaults.additional_support
    if r.has("additional_support"):
        names = r.list_of_choices("additional_support", [], ADDITIONAL_SUPPORT_BITS)
        support = 0
        for n in names:
            support |= ADDITIONAL_SUPPORT_BITS[n]
    aux = defaults.aux_firmware
    if r.has("aux_firmware"):
        v = r.raw("aux_firmware", None)
        if not (isinstance(v, list) and len(v) == 4 and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in v)):
            raise DescriptionError(r.key("aux_firmware"), "must be a list of 4 bytes (0..255)")
        aux = bytes(v)
    return DeviceIdentity(
        device_id=r.integer("device_id", defaults.device_id, 0, 0xFF),
        device_revision=r.integer("device_revision", defaults.device_revision, 0, 0x0F),
        provides_device_sdrs=r.boolean("provides_device_sdrs", defaults.provides_device_sdrs),
        firmware_major=r.integer("firmware_major", defaults.firmware_major, 0, 0x7F),
        firmware_minor=r.integer("firmware_minor", defaults.firmware_minor, 0, 99),
        ipmi_version=r.integer("ipmi_version", defaults.ipmi_version, 0, 0xFF),
        additional_support=support,
        manufacturer_id=r.integer("manufacturer_id", defaults.manufacturer_id, 0, 0xFFFFF),
        product_id=r.integer("product_id", defaults.product_id, 0, 0xFFFF),
        aux_firmware=aux,
    )


def _channels(r: Table) -> tuple[ChannelConfig, ...]:
    readers = r.tables("channels")
    if readers is None:
        return _default_channels()
    out: list[ChannelConfig] = []
    for cr in readers:
        if not cr.has("number"):
            raise DescriptionError(cr.key("number"), "required: 0..0x0B (0x0E and 0x0F are not configurable)")
        number = cr.integer("number", 0, 0, 0x0B)
        if any(c.number == number for c in out):
            raise DescriptionError(cr.key("number"), f"channel {number} defined twice")
        if not cr.has("medium"):
            raise DescriptionError(cr.key("medium"), "required: " + " or ".join(CHANNEL_MEDIA))
        medium = cr.choice("medium", "ipmb", CHANNEL_MEDIA)
        if medium == "ipmb" and (cr.has("access_mode") or cr.has("privilege_limit")):
            bad = "access_mode" if cr.has("access_mode") else "privilege_limit"
            raise DescriptionError(cr.key(bad), "only session-based (lan) channels have channel access settings")
        access_mode = ACCESS_MODES[cr.choice("access_mode", "always", ACCESS_MODES)]
        privilege_limit = PRIVILEGES[cr.choice("privilege_limit", "administrator", PRIVILEGES)]
        cr.finish()
        out.append(ChannelConfig(number, medium, access_mode, privilege_limit))
    return tuple(out)


def _satellites(r: Table, channels: tuple[ChannelConfig, ...]) -> tuple[SatelliteConfig, ...]:
    readers = r.tables("satellites") or []
    out: list[SatelliteConfig] = []
    for sr in readers:
        if not sr.has("address"):
            raise DescriptionError(sr.key("address"), "required: an even IPMB slave address 0x02..0xFE")
        address = sr.raw("address", None)
        if isinstance(address, bool) or not isinstance(address, int) or not (0x02 <= address <= 0xFE) or address & 1:
            raise DescriptionError(sr.key("address"), "must be an even IPMB slave address 0x02..0xFE")
        if address == BMC_ADDRESS:
            raise DescriptionError(sr.key("address"), f"0x{BMC_ADDRESS:02X} is the BMC's own address")
        channel = sr.integer("channel", 0, 0, 0x0B)
        ch = next((c for c in channels if c.number == channel), None)
        if ch is None or ch.medium != "ipmb":
            raise DescriptionError(sr.key("channel"), f"channel {channel} is not an IPMB channel of this BMC")
        if any(s.channel == channel and s.address == address for s in out):
            raise DescriptionError(sr.key("address"), f"address 0x{address:02X} used twice on channel {channel}")
        identity = _identity(sr, defaults=DeviceIdentity(device_id=0, additional_support=0))
        sr.finish()
        out.append(SatelliteConfig(address=address, channel=channel, identity=identity))
    return tuple(out)


def _chassis(r: Table) -> ChassisConfig:
    table = r.raw("chassis", {})
    return ChassisConfig.from_dict(table, r.key("chassis"))


def _sel(r: Table) -> SelConfig:
    return SelConfig.from_dict(r.raw("sel", {}), r.key("sel"))


def _fru(r: Table) -> FruConfig:
    if not r.has("fru"):
        return FruConfig()
    return FruConfig.from_dict(r.raw("fru", {}), r.key("fru"))


def _users(r: Table) -> UsersConfig:
    return UsersConfig.from_list(r.raw("users", None), r.key("users"))


def _dcmi(r: Table, machine: str) -> DcmiConfig:
    return DcmiConfig.from_dict(r.raw("dcmi", None), r.key("dcmi"), machine=machine)


def _sensors(r: Table) -> SensorsConfig:
    return SensorsConfig.from_list(r.raw("sensors", None), r.key("sensors"))
