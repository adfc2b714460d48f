"""The QEMU command-line builder (a pure function of description + image + links)."""

from pathlib import Path

import pytest

from vhw.guests.images import GUESTS, GuestImage
from vhw.machine.description import parse_description
from vhw.machine.qemu import Links, build_argv, guest_modules

IMAGE = GuestImage(GUESTS["linux-x86"], Path("/img"), {})
LINKS = Links(qmp_fd=10, console_fd=11, agent_fd=12)


def argv_for(table, links=LINKS, accel="tcg"):
    return build_argv(parse_description(table), IMAGE, links, accel=accel, qemu="/usr/bin/qemu-system-x86_64")


def opt_values(argv, opt):
    return [argv[i + 1] for i, a in enumerate(argv) if a == opt]


def test_paused_tcg_boot_of_vmlinux_with_all_channels_on_fds():
    argv = argv_for({})
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert "-S" in argv and opt_values(argv, "-accel") == ["tcg"]
    assert opt_values(argv, "-kernel") == ["/img/vmlinux"] and opt_values(argv, "-initrd") == ["/img/initramfs.cpio.lz4"]
    chardevs = opt_values(argv, "-chardev")
    assert "socket,id=qmp,fd=10" in chardevs and "socket,id=console,fd=11" in chardevs
    assert "socket,id=agent,fd=12" in chardevs
    assert "virtserialport,bus=vser0.0,chardev=agent,name=org.vhw.agent" in opt_values(argv, "-device")
    assert opt_values(argv, "-bios") == ["qboot.rom"]
    assert "-no-reboot" not in argv  # resets must reset, not exit (guest-linux.md §11.1)
    append = opt_values(argv, "-append")[0].split()
    assert "console=ttyS0" in append and "cryptomgr.notests" in append


def test_seabios_has_no_bios_option_and_kvm_is_passed_through():
    argv = argv_for({"machine": {"firmware": "seabios"}}, accel="kvm")
    assert "-bios" not in argv and opt_values(argv, "-accel") == ["kvm"]


def test_extern_bmc_gets_one_chardev_bmc_and_interface_per_interface():
    links = Links(10, 11, 12, bmc_chardevs={"kcs": "path=/r/kcs.sock,reconnect=1",
                                             "bt": "path=/r/bt.sock,reconnect=1",
                                             "ssif": "path=/r/ssif.sock,reconnect=1"})
    argv = argv_for({"bmc": {"backend": "extern", "address": "unix:/x", "interfaces": ["kcs", "bt", "ssif"]}}, links)
    devices = opt_values(argv, "-device")
    assert "ipmi-bmc-extern,id=bmc0,chardev=ipmi0" in devices
    assert "isa-ipmi-kcs,bmc=bmc0" in devices
    assert "isa-ipmi-bt,bmc=bmc1,irq=0" in devices
    # ipmi-extern.md §15: smbus-ipmi without address= is found by no guest.
    assert "smbus-ipmi,bmc=bmc2,address=0x10" in devices
    assert "socket,id=ipmi2,path=/r/ssif.sock,reconnect=1" in opt_values(argv, "-chardev")


def test_qemu_backend_uses_the_builtin_bmc():
    argv = argv_for({"bmc": {"backend": "qemu", "interfaces": ["bt"]}})
    devices = opt_values(argv, "-device")
    assert "ipmi-bmc-sim,id=bmc0" in devices and "isa-ipmi-bt,bmc=bmc0" in devices


@pytest.mark.parametrize("ifs, mtype, mods", [
    (["kcs"], "q35", ["ipmi_si", "ipmi_devintf"]),
    (["ssif"], "q35", ["i2c-i801", "ipmi_ssif", "ipmi_devintf"]),
    (["ssif"], "pc", ["i2c-piix4", "ipmi_ssif", "ipmi_devintf"]),
    (["kcs", "bt", "ssif"], "q35", ["i2c-i801", "ipmi_ssif", "ipmi_si", "ipmi_devintf"]),
])
def test_guest_modules_follow_the_interfaces(ifs, mtype, mods):
    desc = parse_description({"machine": {"type": mtype}, "bmc": {"backend": "qemu", "interfaces": ifs}})
    assert guest_modules(desc) == mods
    argv = build_argv(desc, IMAGE, LINKS, accel="tcg", qemu="q")
    assert "vhw.mods=" + ",".join(mods) in opt_values(argv, "-append")[0].split()


def test_extra_modules_are_appended_once():
    desc = parse_description({"machine": {"modules": ["ipmi_watchdog", "ipmi_devintf"]},
                              "bmc": {"backend": "qemu", "interfaces": ["kcs"]}})
    assert guest_modules(desc) == ["ipmi_si", "ipmi_devintf", "ipmi_watchdog"]


def test_proxied_pci_functions_get_shared_memfd_ram():
    """i2o-mpqemu.md A5: "Guest RAM must be fd-backed and shared:
    -object memory-backend-memfd,id=mem,size=512M,share=on -machine pc,memory-backend=mem"."""
    links = Links(qmp_fd=10, console_fd=11, agent_fd=12,
                  proxy_devices=("x-pci-proxy-dev,id=i2o0,addr=0x10.0,fd=20",))
    argv = argv_for({"machine": {"memory": 512, "type": "pc"}, "i2o": [{}]}, links=links)
    assert opt_values(argv, "-object") == ["memory-backend-memfd,id=vhw-ram,size=512M,share=on"]
    assert opt_values(argv, "-M") == ["pc,memory-backend=vhw-ram"] and opt_values(argv, "-m") == ["512"]
    assert "x-pci-proxy-dev,id=i2o0,addr=0x10.0,fd=20" in opt_values(argv, "-device")
    assert "vhw.mods=i2o_ptosm" in opt_values(argv, "-append")[0].split()
    # Without proxied functions RAM stays anonymous (no memfd cost).
    plain = argv_for({})
    assert "-object" not in plain and opt_values(plain, "-M") == ["q35"]
