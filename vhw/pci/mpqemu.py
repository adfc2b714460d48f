"""QEMU 7.2 multi-process (mpqemu) protocol, remote (device) side: the codec.

QEMU's ``x-pci-proxy-dev`` forwards config and BAR accesses of one PCI
function over an AF_UNIX stream socket and waits for ever for each reply
(docs: docs/i2o-mpqemu.md, part A).  This module is sans-I/O:
`MpqemuCodec` turns received bytes and fds into events, `encode_ret` makes
the only message the remote sends.  The socket loop that feeds it and
answers every request QEMU waits on is :mod:`vhw.pci.mpqemu_server`.

Wire format (x86_64, little endian): a 16-byte header ``int32 cmd; 4 bytes
padding; u64 size`` followed by ``size`` payload bytes, file descriptors as
SCM_RIGHTS on the same sendmsg.  The remote only ever sends RET.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

HEADER = struct.Struct("<iIQ")  # cmd, padding, size
PCI_CONF = struct.Struct("<IIi")  # addr, val, len (PciConfDataMsg, 12 bytes)
BAR_ACCESS = struct.Struct("<QQI?3x")  # addr, val, size, memory (BarAccessMsg, 24 bytes)
SYNC_SYSMEM = struct.Struct("<8Q8Q8q")  # gpas[8], sizes[8], offsets[8] (SyncSysmemMsg, 192 bytes)
#: One whole BAR_READ/BAR_WRITE message: header then BarAccessMsg (40 bytes).
BAR_MESSAGE = struct.Struct("<iIQQQI?3x")
#: One whole RET message: header then the u64 value (24 bytes).
RET_MESSAGE = struct.Struct("<iIQQ")
MAX_PAYLOAD = 192  # size of the payload union; QEMU rejects larger sizes
MAX_FDS = 8  # REMOTE_MAX_FDS
ALL_ONES = (1 << 64) - 1


class Cmd(IntEnum):
    """Message kinds (MPQemuCmd in include/hw/remote/mpqemu-link.h)."""

    SYNC_SYSMEM = 0
    RET = 1
    PCI_CFGWRITE = 2
    PCI_CFGREAD = 3
    BAR_WRITE = 4
    BAR_READ = 5
    SET_IRQFD = 6
    DEVICE_RESET = 7


#: Requests for which the proxy blocks until a RET arrives.
REPLY_CMDS = frozenset({Cmd.PCI_CFGWRITE, Cmd.PCI_CFGREAD, Cmd.BAR_WRITE, Cmd.BAR_READ, Cmd.DEVICE_RESET})
_PAYLOAD_SIZE = {
    Cmd.SYNC_SYSMEM: SYNC_SYSMEM.size,
    Cmd.PCI_CFGWRITE: PCI_CONF.size,
    Cmd.PCI_CFGREAD: PCI_CONF.size,
    Cmd.BAR_WRITE: BAR_ACCESS.size,
    Cmd.BAR_READ: BAR_ACCESS.size,
    Cmd.SET_IRQFD: 0,
    Cmd.DEVICE_RESET: 0,
}


@dataclass(frozen=True)
class MemoryRegion:
    """One guest RAM section: map ``size`` bytes of its fd at ``offset`` to ``gpa``."""

    gpa: int
    size: int
    offset: int


@dataclass(frozen=True)
class SyncSysmem:
    """A complete new guest RAM map; ``fds[i]`` backs ``regions[i]``. No reply."""

    regions: list[MemoryRegion]
    fds: list[int]


@dataclass(frozen=True)
class CfgWrite:
    addr: int
    val: int
    len: int


@dataclass(frozen=True)
class CfgRead:
    addr: int
    len: int


@dataclass(slots=True)  # not frozen: one per guest register access
class BarWrite:
    """``addr`` is absolute (guest-physical, or an I/O port when not ``memory``)."""

    addr: int
    val: int
    size: int
    memory: bool


@dataclass(slots=True)  # not frozen: one per guest register access
class BarRead:
    addr: int
    size: int
    memory: bool


@dataclass(frozen=True)
class SetIrqfd:
    """INTx eventfd and its resample eventfd. No reply."""

    irqfd: int
    resamplefd: int


@dataclass(frozen=True)
class DeviceReset:
    pass


@dataclass(frozen=True)
class Error:
    """A dropped message. ``reply`` says QEMU waits on it: answer all-ones.

    Its fds have already been closed by the codec.
    """

    reason: str
    cmd: int
    reply: bool


Event = SyncSysmem | CfgWrite | CfgRead | BarWrite | BarRead | SetIrqfd | DeviceReset | Error


def needs_reply(event: Event) -> bool:
    """True if QEMU is blocked until this event is answered with a RET."""
    if isinstance(event, Error):
        return event.reply
    return isinstance(event, (CfgWrite, CfgRead, BarWrite, BarRead, DeviceReset))


def encode_ret(value: int) -> bytes:
    """A RET message carrying ``value`` as u64 (wrapped to 64 bits, never raises)."""
    return RET_MESSAGE.pack(Cmd.RET, 0, 8, value & ALL_ONES)


@dataclass
class _FdBatch:
    """fds received with the stream bytes [start, end)."""

    start: int
    end: int
    fds: list[int] = field(default_factory=list)


class MpqemuCodec:
    """Bytes and fds in, events out; never raises, never keeps an unowned fd.

    Framing: the fds of a sendmsg arrive with the recvmsg that reads the
    start of that message, and Linux ends such a read right after the message
    that carried them, so fds received with a chunk belong to the *last*
    message that begins in that chunk.  fds with no such message, and those
    of a malformed one, are handed to ``close_fd`` (the transport passes
    ``os.close``): an fd leaves the codec either in an event or there.
    """

    def __init__(self, close_fd: Callable[[int], None]) -> None:
        self._close_fd = close_fd
        self._buf = bytearray()
        self._base = 0  # stream offset of self._buf[0]
        self._received = 0  # stream offset after the last received byte
        self._skip = 0  # payload bytes of an oversized message still to discard
        self._batches: list[_FdBatch] = []

    def bar_access(self, data: bytes | bytearray, length: int) -> tuple[int, int, int, int, bool] | None:
        """Take ``data[:length]`` (received without fds) if it is exactly one
        well-formed BAR access and nothing is pending: ``(cmd, addr, val,
        size, memory)`` with ``cmd`` BAR_READ or BAR_WRITE; else None, and
        the chunk is not taken (feed it to :meth:`receive_data`).

        Each guest load or store arrives as such a chunk, so this is the
        path of nearly every message of a running guest: no event object,
        no reassembly.
        """
        if length != _BAR_MESSAGE_SIZE or self._buf or self._skip or self._batches:
            return None
        cmd, _pad, size, addr, val, bsize, memory = BAR_MESSAGE.unpack_from(data)
        if size != BAR_ACCESS.size or (cmd != Cmd.BAR_READ and cmd != Cmd.BAR_WRITE):
            return None
        self._base += length
        self._received += length
        return cmd, addr, val, bsize, memory

    def receive_data(self, data: bytes, fds: list[int] | None = None) -> list[Event]:
        """Feed one received chunk and the fds that came with it."""
        if not fds:
            access = self.bar_access(data, len(data))
            if access is not None:  # the common case: exactly one BAR access
                cmd, addr, val, bsize, memory = access
                return [BarWrite(addr, val, bsize, memory) if cmd == Cmd.BAR_WRITE
                        else BarRead(addr, bsize, memory)]
        fds = list(fds or ())
        if fds:
            self._batches.append(_FdBatch(self._received, self._received + len(data), fds))
        self._received += len(data)
        self._buf += data
        events: list[Event] = []
        while True:
            if self._skip:
                n = min(self._skip, len(self._buf))
                self._consume(n)
                self._skip -= n
                if self._skip:
                    break
            if len(self._buf) < HEADER.size:
                break
            event = self._one()
            if event is None:
                break
            events.append(event)
        self._settle_fds()
        return events

    def close(self) -> None:
        """Close fds still held for incomplete messages."""
        for batch in self._batches:
            self._close(batch.fds)
        self._batches.clear()

    def _close(self, fds: list[int]) -> None:
        for fd in fds:
            try:
                self._close_fd(fd)
            except OSError:
                pass

    def _one(self) -> Event | None:
        cmd, _pad, size = HEADER.unpack_from(self._buf)
        start = self._base
        reply = cmd in REPLY_CMDS
        if size > MAX_PAYLOAD:
            self._close(self._claim(start, HEADER.size + size))
            self._consume(HEADER.size)
            self._skip = size
            return Error(f"payload size {size} > {MAX_PAYLOAD}", cmd, reply)
        total = HEADER.size + size
        if len(self._buf) < total:
            return None
        payload = bytes(self._buf[HEADER.size:total])
        fds = self._claim(start, total)
        self._consume(total)
        event = self._decode(cmd, size, payload, fds)
        if isinstance(event, Error):
            self._close(fds)
        return event

    def _decode(self, cmd: int, size: int, payload: bytes, fds: list[int]) -> Event:
        kind = _CMDS.get(cmd)
        if kind is None:
            return Error(f"unknown cmd {cmd}", cmd, False)
        if kind is Cmd.RET:
            return Error("RET sent to the remote", cmd, False)
        reply = kind in REPLY_CMDS
        if size != _PAYLOAD_SIZE[kind]:
            return Error(f"{kind.name}: payload size {size}, expected {_PAYLOAD_SIZE[kind]}", cmd, reply)
        wanted = {Cmd.SYNC_SYSMEM: range(1, MAX_FDS + 1), Cmd.SET_IRQFD: range(2, 3)}.get(kind, range(0, 1))
        if len(fds) not in wanted:
            return Error(f"{kind.name}: {len(fds)} fds", cmd, reply)
        if kind is Cmd.SYNC_SYSMEM:
            v = SYNC_SYSMEM.unpack(payload)
            regions = [MemoryRegion(v[i], v[8 + i], v[16 + i]) for i in range(len(fds))]
            return SyncSysmem(regions, fds)
        if kind is Cmd.SET_IRQFD:
            return SetIrqfd(fds[0], fds[1])
        if kind is Cmd.DEVICE_RESET:
            return DeviceReset()
        if kind in (Cmd.PCI_CFGWRITE, Cmd.PCI_CFGREAD):
            addr, val, length = PCI_CONF.unpack(payload)
            return CfgWrite(addr, val, length) if kind is Cmd.PCI_CFGWRITE else CfgRead(addr, length)
        return _bar_event(kind, payload)

    def _claim(self, start: int, length: int) -> list[int]:
        """fds of the chunk in which the message at ``start`` is the last to begin."""
        for batch in self._batches:
            if batch.start <= start < batch.end and start + length >= batch.end:
                self._batches.remove(batch)
                return batch.fds
        return []

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._base += n

    def _settle_fds(self) -> None:
        """Close fds whose chunk has no message start left to claim them."""
        next_start = self._base + self._skip
        keep = []
        for batch in self._batches:
            if batch.end <= next_start:
                self._close(batch.fds)
            else:
                keep.append(batch)
        self._batches = keep


_CMDS = {int(c): c for c in Cmd}
_BAR_MESSAGE_SIZE = BAR_MESSAGE.size


def _bar_event(cmd: int, buffer: bytes) -> BarRead | BarWrite:
    """The BAR_READ/BAR_WRITE event of a BarAccessMsg payload."""
    addr, val, bsize, memory = BAR_ACCESS.unpack_from(buffer)
    return BarWrite(addr, val, bsize, memory) if cmd == Cmd.BAR_WRITE else BarRead(addr, bsize, memory)


#: What a trace asks of the PCI function: (BAR index, offset) of an address, or None.
BarDecoder = Callable[[int, bool], tuple[int, int] | None]


def event_fields(event: Event, decode: BarDecoder | None = None) -> dict[str, Any]:
    """JSON-able fields of one decoded message, for the trace.

    ``decode`` (PciFunction.decode) adds the BAR index and offset of a BAR
    access when the BAR decodes it.
    """
    match event:
        case BarRead() | BarWrite():
            fields: dict[str, Any] = {"cmd": "BAR_WRITE" if isinstance(event, BarWrite) else "BAR_READ",
                                      "addr": event.addr, "size": event.size, "memory": event.memory}
            if isinstance(event, BarWrite):
                fields["val"] = event.val
            hit = decode(event.addr, event.memory) if decode is not None else None
            if hit is not None:
                fields["bar"], fields["offset"] = hit
            return fields
        case CfgRead():
            return {"cmd": "PCI_CFGREAD", "addr": event.addr, "size": event.len}
        case CfgWrite():
            return {"cmd": "PCI_CFGWRITE", "addr": event.addr, "val": event.val, "size": event.len}
        case SyncSysmem():
            return {"cmd": "SYNC_SYSMEM", "regions": [[r.gpa, r.size, r.offset] for r in event.regions]}
        case SetIrqfd():
            return {"cmd": "SET_IRQFD"}
        case DeviceReset():
            return {"cmd": "DEVICE_RESET"}
        case Error():
            return {"cmd": "ERROR", "reason": event.reason, "raw_cmd": event.cmd}


def ret_fields(out: bytes) -> dict[str, Any]:
    """Trace fields of the RET messages written: ``ret`` (one) or ``rets``."""
    size = HEADER.size + 8
    values = [struct.unpack_from("<Q", out, i + HEADER.size)[0] for i in range(0, len(out) - size + 1, size)]
    return {"cmd": "RET", "ret": values[0]} if len(values) == 1 else {"cmd": "RET", "rets": values}
