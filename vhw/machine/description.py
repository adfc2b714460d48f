"""The machine description: one TOML file says what QEMU runs and with what.

```toml
[machine]
name = "demo"            # used in logs and state directories
guest = "linux-x86"      # a guest image (vhw guest list)
memory = 256             # MiB
cpus = 1
accel = "tcg"            # "tcg" (default), "kvm" or "auto": KVM only if a probe proves it works
type = "q35"             # QEMU machine: "q35" or "pc" (x86 guests); "sun4u"
                         # (linux-sparc64, the default there) or a sun4m
                         # machine such as "SS-5" (linux-sparc32's default)
firmware = "qboot"       # "qboot" or "seabios"
append = ""              # extra kernel command line
modules = []             # extra guest kernel modules loaded at boot
boot-timeout = 60        # seconds until the guest is ready (agent READY or logged in)
access = "agent"         # how vhw reaches the guest: "agent" (virtio-serial, linux-x86's
                         # default) or "console" (log in on the serial console: the only
                         # way into the downloaded FreeBSD, illumos and NetBSD guests)
state = "state"          # optional: keep the BMC's non-volatile state in
                         # state/<name>.db (SQLite); default: in memory only

[bmc]                    # optional: a BMC behind the guest's IPMI interfaces
backend = "vhw"          # "vhw" (this process), "qemu" (QEMU's ipmi-bmc-sim),
                         # or "extern" (a BMC listening at `address`, e.g. ipmi_sim)
interfaces = ["kcs"]     # any of "kcs", "bt", "ssif"

[[i2o]]                  # optional, repeatable: an I2O IOP (PCI class 0E0001)
slot = 16                # PCI slot on bus 0 (default 16, 17, ... in order)
[[i2o.disk]]             # one block-storage DDM per disk image
image = "disk0.img"      # raw image; relative to the current directory
size = 64                # MiB: create the image (sparse) when it does not exist
cache = "write-through"  # or "write-back" (flushed by BsaCacheFlush and at stop)
block-size = 512
read-only = false

[prom]                   # optional, SPARC machines only: the EEPROM
mac = "52:54:00:12:34:56"  # IDPROM MAC (QEMU takes it from the NIC)
[prom.options]           # defaults for options the store does not hold yet
"auto-boot?" = "true"    # (the store, edited by `vhw prom` and by guests, wins)

[[fault]]                # optional, repeatable: an injected fault (vhw.faults, docs/faults.md)
device = "bmc"           # "bmc", "iop" or "prom"
action = "completion-code"  # bmc: delay drop completion-code corrupt-checksum
                         #      disconnect flood-events hold-attention expire-watchdog
                         # iop: delay withhold fail exhaust-frames; prom: refuse-write
netfn = 6                # what it matches (absent: anything): bmc netfn cmd interface,
cmd = 1                  # iop iop function tid, prom name
cc = 0xC0                # the action's parameters: seconds cc events status detail
count = 2                # how many matching requests (default 1) or "always"
```

Every error names the key and says why (DescriptionError).  The rest of the
[bmc] table is the BMC's own configuration (vhw.ipmi.core.config.BmcConfig).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DescriptionError, GuestMismatch
from ..tables import Table

INTERFACES = ("kcs", "bt", "ssif")
X86_TYPES = ("q35", "pc")
#: SPARC machines vhw runs (the EEPROM is the NVRAM codec's: vhw.prom.nvram).
SPARC_TYPES = ("sun4u", "SS-5", "SS-4", "LX", "SPARCClassic", "SPARCbook", "Voyager", "SS-10", "SS-20",
               "SS-600MP")
#: The machine a guest boots on unless ``type`` says otherwise.
DEFAULT_TYPES = {"linux-sparc64": "sun4u", "linux-sparc32": "SS-5"}
BMC_BACKENDS = ("vhw", "qemu", "extern")


@dataclass(frozen=True)
class MachineSpec:
    name: str = "vhw"
    guest: str = "linux-x86"
    memory: int = 256
    cpus: int = 1
    accel: str = "tcg"
    type: str = "q35"
    firmware: str = "qboot"
    append: str = ""
    modules: tuple[str, ...] = ()
    boot_timeout: float = 60.0
    #: Directory for non-volatile device state (<name>.db in it); None = in memory.
    state: str | None = None
    #: "agent" or "console": how vhw runs commands in the guest (ACCESS).
    access: str = "agent"


#: Ways into a guest: the vhw agent on a virtio-serial port, or a login on the serial console.
ACCESS = ("agent", "console")
#: Guests that carry the vhw agent; every other guest is reached over its console.
AGENT_GUESTS = ("linux-x86",)


@dataclass(frozen=True)
class GuestDefaults:
    """What a guest boots with unless the description says otherwise."""

    type: str = "q35"
    memory: int = 256
    firmware: str = "qboot"
    boot_timeout: float = 60.0
    #: Boots its own disk through the BIOS (downloaded images), not -kernel.
    disk: bool = False


def guest_defaults(guest: str) -> GuestDefaults:
    if guest in DEFAULT_TYPES:
        return GuestDefaults(type=DEFAULT_TYPES[guest], memory=128 if guest == "linux-sparc32" else 256)
    from ..guests.remote import REMOTE_GUESTS

    recipe = REMOTE_GUESTS.get(guest)
    if recipe is not None:
        # qboot only boots -kernel; a disk needs SeaBIOS (OpenBIOS on sun4u).
        return GuestDefaults(type=recipe.machine_type, memory=recipe.memory, firmware="seabios",
                             boot_timeout=recipe.boot_timeout, disk=True)
    return GuestDefaults()


@dataclass(frozen=True)
class BmcSpec:
    backend: str = "vhw"
    interfaces: tuple[str, ...] = ("kcs",)
    #: For backend "extern": "HOST:PORT" or "unix:PATH" of a listening BMC.
    address: str | None = None
    #: For backend "vhw": the BMC configuration (vhw.ipmi.core.config.BmcConfig).
    config: Any = None


@dataclass(frozen=True)
class DiskSpec:
    """A disk image behind one block-storage DDM of an IOP."""

    image: str
    #: MiB; create a sparse image of this size when the file does not exist.
    size: int | None = None
    write_back: bool = False
    block_size: int = 512
    read_only: bool = False


#: Default PCI IDs of an IOP; generic I2O drivers match the class code only.
#: 1234h is the ID QEMU's own experimental devices (edu) use, not a
#: registered vendor.
I2O_VENDOR_ID = 0x1234
I2O_DEVICE_ID = 0x0E01


@dataclass(frozen=True)
class I2oSpec:
    """One I2O IOP served to QEMU's x-pci-proxy-dev."""

    slot: int
    disks: tuple[DiskSpec, ...] = ()
    vendor_id: int = I2O_VENDOR_ID
    device_id: int = I2O_DEVICE_ID


@dataclass(frozen=True)
class PromSpec:
    """A SPARC machine's EEPROM defaults (vhw.prom.options keeps the truth)."""

    mac: str = "52:54:00:12:34:56"
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Description:
    machine: MachineSpec = field(default_factory=MachineSpec)
    bmc: BmcSpec | None = None
    i2o: tuple[I2oSpec, ...] = ()
    prom: PromSpec | None = None
    source: str = "<defaults>"
    #: [[fault]] tables (vhw.faults.FaultSpec), in force from the start.
    faults: tuple = ()


def _parse_machine(data: Any, source: str) -> MachineSpec:
    t = Table(data, "machine", source)
    t.known = ("name", "guest", "memory", "cpus", "accel", "type", "firmware", "append", "modules", "boot-timeout",
               "state", "access")
    name = t.take("name", "vhw", str)
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise t.fail("name", f"must be letters, digits, '-', '_' or '.'; got {name!r}")
    guest = t.take("guest", "linux-x86", str)
    defaults = guest_defaults(guest)
    spec = MachineSpec(
        name=name,
        guest=guest,
        memory=t.int_range("memory", defaults.memory, 64, 65536, " MiB"),
        cpus=t.int_range("cpus", 1, 1, 64),
        accel=t.choice("accel", "tcg", ("tcg", "kvm", "auto")),
        type=t.choice("type", defaults.type, X86_TYPES + SPARC_TYPES),
        firmware=t.choice("firmware", defaults.firmware, ("qboot", "seabios")),
        append=t.take("append", "", str),
        modules=t.str_list("modules", ()),
        boot_timeout=float(t.take("boot-timeout", defaults.boot_timeout, (int, float))),
        state=t.take("state", None, str),
        access=t.choice("access", "agent" if guest in AGENT_GUESTS else "console", ACCESS),
    )
    if spec.access == "agent" and guest not in AGENT_GUESTS:
        raise t.fail("access", f"guest {guest} has no vhw agent; it is reached over its console "
                               '(access = "console")')
    if spec.state is not None and not spec.state:
        raise t.fail("state", "must name a directory (relative to the current directory), not be empty")
    if defaults.disk and spec.firmware == "qboot":
        raise t.fail("firmware", f"guest {guest} boots its own disk, which qboot cannot; use seabios")
    sparc_guest = defaults.type in SPARC_TYPES
    if sparc_guest and spec.type not in SPARC_TYPES:
        raise t.fail("type", f"guest {guest} is a SPARC guest: use one of {', '.join(SPARC_TYPES)}")
    if not sparc_guest and spec.type in SPARC_TYPES:
        raise t.fail("type", f"{spec.type} is a SPARC machine; guest {guest} needs {' or '.join(X86_TYPES)}")
    if spec.boot_timeout <= 0:
        raise t.fail("boot-timeout", f"must be positive; got {spec.boot_timeout}")
    t.finish()
    return spec


def _parse_bmc(data: Any, machine: MachineSpec, source: str) -> BmcSpec:
    t = Table(data, "bmc", source)
    backend = t.choice("backend", "vhw", BMC_BACKENDS)
    address = t.take("address", None, str)
    if backend == "extern" and not address:
        raise t.fail("address", 'is required with backend = "extern" ("HOST:PORT" or "unix:PATH")')
    if backend != "extern" and address is not None:
        raise t.fail("address", 'is only meaningful with backend = "extern"')
    interfaces = t.str_list("interfaces", ("kcs",))
    if not interfaces:
        raise t.fail("interfaces", f"must name at least one of {', '.join(INTERFACES)}")
    for i, name in enumerate(interfaces):
        if name not in INTERFACES:
            raise t.fail(f"interfaces[{i}]", f"must be one of {', '.join(INTERFACES)}; got {name!r}")
    if len(set(interfaces)) != len(interfaces):
        raise t.fail("interfaces", "names an interface twice")
    config = None
    if backend == "vhw":
        from ..ipmi.core.config import BmcConfig

        rest = dict(t.data)
        rest["interfaces"] = list(interfaces)
        try:
            config = BmcConfig.from_dict(rest, "bmc", machine=machine.name)
        except DescriptionError as e:
            raise DescriptionError(e.key, e.reason, source=source) from None
        t.data.clear()
    else:
        t.known = ("backend", "address", "interfaces")
        t.finish()
    return BmcSpec(backend=backend, interfaces=interfaces, address=address, config=config)


#: PCI slots an IOP may use on bus 0 (q35 keeps 0 and 0x1F for itself).
I2O_SLOTS = (1, 0x1E)
I2O_FIRST_SLOT = 0x10


def _parse_disk(data: Any, path: str, source: str) -> DiskSpec:
    t = Table(data, path, source)
    t.known = ("image", "size", "cache", "block-size", "read-only")
    image = t.take("image", None, str)
    if not image:
        raise t.fail("image", "is required: the path of a raw disk image")
    size = t.take("size", None, int)
    if size is not None and not 1 <= size <= 1 << 20:
        raise t.fail("size", f"must be between 1 and {1 << 20} MiB; got {size}")
    block_size = t.take("block-size", 512, int)
    if block_size not in (512, 1024, 2048, 4096):
        raise t.fail("block-size", f"must be 512, 1024, 2048 or 4096; got {block_size}")
    spec = DiskSpec(image=image, size=size,
                    write_back=t.choice("cache", "write-through", ("write-through", "write-back")) == "write-back",
                    block_size=block_size, read_only=t.take("read-only", False, bool))
    t.finish()
    return spec


def _parse_i2o(data: Any, source: str) -> tuple[I2oSpec, ...]:
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DescriptionError("i2o", "must be an array of tables ([[i2o]])", source=source)
    specs: list[I2oSpec] = []
    for i, item in enumerate(data):
        t = Table(item, f"i2o[{i}]", source)
        t.known = ("slot", "disk", "vendor-id", "device-id")
        slot = t.int_range("slot", I2O_FIRST_SLOT + i, *I2O_SLOTS)
        if any(s.slot == slot for s in specs):
            raise t.fail("slot", f"PCI slot {slot} is already used by another IOP")
        disks_data = t.take("disk", [], (list, dict))
        if isinstance(disks_data, dict):
            disks_data = [disks_data]
        disks = tuple(_parse_disk(d, f"{t.path}.disk[{j}]", source) for j, d in enumerate(disks_data))
        if len(disks) > 16:
            raise t.fail("disk", f"at most 16 disks per IOP; got {len(disks)}")
        specs.append(I2oSpec(slot=slot, disks=disks, vendor_id=t.int_range("vendor-id", I2O_VENDOR_ID, 1, 0xFFFE),
                             device_id=t.int_range("device-id", I2O_DEVICE_ID, 0, 0xFFFF)))
        t.finish()
    return tuple(specs)


def parse_description(data: dict, source: str = "<description>") -> Description:
    """Validate a parsed TOML document into a Description."""
    top = Table(data, "", source)
    top.known = ("machine", "bmc", "i2o", "prom", "fault")
    machine = _parse_machine(top.data.pop("machine", {}), source)
    bmc = None
    if "bmc" in top.data:
        bmc = _parse_bmc(top.data.pop("bmc"), machine, source)
    i2o = _parse_i2o(top.data.pop("i2o"), source) if "i2o" in top.data else ()
    prom = None
    if "prom" in top.data:
        prom = _parse_prom(top.data.pop("prom"), source)
    if machine.type in SPARC_TYPES:
        prom = prom or PromSpec()
        why = {"bmc": "QEMU's SPARC machines have no IPMI interface devices",
               "i2o": "Debian's qemu-system-sparc64/-sparc 7.2 are built without x-pci-proxy-dev"}
        for key, present in (("bmc", bmc is not None), ("i2o", bool(i2o))):
            if present:
                raise DescriptionError(key, f"is not available on the SPARC machine {machine.type} ({why[key]})",
                                       source=source)
    elif prom is not None:
        raise DescriptionError("prom", f"needs a SPARC machine (type {' or '.join(SPARC_TYPES[:2])}, ...)",
                               source=source)
    _check_guest_devices(machine.guest, bmc, i2o, source)
    faults: tuple = ()
    if "fault" in top.data:
        from ..faults import parse_faults

        faults = parse_faults(top.data.pop("fault"), source)
        _check_faults(faults, bmc, i2o, prom, source)
    top.finish()
    return Description(machine=machine, bmc=bmc, i2o=i2o, prom=prom, source=source, faults=faults)


def guest_lacks(guest: str, bmc: BmcSpec | None, i2o: tuple[I2oSpec, ...]) -> str | None:
    """What a downloaded guest cannot drive of these devices (its recipe says which), or None."""
    from ..guests.remote import REMOTE_GUESTS

    recipe = REMOTE_GUESTS.get(guest)
    if recipe is None:
        return None
    if bmc is not None:
        missing = [i for i in bmc.interfaces if i not in recipe.interfaces]
        if missing:
            knows = ", ".join(recipe.interfaces) or "no IPMI interface"
            return f"{guest}'s IPMI driver knows {knows}; this machine needs {', '.join(missing)}"
    if i2o and recipe.i2o is None:
        return f"{guest} has no I2O pass-through driver; this machine has an I2O IOP"
    return None


def _check_guest_devices(guest: str, bmc: BmcSpec | None, i2o: tuple[I2oSpec, ...], source: str) -> None:
    why = guest_lacks(guest, bmc, i2o)
    if why:
        raise DescriptionError("bmc" if bmc is not None and "IPMI" in why else "i2o", why, source=source)


def _check_faults(faults, bmc: BmcSpec | None, i2o: tuple[I2oSpec, ...], prom: PromSpec | None,
                  source: str) -> None:
    """Each fault needs its device in the machine (and an IOP index that exists)."""
    has = {"bmc": bmc is not None and bmc.backend == "vhw", "iop": bool(i2o), "prom": prom is not None}
    what = {"bmc": 'a [bmc] with backend = "vhw"', "iop": "an [[i2o]] IOP", "prom": "a SPARC EEPROM"}
    for i, spec in enumerate(faults):
        if not has[spec.device]:
            raise DescriptionError(f"fault[{i}].device", f"{spec.device!r} needs {what[spec.device]} "
                                   "in the machine description", source=source)
        index = dict(spec.match).get("iop")
        if index is not None and index >= len(i2o):
            raise DescriptionError(f"fault[{i}].iop", f"the machine has {len(i2o)} IOP(s), numbered from 0; "
                                   f"got {index}", source=source)


def with_faults(desc: Description, faults, source: str) -> Description:
    """``desc`` with a scenario's faults added (checked against its devices; errors name ``source``)."""
    import dataclasses

    _check_faults(faults, desc.bmc, desc.i2o, desc.prom, source)
    return dataclasses.replace(desc, faults=tuple(desc.faults) + tuple(faults))


def _parse_prom(data: Any, source: str) -> PromSpec:
    from ..prom.nvram import NvramError, check_option, parse_mac

    t = Table(data, "prom", source)
    t.known = ("mac", "options")
    mac = t.take("mac", PromSpec.mac, str)
    try:
        parse_mac(mac)
    except NvramError as e:
        raise t.fail("mac", e.reason) from None
    options = t.take("options", {}, dict)
    for name, value in options.items():
        if not isinstance(value, str):
            raise t.fail(f"options.{name}", f"must be a string, not {type(value).__name__} {value!r}")
        try:
            check_option(name, value)
        except NvramError as e:
            raise t.fail(f"options.{name}", e.reason) from None
    t.finish()
    return PromSpec(mac=mac.lower(), options=tuple(options.items()))


def load_description(path: str | Path) -> Description:
    """Read and validate a description file."""
    return parse_description(read_description_data(path), str(path))


def read_description_data(path: str | Path) -> dict:
    """The TOML document of a description file, not yet validated."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise DescriptionError("<file>", f"cannot read {path}: {e.strerror}", source=str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DescriptionError("<toml>", str(e), source=str(path)) from None
    return data


def load_scenario(path: str | Path) -> tuple:
    """Read and validate a fault scenario file (``vhw run --faults FILE``; vhw.faults.parse_scenario)."""
    from ..faults import parse_scenario

    return parse_scenario(read_description_data(path), str(path))


def default_description(*, guest: str | None = None, interfaces: tuple[str, ...] | None = None,
                        backend: str = "vhw") -> Description:
    """The machine `vhw run` boots when no description is given."""
    data: dict = {"machine": {}}
    if guest:
        data["machine"]["guest"] = guest
    if interfaces:
        data["bmc"] = {"backend": backend, "interfaces": list(interfaces)}
    return parse_description(data, "<defaults>")


def for_guest(desc: Description, guest: str | None, access: str | None = None) -> Description:
    """``desc`` run on ``guest`` (and reached by ``access``), as far as that guest can carry it.

    A downloaded guest boots its own disk on its own machine type, with at
    least the memory its recipe asks for, and is reached over its console.
    Raises GuestMismatch naming what the guest lacks: an IPMI interface its
    driver does not know, an I2O pass-through driver, an agent, x86 vs SPARC.
    """
    import dataclasses

    m = desc.machine
    guest = guest or m.guest
    if guest == m.guest and access in (None, m.access):
        return desc
    from ..guests.images import GUESTS
    from ..guests.remote import REMOTE_GUESTS

    if guest not in GUESTS and guest not in REMOTE_GUESTS:
        known = ", ".join(sorted([*GUESTS, *REMOTE_GUESTS]))
        raise GuestMismatch(f"unknown guest {guest!r}; known guests: {known}")
    defaults = guest_defaults(guest)
    to_sparc = defaults.type in SPARC_TYPES
    changes: dict = {"guest": guest}
    extra: dict = {}
    if to_sparc != (m.type in SPARC_TYPES):
        if to_sparc and (desc.bmc is not None or desc.i2o):
            raise GuestMismatch(f"{guest} runs on {defaults.type}, which has no IPMI devices and no "
                                f"x-pci-proxy-dev; this machine has {'a BMC' if desc.bmc else 'an I2O IOP'}")
        if not to_sparc and desc.prom is not None and desc.prom.options:
            raise GuestMismatch(f"{guest} is an x86 guest; this machine is about a SPARC EEPROM ([prom])")
        changes.update(type=defaults.type, memory=defaults.memory, firmware=defaults.firmware)
        extra["prom"] = PromSpec() if to_sparc else None
    if access is None:  # the guest's own way in, or the description's choice between two agent guests
        access = (m.access if m.guest in AGENT_GUESTS else "agent") if guest in AGENT_GUESTS else "console"
    if access == "agent" and guest not in AGENT_GUESTS:
        raise GuestMismatch(f"{guest} has no vhw agent: it is reached over its console")
    changes["access"] = access
    recipe = REMOTE_GUESTS.get(guest)
    if recipe is not None:
        changes.update(type=recipe.machine_type, memory=max(m.memory, recipe.memory), firmware="seabios",
                       boot_timeout=max(m.boot_timeout, recipe.boot_timeout))
        why = guest_lacks(guest, desc.bmc, desc.i2o)
        if why:
            raise GuestMismatch(why)
    elif guest in DEFAULT_TYPES and guest != m.guest:  # one SPARC guest for another: its own machine
        changes.update(type=defaults.type, memory=defaults.memory)
    return dataclasses.replace(desc, machine=dataclasses.replace(m, **changes), **extra)
