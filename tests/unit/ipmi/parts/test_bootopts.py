"""System boot options (IPMI 2.0 sections 28.12-28.13, table 28-14) and the
machine layer honouring them (QEMU -boot)."""

from __future__ import annotations

import asyncio

import pytest

from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.parts.bootopts import BootDevice, BootOptions, BootRequest
from vhw.ipmi.parts.chassis import RestartCause
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.io.service import BmcService
from vhw.machine.qemu import BootChoice, boot_args
from vhw.store import Store

CH = 0x00
SI = Context()
LAN_USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=1)
#: What `ipmitool chassis bootdev pxe` sends as parameter 5: valid, next boot, PXE.
BOOTDEV_PXE = bytes([0x80, 0x04, 0x00, 0x00, 0x00])


def make_bmc(store=None):
    return create_bmc(BmcConfig(), store=store)


def get(bmc, param, set_selector=0, block=0, ctx=SI):
    return bmc.handle(CH, 0x09, bytes([param, set_selector, block]), ctx, 0.0)


def put(bmc, param, data, ctx=SI):
    return bmc.handle(CH, 0x08, bytes([param]) + bytes(data), ctx, 0.0)


# -- the ipmitool sequences ------------------------------------------------------
def test_ipmitool_chassis_bootdev_pxe_sequence():
    """`ipmitool chassis bootdev pxe` (lib/ipmi_chassis.c): set in progress,
    clear the BIOS/POST acknowledge bit (param 4: mask 01h, data 01h), the
    five boot flag bytes, commit write, set complete.  Every step answers 00h."""
    bmc = make_bmc()
    for param, data in ((0, [1]), (4, [1, 1]), (5, BOOTDEV_PXE), (0, [2]), (0, [0])):
        assert put(bmc, param, data).cc == 0
    rsp = get(bmc, 5)
    assert rsp.cc == 0
    # Section 28.13: version 01h, selector (bit 7 = invalid/locked), data.
    assert rsp.data == bytes([0x01, 0x05]) + BOOTDEV_PXE
    assert get(bmc, 4).data == bytes([0x01, 0x04, 0x00, 0x01])  # write mask reads back as 00h


def test_set_in_progress_twice_is_81h():
    """Parameter 0: a second 'set in progress' while one is active answers 81h
    (ipmitool then stops using it); 11b is reserved."""
    bmc = make_bmc()
    assert put(bmc, 0, [1]).cc == 0
    assert put(bmc, 0, [1]).cc == 0x81
    assert get(bmc, 0).data == bytes([0x01, 0x00, 0x01])
    assert put(bmc, 0, [3]).cc == 0xCC
    assert put(bmc, 0, [0]).cc == 0


@pytest.mark.parametrize("param", [8, 0x20, 0x60, 0x7F])
def test_unsupported_parameters_are_80h(param):
    """Sections 28.12/28.13: 80h "parameter not supported"."""
    bmc = make_bmc()
    assert get(bmc, param).cc == 0x80
    assert put(bmc, param, [0]).cc == 0x80


@pytest.mark.parametrize("param, data", [(5, [0x80, 0x04]), (1, []), (3, [0, 0]), (6, [0] * 8), (4, [1])])
def test_wrong_lengths_are_c7h(param, data):
    assert put(make_bmc(), param, data).cc == (0xC7 if data else 0)


def test_every_parameter_round_trips():
    bmc = make_bmc()
    values = {1: [0x05], 2: [0x01], 3: [0x1F], 6: [0x01, 1, 2, 3, 4, 5, 6, 7, 8]}
    for param, data in values.items():
        assert put(bmc, param, data).cc == 0
        assert get(bmc, param).data[2:] == bytes(data)
    # Mailbox: blocks of 16 bytes selected by the set selector; 5 blocks, C9h beyond.
    assert put(bmc, 7, [1] + list(range(16))).cc == 0
    assert get(bmc, 7, set_selector=1).data[2:] == bytes([1]) + bytes(range(16))
    assert get(bmc, 7, set_selector=5).cc == 0xC9


def test_parameter_valid_bit_marks_locked():
    """Set byte 1 bit 7 = mark the parameter invalid/locked; Get reports it in
    bit 7 of the selector byte (ipmitool: "invalid/locked")."""
    bmc = make_bmc()
    assert put(bmc, 0x80 | 5, BOOTDEV_PXE).cc == 0
    assert get(bmc, 5).data[1] == 0x85
    assert put(bmc, 5, BOOTDEV_PXE).cc == 0
    assert get(bmc, 5).data[1] == 0x05


def test_privileges_and_short_requests():
    """Appendix G: both commands need Operator."""
    bmc = make_bmc()
    assert get(bmc, 5, ctx=LAN_USER).cc == 0xD4
    assert bmc.handle(CH, 0x09, b"", SI, 0.0).cc == 0xC7
    assert bmc.handle(CH, 0x09, b"\x05", SI, 0.0).cc == 0  # selectors default to 0
    assert bmc.handle(CH, 0x08, b"", SI, 0.0).cc == 0xC7


# -- the boot itself: who clears the valid bit ---------------------------------------
def flags(valid=True, persistent=False, device=BootDevice.PXE):
    return bytes([(0x80 if valid else 0) | (0x40 if persistent else 0), device << 2, 0, 0, 0])


def test_next_boot_flags_are_used_once():
    """Data 1 bit 6 = 0: "options apply to only next boot"; the BIOS (the
    machine layer) uses them and the valid bit clears."""
    b = BootOptions(Store(None))
    b.set(5, flags())
    assert b.boot_request() == BootRequest(BootDevice.PXE, persistent=False)
    b.boot_used()
    assert b.boot_flags[0] & 0x80 == 0
    assert b.boot_request() is None


def test_persistent_flags_stay_valid():
    b = BootOptions(Store(None))
    b.set(5, flags(persistent=True, device=BootDevice.CDROM))
    for _ in range(3):
        assert b.boot_request(RestartCause.CHASSIS_CONTROL) == BootRequest(BootDevice.CDROM, persistent=True)
        b.boot_used()


@pytest.mark.parametrize("cause, keep_bit", [
    (RestartCause.POWER_BUTTON, 0x01),
    (RestartCause.SOFT_RESET, 0x02),
    (RestartCause.WATCHDOG, 0x04),
    (RestartCause.PEF_POWER_CYCLE, 0x10),
])
def test_restarts_the_bmc_did_not_ask_for_clear_the_valid_bit_unless_parameter_3_says_not_to(cause, keep_bit):
    """Parameter 3: 1b = "do not clear valid bit on" power button/wake (bit 0),
    reset button/soft reset (1), watchdog (2), PEF (4)."""
    b = BootOptions(Store(None))
    b.set(5, flags())
    assert b.boot_request(cause) is None and not b.boot_flags[0] & 0x80
    b.set(5, flags())
    b.set(3, bytes([keep_bit]))
    assert b.boot_request(cause) == BootRequest(BootDevice.PXE, persistent=False)


def test_bmc_reset_forgets_set_in_progress_and_acknowledge_but_not_flags(tmp_path):
    """Parameter 4 is "initialized to 00h when the management controller is
    first powered up or reset"; parameter 0 is volatile; 5 is semi-volatile."""
    path = tmp_path / "m.db"
    bmc = make_bmc(Store(path))
    put(bmc, 0, [1]), put(bmc, 4, [0x1F, 0x1F]), put(bmc, 5, BOOTDEV_PXE), put(bmc, 3, [0x04])
    bmc.store.close()
    again = make_bmc(Store(path))
    assert get(again, 0).data[2] == 0 and get(again, 4).data[3] == 0
    assert get(again, 5).data[2:] == BOOTDEV_PXE and get(again, 3).data[2] == 0x04


# -- the machine layer: QEMU -boot -----------------------------------------------------
@pytest.mark.parametrize("device, persistent, args", [
    ("pxe", False, ["-boot", "once=n"]),
    ("pxe", True, ["-boot", "order=n"]),
    ("disk", False, ["-boot", "once=c"]),
    ("disk_safe_mode", True, ["-boot", "order=c"]),
    ("cdrom", False, ["-boot", "once=d"]),
    ("floppy", True, ["-boot", "order=a"]),
    ("bios_setup", False, ["-boot", "menu=on"]),
    ("none", False, []),
])
def test_boot_device_maps_to_qemu_boot_arguments(device, persistent, args):
    assert boot_args(BootChoice(device, persistent)) == args
    assert boot_args(None) == []


def test_argv_carries_the_boot_choice():
    from pathlib import Path

    from vhw.guests.images import GUESTS, GuestImage
    from vhw.machine.description import default_description
    from vhw.machine.qemu import Links, build_argv

    image = GuestImage(GUESTS["linux-x86"], Path("/img"), {})
    links = Links(qmp_fd=10, console_fd=11, agent_fd=12)
    argv = build_argv(default_description(), image, links, accel="tcg", qemu="qemu",
                      boot=BootChoice("cdrom", False))
    i = argv.index("-boot")
    assert argv[i + 1] == "once=d"


def test_service_hands_flags_to_the_launch_and_spends_next_boot_ones():
    """BmcService.boot_choice() is what Machine asks before launching QEMU;
    on_qemu_start marks the flags used (the BIOS's acknowledgement)."""
    asyncio.run(_service_boot_flow())


async def _service_boot_flow():
    service = BmcService(BmcConfig())
    bmc = service.bmc
    assert service.boot_choice() is None
    put(bmc, 5, BOOTDEV_PXE)
    assert service.boot_choice() == BootChoice("pxe", False)
    service.on_qemu_start()
    assert get(bmc, 5).data[2] & 0x80 == 0
    assert service.boot_choice() is None
    put(bmc, 5, flags(persistent=True, device=BootDevice.DISK))
    assert service.boot_choice() == BootChoice("disk", True)
    service.on_qemu_exit()
    service.on_qemu_start()
    assert service.boot_choice() == BootChoice("disk", True)
    await service.close()
