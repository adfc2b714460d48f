"""One conformance battery per system interface: the same ipmi(7D) semantics over BT and SSIF.

The marker comes with the parameter, so each case boots its own machine.
"""

import json

import pytest


def bmc_on(interface):
    # The driver names (ipmi_si, ipmi_ssif in lsmod) are Linux's.
    return pytest.mark.vhw(description={"machine": {"name": f"if-{interface}"},
                                        "bmc": {"backend": "vhw", "interfaces": [interface]}}, needs=["os:linux"])


@pytest.mark.parametrize("interface,driver", [
    pytest.param("bt", "ipmi_si", marks=bmc_on("bt"), id="bt"),
    pytest.param("ssif", "ipmi_ssif", marks=bmc_on("ssif"), id="ssif"),
])
def test_default_conformance_cases_pass(vhw_machine, interface, driver):
    """Seed 000 ipmi(7D) through each driver: ipmi_conform's default cases all pass
    (Linux deviations from the seed are recorded as findings, not failures)."""
    r = vhw_machine.run(f"{vhw_machine.program('ipmi_conform')} -i {interface}", timeout=180)
    cases = vhw_machine.conformance(r.stdout)
    failed = [c for c in cases if c["outcome"] == "fail"]
    assert cases and not failed, failed
    assert r.returncode == 0
    rows = [json.loads(line) for line in r.stdout.decode().splitlines() if line.startswith("{")]
    assert rows[-1]["summary"]["failed"] == 0
    assert driver in vhw_machine.sh("lsmod")
