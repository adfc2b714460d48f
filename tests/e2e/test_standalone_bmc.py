"""`vhw bmc` serves a QEMU that someone else started (here: a machine with backend "extern")."""

import asyncio
import signal
import subprocess
import sys

from vhw.machine.description import parse_description


def test_vhw_bmc_serves_a_qemu_started_by_hand(make_machine, tmp_path):
    sock = tmp_path / "bmc.sock"
    bmc = subprocess.Popen([sys.executable, "-m", "vhw.cli", "bmc", "--extern", f"unix:{sock}"],
                           stderr=subprocess.PIPE, text=True)
    try:
        line = bmc.stderr.readline()
        assert "BMC listening on unix:" in line, line
        desc = parse_description({"bmc": {"backend": "extern", "address": f"unix:{sock}", "interfaces": ["kcs"]}})

        async def scenario():
            async with make_machine(desc) as m:
                r = await m.run("ipmitool -I open mc info; ipmitool -I open chassis power status")
                assert r.returncode == 0, r.stderr
                assert "IPMI Version              : 2.0" in r.text
                # A connected QEMU is a powered-on VM for a standalone BMC.
                assert "Chassis Power is on" in r.text
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
