"""The QEMU command line for a machine description: a pure function.

Everything that connects QEMU to vhw is a chardev on a file descriptor the
launcher passes in (socketpairs: no paths, no port races, no lost early
output) or, for the IPMI extern links, a UNIX socket vhw listens on before
QEMU starts (QEMU reconnects to it, so a BMC restart is survivable).

Two kinds of guest boot: a built image (vhw.guests.images: ``-kernel`` and
``-initrd``, the agent on virtio-serial unless the guest is reached over its
console) and a downloaded guest's disk (vhw.guests.remote.DiskImage: the BIOS boots
the run's overlay; the guest is reached over its console).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from ..errors import QemuError
from ..guests.images import GuestImage
from .description import Description

#: The name of the virtio-serial port the guest agent listens on.
AGENT_PORT = "org.vhw.agent"

#: QEMU devices for each IPMI interface name (ipmi-extern.md §15).
#: SSIF needs an explicit address, or no guest finds it.
IPMI_DEVICES = {
    "kcs": "isa-ipmi-kcs",
    "bt": "isa-ipmi-bt",
    "ssif": "smbus-ipmi",
}


#: QEMU -boot drive letters for IPMI boot device selectors (IPMI 2.0 table
#: 28-14, parameter 5 data 2 [5:2]); "bios_setup" becomes menu=on instead.
BOOT_DRIVES = {
    "pxe": "n",
    "disk": "c",
    "disk_safe_mode": "c",
    "diagnostic_partition": "c",
    "remote_disk": "c",
    "cdrom": "d",
    "remote_cdrom": "d",
    "remote_primary_media": "d",
    "floppy": "a",
    "remote_floppy": "a",
}


@dataclass(frozen=True)
class BootChoice:
    """What the BMC's boot flags ask of the next boot (see boot_args)."""

    #: A BOOT_DRIVES key, "bios_setup", or "none".
    device: str
    #: True: every boot (-boot order=); False: this boot only (-boot once=).
    persistent: bool


def boot_args(choice: BootChoice | None) -> list[str]:
    """-boot arguments for a boot choice; none for no choice or "no override".

    QEMU itself restores the normal order after a ``once=`` boot, so a guest
    reboot goes back to the default, as "next boot only" means.
    """
    if choice is None:
        return []
    if choice.device == "bios_setup":
        return ["-boot", "menu=on"]
    drive = BOOT_DRIVES.get(choice.device)
    if drive is None:
        return []
    return ["-boot", f"{'order' if choice.persistent else 'once'}={drive}"]


@dataclass(frozen=True)
class Links:
    """File descriptors and sockets the launcher prepared for QEMU."""

    qmp_fd: int
    console_fd: int
    #: The agent's virtio-serial port; None when the guest is reached over its console.
    agent_fd: int | None
    #: interface name -> chardev socket options for its ipmi-bmc-extern
    #: (e.g. "path=/run/x/kcs.sock,reconnect=1"); unused for the qemu backend.
    bmc_chardevs: dict[str, str] = field(default_factory=dict)
    #: Host directory exported to the guest over 9p (mounted at /mnt/host).
    share_dir: str | None = None
    #: SOL's serial port (ttyS1): a socketpair end for the BMC's SOL, when
    #: the description has [bmc.sol] (vhw.ipmi.io.sol_link.SerialLink).
    sol_fd: int | None = None
    #: -device arguments of out-of-process PCI functions (x-pci-proxy-dev,
    #: their sockets already passed to QEMU); they need shared guest RAM.
    proxy_devices: tuple[str, ...] = ()
    #: A downloaded guest's disk as this run boots it: (path, format), its overlay normally.
    disk: tuple[str, str] | None = None
    #: A cloud-init NoCloud seed ISO (illumos cloud images).
    seed: str | None = None
    #: -prom-env arguments for a sun4u disk guest (vhw's EEPROM).
    prom_env: tuple[str, ...] = ()


def qemu_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise QemuError(
            f"{name} not found on PATH; install QEMU (Debian: apt-get install qemu-system-x86 "
            "qemu-system-data) or run `make deps` as root"
        )
    return path


def guest_modules(desc: Description) -> list[str]:
    """Kernel modules /init loads, in the order the drivers need them."""
    mods: list[str] = []
    if desc.bmc is not None:
        ifs = desc.bmc.interfaces
        if "ssif" in ifs:
            mods += ["i2c-i801" if desc.machine.type == "q35" else "i2c-piix4", "ipmi_ssif"]
        if "kcs" in ifs or "bt" in ifs:
            mods.append("ipmi_si")
        mods.append("ipmi_devintf")
    if desc.i2o:
        mods.append("i2o_ptosm")  # guest-images/kmod: the ptosm pass-through OSM
    for m in desc.machine.modules:
        if m not in mods:
            mods.append(m)
    return mods


def ipmi_device_args(desc: Description, links: Links) -> list[str]:
    """-chardev/-device arguments for the BMC and its interfaces."""
    if desc.bmc is None:
        return []
    args: list[str] = []
    if desc.bmc.backend == "qemu":
        # One built-in BMC can serve one interface; give each its own.
        for i, name in enumerate(desc.bmc.interfaces):
            args += ["-device", f"ipmi-bmc-sim,id=bmc{i}"]
            args += ["-device", _interface_device(name, f"bmc{i}", i)]
        return args
    return extern_bmc_args(desc.bmc.interfaces, links.bmc_chardevs)


def extern_bmc_args(interfaces, chardevs: dict[str, str]) -> list[str]:
    """One ipmi-bmc-extern per interface, each on its chardev socket options."""
    args: list[str] = []
    for i, name in enumerate(interfaces):
        chardev = chardevs.get(name)
        if chardev is None:
            raise ValueError(f"no chardev prepared for IPMI interface {name}")
        args += ["-chardev", f"socket,id=ipmi{i},{chardev}"]
        args += ["-device", f"ipmi-bmc-extern,id=bmc{i},chardev=ipmi{i}"]
        args += ["-device", _interface_device(name, f"bmc{i}", i)]
    return args


def _interface_device(name: str, bmc_id: str, index: int) -> str:
    dev = IPMI_DEVICES[name]
    if name == "ssif":
        return f"{dev},bmc={bmc_id},address=0x10"
    if name == "bt" and index > 0:
        # KCS already holds ISA IRQ 5; run BT polled rather than share it.
        return f"{dev},bmc={bmc_id},irq=0"
    return f"{dev},bmc={bmc_id}"


#: Disk bus per OS: NetBSD's live image names its root wd0 (IDE); the others find theirs on virtio.
DISK_BUS = {"netbsd": "ide"}


def build_argv(desc: Description, image, links: Links, *, accel: str,
               qemu: str | None = None, extra: list[str] | None = None,
               boot: BootChoice | None = None) -> list[str]:
    """The full QEMU argv (binary first) for a description and what it boots:
    a GuestImage (kernel and initramfs) or a DiskImage (``links.disk``);
    ``boot`` is the BMC's boot flags for this boot (boot_args)."""
    m = desc.machine
    argv = [
        qemu or qemu_binary(image.qemu),
        "-name", f"vhw-{m.name}",
        "-nodefaults", "-no-user-config",
        "-display", "none",
        "-S",
        "-accel", accel,
        # x-pci-proxy-dev hands guest RAM to its remote as memfds
        # (i2o-mpqemu.md A5): with anonymous RAM the remote cannot DMA.
        *(["-object", f"memory-backend-memfd,id=vhw-ram,size={m.memory}M,share=on",
           "-M", f"{m.type},memory-backend=vhw-ram"] if links.proxy_devices else ["-M", m.type]),
        "-m", str(m.memory),
        "-smp", str(m.cpus),
        "-chardev", f"socket,id=qmp,fd={links.qmp_fd}",
        "-mon", "chardev=qmp,mode=control",
        "-chardev", f"socket,id=console,fd={links.console_fd}",
        "-serial", "chardev:console",
        *(["-chardev", f"socket,id=sol,fd={links.sol_fd}", "-serial", "chardev:sol"]
          if links.sol_fd is not None else []),
    ]
    if links.disk is not None:
        argv += _disk_args(image.recipe, links)
    else:
        argv += _kernel_args(desc, image, links)
        argv += boot_args(boot)  # the BIOS part of the BMC's boot flags (disk guests boot their own way)
    argv += ipmi_device_args(desc, links)
    for device in links.proxy_devices:
        argv += ["-device", device]
    argv += extra or []
    return argv


def _disk_args(recipe, links: Links) -> list[str]:
    """A downloaded guest: its disk (or install CD), its seed, a NIC, and on sun4u vhw's EEPROM."""
    assert links.disk is not None
    path, fmt = links.disk
    args = ["-cpu", recipe.cpu] if recipe.cpu else []
    if recipe.cdrom:
        args += ["-drive", f"file={path},format={fmt},media=cdrom,readonly=on", "-boot", "d"]
    else:
        args += ["-drive", f"file={path},format={fmt},if={DISK_BUS.get(recipe.os, 'virtio')}"]
    if links.seed is not None:
        args += ["-drive", f"file={links.seed},format=raw,media=cdrom,readonly=on"]
    if recipe.machine_type == "sun4u":
        args += ["-nic", "user,model=sunhme,restrict=on", *links.prom_env]
    else:
        args += ["-nic", "user,model=virtio-net-pci"]
    return args


def kernel_command_line(desc: Description, *, agent: bool, quiet: bool = True, share: bool = False,
                        sol: bool = False) -> str:
    """A built Linux guest's command line, read by its /init (guest-images/linux-x86)."""
    m = desc.machine
    # cryptomgr.notests: the kernel's crypto self-tests cost 0.6-1.3 s of a
    # ~4.5 s TCG boot and are not what a driver test is about.
    append = ["console=ttyS0", "panic=-1", "quiet" if quiet and "vhw.debug=1" not in m.append else "",
              "cryptomgr.notests", "vhw.agent=vport" if agent else "vhw.access=console"]
    mods = guest_modules(desc)
    if mods:
        append.append("vhw.mods=" + ",".join(mods))
    if share:
        append.append("vhw.9p=vhwshare")
    if sol:
        append.append("vhw.sol=ttyS1")  # the guest's /init keeps a shell on it (SOL's far end)
    if m.append:
        append.append(m.append)
    return " ".join(a for a in append if a)


def _kernel_args(desc: Description, image: GuestImage, links: Links) -> list[str]:
    """A built guest: -kernel/-initrd, its command line, the agent port, the firmware, 9p."""
    append = kernel_command_line(desc, agent=links.agent_fd is not None, share=bool(links.share_dir),
                                 sol=links.sol_fd is not None)
    args = [
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", append,
    ]
    if links.agent_fd is not None:
        args += [
            "-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=agent,fd={links.agent_fd}",
            "-device", f"virtserialport,bus=vser0.0,chardev=agent,name={AGENT_PORT}",
        ]
    if desc.machine.firmware == "qboot":
        args += ["-bios", "qboot.rom"]
    if links.share_dir:
        args += [
            "-fsdev", f"local,id=vhwshare,path={links.share_dir},security_model=none",
            "-device", "virtio-9p-pci,fsdev=vhwshare,mount_tag=vhwshare",
        ]
    return args
