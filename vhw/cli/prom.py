"""`vhw prom`: the EEPROM of a SPARC machine, in its store and live.

    vhw prom list   --machine FILE                  the stored options and MAC
    vhw prom get    --machine FILE NAME
    vhw prom set    --machine FILE NAME VALUE
    vhw prom unset  --machine FILE NAME
    vhw prom export --machine FILE IMAGE            the NVRAM QEMU builds from the store
    vhw prom import --machine FILE IMAGE            take options and MAC from an NVRAM image
    vhw prom diff   --machine FILE (--control PATH | --image IMAGE)
    vhw prom run    --machine FILE [--control PATH] [--hold]
    vhw prom show   --control PATH [--tree]

The store is ``<state>/<name>.db`` of the description's ``[machine]`` table.
``run`` boots the guest, and when it halts to the ok prompt stores what it
changed; with ``--control`` a running machine answers ``show`` and ``diff``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from ..errors import VhwError

USAGE = __doc__.split("\n\n")[1]


def add_parser(sub) -> None:
    prom = sub.add_parser("prom", help="the EEPROM (OpenPROM options) of a SPARC machine",
                          description="The OpenPROM options and NVRAM of a SPARC machine, kept in its store.",
                          epilog=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    psub = prom.add_subparsers(dest="prom_verb", metavar="ACTION")

    def verb(name: str, text: str, *, machine: bool = True):
        p = psub.add_parser(name, help=text, description=text)
        if machine:
            p.add_argument("--machine", "-m", metavar="FILE", required=True, help="the machine description (TOML)")
            p.add_argument("--state", metavar="DIR", help="state directory (overrides [machine] state)")
        return p

    verb("list", "print the stored options and the IDPROM MAC")
    verb("get", "print one stored option").add_argument("name")
    p = verb("set", "store an option (injected at every start)")
    p.add_argument("name")
    p.add_argument("value")
    verb("unset", "remove a stored option").add_argument("name")
    verb("export", "write the 8 KiB NVRAM image QEMU builds from the store").add_argument("image")
    verb("import", "replace the stored options and MAC with those of an NVRAM image").add_argument("image")
    p = verb("diff", "compare the store with the live NVRAM of a running machine, or with an image")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--control", metavar="PATH", help="control socket of `vhw prom run --control PATH`")
    g.add_argument("--image", metavar="IMAGE", help="an NVRAM image file")
    p = verb("run", "boot the SPARC guest; when it halts to the ok prompt, store what it changed")
    p.add_argument("--control", metavar="PATH", help="serve `vhw prom show/diff` on this UNIX socket")
    p.add_argument("--hold", action="store_true", help="stay at the ok prompt after storing (until Ctrl-C)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds until the ok prompt (default 300)")
    p.add_argument("--append", default="", help="extra kernel command line")
    p.add_argument("--quiet", "-q", action="store_true", help="do not copy the console to stdout")
    p = verb("show", "the options, live NVRAM and (at the ok prompt) tree of a running machine", machine=False)
    p.add_argument("--control", metavar="PATH", required=True, help="control socket of `vhw prom run`")
    p.add_argument("--tree", action="store_true", help="also print the firmware's device tree")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _description(args):
    from ..machine.description import parse_description, read_description_data

    data = read_description_data(args.machine)
    if args.state:
        data = {**data, "machine": {**data.get("machine", {}), "state": args.state}}
    desc = parse_description(data, args.machine)
    if desc.prom is None:
        raise VhwError(f"{args.machine}: machine type {desc.machine.type} is not a SPARC machine; "
                       "`vhw prom` needs guest = \"linux-sparc64\" or \"linux-sparc32\" (or a SPARC type)")
    return desc


def _options(args, *, need_state: bool = True):
    from ..store import Store
    from ..prom.options import PromOptions

    desc = _description(args)
    if desc.machine.state is None and need_state:
        raise VhwError(f"{args.machine}: no state directory, so there is no store to edit; add "
                       "state = \"DIR\" to [machine] or pass --state DIR")
    path = Path(desc.machine.state) / f"{desc.machine.name}.db" if desc.machine.state else None
    prom = PromOptions(Store(path), desc.machine.type, mac=desc.prom.mac, initial=desc.prom.options)
    return desc, prom


def _print_changes(changes) -> None:
    for change in changes:
        print(change)
    if not changes:
        print("no change")


def main(args) -> int:
    from ..prom import nvram

    verb = args.prom_verb
    if verb is None:
        print(USAGE)
        return 2
    try:
        if verb == "show":
            return asyncio.run(_show(args))
        if verb == "run":
            return asyncio.run(_run(args))
        desc, prom = _options(args)
        if verb == "list":
            print(f"# {desc.machine.name} ({desc.machine.type}), IDPROM MAC {prom.mac}")
            for name, value in prom.options():
                print(f"{name}={value}")
        elif verb == "get":
            value = prom.get(args.name)
            if value is None:
                print(f"vhw: option {args.name!r} is not stored", file=sys.stderr)
                return 1
            print(value)
        elif verb == "set":
            change = prom.set(args.name, args.value)
            print(change if change else "no change")
        elif verb == "unset":
            print(prom.unset(args.name))
        elif verb == "export":
            Path(args.image).write_bytes(prom.image())
            print(f"wrote {args.image} ({nvram.NVRAM_SIZE} bytes, {len(prom.injected_options())} options)")
        elif verb == "import":
            try:
                data = Path(args.image).read_bytes()
            except OSError as e:
                raise VhwError(f"cannot read {args.image}: {e.strerror}") from None
            _print_changes(prom.import_image(data))
        elif verb == "diff":
            if args.image:
                try:
                    image = nvram.parse_image(Path(args.image).read_bytes())
                except OSError as e:
                    raise VhwError(f"cannot read {args.image}: {e.strerror}") from None
                live = list(image.options)
            else:
                live = [tuple(p) for p in (asyncio.run(_request(args.control, {"op": "nvram"})))["options"]]
            return _print_diff(prom.injected_options(), live)
        return 0
    except nvram.NvramError as e:
        raise VhwError(str(e)) from None


def _print_diff(stored, live) -> int:
    from ..prom.options import diff

    changes = diff(stored, live)
    if not changes:
        print("the store and the NVRAM agree")
        return 0
    print("# from the store (-) to the NVRAM (+)")
    for change in changes:
        print(change)
    return 1


async def _request(path: str, request: dict) -> dict:
    from ..control import control_request

    return await control_request(path, request, timeout=120)


async def _show(args) -> int:
    answer = await _request(args.control, {"op": "show", "tree": args.tree})
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    print(f"# {answer['machine']} ({answer['type']}), {answer['state']}")
    print("# stored options")
    for name, value in answer["stored"]:
        print(f"{name}={value}")
    print(f"# live NVRAM (IDPROM MAC {answer['nvram']['mac']})")
    for name, value in answer["nvram"]["options"]:
        print(f"{name}={value}")
    if answer.get("tree"):
        print("# device tree (firmware)")
        for node in answer["tree"]:
            print(f"{node['path']}  [{node['id']}]")
            for name, value in node["properties"].items():
                print(f"    {name} = {value}")
    elif args.tree:
        print(f"# no tree: {answer.get('tree_error')}")
    return 0


def _tree_json(tree) -> list[dict]:
    from ..prom.tree import decode_string

    def show(value: bytes) -> str:
        text = value[:-1] if value.endswith(b"\0") else value
        if text and all(32 <= b < 127 for b in text) and value.endswith(b"\0"):
            return repr(decode_string(value))
        return value.hex() or "(empty)"

    return [{"path": n.path, "id": f"{n.node_id:x}",
             "properties": {k: show(v) for k, v in n.properties.items()}} for n in tree.walk()]


class PromControl:
    """The requests a running SPARC machine answers on its control socket."""

    def __init__(self, machine):
        self.machine = machine
        self.at_prompt = False

    async def __call__(self, req: dict) -> dict:
        from ..prom import nvram

        m = self.machine
        op = req.get("op")
        if op == "ping":
            return {}
        if op == "nvram":
            image = nvram.parse_image(nvram.mask_clock(await m.read_nvram(), m.desc.machine.type))
            return {"options": [list(p) for p in image.options], "mac": image.idprom.mac_text}
        if op == "show":
            out = {"machine": m.desc.machine.name, "type": m.desc.machine.type,
                   "state": "at the ok prompt" if self.at_prompt else "running",
                   "stored": [list(p) for p in m.prom.options()], "nvram": await self({"op": "nvram"})}
            if req.get("tree"):
                if self.at_prompt:
                    out["tree"] = _tree_json(await m.firmware_tree())
                else:
                    out["tree_error"] = ("the firmware's tree is readable at the ok prompt only; "
                                         "use `vhw prom run --hold` and ask once the guest has halted")
            return out
        raise ValueError(f"unknown op {op!r}; known: ping, nvram, show")


async def _run(args) -> int:
    from ..control import ControlServer
    from ..machine.console import Mirror
    from ..prom.machine import SparcMachine

    desc = _description(args)
    out = sys.stdout.buffer

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    machine = SparcMachine(desc, append=args.append, progress=progress)
    if not args.quiet:
        machine.console.attach(Mirror(out))
    server = None
    try:
        await machine.start()
        control = PromControl(machine)
        if args.control:
            server = ControlServer(handler=control)
            await server.start(args.control)
            progress(f"[vhw] control socket {args.control}")
        await machine.wait_prompt(args.timeout)
        control.at_prompt = True
        progress("\n[vhw] the firmware is at the ok prompt; reading /options")
        changes = await machine.capture()
        for change in changes:
            progress(f"[vhw] stored {change}")
        if not changes:
            progress("[vhw] no option changed")
        if args.hold:
            progress("[vhw] holding at the ok prompt (Ctrl-C to quit)")
            await asyncio.Event().wait()
        return 0
    finally:
        if server is not None:
            await server.close()
        await machine.stop()
