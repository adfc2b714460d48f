"""`vhw guest test NAME` for a downloaded guest: its recipe's checks, one result per step.

The guest (FreeBSD, illumos, NetBSD) boots in an ordinary Machine reached
over its serial console, with vhw's BMC on the interfaces its driver knows
and chassis commands acting on this QEMU through QMP.  ``run_recipe`` loads
the driver, runs the recipe's checks, builds ``ipmi_raw`` and vhw's
conformance programs (ipmi_conform, and ptosm_conform or openprom_conform
where the OS has their driver) inside the guest where it has a compiler,
and writes a results file in the pytest plugin's schema, with each
program's cases and the OS's deviations as findings, so `vhw report` shows
it beside the driver tests.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

from ..errors import GuestError
from .images import source_root
from .remote import RemoteRecipe


@dataclass
class StepResult:
    name: str
    outcome: str  # pass / fail / skip
    detail: str = ""


def recipe_description(recipe: RemoteRecipe, *, name: str | None = None):
    """The machine a recipe's guest test boots: vhw's BMC on the interfaces its OS drives."""
    from ..machine.description import parse_description

    table: dict = {"machine": {"name": name or recipe.name, "guest": recipe.name, "type": recipe.machine_type,
                               "memory": recipe.memory, "firmware": "seabios", "boot-timeout": recipe.boot_timeout,
                               "access": "console"}}
    if recipe.interfaces:
        table["bmc"] = {"backend": "vhw", "interfaces": list(recipe.interfaces)}
    return parse_description(table, f"<guest {recipe.name}>")


async def run_recipe(machine, recipe: RemoteRecipe, *, results: Path | None = None) -> list[StepResult]:
    """The recipe's whole test on a started (logged-in) machine; one StepResult per step."""
    steps: list[StepResult] = [StepResult("login", "pass", f"{machine.boot.to_ready:.0f} s to a shell")]
    findings: list[dict] = []
    started = time.monotonic()
    try:
        for command in recipe.setup:
            await machine.run(command, timeout=300)
        for check in recipe.checks:
            r = await machine.run(check.command, timeout=300)
            out = (r.stdout + r.stderr).decode(errors="replace")
            steps.append(StepResult(check.name, "pass" if r.returncode == 0 else "fail",
                                    _last_line(out) if r.returncode == 0
                                    else f"exit status {r.returncode}: {out.strip()[-300:]}"))
        if recipe.build_ipmi_raw:
            steps += await _ipmi_raw(machine)
        for name in ("ipmi_conform", "ptosm_conform", "openprom_conform"):
            steps += await _conformance(machine, recipe, name, findings)
    except GuestError as e:
        steps.append(StepResult("console", "fail", str(e)[-600:]))
    if results is not None:
        write_results(results, recipe, steps, time.monotonic() - started, machine.workdir, findings=findings)
    return steps


async def _conformance(machine, recipe: RemoteRecipe, name: str, findings: list[dict]) -> list[StepResult]:
    """Build one of vhw's conformance programs in the guest, run it, its cases as steps (``name:case``)."""
    from . import programs

    spec = programs.program(name).os.get(recipe.os)
    if spec is None:
        return []  # nothing to test on this OS (no such driver)
    r = await machine.run(f"test -e {spec.device}", timeout=60)
    if r.returncode != 0:
        return [StepResult(name, "skip", f"no {spec.device} in the guest")]
    try:
        command = await programs.ensure(machine, name, recipe.os)
    except programs.ProgramUnavailable as e:
        return [StepResult(name, "skip", str(e))]
    except programs.ProgramError as e:
        return [StepResult(f"build-{name}", "fail", str(e)[-600:])]
    r = await machine.run(" ".join([command, *spec.args]), timeout=900)
    text = r.stdout.decode(errors="replace")
    if r.returncode == programs.EXIT_NOTHING_TO_TEST:
        return [StepResult(name, "skip", text.strip()[-300:] or "nothing to test on this OS")]
    cases, found = programs.results(spec.output, text)
    findings += [{"severity": f.severity, "summary": f"{name} {f.summary}", "evidence": f.evidence} for f in found]
    steps = [StepResult(f"{name}:{c.name}", c.outcome, c.detail) for c in cases]
    if not cases:
        steps.append(StepResult(name, "fail", f"exit status {r.returncode}, no cases: "
                                f"{(r.stdout + r.stderr).decode(errors='replace').strip()[-300:]}"))
    return steps


async def _ipmi_raw(machine) -> list[StepResult]:
    """Build ipmi_raw in the guest (with the <linux/ipmi.h> shim) and get the BMC's device ID."""
    r = await machine.run("command -v cc || command -v gcc || command -v clang")
    compilers = r.stdout.decode(errors="replace").split()
    if r.returncode != 0 or not compilers:
        return [StepResult("build-ipmi_raw", "skip", "the guest has no C compiler")]
    root = source_root()
    await machine.run("mkdir -p /tmp/vhw/linux")
    await machine.put("/tmp/vhw/linux/ipmi.h", (root / "guest-images/remote/linux/ipmi.h").read_bytes())
    await machine.put("/tmp/vhw/ipmi_raw.c", (root / "guest-images/src/ipmi_raw.c").read_bytes())
    compiler = compilers[-1]
    r = await machine.run(f"{compiler} -std=c99 -D_XOPEN_SOURCE=700 -I/tmp/vhw "
                          "-o /tmp/vhw/ipmi_raw /tmp/vhw/ipmi_raw.c", timeout=600)
    if r.returncode != 0:
        return [StepResult("build-ipmi_raw", "fail", (r.stdout + r.stderr).decode(errors="replace").strip()[-600:])]
    steps = [StepResult("build-ipmi_raw", "pass", compiler)]
    r = await machine.run("/tmp/vhw/ipmi_raw 06 01")
    # IPMI 2.0 §20.1 Get Device ID: completion code 00, then 11+ bytes (device ID first).
    words = r.stdout.split()
    ok = r.returncode == 0 and len(words) >= 12 and words[0] == b"00"
    steps.append(StepResult("get-device-id", "pass" if ok else "fail",
                            r.stdout.decode(errors="replace").strip()[-300:] or f"exit {r.returncode}"))
    return steps


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][-200:] if lines else ""


def write_results(path: Path, recipe: RemoteRecipe, steps: list[StepResult], duration: float,
                  workdir: Path, *, findings: Sequence[dict] = ()) -> Path:
    """A results file in the pytest plugin's schema, so `vhw report` shows the guest test."""
    failed = any(s.outcome == "fail" for s in steps)
    data = {
        "test": f"guest:{recipe.name}",
        "outcome": "failed" if failed else "passed",
        "duration": round(duration, 3),
        "guest": recipe.name,
        "guest_kernel": recipe.filename,
        "machine": recipe.machine_type,
        "devices": [f"bmc:{i}" for i in recipe.interfaces],
        "cases": [{"name": s.name, "outcome": s.outcome, "detail": s.detail} for s in steps],
        "findings": [{"severity": "error", "summary": f"{s.name} failed", "evidence": s.detail}
                     for s in steps if s.outcome == "fail"] + list(findings),
        # The keys the pytest plugin's results files use.
        "artifacts": {"console": str(workdir / "console.log"), "qemu_stderr": str(workdir / "qemu.stderr"),
                      "qemu.argv": str(workdir / "qemu.argv")},
        "faults": [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path
