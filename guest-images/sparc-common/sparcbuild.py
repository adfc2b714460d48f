"""Build a Linux SPARC guest of vhw offline: kernel + initramfs with openprom_conform.

Used by guest-images/linux-sparc64/build and linux-sparc32/build.  Linux 6.1
from Debian's linux-source-6.1, cross-built with Debian's
gcc-sparc64-linux-gnu (biarch: -m32 for sparc32), tinyconfig plus
sparc-common/common.config and linux-<arch>/kernel.config (openprom-sparc.md §8).

The kernel is the slow part (about 5 minutes on 2 cores), so it is cached on
its own under <cache>/kernels/linux-<arch>-<key>, keyed by the fragments,
the kernel source version and the compiler version: changing the in-guest
program only rebuilds the initramfs, which QEMU hands over with -initrd.
Outputs in OUTDIR: vmlinux (sparc64: the vmlinux ELF; sparc32: the zImage),
initramfs.cpio (uncompressed newc), manifest.json (written last).

The in-guest program is guest-images/src/openprom_conform.c with the
freestanding runtime guest-images/include/sparc_rt.h (no libc: the SS-5's
CPU is a SPARC V8).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
CROSS = "sparc64-linux-gnu-"
JOBS = os.environ.get("VHW_KERNEL_JOBS", "3")
#: Bump when the kernel build steps change in a way the fragments do not show.
KERNEL_RECIPE = "1"

ARCHES = {
    # arch: (kernel ARCH, make target, built file, gcc flags, QEMU machine)
    "sparc64": ("sparc64", "vmlinux", "vmlinux", ["-m64"], "sun4u"),
    "sparc32": ("sparc", "zImage", "arch/sparc/boot/zImage", ["-m32", "-mcpu=v8"], "SS-5"),
}
QEMU = {"sparc64": "qemu-system-sparc64", "sparc32": "qemu-system-sparc"}
#: What the guest's halt leads to (measured with QEMU 7.2 and its OpenBIOS).
HALT = {
    # Linux calls the CIF "exit": OpenBIOS prints "EXIT" and a "2 > " prompt.
    "sparc64": "ok-prompt",
    # Linux calls romvec pv_halt: OpenBIOS prints "halt, power off" and QEMU exits.
    "sparc32": "poweroff",
}
#: Options that must be in the final .config (a missing one fails the build).
REQUIRED = {
    "common": ["CONFIG_SUN_OPENPROMIO=y", "CONFIG_PRINTK=y", "CONFIG_TTY=y", "CONFIG_BLK_DEV_INITRD=y",
               "CONFIG_BINFMT_ELF=y", "CONFIG_DEVTMPFS=y", "CONFIG_PROC_FS=y", "CONFIG_SYSFS=y",
               "# CONFIG_MODULES is not set", "# CONFIG_SMP is not set"],
    "sparc64": ["CONFIG_64BIT=y", "CONFIG_SPARC64=y", "CONFIG_PCI=y", "CONFIG_SERIAL_SUNSU=y",
                "CONFIG_SERIAL_SUNSU_CONSOLE=y"],
    "sparc32": ["CONFIG_SPARC32=y", "CONFIG_SERIAL_SUNZILOG=y", "CONFIG_SERIAL_SUNZILOG_CONSOLE=y"],
}
#: The in-guest program (/init) and the runtime it includes.
PROGRAM = ROOT / "src" / "openprom_conform.c"
INCLUDE = ROOT / "include"
OPENPROM_MINOR = 139  # include/linux/miscdevice.h: SUN_OPENPROM_MINOR
CFLAGS = ["-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-pic", "-no-pie",
          "-fno-builtin", "-O2", "-Wall", "-Werror"]


class BuildError(Exception):
    pass


def log(arch: str, msg: str) -> None:
    print(f"[linux-{arch}] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    """$VHW_CACHE_DIR, else the parent of $VHW_DEB_CACHE (set by vhw), else ~/.cache/vhw."""
    if os.environ.get("VHW_CACHE_DIR"):
        return Path(os.environ["VHW_CACHE_DIR"])
    if os.environ.get("VHW_DEB_CACHE"):
        return Path(os.environ["VHW_DEB_CACHE"]).parent
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vhw"


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise BuildError(f"{argv[0]} failed ({e}); install it with `make deps`") from None


def fragments(arch: str, root: Path = ROOT) -> list[Path]:
    """The config fragments merged over tinyconfig: shared, then the guest's."""
    return [root / "sparc-common" / "common.config", root / f"linux-{arch}" / "kernel.config"]


def kernel_key(arch: str, source_version: str, gcc_version: str, root: Path = ROOT) -> str:
    """What the cached kernel depends on: fragments, source, compiler (not /init)."""
    h = hashlib.sha256(f"{arch}\0{KERNEL_RECIPE}\0{source_version}\0{gcc_version}\0".encode())
    for f in fragments(arch, root):
        h.update(f.read_bytes() + b"\0")
    h.update("\0".join(REQUIRED["common"] + REQUIRED[arch]).encode())
    return h.hexdigest()[:16]


def run_logged(cmd: list[str], logfile: Path, arch: str, heartbeat: float = 0, **kw) -> None:
    """Run cmd with its output in logfile; with heartbeat, say every so many
    seconds how far it got (one line, not the make output)."""
    started = time.monotonic()
    with open(logfile, "ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        # Its own process group, so that a stopped build stops all of make's children.
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        try:
            while True:
                try:
                    proc.wait(timeout=heartbeat or None)
                    break
                except subprocess.TimeoutExpired:
                    done = logfile.read_bytes().count(b"\n  CC ")
                    log(arch, f"... still compiling: {time.monotonic() - started:.0f} s, {done} files compiled")
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    if proc.returncode:
        tail = logfile.read_bytes()[-4000:].decode(errors="replace")
        raise BuildError(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}); log {logfile}:\n{tail}")


def locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def kernel_source(arch: str, version: str) -> Path:
    """The unpacked linux-source tree (once per source version)."""
    if not TARBALL.is_file():
        raise BuildError(f"{TARBALL} is missing: install linux-source-6.1 (`make deps`)")
    dest = cache_root() / "kernels" / f"src-{version}"
    with locked(dest.parent / ".src.lock"):
        if not (dest / "Makefile").is_file():
            for stale in dest.parent.glob(".src-*"):
                shutil.rmtree(stale, ignore_errors=True)
            log(arch, f"unpacking {TARBALL.name} (once)")
            tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".src-"))
            try:
                proc = subprocess.run(["tar", "xf", str(TARBALL), "-C", str(tmp), "--strip-components=1"],
                                      capture_output=True, text=True)
                if proc.returncode:
                    raise BuildError(f"unpacking {TARBALL} failed: {proc.stderr.strip()}")
                shutil.rmtree(dest, ignore_errors=True)
                tmp.rename(dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def build_kernel(arch: str) -> Path:
    """The cached kernel directory: kernel image, .config, uapi headers."""
    source_version = _version(["dpkg-query", "-W", "-f=${Version}", "linux-source-6.1"])
    gcc_version = _version([CROSS + "gcc", "-dumpfullversion"])
    karch, target, built, _, _ = ARCHES[arch]
    key = kernel_key(arch, source_version, gcc_version)
    dest = cache_root() / "kernels" / f"linux-{arch}-{key}"
    with locked(dest.parent / f".linux-{arch}.lock"):
        if (dest / "kernel").is_file():
            log(arch, f"kernel cached ({dest.name})")
            return dest
        # Left by a build that was killed (we hold the lock: nobody uses them).
        for stale in [*dest.parent.glob(f".build-{arch}-*"), *dest.parent.glob(f".out-{arch}-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        src = kernel_source(arch, source_version)
        work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".build-{arch}-"))
        logfile = dest.parent / f"linux-{arch}-{key}.log"
        logfile.write_bytes(b"")
        started = time.monotonic()
        make = ["make", "-C", str(src), f"O={work}", f"ARCH={karch}", f"CROSS_COMPILE={CROSS}"]
        try:
            log(arch, "configuring: tinyconfig + " + ", ".join(str(f.relative_to(ROOT)) for f in fragments(arch)))
            run_logged(make + ["tinyconfig"], logfile, arch)
            run_logged([str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(work),
                        str(work / ".config"), *map(str, fragments(arch))], logfile, arch, cwd=src)
            run_logged(make + ["olddefconfig"], logfile, arch)
            config = (work / ".config").read_text().splitlines()
            missing = [o for o in REQUIRED["common"] + REQUIRED[arch] if o not in config]
            log(arch, "configured: " + ("all required options present" if not missing else "options missing"))
            if missing:
                raise BuildError(f"the kernel configuration lacks {', '.join(missing)} (see {work}/.config)")
            misc = (src / "include/linux/miscdevice.h").read_text()
            m = re.search(r"#define\s+SUN_OPENPROM_MINOR\s+(\d+)", misc)
            if not m or int(m.group(1)) != OPENPROM_MINOR:
                raise BuildError(f"include/linux/miscdevice.h: SUN_OPENPROM_MINOR is not {OPENPROM_MINOR} "
                                 f"({m.group(1) if m else 'missing'}): fix OPENPROM_MINOR")
            log(arch, f"compiling the kernel (make -j{JOBS} {target}; about 5 minutes; log {logfile})")
            run_logged(make + [f"-j{JOBS}", target], logfile, arch, heartbeat=60)
            run_logged(make + ["headers_install", f"INSTALL_HDR_PATH={work}/uapi"], logfile, arch)
            out = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".out-{arch}-"))
            try:
                shutil.copy2(work / built, out / "kernel")
                shutil.copy2(work / ".config", out / "config")
                release = work / "include" / "config" / "kernel.release"
                if release.is_file():
                    shutil.copy2(release, out / "version")
                shutil.copytree(work / "uapi" / "include", out / "include")
                shutil.rmtree(dest, ignore_errors=True)
                out.rename(dest)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            log(arch, f"kernel built in {time.monotonic() - started:.0f} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest


def compile_init(arch: str, kernel: Path, out: Path) -> None:
    """The static, libc-free /init (the SS-5's CPU is a V8: no libc assumed)."""
    flags = ARCHES[arch][3]
    program = PROGRAM
    cmd = [CROSS + "gcc", *flags, *CFLAGS, "-I", str(INCLUDE), "-I", str(kernel / "include"),
           "-o", str(out), str(program)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise BuildError(f"compiling {program.name} failed:\n{proc.stderr}")
    subprocess.run([CROSS + "strip", str(out)], check=True)


def cpio_newc(entries: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """An uncompressed newc archive: (name, mode, data, rdev major, rdev minor).

    Written here so no root (mknod) is needed for device nodes; mtimes are
    0, so the archive is reproducible.
    """
    buf = io.BytesIO()

    def pad(n: int) -> None:
        buf.write(b"\0" * ((4 - n % 4) % 4))

    for ino, (name, mode, data, major, minor) in enumerate(entries + [("TRAILER!!!", 0, b"", 0, 0)], 1):
        raw = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(raw), 0]
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        buf.write(header + raw)
        pad(len(header) + len(raw))
        buf.write(data)
        pad(len(data))
    return buf.getvalue()


def initramfs(init: bytes) -> bytes:
    S_IFDIR, S_IFREG, S_IFCHR = 0o040000, 0o100000, 0o020000
    return cpio_newc([
        ("dev", S_IFDIR | 0o755, b"", 0, 0),
        ("dev/console", S_IFCHR | 0o600, b"", 5, 1),
        ("dev/openprom", S_IFCHR | 0o644, b"", 10, OPENPROM_MINOR),
        ("init", S_IFREG | 0o755, init, 0, 0),
    ])


def build(arch: str, outdir: str) -> None:
    """Kernel (cached) + initramfs into OUTDIR.tmp, renamed to OUTDIR at the end,
    so a failed build leaves no half image behind."""
    final = Path(outdir)
    out = final.with_name(final.name + ".tmp")
    started = time.monotonic()
    kernel = build_kernel(arch)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        log(arch, f"compiling /init ({PROGRAM.relative_to(ROOT.parent)}) and writing the initramfs")
        compile_init(arch, kernel, out / "init")
        shutil.copy2(kernel / "kernel", out / "vmlinux")
        (out / "initramfs.cpio").write_bytes(initramfs((out / "init").read_bytes()))
        (out / "init").unlink()
        manifest = {
            "guest": f"linux-{arch}",
            "machine": ARCHES[arch][4],
            "qemu": QEMU[arch],
            "kernel": "vmlinux",
            "kernel_format": "elf" if arch == "sparc64" else "zImage",
            "initrd": "initramfs.cpio",
            "initrd_format": "cpio-newc",
            "append": "console=ttyS0",
            "kernel_key": kernel.name,
            "linux": (kernel / "version").read_text().strip() if (kernel / "version").is_file() else "",
            "init": f"src/{PROGRAM.name}",
            "halt": HALT[arch],
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        out.rename(final)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    log(arch, f"image ready in {time.monotonic() - started:.1f} s")


def main(arch: str) -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} OUTDIR", file=sys.stderr)
        return 2
    def stop(signum, frame):
        raise BuildError(f"stopped by signal {signum}")

    # So that a killed build (SIGTERM, SIGHUP) still removes its temporary
    # directories (the finally clauses run).
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        build(arch, sys.argv[1])
    except BuildError as e:
        log(arch, f"error: {e}")
        return 1
    return 0
