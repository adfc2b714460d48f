"""Boot-to-agent time of the offline Linux guest (TCG, 1 vCPU, qboot).

    .venv/bin/python bench/boot.py [--rounds 5] [--ipmi kcs]

Reports the median and minimum wall time from QEMU's launch to the agent's
READY, the guest's uptime at READY, and QEMU's CPU time (user+sys, less
disturbed by a busy host than wall time), plus the image's build facts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time

from vhw.guests.images import ensure_image
from vhw.machine.description import default_description
from vhw.machine.launcher import Machine


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def one_boot(desc, image) -> dict:
    cpu0 = children_cpu()
    m = Machine(desc, image=image)
    await m.start()
    boot = m.boot
    await m.stop()  # QEMU reaped: its CPU time is now in RUSAGE_CHILDREN
    return {"wall": boot.to_ready, "uptime": boot.guest_uptime, "qemu_cpu_incl_shutdown": children_cpu() - cpu0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--ipmi", default="", help="also attach vhw's BMC on these interfaces (e.g. kcs)")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = p.parse_args()
    started = time.monotonic()
    image = ensure_image("linux-x86")
    build = time.monotonic() - started
    ifs = tuple(i for i in args.ipmi.split(",") if i)
    desc = default_description(interfaces=ifs or None)
    runs = [asyncio.run(one_boot(desc, image)) for _ in range(args.rounds)]
    sizes = {f: os.path.getsize(image.path / f) for f in ("vmlinux", "initramfs.cpio.lz4")}
    out = {
        "rounds": args.rounds,
        "interfaces": list(ifs),
        "wall_median_s": statistics.median(r["wall"] for r in runs),
        "wall_min_s": min(r["wall"] for r in runs),
        "guest_uptime_median_s": statistics.median(r["uptime"] for r in runs),
        "qemu_cpu_median_s": statistics.median(r["qemu_cpu_incl_shutdown"] for r in runs),
        "image_bytes": sizes,
        "image_lookup_or_build_s": build,
        "load_average": os.getloadavg(),
    }
    print(f"boot to agent READY over {args.rounds} boots ({', '.join(ifs) or 'no BMC'}), TCG:")
    print(f"  wall    median {out['wall_median_s']:.2f} s, min {out['wall_min_s']:.2f} s")
    print(f"  guest uptime at READY (median) {out['guest_uptime_median_s']:.2f} s")
    print(f"  QEMU CPU per boot incl. shutdown (median) {out['qemu_cpu_median_s']:.2f} s")
    print(f"  image: vmlinux {sizes['vmlinux'] / 1e6:.1f} MB, initramfs {sizes['initramfs.cpio.lz4'] / 1e6:.1f} MB")
    print(f"  host load average {out['load_average'][0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
