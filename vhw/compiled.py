"""The compiled hot path: vhw's own wire codecs built with mypyc, used only while current.

The modules every IPMI request crosses (RMCP, RMCP+, the IPMB and extern
codecs, the RMCP+ algorithms) are compiled from their one Python source with
mypyc (shipped with mypy) by ``make venv`` (``vhw.compiled.main(["build"])``).
The result goes to ``<venv>/vhw-compiled`` with a manifest of the SHA-256 of
the sources it was compiled from and against (``checked_against``).  At
import, ``install`` checks the manifest against the sources beside it: only
when every one is unchanged (and the interpreter is the one it was built for)
are the compiled modules served, all of them; a changed source
means the pure Python for all, with one warning, so an edit is never shadowed
by an old build.  ``VHW_PURE=1`` forces pure Python.

The compiled code is the same code: mypyc enforces the annotations at run
time, nothing else differs.  ``vhw.compiled.active()`` says which path runs.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import sysconfig
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

#: The modules compiled, in the order given to mypyc.
HOT_MODULES = (
    "vhw.ipmi.core.bmc",
    "vhw.ipmi.wire.ipmb",
    "vhw.ipmi.wire.rmcp",
    "vhw.ipmi.wire.crypto",
    "vhw.ipmi.wire.rmcpplus",
    "vhw.ipmi.wire.datagrams",
    "vhw.ipmi.wire.extern",
    "vhw.ipmi.parts.sessions",
)
MANIFEST = "manifest.json"
PACKAGE_DIR = Path(__file__).resolve().parent
ENV_PURE = "VHW_PURE"
ENV_DIR = "VHW_COMPILED_DIR"

_state: dict[str, object] = {"active": False, "reason": "not installed"}


def default_dir() -> Path:
    """Where the build goes: ``$VHW_COMPILED_DIR``, else ``<sys.prefix>/vhw-compiled`` (the venv)."""
    override = os.environ.get(ENV_DIR)
    return Path(override) if override else Path(sys.prefix) / "vhw-compiled"


def source_path(module: str) -> Path:
    """The .py file of a hot module in this package."""
    parts = module.split(".")
    return PACKAGE_DIR.joinpath(*parts[1:]).with_suffix(".py")


def source_hashes(modules: Iterable[str] = HOT_MODULES) -> dict[str, str]:
    return {m: hashlib.sha256(source_path(m).read_bytes()).hexdigest() for m in modules}


def checked_against(modules: Iterable[str] = HOT_MODULES) -> list[str]:
    """The hot modules and the vhw modules they import directly.

    mypyc compiles a module against the types of what it imports, so an
    edit to one of those makes the build stale as much as an edit to the
    module itself.
    """
    import ast

    found = set(modules)
    for module in modules:
        package = module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(source_path(module).read_bytes())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.split(".")[0] == "vhw" and source_path(name).is_file():
                    found.add(name)
    return sorted(found)


def interpreter_tag() -> str:
    """The extension-module ABI the build is for (a build for another interpreter is not loaded)."""
    return f"{sys.implementation.cache_tag}-{sysconfig.get_config_var('EXT_SUFFIX')}"


def active() -> bool:
    """True when the hot modules are served compiled."""
    return bool(_state["active"])


def status() -> str:
    """One line for humans: which path runs, and why."""
    return "compiled (mypyc)" if active() else f"pure Python ({_state['reason']})"


# -- loading ----------------------------------------------------------------------

class _CompiledFinder:
    """Serves the hot modules (and mypyc's shared group library) from the build directory.

    A meta path finder needs only ``find_spec`` (importlib.abc is not imported:
    every ``import vhw`` pays for what this module imports)."""

    def __init__(self, files: dict[str, Path]):
        self.files = files

    def find_spec(self, fullname: str, path: object = None, target: ModuleType | None = None):
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def _read_manifest(directory: Path) -> dict | None:
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _usable(directory: Path) -> tuple[dict[str, Path] | None, str, bool]:
    """The one rule for a build: its files by module name if ``directory`` holds a complete
    build of today's sources for this interpreter, else None, why not, and whether that
    is worth a warning (sources edited since the build)."""
    manifest = _read_manifest(directory)
    if manifest is None:
        return None, f"no build in {directory} (make venv builds it)", False
    if manifest.get("interpreter") != interpreter_tag():
        return None, f"the build in {directory} is for another Python", False
    recorded = manifest.get("sources", {})
    try:
        current = source_hashes([m for m in recorded if source_path(m).is_file()])
    except OSError as e:
        return None, f"cannot read the sources: {e}", False
    # A hot module that gained an import changed itself, so the recorded set needs no re-check.
    changed = sorted(m for m in set(recorded) | set(HOT_MODULES) if current.get(m) != recorded.get(m))
    if changed:
        return None, f"{', '.join(changed)} changed since the build; `make venv` rebuilds it", True
    files = {name: directory / rel for name, rel in manifest.get("files", {}).items()}
    if set(HOT_MODULES) - set(files) or not all(f.is_file() for f in files.values()):
        return None, f"the build in {directory} is incomplete", False
    return files, "", False


def build_is_current(directory: Path) -> bool:
    """True when ``directory`` holds a build ``install`` would use."""
    return _usable(directory)[0] is not None


def install(directory: Path | None = None) -> bool:
    """Put the compiled hot modules on the import path if they match the sources; True if they do.

    Must run before any hot module is imported (``vhw/__init__`` calls it).
    """
    if any(m in sys.modules for m in HOT_MODULES):
        _state.update(active=False, reason="a hot module was imported before vhw.compiled.install")
        return False
    if os.environ.get(ENV_PURE, "") not in ("", "0"):
        _state.update(active=False, reason=f"{ENV_PURE} is set")
        return False
    files, reason, warn = _usable(directory or default_dir())
    if files is None:
        _state.update(active=False, reason=reason)
        if warn:
            warnings.warn(f"vhw: compiled hot path not used: {reason}", RuntimeWarning, stacklevel=2)
        return False
    sys.meta_path.insert(0, _CompiledFinder(files))
    _state.update(active=True, reason="")
    return True


# -- building ---------------------------------------------------------------------

def build(out: Path | None = None, *, log=print) -> Path:
    """Compile the hot modules into ``out`` (default ``default_dir()``) and write the manifest.

    The sources are copied to a scratch tree first, so the package directory
    never holds extension modules that would shadow its .py files.  Raises
    RuntimeError with mypyc's output when the build fails.
    """
    import shutil
    import subprocess
    import tempfile

    out = out or default_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vhw-mypyc-") as tmp:
        work = Path(tmp)
        shutil.copytree(PACKAGE_DIR, work / "vhw", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        pyproject = PACKAGE_DIR.parent / "pyproject.toml"
        if pyproject.is_file():
            shutil.copy(pyproject, work / "pyproject.toml")
        checked = checked_against()
        hashes = {m: hashlib.sha256((work / source_path(m).relative_to(PACKAGE_DIR.parent)).read_bytes())
                  .hexdigest() for m in checked}
        sources = [str(source_path(m).relative_to(PACKAGE_DIR.parent)) for m in HOT_MODULES]
        log(f"[venv] compiling the hot path with mypyc: {len(sources)} modules")
        proc = subprocess.run([sys.executable, "-m", "mypyc", *sources], cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("mypyc failed:\n" + (proc.stdout + proc.stderr)[-4000:])
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        files: dict[str, str] = {}
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out.parent))
        for m in HOT_MODULES:
            rel = Path(*m.split(".")).with_name(m.rsplit(".", 1)[1] + suffix)
            built = work / rel
            if not built.is_file():
                raise RuntimeError(f"mypyc did not produce {rel}")
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(built, staging / rel)
            files[m] = str(rel)
        for group in work.glob(f"*__mypyc{suffix}"):
            shutil.copy2(group, staging / group.name)
            files[group.name[: -len(suffix)]] = group.name
        manifest = {"interpreter": interpreter_tag(), "sources": hashes, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        # Swap in whole: a reader sees the old build or the new one, never a mix.
        if out.exists():
            old = out.with_name(out.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="vhw.compiled",
                                     description="build or check vhw's compiled hot path (mypyc)")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile the hot modules (make venv runs this)")
    b.add_argument("--out", type=Path, default=None, help="build directory (default: <venv>/vhw-compiled)")
    b.add_argument("--if-stale", action="store_true", help="do nothing when the build matches the sources")
    sub.add_parser("status", help="say whether the compiled path is used, and why not")
    args = parser.parse_args(argv)
    if args.command == "status":
        print(f"vhw hot path: {status()}")
        return 0
    out = args.out or default_dir()
    if args.if_stale and build_is_current(out):
        return 0
    try:
        build(out)
    except (RuntimeError, OSError) as e:
        print(f"[venv] compiled hot path not built, vhw runs pure Python (slower): {e}", file=sys.stderr)
        return 1
    print(f"[venv] compiled hot path in {out}")
    return 0
