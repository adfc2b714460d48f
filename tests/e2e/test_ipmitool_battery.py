"""Seed 000's conformance program, then ipmitool and ipmicmd, through each real driver.

One machine per interface (KCS, BT, SSIF; Linux's ipmi_si registers one
state-machine type at load, so KCS and BT cannot share a VM), booted once
for the module and shared by its cases, which run in order on one xdist
worker (``xdist_group``).  Each case is its own test, so a failure names the
check, and its report quotes the command's status, output and the kernel
messages it caused.

SSIF and QEMU 7.2 (ipmi-extern.md §10): ``smbus-ipmi`` does not NAK a
response read that comes before the BMC's answer, it hands the guest stale
bytes, and Linux' msghandler turns them into CC FFh with "BMC returned
incorrect response" in dmesg.  ipmi_ssif reads 5 ms after its write
(SSIF_MSG_PART_JIFFIES), so a loaded host can miss that window.  Where a
NAK would have made ipmi_ssif retry, ``run_ipmi`` (tests/e2e/conftest.py) retries:
on SSIF, only when the kernel logged that line during the command.
``test_a_late_ssif_answer_is_read_stale_and_retried`` forces the window
closed with a delay fault, so both the effect and the retry are tested.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vhw.machine.description import parse_description
from vhw.machine.launcher import Machine
from vhw.testing.facade import LoopThread

INTERFACES = ("kcs", "bt", "ssif")


@dataclass
class Guest:
    """A booted machine on a loop thread, and how its commands went."""

    machine: Machine
    loop: LoopThread
    interface: str
    workdir: Path
    #: conftest's run_ipmi_command and stale_answers (the run_ipmi and kernel_stale_answers fixtures).
    _run_ipmi: Callable
    _stale_answers: Callable
    stale_retries: int = 0

    def sh(self, command: str, timeout: float = 60):
        return self.loop.call(self.machine.run(command, timeout=timeout))

    def stale_count(self) -> int:
        return self.loop.call(self._stale_answers(self.machine))

    def run_ipmi(self, command: str, timeout: float = 60):
        """``command`` in the guest, retried on SSIF where the kernel saw a stale answer."""
        def retried():
            self.stale_retries += 1

        return self.loop.call(self._run_ipmi(self.machine, self.interface, command, timeout, retried))


def bmc_desc(interface: str):
    return parse_description({"machine": {"name": f"battery-{interface}"},
                              "bmc": {"backend": "vhw", "interfaces": [interface]}})


@pytest.fixture(scope="module")
def guest(request, tmp_path_factory, linux_image, run_ipmi, kernel_stale_answers):
    interface = request.param
    workdir = tmp_path_factory.mktemp(f"battery-{interface}")
    loop = LoopThread(f"battery-{interface}")
    machine = Machine(bmc_desc(interface), image=linux_image, workdir=workdir)
    try:
        loop.call(machine.start())
        yield Guest(machine, loop, interface, workdir, run_ipmi, kernel_stale_answers)
    finally:
        loop.call(machine.stop(), timeout=60)
        loop.close()


@pytest.fixture(autouse=True)
def _report_machine(request):
    """The shared machine's console and QEMU stderr go into a failing case's report."""
    if "guest" in request.fixturenames:
        request.node.vhw_machine_dirs = [request.getfixturevalue("guest").workdir]


def on_each_interface(test):
    """Run ``test`` once per interface, on that interface's shared machine and worker."""
    return pytest.mark.parametrize("guest", [
        pytest.param(i, id=i, marks=pytest.mark.xdist_group(f"battery-{i}")) for i in INTERFACES
    ], indirect=True, scope="module")(test)


def explain(guest: Guest, command: str, r) -> str:
    return (f"{command}: exit {r.returncode}\nstdout: {r.stdout.decode(errors='replace')!r}\n"
            f"stderr: {r.stderr.decode(errors='replace')!r}\n"
            f"kernel: {guest.sh('dmesg | grep -i ipmi | tail -n 5').stdout.decode(errors='replace')}")


@on_each_interface
def test_ipmi_conform_cases_pass(guest):
    """Seed 000's ioctls and errnos on the real driver (ipmi_conform's default cases)."""
    r = guest.sh(f"ipmi_conform -i {guest.interface}", timeout=180)
    rows = [json.loads(line) for line in r.stdout.decode().splitlines() if line.startswith("{")]
    failed = [row for row in rows[:-1] if not row["ok"]]
    assert not failed and r.returncode == 0, failed
    assert rows[-1]["summary"]["passed"] >= 21


# (ipmitool arguments, exit status, regex the output must match), per case;
# the steps of one case run in order.  Expected answers per IPMI 2.0; "rc 1"
# rows are errors the spec demands.
BATTERY = {
    "mc-info": [("mc info", 0, r"IPMI Version\s+: 2\.0")],
    "mc-selftest": [("mc selftest", 0, r"Selftest: passed")],
    "watchdog": [
        # 27.5: Reset Watchdog Timer before Set Watchdog Timer -> CC 80h.
        ("mc watchdog reset", 1, r"Attempt to reset uninitialized watchdog"),
        ("mc watchdog get", 0, r"Watchdog Timer Is:\s+Stopped"),
        ("raw 6 0x24 0x04 0x00 0x00 0x00 0x64 0x00", 0, r""),  # Set: SMS/OS, no action, 10.0 s
        ("mc watchdog reset", 0, r"Watchdog Timer Reset"),
        ("mc watchdog get", 0, r"Watchdog Timer Is:\s+Started/Running[\s\S]*Initial Countdown:\s+10\.0 sec"),
        ("raw 6 0x24 0x04 0x00 0x00 0x00 0x64 0x00", 0, r""),  # Set without don't-stop: stops it again
        ("mc watchdog get", 0, r"Watchdog Timer Is:\s+Stopped"),
    ],
    "chassis-status": [("chassis status", 0, r"System Power\s+: on")],
    "chassis-power-status": [("chassis power status", 0, r"Chassis Power is on")],
    "chassis-identify": [("chassis identify 5", 0, r"Chassis identify interval: 5 seconds")],
    "chassis-restart-cause": [("chassis restart_cause", 0, r"System restart cause: unknown")],
    "chassis-poh": [("chassis poh", 0, r"POH Counter\s+: 0 days, 0 hours")],
    "chassis-policy": [
        ("chassis policy list", 0, r"Supported chassis power policy:\s+always-off always-on previous"),
        ("chassis policy always-on", 0, r"always-on"),
    ],
    "channel-info-system-interface": [
        ("channel info", 0, r"Channel 0xf info:[\s\S]*Channel Medium Type\s+: System Interface")],
    "channel-info-lan": [("channel info 1", 0, r"Channel Medium Type\s+: 802\.3 LAN")],
    # 20.1: device support sensor, SDR, SEL, FRU, chassis (table 20-2).
    "get-device-id": [("raw 6 1", 0, r"^ 20 01 00 01 02 8f")],
    "get-system-guid": [("raw 6 0x37", 0, r"^( [0-9a-f]{2}){16}")],
    "unknown-command": [("raw 0x30 0xfe", 1, r"rsp=0xc1\): Invalid command")],
    "get-device-id-with-trailing-bytes": [
        ("raw 6 0x01" + " 0x00" * 33, 0, r"^ 20 01")],
    "chassis-control-reserved-option": [("raw 0 2 9", 1, r"rsp=0xcc\): Invalid data field")],
    # 22.15: Get System Info Parameters takes 4 bytes.
    "get-system-info-short": [("raw 6 0x59 0 1 0", 1, r"rsp=0xc7")],
    "get-system-info-firmware-version": [("raw 6 0x59 0 1 0 0", 0, r"^ 11")],
}


@on_each_interface
@pytest.mark.parametrize("case", list(BATTERY))
def test_ipmitool(guest, case):
    """One ipmitool check (or a short ordered sequence) against what IPMI 2.0 demands."""
    bmc = guest.machine.bmc_service.bmc
    before = bmc.stats["requests"]
    for args, rc, pattern in BATTERY[case]:
        command = f"ipmitool -I open {args}"
        r = guest.run_ipmi(command)
        out = (r.stdout + r.stderr).decode()
        assert r.returncode == rc and re.search(pattern, out, re.M), explain(guest, command, r)
    # The guest's commands reached the one BMC the host sees.
    assert bmc.stats["requests"] > before
    if case == "chassis-policy":
        assert bmc.parts["chassis"].restore_policy == "always-on"


def ipmicmd(guest: Guest, request: str) -> list[str]:
    """OpenIPMI's ipmicmd with one request to the BMC (channel 0Fh); the answer's words."""
    command = f'ipmicmd -k "{request}" smi 0'
    r = guest.run_ipmi(command)
    assert r.returncode == 0 and r.stdout.strip(), explain(guest, command, r)
    return r.stdout.decode().split()


@on_each_interface
def test_seed_002_set_channel_access_on_a_sessionless_channel(guest):
    """Seed 002's worked example: on IPMB 0, a sessionless channel, Set Channel Access answers 82h."""
    assert ipmicmd(guest, "0f 00 06 40 00 80 22") == ["0f", "07", "00", "40", "82"]


@on_each_interface
def test_seed_002_set_channel_access_volatile_only(guest):
    """Seed 002: on the LAN channel the volatile access mode is set, the
    non-volatile one is not (byte 2 bits 7:6 = 10b)."""
    assert ipmicmd(guest, "0f 00 06 40 01 80 22") == ["0f", "07", "00", "40", "00"]
    volatile = ipmicmd(guest, "0f 00 06 41 01 80")
    assert volatile[4:7] == ["00", "00", "04"]  # CC 0; volatile: disabled, limit ADMINISTRATOR
    non_volatile = ipmicmd(guest, "0f 00 06 41 01 40")
    assert non_volatile[4] == "00" and non_volatile[5] != "00"  # non-volatile: untouched (not disabled)


@pytest.mark.parametrize("guest", [pytest.param("ssif", marks=pytest.mark.xdist_group("battery-ssif"))],
                         indirect=True, scope="module")
def test_a_late_ssif_answer_is_read_stale_and_retried(guest):
    """ipmi-extern.md §10: an answer later than ipmi_ssif's first read (5 ms) is
    not waited for: the guest reads stale bytes, the kernel logs STALE and
    ipmicmd's connection setup (Get Device ID) fails with nothing on stdout,
    the failure seen on loaded hosts.  run_ipmi retries it to the right answer."""
    faults = guest.machine.faults
    seen = guest.stale_count()
    guest.loop.call(_arm_delay(faults))
    r = guest.sh('ipmicmd -k "0f 00 06 40 00 80 22" smi 0')
    assert r.returncode != 0 and not r.stdout.strip() and b"Unable to setup connection" in r.stderr, r
    assert guest.stale_count() > seen

    guest.loop.call(_arm_delay(faults))
    retries = guest.stale_retries
    assert ipmicmd(guest, "0f 00 06 40 00 80 22") == ["0f", "07", "00", "40", "82"]
    assert guest.stale_retries == retries + 1


async def _arm_delay(faults) -> None:
    """The next Get Device ID is answered 30 ms late (the faults live on the machine's loop)."""
    faults.bmc.delay(0.03, netfn=0x06, cmd=0x01)
