"""ipmi_si / ipmi_devintf regression tests on KCS (Linux guest, vhw BMC).

Each test boots its own machine from bmc-kcs.toml (the ``vhw`` marker).
"""

import json
import time

import pytest

pytestmark = pytest.mark.vhw(description="bmc-kcs.toml", needs=["ipmitool"])


def ipmi_conform(vm, *cases, args=""):
    """Run the in-guest ipmi(7D) conformance program; its JSON cases go to the report."""
    selected = " ".join(f"-c {c}" for c in cases)
    r = vm.run(f"{vm.program('ipmi_conform')} -i kcs {args} {selected}", timeout=120)
    rows = [json.loads(line) for line in r.stdout.decode().splitlines() if line.startswith("{")]
    vm.conformance(r.stdout)
    return r, {row["case"]: row for row in rows if "case" in row}


def test_get_device_id_through_the_driver_is_the_bmcs_answer(vhw_machine):
    """IPMI 2.0 §20.1: what ipmitool gets through /dev/ipmi0 is the BMC's own Get Device ID."""
    rsp = vhw_machine.bmc.request(0x06, 0x01)
    assert rsp.cc == 0
    out = vhw_machine.sh("ipmitool -I open raw 6 1")
    assert bytes(int(x, 16) for x in out.split()) == bytes(rsp.data)


def test_receive_on_an_empty_queue_is_eagain(vhw_machine):
    """ipmi(7D) (seed 000): IPMICTL_RECEIVE_MSG with nothing queued fails with EAGAIN,
    on a fresh fd, after draining, with TRUNC and on an O_NONBLOCK fd."""
    r, cases = ipmi_conform(vhw_machine, "recv_eagain")
    assert cases["recv_eagain"]["ok"], cases
    assert r.returncode == 0, r.stdout.decode()


def test_driver_recovers_after_a_bmc_disconnect(vhw_machine):
    """ipmi-extern.md §6: while the extern socket is down QEMU answers 0xD2 (BMC
    initialization in progress, IPMI 2.0 table 5-2); after it reconnects the driver works."""
    reconnected = vhw_machine.faults.bmc.disconnect(seconds=2)
    r = vhw_machine.run("ipmitool -I open raw 6 1")
    assert r.returncode == 1 and b"rsp=0xd2" in r.stderr, r
    reconnected.result(30)
    # QEMU reconnects within its reconnect=1 second; then the driver's requests get answers again.
    vhw_machine.wait_for(lambda: vhw_machine.run("ipmitool -I open raw 6 1").returncode == 0, 30,
                         "answer through the driver after the reconnect")
    assert vhw_machine.faults.fired("bmc.disconnect")


def test_a_late_response_is_0xc3_and_the_next_request_works(vhw_machine):
    """ipmi-extern.md §7: QEMU waits 4 s for the BMC, then answers 0xC3 (Timeout, table 5-2)
    itself and drops the late response; the driver must not pair it with the next request."""
    asked = time.time()
    vhw_machine.faults.bmc.delay(5, netfn=6, cmd=7, count=1)
    r = vhw_machine.run("ipmitool -I open raw 6 7")
    assert r.returncode == 1 and b"rsp=0xc3" in r.stderr, r
    # The late answer (Get ACPI Power State, response NetFn 07h) reaches QEMU now and must be dropped.
    vhw_machine.wait_for(lambda: vhw_machine.responses("ipmi-kcs", 0x07, 0x07, since=asked), 10,
                         "late Get ACPI Power State response")
    out = vhw_machine.sh("ipmitool -I open raw 6 1")
    assert len(out.split()) >= 11  # a Get Device ID answer, not the stale Get ACPI Power State one


def test_node_busy_reaches_userland_then_clears(vhw_machine):
    """IPMI 2.0 table 5-2: completion code 0xC0 (node busy) is returned to the caller as is."""
    vhw_machine.faults.bmc.completion_code(0xC0, netfn=6, cmd=7, count=2)
    for _ in range(2):
        r = vhw_machine.run("ipmitool -I open raw 6 7")
        assert r.returncode == 1 and b"rsp=0xc0" in r.stderr, r
    assert vhw_machine.run("ipmitool -I open raw 6 7").returncode == 0


def test_a_corrupt_checksum_is_not_delivered_as_a_response(vhw_machine):
    """ipmi-extern.md §3-§4 ("silent drops"): QEMU drops a response whose checksum is wrong, so the driver
    sees the 0xC3 timeout QEMU makes up, never a corrupted answer."""
    vhw_machine.faults.bmc.corrupt_checksum(netfn=6, cmd=7, count=1)
    r = vhw_machine.run("ipmitool -I open raw 6 7")
    assert r.returncode == 1 and b"rsp=0xc3" in r.stderr, r
    assert vhw_machine.run("ipmitool -I open raw 6 7").returncode == 0
