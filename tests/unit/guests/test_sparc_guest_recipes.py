"""The pure-Python parts of the SPARC guest recipes (guest-images/sparc-common/sparcbuild.py).

No cross compiler, kernel source or QEMU needed: the cpio writer, the kernel
cache key and the image key.
"""

from __future__ import annotations

import importlib.util
import shutil
import stat
from pathlib import Path

import pytest

from vhw.guests.images import get_guest, recipe_key

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "guest-images"


def _load():
    spec = importlib.util.spec_from_file_location("sparcbuild", IMAGES / "sparc-common" / "sparcbuild.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sb = _load()


def parse_newc(data: bytes) -> list[dict]:
    """A reader for what cpio_newc writes (the format the kernel unpacks)."""
    out, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad magic at {pos}"
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, nlink, mtime, size, dmaj, dmin, rmaj, rmin, namesize, check = f
        name = data[pos + 110:pos + 110 + namesize]
        assert name.endswith(b"\0")
        pos += 110 + namesize
        pos += (-pos) % 4
        body = data[pos:pos + size]
        pos += size
        pos += (-pos) % 4
        name = name[:-1].decode()
        if name == "TRAILER!!!":
            assert pos == len(data)
            return out
        out.append(dict(name=name, mode=mode, uid=uid, gid=gid, nlink=nlink, mtime=mtime, data=body,
                        rdev=(rmaj, rmin), check=check))


def test_cpio_newc_round_trip():
    entries = [("dir", stat.S_IFDIR | 0o755, b"", 0, 0),
               ("dir/odd-name", stat.S_IFREG | 0o644, b"abc", 0, 0),      # name and data need padding
               ("dir/aligned", stat.S_IFREG | 0o600, b"1234", 0, 0),
               ("dir/chr", stat.S_IFCHR | 0o600, b"", 10, 139)]
    got = parse_newc(sb.cpio_newc(entries))
    assert [(e["name"], e["mode"], e["data"], *e["rdev"]) for e in got] == entries
    assert all(e["mtime"] == 0 and e["uid"] == 0 and e["gid"] == 0 and e["check"] == 0 for e in got)
    assert len({e["mode"] for e in got}) == 4


def test_cpio_is_reproducible():
    entries = [("init", stat.S_IFREG | 0o755, b"\x7fELF...", 0, 0)]
    assert sb.cpio_newc(entries) == sb.cpio_newc(list(entries))


def test_initramfs_layout():
    init = bytes(range(256)) * 3 + b"x"
    files = {e["name"]: e for e in parse_newc(sb.initramfs(init))}
    assert set(files) == {"dev", "dev/console", "dev/openprom", "init"}
    assert stat.S_ISDIR(files["dev"]["mode"])
    assert stat.S_ISCHR(files["dev/console"]["mode"]) and files["dev/console"]["rdev"] == (5, 1)
    # misc major 10, SUN_OPENPROM_MINOR (include/linux/miscdevice.h)
    assert stat.S_ISCHR(files["dev/openprom"]["mode"]) and files["dev/openprom"]["rdev"] == (10, 139)
    assert files["init"]["data"] == init and files["init"]["mode"] & 0o111


def _tree(tmp_path: Path) -> Path:
    """A copy of what the SPARC recipes read from guest-images/."""
    root = tmp_path / "src"
    for d in ("sparc-common", "linux-sparc64", "linux-sparc32", "src", "include"):
        shutil.copytree(IMAGES / d, root / "guest-images" / d, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_fragments_are_the_common_one_and_the_guests():
    for arch in ("sparc64", "sparc32"):
        frags = sb.fragments(arch)
        assert [f.name for f in frags] == ["common.config", "kernel.config"]
        assert all(f.is_file() for f in frags)
    assert "CONFIG_SUN_OPENPROMIO=y" in (IMAGES / "sparc-common" / "common.config").read_text()
    assert "CONFIG_SERIAL_SUNSU_CONSOLE=y" in (IMAGES / "linux-sparc64" / "kernel.config").read_text()
    assert "CONFIG_SERIAL_SUNZILOG_CONSOLE=y" in (IMAGES / "linux-sparc32" / "kernel.config").read_text()


def test_kernel_key_follows_fragments_source_and_compiler(tmp_path):
    root = _tree(tmp_path) / "guest-images"
    key = sb.kernel_key("sparc64", "6.1.192-2", "12.2.0", root)
    assert key == sb.kernel_key("sparc64", "6.1.192-2", "12.2.0", root)
    assert key != sb.kernel_key("sparc32", "6.1.192-2", "12.2.0", root)
    assert key != sb.kernel_key("sparc64", "6.1.193-1", "12.2.0", root)
    assert key != sb.kernel_key("sparc64", "6.1.192-2", "12.3.0", root)
    # the conformance program and its runtime are not in the kernel
    (root / "src" / "openprom_conform.c").write_text("/* changed */\n")
    (root / "include" / "sparc_rt.h").write_text("/* changed */\n")
    (root / "sparc-common" / "README.md").write_text("changed\n")
    assert sb.kernel_key("sparc64", "6.1.192-2", "12.2.0", root) == key
    # a fragment is
    with open(root / "linux-sparc64" / "kernel.config", "a") as f:
        f.write("CONFIG_MAGIC_SYSRQ=y\n")
    key2 = sb.kernel_key("sparc64", "6.1.192-2", "12.2.0", root)
    assert key2 != key
    sparc32 = sb.kernel_key("sparc32", "6.1.192-2", "12.2.0", root)
    with open(root / "sparc-common" / "common.config", "a") as f:
        f.write("CONFIG_PRINTK_TIME=y\n")
    assert sb.kernel_key("sparc64", "6.1.192-2", "12.2.0", root) != key2
    assert sb.kernel_key("sparc32", "6.1.192-2", "12.2.0", root) != sparc32


@pytest.mark.parametrize("name", ["linux-sparc64", "linux-sparc32"])
def test_image_key_follows_the_program(tmp_path, name):
    """The image (kernel copy + initramfs) is rebuilt when /init's source changes."""
    root = _tree(tmp_path)
    guest = get_guest(name)
    key = recipe_key(guest, root)
    (root / "guest-images" / "src" / "openprom_conform.c").write_text("/* changed */\n")
    key2 = recipe_key(guest, root)
    assert key2 != key
    (root / "guest-images" / "include" / "sparc_rt.h").write_text("/* changed */\n")
    key3 = recipe_key(guest, root)
    assert key3 != key2
    (root / "guest-images" / "sparc-common" / "common.config").write_text("# changed\n")
    assert recipe_key(guest, root) != key3


def test_a_pinned_kernel_gets_an_image_of_its_own(monkeypatch):
    """VHW_KERNEL_PACKAGE changes what linux-x86 builds, so it is part of the key:
    a pinned kernel never reuses an image of Debian's newest, and back again."""
    guest = get_guest("linux-x86")
    monkeypatch.delenv("VHW_KERNEL_PACKAGE", raising=False)
    newest = recipe_key(guest)
    monkeypatch.setenv("VHW_KERNEL_PACKAGE", "linux-image-6.1.0-56-amd64")
    pinned = recipe_key(guest)
    assert pinned != newest
    monkeypatch.setenv("VHW_KERNEL_PACKAGE", "")
    assert recipe_key(guest) == newest


def test_image_names_the_kernel_it_was_built_with(tmp_path):
    """The manifest records the kernel; vhw guest list, the test header and results files show it."""
    from vhw.guests.images import GuestImage

    x86 = GuestImage(get_guest("linux-x86"), tmp_path, {"kernel": {"package": "linux-image-6.1.0-57-amd64",
                                                                     "version": "6.1.192-3"}})
    assert x86.kernel_version == "linux-image-6.1.0-57-amd64 6.1.192-3"
    sparc = GuestImage(get_guest("linux-sparc64"), tmp_path, {"kernel": "vmlinux", "linux": "6.1.192"})
    assert sparc.kernel_version == "Linux 6.1.192 (Debian linux-source)"


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.delenv("VHW_CACHE_DIR", raising=False)
    monkeypatch.setenv("VHW_DEB_CACHE", str(tmp_path / "c" / "debs"))
    assert sb.cache_root() == tmp_path / "c"
    monkeypatch.setenv("VHW_CACHE_DIR", str(tmp_path / "d"))
    assert sb.cache_root() == tmp_path / "d"
    monkeypatch.delenv("VHW_CACHE_DIR")
    monkeypatch.delenv("VHW_DEB_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sb.cache_root() == tmp_path / "home" / ".cache" / "vhw"


def test_required_options_cover_the_brief():
    req = sb.REQUIRED
    assert "CONFIG_SUN_OPENPROMIO=y" in req["common"]
    assert "CONFIG_SERIAL_SUNSU_CONSOLE=y" in req["sparc64"]
    assert "CONFIG_SERIAL_SUNZILOG_CONSOLE=y" in req["sparc32"]
    assert "# CONFIG_SMP is not set" in req["common"] and "# CONFIG_MODULES is not set" in req["common"]


def test_image_files_from_manifest(tmp_path):
    """The SPARC manifests name kernel and initrd; linux-x86's "kernel" is a dict."""
    from vhw.guests.images import GuestImage

    sparc = GuestImage(get_guest("linux-sparc32"), tmp_path, {"kernel": "vmlinux", "initrd": "initramfs.cpio"})
    assert (sparc.kernel.name, sparc.initrd.name) == ("vmlinux", "initramfs.cpio")
    x86 = GuestImage(get_guest("linux-x86"), tmp_path, {"kernel": {"package": "linux-image-6.1.0-56-amd64"}})
    assert (x86.kernel.name, x86.initrd.name) == ("vmlinux", "initramfs.cpio.lz4")
