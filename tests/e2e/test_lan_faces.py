"""One BMC, several faces (issue 5 item 8): the guest's KCS and IPMI over LAN act on one state.

Each machine has vhw's BMC on KCS (the guest's ipmi_si / ipmitool -I open) and
a LAN listener on 127.0.0.1 port 0 (RMCP+, ``ipmitool -I lanplus -C 17`` run on
the host).  What one face changes, the other sees:

* a threshold lowered over LAN (35.8 Set Sensor Thresholds) crosses the present
  reading; the BMC re-evaluates, logs the event (29.7, 31) and hands it to the
  guest driver through the event message buffer (18.8, 22.8);
* Chassis Control (28.3) over LAN resets / power-cycles the VM, and the guest
  reads the restart cause (28.11) afterwards;
* a SEL entry the guest writes in-band (29.3 Platform Event Message) is read
  over LAN (31.5 Get SEL Entry);
* a user the guest creates in-band (22.26-22.30) logs in over LAN (13.20-13.23).

The host-side ipmitool runs as an asyncio subprocess: the LAN server lives on
the test's event loop and must keep running while the client waits.
"""

import asyncio
import json
import re

from vhw.machine.description import parse_description

ADMIN = ("admin", "adminpass")

CPU_TEMP = {"name": "CPU Temp", "number": 0x31, "type": "temperature", "range": [0, 127.5],
            "thresholds": {"lnc": 5, "unc": 80, "uc": 90, "unr": 100}, "hysteresis": 2.0, "value": 47.0}


def lan_desc(**machine):
    return parse_description({
        "machine": dict(machine),
        "bmc": {"backend": "vhw", "interfaces": ["kcs"], "lan": "127.0.0.1:0",
                "users": [{"id": 2, "name": ADMIN[0], "password": ADMIN[1], "privilege": "administrator"}],
                "sensors": [CPU_TEMP]},
    })


class Out:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


async def lanplus(m, *args: str, user: str = ADMIN[0], password: str = ADMIN[1], timeout: float = 90) -> Out:
    """Host-side ``ipmitool -I lanplus -C 17`` (HMAC-SHA256 / HMAC-SHA256-128 / AES-CBC-128) to the machine's BMC."""
    host, port = m.bmc_service.lan_address
    proc = await asyncio.create_subprocess_exec(
        "ipmitool", "-I", "lanplus", "-H", host, "-p", str(port), "-U", user, "-P", password, "-C", "17", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Out(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def guest_events(text: str) -> list[bytes]:
    """The event records ipmi_conform -e printed (one JSON object per line)."""
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"event"' in line]
    return [bytes.fromhex(r["event"].replace(" ", "")) for r in rows]


def test_lan_and_kcs_share_sensors_sel_and_users(make_machine, guest_listening):
    """(a) threshold over LAN -> event at the guest driver; (d) in-band user -> LAN login;
    (c) guest-written SEL entry -> read over LAN."""

    async def scenario():
        async with make_machine(lan_desc()) as m:
            assert m.bmc_service.lan_address is not None
            r = await lanplus(m, "mc", "info")
            assert r.returncode == 0 and "IPMI Version" in r.stdout, r.text

            # (a) 35.8 Set Sensor Thresholds over LAN: unc 40 < reading 47.  The
            # BMC re-evaluates at once (table 42-2 offset 07h, upper non-critical
            # going high), logs it, and the guest driver, which enabled the event
            # message buffer (22.1 Set BMC Global Enables), receives it.
            assert (await m.run("ipmitool -I open sel clear")).returncode == 0
            since = m.trace.now()
            waiter = asyncio.ensure_future(m.run("ipmi_conform -i kcs -e 30", timeout=90))
            await guest_listening(m, "ipmi-kcs", since)
            r = await lanplus(m, "sensor", "thresh", "CPU Temp", "unc", "40")
            assert r.returncode == 0, r.text
            g = await waiter
            records = guest_events(g.text)
            ours = [rec for rec in records if rec[10:12] == bytes([0x01, 0x31])]  # temperature, sensor 31h
            assert ours, g.text
            assert ours[0][12] & 0x80 == 0 and ours[0][13] & 0x0F == 0x07  # assertion, offset 07h
            # The same BMC: the guest reads the threshold LAN set, and the SEL has the event.
            r = await m.run('ipmitool -I open sensor get "CPU Temp"')
            assert re.search(r"Upper Non-Critical\s*:\s*40\.0", r.text), r.text
            assert re.search(r"Status\s*:\s*Upper Non-Critical", r.text), r.text
            sel = (await lanplus(m, "sel", "elist")).stdout
            assert re.search(r"CPU Temp.*Upper Non-critical going high", sel), sel

            # (d) 22.26-22.29 in-band: name, password, enable, channel 1 access ADMINISTRATOR
            # with IPMI messaging; then RMCP+ login (13.20-13.23) as that user over LAN.
            for cmd in ("user set name 5 lanuser", "user set password 5 lanpass55", "user enable 5",
                        "channel setaccess 1 5 privilege=4 ipmi=on link=off callin=on"):
                r = await m.run(f"ipmitool -I open {cmd}")
                assert r.returncode == 0, f"{cmd}: {r.text}"
            r = await lanplus(m, "user", "list", "1", user="lanuser", password="lanpass55")
            assert r.returncode == 0, r.text
            assert re.search(r"^5\s+lanuser\s+.*ADMINISTRATOR", r.stdout, re.M), r.stdout
            r = await lanplus(m, "user", "list", "1", user="lanuser", password="wrong-one")
            assert r.returncode != 0  # 13.23: the key is the password; a wrong one is refused

            # (c) 29.3 Platform Event Message in-band ("event 1": temperature,
            # upper critical going high) goes into the SEL (31.6); LAN reads it.
            assert (await m.run("ipmitool -I open sel clear")).returncode == 0
            r = await m.run("ipmitool -I open event 1")
            assert r.returncode == 0, r.text
            inband = (await m.run("ipmitool -I open sel list")).text
            r = await lanplus(m, "sel", "list")
            assert r.returncode == 0, r.text
            assert "Upper Critical going high" in r.stdout, r.stdout
            assert r.stdout.strip() == inband.strip()

    asyncio.run(scenario())


def test_chassis_control_over_lan_resets_and_power_cycles_the_vm(make_machine):
    """28.3 Chassis Control over LAN: hard reset -> QMP RESET; power cycle -> QEMU quits
    (SHUTDOWN host-qmp-quit) and is relaunched; 28.11 restart cause read in-band after each."""

    async def scenario():
        async with make_machine(lan_desc()) as m:
            since = len(m.events)
            r = await lanplus(m, "chassis", "power", "reset")
            assert r.returncode == 0, r.text
            await m.wait_event("RESET", 60, since=since)
            await m.agent.wait_ready(90)
            r = await m.run("ipmitool -I open chassis restart_cause")
            assert "chassis power control command" in r.text, r.text

            since, pid = len(m.events), m.qemu_pid
            r = await lanplus(m, "chassis", "power", "cycle")
            assert r.returncode == 0, r.text
            ev = await m.wait_event("SHUTDOWN", 60, since=since)
            assert ev["data"]["reason"] == "host-qmp-quit"
            for _ in range(1200):  # the power port relaunches after the cycle interval
                if m.qemu_pid not in (None, pid) and m.running:
                    break
                await asyncio.sleep(0.1)
            assert m.qemu_pid != pid
            await m.wait_ready(120)
            r = await m.run("ipmitool -I open chassis restart_cause")
            assert "chassis power control command" in r.text, r.text
            r = await lanplus(m, "chassis", "power", "status")
            assert "Chassis Power is on" in r.stdout, r.text

    asyncio.run(scenario())
