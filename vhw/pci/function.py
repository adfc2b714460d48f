"""One conventional PCI function: config space, BARs and INTx, sans I/O.

The model follows the PCI Local Bus Specification 3.0, chapter 6 ("Configuration
Space"), type-0 header (§6.1, figure 6-1). It never touches a socket: a
transport (mpqemu's x-pci-proxy-dev, later vfio-user) calls `config_read`,
`config_write`, `bar_read` and `bar_write`, and learns the INTx line level
through a callback. Behind x-pci-proxy-dev the remote owns config space
completely, BAR sizing included, so the semantics here are what the guest sees.

Register behaviour is data, not code: every config byte has a write mask
(which bits software may change) and an RW1C mask (which bits a written 1
clears, §6.2.3 Status register). BAR sizing (§6.2.5.1) falls out of the write
mask: the address bits below the BAR's size are read-only zero, the type bits
are read-only, so writing all ones reads back the size mask with the type bits.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Protocol
from collections.abc import Callable

log = logging.getLogger(__name__)

CONFIG_SPACE_SIZE = 256
EXTENDED_CONFIG_SPACE_SIZE = 4096

# Type-0 header offsets (PCI 3.0 §6.1, figure 6-1).
VENDOR_ID = 0x00
DEVICE_ID = 0x02
COMMAND = 0x04
STATUS = 0x06
REVISION_ID = 0x08
CLASS_CODE = 0x09  # 3 bytes: prog-if, sub-class, base class
CACHE_LINE_SIZE = 0x0C
LATENCY_TIMER = 0x0D
HEADER_TYPE = 0x0E
BIST = 0x0F
BAR0 = 0x10
CARDBUS_CIS = 0x28
SUBSYSTEM_VENDOR_ID = 0x2C
SUBSYSTEM_ID = 0x2E
EXPANSION_ROM = 0x30
CAPABILITIES_POINTER = 0x34
INTERRUPT_LINE = 0x3C
INTERRUPT_PIN = 0x3D
MIN_GNT = 0x3E
MAX_LAT = 0x3F

FIRST_CAPABILITY = 0x40  # capabilities live after the predefined header
BAR_COUNT = 6

# Command register bits (PCI 3.0 §6.2.2).
CMD_IO_SPACE = 1 << 0
CMD_MEMORY_SPACE = 1 << 1
CMD_BUS_MASTER = 1 << 2
CMD_PARITY_ERROR_RESPONSE = 1 << 6
CMD_SERR_ENABLE = 1 << 8
CMD_INTX_DISABLE = 1 << 10

# Status register bits (PCI 3.0 §6.2.3).
STATUS_INTERRUPT = 1 << 3
STATUS_CAPABILITIES_LIST = 1 << 4
STATUS_MASTER_DATA_PARITY_ERROR = 1 << 8
STATUS_SIGNALED_TARGET_ABORT = 1 << 11
STATUS_RECEIVED_TARGET_ABORT = 1 << 12
STATUS_RECEIVED_MASTER_ABORT = 1 << 13
STATUS_SIGNALED_SYSTEM_ERROR = 1 << 14
STATUS_DETECTED_PARITY_ERROR = 1 << 15
STATUS_ERROR_BITS = (
    STATUS_MASTER_DATA_PARITY_ERROR
    | STATUS_SIGNALED_TARGET_ABORT
    | STATUS_RECEIVED_TARGET_ABORT
    | STATUS_RECEIVED_MASTER_ABORT
    | STATUS_SIGNALED_SYSTEM_ERROR
    | STATUS_DETECTED_PARITY_ERROR
)

# BAR low-bit encodings (PCI 3.0 §6.2.5.1).
BAR_IO = 0x1
BAR_MEM_TYPE_64 = 0x4
BAR_MEM_PREFETCHABLE = 0x8


@dataclass(frozen=True)
class PciIdentity:
    """The read-only IDs a driver matches on (PCI 3.0 §6.2.1).

    `class_code` is the 24-bit base class/sub-class/prog-if, e.g. 0x0E0001
    for an I2O IOP with the prog-if NetBSD requires. `interrupt_pin` is 1..4
    for INTA#..INTD#, or 0 for none (§6.2.4).
    """

    vendor_id: int
    device_id: int
    class_code: int
    revision_id: int = 0
    subsystem_vendor_id: int = 0
    subsystem_id: int = 0
    interrupt_pin: int = 1

    def __post_init__(self) -> None:
        for name, bits in (("vendor_id", 16), ("device_id", 16), ("class_code", 24),
                           ("revision_id", 8), ("subsystem_vendor_id", 16),
                           ("subsystem_id", 16)):
            value = getattr(self, name)
            if not 0 <= value < 1 << bits:
                raise ValueError(f"{name} {value:#x} does not fit in {bits} bits")
        if not 0 <= self.interrupt_pin <= 4:
            raise ValueError(f"interrupt_pin {self.interrupt_pin} is not 0..4")


class BarKind(enum.Enum):
    """The three BAR flavours of PCI 3.0 §6.2.5.1."""

    MEM32 = "mem32"
    MEM64 = "mem64"  # takes this BAR and the next one (upper 32 address bits)
    IO = "io"


@dataclass(frozen=True)
class BarSpec:
    """Size and type of one BAR; sizes are powers of two (§6.2.5.1).

    Memory BARs claim at least 16 bytes, I/O BARs at least 4. Note that
    x-pci-proxy-dev in QEMU 7.2 turns every memory BAR into 32-bit
    non-prefetchable and breaks I/O BARs under 16 bytes; the model still
    implements the spec, the transport decides what to offer.
    """

    kind: BarKind
    size: int
    prefetchable: bool = False

    def __post_init__(self) -> None:
        minimum = 4 if self.kind is BarKind.IO else 16
        limit = 1 << (64 if self.kind is BarKind.MEM64 else 32)
        if self.size < minimum or self.size & (self.size - 1) or self.size > limit // 2:
            raise ValueError(f"{self.kind.value} BAR size {self.size:#x} is not a power of two "
                             f"between {minimum:#x} and {limit // 2:#x}")
        if self.prefetchable and self.kind is BarKind.IO:
            raise ValueError("an I/O BAR cannot be prefetchable")

    @property
    def is_memory(self) -> bool:
        return self.kind is not BarKind.IO

    @property
    def type_bits(self) -> int:
        """The read-only low bits that tell software what this BAR is."""
        if self.kind is BarKind.IO:
            return BAR_IO
        bits = BAR_MEM_TYPE_64 if self.kind is BarKind.MEM64 else 0
        return bits | (BAR_MEM_PREFETCHABLE if self.prefetchable else 0)

    @property
    def address_mask(self) -> int:
        """Writable address bits of the (possibly 64-bit) BAR value."""
        width = 64 if self.kind is BarKind.MEM64 else 32
        low_bits = 0x3 if self.kind is BarKind.IO else 0xF
        return ~(self.size - 1) & ~low_bits & ((1 << width) - 1)


class BarHandler(Protocol):
    """What a device model implements to serve accesses to one BAR.

    `offset` is relative to the BAR base; `size` is 1, 2, 4 or 8 bytes and the
    value is little endian in the low bytes, as the transports deliver it.
    """

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


IrqCallback = Callable[[bool], None]


#: The value mask of each legal BAR access size (1, 2, 4 or 8 bytes).
_ACCESS_MASKS = {n: (1 << (8 * n)) - 1 for n in (1, 2, 4, 8)}


def all_ones(size: int) -> int:
    """What a read nobody answers returns: all ones of the access size."""
    return (1 << (8 * size)) - 1 if size in (1, 2, 4, 8) else 0xFFFFFFFF


class PciFunction:
    """A type-0 PCI function whose config space and BARs software can probe.

    Build it with the identity and BARs, add capabilities, register a handler
    per BAR, then hand it to a transport. `reset()` returns the config space
    to the image built here (power-on values, PCI 3.0 §6.2.2: "a value of 0
    ... after RST#" for the command register).
    """

    def __init__(
        self,
        identity: PciIdentity,
        bars: dict[int, BarSpec] | None = None,
        *,
        extended_config: bool = False,
        on_irq_level: IrqCallback | None = None,
    ) -> None:
        self.identity = identity
        self.bars: dict[int, BarSpec] = dict(bars or {})
        self.on_irq_level = on_irq_level
        size = EXTENDED_CONFIG_SPACE_SIZE if extended_config else CONFIG_SPACE_SIZE
        self._power_on = bytearray(size)
        self._write_mask = bytearray(size)
        self._rw1c_mask = bytearray(size)
        self._config = bytearray(size)
        self._handlers: dict[int, BarHandler] = {}
        self._last_capability: int | None = None
        self._next_capability_offset = FIRST_CAPABILITY
        self._irq_pending = False
        self._line_level = False
        #: (base, end, BAR index, memory, handler) of every decoding BAR; None = stale.
        self._windows: list[tuple[int, int, int, bool, BarHandler | None]] | None = None
        self._check_bars()
        self._build_header()
        self._config[:] = self._power_on

    # -- construction ---------------------------------------------------

    def _check_bars(self) -> None:
        used: set[int] = set()
        for index, spec in self.bars.items():
            slots = {index, index + 1} if spec.kind is BarKind.MEM64 else {index}
            if not slots <= set(range(BAR_COUNT)):
                raise ValueError(f"BAR {index} ({spec.kind.value}) does not fit in BARs 0..5")
            if slots & used:
                raise ValueError(f"BAR {index} overlaps another BAR")
            used |= slots

    def _set_field(self, offset: int, size: int, value: int, write_mask: int = 0,
                   rw1c_mask: int = 0) -> None:
        """Store a power-on value and its masks (little endian)."""
        self._power_on[offset:offset + size] = value.to_bytes(size, "little")
        self._write_mask[offset:offset + size] = write_mask.to_bytes(size, "little")
        self._rw1c_mask[offset:offset + size] = rw1c_mask.to_bytes(size, "little")

    def _build_header(self) -> None:
        ident = self.identity
        self._set_field(VENDOR_ID, 2, ident.vendor_id)
        self._set_field(DEVICE_ID, 2, ident.device_id)
        command_mask = (CMD_BUS_MASTER | CMD_PARITY_ERROR_RESPONSE | CMD_SERR_ENABLE
                        | CMD_INTX_DISABLE)
        # §6.2.2: enables for a space the function does not decode are hardwired 0.
        if any(spec.is_memory for spec in self.bars.values()):
            command_mask |= CMD_MEMORY_SPACE
        if any(not spec.is_memory for spec in self.bars.values()):
            command_mask |= CMD_IO_SPACE
        self._set_field(COMMAND, 2, 0, write_mask=command_mask)
        self._set_field(STATUS, 2, 0, rw1c_mask=STATUS_ERROR_BITS)
        self._set_field(REVISION_ID, 1, ident.revision_id)
        self._set_field(CLASS_CODE, 3, ident.class_code)
        # §6.2.4: cache line size and latency timer are read/write.
        self._set_field(CACHE_LINE_SIZE, 1, 0, write_mask=0xFF)
        self._set_field(LATENCY_TIMER, 1, 0, write_mask=0xFF)
        self._set_field(HEADER_TYPE, 1, 0x00)  # type 0, single function
        for index, spec in self.bars.items():
            offset = BAR0 + 4 * index
            if spec.kind is BarKind.MEM64:
                self._set_field(offset, 8, spec.type_bits, write_mask=spec.address_mask)
            else:
                self._set_field(offset, 4, spec.type_bits, write_mask=spec.address_mask)
        self._set_field(SUBSYSTEM_VENDOR_ID, 2, ident.subsystem_vendor_id)
        self._set_field(SUBSYSTEM_ID, 2, ident.subsystem_id)
        # §6.2.4: interrupt line is a scratch register for the OS.
        self._set_field(INTERRUPT_LINE, 1, 0, write_mask=0xFF)
        self._set_field(INTERRUPT_PIN, 1, ident.interrupt_pin)

    def add_capability(self, cap_id: int, body: bytes, writable: bytes | None = None) -> int:
        """Append a capability to the list at 0x34 and return its offset.

        PCI 3.0 §6.7: each item is (ID, next pointer, body), dword aligned,
        at 0x40 or above; the list ends with a next pointer of 0; the status
        register's Capabilities List bit says the pointer at 0x34 is valid.
        `writable` is a per-byte write mask for `body` (default: read-only).
        Call before the function is handed to a transport.
        """
        if not 0 <= cap_id <= 0xFF:
            raise ValueError(f"capability ID {cap_id:#x} is not a byte")
        if writable is not None and len(writable) != len(body):
            raise ValueError("writable mask must be as long as the body")
        offset = self._next_capability_offset
        end = offset + 2 + len(body)
        if end > CONFIG_SPACE_SIZE:
            raise ValueError(f"capability {cap_id:#x} of {len(body)} bytes does not fit "
                             f"at {offset:#x}")
        self._power_on[offset] = cap_id
        self._power_on[offset + 1] = 0
        self._power_on[offset + 2:end] = body
        self._write_mask[offset + 2:end] = writable or bytes(len(body))
        if self._last_capability is None:
            self._power_on[CAPABILITIES_POINTER] = offset
            self._power_on[STATUS] |= STATUS_CAPABILITIES_LIST
        else:
            self._power_on[self._last_capability + 1] = offset
        previous = self._last_capability
        self._last_capability = offset
        self._next_capability_offset = (end + 3) & ~3
        # Copy only the bytes this call changed into the live config space.
        touched = [CAPABILITIES_POINTER, *range(offset, end)]
        if previous is not None:
            touched.append(previous + 1)
        for at in touched:
            self._config[at] = self._power_on[at]
        self._config[STATUS] |= STATUS_CAPABILITIES_LIST
        return offset

    def register_bar_handler(self, index: int, handler: BarHandler) -> None:
        """Route accesses to BAR `index` to `handler`."""
        if index not in self.bars:
            raise ValueError(f"BAR {index} is not implemented by this function")
        self._handlers[index] = handler
        self._windows = None

    # -- config space ---------------------------------------------------

    @property
    def config_size(self) -> int:
        return len(self._config)

    def _legal(self, offset: int, size: int) -> bool:
        return (size in (1, 2, 4) and offset >= 0 and offset % size == 0
                and offset + size <= len(self._config))

    def config_read(self, offset: int, size: int) -> int:
        """Read 1, 2 or 4 naturally aligned bytes; all ones if illegal.

        An access outside the function's config space reads all ones, like a
        master abort on a read (PCI 3.0 §6.1: unimplemented reads as 0 within
        the space; nothing answers outside it).
        """
        if not self._legal(offset, size):
            log.warning("illegal config read offset=%#x size=%r", offset, size)
            return all_ones(size)
        return int.from_bytes(self._config[offset:offset + size], "little")

    def config_write(self, offset: int, size: int, value: int) -> None:
        """Write 1, 2 or 4 naturally aligned bytes through the masks.

        Read-only bits keep their value, RW1C bits clear where a 1 is written
        (§6.2.3), and illegal accesses are logged and dropped.
        """
        if not self._legal(offset, size):
            log.warning("illegal config write offset=%#x size=%r value=%#x",
                        offset, size, value)
            return
        data = (value & all_ones(size)).to_bytes(size, "little")
        for i, byte in enumerate(data):
            at = offset + i
            kept = self._config[at] & ~self._write_mask[at]
            new = kept | (byte & self._write_mask[at])
            self._config[at] = new & ~(byte & self._rw1c_mask[at]) & 0xFF
        self._windows = None  # command or a BAR may have changed
        if offset < COMMAND + 2 and offset + size > COMMAND:
            self._update_line()

    @property
    def command(self) -> int:
        return self.config_read(COMMAND, 2)

    @property
    def status(self) -> int:
        return self.config_read(STATUS, 2)

    def set_status_error(self, bits: int) -> None:
        """Record an error condition in the RW1C status bits (§6.2.3).

        E.g. STATUS_RECEIVED_MASTER_ABORT when a DMA hits unmapped memory.
        Software clears them by writing 1s.
        """
        bits &= STATUS_ERROR_BITS
        self._config[STATUS] |= bits & 0xFF
        self._config[STATUS + 1] |= bits >> 8

    # -- BARs -----------------------------------------------------------

    def bar_address(self, index: int) -> int | None:
        """The base software assigned to BAR `index`, or None if unassigned."""
        spec = self.bars.get(index)
        if spec is None:
            return None
        offset = BAR0 + 4 * index
        width = 8 if spec.kind is BarKind.MEM64 else 4
        raw = int.from_bytes(self._config[offset:offset + width], "little")
        base = raw & spec.address_mask
        return base or None

    def decode(self, address: int, memory: bool) -> tuple[int, int] | None:
        """Map an absolute bus address to (BAR index, offset), or None.

        A BAR decodes only while its space is enabled in the command register
        (§6.2.2) and it has a base. x-pci-proxy-dev sends absolute addresses.
        """
        hit = self._window(address, memory)
        return None if hit is None else (hit[2], address - hit[0])

    def _window(self, address: int, memory: bool) -> tuple[int, int, int, bool, BarHandler | None] | None:
        """The decoding window (see :meth:`_decoding_windows`) holding ``address``."""
        windows = self._windows
        if windows is None:
            windows = self._windows = self._decoding_windows()
        for window in windows:
            if window[0] <= address < window[1] and window[3] == memory:
                return window
        return None

    def _decoding_windows(self) -> list[tuple[int, int, int, bool, BarHandler | None]]:
        """Address ranges the BARs decode now, with their handlers (cached:
        decode runs per access)."""
        command = self.command
        windows = []
        for index, spec in self.bars.items():
            if not command & (CMD_MEMORY_SPACE if spec.is_memory else CMD_IO_SPACE):
                continue
            base = self.bar_address(index)
            if base is not None:
                windows.append((base, base + spec.size, index, spec.is_memory, self._handlers.get(index)))
        return windows

    def _bar_target(self, index: int, offset: int, size: int) -> tuple[BarHandler, int] | None:
        """The handler of BAR ``index`` and the mask of a ``size``-byte
        access, or None when the access does not fit the BAR."""
        spec = self.bars.get(index)
        handler = self._handlers.get(index)
        mask = _ACCESS_MASKS.get(size)
        if spec is None or handler is None or mask is None or offset < 0 or offset + size > spec.size:
            return None
        return handler, mask

    def bar_read(self, index: int, offset: int, size: int) -> int:
        """Dispatch a read to the BAR's handler; all ones if nothing decodes it."""
        target = self._bar_target(index, offset, size)
        if target is None:
            log.warning("BAR read with no target bar=%r offset=%#x size=%r",
                        index, offset, size)
            return all_ones(size)
        handler, mask = target
        return handler.read(offset, size) & mask

    def bar_write(self, index: int, offset: int, size: int, value: int) -> None:
        """Dispatch a write to the BAR's handler; dropped if nothing decodes it."""
        target = self._bar_target(index, offset, size)
        if target is None:
            log.warning("BAR write with no target bar=%r offset=%#x size=%r value=%#x",
                        index, offset, size, value)
            return
        handler, mask = target
        handler.write(offset, size, value & mask)

    def _bus_target(self, address: int, size: int,
                    memory: bool) -> tuple[int, int, BarHandler | None, int] | None:
        """(BAR index, offset, handler, value mask) of an access by bus
        address; the handler is None when the access does not fit the BAR
        (bar_read/bar_write then log it); None when no BAR decodes it."""
        hit = self._window(address, memory)
        if hit is None:
            return None
        base, end, index, _memory, handler = hit
        mask = _ACCESS_MASKS.get(size, 0)
        fits = handler is not None and mask and address + size <= end
        return index, address - base, handler if fits else None, mask

    def bus_read(self, address: int, size: int, memory: bool) -> int | None:
        """A read by absolute bus address (what x-pci-proxy-dev sends):
        :meth:`decode` and :meth:`bar_read` in one step (one per guest load,
        so without the intermediate calls); None when no BAR decodes
        ``address``."""
        target = self._bus_target(address, size, memory)
        if target is None:
            return None
        index, offset, handler, mask = target
        if handler is None:
            return self.bar_read(index, offset, size)  # logs, all ones
        return handler.read(offset, size) & mask

    def bus_write(self, address: int, size: int, value: int, memory: bool) -> bool:
        """A write by absolute bus address; False when no BAR decodes it."""
        target = self._bus_target(address, size, memory)
        if target is None:
            return False
        index, offset, handler, mask = target
        if handler is None:
            self.bar_write(index, offset, size, value)  # logs, drops
        else:
            handler.write(offset, size, value & mask)
        return True

    # -- INTx -----------------------------------------------------------

    def set_irq(self, level: bool) -> None:
        """Set the function's internal interrupt request (a level, not an edge).

        PCI 3.0 §6.2.3, Interrupt Status: the bit reflects the request even
        while masked; INTx# is asserted only when it is 1 and Interrupt
        Disable (§6.2.2, bit 10) is 0.
        """
        self._irq_pending = bool(level)
        if self._irq_pending:
            self._config[STATUS] |= STATUS_INTERRUPT
        else:
            self._config[STATUS] &= ~STATUS_INTERRUPT & 0xFF
        self._update_line()

    @property
    def irq_line_level(self) -> bool:
        """The level the INTx# pin drives right now."""
        return self._line_level

    def _update_line(self) -> None:
        level = self._irq_pending and not self.command & CMD_INTX_DISABLE
        if level != self._line_level:
            self._line_level = level
            if self.on_irq_level is not None:
                self.on_irq_level(level)

    # -- reset ----------------------------------------------------------

    def reset(self) -> None:
        """Device reset: config space back to power-on values.

        Command is 0 (no decode, no bus mastering), BARs unassigned, status
        errors clear, and the interrupt request drops (the device model resets
        its own state alongside).
        """
        self._config[:] = self._power_on
        self._windows = None
        self._irq_pending = False
        self._update_line()
