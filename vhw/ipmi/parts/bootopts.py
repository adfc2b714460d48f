"""System boot options (IPMI 2.0 sections 28.12-28.13, table 28-14).

The BMC holds what the next boot should do; vhw's machine layer plays the
BIOS that reads it: when it (re)launches QEMU it asks ``boot_request`` which
device to boot and, once QEMU has started with it, calls ``boot_used`` -- the
BIOS acknowledging the flags -- which clears the valid bit of next-boot-only
flags.  Persistent flags ("options apply to all future boots") stay valid.

What survives a BMC restart: the spec calls parameters 1-3 and 5-7
"semi-volatile" -- kept across system resets and power cycles -- and vhw
keeps them in the store, so flags set before a BMC or host restart still
decide the next boot (anchors: "truthful, persistent boot-device state").
Set In Progress (0) is volatile and boot info acknowledge (4) is
"initialized to 00h when the management controller is first powered up or
reset", so both start fresh.

Valid-bit clearing (parameter 3): on a restart the BMC did not ask for
(power button/wake, reset button or soft reset, watchdog, PEF) the BMC
clears the valid bit unless the matching "do not clear" bit is set.  The
optional 60-second timeout (bit 3) is not implemented: flags stay valid
until a boot uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .set_in_progress import SetInProgress
from ..core.bmc import CC, IpmiError
from .chassis import RestartCause
from ..core.nonvolatile import MemoryStore, NonVolatile

#: Parameter version in byte 1 of every Get System Boot Options response.
PARAMETER_VERSION = 0x01
STORE_NAMESPACE = "bootopts"

#: Command-specific completion codes (sections 28.12/28.13).
CC_PARAMETER_NOT_SUPPORTED = 0x80
CC_READ_ONLY = 0x82


class Param(IntEnum):
    SET_IN_PROGRESS = 0
    SERVICE_PARTITION_SELECTOR = 1
    SERVICE_PARTITION_SCAN = 2
    VALID_BIT_CLEARING = 3
    BOOT_INFO_ACKNOWLEDGE = 4
    BOOT_FLAGS = 5
    BOOT_INITIATOR_INFO = 6
    BOOT_INITIATOR_MAILBOX = 7


#: Data bytes each settable parameter takes in Set System Boot Options.
PARAM_SIZES = {
    Param.SERVICE_PARTITION_SELECTOR: 1,
    Param.SERVICE_PARTITION_SCAN: 1,
    Param.VALID_BIT_CLEARING: 1,
    Param.BOOT_INFO_ACKNOWLEDGE: 2,
    Param.BOOT_FLAGS: 5,
    Param.BOOT_INITIATOR_INFO: 9,
}
#: Mailbox: 16-byte blocks selected by the set selector; the spec asks for at
#: least 5 blocks (80 bytes) when the mailbox is supported.
MAILBOX_BLOCKS = 5
MAILBOX_BLOCK = 16

#: Boot flags data 1.
FLAG_VALID = 0x80
FLAG_PERSISTENT = 0x40
FLAG_EFI = 0x20


class BootDevice(IntEnum):
    """Boot flags data 2 [5:2], the boot device selector."""

    NONE = 0x0
    PXE = 0x1
    DISK = 0x2
    DISK_SAFE_MODE = 0x3
    DIAGNOSTIC_PARTITION = 0x4
    CDROM = 0x5
    BIOS_SETUP = 0x6
    REMOTE_FLOPPY = 0x7
    REMOTE_CDROM = 0x8
    REMOTE_PRIMARY_MEDIA = 0x9
    REMOTE_DISK = 0xB
    FLOPPY = 0xF


#: Parameter 3 bits: "do not clear the valid bit on a restart caused by ...".
_KEEP_VALID_BIT = {
    RestartCause.POWER_BUTTON: 0x01,
    RestartCause.RTC_WAKEUP: 0x01,
    RestartCause.RESET_BUTTON: 0x02,
    RestartCause.SOFT_RESET: 0x02,
    RestartCause.WATCHDOG: 0x04,
    RestartCause.PEF_RESET: 0x10,
    RestartCause.PEF_POWER_CYCLE: 0x10,
}


@dataclass(frozen=True)
class BootRequest:
    """What the BIOS (the machine layer) is asked to boot."""

    device: BootDevice
    #: True: "options apply to all future boots"; False: the next boot only.
    persistent: bool
    efi: bool = False


class BootOptions:
    """Boot option parameters 0-7 of one BMC."""

    def __init__(self, store: NonVolatile):
        self.store = store
        self.set_in_progress = SetInProgress(reserved_bits_refused=True)
        self.boot_info_ack = 0x00
        saved = store.items(STORE_NAMESPACE)
        self.service_partition_selector = int(saved.get("service_partition_selector", 0))
        self.service_partition_scan = int(saved.get("service_partition_scan", 0))
        self.valid_bit_clearing = int(saved.get("valid_bit_clearing", 0))
        self.boot_flags = bytes.fromhex(saved.get("boot_flags", "00" * 5))
        self.initiator_info = bytes.fromhex(saved.get("initiator_info", "00" * 9))
        self.mailbox = bytearray(bytes.fromhex(saved.get("mailbox", "00" * MAILBOX_BLOCKS * MAILBOX_BLOCK)))
        #: Parameters marked invalid/locked by Set System Boot Options byte 1 bit 7.
        self.locked: set[int] = set(saved.get("locked", []))

    # -- Get / Set System Boot Options ---------------------------------------------
    def get(self, param: int, set_selector: int, block_selector: int) -> bytes:
        """Parameter data for Get System Boot Options (after version and selector)."""
        if param == Param.SET_IN_PROGRESS:
            return self.set_in_progress.get()
        if param == Param.SERVICE_PARTITION_SELECTOR:
            return bytes([self.service_partition_selector])
        if param == Param.SERVICE_PARTITION_SCAN:
            return bytes([self.service_partition_scan])
        if param == Param.VALID_BIT_CLEARING:
            return bytes([self.valid_bit_clearing])
        if param == Param.BOOT_INFO_ACKNOWLEDGE:
            return bytes([0x00, self.boot_info_ack])  # the write mask reads back as 00h
        if param == Param.BOOT_FLAGS:
            return self.boot_flags
        if param == Param.BOOT_INITIATOR_INFO:
            return self.initiator_info
        if param == Param.BOOT_INITIATOR_MAILBOX:
            if set_selector >= MAILBOX_BLOCKS:
                raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"mailbox block {set_selector} of {MAILBOX_BLOCKS}")
            start = set_selector * MAILBOX_BLOCK
            return bytes([set_selector]) + bytes(self.mailbox[start:start + MAILBOX_BLOCK])
        raise IpmiError(CC_PARAMETER_NOT_SUPPORTED, f"boot option parameter {param}")

    def set(self, param: int, data: bytes, *, lock: bool | None = None) -> None:
        """Apply Set System Boot Options; ``lock`` is byte 1 bit 7 (None: no data-less change)."""
        if param not in Param.__members__.values():
            raise IpmiError(CC_PARAMETER_NOT_SUPPORTED, f"boot option parameter {param}")
        if data:
            self._set_data(Param(param), bytes(data))
        if lock is not None and param != Param.SET_IN_PROGRESS:
            locked = param in self.locked
            if lock != locked:
                (self.locked.add if lock else self.locked.discard)(param)
                self.store.put(STORE_NAMESPACE, "locked", sorted(self.locked))

    def is_locked(self, param: int) -> bool:
        return param in self.locked

    def _set_data(self, param: Param, data: bytes) -> None:
        if param == Param.SET_IN_PROGRESS:
            self.set_in_progress.set(data)
            return
        if param == Param.BOOT_INITIATOR_MAILBOX:
            if not 2 <= len(data) <= 1 + MAILBOX_BLOCK:
                raise IpmiError(CC.REQUEST_LENGTH_INVALID, "mailbox: a block selector and 1..16 bytes")
            block = data[0]
            if block >= MAILBOX_BLOCKS:
                raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"mailbox block {block} of {MAILBOX_BLOCKS}")
            start = block * MAILBOX_BLOCK
            self.mailbox[start:start + len(data) - 1] = data[1:]
            self.store.put(STORE_NAMESPACE, "mailbox", self.mailbox.hex())
            return
        if len(data) != PARAM_SIZES[param]:
            raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"parameter {int(param)} takes {PARAM_SIZES[param]} bytes")
        if param == Param.BOOT_INFO_ACKNOWLEDGE:
            mask, value = data
            self.boot_info_ack = (self.boot_info_ack & ~mask | value & mask) & 0xFF
            return
        if param == Param.BOOT_FLAGS:
            self._put("boot_flags", bytes(data))
        elif param == Param.BOOT_INITIATOR_INFO:
            self._put("initiator_info", bytes(data))
        elif param == Param.SERVICE_PARTITION_SELECTOR:
            self._put("service_partition_selector", data[0])
        elif param == Param.SERVICE_PARTITION_SCAN:
            self._put("service_partition_scan", data[0] & 0x03)
        elif param == Param.VALID_BIT_CLEARING:
            self._put("valid_bit_clearing", data[0] & 0x1F)

    def _put(self, name: str, value: Any) -> None:
        setattr(self, name, value)
        self.store.put(STORE_NAMESPACE, name, value.hex() if isinstance(value, bytes) else value)

    # -- the boot itself (the machine layer playing the BIOS) ----------------------
    def boot_request(self, cause: RestartCause = RestartCause.UNKNOWN) -> BootRequest | None:
        """What this boot should use; None for the BIOS's own order.

        A restart the BMC did not ask for clears the valid bit first (unless
        parameter 3 says not to), so its flags are not used.
        """
        flags = self.boot_flags
        if not flags[0] & FLAG_VALID:
            return None
        keep_bit = _KEEP_VALID_BIT.get(RestartCause(cause))
        if keep_bit is not None and not self.valid_bit_clearing & keep_bit:
            self._clear_valid_bit()
            return None
        device = (flags[1] >> 2) & 0x0F
        try:
            selector = BootDevice(device)
        except ValueError:  # a reserved selector: boot as usual
            return None
        return BootRequest(selector, persistent=bool(flags[0] & FLAG_PERSISTENT), efi=bool(flags[0] & FLAG_EFI))

    def boot_used(self) -> None:
        """The boot took the flags: next-boot-only flags are spent (valid bit cleared)."""
        if self.boot_flags[0] & FLAG_VALID and not self.boot_flags[0] & FLAG_PERSISTENT:
            self._clear_valid_bit()

    def _clear_valid_bit(self) -> None:
        self._put("boot_flags", bytes([self.boot_flags[0] & ~FLAG_VALID & 0xFF]) + self.boot_flags[1:])

    # -- resets ------------------------------------------------------------------
    def system_reset(self) -> None:
        """System reset or power down: an open 'set in progress' goes back to 'set complete'."""
        self.set_in_progress.reset()

    def cold_reset(self) -> None:
        """BMC reset: set in progress and boot info acknowledge start over."""
        self.set_in_progress.reset()
        self.boot_info_ack = 0x00


def create_part(bmc: Any, config: Any) -> BootOptions:
    """The part for ``bmc.parts["bootopts"]``."""
    return BootOptions(bmc.store if bmc.store is not None else MemoryStore())
