"""Disk images behind the BSA model: ImageFile as its storage port, the
images of one IOP opened and closed outside the model, and write-through
and write-back data reaching the file as the guest was told."""

from __future__ import annotations

import os
import struct

import pytest

from i2o.helpers import DATA, DISK_SIZE, TID, FakeGuestMemory, linux_bringup, message, rw, simple_sgl
from vhw.i2o import frames as f
from vhw.i2o.bsa import BsaStatus
from vhw.i2o.device import IopPciDevice, disk_configs
from vhw.i2o.image_file import DiskConfig, DiskImages, ImageFile
from vhw.i2o.iop import Iop
from vhw.machine.description import parse_description


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def make_image(tmp_path, name="disk.img", size=DISK_SIZE):
    p = tmp_path / name
    p.write_bytes(bytes(size))
    return p


def test_image_file_reads_writes_and_pads_past_the_end(tmp_path):
    p = make_image(tmp_path, size=4096)
    with ImageFile(p) as image:
        assert image.size == 4096
        image.write(1000, b"abc")
        assert p.read_bytes()[1000:1003] == b"abc"          # at once, no buffering
        assert image.read(998, 6) == b"\0\0abc\0"
        assert image.read(4000, 200) == bytes(200)          # the 104 bytes past the end read as zeros
        image.flush()
    assert image.closed
    image.close()                                           # twice is harmless


def test_read_only_image_is_opened_read_only(tmp_path):
    p = make_image(tmp_path, size=4096)
    p.chmod(0o444)                                          # a read-only file opens read-only
    with ImageFile(p, read_only=True) as image, pytest.raises(OSError):
        image.write(0, b"x")
    assert p.read_bytes() == bytes(4096)


def test_write_through_reaches_the_file_before_the_reply(tmp_path):
    p = make_image(tmp_path)
    mem = FakeGuestMemory()
    with DiskImages([DiskConfig(p)]) as images:
        iop = Iop(mem, disks=images.disks)
        host = linux_bringup(iop, mem)
        payload = os.urandom(3 * 512)
        mem.write(DATA, payload)
        r = host.call(rw(f.Function.BSA_BLOCK_WRITE, 4096, len(payload), simple_sgl((DATA, len(payload)),
                                                                                    to_iop=True)))
        assert (r.status, r.detail) == (0, 0)
        assert p.read_bytes()[4096:4096 + len(payload)] == payload
        p.write_bytes(b"\x22" * DISK_SIZE)                  # someone else changes the image: reads see it
        r = host.call(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA + 0x10000, 512))))
        assert r.status == 0 and mem.read(DATA + 0x10000, 512) == b"\x22" * 512
        iop.close()


def test_write_back_reaches_the_file_at_cache_flush_and_close(tmp_path):
    p = make_image(tmp_path)
    mem = FakeGuestMemory()
    images = DiskImages([DiskConfig(p, write_back=True)])
    iop = Iop(mem, disks=images.disks)
    host = linux_bringup(iop, mem)
    a, b = os.urandom(1024), os.urandom(512)
    mem.write(DATA, a)
    assert host.call(rw(f.Function.BSA_BLOCK_WRITE, 0, 1024, simple_sgl((DATA, 1024), to_iop=True))).status == 0
    assert p.read_bytes()[:1024] == bytes(1024)             # still only in the cache
    assert host.call(message(f.Function.BSA_CACHE_FLUSH, struct.pack("<I", 60 << 16), tid=TID)).status == 0
    assert p.read_bytes()[:1024] == a
    mem.write(DATA, b)
    host.call(rw(f.Function.BSA_BLOCK_WRITE, 8192, 512, simple_sgl((DATA, 512), to_iop=True)))
    iop.close()
    images.close()
    assert p.read_bytes()[8192:8704] == b


def test_a_shrunken_image_reads_zeros_and_a_closed_one_is_a_device_failure(tmp_path):
    """A file cut shorter under the disk reads as zeros, never as a short
    transfer; a storage that fails (here EBADF) is BSA DEVICE_FAILURE."""
    p = make_image(tmp_path)
    mem = FakeGuestMemory()
    with DiskImages([DiskConfig(p, read_only=True)]) as images:
        iop = Iop(mem, disks=images.disks)
        host = linux_bringup(iop, mem)
        os.truncate(p, 512)
        mem.write(DATA + 512, b"\xee" * 512)
        r = host.call(rw(f.Function.BSA_BLOCK_READ, 0, 1024, simple_sgl((DATA, 1024))))
        assert r.status == 0 and mem.read(DATA + 512, 512) == bytes(512)
        images.files[0].close()                             # the storage is gone: EBADF
        r = host.call(rw(f.Function.BSA_BLOCK_READ, 0, 512, simple_sgl((DATA, 512))))
        assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, BsaStatus.DEVICE_FAILURE)


def test_disk_images_close_what_they_opened_when_one_fails(tmp_path):
    good = make_image(tmp_path)
    before = open_fds()
    with pytest.raises(FileNotFoundError):
        DiskImages([DiskConfig(good), DiskConfig(tmp_path / "missing.img")])
    assert open_fds() == before


def test_pci_device_closes_its_images_once_even_when_the_model_refuses_them(tmp_path):
    before = open_fds()
    with pytest.raises(ValueError, match="not a multiple of 512"):
        IopPciDevice(disks=(DiskConfig(make_image(tmp_path, "a.img")), DiskConfig(make_image(tmp_path, "b.img", 1000))))
    assert open_fds() == before
    dev = IopPciDevice(disks=(DiskConfig(make_image(tmp_path, "c.img")),))
    assert open_fds() == before + 1
    dev.close()
    dev.close()
    assert open_fds() == before and all(image.closed for image in dev.images.files)


def test_description_disks_are_created_sparse_when_sized(tmp_path):
    desc = parse_description({"machine": {"name": "m"}, "i2o": [{"disk": [
        {"image": str(tmp_path / "new.img"), "size": 2, "cache": "write-back"},
        {"image": str(make_image(tmp_path, "old.img")), "read-only": True}]}]})
    configs = disk_configs(desc.i2o[0])
    assert [(c.image.name, c.write_back, c.read_only) for c in configs] == [
        ("new.img", True, False), ("old.img", False, True)]
    assert (tmp_path / "new.img").stat().st_size == 2 << 20
    assert (tmp_path / "old.img").stat().st_size == DISK_SIZE
    with pytest.raises(FileNotFoundError, match="give `size`"):
        disk_configs(parse_description({"machine": {"name": "m"}, "i2o": [{"disk": [
            {"image": str(tmp_path / "absent.img")}]}]}).i2o[0])
