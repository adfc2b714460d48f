"""One LAVA job, offline: lava-run (no server) boots the linux-x86 guest under
TCG against vhw's BMC (started by the device's user_commands) and runs the
interactive driver checks; the results map to JUnit XML and `vhw report`."""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from vhw.farm.lava import DRIVER_CHECKS, read_lava_results, template_dirs
from vhw.report import load

pytestmark = [
    pytest.mark.skipif(shutil.which("lava-run") is None,
                       reason="lava-run not installed (Debian: apt-get install lava-dispatcher; `make deps`)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="lava-run works in /var/lib/lava/dispatcher (root only)"),
    pytest.mark.skipif(not template_dirs(),
                       reason="LAVA's device-type templates (qemu.jinja2) not found: `make deps` unpacks them "
                              "from the lava-server package"),
]

DESCRIPTION = """\
[machine]
name = "lava-e2e"
guest = "linux-x86"
access = "console"
[bmc]
interfaces = ["kcs"]
"""


def _vhw(*args, **kw):
    return subprocess.run([sys.executable, "-m", "vhw", *args], capture_output=True, text=True, **kw)


def test_lava_run_boots_the_guest_and_records_the_driver_checks(tmp_path, linux_image):
    machine = tmp_path / "machine.toml"
    machine.write_text(DESCRIPTION)
    out = tmp_path / "lava"
    rendered = _vhw("lava", "render", "-m", str(machine), "--run-dir", str(tmp_path / "run"), "-o", str(out))
    assert rendered.returncode == 0, rendered.stderr
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    log = job_dir / "lava.log"
    with log.open("w") as f:  # the job id is this process's: parallel runs' dispatcher directories never meet
        run = subprocess.run(["lava-run", "--device", str(out / "vhw-lava-e2e.yaml"), "--job-id", str(os.getpid()),
                              "--output-dir", str(job_dir), str(out / "job.yaml")],
                             stdout=f, stderr=subprocess.STDOUT, timeout=600)
    cases = {(c.suite, c.name): c.result for c in read_lava_results(log)}
    assert run.returncode == 0, log.read_text()[-4000:]
    assert cases[("lava", "job")] == "pass"
    assert cases[("lava", "login-action")] == "pass"
    for name, *_ in DRIVER_CHECKS:
        assert cases[("0_vhw-drivers", name)] == "pass", name
    # The checks reached vhw's BMC: Get Device ID's answer is in the console log.
    assert "Manufacturer ID           : 32473" in log.read_text()
    # user_commands' undo stopped the BMC it started.
    assert not (tmp_path / "run" / "bmc.pid").exists()

    junit, results = tmp_path / "junit.xml", tmp_path / "results" / "lava.json"
    mapped = _vhw("lava", "results", str(log), "-m", str(machine), "--junit", str(junit),
                  "--vhw-results", str(results))
    assert mapped.returncode == 0, mapped.stdout + mapped.stderr
    root = ET.parse(junit).getroot()
    names = {c.get("name") for c in root.iter("testcase")}
    assert {n for n, *_ in DRIVER_CHECKS} <= names
    assert not list(root.iter("failure"))
    data = json.loads(results.read_text())
    assert data["outcome"] == "passed" and data["devices"] == ["bmc:kcs"]
    report = load([results.parent])
    assert report.totals()["passed"] == 1
    assert len(report.tests[0].cases) == len(DRIVER_CHECKS)
