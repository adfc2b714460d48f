"""Guest RAM shared by QEMU as memfds: the transport's side of the DMA port.

QEMU shares guest RAM with an out-of-process device as file descriptors
(memfd) plus (guest physical base, size, offset into the fd); with
x-pci-proxy-dev every SYNC_SYSMEM carries a complete new set that replaces
the old one. `GuestMemory` owns those fds and their MAP_SHARED mappings,
so a DMA read or write is a slice of an mmap, and an address nothing maps
is a `DmaError` that the device model turns into a failure reply.  It
implements :class:`vhw.pci.dma.Dma`; it lives on the I/O side because it
maps and closes file descriptors.

Ownership rule: every fd handed to `replace_regions` belongs to this object
from then on and is closed exactly once, on the next replace or on `close`,
even when mapping it failed. About 115 replaces happen per guest boot, so a
leak here would exhaust fds.
"""

from __future__ import annotations

import bisect
import logging
import mmap
import os
from dataclasses import dataclass
from collections.abc import Iterable

from .dma import DmaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryRegion:
    """One contiguous run of guest RAM backed by `fd` from `offset`."""

    gpa: int
    size: int
    fd: int
    offset: int = 0

    @property
    def end(self) -> int:
        return self.gpa + self.size


class _Mapping:
    """A region's mmap; mmap offsets must be page aligned, so keep the slack."""

    def __init__(self, region: MemoryRegion) -> None:
        slack = region.offset % mmap.ALLOCATIONGRANULARITY
        self.region = region
        self.slack = slack
        self.map = mmap.mmap(region.fd, region.size + slack, flags=mmap.MAP_SHARED,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE,
                             offset=region.offset - slack)

    def close(self) -> None:
        self.map.close()


class GuestMemory:
    """The set of guest RAM regions currently visible for DMA."""

    def __init__(self) -> None:
        self._mappings: list[_Mapping] = []  # sorted by gpa, non-overlapping
        self._starts: list[int] = []
        self._fds: list[int] = []

    def __enter__(self) -> GuestMemory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def regions(self) -> list[MemoryRegion]:
        """The regions that are mapped now, by ascending guest address."""
        return [m.region for m in self._mappings]

    def replace_regions(self, regions: Iterable[MemoryRegion]) -> None:
        """Unmap everything and map `regions` instead, taking their fds.

        A region that cannot be mapped (bad fd, beyond the file, overlapping
        another) is logged and skipped: its addresses then fail with
        DmaError, which the device reports; the transport keeps serving.
        """
        self._release()
        regions = sorted(regions, key=lambda r: r.gpa)
        self._fds = list(dict.fromkeys(r.fd for r in regions))  # close each fd once
        for region in regions:
            if region.size <= 0 or region.gpa < 0 or region.offset < 0:
                log.warning("skipping empty or negative guest RAM region %s", region)
                continue
            if self._mappings and region.gpa < self._mappings[-1].region.end:
                log.warning("skipping guest RAM region %s: overlaps %s",
                            region, self._mappings[-1].region)
                continue
            try:
                mapping = _Mapping(region)
            except (OSError, ValueError, OverflowError) as error:
                log.warning("cannot map guest RAM region %s: %s", region, error)
                continue
            self._mappings.append(mapping)
        self._starts = [m.region.gpa for m in self._mappings]

    def close(self) -> None:
        """Unmap every region and close every fd this object owns."""
        self._release()

    def _release(self) -> None:
        for mapping in self._mappings:
            mapping.close()
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError as error:
                log.warning("closing guest RAM fd %d: %s", fd, error)
        self._mappings, self._starts, self._fds = [], [], []

    def _segments(self, gpa: int, length: int) -> list[tuple[_Mapping, int, int]]:
        """Split [gpa, gpa+length) into (mapping, map offset, count) pieces.

        Pieces must cover the range without holes; adjacent regions are
        contiguous in guest physical space even when their fds differ.
        """
        if gpa < 0 or length < 0:
            raise DmaError(gpa, length, "negative address or length")
        pieces = []
        address, remaining = gpa, length
        while remaining:
            index = bisect.bisect_right(self._starts, address) - 1
            if index < 0 or address >= self._mappings[index].region.end:
                raise DmaError(address, remaining)
            mapping = self._mappings[index]
            count = min(remaining, mapping.region.end - address)
            pieces.append((mapping, mapping.slack + address - mapping.region.gpa, count))
            address += count
            remaining -= count
        return pieces

    def _within_one(self, gpa: int, length: int) -> tuple[mmap.mmap, int] | None:
        """(map, map offset) when one region holds all of [gpa, gpa+length):
        nearly every DMA, so it skips the piece list."""
        index = bisect.bisect_right(self._starts, gpa) - 1
        if index < 0 or gpa < 0 or length < 0:
            return None
        mapping = self._mappings[index]
        region = mapping.region
        if gpa + length > region.gpa + region.size:
            return None
        return mapping.map, mapping.slack + gpa - region.gpa

    def read(self, gpa: int, length: int) -> bytes:
        """Copy `length` bytes from guest physical `gpa`; DmaError if any is unmapped."""
        one = self._within_one(gpa, length)
        if one is not None:
            ram, start = one
            return ram[start:start + length]
        return b"".join(m.map[start:start + count] for m, start, count in self._segments(gpa, length))

    def write(self, gpa: int, data: bytes) -> None:
        """Copy `data` to guest physical `gpa`; all or nothing, DmaError if unmapped."""
        one = self._within_one(gpa, len(data))
        if one is not None:
            ram, start = one
            ram[start:start + len(data)] = data
            return
        done = 0
        for mapping, start, count in self._segments(gpa, len(data)):
            mapping.map[start:start + count] = data[done:done + count]
            done += count
