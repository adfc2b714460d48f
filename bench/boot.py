"""Machine start of the offline Linux guest: a real boot beside a start from a snapshot (TCG, 1 vCPU, qboot).

    .venv/bin/python bench/boot.py [--rounds 5] [--ipmi kcs] [--json FILE]

Each round starts one machine that boots (``snapshot=False``) and one that
restores the description's snapshot (vhw.machine.snapshot; made once before
the rounds, not timed), in turn.  Reported per kind: the median and minimum
wall time from QEMU's launch to a ready agent (READY after a boot; after a
restore, the agent's answer to the command that sets the guest clock), QEMU's
CPU time per start (user+sys, incl. its shutdown), and the boot/restore ratio
of the medians; the target is a restore under TARGET_S seconds (PASS/MISS).
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

#: Launch to a ready agent from a snapshot (issue 18, item 3).
TARGET_S = 0.7


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def one_start(desc, image, *, snapshot: bool) -> dict:
    cpu0 = children_cpu()
    m = Machine(desc, image=image, snapshot=snapshot)
    await m.start()
    boot = m.boot
    refused = m.snapshot_refused
    await m.stop()  # QEMU reaped: its CPU time is now in RUSAGE_CHILDREN
    return {"wall": boot.to_ready, "uptime": boot.guest_uptime, "restored": boot.restored, "saved": boot.saved,
            "save_s": boot.save, "qemu_cpu_incl_shutdown": children_cpu() - cpu0, "refused": refused}


def summary(runs: list[dict]) -> dict:
    return {
        "wall_median_s": statistics.median(r["wall"] for r in runs),
        "wall_min_s": min(r["wall"] for r in runs),
        "guest_uptime_median_s": statistics.median(r["uptime"] for r in runs),
        "qemu_cpu_median_s": statistics.median(r["qemu_cpu_incl_shutdown"] for r in runs),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--ipmi", default="kcs", help="vhw's BMC on these interfaces (e.g. kcs,bt; '' for none)")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = p.parse_args()
    started = time.monotonic()
    image = ensure_image("linux-x86")
    build = time.monotonic() - started
    ifs = tuple(i for i in args.ipmi.split(",") if i)
    desc = default_description(interfaces=ifs or None)
    first = asyncio.run(one_start(desc, image, snapshot=True))  # makes the snapshot if the cache has none
    if not (first["restored"] or first["saved"]):
        print(f"no snapshot for this machine: {first['refused'] or 'saving it failed (see the log)'}")
        return 1
    boots, restores = [], []
    for _ in range(args.rounds):
        boots.append(asyncio.run(one_start(desc, image, snapshot=False)))
        restores.append(asyncio.run(one_start(desc, image, snapshot=True)))
    if not all(r["restored"] for r in restores):
        print("a restore fell back to a boot (see the log)")
        return 1
    boot, restore = summary(boots), summary(restores)
    sizes = {f: os.path.getsize(image.path / f) for f in ("vmlinux", "initramfs.cpio.lz4")}
    ratio = boot["wall_median_s"] / restore["wall_median_s"]
    verdict = "PASS" if restore["wall_median_s"] < TARGET_S else "MISS"
    out = {
        "rounds": args.rounds,
        "interfaces": list(ifs),
        "boot": boot,
        "restore": restore,
        "boot_over_restore": ratio,
        "target_restore_s": TARGET_S,
        "verdict": verdict,
        "snapshot_save_s": first["save_s"] if first["saved"] else None,
        "image_bytes": sizes,
        "image_lookup_or_build_s": build,
        "load_average": os.getloadavg(),
    }
    print(f"machine start to a ready agent, {args.rounds} rounds ({', '.join(ifs) or 'no BMC'}), TCG:")
    print(f"  {'':24} {'boot':>8} {'restore':>8}")
    print(f"  {'wall median (s)':24} {boot['wall_median_s']:8.2f} {restore['wall_median_s']:8.2f}")
    print(f"  {'wall min (s)':24} {boot['wall_min_s']:8.2f} {restore['wall_min_s']:8.2f}")
    print(f"  {'guest uptime at ready (s)':24} {boot['guest_uptime_median_s']:8.2f} "
          f"{restore['guest_uptime_median_s']:8.2f}")
    print(f"  {'QEMU CPU per start (s)':24} {boot['qemu_cpu_median_s']:8.2f} {restore['qemu_cpu_median_s']:8.2f}")
    print(f"  boot/restore {ratio:.1f}x; restore median {restore['wall_median_s']:.2f} s "
          f"(target < {TARGET_S} s): {verdict}")
    if first["saved"]:
        print(f"  snapshot made before the rounds: saved in {first['save_s']:.2f} s after its boot")
    print(f"  image: vmlinux {sizes['vmlinux'] / 1e6:.1f} MB, initramfs {sizes['initramfs.cpio.lz4'] / 1e6:.1f} MB")
    print(f"  host load average {out['load_average'][0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
