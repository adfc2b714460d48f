"""Guests vhw downloads instead of building: FreeBSD, illumos, NetBSD.

A remote recipe names an image the OS project publishes, the checksum file
next to it, and how to drive that OS over its serial console.  What the
machinery promises, whatever the image:

* **Pinned.**  An image is used only if its digest equals the recipe's pin
  (``guest-images/remote-pins.toml``, or ``VHW_PIN_<NAME>`` in the
  environment).  ``vhw guest pin NAME`` reads the publisher's checksum file
  and writes the pin for review; vhw never trusts a download it cannot pin.
* **Resumable.**  A broken download continues from where it stopped
  (HTTP ``Range``); a server that ignores the range, or answers 416, makes
  it start over.  A digest mismatch deletes the download and says so.
* **Cached.**  Downloads and unpacked images live under
  ``cache_dir()/remote``, keyed by digest, built once under a file lock so
  parallel runs never fetch twice.
* **Copy-on-write.**  Every run boots a fresh qcow2 overlay of the cached
  image; the cached image is never written.

Nothing here runs in CI with the real images (only the package registries
are reachable there); ``reachable`` lets callers skip with a clear message,
and the machinery is tested against a local HTTP server.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ImageError
from .images import cache_dir, source_root
from ..machine.serial import ConsoleLogin, ConsoleStep

#: Exit status of ``vhw guest test`` when the guest cannot be fetched (automake's SKIP).
EXIT_SKIPPED = 77
#: Bytes read per chunk while downloading and hashing.
CHUNK = 1 << 20
#: Download attempts (each resuming the last) before giving up.
ATTEMPTS = 4
PINS_FILE = "guest-images/remote-pins.toml"


@dataclass(frozen=True)
class Check:
    """One command run in the guest; passes when it exits 0."""

    name: str
    command: str


@dataclass(frozen=True)
class RemoteRecipe:
    name: str
    summary: str
    os: str
    qemu: str
    machine_type: str
    url: str
    checksum_url: str
    #: Digest algorithm of the checksum file and the pin: sha256 or sha512.
    algorithm: str = "sha256"
    #: How the image is packed: None, "xz", "gz" or "zst".
    compression: str | None = None
    #: The unpacked image's format for QEMU: raw or qcow2.
    disk_format: str = "raw"
    #: The disk is install media: attached as a CD-ROM and booted from it.
    cdrom: bool = False
    #: IPMI interfaces this OS's driver finds (guest-linux.md §14).
    interfaces: tuple[str, ...] = ()
    #: The device node of this OS's I2O pass-through driver (an IOP is offered only then).
    i2o: str | None = None
    memory: int = 2048
    cpu: str | None = None
    #: Attach a cloud-init NoCloud seed (volume id "cidata") setting the root password.
    cloud_init: bool = False
    #: Console steps before the login prompt (boot loader menus).
    boot_steps: tuple[ConsoleStep, ...] = ()
    #: Log in as this user at a login prompt; None: the image boots to a shell.
    user: str | None = "root"
    password: str | None = None
    shell_prompt: str = r"[#$%>] ?$"
    boot_timeout: float = 1800.0
    #: Commands run once logged in, before the checks (e.g. loading the driver).
    setup: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    #: Build guest-images/src/ipmi_raw.c in the guest (when it has a C compiler) and ask the BMC for its ID.
    build_ipmi_raw: bool = False
    notes: str = ""

    @property
    def filename(self) -> str:
        return urllib.parse.urlsplit(self.url).path.rsplit("/", 1)[-1]

    @property
    def console_login(self) -> ConsoleLogin:
        """How its console gets from power-on to a shell."""
        return ConsoleLogin(steps=self.boot_steps, user=self.user, password=self.password,
                            shell_prompt=self.shell_prompt, timeout=self.boot_timeout)

    @property
    def env_pin(self) -> str:
        return "VHW_PIN_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper()


#: The seed's root password for cloud images (the VM is reachable only through its serial console).
CLOUD_PASSWORD = "vhw"

_IPMI_CHECKS = (
    Check("driver-attached", "dmesg | grep -i ipmi"),
    Check("device-node", "ls -l /dev/ipmi0"),
)

REMOTE_GUESTS: dict[str, RemoteRecipe] = {
    r.name: r
    for r in (
        RemoteRecipe(
            "freebsd-14-amd64",
            "FreeBSD 14.3 amd64 BASIC-CI image; ipmi(4) on KCS (ACPI), BT and SSIF (SMBIOS) (needs the internet)",
            "freebsd", "qemu-system-x86_64", "q35",
            # The image and digest QEMU's own FreeBSD test VM uses (qemu.git tests/vm/freebsd).
            url="https://download.freebsd.org/releases/CI-IMAGES/14.3-RELEASE/amd64/Latest/"
                "FreeBSD-14.3-RELEASE-amd64-BASIC-CI.raw.xz",
            checksum_url="https://download.freebsd.org/releases/CI-IMAGES/14.3-RELEASE/amd64/Latest/CHECKSUM.SHA256",
            compression="xz", interfaces=("kcs", "bt", "ssif"),
            # As tests/vm/freebsd does: the loader menu's 3 (escape to the loader
            # prompt), the serial console, boot.  Root logs in without a password.
            boot_steps=(ConsoleStep(r"Autoboot", "3"),
                        ConsoleStep(r"OK ?$", "set console=comconsole\r"),
                        ConsoleStep(r"OK ?$", "boot\r")),
            setup=("kldload ipmi 2>/dev/null; kldload ichsmb 2>/dev/null; kldload smbus 2>/dev/null; true",),
            checks=(Check("driver-loaded", "kldstat -q -m ipmi"), *_IPMI_CHECKS),
            build_ipmi_raw=True,
        ),
        RemoteRecipe(
            "omnios",
            "OmniOS r151056 (illumos) cloud image; ipmi driver on KCS found through SMBIOS (needs the internet)",
            "illumos", "qemu-system-x86_64", "pc",
            url="https://downloads.omnios.org/media/stable/omnios-r151056.cloud.qcow2",
            checksum_url="https://downloads.omnios.org/media/stable/omnios-r151056.cloud.qcow2.sha256",
            disk_format="qcow2", interfaces=("kcs",), cpu="max", cloud_init=True, password=CLOUD_PASSWORD,
            checks=(Check("driver-loaded", "modinfo | grep -w ipmi"), *_IPMI_CHECKS),
            build_ipmi_raw=True,
            notes="illumos' ipmi driver knows KCS only, found through SMBIOS; no watchdog, no events.",
        ),
        RemoteRecipe(
            "openindiana",
            "OpenIndiana Hipster 2025.10 (illumos) cloud image; ipmi driver on KCS (needs the internet)",
            "illumos", "qemu-system-x86_64", "pc",
            url="https://dlc.openindiana.org/isos/hipster/20251026/OI-hipster-cloudimage.img.zst",
            checksum_url="https://dlc.openindiana.org/isos/hipster/20251026/OI-hipster-cloudimage.img.zst.sha256sum",
            compression="zst", interfaces=("kcs",), cpu="max", cloud_init=True, password=CLOUD_PASSWORD,
            checks=(Check("driver-loaded", "modinfo | grep -w ipmi"), *_IPMI_CHECKS),
            build_ipmi_raw=True,
        ),
        RemoteRecipe(
            "netbsd-10-amd64",
            "NetBSD 10.1 amd64 live image; ipmi(4) on KCS and BT (ACPI) (needs the internet)",
            "netbsd", "qemu-system-x86_64", "pc",
            url="https://cdn.netbsd.org/pub/NetBSD/images/10.1/NetBSD-10.1-amd64-live.img.gz",
            checksum_url="https://cdn.netbsd.org/pub/NetBSD/images/10.1/SHA512",
            algorithm="sha512", compression="gz", interfaces=("kcs", "bt"),
            # GENERIC attaches iop(4) to PCI I2O IOPs (sys/arch/amd64/conf/GENERIC), with IOPIOCPT on /dev/iop0.
            i2o="/dev/iop0",
            # The loader talks to serial but the kernel console defaults to VGA:
            # SPACE stops the countdown, 3 gives the boot prompt, consdev com0 (guest-linux.md §14).
            boot_steps=(ConsoleStep(r"[Cc]hoose an option|seconds", " "),
                        ConsoleStep(r"Option: ?\[\d\]:", "3\r"),
                        ConsoleStep(r"> ?$", "consdev com0\r"),
                        ConsoleStep(r"> ?$", "boot\r")),
            checks=_IPMI_CHECKS,
            build_ipmi_raw=True,
        ),
        RemoteRecipe(
            "netbsd-10-sparc64",
            "NetBSD 10.1 sparc64 install CD on sun4u; openprom(4) over vhw's EEPROM, no IPMI (needs the internet)",
            "netbsd", "qemu-system-sparc64", "sun4u",
            url="https://cdn.netbsd.org/pub/NetBSD/NetBSD-10.1/images/NetBSD-10.1-sparc64.iso",
            checksum_url="https://cdn.netbsd.org/pub/NetBSD/NetBSD-10.1/images/SHA512",
            algorithm="sha512", cdrom=True, memory=1024, user=None,
            # sysinst: accept the terminal type, English, then leave the installer for its shell.
            boot_steps=(ConsoleStep(r"[Tt]erminal type.*:", "\r"),
                        ConsoleStep(r"a: Installation messages in English", "a\r"),
                        ConsoleStep(r"x: Exit Install System", "x\r")),
            checks=(Check("openprom-node", "ls -l /dev/openprom"),
                    Check("prom-tree", "dmesg | grep -i -e mainbus -e 'cpu0 at'")),
            # No IOP either: Debian's qemu-system-sparc64 7.2 has no x-pci-proxy-dev
            # (`qemu-system-sparc64 -device help`), the device vhw serves it through.
            notes="sun4u has no IPMI device, and Debian's qemu-system-sparc64 has no x-pci-proxy-dev for the IOP.",
        ),
    )
}


# -- pins and checksum files ------------------------------------------------------
@dataclass(frozen=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str, where: str) -> Digest:
        m = re.fullmatch(r"(sha256|sha512):([0-9a-fA-F]+)", text.strip())
        if not m or len(m.group(2)) != {"sha256": 64, "sha512": 128}[m.group(1)]:
            raise ImageError(f"{where}: {text!r} is not a pin; write sha256:<64 hex digits> or sha512:<128 hex digits>")
        return cls(m.group(1), m.group(2).lower())


def get_remote(name: str) -> RemoteRecipe:
    try:
        return REMOTE_GUESTS[name]
    except KeyError:
        from .images import GUESTS

        known = ", ".join(sorted([*GUESTS, *REMOTE_GUESTS]))
        raise ImageError(f"unknown guest {name!r}; known guests: {known}") from None


def pins_path() -> Path:
    return source_root() / PINS_FILE


def read_pins(path: Path | None = None) -> dict[str, str]:
    path = path or pins_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ImageError(f"{path}: {e}") from None
    return {str(k): str(v) for k, v in data.items() if v}


def pin_for(recipe: RemoteRecipe, pins: dict[str, str] | None = None) -> Digest:
    """The digest a download must have: $VHW_PIN_<NAME>, else the pins file."""
    env = os.environ.get(recipe.env_pin)
    if env:
        return Digest.parse(env, recipe.env_pin)
    pins = read_pins() if pins is None else pins
    if recipe.name in pins:
        return Digest.parse(pins[recipe.name], f"{PINS_FILE} [{recipe.name}]")
    raise ImageError(
        f"{recipe.name}: no pinned digest for {recipe.filename}. vhw only boots images it can verify. "
        f"Run `vhw guest pin {recipe.name}` to pin the digest published in {recipe.checksum_url} "
        f"(then review and commit {PINS_FILE}), or set {recipe.env_pin}={recipe.algorithm}:<hex>."
    )


def parse_checksums(text: str, filename: str, algorithm: str) -> Digest:
    """``filename``'s digest in a checksum file.

    Understands BSD lines (``SHA256 (file) = hex``, FreeBSD and NetBSD),
    coreutils lines (``hex  file`` / ``hex *file``) and a bare digest
    (OmniOS' ``<file>.sha256``).
    """
    size = {"sha256": 64, "sha512": 128}[algorithm]
    hexes = rf"([0-9a-fA-F]{{{size}}})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        m = re.fullmatch(rf"{algorithm.upper()} \((.+)\) = {hexes}", line, re.I)
        if m and m.group(1) == filename:
            return Digest(algorithm, m.group(2).lower())
        m = re.fullmatch(rf"{hexes}\s+\*?(.+)", line)
        if m and m.group(2).rsplit("/", 1)[-1] == filename:
            return Digest(algorithm, m.group(1).lower())
    if len(lines) == 1 and re.fullmatch(hexes, lines[0]):
        return Digest(algorithm, lines[0].lower())
    raise ImageError(f"no {algorithm} digest for {filename} in the checksum file")


def write_pin(name: str, digest: Digest, path: Path | None = None) -> Path:
    """Set ``name = "algo:hex"`` in the pins file, keeping its other lines."""
    path = path or pins_path()
    lines = path.read_text().splitlines() if path.is_file() else []
    entry = f'{name} = "{digest}"'
    for i, line in enumerate(lines):
        if re.match(rf"\s*\"?{re.escape(name)}\"?\s*=", line):
            lines[i] = entry
            break
    else:
        lines.append(entry)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def fetch_pin(recipe: RemoteRecipe, *, timeout: float = 30.0) -> Digest:
    """The digest the publisher lists for the recipe's image (for `vhw guest pin`)."""
    url = mirrored(recipe.checksum_url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as rsp:
            text = rsp.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        raise ImageError(f"{recipe.name}: cannot read {url}: {_reason(e)}") from None
    return parse_checksums(text, recipe.filename, recipe.algorithm)


# -- the network ------------------------------------------------------------------
def mirrored(url: str) -> str:
    """``url`` with its scheme and host replaced by $VHW_MIRROR, if set (a local mirror or proxy)."""
    mirror = os.environ.get("VHW_MIRROR")
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return mirror.rstrip("/") + "/" + parts.netloc + parts.path


def reachable(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """(True, "") when the server of ``url`` answers HTTP at all, else (False, why)."""
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return True, ""
    except urllib.error.HTTPError:
        return True, ""  # it answered; the download reports what is wrong
    except (urllib.error.URLError, OSError) as e:
        return False, _reason(e)


def offline_message(recipe: RemoteRecipe, why: str) -> str:
    host = urllib.parse.urlsplit(mirrored(recipe.url)).netloc
    return (f"skipped {recipe.name}: {host} is unreachable ({why}). This guest is downloaded from its "
            f"publisher and needs the internet; give an image you have with --image PATH, or set VHW_MIRROR. "
            f"The download, verification and overlay machinery is tested offline (tests/unit/guests/test_remote.py).")


def _reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    return str(reason if reason is not None else e) or type(e).__name__


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class _Progress:
    say: Callable[[str], None]
    name: str
    total: int | None = None
    last: float = field(default_factory=time.monotonic)

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 5.0:
            return
        self.last = now
        if self.total:
            self.say(f"[vhw] {self.name}: {done / 1e6:.1f} of {self.total / 1e6:.1f} MB "
                     f"({100 * done / self.total:.0f}%)")
        else:
            self.say(f"[vhw] {self.name}: {done / 1e6:.1f} MB")


def download(url: str, dest: Path, digest: Digest, *, progress=None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is there; returns ``dest``.

    The bytes go to ``dest.part`` first; a later call (or the next attempt)
    resumes it with a Range request.  ``dest`` appears only once its digest
    equals ``digest``; on a mismatch the partial file is deleted.
    """
    say = progress or _say
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if _verified(dest, digest):
            return dest
        part = dest.with_name(dest.name + ".part")
        meter = _Progress(say, dest.name)
        error = ""
        for attempt in range(ATTEMPTS):
            try:
                _fetch_into(url, part, meter, timeout)
                break
            except _Restart:
                part.unlink(missing_ok=True)
                error = "the server refused to resume"
            except urllib.error.HTTPError as e:
                if 400 <= e.code < 500:  # not there, or not for us: retrying will not help
                    raise ImageError(f"downloading {url} failed: HTTP {e.code} {e.reason}") from None
                error = f"HTTP {e.code} {e.reason}"
            except (urllib.error.URLError, OSError, _ShortRead) as e:
                error = _reason(e)
                say(f"[vhw] {dest.name}: download interrupted at "
                    f"{part.stat().st_size if part.exists() else 0} bytes ({error}); resuming")
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
        else:
            raise ImageError(f"downloading {url} failed after {ATTEMPTS} attempts ({error}); "
                             f"run again to resume from {part}")
        got = file_digest(part, digest.algorithm)
        if got != digest.hex:
            part.unlink(missing_ok=True)
            raise ImageError(
                f"{url}: {digest.algorithm} mismatch: the pin is {digest.hex}, the download is {got}. "
                "The download was deleted; if the publisher replaced the image, re-pin it with `vhw guest pin`.")
        part.replace(dest)
        dest.with_name(dest.name + ".verified").write_text(f"{digest} {dest.stat().st_size}\n")
        return dest


class _Restart(Exception):
    """The server cannot continue the partial download: start over."""


class _ShortRead(OSError):
    pass


def _fetch_into(url: str, part: Path, meter: _Progress, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        rsp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            raise _Restart() from None  # the range is past the end: the file changed
        raise
    with rsp:
        if have and rsp.status != 206:
            have = 0  # the server ignored the range and sends everything
        length = rsp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        meter.total = have + expected if expected is not None else None
        got = 0
        with open(part, "ab" if have else "wb") as out:
            while chunk := rsp.read(CHUNK):
                out.write(chunk)
                got += len(chunk)
                meter.update(have + got)
        if expected is not None and got < expected:
            raise _ShortRead(f"the connection closed after {have + got} of {have + expected} bytes")
    meter.update(have + got, force=True)


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verified(path: Path, digest: Digest) -> bool:
    stamp = path.with_name(path.name + ".verified")
    if not path.is_file() or not stamp.is_file():
        return False
    return stamp.read_text().split() == [str(digest), str(path.stat().st_size)]


class _locked:
    """An exclusive flock on ``<path>.lock`` for the duration of a with block."""

    def __init__(self, path: Path):
        self.path = path.with_name(path.name + ".lock")

    def __enter__(self):
        self.file = open(self.path, "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


# -- unpacking and overlays -----------------------------------------------------------
def unpack(src: Path, dest: Path, compression: str | None) -> Path:
    """``src`` decompressed to ``dest`` (once; written aside, then renamed)."""
    with _locked(dest):
        if dest.is_file():
            return dest
        tmp = dest.with_name(dest.name + ".tmp")
        if compression is None:
            shutil.copyfile(src, tmp)
        elif compression in ("xz", "gz"):
            opener = lzma.open if compression == "xz" else gzip.open
            try:
                with opener(src, "rb") as fin, open(tmp, "wb") as fout:
                    shutil.copyfileobj(fin, fout, CHUNK)
            except (lzma.LZMAError, gzip.BadGzipFile, EOFError) as e:
                tmp.unlink(missing_ok=True)
                raise ImageError(f"cannot unpack {src}: {e}") from None
        elif compression == "zst":
            zstd = shutil.which("zstd")
            if zstd is None:
                raise ImageError(f"unpacking {src.name} needs zstd: apt-get install zstd")
            proc = subprocess.run([zstd, "-q", "-d", "-f", "-o", str(tmp), str(src)], capture_output=True, text=True)
            if proc.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise ImageError(f"cannot unpack {src}: {proc.stderr.strip()}")
        else:
            raise ImageError(f"unknown compression {compression!r}")
        tmp.replace(dest)
        return dest


def make_overlay(base: Path, overlay: Path, base_format: str) -> Path:
    """A qcow2 overlay backed by ``base``: the run writes there, never to ``base``."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise ImageError("qemu-img not found (Debian package qemu-utils; `make deps` installs it)")
    proc = subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", "-b", str(base.resolve()), "-F", base_format,
                           str(overlay)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"qemu-img could not create an overlay of {base}: {proc.stderr.strip()}")
    return overlay


def image_format(path: Path) -> str:
    """qcow2 if the file says so (its magic), else raw."""
    with open(path, "rb") as f:
        return "qcow2" if f.read(4) == b"QFI\xfb" else "raw"


def remote_dir(recipe: RemoteRecipe) -> Path:
    return cache_dir() / "remote" / recipe.name


def download_path(recipe: RemoteRecipe) -> Path:
    """Where the recipe's image is downloaded to (as published, still packed)."""
    return remote_dir(recipe) / "downloads" / recipe.filename


def is_downloaded(recipe: RemoteRecipe, digest: Digest | None = None) -> bool:
    """Whether a verified copy of the pinned image (``digest``, else the pin) is in the cache.

    False for an unpinned recipe: nothing can be verified against no pin."""
    if digest is None:
        try:
            digest = pin_for(recipe)
        except ImageError:
            return False
    return _verified(download_path(recipe), digest)


def fetch(recipe: RemoteRecipe, *, progress=None) -> Path:
    """The recipe's unpacked, verified image in the cache (downloaded first if needed)."""
    say = progress or _say
    digest = pin_for(recipe)
    top = remote_dir(recipe)
    packed = download_path(recipe)
    if not is_downloaded(recipe, digest):
        say(f"[vhw] {recipe.name}: downloading {mirrored(recipe.url)}")
    download(mirrored(recipe.url), packed, digest, progress=say)
    suffix = "." + recipe.compression if recipe.compression else ""
    name = recipe.filename.removesuffix(suffix) if suffix else recipe.filename
    unpacked = top / digest.hex[:16] / name
    unpacked.parent.mkdir(parents=True, exist_ok=True)
    if not unpacked.is_file() and recipe.compression:
        say(f"[vhw] {recipe.name}: unpacking {packed.name}")
    return unpack(packed, unpacked, recipe.compression)


def cloud_init_seed(path: Path, hostname: str, password: str) -> Path:
    """A NoCloud seed ISO (volume id cidata) that sets root's password."""
    tool = shutil.which("genisoimage") or shutil.which("mkisofs") or shutil.which("xorrisofs")
    if tool is None:
        raise ImageError("building the cloud-init seed needs genisoimage (apt-get install genisoimage)")
    src = path.with_name(path.stem + "-src")
    src.mkdir(parents=True, exist_ok=True)
    (src / "meta-data").write_text(f"instance-id: vhw-{hostname}\nlocal-hostname: {hostname}\n")
    (src / "user-data").write_text(
        "#cloud-config\n"
        "disable_root: false\n"
        "ssh_pwauth: true\n"
        "chpasswd:\n"
        "  expire: false\n"
        "  list: |\n"
        f"    root:{password}\n")
    proc = subprocess.run([tool, "-quiet", "-output", str(path), "-volid", "cidata", "-joliet", "-rock",
                           str(src / "user-data"), str(src / "meta-data")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"{tool} failed: {proc.stderr.strip()}")
    return path


# -- what a machine boots ---------------------------------------------------------------
@dataclass(frozen=True)
class DiskImage:
    """A downloaded guest's disk, ready to boot: the verified cache copy, or a developer's own build.

    Machines never write it: each run boots a qcow2 overlay (make_overlay),
    except install media, which QEMU opens read-only."""

    recipe: RemoteRecipe
    path: Path
    #: True for an image given with --image rather than downloaded.
    own: bool = False

    @property
    def qemu(self) -> str:
        return self.recipe.qemu

    @property
    def format(self) -> str:
        return image_format(self.path)

    @property
    def kernel_version(self) -> str:
        return f"{self.path} (your image)" if self.own else self.recipe.filename


def boot_image(name: str, image: str | Path | None = None, *, progress=None):
    """What a machine of guest ``name`` boots: a built image (vhw.guests.images, built on first use)
    or a downloaded guest's DiskImage (``image``, else the verified download, fetched if need be)."""
    from .images import GUESTS, ensure_image

    if name in GUESTS:
        if image is not None:
            raise ImageError(f"{name} is built by vhw; --image is for the downloaded guests "
                             f"({', '.join(sorted(REMOTE_GUESTS))})")
        return ensure_image(name, progress=progress)
    recipe = get_remote(name)
    if image is not None:
        path = Path(image)
        if not path.is_file():
            raise ImageError(f"{name}: image {path} not found")
        return DiskImage(recipe, path.resolve(), own=True)
    return DiskImage(recipe, fetch(recipe, progress=progress))
