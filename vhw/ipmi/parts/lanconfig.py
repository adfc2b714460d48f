"""LAN configuration parameters of the LAN channel (IPMI 2.0 sections 23.1-23.2, table 23-4).

The values are *reported*: vhw does not reconfigure a network when a client
sets the IP address; it remembers and reports what was set, as a BMC's flash
would.  Defaults come from the description's ``[bmc.lan_config]`` table
(``ip``, ``netmask``, ``gateway``, ``mac``, ``ip_source``, ``community``);
a parameter that was Set lives in the store (namespace "lan", one key per
parameter and set selector, data as hex) and wins over the description from
then on -- the same rule as the user table.

Supported parameters (the others answer 80h "parameter not supported"):
0 set in progress (volatile), 1 authentication type support (read only),
2 authentication type enables, 3 IP address, 4 IP address source, 5 MAC
address, 6 subnet mask, 7 IPv4 header parameters, 12/13 default gateway
address/MAC, 14/15 backup gateway address/MAC, 16 community string, 17
number of destinations (read only), 18 destination type and 19 destination
addresses (set selector 0..17's count), 20 VLAN ID, 21 VLAN priority, 22
cipher suite entry support (read only), 23 cipher suite entries (read only),
24 cipher suite privilege levels.

Two readers on the LAN side:

- ``auth_type_enables(priv) -> mask`` (parameter 2; bit 0 none, 2 MD5, 4
  straight password).  The LAN core keeps the live dict in
  ``bmc.parts["lan"].auth_type_enables`` (vhw.ipmi.parts.sessions); this part
  writes Set values into it and, once that context exists, loads the stored
  values into it on the next request (``poll``).
- ``cipher_suite_privileges() -> {suite id: max privilege}`` (parameter 24;
  0 means the entry is unused, i.e. the suite is refused).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from ...errors import DescriptionError
from ...tables import Table
from .set_in_progress import SetInProgress
from .sessions import DEFAULT_AUTH_MASK, SUPPORTED_AUTH_TYPES

STORE_NAMESPACE = "lan"
#: Parameter revision byte of Get LAN Configuration Parameters (section 23.2).
PARAMETER_REVISION = 0x11

# Completion codes of Get/Set LAN Configuration Parameters (sections 23.1/23.2).
CC_PARAMETER_NOT_SUPPORTED = 0x80
CC_READ_ONLY = 0x82


#: IPMI 1.5 authentication types the LAN core computes, and its default
#: enables (no "none" unless configured): one truth, in vhw.ipmi.parts.sessions.
AUTH_TYPE_SUPPORT = sum(1 << t for t in SUPPORTED_AUTH_TYPES)
DEFAULT_AUTH_ENABLES = DEFAULT_AUTH_MASK
#: Privilege levels of parameter 2's five bytes, in order (table 23-4).
AUTH_ENABLE_PRIVILEGES = (1, 2, 3, 4, 5)

#: Cipher suites offered when vhw.ipmi.wire.crypto is not there to say.
DEFAULT_CIPHER_SUITES = (0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17)
MAX_CIPHER_SUITES = 16

#: LAN alert destinations (parameter 17); selector 0 is the volatile one.
DESTINATIONS = 4

IP_SOURCES = {"unspecified": 0, "static": 1, "dhcp": 2, "bios": 3, "other": 4}
COMMUNITY_BYTES = 18

# Parameter numbers (table 23-4).
P_SET_IN_PROGRESS = 0
P_AUTH_SUPPORT = 1
P_AUTH_ENABLES = 2
P_IP = 3
P_IP_SOURCE = 4
P_MAC = 5
P_NETMASK = 6
P_IPV4_HEADER = 7
P_GATEWAY = 12
P_GATEWAY_MAC = 13
P_BACKUP_GATEWAY = 14
P_BACKUP_GATEWAY_MAC = 15
P_COMMUNITY = 16
P_DEST_COUNT = 17
P_DEST_TYPE = 18
P_DEST_ADDRESS = 19
P_VLAN_ID = 20
P_VLAN_PRIORITY = 21
P_CIPHER_SUPPORT = 22
P_CIPHER_ENTRIES = 23
P_CIPHER_PRIVILEGES = 24

#: Writable parameters with a fixed data length.
_LENGTHS = {
    P_AUTH_ENABLES: 5, P_IP: 4, P_IP_SOURCE: 1, P_MAC: 6, P_NETMASK: 4, P_IPV4_HEADER: 3,
    P_GATEWAY: 4, P_GATEWAY_MAC: 6, P_BACKUP_GATEWAY: 4, P_BACKUP_GATEWAY_MAC: 6,
    P_COMMUNITY: COMMUNITY_BYTES, P_DEST_TYPE: 4, P_DEST_ADDRESS: 13, P_VLAN_ID: 2,
    P_VLAN_PRIORITY: 1, P_CIPHER_PRIVILEGES: 9,
}
_READ_ONLY = frozenset({P_AUTH_SUPPORT, P_DEST_COUNT, P_CIPHER_SUPPORT, P_CIPHER_ENTRIES})
#: Parameters with a set selector (the destination selector).
_SELECTED = frozenset({P_DEST_TYPE, P_DEST_ADDRESS})
SUPPORTED = frozenset({0, *_LENGTHS, *_READ_ONLY})


class LanConfigError(Exception):
    """A Get/Set the spec refuses; ``cc`` is the completion code to answer."""

    def __init__(self, cc: int, why: str):
        self.cc = cc
        self.why = why
        super().__init__(f"0x{cc:02X}: {why}")


@dataclass(frozen=True)
class LanConfigSpec:
    """The ``[bmc.lan_config]`` table: the reported LAN settings' defaults."""

    ip: str = "10.0.2.100"
    netmask: str = "255.255.255.0"
    gateway: str = "10.0.2.2"
    mac: str = ""
    ip_source: str = "static"
    community: str = "public"

    @classmethod
    def from_dict(cls, d: Any, key: str, *, machine: str = "vhw") -> LanConfigSpec:
        d = {} if d is None else d
        Table(d, key).expect(("ip", "netmask", "gateway", "mac", "ip_source", "community"))
        for k, v in d.items():
            if not isinstance(v, str):
                raise DescriptionError(f"{key}.{k}", "must be a string")
        spec = cls(**{"mac": derive_mac(machine), **d})
        for k in ("ip", "netmask", "gateway"):
            try:
                ipaddress.IPv4Address(getattr(spec, k))
            except ValueError:
                raise DescriptionError(f"{key}.{k}", f"must be an IPv4 address like 10.0.2.100, not {getattr(spec, k)!r}") from None
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{spec.netmask}")
        except ValueError:
            raise DescriptionError(f"{key}.netmask", f"{spec.netmask!r} is not a contiguous subnet mask") from None
        try:
            parse_mac(spec.mac)
        except ValueError:
            raise DescriptionError(f"{key}.mac", f"must be a MAC address like 02:00:00:00:00:01, not {spec.mac!r}") from None
        if spec.ip_source not in IP_SOURCES:
            raise DescriptionError(f"{key}.ip_source", f"must be one of {', '.join(IP_SOURCES)}, not {spec.ip_source!r}")
        if len(spec.community.encode("ascii", "replace")) > COMMUNITY_BYTES or not spec.community.isascii():
            raise DescriptionError(f"{key}.community", f"must be ASCII, at most {COMMUNITY_BYTES} characters")
        return spec


def derive_mac(machine: str) -> str:
    """A stable, locally administered unicast MAC for a machine name."""
    h = bytearray(hashlib.sha256(f"vhw-bmc-mac/{machine}".encode()).digest()[:6])
    h[0] = (h[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in h)


def parse_mac(text: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(text)
    return bytes(int(p, 16) for p in parts)


def _cipher_suites() -> tuple[int, ...]:
    try:
        from ..wire.crypto import CIPHER_SUITES
    except Exception:  # the RMCP+ side is optional for this part
        return DEFAULT_CIPHER_SUITES
    return tuple(sorted(CIPHER_SUITES))[:MAX_CIPHER_SUITES]


class LanConfig:
    """The LAN configuration parameters of one LAN channel, persisted in the store."""

    def __init__(self, spec: LanConfigSpec | None = None, store: Any = None, *,
                 channel: int = 1, cipher_suites: tuple[int, ...] | None = None, bmc: Any = None):
        self.spec = spec or LanConfigSpec(mac=derive_mac("vhw"))
        self.store = store
        self.channel = channel
        self.bmc = bmc
        self.cipher_suites = tuple(cipher_suites if cipher_suites is not None else _cipher_suites())[:MAX_CIPHER_SUITES]
        self.set_in_progress = SetInProgress()
        s = self.spec
        self._defaults: dict[str, bytes] = {
            str(P_AUTH_ENABLES): bytes([DEFAULT_AUTH_ENABLES] * 5),
            str(P_IP): ipaddress.IPv4Address(s.ip).packed,
            str(P_IP_SOURCE): bytes([IP_SOURCES[s.ip_source]]),
            str(P_MAC): parse_mac(s.mac),
            str(P_NETMASK): ipaddress.IPv4Address(s.netmask).packed,
            # TTL 40h, flags 40h (don't fragment), precedence/TOS 10h: table 23-4's defaults.
            str(P_IPV4_HEADER): b"\x40\x40\x10",
            str(P_GATEWAY): ipaddress.IPv4Address(s.gateway).packed,
            str(P_GATEWAY_MAC): bytes(6),
            str(P_BACKUP_GATEWAY): bytes(4),
            str(P_BACKUP_GATEWAY_MAC): bytes(6),
            str(P_COMMUNITY): s.community.encode("ascii").ljust(COMMUNITY_BYTES, b"\x00"),
            str(P_VLAN_ID): b"\x00\x00",
            str(P_VLAN_PRIORITY): b"\x00",
            str(P_CIPHER_PRIVILEGES): b"\x00" + _pack_nibbles([4] * len(self.cipher_suites)),
        }
        for sel in range(DESTINATIONS + 1):
            # PET trap, no acknowledge, 3 s timeout, 3 retries; IPv4, gateway 0, 0.0.0.0.
            self._defaults[f"{P_DEST_TYPE}.{sel}"] = bytes([sel, 0x00, 3, 3])
            self._defaults[f"{P_DEST_ADDRESS}.{sel}"] = bytes([sel, 0x00, 0x00]) + bytes(10)
        self._volatile: dict[str, bytes] = {}

    # -- raw storage -------------------------------------------------------------
    def _key(self, param: int, selector: int) -> str:
        return f"{param}.{selector}" if param in _SELECTED else str(param)

    def _read(self, key: str) -> bytes:
        if key in self._volatile:
            return self._volatile[key]
        if self.store is not None:
            v = self.store.get(STORE_NAMESPACE, key)
            if v is not None:
                return bytes.fromhex(v)
        if key == str(P_AUTH_ENABLES):
            lan = self._lan_context()
            if lan is not None:
                return bytes(lan.auth_type_enables.get(p, DEFAULT_AUTH_ENABLES) for p in AUTH_ENABLE_PRIVILEGES)
        return self._defaults[key]

    def _write(self, key: str, value: bytes, *, volatile: bool = False) -> None:
        if volatile:
            self._volatile[key] = value
            return
        self._volatile.pop(key, None)
        if self.store is not None:
            self.store.put(STORE_NAMESPACE, key, value.hex())
        else:
            self._defaults[key] = value

    # -- the readers on the LAN side ---------------------------------------------
    def auth_type_enables(self, priv: int) -> int:
        """Parameter 2: the auth type mask enabled for privilege ``priv`` (1..5)."""
        if priv not in AUTH_ENABLE_PRIVILEGES:
            return 0
        return self._read(str(P_AUTH_ENABLES))[priv - 1]

    def cipher_suite_privileges(self) -> dict[int, int]:
        """Parameter 24: {cipher suite id: maximum privilege}; 0 marks an unused entry."""
        nibbles = _unpack_nibbles(self._read(str(P_CIPHER_PRIVILEGES))[1:])
        return {sid: nibbles[i] for i, sid in enumerate(self.cipher_suites)}

    def ip_address(self) -> str:
        return str(ipaddress.IPv4Address(self._read(str(P_IP))))

    def mac_address(self) -> bytes:
        return self._read(str(P_MAC))

    # -- the LAN core's live auth type enables -----------------------------------------
    def _lan_context(self):
        return self.bmc.parts.get("lan") if self.bmc is not None else None

    def attach_lan(self, lan) -> None:
        """A LAN context was just made: give it the stored auth type enables."""
        if self.store is not None and self.store.get(STORE_NAMESPACE, str(P_AUTH_ENABLES)) is not None:
            self._push_auth(self._read(str(P_AUTH_ENABLES)))

    def _push_auth(self, value: bytes) -> None:
        lan = self._lan_context()
        if lan is not None and isinstance(getattr(lan, "auth_type_enables", None), dict):
            for p, mask in zip(AUTH_ENABLE_PRIVILEGES, value, strict=False):
                lan.auth_type_enables[p] = mask

    # -- Get/Set LAN Configuration Parameters --------------------------------------------
    def get(self, param: int, set_selector: int = 0, block_selector: int = 0) -> bytes:
        """Parameter data for Get LAN Configuration Parameters (without the revision byte)."""
        if param not in SUPPORTED:
            raise LanConfigError(CC_PARAMETER_NOT_SUPPORTED, f"LAN parameter {param} not supported")
        if param == P_SET_IN_PROGRESS:
            return self.set_in_progress.get()
        if param == P_AUTH_SUPPORT:
            return bytes([AUTH_TYPE_SUPPORT])
        if param == P_DEST_COUNT:
            return bytes([DESTINATIONS])
        if param == P_CIPHER_SUPPORT:
            return bytes([len(self.cipher_suites)])
        if param == P_CIPHER_ENTRIES:
            return b"\x00" + bytes(self.cipher_suites)
        if param in _SELECTED:
            selector = set_selector & 0x0F
            if selector > DESTINATIONS:
                raise LanConfigError(0xCC, f"destination {selector} > {DESTINATIONS}")
            return self._read(self._key(param, selector))
        return self._read(str(param))

    def set(self, param: int, data: bytes) -> None:
        """Set LAN Configuration Parameters: 80h unsupported, 82h read only,
        81h claiming 'set in progress' when it is not 'set complete', C7h a
        wrong length, CCh a value outside the spec."""
        if param not in SUPPORTED:
            raise LanConfigError(CC_PARAMETER_NOT_SUPPORTED, f"LAN parameter {param} not supported")
        if param in _READ_ONLY:
            raise LanConfigError(CC_READ_ONLY, f"LAN parameter {param} is read only")
        if param == P_SET_IN_PROGRESS:
            self.set_in_progress.set(data)
            return
        want = _LENGTHS[param]
        if len(data) != want:
            raise LanConfigError(0xC7, f"LAN parameter {param} takes {want} bytes, got {len(data)}")
        data = bytes(data)
        key = str(param)
        volatile = False
        if param == P_AUTH_ENABLES:
            for i, mask in enumerate(data):
                if mask & ~AUTH_TYPE_SUPPORT & 0x3F or mask & 0xC0:
                    raise LanConfigError(0xCC, f"auth type enables byte {i + 1} ({mask:#04x}) names an unsupported type")
        elif param == P_IP_SOURCE:
            if data[0] & 0x0F > 4 or data[0] & 0xF0:
                raise LanConfigError(0xCC, f"IP address source {data[0]:#x}")
        elif param == P_MAC and data[0] & 0x01:
            raise LanConfigError(0xCC, "a multicast MAC address")
        elif param == P_NETMASK:
            try:
                ipaddress.IPv4Network(f"0.0.0.0/{ipaddress.IPv4Address(data)}")
            except ValueError:
                raise LanConfigError(0xCC, f"{ipaddress.IPv4Address(data)} is not a subnet mask") from None
        elif param == P_VLAN_ID:
            if data[1] & 0x70:
                raise LanConfigError(0xCC, "reserved VLAN ID bits set")
        elif param == P_VLAN_PRIORITY:
            if data[0] & 0xF8:
                raise LanConfigError(0xCC, "VLAN priority is 0..7")
        elif param == P_CIPHER_PRIVILEGES:
            nibbles = _unpack_nibbles(data[1:])
            for i, n in enumerate(nibbles[:len(self.cipher_suites)]):
                if n > 5:
                    raise LanConfigError(0xCC, f"cipher suite entry {i}: privilege {n:#x}")
        elif param in _SELECTED:
            selector = data[0] & 0x0F
            if selector > DESTINATIONS:
                raise LanConfigError(0xCC, f"destination {selector} > {DESTINATIONS}")
            key = self._key(param, selector)
            # Destination 0 is the volatile one (table 23-4, parameter 18).
            volatile = selector == 0
            data = bytes([selector]) + data[1:]
        self._write(key, data, volatile=volatile)
        if param == P_AUTH_ENABLES:
            self._push_auth(data)

    @property
    def revision(self) -> int:
        return PARAMETER_REVISION


def _pack_nibbles(values: list[int]) -> bytes:
    values = list(values) + [0] * (16 - len(values))
    return bytes((values[2 * i] & 0x0F) | ((values[2 * i + 1] & 0x0F) << 4) for i in range(8))


def _unpack_nibbles(data: bytes) -> list[int]:
    out: list[int] = []
    for b in data[:8]:
        out += [b & 0x0F, b >> 4]
    return out


def create_part(bmc, config) -> LanConfig | None:
    """The LAN configuration of the first LAN channel (none without one)."""
    channels = getattr(config, "channels", ()) or ()
    lan = next((c.number for c in channels if c.medium == "lan"), None)
    if lan is None:
        return None
    spec = getattr(config, "lan_config", None)
    return LanConfig(spec, bmc.store, channel=lan, bmc=bmc)
