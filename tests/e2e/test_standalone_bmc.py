"""`vhw bmc` serves a QEMU that someone else started (here: a machine with backend "extern")."""

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

from vhw.machine.description import parse_description


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "small-1u.toml"
VHW = [sys.executable, "-m", "vhw.cli"]


def test_vhw_bmc_serves_a_qemu_started_by_hand(make_machine, tmp_path):
    sock = tmp_path / "bmc.sock"
    control = tmp_path / "control.sock"
    bmc = subprocess.Popen(VHW + ["bmc", "--config", str(EXAMPLE), "--extern", f"unix:{sock}",
                                  "--control", str(control)], stderr=subprocess.PIPE, text=True)
    try:
        lines = [bmc.stderr.readline(), bmc.stderr.readline()]
        assert "control socket" in lines[0] and "BMC listening on unix:" in lines[1], lines
        desc = parse_description({"bmc": {"backend": "extern", "address": f"unix:{sock}", "interfaces": ["kcs"]}})

        async def scenario():
            async with make_machine(desc) as m:
                r = await m.run("ipmitool -I open mc info; ipmitool -I open chassis power status")
                assert r.returncode == 0, r.stderr
                assert "IPMI Version              : 2.0" in r.text
                # A connected QEMU is a powered-on VM for a standalone BMC.
                assert "Chassis Power is on" in r.text
                # `vhw bmc set-sensor` from another process changes what the guest reads.
                cli = subprocess.run(VHW + ["bmc", "set-sensor", "--control", str(control), "CPU Temp", "85"],
                                     capture_output=True, text=True, timeout=30)
                assert cli.returncode == 0 and cli.stdout.startswith("CPU Temp: 85"), cli.stderr
                r = await m.run('ipmitool -I open sensor reading "CPU Temp"')
                assert re.search(r"CPU Temp\s+\| 85", r.text), r.text
                r = await m.run("ipmitool -I open sel elist")
                assert "Upper Non-critical going high" in r.text, r.text
                # Without QMP, hard reset goes over the extern channel (RESET control, §5).
                since = len(m.events)
                await m.run("(sleep 0.5; ipmitool -I open chassis power reset) >/dev/null 2>&1 &")
                ev = await m.wait_event("RESET", 30, since=since)
                assert ev["data"] == {"guest": True, "reason": "guest-reset"}

        asyncio.run(scenario())
    finally:
        bmc.send_signal(signal.SIGTERM)
        rest = bmc.communicate(timeout=10)[1]
    assert bmc.returncode == 0, rest
    assert "BMC stopped" in rest
    assert not sock.exists()
