"""Guest images: which guests exist, where they are cached, how they are built.

A guest image is built by its recipe (``guest-images/<name>/build OUTDIR``)
into a cache directory keyed by a hash of the recipe's content, so an image is
built once, reused by every run and every test worker, and rebuilt when the
recipe (or any in-guest source under ``guest-images/src``) changes.  Builds
take a file lock so parallel test workers never build the same image twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageError

#: Images kept per guest after a successful build (older keys are pruned).
KEEP_IMAGES = 2


@dataclass(frozen=True)
class Guest:
    """A guest recipe and how QEMU boots what it builds."""

    name: str
    summary: str
    arch: str
    qemu: str
    #: False for recipes that need the internet (skipped offline).
    offline: bool = True
    #: Directories under guest-images/ the recipe reads besides its own.
    uses: tuple[str, ...] = ("src", "include", "kmod")
    #: Environment variables that change what the recipe builds (part of the cache key when set).
    env: tuple[str, ...] = ()


GUESTS: dict[str, Guest] = {
    g.name: g
    for g in (
        Guest(
            "linux-x86",
            "Debian 12 kernel + busybox initramfs with ipmitool, ipmicmd and the vhw agent (offline)",
            "x86_64",
            "qemu-system-x86_64",
            env=("VHW_KERNEL_PACKAGE",),
        ),
        Guest(
            "linux-sparc64",
            "Linux 6.1 for QEMU sun4u, cross-built from Debian's linux-source; /init = openprom_conform (offline)",
            "sparc64",
            "qemu-system-sparc64",
            uses=("sparc-common", "src", "include"),
        ),
        Guest(
            "linux-sparc32",
            "Linux 6.1 for QEMU SS-5 (sun4m), cross-built from Debian's linux-source; /init = openprom_conform "
            "(offline)",
            "sparc",
            "qemu-system-sparc",
            uses=("sparc-common", "src", "include"),
        ),
    )
}


@dataclass(frozen=True)
class GuestImage:
    """A built image: the files a launcher boots."""

    guest: Guest
    path: Path
    manifest: dict

    @property
    def kernel(self) -> Path:
        return self.path / self._file("kernel", "vmlinux")

    @property
    def initrd(self) -> Path:
        return self.path / self._file("initrd", "initramfs.cpio.lz4")

    @property
    def qemu(self) -> str:
        return self.guest.qemu

    @property
    def kernel_version(self) -> str:
        """Which kernel the image was built with, as its manifest records it."""
        kernel = self.manifest.get("kernel")
        if isinstance(kernel, dict):  # linux-x86: the Debian package it unpacked
            return f"{kernel.get('package', '?')} {kernel.get('version', '?')}"
        linux = self.manifest.get("linux")
        return f"Linux {linux} (Debian linux-source)" if linux else "unknown"

    def _file(self, key: str, default: str) -> str:
        # The SPARC manifests name their files; linux-x86's "kernel" is a dict
        # describing the kernel package, not a file name.
        name = self.manifest.get(key)
        return name if isinstance(name, str) else default


def source_root() -> Path:
    """The directory holding guest-images/ (the source checkout)."""
    env = os.environ.get("VHW_SOURCE_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[2]
    if not (root / "guest-images").is_dir():
        raise ImageError(
            f"guest recipes not found under {root}/guest-images; "
            "run vhw from a source checkout or set VHW_SOURCE_DIR"
        )
    return root


def cache_dir() -> Path:
    """Where images and downloads are kept: $VHW_CACHE_DIR, else ~/.cache/vhw."""
    env = os.environ.get("VHW_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vhw"


def get_guest(name: str) -> Guest:
    try:
        return GUESTS[name]
    except KeyError:
        known = ", ".join(sorted(GUESTS))
        raise ImageError(f"unknown guest {name!r}; known guests: {known}") from None


def recipe_key(guest: Guest, root: Path | None = None) -> str:
    """Hash of everything the recipe reads from the source tree."""
    root = root or source_root()
    h = hashlib.sha256()
    tops = [root / "guest-images" / d for d in (guest.name, *guest.uses)]
    for top in tops:
        if not top.is_dir():
            continue
        for p in sorted(top.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(root)).encode() + b"\0")
                h.update(p.read_bytes() + b"\0")
    for name in guest.env:
        if os.environ.get(name):
            h.update(f"{name}={os.environ[name]}\0".encode())
    return h.hexdigest()[:16]


def image_dir(guest: Guest) -> Path:
    return cache_dir() / "images" / f"{guest.name}-{recipe_key(guest)}"


def find_image(name: str) -> GuestImage | None:
    """The cached image of the current recipe, or None if not built."""
    guest = get_guest(name)
    path = image_dir(guest)
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return None
    return GuestImage(guest, path, json.loads(manifest.read_text()))


def ensure_image(name: str, *, progress=None) -> GuestImage:
    """The image of the current recipe, building it first if needed."""
    image = find_image(name)
    if image is not None:
        return image
    return build_image(name, progress=progress)


def build_image(name: str, *, progress=None, force: bool = False) -> GuestImage:
    """Build a guest image into the cache (once, under a lock)."""
    guest = get_guest(name)
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    root = source_root()
    recipe = root / "guest-images" / guest.name / "build"
    if not recipe.is_file():
        raise ImageError(f"guest {name}: recipe {recipe} is missing")
    out = image_dir(guest)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.parent / f".{guest.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if force and out.exists():
            shutil.rmtree(out)
        if not (out / "manifest.json").is_file():
            say(f"[vhw] building guest image {name} into {out}")
            started = time.monotonic()
            env = dict(os.environ)
            env.setdefault("VHW_DEB_CACHE", str(cache_dir() / "debs"))
            proc = subprocess.run([str(recipe), str(out)], env=env, cwd=recipe.parent)
            if proc.returncode != 0 or not (out / "manifest.json").is_file():
                raise ImageError(
                    f"building guest {name} failed (recipe exit status {proc.returncode}); "
                    "its messages are above"
                )
            say(f"[vhw] built {name} in {time.monotonic() - started:.1f} s")
            _prune(guest, keep=out)
    # The image just built (not a re-hash: the tree may have changed meanwhile).
    return GuestImage(guest, out, json.loads((out / "manifest.json").read_text()))


def _prune(guest: Guest, keep: Path) -> None:
    """Drop older images of a guest beyond KEEP_IMAGES (newest first)."""
    images = sorted(
        (p for p in keep.parent.glob(f"{guest.name}-*") if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in images[KEEP_IMAGES - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
