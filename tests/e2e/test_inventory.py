"""The platform the description says, as the guest's ipmitool and driver see it.

Boots examples/small-1u.toml with a state directory, checks sensors, SDRs,
SEL, FRU, users, boot flags and DCMI against the description, drives a
threshold crossing from the host and watches the guest driver receive the
event, then boots again on the same state and finds the changes kept.
"""

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from vhw.machine.description import load_description

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "small-1u.toml"


def columns(text: str) -> dict[str, list[str]]:
    """ipmitool's `a | b | c` tables, keyed by the first column."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 1:
            rows[cells[0]] = cells[1:]
    return rows


def described(desc):
    return {s.name: s for s in desc.bmc.config.sensors}


@pytest.fixture
def desc(tmp_path):
    d = load_description(EXAMPLE)
    return replace(d, machine=replace(d.machine, state=str(tmp_path / "state")))


def test_sensors_sdr_fru_users_dcmi_match_the_description(make_machine, guest_listening, desc):
    sensors = described(desc)

    async def scenario():
        async with make_machine(desc) as m:
            sdr = columns((await m.run("ipmitool -I open sdr list")).text)
            for name, s in sensors.items():
                assert name in sdr, f"{name} missing from sdr list: {sdr}"
                if s.threshold:
                    value = float(sdr[name][0].split()[0])
                    assert value == pytest.approx(s.value, abs=max(1.0, abs(s.value) * 0.01)), name
                    assert sdr[name][1] == "ok"

            elist = (await m.run("ipmitool -I open sdr elist")).text
            assert re.search(r"^CPU Temp\s+\| 31h \| ok\s+\|\s+3\.1 \| 47 degrees C", elist, re.M), elist

            # sensor thresh (35.8 Set Sensor Thresholds) then read back (35.9).
            r = await m.run('ipmitool -I open sensor thresh "CPU Temp" ucr 95')
            assert r.returncode == 0, r.stderr
            table = columns((await m.run("ipmitool -I open sensor list")).text)
            # columns: value unit status lnr lcr lnc unc ucr unr
            assert [float(x) for x in table["CPU Temp"][6:9]] == pytest.approx([80, 95, 100], abs=0.5)
            assert float(table["12V"][4]) == pytest.approx(10.8, abs=0.06)

            fru = (await m.run("ipmitool -I open fru print 0")).text
            for line in ("Board Mfg             : Virtual Hardware Works", "Product Name          : VHW Server 1U",
                         "Product Serial        : SRV24090117", "Chassis Part Number   : CH-1U-0100"):
                assert line in fru, fru

            users = (await m.run("ipmitool -I open user list 1")).text
            assert re.search(r"^2\s+admin\s+.*ADMINISTRATOR", users, re.M), users
            assert (await m.run("ipmitool -I open user set name 6 tester")).returncode == 0
            assert (await m.run("ipmitool -I open user set password 6 s3cret-pass")).returncode == 0
            r = await m.run("ipmitool -I open user test 6 16 s3cret-pass; ipmitool -I open user test 6 16 wrong")
            assert "Success" in r.text and "Failure" in r.text

            assert (await m.run("ipmitool -I open chassis bootdev pxe options=persistent")).returncode == 0
            r = await m.run("ipmitool -I open chassis bootparam get 5")
            assert "Force PXE" in r.text and "Options apply to all future boots" in r.text

            r = await m.run("ipmitool -I open dcmi power reading")
            assert re.search(r"Instantaneous power reading:\s+18[01] Watts", r.text), r.text

            # A threshold crossing, driven from the host, reaches the guest's driver
            # (event message buffer + attention) and lands in the SEL (29.7, 31).
            await m.run("ipmitool -I open sel clear")
            since = m.trace.now()
            waiter = asyncio.ensure_future(m.run("ipmi_conform -i kcs -e 30", timeout=60))
            await guest_listening(m, "ipmi-kcs", since)
            sensors_part = m.bmc_service.bmc.parts["sensors"]
            sensors_part.set_value("CPU Temp", 85.0, m.bmc_service._now())
            m.bmc_service._settle()
            r = await waiter
            events = [json.loads(line) for line in r.text.splitlines() if '"event"' in line]
            assert events, r.text
            record = bytes.fromhex(events[0]["event"].replace(" ", ""))
            assert record[10:12] == bytes([0x01, 0x31])  # sensor type temperature, number 31h
            assert record[13] & 0x0F == 0x07  # offset 07h: upper non-critical going high
            sel = (await m.run("ipmitool -I open sel elist")).text
            assert re.search(r"CPU Temp .*Upper Non-critical going high", sel), sel

    asyncio.run(scenario())


def test_changes_survive_a_restart_on_the_same_state(make_machine, desc):
    async def first():
        async with make_machine(desc) as m:
            assert (await m.run("ipmitool -I open user set name 7 keeper")).returncode == 0
            assert (await m.run("ipmitool -I open sel clear")).returncode == 0
            assert (await m.run("ipmitool -I open event 1")).returncode == 0  # Platform Event -> SEL
            assert (await m.run("ipmitool -I open dcmi asset_tag")).returncode == 0
            r = await m.run("ipmitool -I open raw 0x2c 0x08 0xdc 0x00 0x04 0x54 0x41 0x47 0x31")  # Set Asset Tag
            assert r.returncode == 0, r.stderr
            return (await m.run("ipmitool -I open sel list")).text

    async def second():
        async with make_machine(desc) as m:
            users = (await m.run("ipmitool -I open user list 1")).text
            assert re.search(r"^7\s+keeper", users, re.M), users
            assert (await m.run("ipmitool -I open sel list")).text.strip() == before.strip()
            r = await m.run("ipmitool -I open dcmi asset_tag")
            assert "TAG1" in r.text

    before = asyncio.run(first())
    assert before.strip()
    asyncio.run(second())
