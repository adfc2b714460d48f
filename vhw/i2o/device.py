"""An I2O IOP as a PCI function served to QEMU's x-pci-proxy-dev: the I/O side.

:class:`IopPciDevice` joins the transport-free parts (the PCI function:
config space, BAR0 decode, INTx status; the :class:`~vhw.i2o.iop.Iop`
behind BAR0) to what they are given from outside: guest RAM mapped from
QEMU's memfds for DMA, the disks' image files, the interrupt eventfd.  It
is what :class:`~vhw.pci.mpqemu_server.MpqemuServer` calls.  :class:`IopAttachment` gives one
such device to each QEMU launch over a fresh socketpair, so the IOP (and its
disk images) outlive guest power cycles.

INTx (i2o-mpqemu.md A8): the level is "outbound post FIFO non-empty and
unmasked", gated by the command register's Interrupt Disable; a rising level
writes the interrupt eventfd, and a resample (the guest's EOI, KVM only)
re-signals while the level is still high.  Under TCG nothing reads the
eventfd, which is why the guest driver falls back to polling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from pathlib import Path

from ..machine.description import I2O_DEVICE_ID, I2O_VENDOR_ID, I2oSpec
from ..pci.function import BarKind, BarSpec, PciFunction, PciIdentity, all_ones
from ..pci.memfd import GuestMemory, MemoryRegion
from ..pci.mpqemu import MemoryRegion as SysmemRegion
from ..pci.mpqemu_server import MpqemuServer
from .image_file import DiskConfig, DiskImages
from .iop import Iop, IopConfig

log = logging.getLogger(__name__)

#: Base class 0Eh (intelligent I/O), sub-class 00h (I2O), prog-if 01h: the
#: interrupt-driven messaging unit NetBSD requires (i2o-mpqemu.md B1).
I2O_CLASS_CODE = 0x0E0001
#: A 64 KiB 32-bit memory BAR0 works with Linux, NetBSD and asr (B1).
BAR0_SIZE = 0x10000


class IopPciDevice:
    """The PciDevice an mpqemu server drives (vhw.pci.mpqemu_server.PciDevice)."""

    def __init__(self, *, identity: PciIdentity | None = None, config: IopConfig | None = None,
                 disks: tuple[DiskConfig, ...] = (), slot: int = 0x10) -> None:
        identity = identity or PciIdentity(I2O_VENDOR_ID, I2O_DEVICE_ID, I2O_CLASS_CODE)
        self.function = PciFunction(identity, {0: BarSpec(BarKind.MEM32, BAR0_SIZE)}, on_irq_level=self._line)
        self.memory = GuestMemory()
        self.images = DiskImages(disks)
        try:
            self.iop = Iop(self.memory, irq=self.function.set_irq, config=config or IopConfig(),
                           disks=self.images.disks, pci_location=(0, slot, 0))
        except BaseException:
            self.images.close()
            raise
        self.iop.pci_ids = (identity.vendor_id, identity.device_id)  # the HRT's bus_info
        self.function.register_bar_handler(0, self.iop)
        self._irqfd: int | None = None
        self._closed = False
        self.interrupts = 0  # eventfd signals sent (what KVM would inject)
        self.unclaimed = 0   # BAR accesses that decoded to nothing

    # -- the mpqemu PciDevice protocol -----------------------------------
    def config_read(self, addr: int, length: int) -> int:
        return self.function.config_read(addr, length)

    def config_write(self, addr: int, val: int, length: int) -> None:
        self.function.config_write(addr, length, val)

    def bar_read(self, addr: int, size: int, memory: bool) -> int:
        value = self.function.bus_read(addr, size, memory)
        if value is None:
            self.unclaimed += 1
            return all_ones(size)
        return value

    def bar_write(self, addr: int, val: int, size: int, memory: bool) -> None:
        if not self.function.bus_write(addr, size, val, memory):
            self.unclaimed += 1

    def sync_sysmem(self, regions: list[SysmemRegion], fds: list[int]) -> None:
        # The server closes its fds when the next map arrives; the mappings
        # here hold duplicates so each side closes only what it owns.
        self.memory.replace_regions(
            MemoryRegion(r.gpa, r.size, os.dup(fd), r.offset) for r, fd in zip(regions, fds, strict=True))

    def set_irqfd(self, irqfd: int, resamplefd: int) -> None:
        # The server owns both fds (and watches the resample one for us);
        # a duplicate of the trigger lets the device outlive the server's copy.
        self._drop_irqfd()
        self._irqfd = os.dup(irqfd)
        if self.function.irq_line_level:
            self._signal()

    def reset(self) -> None:
        """PCI reset (DEVICE_RESET, or a new QEMU): config space and IOP to
        power-on; write-back data reaches the images first (Iop.reset)."""
        self.iop.reset()
        self.function.reset()

    # -- INTx --------------------------------------------------------------
    @property
    def irq_line_level(self) -> bool:
        """The INTx level now (the server watches the resample fd only while high)."""
        return self.function.irq_line_level

    def _line(self, level: bool) -> None:
        if level:
            self._signal()

    def _signal(self) -> None:
        if self._irqfd is None:
            return
        try:
            os.eventfd_write(self._irqfd, 1)
            self.interrupts += 1
        except OSError as e:  # a full counter or a closed fd: the poller copes
            log.warning("i2o: interrupt eventfd write failed: %s", e)

    def resample(self) -> None:
        """The guest's EOI (KVM resample): a level still high fires again."""
        if self.function.irq_line_level:
            self._signal()

    def _drop_irqfd(self) -> None:
        if self._irqfd is not None:
            os.close(self._irqfd)
            self._irqfd = None

    def close(self) -> None:
        """Write back and close the disk images, unmap guest RAM, drop the
        eventfds.  A second call does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self.iop.close()
        finally:
            self.images.close()
            self.memory.close()
            self._drop_irqfd()


def disk_configs(spec: I2oSpec) -> tuple[DiskConfig, ...]:
    """The IOP's disks, creating sparse images the description sizes."""
    disks = []
    for d in spec.disks:
        path = Path(d.image)
        if not path.exists():
            if d.size is None:
                raise FileNotFoundError(f"I2O disk image {path} does not exist "
                                        "(give `size` in MiB to create it)")
            with open(path, "xb") as f:
                f.truncate(d.size << 20)
        disks.append(DiskConfig(image=path, block_size=d.block_size,
                                write_back=d.write_back, read_only=d.read_only))
    return tuple(disks)


class IopAttachment:
    """One IOP for a machine: a fresh mpqemu socketpair per QEMU launch.

    The launcher awaits :meth:`start_proxy` before each QEMU start (the
    server must answer before QEMU realizes the device, A7) and passes the
    returned socket to QEMU.  The IOP and its disk images outlive the QEMU
    process; each launch starts from a PCI reset, as a power cycle would.
    The server runs in a thread of its own; with ``cpu`` set, that thread is
    pinned there (the launcher pins QEMU to the same CPU: each register
    access then wakes a thread on the same CPU, 3x cheaper than across CPUs
    on a virtualized host, see bench/README.md).
    """

    def __init__(self, spec: I2oSpec, index: int, *, trace=None, faults=None) -> None:
        self.spec = spec
        #: vhw.trace.Trace for the mpqemu messages; vhw.faults injector; None: neither.
        self.trace = trace
        self.faults = faults
        self.index = index
        self.device = IopPciDevice(identity=PciIdentity(spec.vendor_id, spec.device_id, I2O_CLASS_CODE),
                                   config=IopConfig(), disks=disk_configs(spec), slot=spec.slot)
        if faults is not None:  # the IOP asks it per message, from the device thread
            faults.serialize(threading.Lock())
            faults.iop.clock = time.monotonic
            self.device.iop.faults = faults.iop
            self.device.iop.fault_index = index
        self._task: asyncio.Future | None = None
        self._host: socket.socket | None = None

    async def start_proxy(self, cpu: int | None = None) -> tuple[str, socket.socket]:
        """Serve a new socketpair; the -device argument and QEMU's end."""
        await self._stop_server()
        self.device.reset()
        host, guest = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        server = MpqemuServer(host, self.device, trace=self.trace, name=f"i2o{self.index}")
        self._host = host
        self._task = asyncio.ensure_future(asyncio.to_thread(self._run, server, cpu))
        arg = f"x-pci-proxy-dev,id=i2o{self.index},addr={self.spec.slot:#x}.0,fd={guest.fileno()}"
        return arg, guest

    @staticmethod
    def _run(server: MpqemuServer, cpu: int | None) -> None:
        if cpu is not None:
            try:
                os.sched_setaffinity(0, {cpu})  # this thread only
            except OSError as e:
                log.warning("i2o: cannot pin the device thread to CPU %d: %s", cpu, e)
        server.run()

    async def _stop_server(self) -> None:
        host, task = self._host, self._task
        self._host = self._task = None
        if host is not None:
            try:
                host.shutdown(socket.SHUT_RDWR)  # wakes the thread: it sees EOF
            except OSError:
                pass
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if host is not None:
            host.close()

    async def close(self) -> None:
        await self._stop_server()
        self.device.close()
