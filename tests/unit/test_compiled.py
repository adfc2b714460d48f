"""The compiled hot path (vhw.compiled): served only while it matches its sources, all or nothing."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from vhw import compiled

EXT = sysconfig.get_config_var("EXT_SUFFIX")
PROBE = ("import json, sys, vhw, vhw.compiled as c, vhw.ipmi.wire.ipmb as a, vhw.ipmi.wire.rmcpplus as b; "
         "print(json.dumps([c.active(), c.status(), a.__file__, b.__file__]))")


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """The venv's build when it is current, else a fresh one (about 15 s)."""
    d = compiled.default_dir()
    if compiled.build_is_current(d):
        return d
    return compiled.build(tmp_path_factory.mktemp("compiled") / "build", log=lambda _: None)


def probe(directory: Path, **env: str) -> tuple[bool, str, str, str, str]:
    environ = {k: v for k, v in os.environ.items() if k != compiled.ENV_PURE}
    environ.update(env, **{compiled.ENV_DIR: str(directory)})
    proc = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    active, status, a, b = json.loads(proc.stdout)
    return active, status, a, b, proc.stderr


def copy_build(build: Path, to: Path, edit=None) -> Path:
    shutil.copytree(build, to)
    if edit is not None:
        manifest = json.loads((to / compiled.MANIFEST).read_text())
        edit(manifest)
        (to / compiled.MANIFEST).write_text(json.dumps(manifest))
    return to


def test_this_run_uses_the_path_make_chose():
    """make test runs the whole suite compiled, then the wire codec tests again with VHW_PURE=1."""
    files = [importlib.import_module(m).__file__ or "" for m in compiled.HOT_MODULES]
    if os.environ.get(compiled.ENV_PURE):
        assert not compiled.active()
        assert all(f.endswith(".py") for f in files), files
    else:
        assert compiled.active(), f"the hot path is not compiled: {compiled.status()}"
        assert all(f.endswith(EXT) for f in files), files


def test_a_current_build_serves_every_hot_module_compiled(build, tmp_path):
    active, status, a, b, _ = probe(copy_build(build, tmp_path / "b"))
    assert active and status == "compiled (mypyc)"
    assert a.startswith(str(tmp_path)) and a.endswith(EXT)
    assert b.startswith(str(tmp_path)) and b.endswith(EXT)


def test_what_the_build_was_checked_against_is_recorded():
    """A hot module is compiled against the types of the vhw modules it imports."""
    checked = compiled.checked_against()
    assert set(compiled.HOT_MODULES) <= set(checked)
    assert {"vhw.ipmi.core.bmc", "vhw.ipmi.parts.sessions", "vhw.errors"} <= set(checked)


@pytest.mark.parametrize("changed", ["vhw.ipmi.wire.crypto", "vhw.ipmi.core.bmc"])
def test_one_changed_source_turns_the_whole_build_off(build, tmp_path, changed):
    """A hot module or one it was compiled against: either makes the build stale."""
    def edit(manifest):
        assert changed in manifest["sources"]
        manifest["sources"][changed] = "0" * 64

    active, status, a, b, stderr = probe(copy_build(build, tmp_path / "b", edit))
    assert not active
    assert f"{changed} changed since the build" in status
    assert "compiled hot path not used" in stderr
    # All or nothing: the unchanged modules are not served compiled either.
    assert a.endswith("ipmb.py") and b.endswith("rmcpplus.py")


def test_a_build_for_another_interpreter_is_not_loaded(build, tmp_path):
    def edit(manifest):
        manifest["interpreter"] = "cpython-399-.cpython-399-x86_64-linux-gnu.so"

    active, status, a, _, _ = probe(copy_build(build, tmp_path / "b", edit))
    assert not active and "another Python" in status and a.endswith(".py")


def test_an_incomplete_build_is_not_loaded(build, tmp_path):
    b = copy_build(build, tmp_path / "b")
    manifest = json.loads((b / compiled.MANIFEST).read_text())
    (b / manifest["files"]["vhw.ipmi.wire.rmcpplus"]).unlink()
    active, status, a, _, _ = probe(b)
    assert not active and "incomplete" in status and a.endswith(".py")


def test_vhw_pure_and_a_missing_build_mean_pure_python(build, tmp_path):
    active, status, a, _, _ = probe(copy_build(build, tmp_path / "b"), **{compiled.ENV_PURE: "1"})
    assert not active and "VHW_PURE" in status and a.endswith(".py")
    active, status, a, _, _ = probe(tmp_path / "nothing-here")
    assert not active and "no build" in status and a.endswith(".py")
