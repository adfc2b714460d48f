"""`make demo`: boot the Linux guest against vhw's BMC and show the drivers working.

Run as ``python -m vhw.demo [--backend vhw|qemu] [--interfaces kcs,bt,ssif]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .errors import VhwError
from .machine.description import default_description
from .machine.launcher import Machine

STEPS = [
    ("guest kernel", "uname -a"),
    ("what the IPMI drivers found", "dmesg | grep -iE 'ipmi|ssif' | grep -v 'ipmi_watchdog' | tail -n 12"),
    ("ipmitool -I open mc info", "ipmitool -I open mc info"),
    ("ipmitool -I open chassis status", "ipmitool -I open chassis status"),
    ("raw Get Device ID through /dev/ipmi0 (ipmi_raw 6 1)", "ipmi_raw 6 1"),
]


def _say(text: str) -> None:
    print(text, flush=True)


async def demo(backend: str, interfaces: tuple[str, ...]) -> int:
    desc = default_description(interfaces=interfaces, backend=backend)
    who = "vhw's BMC" if backend == "vhw" else f"the {backend} BMC"
    _say(f"== booting linux-x86 under QEMU ({', '.join(interfaces)} -> {who})")
    failures = 0
    async with Machine(desc, progress=lambda m: print(m, file=sys.stderr, flush=True)) as m:
        _say(f"   accelerator {m.accel}; guest ready {m.boot.to_ready:.2f} s after launch")
        for title, command in STEPS:
            r = await m.run(command, timeout=60)
            _say(f"\n== {title}\n$ {command}")
            sys.stdout.write(r.stdout.decode(errors="replace"))
            if r.stderr:
                sys.stdout.write(r.stderr.decode(errors="replace"))
            if r.returncode != 0:
                failures += 1
                _say(f"   (exit status {r.returncode})")
    _say("\n== done" + (f": {failures} step(s) failed" if failures else ": the guest's IPMI stack works"))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vhw.demo", description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("vhw", "qemu"), default="vhw")
    p.add_argument("--interfaces", default="kcs", help="comma-separated: kcs, bt, ssif")
    args = p.parse_args(argv)
    try:
        return asyncio.run(demo(args.backend, tuple(args.interfaces.split(","))))
    except VhwError as e:
        print(f"vhw demo: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
