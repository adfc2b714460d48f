"""LAVA: a vhw machine as a LAVA device, and a LAVA job's results as vhw's.

A farm runs vhw's machines with LAVA's own engine: ``vhw lava render``
writes, for a description and a built guest,

- ``vhw-qemu.jinja2``: a device type extending LAVA's ``qemu.jinja2`` with
  the chardev/device options of the description's BMC (the same
  ``ipmi-bmc-extern`` options vhw.machine.qemu builds for ``vhw run``),
- ``<device>.jinja2``: the device dictionary (arch, no_kvm, memory, the BMC's
  socket, and user_commands that start and stop ``vhw bmc`` beside QEMU),
- ``<device>.yaml``: the device dictionary rendered through LAVA's templates,
  what ``lava-run --device`` reads when no server renders it,
- ``job.yaml``: deploy the guest's kernel and initramfs (file://, tmpfs),
  boot with method qemu, log in on the console, and run interactive driver
  checks (ipmitool against the BMC) that LAVA records as test cases.

``results_from_lava`` maps what lava-run logged back to JUnit XML and to
the results JSON ``vhw report`` reads (docs/lava.md).
"""

from __future__ import annotations

import os
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import VhwError
from ..machine.description import Description
from ..machine.qemu import extern_bmc_args, kernel_command_line

#: The name of the device type vhw renders (its template is vhw-qemu.jinja2).
DEVICE_TYPE = "vhw-qemu"

#: Where LAVA keeps device-type templates: a server's dispatcher-config, the
#: lava-server package, or the copy `make deps` unpacks from that package.
TEMPLATE_DIRS = (
    "/etc/lava-server/dispatcher-config/device-types",
    "/usr/share/lava-server/device-types",
)

#: The linux-x86 guest's console login (guest-images/linux-x86/init, vhw.access=console).
LOGIN = {"login_prompt": "login:", "username": "root", "password_prompt": "Password:", "password": "vhw"}
PROMPT = "# "

#: Interactive checks: (LAVA case name, command, what success prints, what failure prints).
#: ipmitool's "mc info" is Get Device ID (IPMI 2.0 §20.1); "chassis status" is §28.2;
#: ipmi_conform runs seed 000's default ipmi(7D) cases through the interface's driver
#: (a JSON line per case, exit status 1 when one failed). The console echoes each
#: command, so a success marker is one the shell computes ($((6*7))), never text of the
#: command itself.
DRIVER_CHECKS = (
    ("ipmi-devintf", "ls /dev/ipmi0 && echo devnode=$((6*7))", "devnode=42", "No such file"),
    ("mc-info", "ipmitool mc info", "IPMI Version", "Could not open device"),
    ("chassis-status", "ipmitool chassis status", "System Power", "Could not open device"),
    ("sdr-list", "ipmitool sdr list && echo sdr=$((6*7))", "sdr=42", "Could not open device"),
    ("ipmi-conform", "ipmi_conform -i {interface} && echo conform=$((6*7))", "conform=42", '"ok": false'),
)


def driver_checks(interface: str) -> list[tuple[str, str, str, str]]:
    """DRIVER_CHECKS for the device's BMC interface."""
    return [(name, cmd.format(interface=interface), ok, bad) for name, cmd, ok, bad in DRIVER_CHECKS]


class LavaError(VhwError):
    """A description LAVA cannot run, or no LAVA templates to render with."""


def template_dirs() -> list[Path]:
    """Directories holding qemu.jinja2 and base.jinja2, $VHW_LAVA_TEMPLATES first."""
    dirs = [os.environ["VHW_LAVA_TEMPLATES"]] if os.environ.get("VHW_LAVA_TEMPLATES") else []
    from ..guests.images import cache_dir

    dirs.append(str(cache_dir() / "lava" / "device-types"))
    dirs += TEMPLATE_DIRS
    return [Path(d) for d in dirs if (Path(d) / "qemu.jinja2").is_file()]


@dataclass(frozen=True)
class LavaDevice:
    """What the device's files need to know about one vhw machine on one host."""

    name: str
    #: The description file `vhw bmc --config` reads (absolute).
    config: Path
    #: Directory for the BMC's socket, pid file and log on the dispatcher host.
    run_dir: Path
    #: How the user_commands run vhw (an absolute path to the vhw script, or "python3 -m vhw").
    vhw: str = "vhw"

    @property
    def socket(self) -> Path:
        return self.run_dir / "bmc.sock"


def check_description(desc: Description) -> str:
    """The one BMC interface the LAVA device carries; a clear error for what it cannot carry."""
    if desc.machine.guest != "linux-x86":
        raise LavaError(f"vhw lava renders built linux-x86 guests (kernel + initramfs over tmpfs); "
                        f"{desc.machine.guest} is not one")
    if desc.i2o:
        raise LavaError("I2O IOPs need vhw's launcher (x-pci-proxy-dev sockets passed to QEMU); "
                        "a LAVA device carries a BMC only")
    if desc.bmc is None or desc.bmc.backend != "vhw":
        raise LavaError("the description needs a [bmc] with backend \"vhw\" (the device's user_commands run vhw bmc)")
    if len(desc.bmc.interfaces) != 1:
        raise LavaError("vhw bmc serves one interface per process; give the LAVA device's description "
                        f"one of kcs, bt, ssif (it has {', '.join(desc.bmc.interfaces)})")
    return desc.bmc.interfaces[0]


def qemu_options(desc: Description, device: LavaDevice) -> list[str]:
    """vhw's QEMU options for the device type: the machine and the BMC's extern link."""
    interface = check_description(desc)
    args = ["-machine", desc.machine.type, "-smp", str(desc.machine.cpus)]
    if desc.machine.firmware == "qboot":
        args += ["-bios", "qboot.rom"]
    args += extern_bmc_args((interface,), {interface: f"path={device.socket},reconnect=1"})
    # LAVA's options are one string per list entry: pair each flag with its value.
    return [f"{args[i]} {args[i + 1]}" for i in range(0, len(args), 2)]


def _yaml_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def device_type_template() -> str:
    """vhw-qemu.jinja2: LAVA's qemu device type with vhw's options first in its options list."""
    return (
        "{# device_type: vhw-qemu #}\n"
        "{# LAVA's qemu device type and the options of vhw's devices (vhw lava render) #}\n"
        "{% extends 'qemu.jinja2' %}\n"
        "{% block qemu_options %}\n"
        "{% for option in vhw_qemu_options %}\n"
        "          - {{ option }}\n"
        "{% endfor %}\n"
        "{{ super() }}\n"
        "{%- endblock qemu_options %}\n"
    )


def bmc_commands(device: LavaDevice) -> dict[str, dict[str, str]]:
    """user_commands: start ``vhw bmc`` on the device's socket before QEMU, stop it at the end."""
    base = f"{device.vhw} lava bmc --config {shlex.quote(str(device.config))} --run-dir {shlex.quote(str(device.run_dir))}"
    return {"vhw_bmc_start": {"do": f"{base} start", "undo": f"{base} stop"}}


def device_dictionary(desc: Description, device: LavaDevice) -> str:
    """<device>.jinja2: the device dictionary a LAVA server stores for this machine."""
    lines = [
        f"{{# vhw machine {desc.machine.name}: {device.name} #}}",
        "{% extends 'vhw-qemu.jinja2' %}",
        "{% set arch = 'amd64' %}",
        "{% set no_kvm = True %}",
        f"{{% set memory = {desc.machine.memory} %}}",
        "{% set netdevice = 'user,restrict=on' %}",
        "{% set vhw_qemu_options = [" + ", ".join(_yaml_str(o) for o in qemu_options(desc, device)) + "] %}",
        "{% set user_commands = {",
    ]
    for name, cmd in bmc_commands(device).items():
        lines.append(f"  {_yaml_str(name)}: {{'do': {_yaml_str(cmd['do'])}, 'undo': {_yaml_str(cmd['undo'])}}},")
    lines.append("} %}")
    return "\n".join(lines) + "\n"


def render_device(dictionary: str, type_template: str, dirs: list[Path] | None = None) -> str:
    """The device YAML lava-run reads: the dictionary through vhw-qemu.jinja2 and LAVA's templates."""
    import jinja2

    dirs = template_dirs() if dirs is None else dirs
    if not dirs:
        raise LavaError("no LAVA device-type templates (qemu.jinja2): install lava-server, or run `make deps` "
                        "(it unpacks them from the lava-server package), or set VHW_LAVA_TEMPLATES")
    loader = jinja2.ChoiceLoader([
        jinja2.DictLoader({"vhw-qemu.jinja2": type_template, "device.jinja2": dictionary}),
        jinja2.FileSystemLoader([str(d) for d in dirs]),
    ])
    # LAVA's own settings for its templates (lava_server/files: trim_blocks, autoescape off).
    env = jinja2.Environment(loader=loader, trim_blocks=True, autoescape=False)
    return env.get_template("device.jinja2").render()


def kernel_append(desc: Description) -> str:
    """The guest's command line: console access (no agent under LAVA), its drivers' modules."""
    # Not quiet: LAVA waits for the kernel's "Linux version" banner before the login prompt.
    return kernel_command_line(desc, agent=False, quiet=False)


def job_definition(desc: Description, image, *, device_type: str = DEVICE_TYPE) -> dict:
    """job.yaml as a dict: deploy the built image over file://, boot qemu, run the driver checks."""
    interface = check_description(desc)
    script = [{"command": cmd, "name": name, "successes": [{"message": ok}], "failures": [{"message": bad}]}
              for name, cmd, ok, bad in driver_checks(interface)]
    return {
        "device_type": device_type,
        "job_name": f"vhw {desc.machine.name} on {desc.machine.guest}",
        "priority": "medium",
        "visibility": "public",
        # qemu.jinja2 picks the QEMU binary from the device's arch; the dispatcher checks the job's.
        "context": {"arch": "amd64"},
        "timeouts": {"job": {"minutes": 10}, "action": {"minutes": 5}, "connection": {"minutes": 2}},
        "actions": [
            {"command": {"name": "vhw_bmc_start"}},
            {"deploy": {
                "to": "tmpfs",
                "timeout": {"minutes": 2},
                "images": {
                    "kernel": {"image_arg": f"-kernel {{kernel}} -append '{kernel_append(desc)}'",
                               "url": f"file://{image.kernel}"},
                    "initrd": {"image_arg": "-initrd {initrd}", "url": f"file://{image.initrd}"},
                },
            }},
            {"boot": {
                "method": "qemu",
                "media": "tmpfs",
                "timeout": {"minutes": 3},
                "auto_login": dict(LOGIN),
                "prompts": [PROMPT],
            }},
            {"test": {
                "timeout": {"minutes": 5},
                "interactive": [{"name": "vhw-drivers", "prompts": [PROMPT], "script": script}],
            }},
        ],
    }


def render(desc: Description, image, out: Path, *, device_name: str, config: Path, run_dir: Path,
           vhw: str = "vhw") -> dict[str, Path]:
    """Write the four files into ``out``; the device YAML only where LAVA's templates are found."""
    import yaml  # type: ignore[import-untyped]

    device = LavaDevice(device_name, config.resolve(), run_dir.resolve(), vhw)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "device-type": out / f"{DEVICE_TYPE}.jinja2",
        "dictionary": out / f"{device_name}.jinja2",
        "job": out / "job.yaml",
    }
    files["device-type"].write_text(device_type_template())
    dictionary = device_dictionary(desc, device)
    files["dictionary"].write_text(dictionary)
    files["job"].write_text(yaml.safe_dump(job_definition(desc, image), sort_keys=False))
    if template_dirs():
        files["device"] = out / f"{device_name}.yaml"
        files["device"].write_text(render_device(dictionary, device_type_template()))
    return files


# -- results ---------------------------------------------------------------------


@dataclass(frozen=True)
class LavaCase:
    suite: str
    name: str
    #: LAVA's result: pass, fail, skip or unknown.
    result: str
    duration: float = 0.0
    detail: str = ""


def read_lava_log(text: str) -> list[dict]:
    """lava-run's log: JSON lines (offline, on its stderr), or a server's output.yaml (a YAML list)."""
    import json

    if text.lstrip().startswith("- "):
        import yaml  # type: ignore[import-untyped]

        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as e:
            raise LavaError(f"not a LAVA output.yaml: {e}") from None
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
    entries = []
    for line in text.splitlines():
        try:
            # strict=False: a guest's console output carries control characters.
            entry = json.loads(line, strict=False)
        except ValueError:
            continue  # lava-run's own non-JSON lines (a Python warning, a traceback)
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def read_lava_results(log: Path) -> list[LavaCase]:
    """The test cases a LAVA job logged (its ``lvl: results`` entries), in order; or a
    server's results list (``lavacli results JOB_ID --yaml``)."""
    if not log.is_file():
        raise LavaError(f"{log}: no LAVA log (lava-run's output, a job's output.yaml, or its results YAML)")
    cases = []
    for entry in read_lava_log(log.read_text(errors="replace")):
        msg = entry.get("msg")
        if "lvl" not in entry and {"suite", "name", "result"} <= entry.keys():
            # `lavacli results JOB_ID --yaml`: the server's results, one dict per case.
            msg = {**entry, "definition": entry["suite"], "case": entry["name"]}
            meta = entry.get("metadata")
            if isinstance(meta, dict):
                msg.setdefault("extra", meta.get("extra"))
                msg["error_msg"] = msg.get("error_msg") or meta.get("error_msg")
        elif entry.get("lvl") != "results" or not isinstance(msg, dict):
            continue
        extra = msg.get("extra")
        detail = str(msg.get("error_msg") or "")
        if isinstance(extra, dict):
            detail = detail or str(extra.get("fail") or "")
        try:
            duration = float(msg.get("duration") or 0.0)
        except (TypeError, ValueError):
            duration = 0.0
        cases.append(LavaCase(str(msg.get("definition", "lava")), str(msg.get("case", "?")),
                              str(msg.get("result", "unknown")), duration, detail.strip()))
    return cases


def to_junit(cases: list[LavaCase], name: str) -> str:
    """JUnit XML: one testsuite per LAVA test definition (``lava`` holds LAVA's own actions)."""
    root = ET.Element("testsuites", name=name)
    suites: dict[str, ET.Element] = {}
    for case in cases:
        suite = suites.get(case.suite)
        if suite is None:
            suite = suites[case.suite] = ET.SubElement(root, "testsuite", name=case.suite)
        el = ET.SubElement(suite, "testcase", classname=f"lava.{case.suite}", name=case.name,
                           time=f"{case.duration:.3f}")
        if case.result == "fail":
            ET.SubElement(el, "failure", message=case.detail or "LAVA result: fail")
        elif case.result == "skip":
            ET.SubElement(el, "skipped", message=case.detail or "LAVA result: skip")
        elif case.result != "pass":
            ET.SubElement(el, "error", message=f"LAVA result: {case.result}")
    for suite in suites.values():
        children = list(suite)
        suite.set("tests", str(len(children)))
        suite.set("failures", str(sum(c.find("failure") is not None for c in children)))
        suite.set("errors", str(sum(c.find("error") is not None for c in children)))
        suite.set("skipped", str(sum(c.find("skipped") is not None for c in children)))
    return ET.tostring(root, encoding="unicode")


def to_vhw_results(cases: list[LavaCase], desc: Description, *, job: str) -> dict:
    """One results JSON for `vhw report` (docs/report.md): the job as a test, the checks as cases."""
    checks = [c for c in cases if c.suite != "lava"]
    lava_failed = [c for c in cases if c.suite == "lava" and c.result == "fail"]
    failed = [c for c in checks if c.result != "pass"] + lava_failed
    devices = [f"bmc:{i}" for i in (desc.bmc.interfaces if desc.bmc else ())]
    findings = [{"severity": "error", "summary": "test failed",
                 "evidence": "; ".join(f"{c.suite}/{c.name}: {c.result} {c.detail}".strip() for c in failed)}] \
        if failed or not checks else []
    if not checks:
        findings[0]["evidence"] = "LAVA recorded no test cases from the job's test action"
    return {
        "test": f"lava::{job}",
        "outcome": "failed" if findings else "passed",
        "duration": sum(c.duration for c in cases),
        "guest": desc.machine.guest,
        "machine": desc.machine.name,
        "devices": devices,
        "cases": [{"name": f"{c.suite}.{c.name}", "outcome": {"pass": "pass", "skip": "skip"}.get(c.result, "fail"),
                   "detail": c.detail} for c in checks],
        "findings": findings,
    }
