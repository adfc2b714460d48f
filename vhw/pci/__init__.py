"""PCI building blocks that know nothing of their transport.

`function` models one conventional PCI function (config space, BARs, INTx);
`memory` models guest physical memory as a device sees it for DMA. The
mpqemu and vfio-user transports feed both with plain method calls.
"""

from vhw.pci.function import (
    BarHandler,
    BarKind,
    BarSpec,
    PciFunction,
    PciIdentity,
)
from vhw.pci.memory import DmaError, GuestMemory, MemoryRegion

__all__ = [
    "BarHandler",
    "BarKind",
    "BarSpec",
    "DmaError",
    "GuestMemory",
    "MemoryRegion",
    "PciFunction",
    "PciIdentity",
]
