"""The `vhw` command line.

    vhw run [--machine FILE] [--guest NAME] [--ipmi kcs,bt,ssif] [--faults SCENARIO] -- CMD...
    vhw guest list | build NAME | fetch NAME | pin NAME | test NAME [--image PATH]
    vhw bmc --config FILE --extern HOST:PORT|unix:PATH [--lan HOST:PORT] [--serial MODE:PATH] [--state DIR] [--control PATH]
    vhw bmc set-sensor --control PATH SENSOR VALUE
    vhw prom list|get|set|unset|export|import|diff|run|show ...   (SPARC EEPROM; vhw prom --help)
    vhw trace FILE|DIR [--channel C] [--since S] [--grep REGEX]   (print a trace.jsonl; docs/trace.md)
    vhw report [PATH...] [-o FILE.html|FILE.md]   (one page from a run's results; docs/report.md)
    vhw lava render|bmc|results ...   (a machine as a LAVA device and job; docs/lava.md)
    vhw fleet --count N --base-port P --user NAME:PASSWORD [--address HOST] [--state DIR]

Errors a user can cause are printed as one clear message (no traceback) and
exit with status 2; `vhw run` exits with the guest command's own status.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from collections.abc import Coroutine
from typing import Any

from .. import __version__
from ..errors import VhwError


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- vhw run ----------------------------------------------------------------
def _load_description(args):
    """The description file (or the defaults) with the command line's overrides, validated once."""
    from ..machine.description import parse_description, read_description_data

    from ..guests.remote import REMOTE_GUESTS

    data = read_description_data(args.machine) if args.machine else {}
    machine = dict(data.get("machine", {}))
    if args.guest:
        machine["guest"] = args.guest
    if args.state:
        machine["state"] = args.state
    if getattr(args, "access", None):
        machine["access"] = args.access
    data = {**data, "machine": machine}
    recipe = REMOTE_GUESTS.get(machine.get("guest", ""))
    if recipe is not None and recipe.interfaces and "bmc" not in data and args.ipmi is None:
        data["bmc"] = {"interfaces": list(recipe.interfaces)}  # the interfaces its driver knows
    if args.ipmi is not None or args.bmc_backend or args.bmc_address:
        bmc = dict(data.get("bmc", {}))
        if args.bmc_backend and args.bmc_backend != bmc.get("backend", "vhw"):
            # Another backend: the old one's settings (users, sensors, ...) do not apply.
            bmc = {k: v for k, v in bmc.items() if k == "interfaces"}
            bmc["backend"] = args.bmc_backend
        if args.ipmi is not None:
            bmc["interfaces"] = [s for s in args.ipmi.split(",") if s]
        if args.bmc_address:
            bmc["address"] = args.bmc_address
        data["bmc"] = bmc
    desc = parse_description(data, args.machine or "<defaults>")
    if getattr(args, "faults", None):
        from ..machine.description import load_scenario, with_faults

        desc = with_faults(desc, load_scenario(args.faults), args.faults)
    return desc


async def _run(args) -> int:
    from ..machine.launcher import Machine
    from ..prom.guestrun import MACHINE_OF
    from ..guests.remote import REMOTE_GUESTS

    command = args.command[1:] if args.command and args.command[0] == "--" else args.command
    text = command[0] if len(command) == 1 else shlex.join(command)
    if args.guest in MACHINE_OF:
        # The SPARC guests' /init is the conformance program; their EEPROM is `vhw prom`'s.
        if args.machine or args.ipmi or args.faults or args.bmc_backend:
            raise VhwError(f"{args.guest} is a SPARC guest: its machine comes from its recipe "
                           "(--machine, --ipmi, --faults and --bmc-backend do not apply)")
        from .guest import run_sparc

        return await run_sparc(args, text)
    desc = _load_description(args)
    if not command:
        raise VhwError("nothing to run: give a command after --, e.g. vhw run -- uname -a")
    image = None
    recipe = REMOTE_GUESTS.get(desc.machine.guest)
    if recipe is not None:
        from .guest import remote_image
        from ..guests.remote import EXIT_SKIPPED, DiskImage

        path = remote_image(recipe, args.image)
        if path is None:
            return EXIT_SKIPPED
        image = DiskImage(recipe, path, own=bool(args.image))
    elif args.image:
        raise VhwError("--image is for downloaded guests (see `vhw guest list`)")
    machine = Machine(desc, image=image, progress=None if args.quiet else _progress, keep_workdir=args.keep)
    async with machine:
        if args.keep:
            _progress(f"[vhw] logs in {machine.workdir}")
        result = await machine.run(text, timeout=args.timeout or None)
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.flush()
    if result.how == "timeout":
        _progress(f"[vhw] guest command timed out after {args.timeout} s")
        return 124
    if result.how == "signal":
        return 128 + result.code
    return result.code


async def _bmc(args) -> int:
    if args.bmc_verb in ("set-sensor", "get-sensor"):
        return await _bmc_sensor(args)
    if not args.extern and not args.lan and not args.serial:
        raise VhwError("vhw bmc needs --extern ADDR (where QEMU's ipmi-bmc-extern connects) and/or "
                       "--lan HOST:PORT (IPMI over LAN), or an action such as set-sensor; see vhw bmc --help")
    from ..ipmi.io.service import serve_standalone

    await serve_standalone(config_path=args.config, extern=args.extern, interface=args.interface,
                           progress=_progress, state_dir=args.state, control=args.control, lan=args.lan,
                           serial=args.serial)
    return 0


async def _bmc_sensor(args) -> int:
    from ..control import control_request

    key = int(args.sensor, 0) if args.sensor[:1].isdigit() else args.sensor
    request: dict = {"op": args.bmc_verb, "sensor": key}
    if args.bmc_verb == "set-sensor":
        if args.value is None:
            raise VhwError("set-sensor needs a VALUE (a number, 'na' for reading unavailable, "
                           "or offsets like 0,3 with --discrete)")
        if args.discrete:
            request["state"] = [int(o, 0) for o in args.value.split(",") if o]
        else:
            request["value"] = None if args.value == "na" else float(args.value)
    answer = await control_request(args.control_socket, request)
    value = answer.get("value")
    print(f"{answer['sensor']}: {'unavailable' if value is None else f'{value:g}'}")
    return 0


# -- vhw fleet --------------------------------------------------------------
def run_fast_loop(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run`` on uvloop's event loop when it is installed (a dependency of vhw).

    For the processes that are nothing but BMCs on sockets (`vhw fleet`): a
    LAN request costs the loop about 20 us of CPU less on libuv than on the
    standard selector loop (bench/lan.py).  The model does not see the
    difference; without uvloop the standard loop serves the same way.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _fleet(args) -> int:
    from ..fleet import serve_fleet

    await serve_fleet(count=args.count, base_port=args.base_port, user=args.user, address=args.address,
                      state_dir=args.state, power_on=args.power == "on", progress=_progress)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vhw", description="Virtual hardware for QEMU guests.")
    p.add_argument("--version", action="version", version=f"vhw {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")

    run = sub.add_parser("run", help="boot a machine, run one command in the guest, print its output",
                         description="Boot a machine (its description, or the default linux-x86 guest), "
                                     "run CMD in the guest (through its agent or over its serial console), "
                                     "print its stdout and stderr, and exit with its exit status (124 on "
                                     "timeout; 77 when a downloaded guest cannot be fetched).")
    run.add_argument("--machine", "-m", metavar="FILE", help="machine description (TOML)")
    run.add_argument("--guest", "-g", metavar="NAME", help="guest image (see `vhw guest list`)")
    run.add_argument("--image", metavar="PATH", help="downloaded guests: boot this disk image (e.g. your own build)")
    run.add_argument("--ipmi", metavar="IFS", help="attach a BMC on these interfaces, e.g. kcs or kcs,bt,ssif")
    run.add_argument("--bmc-backend", choices=("vhw", "qemu", "extern"),
                     help="who plays the BMC: vhw (default), QEMU's ipmi-bmc-sim, or an external BMC")
    run.add_argument("--bmc-address", metavar="ADDR", help="HOST:PORT or unix:PATH of an external BMC")
    run.add_argument("--access", choices=("agent", "console"),
                     help="reach the guest through its vhw agent or by logging in on its serial console "
                          "(downloaded guests: console only)")
    run.add_argument("--state", metavar="DIR",
                     help="keep the BMC's non-volatile state (users, boot flags, ...) in DIR/<machine name>.db")
    run.add_argument("--faults", metavar="SCENARIO",
                     help="inject the faults of a scenario file ([[fault]] tables; docs/faults.md)")
    run.add_argument("--timeout", type=float, default=300.0, help="seconds the command may run (default 300)")
    run.add_argument("--keep", action="store_true", help="keep the work directory (console log, QEMU argv)")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...", help="command to run in the guest")

    from .guest import add_parser as add_guest_parser

    add_guest_parser(sub)

    bmc = sub.add_parser("bmc", help="run a BMC for a QEMU started by anyone",
                         description="Serve vhw's BMC on a socket that QEMU's ipmi-bmc-extern connects to, e.g. "
                                     "qemu ... -chardev socket,id=ipmi0,host=127.0.0.1,port=9002,reconnect=2 "
                                     "-device ipmi-bmc-extern,id=bmc0,chardev=ipmi0 -device isa-ipmi-kcs,bmc=bmc0")
    bmc.add_argument("--config", "-c", metavar="FILE", help="machine description whose [bmc] table configures the BMC")
    bmc.add_argument("--extern", metavar="ADDR", help="listen here for QEMU: HOST:PORT or unix:PATH")
    bmc.add_argument("--lan", metavar="HOST:PORT",
                     help="also serve IPMI over LAN (UDP, RMCP/RMCP+) here, e.g. 127.0.0.1:9623 "
                          "(overrides the [bmc] lan key)")
    bmc.add_argument("--serial", metavar="MODE:PATH",
                     help="also serve the IPMI serial channel: MODE terminal or basic, PATH 'pty' (a new "
                          "pseudo-terminal; its path is printed) or a device (overrides [bmc.serial])")
    bmc.add_argument("--state", metavar="DIR",
                     help="keep the BMC's non-volatile state in DIR/<machine name>.db (default: in memory)")
    bmc.add_argument("--interface", choices=("kcs", "bt", "ssif"), default="kcs",
                     help="the guest interface QEMU puts in front of this BMC (default kcs)")
    bmc.add_argument("--control", metavar="PATH",
                     help="also listen on this UNIX socket for `vhw bmc set-sensor` and other local changes")
    bsub = bmc.add_subparsers(dest="bmc_verb", metavar="ACTION")
    for verb, text in (("set-sensor", "set a sensor of a running `vhw bmc --control PATH`"),
                       ("get-sensor", "read a sensor of a running `vhw bmc --control PATH`")):
        sp = bsub.add_parser(verb, help=text, description=text + " (events follow at once if a threshold is crossed).")
        sp.add_argument("--control", dest="control_socket", required=True, metavar="PATH",
                        help="the BMC's control socket")
        sp.add_argument("sensor", help="sensor name (its SDR ID string) or number")
        if verb == "set-sensor":
            sp.add_argument("value", nargs="?", help="reading in the sensor's unit, or 'na' (unavailable)")
            sp.add_argument("--discrete", action="store_true", help="VALUE is the asserted offsets, e.g. 0,3")

    from .prom import add_parser as add_prom_parser

    add_prom_parser(sub)

    from .trace import add_parser as add_trace_parser

    add_trace_parser(sub)

    from .report import add_parser as add_report_parser

    add_report_parser(sub)

    from .lava import add_parser as add_lava_parser

    add_lava_parser(sub)

    fleet = sub.add_parser("fleet", help="serve many LAN BMCs (no VMs) in one process",
                           description="Serve N independent IPMI-over-LAN BMCs on HOST ports P..P+N-1, each "
                                       "with its own state and one ADMINISTRATOR user; chassis power control "
                                       "only changes the reported power state.")
    fleet.add_argument("--count", "-n", type=int, required=True, metavar="N", help="how many BMCs")
    fleet.add_argument("--base-port", "-p", type=int, required=True, metavar="P",
                       help="UDP port of the first BMC; 0: any free ports, printed on stdout as 'NAME HOST PORT'")
    fleet.add_argument("--user", "-u", required=True, metavar="NAME:PASSWORD",
                       help="the ADMINISTRATOR user every BMC has (user ID 2)")
    fleet.add_argument("--address", default="127.0.0.1", metavar="HOST", help="address to listen on (default 127.0.0.1)")
    fleet.add_argument("--state", metavar="DIR", help="keep each BMC's state in DIR/fleet-<i>.db (default: in memory)")
    fleet.add_argument("--power", choices=("on", "off"), default="on", help="reported chassis power at start (default on)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    if args.verbose == 0:
        # qemu.qmp logs a vanished QEMU (a guest that powered off, a refused
        # command line) as an ERROR; vhw reports those itself, in words.
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
    try:
        if args.verb == "run":
            return asyncio.run(_run(args))
        if args.verb == "guest":
            from .guest import main as guest_main

            return guest_main(args, parser)
        if args.verb == "bmc":
            return asyncio.run(_bmc(args))
        if args.verb == "trace":
            from .trace import main as trace_main

            return trace_main(args)
        if args.verb == "report":
            from .report import main as report_main

            return report_main(args)
        if args.verb == "prom":
            from .prom import main as prom_main

            return prom_main(args)
        if args.verb == "lava":
            from .lava import main as lava_main

            return lava_main(args)
        if args.verb == "fleet":
            return run_fast_loop(_fleet(args))
        parser.print_help()
        return 2
    except VhwError as e:
        print(f"vhw: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


