"""QEMU 7.2 multi-process (mpqemu) protocol, remote (device) side.

QEMU's ``x-pci-proxy-dev`` forwards config and BAR accesses of one PCI
function over an AF_UNIX stream socket and waits for ever for each reply
(docs: shared/protocols/i2o-mpqemu.md, part A).  This module holds a sans-I/O
codec (`MpqemuCodec`, `encode_ret`) and a thin asyncio adapter
(`MpqemuServer`) that feeds it and answers every request QEMU waits on.

Wire format (x86_64, little endian): a 16-byte header ``int32 cmd; 4 bytes
padding; u64 size`` followed by ``size`` payload bytes, file descriptors as
SCM_RIGHTS on the same sendmsg.  The remote only ever sends RET.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import socket
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

log = logging.getLogger(__name__)

HEADER = struct.Struct("<iIQ")  # cmd, padding, size
PCI_CONF = struct.Struct("<IIi")  # addr, val, len (PciConfDataMsg, 12 bytes)
BAR_ACCESS = struct.Struct("<QQI?3x")  # addr, val, size, memory (BarAccessMsg, 24 bytes)
SYNC_SYSMEM = struct.Struct("<8Q8Q8q")  # gpas[8], sizes[8], offsets[8] (SyncSysmemMsg, 192 bytes)
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
    return HEADER.pack(Cmd.RET, 0, 8) + struct.pack("<Q", value & ALL_ONES)


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


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
    message that begins in that chunk.  fds with no such message are closed.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._base = 0  # stream offset of self._buf[0]
        self._received = 0  # stream offset after the last received byte
        self._skip = 0  # payload bytes of an oversized message still to discard
        self._batches: list[_FdBatch] = []

    def receive_data(self, data: bytes, fds: list[int] | None = None) -> list[Event]:
        """Feed one received chunk and the fds that came with it."""
        if not fds and not self._buf and not self._skip and not self._batches:
            event = _bar_access(data)
            if event is not None:  # the common case: exactly one BAR access
                self._base += len(data)
                self._received += len(data)
                return [event]
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
            _close(batch.fds)
        self._batches.clear()

    def _one(self) -> Event | None:
        cmd, _pad, size = HEADER.unpack_from(self._buf)
        start = self._base
        reply = cmd in REPLY_CMDS
        if size > MAX_PAYLOAD:
            _close(self._claim(start, HEADER.size + size))
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
            _close(fds)
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
                _close(batch.fds)
            else:
                keep.append(batch)
        self._batches = keep


_CMDS = {int(c): c for c in Cmd}
_BAR_MESSAGE_SIZE = HEADER.size + BAR_ACCESS.size


def _bar_access(data: bytes) -> BarRead | BarWrite | None:
    """Decode a chunk that is exactly one well-formed BAR access, else None.

    Each guest load or store arrives as such a chunk, so this skips the
    general reassembly path for nearly every message of a running guest.
    """
    if len(data) != _BAR_MESSAGE_SIZE:
        return None
    cmd, _pad, size = HEADER.unpack_from(data)
    if size != BAR_ACCESS.size or cmd not in (Cmd.BAR_READ, Cmd.BAR_WRITE):
        return None
    return _bar_event(cmd, data, HEADER.size)


def _bar_event(cmd: int, buffer: bytes, offset: int = 0) -> BarRead | BarWrite:
    """The BAR_READ/BAR_WRITE event of a BarAccessMsg at ``offset``."""
    addr, val, bsize, memory = BAR_ACCESS.unpack_from(buffer, offset)
    return BarWrite(addr, val, bsize, memory) if cmd == Cmd.BAR_WRITE else BarRead(addr, bsize, memory)


def _event_fields(event: Event, decode=None) -> dict:
    """JSON-able fields of one decoded message, for the trace.

    ``decode`` (PciFunction.decode) adds the BAR index and offset of a BAR
    access when the BAR decodes it.
    """
    kind = type(event)
    if kind is BarRead or kind is BarWrite:
        f = {"cmd": "BAR_WRITE" if kind is BarWrite else "BAR_READ", "addr": event.addr, "size": event.size,
             "memory": event.memory}
        if kind is BarWrite:
            f["val"] = event.val
        hit = decode(event.addr, event.memory) if decode is not None else None
        if hit is not None:
            f["bar"], f["offset"] = hit
        return f
    if kind is CfgRead:
        return {"cmd": "PCI_CFGREAD", "addr": event.addr, "size": event.len}
    if kind is CfgWrite:
        return {"cmd": "PCI_CFGWRITE", "addr": event.addr, "val": event.val, "size": event.len}
    if kind is SyncSysmem:
        return {"cmd": "SYNC_SYSMEM", "regions": [[r.gpa, r.size, r.offset] for r in event.regions]}
    if kind is SetIrqfd:
        return {"cmd": "SET_IRQFD"}
    if kind is DeviceReset:
        return {"cmd": "DEVICE_RESET"}
    return {"cmd": "ERROR", "reason": event.reason, "raw_cmd": event.cmd}


def _ret_fields(out: bytes) -> dict:
    """Trace fields of the RET messages written: ``ret`` (one) or ``rets``."""
    size = HEADER.size + 8
    values = [struct.unpack_from("<Q", out, i + HEADER.size)[0] for i in range(0, len(out) - size + 1, size)]
    return {"cmd": "RET", "ret": values[0]} if len(values) == 1 else {"cmd": "RET", "rets": values}


class PciDevice(Protocol):
    """What the adapter calls; implemented by the PCI function model.

    Offsets and addresses are exactly as QEMU sends them (BAR addresses are
    absolute).  ``sync_sysmem`` fds stay open until the next sync or until
    the server closes; ``set_irqfd`` fds likewise until replaced or closed.
    """

    def config_read(self, addr: int, length: int) -> int: ...

    def config_write(self, addr: int, val: int, length: int) -> None: ...

    def bar_read(self, addr: int, size: int, memory: bool) -> int: ...

    def bar_write(self, addr: int, val: int, size: int, memory: bool) -> None: ...

    def sync_sysmem(self, regions: list[MemoryRegion], fds: list[int]) -> None: ...

    def set_irqfd(self, irqfd: int, resamplefd: int) -> None: ...

    def reset(self) -> None: ...


class MpqemuServer:
    """Serve one proxied function on a connected AF_UNIX stream socket.

    Thin: it moves bytes and fds between the socket and the codec, calls the
    device, and always answers what QEMU waits on (all-ones on any failure,
    logged), because a missing reply freezes the guest's vCPU for ever.

    Every guest register access is one round trip (i2o-mpqemu.md A9), so the
    server is a blocking loop in a thread of its own: receive, let the
    device answer inline, send the RET; no event-loop pass in between.  The
    device is only ever called from that thread.  The same loop watches the
    INTx resample eventfd (the guest's EOI under KVM) and calls the device's
    ``resample()`` so it can re-signal a level that is still high (A8).
    """

    RECV_SIZE = 4096

    def __init__(self, sock: socket.socket, device: PciDevice, *, trace=None, name: str = "mpqemu") -> None:
        self.sock = sock
        self.device = device
        #: vhw.trace.Trace recording each chunk in and each reply out (channel
        #: "mpqemu", field ``dev`` = ``name``); None or a disabled trace: nothing.
        self.trace = trace
        self.name = name
        self.codec = MpqemuCodec()
        self._ram_fds: list[int] = []
        self._irq_fds: list[int] = []

    async def serve(self) -> None:
        """Run :meth:`run` in a thread until QEMU closes its end."""
        await asyncio.to_thread(self.run)

    def run(self) -> None:
        """Serve until QEMU closes its end (or the socket is shut down), then
        release every fd held.  Blocking: call it from a dedicated thread."""
        self.sock.setblocking(True)
        sock_fd = self.sock.fileno()
        poller = select.poll()
        poller.register(sock_fd, select.POLLIN)
        watched: int | None = None  # the resample fd being polled
        trace = self.trace
        tracing = trace is not None and trace.enabled  # decided once: the BAR path stays lean
        if tracing:
            trace.record("mpqemu", "event", dev=self.name, what="connected")
        try:
            while True:
                if self._irq_fds and watched != self._irq_fds[1]:
                    if watched is not None:
                        poller.unregister(watched)
                    watched = self._irq_fds[1]
                    poller.register(watched, select.POLLIN)
                ready = {fd for fd, _ in poller.poll()}
                if watched in ready:
                    self._resample(watched)
                if sock_fd not in ready:
                    continue
                data, fds, _flags, _addr = socket.recv_fds(self.sock, self.RECV_SIZE, MAX_FDS)
                if not data:
                    _close(fds)
                    return
                out = bytearray()
                events = self.codec.receive_data(data, fds)
                if tracing:
                    trace.record("mpqemu", "in", data, dev=self.name, **self._trace_fields(events, fds))
                for event in events:
                    reply = self.answer(event)
                    if reply is not None:
                        out += encode_ret(reply)
                if out:
                    self.sock.sendall(out)
                    if tracing:
                        trace.record("mpqemu", "out", out, dev=self.name, **_ret_fields(out))
        except OSError as exc:
            log.warning("mpqemu: connection ended: %s", exc)
        finally:
            if tracing:
                trace.record("mpqemu", "event", dev=self.name, what="closed")
            self.close()

    def _trace_fields(self, events: list, fds: list[int]) -> dict:
        """Trace fields of a received chunk: one message's flat, several as ``msgs``."""
        decode = getattr(getattr(self.device, "function", None), "decode", None)
        found = [_event_fields(e, decode) for e in events]
        fields = found[0] if len(found) == 1 else {"msgs": found}
        if fds:
            fields["fds"] = len(fds)
        return fields

    def _resample(self, fd: int) -> None:
        try:
            os.eventfd_read(fd)
        except OSError:
            return
        hook = getattr(self.device, "resample", None)
        if hook is not None:
            try:
                hook()
            except Exception:
                log.exception("mpqemu: resample handler failed")

    def close(self) -> None:
        """Close the fds the server holds (the socket stays with its owner)."""
        self.codec.close()
        _close(self._ram_fds + self._irq_fds)
        self._ram_fds, self._irq_fds = [], []

    def answer(self, event: Event) -> int | None:
        """Apply one event to the device; the RET value, or None if no reply."""
        try:
            value = self._dispatch(event)
        except Exception:
            log.exception("mpqemu: handler failed for %r", event)
            return ALL_ONES if needs_reply(event) else None
        if not needs_reply(event):
            return None
        if isinstance(event, Error):
            return ALL_ONES
        return int(value or 0) & ALL_ONES if isinstance(event, (CfgRead, BarRead)) else 0

    def _dispatch(self, event: Event) -> int | None:
        dev = self.device
        kind = type(event)
        if kind is BarRead:
            return dev.bar_read(event.addr, event.size, event.memory)
        if kind is BarWrite:
            return dev.bar_write(event.addr, event.val, event.size, event.memory)
        if kind is CfgRead:
            return dev.config_read(event.addr, event.len)
        if kind is CfgWrite:
            return dev.config_write(event.addr, event.val, event.len)
        if kind is DeviceReset:
            return dev.reset()
        if kind is SyncSysmem:
            try:
                dev.sync_sysmem(event.regions, event.fds)
            except BaseException:
                _close(event.fds)
                raise
            _close(self._ram_fds)
            self._ram_fds = list(event.fds)
            return None
        if kind is SetIrqfd:
            fds = [event.irqfd, event.resamplefd]
            try:
                dev.set_irqfd(event.irqfd, event.resamplefd)
            except BaseException:
                _close(fds)
                raise
            _close(self._irq_fds)
            self._irq_fds = fds
            return None
        log.warning("mpqemu: dropped message: %s (cmd %d)", event.reason, event.cmd)
        return None
