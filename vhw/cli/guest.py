"""`vhw guest ...` and `vhw run --guest <downloaded guest>`.

    vhw guest list                     built and downloadable guests, and their state
    vhw guest build NAME               build an offline guest image into the cache
    vhw guest fetch NAME               download, verify and unpack a downloadable guest
    vhw guest pin NAME                 pin the digest its publisher lists (writes guest-images/remote-pins.toml)
    vhw guest test NAME [--image PATH] the driver tests against that guest

`vhw guest test` on an offline guest runs the pytest suites that use it; on a
downloadable guest it boots the image (or --image, e.g. your own build),
drives its console and prints PASS/FAIL lines.  When the publisher is
unreachable it says so and exits 77 (skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from ..errors import VhwError

#: pytest arguments per offline guest (paths relative to the source checkout).
SUITES = {
    "linux-x86": ["tests/e2e", "examples/driver-tests", "--ignore=tests/e2e/test_prom_guests.py",
                  "--ignore=tests/e2e/test_prom_firmware.py"],
    "linux-sparc64": ["tests/e2e/test_prom_guests.py", "tests/e2e/test_prom_firmware.py", "-k", "sun4u or sparc64"],
    "linux-sparc32": ["tests/e2e/test_prom_guests.py", "tests/e2e/test_prom_firmware.py", "-k", "ss5 or SS-5 or sparc32"],
}


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def add_parser(sub) -> None:
    guest = sub.add_parser("guest", help="list, build, fetch and test guests",
                           description=__doc__.split("\n\n")[1] if __doc__ else None,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    gsub = guest.add_subparsers(dest="guest_verb", metavar="ACTION")
    gsub.add_parser("list", help="the guests vhw knows and whether they are built or downloaded")
    gb = gsub.add_parser("build", help="build an offline guest image into the cache")
    gb.add_argument("name", help="guest name, e.g. linux-x86")
    gb.add_argument("--force", action="store_true", help="rebuild even if the cached image is current")
    gf = gsub.add_parser("fetch", help="download, verify (pinned digest) and unpack a downloadable guest")
    gf.add_argument("name", help="e.g. freebsd-14-amd64")
    gp = gsub.add_parser("pin", help="pin the digest the publisher lists for a downloadable guest",
                         description="Read the publisher's checksum file and write the image's digest into "
                                     "guest-images/remote-pins.toml. Review the change and commit it: "
                                     "from then on a download must match it.")
    gp.add_argument("name", help="e.g. freebsd-14-amd64")
    gt = gsub.add_parser("test", help="run the driver tests against a guest",
                         description="Offline guests: the pytest suites that boot them. Downloadable guests: "
                                     "boot, log in on the serial console, load the driver, build ipmi_raw where "
                                     "the guest has a compiler, run the recipe's checks. Exit status 0 when all "
                                     "pass, 1 when one fails, 77 when the guest cannot be downloaded here.")
    gt.add_argument("name", help="guest name (see `vhw guest list`)")
    gt.add_argument("--image", metavar="PATH",
                    help="boot this disk image instead of downloading one (raw or qcow2; e.g. your own build)")
    gt.add_argument("--keep", action="store_true", help="keep the work directory (console transcript, argv)")
    gt.add_argument("--results", metavar="DIR", default="build/vhw-results",
                    help="where the results file for `vhw report` goes (default build/vhw-results)")
    gt.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARG",
                    help="offline guests: more pytest arguments (after --)")


def main(args, parser) -> int:
    verb = args.guest_verb
    if verb == "list":
        return guest_list()
    if verb == "build":
        return guest_build(args.name, args.force)
    if verb == "fetch":
        return guest_fetch(args.name)
    if verb == "pin":
        return guest_pin(args.name)
    if verb == "test":
        return guest_test(args)
    parser.parse_args(["guest", "--help"])
    return 2


def guest_list() -> int:
    from ..guests.images import GUESTS, find_image, image_dir
    from ..guests.remote import REMOTE_GUESTS, download_path, is_downloaded, pin_for, read_pins

    for name, g in sorted(GUESTS.items()):
        image = find_image(name)
        state = (f"built: {image.path}, kernel {image.kernel_version}" if image
                 else f"not built (would go to {image_dir(g)})")
        print(f"{name:18s} {g.summary}\n{'':18s} {state}")
    pins = read_pins()
    for name, r in sorted(REMOTE_GUESTS.items()):
        try:
            digest = pin_for(r, pins)
        except VhwError:
            state = f"not pinned (`vhw guest pin {name}`)"
        else:
            state = (f"downloaded: {download_path(r)}" if is_downloaded(r, digest)
                     else f"pinned {digest.algorithm}, not downloaded")
        print(f"{name:18s} {r.summary}\n{'':18s} {state}")
    return 0


def guest_build(name: str, force: bool) -> int:
    from ..guests.images import build_image
    from ..guests.remote import REMOTE_GUESTS

    if name in REMOTE_GUESTS:
        raise VhwError(f"{name} is downloaded, not built: use `vhw guest fetch {name}`")
    started = time.monotonic()
    image = build_image(name, progress=_progress, force=force)
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in (image.kernel, image.initrd))
    print(f"{image.path} ({sizes}; kernel {image.kernel_version}; {time.monotonic() - started:.1f} s)")
    return 0


def guest_fetch(name: str) -> int:
    from ..guests.remote import fetch, get_remote

    started = time.monotonic()
    path = fetch(get_remote(name), progress=_progress)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB; {time.monotonic() - started:.1f} s)")
    return 0


def guest_pin(name: str) -> int:
    from ..guests.remote import fetch_pin, get_remote, pins_path, write_pin

    recipe = get_remote(name)
    digest = fetch_pin(recipe)
    path = write_pin(name, digest, pins_path())
    print(f"{path}: {name} = {digest}\n(from {recipe.checksum_url}; review and commit it)")
    return 0


def guest_test(args) -> int:
    from ..guests.images import GUESTS, source_root
    from ..guests.remote import get_remote

    if args.name in GUESTS:
        if args.image:
            raise VhwError(f"--image is for downloadable guests; {args.name} is built by its recipe "
                           f"(guest-images/{args.name})")
        root = source_root()
        argv = [sys.executable, "-m", "pytest", "-n", os.environ.get("JOBS", "auto"),
                f"--junitxml=build/junit-{args.name}.xml", *SUITES[args.name], *args.pytest_args]
        _progress(f"[vhw] {' '.join(argv[2:])}")
        return subprocess.call(argv, cwd=root)
    recipe = get_remote(args.name)
    return asyncio.run(_remote_test(recipe, args))


def remote_image(recipe, image: str | None) -> Path | None:
    """The disk to boot: --image, else the cached download; None when the publisher is unreachable."""
    from ..guests.remote import fetch, is_downloaded, mirrored, offline_message, reachable

    if image:
        path = Path(image)
        if not path.is_file():
            raise VhwError(f"--image {image}: no such file")
        return path
    ok, why = reachable(mirrored(recipe.url))
    if not ok and not is_downloaded(recipe):
        _progress("[vhw] " + offline_message(recipe, why))
        return None
    return fetch(recipe, progress=_progress)


async def _remote_test(recipe, args) -> int:
    from ..errors import GuestError, QemuError
    from ..guests.guest_test import StepResult, recipe_description, run_recipe, write_results
    from ..machine.launcher import Machine
    from ..guests.remote import EXIT_SKIPPED, DiskImage

    image = remote_image(recipe, args.image)
    if image is None:
        return EXIT_SKIPPED
    results = Path(args.results) / f"guest-{recipe.name}.json" if args.results else None
    machine = Machine(recipe_description(recipe), image=DiskImage(recipe, image, own=bool(args.image)),
                      progress=_progress, keep_workdir=True)
    started = time.monotonic()
    try:
        try:
            await machine.start()
        except (GuestError, QemuError) as e:  # no shell: the login step failed, and the report says why
            steps = [StepResult("login", "fail", str(e)[-600:])]
            if results is not None:
                write_results(results, recipe, steps, time.monotonic() - started, machine.workdir)
        else:
            steps = await run_recipe(machine, recipe, results=results)
        finally:
            await machine.stop()
    finally:
        if not args.keep:  # the run's writes; the transcript and argv stay as evidence
            (machine.workdir / "disk.qcow2").unlink(missing_ok=True)
        _progress(f"[vhw] console transcript: {machine.workdir / 'console.log'}")
    for s in steps:
        print(f"{s.outcome.upper()} {s.name}" + (f": {s.detail}" if s.detail else ""))
    failed = [s for s in steps if s.outcome == "fail"]
    print(f"{recipe.name}: {len(steps) - len(failed)} of {len(steps)} steps passed"
          + (f"; results in {results}" if results else ""))
    return 1 if failed else 0


async def run_sparc(args, command: str) -> int:
    """`vhw run --guest linux-sparc64|linux-sparc32`: the guest's one program, the OpenPROM conformance run."""
    import json

    from ..prom.guestrun import conformance_run

    if command:
        raise VhwError(f"{args.guest} runs no commands: its /init is the OpenPROM conformance program "
                       f"(openprom_conform). Run `vhw run --guest {args.guest}` without a command for its report, "
                       "or use `vhw prom run` for the EEPROM.")
    rep = await conformance_run(args.guest, state=args.state, timeout=args.timeout,
                                progress=None if args.quiet else _progress)
    out = Path("build") / f"openprom-report-{rep['machine']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rep, indent=2) + "\n")
    s = rep["summary"]
    print(f"{args.guest} ({rep['machine']}): {rep['nodes']} nodes, {rep['calls']} openprom calls; "
          f"{s['conforms']} conform, {s['finding']} known deviations ({len(rep['findings'])} findings), "
          f"{s['differs']} differ, {s['tree-differences']} unexplained tree differences")
    for problem in rep["problems"]:
        print(f"problem: {problem}")
    print(f"{'PASS' if rep['passed'] else 'FAIL'}; report in {out} (`vhw report` renders it)")
    return 0 if rep["passed"] else 1
