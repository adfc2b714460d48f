"""System Info Parameters (IPMI 2.0 sections 22.14a/b, table 22-16a).

Parameters 1..4 are strings that BIOS and the OS write into the BMC in
16-byte blocks selected by the set selector: block 0 starts with an encoding
byte and the string length, then 14 characters; blocks 1.. carry 16 more
characters each.  The BMC only stores blocks; it never interprets the
string, so what a tool wrote is exactly what the next tool reads.

Volatility (table 22-16a, "non-volatile unless otherwise noted"): Set In
Progress and the OS name (4) are volatile -- the OS name is cleared at every
system reset or power down, the running OS writes it again.  System firmware
version, system name and primary OS name (1-3) are non-volatile: what
software writes is kept in the store (namespace "sysinfo") and wins over the
description's initial strings on the next start.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ..core.bmc import IpmiError
from .set_in_progress import SetInProgress

#: Parameter revision: MSN present, LSN oldest compatible ("11h for
#: parameters in this specification").
REVISION = 0x11
BLOCK = 16


class Param(IntEnum):
    SET_IN_PROGRESS = 0
    SYSTEM_FIRMWARE_VERSION = 1
    SYSTEM_NAME = 2
    PRIMARY_OS_NAME = 3
    #: Volatile: cleared when the system resets or powers down.
    OS_NAME = 4


STRING_PARAMS = (Param.SYSTEM_FIRMWARE_VERSION, Param.SYSTEM_NAME, Param.PRIMARY_OS_NAME, Param.OS_NAME)
NON_VOLATILE_PARAMS = (Param.SYSTEM_FIRMWARE_VERSION, Param.SYSTEM_NAME, Param.PRIMARY_OS_NAME)
STORE_NAMESPACE = "sysinfo"


#: Completion codes of Set/Get System Info Parameters.
CC_PARAMETER_NOT_SUPPORTED = 0x80
CC_READ_ONLY = 0x82


def encode_string(text: str) -> bytes:
    """A string as its blocks: encoding (0 ASCII+Latin-1, 1 UTF-8), length, text."""
    try:
        raw, encoding = text.encode("latin-1"), 0
    except UnicodeEncodeError:
        raw, encoding = text.encode("utf-8"), 1
    body = bytes([encoding, len(raw)]) + raw
    padded = len(body) + (-len(body) % BLOCK)
    return body.ljust(max(BLOCK, padded), b"\x00")


class SystemInfo:
    """Stored System Info Parameters: blocks per string parameter."""

    def __init__(self, strings: dict[Param, str] | None = None, *, max_blocks: int = 16, store: Any = None):
        self.max_blocks = max_blocks
        self.store = store
        self.set_in_progress = SetInProgress(reserved_bits_refused=True)
        self._blocks: dict[Param, bytearray] = {p: bytearray(BLOCK) for p in STRING_PARAMS}
        for param, text in (strings or {}).items():
            raw = encode_string(text)
            if len(raw) > BLOCK * max_blocks:
                raise ValueError(f"{param.name} too long for {max_blocks} blocks")
            self._blocks[param] = bytearray(raw)
        saved = store.items(STORE_NAMESPACE) if store is not None else {}
        for param in NON_VOLATILE_PARAMS:
            if str(int(param)) in saved:
                self._blocks[param] = bytearray(bytes.fromhex(saved[str(int(param))]))

    def string(self, param: Param) -> str:
        """The stored string, decoded (for logs, tests and the machine layer)."""
        raw = bytes(self._blocks[param])
        encoding, length = raw[0], raw[1]
        text = raw[2 : 2 + length]
        return text.decode("utf-8" if encoding == 1 else "latin-1", errors="replace")

    def get(self, param: int, set_selector: int, block_selector: int) -> bytes:
        """Parameter data for Get System Info Parameters (after the revision)."""
        if param == Param.SET_IN_PROGRESS:
            return self.set_in_progress.get()
        if param not in STRING_PARAMS:
            raise IpmiError(CC_PARAMETER_NOT_SUPPORTED, f"parameter {param}")
        if set_selector >= self.max_blocks:
            raise IpmiError(0xC9, f"set selector {set_selector} beyond {self.max_blocks} blocks")
        blocks = self._blocks[Param(param)]
        start = set_selector * BLOCK
        chunk = bytes(blocks[start : start + BLOCK]).ljust(BLOCK, b"\x00")
        return bytes([set_selector]) + chunk

    def set(self, param: int, data: bytes) -> None:
        """Apply Set System Info Parameters parameter data."""
        if param == Param.SET_IN_PROGRESS:
            self.set_in_progress.set(data)
            return
        if param not in STRING_PARAMS:
            raise IpmiError(CC_PARAMETER_NOT_SUPPORTED, f"parameter {param}")
        if len(data) != 1 + BLOCK:
            raise IpmiError(0xC7, f"string parameter data is a set selector and {BLOCK} bytes")
        set_selector, chunk = data[0], data[1:]
        if set_selector >= self.max_blocks:
            raise IpmiError(0xC9, f"set selector {set_selector} beyond {self.max_blocks} blocks")
        if set_selector == 0 and (chunk[0] & 0xF0 or (chunk[0] & 0x0F) > 2):
            raise IpmiError(0xCC, f"string encoding {chunk[0]:#x} is reserved")
        blocks = self._blocks[Param(param)]
        end = (set_selector + 1) * BLOCK
        if len(blocks) < end:
            blocks.extend(bytes(end - len(blocks)))
        blocks[set_selector * BLOCK : end] = chunk
        if self.store is not None and param in NON_VOLATILE_PARAMS:
            self.store.put(STORE_NAMESPACE, str(int(param)), bytes(blocks).hex())

    def system_reset(self) -> None:
        """System reset or power down: the volatile OS name is forgotten."""
        self._blocks[Param.OS_NAME] = bytearray(BLOCK)
        self.set_in_progress.reset()
