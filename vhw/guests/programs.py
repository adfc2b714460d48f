"""vhw's in-guest conformance programs, built inside a guest that has a C compiler.

vhw's own Linux guests carry the programs prebuilt.  Any other guest (the
downloaded FreeBSD, illumos, NetBSD images, or your own build) gets them
built in place, through whatever way in the machine has (agent or console):
the sources and headers go in with ``put``, the guest's cc compiles them with
the flags guest-images/src/programs.toml gives for that OS, and the results
come back as cases and findings for the report, per OS, as on Linux.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import GuestError, VhwError
from .images import source_root

#: Where builds happen in the guest (one directory per program).
BUILD_ROOT = "/tmp/vhw-build"
#: Exit status of a program with nothing to test on this OS (automake's SKIP).
EXIT_NOTHING_TO_TEST = 77
OUTPUTS = ("json", "passfail", "openprom")


@dataclass(frozen=True)
class OsBuild:
    """How one program builds and runs on one OS."""

    cflags: tuple[str, ...]
    libs: tuple[str, ...]
    device: str
    args: tuple[str, ...]
    output: str


@dataclass(frozen=True)
class Program:
    name: str
    summary: str
    sources: tuple[str, ...]
    #: (file under guest-images/, where the guest sees it relative to the build directory)
    headers: tuple[tuple[str, str], ...]
    os: dict[str, OsBuild]


class ProgramError(VhwError):
    """A conformance program does not build in a guest (the compiler's words), or the table is wrong."""


class ProgramUnavailable(ProgramError):
    """A program has nothing to test on this OS, or the guest cannot build it (no compiler)."""


def load_programs(path: Path | None = None) -> dict[str, Program]:
    """The build table (guest-images/src/programs.toml; its header documents the schema)."""
    path = path or source_root() / "guest-images" / "src" / "programs.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ProgramError(f"{path}: {e}") from None
    programs = {}
    for name, table in data.items():
        builds = {}
        for os_name, b in table.get("os", {}).items():
            if b.get("output") not in OUTPUTS:
                raise ProgramError(f"{path}: [{name}.os.{os_name}] output must be one of {', '.join(OUTPUTS)}")
            builds[os_name] = OsBuild(tuple(b.get("cflags", ())), tuple(b.get("libs", ())), b.get("device", ""),
                                      tuple(b.get("args", ())), b["output"])
        programs[name] = Program(name, table.get("summary", ""), tuple(table["sources"]),
                                 tuple((h["file"], h["guest"]) for h in table.get("headers", ())), builds)
    return programs


def program(name: str) -> Program:
    programs = load_programs()
    if name not in programs:
        raise ProgramError(f"no conformance program {name!r}; known: {', '.join(sorted(programs))}")
    return programs[name]


async def compiler(machine) -> str | None:
    """The guest's C compiler (cc, gcc or clang), or None."""
    r = await machine.run("command -v cc || command -v gcc || command -v clang", timeout=60)
    found = r.stdout.decode(errors="replace").split()
    return found[-1] if r.returncode == 0 and found else None


async def build(machine, name: str, os_name: str) -> str:
    """Build ``name`` in the guest for ``os_name``; the path of the binary there.

    ProgramError when the program has nothing for this OS or the guest has no
    compiler; a compile error is a ProgramError carrying the compiler's words.
    """
    prog = program(name)
    spec = prog.os.get(os_name)
    if spec is None:
        supported = ", ".join(sorted(prog.os)) or "no OS"
        raise ProgramUnavailable(f"{name} has nothing to test on {os_name} (it builds for {supported})")
    cc = await compiler(machine)
    if cc is None:
        raise ProgramUnavailable(f"{name}: the guest has no C compiler to build it with")
    root = source_root() / "guest-images"
    build_dir = f"{BUILD_ROOT}/{name}"
    r = await machine.run(f"rm -rf {build_dir} && mkdir -p {build_dir}", timeout=60)
    if r.returncode != 0:
        raise ProgramError(f"{name}: cannot make {build_dir} in the guest: {r.stderr.decode(errors='replace')}")
    for source in prog.sources:
        await machine.put(f"{build_dir}/{Path(source).name}", (root / "src" / source).read_bytes())
    for file, seen_as in prog.headers:
        where = f"{build_dir}/{seen_as}"
        await machine.run(f"mkdir -p {shlex.quote(str(Path(where).parent))}", timeout=60)
        await machine.put(where, (root / file).read_bytes())
    words = [cc, *spec.cflags, "-o", name, *(Path(s).name for s in prog.sources), *spec.libs]
    r = await machine.run(f"cd {build_dir} && " + " ".join(shlex.quote(w) for w in words), timeout=900)
    if r.returncode != 0:
        out = (r.stdout + r.stderr).decode(errors="replace").strip()
        raise ProgramError(f"{name} does not build on {os_name} ({' '.join(words)}):\n{out[-3000:]}")
    return f"{build_dir}/{name}"


async def ensure(machine, name: str, os_name: str) -> str:
    """The command that runs ``name`` in the guest: the prebuilt one on PATH, else one built now."""
    r = await machine.run(f"command -v {shlex.quote(name)}", timeout=60)
    if r.returncode == 0 and r.stdout.strip():
        return name
    return await build(machine, name, os_name)


def results(output: str, text: str):
    """A program's output as (cases, findings) in the report's terms (vhw.report)."""
    from ..report import Case, Finding, parse_conformance_findings, parse_conformance_output

    if output in ("json", "passfail"):
        return parse_conformance_output(text), parse_conformance_findings(text)
    if output == "openprom":
        from ..prom.conform import judge, parse_guest_output

        cases, findings = [], []
        for v in judge(parse_guest_output(text)):
            name = f"{v['seq']}-{v['check']}"
            outcome = "fail" if v["verdict"] == "differs" else "pass"
            cases.append(Case(name, outcome, f"{v['ioctl']}: {v['observed']}"))
            if v["verdict"] == "finding":
                findings.append(Finding("warning", f"{v['check']}: {v['finding']}", v["observed"]))
        return cases, findings
    raise GuestError(f"unknown program output {output!r}")
