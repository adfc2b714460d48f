"""DMA as a device model sees it: a port onto guest physical memory.

A model reads and writes guest RAM only through a :class:`Dma` it was
given, and an address nothing maps is a :class:`DmaError` it turns into a
failure reply.  The transport side implements the port
(:class:`vhw.pci.memfd.GuestMemory` maps the fds QEMU shares); tests use a
bytearray.
"""

from __future__ import annotations

from typing import Protocol


class DmaError(Exception):
    """A DMA touched guest physical memory that no region maps."""

    def __init__(self, address: int, length: int, reason: str = "unmapped") -> None:
        self.address = address
        self.length = length
        self.reason = reason
        super().__init__(f"DMA {reason} at gpa {address:#x} (length {length:#x})")


class Dma(Protocol):
    """Guest physical memory: all or nothing, :class:`DmaError` if any byte is unmapped."""

    def read(self, gpa: int, length: int) -> bytes: ...

    def write(self, gpa: int, data: bytes) -> None: ...
