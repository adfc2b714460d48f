"""vhw's BMC behind QEMU's ipmi-bmc-extern, judged by the real Linux drivers.

Each interface (KCS, BT, SSIF) boots its own VM: Linux's ipmi_si registers
only one state-machine type at load, so KCS and BT cannot share a VM.  The
per-interface conformance and ipmitool battery is test_ipmitool_battery.py.
"""

import asyncio
import json
import re

import pytest

from vhw.machine.description import parse_description

INTERFACES = ["kcs", "bt", "ssif"]


def bmc_desc(*interfaces, **machine):
    return parse_description({"machine": dict(machine), "bmc": {"backend": "vhw", "interfaces": list(interfaces)}})


def conform_cases(stdout: bytes) -> tuple[dict, list[dict]]:
    rows = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
    summary = rows[-1]["summary"]
    return summary, [r for r in rows[:-1] if not r["ok"]]


def test_send_message_reaches_a_satellite_controller_on_ipmb(make_machine):
    """22.7 Send Message with tracking: ipmitool -b 0 -t ADDR bridges through the BMC to a
    satellite the description declares; the answer comes back through Get Message."""
    desc = parse_description({"bmc": {"backend": "vhw", "interfaces": ["kcs"],
                                       "satellites": [{"address": 0x72, "device_id": 0x42, "product_id": 0x1234}]}})

    async def scenario():
        async with make_machine(desc) as m:
            r = await m.run("ipmitool -I open -b 0 -t 0x72 mc info")
            assert r.returncode == 0, r.stderr
            assert re.search(r"Device ID\s+: 66", r.text) and "0x1234" in r.text
            # Nobody at 0x74: Send Message answers 83h (NAK on write, table 22-?).
            r = await m.run("ipmitool -I open -b 0 -t 0x74 mc info")
            assert r.returncode != 0

    asyncio.run(scenario())


def test_kcs_and_ssif_share_one_bmc(make_machine, run_ipmi):
    """One BMC, several faces: what one interface sets, the other reads."""

    async def scenario():
        async with make_machine(bmc_desc("kcs", "ssif")) as m:
            r = await m.run("for i in 0 1; do cat /sys/class/ipmi/ipmi$i/device/type; done")
            assert sorted(r.stdout.decode().split()) == ["kcs", "ssif"]
            # Set System Info Parameters, system name (param 2), block 0, via /dev/ipmi0.
            name = "shared-state"
            block = bytes([0, len(name)]) + name.encode().ljust(14, b"\0")  # 22.14a: 16-byte block
            data = " ".join(f"0x{b:02x}" for b in bytes([2, 0]) + block)
            # One of the two is SSIF: either command may meet QEMU 7.2's stale SSIF read (run_ipmi).
            r = await run_ipmi(m, "ssif", f"ipmitool -I open -d 0 raw 6 0x58 {data}")
            assert r.returncode == 0, r.stderr
            r = await run_ipmi(m, "ssif", "ipmitool -I open -d 1 raw 6 0x59 0 2 0 0")
            got = bytes(int(x, 16) for x in r.stdout.split())
            assert got[0] == 0x11 and got[1] == 0 and got[4:4 + len(name)] == name.encode()

    asyncio.run(scenario())


@pytest.mark.parametrize("interface", ["kcs", "bt"])
def test_events_posted_by_the_bmc_reach_the_guest_driver(make_machine, guest_listening, interface):
    """Event message buffer + attention: a guest that enabled events receives them.

    Not SSIF: QEMU 7.2's smbus-ipmi hands ipmi_ssif's probe a stale answer to
    Get BMC Global Enables (ipmi-extern.md §10), so the driver never enables
    the event buffer with any external BMC (a finding, not a BMC fault).
    """
    record = bytes([0x00, 0x00, 0x02, 0, 0, 0, 0, 0x20, 0x00, 0x04, 0x01, 0x42, 0x01, 0x07, 0xFF, 0xFF])

    async def scenario():
        async with make_machine(bmc_desc(interface)) as m:
            since = m.trace.now()
            waiter = asyncio.ensure_future(m.run(f"ipmi_conform -i {interface} -e 30", timeout=60))
            await guest_listening(m, f"ipmi-{interface}", since)
            assert m.bmc_service.post_event(record)
            r = await waiter
            summary, failed = conform_cases(r.stdout)
            assert not failed, failed
            events = [json.loads(line) for line in r.stdout.decode().splitlines() if '"event"' in line]
            assert events and bytes.fromhex(events[0]["event"].replace(" ", "")) == record

    asyncio.run(scenario())


def test_bmc_restart_while_the_guest_runs(make_machine):
    """ipmi-extern.md §6: QEMU answers 0xD2 while the BMC is gone, reconnects, the driver recovers,
    and a chassis reset afterwards reboots the guest."""

    async def scenario():
        async with make_machine(bmc_desc("kcs")) as m:
            service = m.bmc_service
            await service.stop_interface("kcs")
            r = await m.run("ipmitool -I open raw 6 1")
            assert r.returncode == 1 and b"rsp=0xd2" in r.stderr
            await asyncio.sleep(2.5)  # QEMU retries every second (reconnect=1) while the BMC is down
            await service.start_interface("kcs")
            for _ in range(50):
                r = await m.run("ipmitool -I open raw 6 1")
                if r.returncode == 0:
                    break
                await asyncio.sleep(0.2)
            assert r.returncode == 0, r.stderr
            assert (await m.run("ipmitool -I open mc info")).returncode == 0
            # A reset after the outage boots the guest again (QEMU 7.2 with qboot
            # lost the -kernel image at reset once a reconnect attempt had
            # failed; vhw keeps listening while it is "down" so none fails).
            # Chassis Control, hard reset (IPMI 2.0 §28.3), from the host side of the BMC.
            since = len(m.events)
            assert service.request(0x00, 0x02, b"\x03").cc == 0
            await m.wait_event("RESET", 30, since=since)
            await m.agent.wait_ready(60)
            assert (await m.run("ipmitool -I open mc info")).returncode == 0

    asyncio.run(scenario())


def test_watchdog_expiry_resets_the_vm_and_is_the_restart_cause(make_machine):
    """Linux ipmi_watchdog started and never petted: the BMC resets the VM (QMP RESET)."""

    async def scenario():
        async with make_machine(bmc_desc("kcs")) as m:
            since = len(m.events)
            r = await m.run("modprobe ipmi_watchdog timeout=4 action=reset start_now=1 nowayout=0")
            assert r.returncode == 0, r.stderr
            await m.wait_event("RESET", 30, since=since)
            await m.agent.wait_ready(60)
            r = await m.run("ipmitool -I open chassis restart_cause")
            assert "watchdog expired" in r.stdout.decode()

    asyncio.run(scenario())


def test_watchdog_pretimeout_nmi_reaches_the_guest(make_machine):
    """Pre-timeout interrupt NMI (27.7): ipmi_watchdog's own NMI self-test passes, then
    with preop_panic the NMI at pre-timeout panics the guest."""

    async def scenario():
        async with make_machine(bmc_desc("kcs")) as m:
            r = await m.run("modprobe ipmi_watchdog timeout=20 pretimeout=15 preaction=pre_nmi "
                            "preop=preop_panic action=reset start_now=1; dmesg | grep -i 'IPMI Watchdog'")
            assert r.returncode == 0, r.stderr
            assert b"didn't seem to occur" not in r.stdout
            await m.console.wait_for(r"Kernel panic - not syncing: pre-timeout", 30)

    asyncio.run(scenario())


def test_guest_poweroff_through_ipmi_poweroff_and_power_on_again(make_machine):
    """ipmi_poweroff: the guest's poweroff becomes Chassis Control power down; the BMC
    stops the VM (QMP quit), stays up, and a later power up relaunches it.

    acpi=off: Linux 6.1 tries ACPI S5 before pm_power_off, so with ACPI the
    IPMI path is never taken; KCS is then found through SMBIOS.
    """

    async def scenario():
        async with make_machine(bmc_desc("kcs", append="acpi=off")) as m:
            service = m.bmc_service
            assert (await m.run("modprobe ipmi_poweroff")).returncode == 0
            since = len(m.events)
            await m.run("(sleep 0.5; poweroff -f) >/dev/null 2>&1 &")
            ev = await m.wait_event("SHUTDOWN", 30, since=since)
            # Our power port quits QEMU; an ACPI power-off would say guest-shutdown.
            assert ev["data"]["reason"] == "host-qmp-quit"
            for _ in range(100):
                if not service.chassis.power_on:
                    break
                await asyncio.sleep(0.1)
            assert not m.running and not service.chassis.power_on
            rsp = service.request(0x00, 0x01)  # Get Chassis Status: power is off
            assert rsp.cc == 0 and rsp.data[0] & 1 == 0
            # Chassis Control power up (28.3) from the host relaunches QEMU.
            assert service.request(0x00, 0x02, b"\x01").cc == 0
            await m.wait_ready(60)
            assert m.running and service.chassis.power_on
            r = await m.run("ipmitool -I open chassis restart_cause")
            assert "chassis power control command" in r.stdout.decode()

    asyncio.run(scenario())


def test_chassis_control_from_the_guest_resets_nmis_and_soft_offs(make_machine):
    """28.3 Chassis Control: hard reset -> QMP RESET; diag -> NMI; soft -> ACPI button."""

    async def scenario():
        async with make_machine(bmc_desc("kcs")) as m:
            since = len(m.events)
            r = await m.run("ipmitool -I open chassis power diag")
            assert r.returncode == 0, r.stderr
            r = await m.run("sleep 1; dmesg | grep -i nmi")
            assert b"NMI received" in r.stdout

            await m.run("(sleep 0.5; ipmitool -I open chassis power reset) >/dev/null 2>&1 &")
            await m.wait_event("RESET", 30, since=since)
            await m.agent.wait_ready(60)
            r = await m.run("ipmitool -I open chassis restart_cause")
            assert "chassis power control command" in r.stdout.decode()

            # Power cycle (28.3): QEMU goes away, comes back after the interval.
            since = len(m.events)
            await m.run("(sleep 0.5; ipmitool -I open chassis power cycle) >/dev/null 2>&1 &")
            ev = await m.wait_event("SHUTDOWN", 30, since=since)
            assert ev["data"]["reason"] == "host-qmp-quit"
            await asyncio.sleep(1)
            await m.wait_ready(60)
            r = await m.run("ipmitool -I open chassis restart_cause")
            assert "chassis power control command" in r.text

            since = len(m.events)
            await m.run("(sleep 0.5; ipmitool -I open chassis power soft) >/dev/null 2>&1 &")
            await m.wait_event("POWERDOWN", 30, since=since)
            ev = await m.wait_event("SHUTDOWN", 30, since=since)
            assert ev["data"]["guest"] is True  # the guest's acpid powered off
            await m.wait_exit(30)
            assert not m.bmc_service.chassis.power_on

    asyncio.run(scenario())
