"""Injected faults as the linux-x86 guest sees them (vhw.faults, docs/faults.md).

What the guest must see comes from QEMU 7.2 and the specs:
- ipmi_bmc_extern waits 4 s of virtual time for a response, then completes
  the guest's request itself with CC 0xC3 and drops the late answer; while
  the socket is down it answers 0xD2 (ipmi-extern.md §6-§8).  IPMI 2.0 §5.2
  table 5-2: 0xC0 Node Busy, 0xC3 Timeout.
- a watchdog expiry with action "hard reset" resets the system and the
  restart cause is "watchdog expired" (IPMI 2.0 27.7, 28.11).
- I2O 1.5: the reply's word 4 carries ReqStatus << 24 | DetailedStatus;
  ptosm_conform prints both for a failed UtilParamsGet.
"""

import asyncio
import re
import time

from vhw.machine.description import parse_description


def bmc_desc(**extra):
    return parse_description({"machine": {}, "bmc": {"backend": "vhw", "interfaces": ["kcs"]}, **extra})


async def raw(m, args):
    r = await m.run(f"ipmitool -I open raw {args}", timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode()


def test_bmc_faults_reach_the_guest(make_machine):
    """One boot: a description [[fault]], then completion codes, a delay past
    QEMU's timeout, an early watchdog expiry and a disconnect from Python.
    (The disconnect comes last: after a BMC socket restart a guest reset does
    not come back under QEMU 7.2 here, with or without faults; see docs/faults.md.)"""
    desc = bmc_desc(fault=[{"device": "bmc", "action": "completion-code", "netfn": 6, "cmd": 7, "cc": 0xC0,
                            "count": 2}])

    async def scenario():
        async with make_machine(desc) as m:
            faults = m.faults
            # The description's fault: Get ACPI Power State (6 7) is "node busy" twice.
            for _ in range(2):
                rc, out = await raw(m, "6 7")
                assert rc == 1 and "rsp=0xc0" in out, out
            rc, out = await raw(m, "6 7")
            assert rc == 0, out

            # From Python: the next two Get Device ID answer 0xC0, then the real answer.
            # ipmitool -I open sends its own Get Device ID before the raw one: both fail.
            faults.bmc.completion_code(0xC0, netfn=6, cmd=1, count=2)
            outs = [await raw(m, "6 1") for _ in range(2)]
            assert [rc for rc, _ in outs] == [1, 0], outs
            assert "Get Device ID command failed: 0xc0 Node busy" in outs[0][1], outs
            assert "rsp=0xc0" in outs[0][1], outs
            assert len(faults.fired("bmc.completion-code")) == 4

            # 5 s late is past QEMU's 4 s: QEMU itself answers 0xC3 and drops ours.
            faults.bmc.delay(5, netfn=6, cmd=7)
            started = time.monotonic()
            rc, out = await raw(m, "6 7")
            assert rc == 1 and "rsp=0xc3" in out, out
            assert time.monotonic() - started >= 3.5
            await asyncio.sleep(2)                 # our late answer arrives and is dropped
            rc, out = await raw(m, "6 7")
            assert rc == 0, out

            # Expire the watchdog now instead of in 120 s: the VM is reset by it.
            r = await m.run("modprobe ipmi_watchdog timeout=120 action=reset start_now=1 nowayout=0")
            assert r.returncode == 0, r.stderr
            since = len(m.events)
            assert faults.bmc.expire_watchdog()
            await m.wait_event("RESET", 10, since=since)
            await m.agent.wait_ready(60)
            r = await m.run("ipmitool -I open chassis restart_cause")
            assert "watchdog expired" in r.stdout.decode()

            # Disconnect: 0xD2 while down, the driver works again after QEMU reconnects.
            task = faults.bmc.disconnect(seconds=2)
            await asyncio.sleep(0.3)
            rc, out = await raw(m, "6 1")
            assert rc == 1 and "rsp=0xd2" in out, out
            await task
            for _ in range(50):
                rc, out = await raw(m, "6 1")
                if rc == 0:
                    break
                await asyncio.sleep(0.2)
            assert rc == 0, out

            names = [e["fault"] for e in faults.events]
            assert names.count("bmc.delay") == 1 and "bmc.disconnect" in names and "bmc.expire-watchdog" in names

    asyncio.run(scenario())


def test_iop_fail_status_reaches_ptosm(make_machine, tmp_path):
    """An injected ReqStatus/DetailedStatus is what the guest's MSGTFR reply holds."""
    desc = parse_description({
        "machine": {"memory": 256},
        "i2o": [{"disk": [{"image": str(tmp_path / "iop0.img"), "size": 16}]}],
    })

    async def scenario():
        async with make_machine(desc) as m:
            # UtilParamsGet to the executive: TRANSACTION_ERROR (0x0B), DEVICE_BUSY (0x1B).
            m.faults.iop.fail(0x0B, detail=0x1B, function=0x06, tid=0)
            r = await m.run("ptosm_conform --iops 1", timeout=120)
            out = r.stdout.decode()
            assert r.returncode != 0, out
            failed = [line for line in out.splitlines() if line.startswith("FAIL")]
            assert failed == ["FAIL iop0_params_get_device_identity: ioctl ok, ReqStatus 0xb detail 0x1b"], out
            assert m.faults.fired("iop.fail")[0]["status"] == 0x0B
            r = await m.run("ptosm_conform --iops 1", timeout=120)   # count 1: all well again
            assert r.returncode == 0, r.stdout.decode()
            assert not re.search(r"Oops|BUG:|Call Trace", (await m.run("dmesg")).stdout.decode())

    asyncio.run(scenario())
