"""The layers the design promises: device models are sans-I/O.

The model packages (``MODEL_PACKAGES``: the BMC's core, parts, commands and
wire codecs) and the listed modules (``SANS_IO_MODULES``, vhw.faults among
them) import no event loop, socket, thread, clock or process, and nothing of
the BMC's I/O side (``vhw.ipmi.io``).

A model never touches a socket, a clock, a thread, an event loop, a process
or the file system:
time comes in as an argument, effects go out as returned actions or through
a port the transport side implements.  Checked on the source, so a lazy
import inside a function counts too, and through vhw's own imports, so a
model cannot reach asyncio through a helper.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def module_path(name: str) -> Path:
    base = ROOT.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


#: Packages that are sans-I/O as a whole: every module in them (and below) is
#: a model, a codec or a port.  The BMC's ``vhw.ipmi.io`` is its I/O side.
MODEL_PACKAGES = (
    "vhw.ipmi.core",
    "vhw.ipmi.parts",
    "vhw.ipmi.commands",
    "vhw.ipmi.wire",
)


def package_modules(package: str) -> tuple[str, ...]:
    """``package`` and every module under it, by dotted name."""
    root = module_path(package).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return tuple(names)


#: Sans-I/O modules: models, codecs and the ports they are handed.
SANS_IO_MODULES = (
    "vhw.errors",
    "vhw.faults",
    "vhw.ipmi",
    "vhw.tables",
    "vhw.i2o",
    "vhw.i2o.bsa",
    "vhw.i2o.executive",
    "vhw.i2o.frames",
    "vhw.i2o.iop",
    "vhw.i2o.mu",
    "vhw.i2o.params",
    "vhw.pci",
    "vhw.pci.dma",
    "vhw.pci.function",
    "vhw.pci.mpqemu",
    "vhw.prom",
    "vhw.prom.conform",
    "vhw.prom.nvram",
    "vhw.prom.okprompt_codec",
    "vhw.prom.options",
    "vhw.prom.tree",
) + tuple(m for package in MODEL_PACKAGES for m in package_modules(package))

#: Modules of the packages below that are the I/O side on purpose: they map
#: memory, open files, run loops or threads for the models next to them.
IO_MODULES = (
    "vhw.i2o.device",         # PCI glue: eventfd, socketpair, the server thread
    "vhw.i2o.image_file",     # the BSA Storage port over image files
    "vhw.pci.memfd",          # the Dma port over QEMU's memfds
    "vhw.pci.mpqemu_server",  # the socket loop around the mpqemu codec
    "vhw.cli.prom",
    "vhw.prom.guestrun",
    "vhw.prom.machine",
    "vhw.prom.okprompt",      # the asyncio driver around the ok-prompt codec
)

#: Packages whose every module is in exactly one of the two lists.
SPLIT_PACKAGES = ("vhw.i2o", "vhw.pci", "vhw.prom")

#: What a sans-I/O module may not import (top-level module names).
FORBIDDEN = frozenset({
    "asyncio", "socket", "threading", "time", "selectors", "subprocess", "os",
    "select", "mmap", "sqlite3", "signal", "multiprocessing", "concurrent",
})


def imports(name: str, source: str) -> set[str]:
    """Every module ``source`` (the text of module ``name``) imports, absolute."""
    package = name if module_path(name).name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import frames`` imports the module vhw.i2o.frames
            found.update(f"{target}.{alias.name}" for alias in node.names
                         if module_path(f"{target}.{alias.name}").exists())
    return found


def opens_files(source: str) -> list[int]:
    """Lines that call the builtin ``open``."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"]


def violations(name: str, source: str) -> list[str]:
    found = imports(name, source)
    bad = [f"imports {m}" for m in sorted(found) if m.split(".")[0] in FORBIDDEN]
    bad += [f"imports {m}: the BMC's I/O side" for m in sorted(found) if m.startswith("vhw.ipmi.io")]
    bad += [f"imports {m}, which is not sans-I/O" for m in sorted(found)
            if m.split(".")[0] == "vhw" and m not in SANS_IO_MODULES and module_path(m).exists()]
    bad += [f"calls open() on line {n}" for n in opens_files(source)]
    return bad


@pytest.mark.parametrize("name", SANS_IO_MODULES)
def test_sans_io_module_imports_no_io(name):
    assert violations(name, module_path(name).read_text()) == []


def test_every_module_of_the_split_packages_is_on_one_side():
    listed = set(SANS_IO_MODULES) | set(IO_MODULES)
    assert not set(SANS_IO_MODULES) & set(IO_MODULES)
    assert all(module_path(m).exists() for m in listed), "a listed module does not exist"
    modules = set()
    for package in SPLIT_PACKAGES:
        for path in module_path(package).parent.glob("*.py"):
            stem = "" if path.name == "__init__.py" else f".{path.stem}"
            modules.add(package + stem)
    unplaced = sorted(modules - listed)
    assert unplaced == [], ("put each in SANS_IO_MODULES (a model: no I/O) or IO_MODULES "
                            "(an adapter; then say what it adapts)")


def test_the_model_packages_are_what_the_bmc_is_made_of():
    """Every module of vhw.ipmi is in a model package or in vhw.ipmi.io, and the
    list holds the dispatcher, a part, a handler and a codec."""
    ipmi = set(package_modules("vhw.ipmi"))
    models = {m for package in MODEL_PACKAGES for m in package_modules(package)}
    io = set(package_modules("vhw.ipmi.io"))
    assert ipmi - models - io == {"vhw.ipmi"}
    assert {"vhw.ipmi.core.bmc", "vhw.ipmi.parts.sel", "vhw.ipmi.commands.app", "vhw.ipmi.wire.extern"} <= models
    assert "vhw.ipmi.io.runner" in io and not models & io


def test_the_check_catches_what_it_forbids():
    """The checker itself: lazy imports, relative imports of I/O modules,
    open(); not a mention in a string or an attribute called open."""
    source = '''
import struct
from . import frames
from .device import IopPciDevice
from ..pci import memfd
def later():
    import time
    from os import path
    with open("x") as f:
        return f, time, path
doc = "import socket"
def fine(obj):
    return obj.open()
'''
    assert violations("vhw.i2o.example", source) == [
        "imports os",
        "imports time",
        "imports vhw.i2o.device, which is not sans-I/O",
        "imports vhw.pci.memfd, which is not sans-I/O",
        "calls open() on line 9",
    ]
    bmc_source = """
from ..io.runner import BmcRunner
def later():
    import asyncio
    from vhw.ipmi.io import service
"""
    assert violations("vhw.ipmi.parts.example", bmc_source) == [
        "imports asyncio",
        "imports vhw.ipmi.io: the BMC's I/O side",
        "imports vhw.ipmi.io.runner: the BMC's I/O side",
        "imports vhw.ipmi.io.service: the BMC's I/O side",
        "imports vhw.ipmi.io, which is not sans-I/O",
        "imports vhw.ipmi.io.runner, which is not sans-I/O",
        "imports vhw.ipmi.io.service, which is not sans-I/O",
    ]
