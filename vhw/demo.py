"""`make demo`: boot the Linux guest against vhw's devices and show the drivers working.

Run as ``python -m vhw.demo [--backend vhw|qemu] [--interfaces kcs,bt,ssif] [--no-i2o]``.
The guest gets vhw's BMC on its IPMI interfaces and, unless --no-i2o, one
vhw I2O IOP with a 16 MiB scratch disk that the guest's i2o_ptosm drives.
vhw's BMC also answers IPMI over LAN on a loopback port: the host's
``ipmitool -I lanplus`` reads back what the guest wrote in-band, because
both faces are the same BMC.
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
#: The LAN face: what the guest writes over KCS, the host reads over RMCP+.
SYSTEM_NAME = "written-by-the-guest"
LAN_USER = ("admin", "vhw-demo")  # on 127.0.0.1 only
LAN_STEPS = [
    ("the guest names the system in-band (Set System Info Parameters, 22.14a)",
     f"ipmitool -I open mc setsysinfo system_name {SYSTEM_NAME}"),
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
    lan = backend == "vhw"
    if lan:
        table["bmc"]["lan"] = "127.0.0.1:0"
        table["bmc"]["users"] = [{"id": 2, "name": LAN_USER[0], "password": LAN_USER[1],
                                  "privilege": "administrator"}]
    if i2o:
        table["i2o"] = [{"disk": [{"image": str(scratch / "i2o-disk.img"), "size": 16}]}]
    desc = parse_description(table, "<demo>")
    who = "vhw's BMC" if backend == "vhw" else f"the {backend} BMC"
    _say(f"== booting linux-x86 under QEMU ({', '.join(interfaces)} -> {who}"
         + ("; a vhw I2O IOP on x-pci-proxy-dev)" if i2o else ")"))
    failures = 0
    async with Machine(desc, progress=lambda m: print(m, file=sys.stderr, flush=True)) as m:
        _say(f"   accelerator {m.accel}; guest ready {m.boot.to_ready:.2f} s after launch")
        for title, command in STEPS + (LAN_STEPS if lan else []) + (I2O_STEPS if i2o else []):
            r = await m.run(command, timeout=60)
            failures += _show(title, command, r.returncode, r.stdout, r.stderr)
        if lan:
            address = m.bmc_service.lan_address if m.bmc_service is not None else None
            if address is None:
                raise VhwError("the demo's BMC has no LAN listener")
            host, port = address
            for title, args in (("the same BMC over LAN, from the host: its identity", "mc info"),
                                ("what the guest wrote, read over LAN", "mc getsysinfo system_name")):
                argv = ["ipmitool", "-I", "lanplus", "-C", "17", "-H", host, "-p", str(port),
                        "-U", LAN_USER[0], "-P", LAN_USER[1], *args.split()]
                rc, out, err = await _host(argv)
                failures += _show(title, "(host) " + " ".join(argv), rc, out, err)
                if args.startswith("mc getsysinfo") and SYSTEM_NAME.encode() not in out:
                    failures += 1
                    _say("   (the LAN face did not see what the guest wrote)")
    _say("\n== done" + (f": {failures} step(s) failed" if failures else ": the guest's drivers work"))
    return 1 if failures else 0


def _show(title: str, command: str, returncode: int, stdout: bytes, stderr: bytes) -> int:
    """Print one step; 1 if it failed."""
    _say(f"\n== {title}\n$ {command}")
    sys.stdout.write(stdout.decode(errors="replace"))
    if stderr:
        sys.stdout.write(stderr.decode(errors="replace"))
    if returncode != 0:
        _say(f"   (exit status {returncode})")
        return 1
    return 0


async def _host(argv: list[str], timeout: float = 60) -> tuple[int, bytes, bytes]:
    """A host command, run while the BMC keeps serving on this loop."""
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        return 127, b"", f"{argv[0]}: not found (Debian package ipmitool; `make deps` installs it)\n".encode()
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        return 124, out, err + b"(timed out)\n"
    assert proc.returncode is not None
    return proc.returncode, out, err


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
