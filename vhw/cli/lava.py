"""`vhw lava`: a vhw machine as a LAVA device (docs/lava.md).

    vhw lava render --machine FILE [--device NAME] [--run-dir DIR] -o OUTDIR
    vhw lava bmc --config FILE --run-dir DIR start|stop     (the device's user_commands)
    vhw lava results LOG --machine FILE [--junit FILE] [--vhw-results FILE]
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import VhwError

#: Seconds `vhw lava bmc start` waits for the BMC's socket before giving up.
START_TIMEOUT = 20.0


def add_parser(sub) -> None:
    p = sub.add_parser("lava", help="render a LAVA device type, device dictionary and job for a machine",
                       description="Run vhw machines on a LAVA farm: render the device type (LAVA's qemu.jinja2 "
                                   "with vhw's BMC options), the device dictionary (user_commands that start "
                                   "and stop vhw bmc), the device YAML lava-run reads, and a job; map a job's "
                                   "results to JUnit XML and vhw report's results JSON.")
    lsub = p.add_subparsers(dest="lava_verb", metavar="ACTION", required=True)
    r = lsub.add_parser("render", help="write vhw-qemu.jinja2, DEVICE.jinja2, DEVICE.yaml and job.yaml")
    r.add_argument("--machine", "-m", required=True, metavar="FILE", help="machine description (TOML)")
    r.add_argument("--device", default=None, metavar="NAME", help="LAVA device name (default vhw-<machine name>)")
    r.add_argument("--run-dir", metavar="DIR", help="the BMC's socket, pid and log on the dispatcher "
                                                     "(default /run/vhw-lava/DEVICE)")
    r.add_argument("--vhw", default=None, metavar="CMD", help="how the dispatcher runs vhw (default: this vhw)")
    r.add_argument("-o", "--output", required=True, metavar="DIR", help="where the files go")
    b = lsub.add_parser("bmc", help="start or stop the device's vhw bmc (LAVA user_commands)")
    b.add_argument("--config", required=True, metavar="FILE", help="the machine description")
    b.add_argument("--run-dir", required=True, metavar="DIR")
    b.add_argument("action", choices=("start", "stop"))
    s = lsub.add_parser("results", help="map a lava-run output directory to JUnit XML and a vhw results JSON")
    s.add_argument("log", metavar="LOG", help="the job's log: lava-run's output (JSON lines, on stderr), a server's output.yaml, "
                        "or `lavacli results JOB --yaml`")
    s.add_argument("--job", metavar="NAME", help="the job's name in the results (default: the log's directory name)")
    s.add_argument("--machine", "-m", required=True, metavar="FILE", help="the job's machine description")
    s.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    s.add_argument("--vhw-results", metavar="FILE", help="write the results JSON `vhw report` reads here")


def _this_vhw() -> str:
    script = Path(sys.argv[0])
    if script.name == "vhw" and script.exists():
        return str(script.resolve())
    return shutil.which("vhw") or f"{sys.executable} -m vhw"


def _render(args) -> int:
    from ..guests.images import ensure_image
    from ..farm.lava import render
    from ..machine.description import load_description

    desc = load_description(args.machine)
    image = ensure_image(desc.machine.guest)
    name = args.device or f"vhw-{desc.machine.name}"
    run_dir = Path(args.run_dir or f"/run/vhw-lava/{name}")
    files = render(desc, image, Path(args.output), device_name=name, config=Path(args.machine),
                   run_dir=run_dir, vhw=args.vhw or _this_vhw())
    for kind, path in files.items():
        print(f"{kind}: {path}")
    if "device" not in files:
        print("vhw: no LAVA templates found (qemu.jinja2); DEVICE.yaml not rendered (see docs/lava.md)",
              file=sys.stderr)
    return 0


def _bmc(args) -> int:
    """Start ``vhw bmc`` detached on the run directory's socket, or stop the one started there."""
    from ..farm.lava import check_description
    from ..machine.description import load_description

    run_dir = Path(args.run_dir)
    pidfile, sock = run_dir / "bmc.pid", run_dir / "bmc.sock"
    if args.action == "stop":
        if not pidfile.exists():
            return 0
        pid = int(pidfile.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        pidfile.unlink(missing_ok=True)
        return 0
    interface = check_description(load_description(args.config))
    run_dir.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    argv = [*_this_vhw().split(), "bmc", "--config", str(Path(args.config).resolve()),
            "--extern", f"unix:{sock}", "--interface", interface]
    with open(run_dir / "bmc.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    pidfile.write_text(str(proc.pid))
    deadline = time.monotonic() + START_TIMEOUT
    while not sock.exists():
        if proc.poll() is not None:
            raise VhwError(f"vhw bmc exited with status {proc.returncode}; see {run_dir / 'bmc.log'}")
        if time.monotonic() > deadline:
            raise VhwError(f"vhw bmc did not listen on {sock} within {START_TIMEOUT:g} s; see {run_dir / 'bmc.log'}")
        time.sleep(0.05)
    print(f"vhw bmc {proc.pid} on {sock}")
    return 0


def _results(args) -> int:
    from ..farm.lava import read_lava_results, to_junit, to_vhw_results
    from ..machine.description import load_description

    desc = load_description(args.machine)
    log = Path(args.log)
    cases = read_lava_results(log)
    job = args.job or log.resolve().parent.name
    if args.junit:
        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.junit).write_text(to_junit(cases, f"lava {job}"))
    results = to_vhw_results(cases, desc, job=job)
    if args.vhw_results:
        Path(args.vhw_results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.vhw_results).write_text(json.dumps(results, indent=1))
    for c in cases:
        print(f"{c.result.upper():7} {c.suite}/{c.name}")
    return 0 if results["outcome"] == "passed" else 1


def main(args) -> int:
    return {"render": _render, "bmc": _bmc, "results": _results}[args.lava_verb](args)
