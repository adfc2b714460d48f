"""`make demo`: boot the Linux guest against vhw's devices and show the drivers working.

Run as ``python -m vhw.demo [--backend vhw|qemu] [--interfaces kcs,bt,ssif] [--no-i2o]``.
The guest gets vhw's BMC on its IPMI interfaces and, unless --no-i2o, one
vhw I2O IOP with a 16 MiB scratch disk that the guest's i2o_ptosm drives.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from .errors import VhwError
from .machine.description import parse_description
from .machine.launcher import Machine

STEPS = [
    ("guest kernel", "uname -a"),
    ("what the IPMI drivers found", "dmesg | grep -iE 'ipmi|ssif' | grep -v 'ipmi_watchdog' | tail -n 12"),
    ("ipmitool -I open mc info", "ipmitool -I open mc info"),
    ("ipmitool -I open chassis status", "ipmitool -I open chassis status"),
    ("raw Get Device ID through /dev/ipmi0 (ipmi_raw 6 1)", "ipmi_raw 6 1"),
]
I2O_STEPS = [
    ("what the I2O pass-through driver found", "dmesg | grep -E 'i2o_ptosm [0-9a-f]{4}:'"),
    ("the ptosm interface checked from user space (seed 003)",
     "ptosm_conform --iops 1 | grep -E '^(PASS iop0_(status|params|lct|tid8_rw_4)|INFO|SUMMARY)'"),
]


def _say(text: str) -> None:
    print(text, flush=True)


async def demo(backend: str, interfaces: tuple[str, ...], i2o: bool, scratch: Path) -> int:
    table: dict = {"machine": {"name": "demo"}, "bmc": {"backend": backend, "interfaces": list(interfaces)}}
    if i2o:
        table["i2o"] = [{"disk": [{"image": str(scratch / "i2o-disk.img"), "size": 16}]}]
    desc = parse_description(table, "<demo>")
    who = "vhw's BMC" if backend == "vhw" else f"the {backend} BMC"
    _say(f"== booting linux-x86 under QEMU ({', '.join(interfaces)} -> {who}"
         + ("; a vhw I2O IOP on x-pci-proxy-dev)" if i2o else ")"))
    failures = 0
    async with Machine(desc, progress=lambda m: print(m, file=sys.stderr, flush=True)) as m:
        _say(f"   accelerator {m.accel}; guest ready {m.boot.to_ready:.2f} s after launch")
        for title, command in STEPS + (I2O_STEPS if i2o else []):
            r = await m.run(command, timeout=60)
            _say(f"\n== {title}\n$ {command}")
            sys.stdout.write(r.stdout.decode(errors="replace"))
            if r.stderr:
                sys.stdout.write(r.stderr.decode(errors="replace"))
            if r.returncode != 0:
                failures += 1
                _say(f"   (exit status {r.returncode})")
    _say("\n== done" + (f": {failures} step(s) failed" if failures else ": the guest's drivers work"))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vhw.demo", description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("vhw", "qemu"), default="vhw")
    p.add_argument("--interfaces", default="kcs", help="comma-separated: kcs, bt, ssif")
    p.add_argument("--no-i2o", action="store_true", help="leave out the I2O IOP")
    args = p.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="vhw-demo-") as scratch:
            return asyncio.run(demo(args.backend, tuple(args.interfaces.split(",")), not args.no_i2o,
                                    Path(scratch)))
    except VhwError as e:
        print(f"vhw demo: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
