"""The in-guest conformance programs build for every OS guest-images/src/programs.toml names.

The FreeBSD, illumos, NetBSD and OpenBSD images cannot be run here, so their
builds are checked the way a guest's cc would see them: the OS-specific
branches are compiled with ``-nostdinc`` against the stand-in headers in
tests/unit/guests/data/os-headers/<os> (what that OS declares, not glibc), with the
OS's predefined macros in place of Linux's, under -Wall -Wextra -Werror.
The Linux builds are checked with the exact gcc command
guest-images/linux-x86/build runs.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GUEST_IMAGES = ROOT / "guest-images"
SRC = GUEST_IMAGES / "src"
TABLE = SRC / "programs.toml"
SHIMS = Path(__file__).resolve().parent / "data" / "os-headers"

OSES = ("linux", "freebsd", "illumos", "netbsd", "openbsd")
OUTPUTS = ("json", "passfail", "openprom")
#: What each OS's compiler predefines that the programs test, instead of Linux's.
OS_MACROS = {
    "freebsd": ["-D__FreeBSD__=14"],
    "illumos": ["-D__sun", "-D__sun__", "-D__SVR4", "-D__svr4__", "-D__illumos__"],
    "netbsd": ["-D__NetBSD__"],
    "openbsd": ["-D__OpenBSD__"],
}
NOT_LINUX = ["-U__linux__", "-U__linux", "-Ulinux", "-U__gnu_linux__"]
#: <machine/openpromio.h> is a SPARC header: openprom_conform's hosted build is sparc64's.
SPARC64 = ["-U__x86_64__", "-U__amd64__", "-D__sparc__", "-D__sparc64__", "-D__arch64__"]
STRICT = ["-fsyntax-only", "-Wall", "-Wextra", "-Werror"]

def table() -> dict:
    return tomllib.loads(TABLE.read_text())


def pairs() -> list[tuple[str, str]]:
    return [(name, os) for name, prog in table().items() for os in prog.get("os", {})]


def build_dir(tmp_path: Path, name: str) -> Path:
    """A guest build directory as programs.toml describes it: sources and headers where the guest sees them."""
    prog = table()[name]
    for src in prog["sources"]:
        shutil.copy(SRC / src, tmp_path / Path(src).name)
    for header in prog["headers"]:
        dest = tmp_path / header["guest"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(GUEST_IMAGES / header["file"], dest)
    return tmp_path


def compile_in(build: Path, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["gcc", *argv], cwd=build, capture_output=True, text=True)


def os_argv(name: str, os: str) -> list[str]:
    """gcc arguments that make this host's gcc see what the guest's cc sees."""
    if os == "linux":
        return []
    argv = ["-nostdinc", "-I", str(SHIMS / os), "-I", str(SHIMS / "posix"), *NOT_LINUX, *OS_MACROS[os]]
    if name == "openprom_conform":
        argv += SPARC64
    return argv


# ------------------------------------------------------------------ the table

def test_table_lists_existing_files_and_known_oses():
    data = table()
    assert set(data) >= {"ipmi_conform", "ptosm_conform", "openprom_conform"}
    for name, prog in data.items():
        assert prog["summary"]
        assert prog["sources"], name
        for src in prog["sources"]:
            assert (SRC / src).is_file(), f"{name}: source {src} is not under guest-images/src"
        for header in prog["headers"]:
            assert set(header) == {"file", "guest"}, header
            assert (GUEST_IMAGES / header["file"]).is_file(), f"{name}: header {header['file']}"
            guest = Path(header["guest"])
            assert not guest.is_absolute() and ".." not in guest.parts, header
        assert prog["os"], f"{name} supports no OS"
        for os, build in prog["os"].items():
            assert os in OSES, f"{name}: unknown OS {os!r}"
            assert set(build) == {"cflags", "libs", "device", "args", "output"}, (name, os)
            for key in ("cflags", "libs", "args"):
                assert isinstance(build[key], list) and all(isinstance(a, str) for a in build[key]), (name, os, key)
            assert build["device"].startswith("/dev/"), (name, os)
            assert build["output"] in OUTPUTS, (name, os)


def test_table_matches_what_each_program_supports():
    """ptosm_conform has no FreeBSD or illumos entry (no I2O pass-through there); openprom_conform only BSD ones."""
    data = table()
    assert set(data["ipmi_conform"]["os"]) == {"linux", "freebsd", "illumos", "netbsd"}
    assert set(data["ptosm_conform"]["os"]) == {"linux", "netbsd"}
    assert set(data["openprom_conform"]["os"]) == {"netbsd", "openbsd"}
    assert {b["output"] for b in data["ipmi_conform"]["os"].values()} == {"json"}
    assert {b["output"] for b in data["ptosm_conform"]["os"].values()} == {"passfail"}
    assert {b["output"] for b in data["openprom_conform"]["os"].values()} == {"openprom"}


# -------------------------------------------------------------- the builds

@pytest.mark.parametrize("name,os", pairs(), ids=lambda v: v)
def test_program_compiles_for_os(tmp_path, name, os):
    """The table's build, run by a compiler that sees only what that OS declares."""
    build = build_dir(tmp_path, name)
    prog = table()[name]
    argv = [*prog["os"][os]["cflags"], *os_argv(name, os), *STRICT, *[Path(s).name for s in prog["sources"]]]
    r = compile_in(build, argv)
    assert r.returncode == 0, f"gcc {' '.join(argv)}\n{r.stderr}"
    assert r.stderr == "", r.stderr


@pytest.mark.parametrize("os", ["freebsd", "illumos", "netbsd"])
def test_ipmi_raw_compiles_for_os(os):
    """ipmi_raw as vhw.guests.guest_test builds it in these guests: <linux/ipmi.h>
    is guest-images/remote/linux/ipmi.h over the OS's <sys/ipmi.h>."""
    argv = ["-std=c99", "-D_XOPEN_SOURCE=700", "-I", str(GUEST_IMAGES / "remote"), *os_argv("ipmi_raw", os),
            *STRICT, str(SRC / "ipmi_raw.c")]
    r = compile_in(SRC, argv)
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("os", ["freebsd", "illumos", "netbsd"])
def test_os_branches_are_really_compiled(tmp_path, os):
    """The stand-ins are what the compiler uses: a program that calls an ipmi ioctl
    the OS's <sys/ipmi.h> does not declare fails to build."""
    (tmp_path / "probe.c").write_text("#include <sys/ipmi.h>\nint x = IPMICTL_NO_SUCH_IOCTL;\n")
    r = compile_in(tmp_path, [*os_argv("ipmi_conform", os), *STRICT, "probe.c"])
    assert r.returncode != 0 and "IPMICTL_NO_SUCH_IOCTL" in r.stderr, r.stderr


@pytest.mark.parametrize("os", ["freebsd", "illumos"])
def test_ptosm_conform_compiles_and_skips_without_a_pass_through_driver(tmp_path, os):
    """FreeBSD and illumos have no I2O pass-through: the program still builds there,
    says so as a SKIP line and exits 77.  The object compiled against the OS's
    headers calls only puts(), so linked with this host's libc it runs here."""
    build = build_dir(tmp_path, "ptosm_conform")
    r = compile_in(build, ["-Iinclude", *os_argv("ptosm_conform", os), *STRICT, "ptosm_conform.c"])
    assert r.returncode == 0, r.stderr
    r = compile_in(build, ["-Iinclude", *os_argv("ptosm_conform", os), "-c", "-o", "stub.o", "ptosm_conform.c"])
    assert r.returncode == 0, r.stderr
    r = compile_in(build, ["-o", "stub", "stub.o"])
    assert r.returncode == 0, r.stderr
    run = subprocess.run([str(build / "stub")], capture_output=True, text=True, timeout=30)
    assert run.returncode == 77
    name = {"freebsd": "FreeBSD", "illumos": "illumos"}[os]
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"SKIP ptosm_conform: {name} has no I2O pass-through driver"), lines
    assert lines[-1] == "SUMMARY passed=0 failed=0"


def test_openprom_conform_refuses_an_os_without_openprom(tmp_path):
    """Built for x86 Linux, or a BSD without <machine/openpromio.h>, it is the stub
    that says there is no /dev/openprom (exit 1), as guest-images/linux-x86 builds it."""
    build = build_dir(tmp_path, "openprom_conform")
    r = compile_in(build, ["-Iinclude", "-o", "stub", "openprom_conform.c"])
    assert r.returncode == 0, r.stderr
    run = subprocess.run([str(build / "stub")], capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert "SPARC guests only" in run.stderr


def load_linux_x86_build():
    path = GUEST_IMAGES / "linux-x86" / "build"
    loader = importlib.machinery.SourceFileLoader("linux_x86_build", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_linux_x86_build_still_compiles_every_program(tmp_path):
    """guest-images/linux-x86/build's own compile step (gcc -static -Os -s -Wall) over src/*.c."""
    build = load_linux_x86_build()
    built = build.compile_programs(str(tmp_path))
    assert {"ipmi_conform", "ptosm_conform", "openprom_conform", "ipmi_raw", "vhw-agent"} <= set(built)
    for program in built:
        out = tmp_path / "usr" / "bin" / program
        assert out.is_file() and out.stat().st_size > 0
    listing = subprocess.run([str(tmp_path / "usr/bin/ipmi_conform"), "-l"], capture_output=True, text=True)
    assert listing.returncode == 0
    assert listing.stdout.split()[:3] == ["open_close", "get_device_id", "recv_eagain"]
