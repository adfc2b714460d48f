"""GuestMemory: memfd-backed guest RAM regions for DMA (see i2o-mpqemu.md §A5)."""

from __future__ import annotations

import gc
import os

import pytest

from pci.helpers import is_open
from vhw.pci.dma import DmaError
from vhw.pci.memfd import GuestMemory, MemoryRegion

PAGE = os.sysconf("SC_PAGE_SIZE")


def memfd(size: int, fill: bytes = b"") -> int:
    fd = os.memfd_create("vhw-test-ram")
    os.ftruncate(fd, size)
    if fill:
        os.pwrite(fd, fill, 0)
    return fd


def open_fds() -> int:
    # Objects an earlier test left to the garbage collector (sockets, files)
    # close their fds when collected: collect first, so only this test's count.
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def test_read_and_write_reach_the_shared_memfd():
    fd = memfd(2 * PAGE)
    peer = os.dup(fd)  # what QEMU keeps: the same RAM
    try:
        with GuestMemory() as memory:
            memory.replace_regions([MemoryRegion(gpa=0x10000, size=2 * PAGE, fd=fd)])
            memory.write(0x10010, b"hello")
            assert os.pread(peer, 5, 0x10) == b"hello"
            os.pwrite(peer, b"world", 0x20)
            assert memory.read(0x10020, 5) == b"world"
    finally:
        os.close(peer)


def test_region_offset_into_the_fd_is_honoured_even_unaligned():
    fd = memfd(4 * PAGE, fill=bytes(range(256)) * (4 * PAGE // 256))
    with GuestMemory() as memory:
        memory.replace_regions([MemoryRegion(gpa=0x0, size=PAGE, fd=fd, offset=PAGE + 7)])
        assert memory.read(0, 3) == bytes([7, 8, 9])


def test_access_across_two_adjacent_regions():
    low, high = memfd(PAGE), memfd(PAGE)
    low_peer, high_peer = os.dup(low), os.dup(high)
    try:
        with GuestMemory() as memory:
            memory.replace_regions([
                MemoryRegion(gpa=0x1000 + PAGE, size=PAGE, fd=high),
                MemoryRegion(gpa=0x1000, size=PAGE, fd=low),
            ])
            boundary = 0x1000 + PAGE
            memory.write(boundary - 3, b"abcdef")
            assert os.pread(low_peer, 3, PAGE - 3) == b"abc"
            assert os.pread(high_peer, 3, 0) == b"def"
            assert memory.read(boundary - 3, 6) == b"abcdef"
    finally:
        os.close(low_peer)
        os.close(high_peer)


@pytest.mark.parametrize("gpa,length", [
    (0x0, 4),                 # below every region
    (0x1000 + PAGE - 2, 4),   # runs off the end into a hole
    (0x1000 + 2 * PAGE, 1),   # inside the hole
    (-1, 1),
])
def test_unmapped_access_raises_dma_error_with_address(gpa, length):
    with GuestMemory() as memory:
        memory.replace_regions([
            MemoryRegion(gpa=0x1000, size=PAGE, fd=memfd(PAGE)),
            MemoryRegion(gpa=0x1000 + 3 * PAGE, size=PAGE, fd=memfd(PAGE)),
        ])
        with pytest.raises(DmaError) as caught:
            memory.read(gpa, length)
        assert caught.value.address >= gpa or gpa < 0
        with pytest.raises(DmaError):
            memory.write(gpa, b"\xAA" * length)


def test_failed_write_changes_nothing():
    fd = memfd(PAGE)
    peer = os.dup(fd)
    try:
        with GuestMemory() as memory:
            memory.replace_regions([MemoryRegion(gpa=0, size=PAGE, fd=fd)])
            with pytest.raises(DmaError) as caught:
                memory.write(PAGE - 2, b"xxxx")
            assert caught.value.address == PAGE
            assert os.pread(peer, 2, PAGE - 2) == b"\0\0"
    finally:
        os.close(peer)


def test_zero_length_and_empty_memory():
    with GuestMemory() as memory:
        assert memory.read(0x1234, 0) == b""
        with pytest.raises(DmaError):
            memory.read(0, 1)


def test_replace_and_close_release_every_fd_and_mapping():
    # Python's mmap keeps a dup of the fd it maps, so each live region
    # accounts for two fds; what matters is that the count does not grow.
    before = open_fds()
    memory = GuestMemory()
    counts = set()
    for _ in range(20):
        memory.replace_regions([
            MemoryRegion(gpa=0, size=PAGE, fd=memfd(PAGE)),
            MemoryRegion(gpa=PAGE, size=PAGE, fd=memfd(PAGE)),
        ])
        counts.add(open_fds())
    assert len(counts) == 1 and counts.pop() <= before + 4
    memory.replace_regions([MemoryRegion(gpa=0, size=PAGE, fd=memfd(PAGE))])
    assert open_fds() <= before + 2
    assert [r.gpa for r in memory.regions] == [0]
    memory.close()
    assert open_fds() == before


def test_unmappable_region_is_skipped_and_its_fd_still_closed():
    fds = [memfd(PAGE), memfd(PAGE), memfd(PAGE)]
    with GuestMemory() as memory:
        # Beyond the end of the file: mmap fails.
        memory.replace_regions([
            MemoryRegion(gpa=0, size=PAGE, fd=fds[0]),
            MemoryRegion(gpa=PAGE, size=PAGE, fd=fds[1], offset=16 * PAGE),
            MemoryRegion(gpa=PAGE // 2, size=PAGE, fd=fds[2]),  # overlaps
        ])
        assert [r.gpa for r in memory.regions] == [0]
        with pytest.raises(DmaError):
            memory.read(PAGE, 1)
    # Every fd QEMU handed over is closed with the memory, the skipped regions' too.
    assert [is_open(fd) for fd in fds] == [False, False, False]
