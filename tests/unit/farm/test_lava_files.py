"""vhw lava: the rendered device type, dictionary, device YAML and job, and
the mapping of a LAVA job's log to JUnit and `vhw report` results."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

yaml = pytest.importorskip("yaml")
pytest.importorskip("jinja2")

from vhw.farm.lava import (DRIVER_CHECKS, driver_checks, LavaCase, LavaDevice, LavaError, device_dictionary,  # noqa: E402
                      device_type_template, job_definition, read_lava_results, render_device,
                      to_junit, to_vhw_results)
from vhw.machine.description import parse_description  # noqa: E402
from vhw.report import load  # noqa: E402

DEVICE = LavaDevice("vhw-t", Path("/etc/vhw/t.toml"), Path("/run/vhw-lava/vhw-t"), "/usr/bin/vhw")
IMAGE = SimpleNamespace(kernel=Path("/cache/vmlinux"), initrd=Path("/cache/initramfs.cpio.lz4"))

#: A stand-in for LAVA's base.jinja2 + qemu.jinja2 (the real ones are in the
#: lava-server package): the same block names and the variables vhw sets.
BASE = """{% block commands %}{% if user_commands %}commands:
    users:
{% for name, command in user_commands.items() %}
      {{ name }}:
        do: {{ command['do'] }}
        undo: {{ command['undo'] }}
{% endfor %}{% endif %}{% endblock commands %}
{% block body %}{% endblock body %}
"""
QEMU = """{% extends 'base.jinja2' %}
{% block body %}
actions:
  boot:
    methods:
      qemu:
        parameters:
          command: qemu-system-x86_64
          options:
{% block qemu_options %}
{% if not no_kvm %}
          - -enable-kvm
{% endif %}
          - -m {{ memory|default(512) }}
{% endblock qemu_options -%}
{% endblock body %}
"""


def desc(bmc="interfaces = [\"kcs\"]", guest="linux-x86"):
    import tomllib

    return parse_description(tomllib.loads(f"[machine]\nname = \"t\"\nguest = \"{guest}\"\n[bmc]\n{bmc}\n"))


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "base.jinja2").write_text(BASE)
    (tmp_path / "qemu.jinja2").write_text(QEMU)
    return [tmp_path]


def test_device_yaml_has_vhws_bmc_options_and_user_commands(templates):
    device = yaml.safe_load(render_device(device_dictionary(desc(), DEVICE), device_type_template(), templates))
    options = device["actions"]["boot"]["methods"]["qemu"]["parameters"]["options"]
    # The extern link vhw.machine.qemu builds, on the device's socket (ipmi-extern.md §15).
    assert "-chardev socket,id=ipmi0,path=/run/vhw-lava/vhw-t/bmc.sock,reconnect=1" in options
    assert "-device ipmi-bmc-extern,id=bmc0,chardev=ipmi0" in options
    assert "-device isa-ipmi-kcs,bmc=bmc0" in options
    assert "-machine q35" in options and "-m 256" in options
    assert "-enable-kvm" not in options  # no_kvm: TCG
    users = device["commands"]["users"]["vhw_bmc_start"]
    assert users["do"].endswith("--run-dir /run/vhw-lava/vhw-t start")
    assert users["undo"].endswith("--run-dir /run/vhw-lava/vhw-t stop")
    assert "--config /etc/vhw/t.toml" in users["do"]


def test_ssif_gets_its_address_and_its_conformance_run():
    d = desc('interfaces = ["ssif"]')
    assert "-device smbus-ipmi,bmc=bmc0,address=0x10" in device_dictionary(d, DEVICE)
    script = job_definition(d, IMAGE)["actions"][3]["test"]["interactive"][0]["script"]
    assert script[-1]["command"] == "ipmi_conform -i ssif && echo conform=$((6*7))"
    assert "vhw.mods=i2c-i801,ipmi_ssif,ipmi_devintf" in job_definition(d, IMAGE)["actions"][1]["deploy"][
        "images"]["kernel"]["image_arg"]


def test_job_deploys_the_image_boots_qemu_and_runs_each_check():
    job = yaml.safe_load(yaml.safe_dump(job_definition(desc(), IMAGE)))
    actions = job["actions"]
    assert actions[0] == {"command": {"name": "vhw_bmc_start"}}
    deploy, boot, test = actions[1]["deploy"], actions[2]["boot"], actions[3]["test"]
    assert deploy["to"] == "tmpfs"
    assert deploy["images"]["kernel"]["url"] == "file:///cache/vmlinux"
    assert "vhw.access=console" in deploy["images"]["kernel"]["image_arg"]
    assert "vhw.mods=ipmi_si,ipmi_devintf" in deploy["images"]["kernel"]["image_arg"]
    assert deploy["images"]["initrd"]["url"] == "file:///cache/initramfs.cpio.lz4"
    assert boot["method"] == "qemu" and boot["auto_login"]["username"] == "root"
    script = test["interactive"][0]["script"]
    assert [s["name"] for s in script] == [n for n, *_ in DRIVER_CHECKS]
    assert job["context"]["arch"] == "amd64"


@pytest.mark.parametrize("bmc, guest, words", [
    ('interfaces = ["kcs", "bt"]', "linux-x86", "one interface per process"),
    ('backend = "qemu"\ninterfaces = ["kcs"]', "linux-x86", "backend"),
    ('interfaces = ["kcs"]', "freebsd-14", "built linux-x86"),
])
def test_what_a_lava_device_cannot_carry_is_a_clear_error(bmc, guest, words):
    with pytest.raises(LavaError, match=words):
        job_definition(desc(bmc, guest), IMAGE)


def test_no_templates_is_a_clear_error():
    with pytest.raises(LavaError, match="qemu.jinja2"):
        render_device("x", "y", [])


LOG = [
    {"dt": "t", "lvl": "info", "msg": "start: 0 validate"},
    {"dt": "t", "lvl": "results", "msg": {"case": "validate", "definition": "lava", "result": "pass"}},
    {"dt": "t", "lvl": "target", "msg": "\x1b[6nipmitool mc info"},
    {"dt": "t", "lvl": "results", "msg": {"case": "mc-info", "definition": "0_vhw-drivers", "duration": "0.87",
                                          "result": "pass"}},
    {"dt": "t", "lvl": "results", "msg": {"case": "sdr-list", "definition": "0_vhw-drivers", "duration": "0.2",
                                          "result": "fail", "extra": {"fail": "matched Error"}}},
    {"dt": "t", "lvl": "results", "msg": {"case": "job", "definition": "lava", "result": "fail",
                                          "error_msg": "TestError"}},
]


def test_lava_run_json_lines_and_output_yaml_read_the_same(tmp_path):
    lines = tmp_path / "lava.log"
    lines.write_text("not json\n" + "\n".join(json.dumps(e) for e in LOG) + "\n")
    server = tmp_path / "output.yaml"
    server.write_text(yaml.safe_dump(LOG))
    cases = read_lava_results(lines)
    assert cases == read_lava_results(server)
    assert [(c.suite, c.name, c.result) for c in cases] == [
        ("lava", "validate", "pass"), ("0_vhw-drivers", "mc-info", "pass"),
        ("0_vhw-drivers", "sdr-list", "fail"), ("lava", "job", "fail")]
    assert cases[1].duration == pytest.approx(0.87)
    assert cases[2].detail == "matched Error"
    # The server's results list (lavacli results JOB_ID --yaml) reads as the same cases.
    results = tmp_path / "results.yaml"
    results.write_text(yaml.safe_dump([
        {"suite": e["msg"]["definition"], "name": e["msg"]["case"], "result": e["msg"]["result"],
         "duration": e["msg"].get("duration", ""), "metadata": {"extra": e["msg"].get("extra")},
         "error_msg": e["msg"].get("error_msg")}
        for e in LOG if e["lvl"] == "results"]))
    assert [(c.suite, c.name, c.result, c.detail) for c in read_lava_results(results)] == \
        [(c.suite, c.name, c.result, c.detail) for c in cases]
    with pytest.raises(LavaError, match="no LAVA log"):
        read_lava_results(tmp_path / "missing.log")


def test_junit_marks_failures_and_skips():
    cases = [LavaCase("s", "a", "pass", 1.0), LavaCase("s", "b", "fail", 0.5, "why"),
             LavaCase("s", "c", "skip"), LavaCase("lava", "job", "unknown")]
    root = ET.fromstring(to_junit(cases, "job"))
    suite = root.find("testsuite[@name='s']")
    assert suite.get("tests") == "3"
    assert suite.get("failures") == "1" and suite.get("skipped") == "1"
    assert root.find(".//testcase[@name='b']/failure").get("message") == "why"
    assert root.find(".//testcase[@name='job']/error") is not None


def test_vhw_results_fail_on_a_failed_check_and_on_no_checks(tmp_path):
    d = desc()
    passed = to_vhw_results([LavaCase("0_vhw-drivers", "mc-info", "pass"), LavaCase("lava", "job", "pass")], d,
                            job="j1")
    assert passed["outcome"] == "passed" and passed["devices"] == ["bmc:kcs"]
    assert passed["cases"] == [{"name": "0_vhw-drivers.mc-info", "outcome": "pass", "detail": ""}]
    failed = to_vhw_results([LavaCase("0_vhw-drivers", "mc-info", "fail", detail="Error")], d, job="j2")
    assert failed["outcome"] == "failed" and "mc-info: fail Error" in failed["findings"][0]["evidence"]
    empty = to_vhw_results([LavaCase("lava", "job", "pass")], d, job="j3")
    assert empty["outcome"] == "failed" and "no test cases" in empty["findings"][0]["evidence"]
    (tmp_path / "r.json").write_text(json.dumps(failed))
    report = load([tmp_path / "r.json"])
    assert report.totals()["failed"] == 1 and report.tests[0].guest == "linux-x86"


def test_lavas_own_qemu_template_renders_the_dictionary_to_valid_yaml():
    from vhw.farm.lava import template_dirs

    dirs = template_dirs()
    if not dirs:
        pytest.skip("LAVA's qemu.jinja2 not installed (`make deps` unpacks it from the lava-server package)")
    device = yaml.safe_load(render_device(device_dictionary(desc(), DEVICE), device_type_template(), dirs))
    qemu = device["actions"]["boot"]["methods"]["qemu"]["parameters"]
    assert qemu["command"] == "qemu-system-x86_64"
    assert "-device ipmi-bmc-extern,id=bmc0,chardev=ipmi0" in qemu["options"]
    assert "-cpu host" not in qemu["options"]  # no_kvm
    assert set(device["commands"]["users"]) == {"vhw_bmc_start"}


def test_no_success_marker_is_in_its_own_command():
    """The console echoes the command; a marker found in the echo would pass without the device."""
    for name, command, ok, bad in driver_checks("kcs"):
        assert ok not in command and bad not in command, name
