"""The BMC's LAN face driving the VM: what a management station does to a host."""

import subprocess

import pytest

ADMIN = ("admin", "adminpass")

pytestmark = pytest.mark.vhw(needs=["ipmitool"], description={
    "machine": {"name": "lan"},
    "bmc": {"backend": "vhw", "interfaces": ["kcs"], "lan": "127.0.0.1:0",
            "users": [{"id": 2, "name": ADMIN[0], "password": ADMIN[1], "privilege": "administrator"}]},
})


def lanplus(vm, *args, user=ADMIN[0], password=ADMIN[1]):
    """Host-side ipmitool over RMCP+ with cipher suite 17 (HMAC-SHA256, AES-CBC-128)."""
    host, port = vm.lan_address()
    return subprocess.run(["ipmitool", "-I", "lanplus", "-H", host, "-p", str(port), "-U", user, "-P", password,
                           "-C", "17", *args], capture_output=True, text=True, timeout=90)


def test_chassis_reset_over_lan_reboots_the_guest_with_that_cause(vhw_machine):
    """IPMI 2.0 §28.3 Chassis Control "hard reset" resets the VM (QMP RESET) and
    §28.11 Get System Restart Cause then says "chassis power control command"."""
    since = len(vhw_machine.events)
    r = lanplus(vhw_machine, "chassis", "power", "reset")
    assert r.returncode == 0, r.stderr
    vhw_machine.wait_event("RESET", 60, since=since)
    vhw_machine.wait_rebooted(90)
    assert "chassis power control command" in vhw_machine.sh("ipmitool -I open chassis restart_cause")


def test_a_wrong_password_is_refused_and_nothing_happens(vhw_machine):
    """IPMI 2.0 §13.31: the BMC checks RAKP message 3's key-exchange code; with a wrong
    password it fails, no session is made and the reset never runs."""
    since = len(vhw_machine.events)
    r = lanplus(vhw_machine, "chassis", "power", "reset", password="wrong")
    assert r.returncode != 0
    assert "Unable to establish IPMI v2 / RMCP+ session" in r.stderr, r.stderr
    assert not [e for e in vhw_machine.events[since:] if e.get("event") == "RESET"]
