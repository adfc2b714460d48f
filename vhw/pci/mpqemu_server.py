"""The mpqemu transport: one PCI function served to QEMU's x-pci-proxy-dev.

:class:`MpqemuServer` moves bytes and fds between an AF_UNIX stream socket
and the sans-I/O codec (:mod:`vhw.pci.mpqemu`), calls the device, and
always answers what QEMU waits on (docs: docs/i2o-mpqemu.md,
part A).  It owns the fds QEMU hands over: guest RAM and the INTx eventfds.
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import select
import socket
from typing import TYPE_CHECKING, Any, Protocol

from .mpqemu import (
    ALL_ONES,
    MAX_FDS,
    RET_MESSAGE,
    BarRead,
    BarWrite,
    CfgRead,
    CfgWrite,
    Cmd,
    DeviceReset,
    Error,
    Event,
    MemoryRegion,
    MpqemuCodec,
    SetIrqfd,
    SyncSysmem,
    encode_ret,
    event_fields,
    needs_reply,
    ret_fields,
)

if TYPE_CHECKING:
    from ..trace import Trace

log = logging.getLogger(__name__)


#: Room for the most fds one message may carry (SCM_RIGHTS, A1).
_ANCILLARY_SIZE = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)


def _received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The fds of SCM_RIGHTS control messages (as socket.recv_fds reads them)."""
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return list(fds)


def close_fds(fds: list[int]) -> None:
    """Close each fd, ignoring ones already gone."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


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
    ``resample()`` so it can re-signal a level that is still high (A8); a
    device with an ``irq_line_level`` attribute has it watched only while
    that level is high.
    """

    RECV_SIZE = 4096

    def __init__(self, sock: socket.socket, device: PciDevice, *, trace: Trace | None = None,
                 name: str = "mpqemu") -> None:
        self.sock = sock
        self.device = device
        #: vhw.trace.Trace recording each chunk in and each reply out (channel
        #: "mpqemu", field ``dev`` = ``name``); None or a disabled trace: nothing.
        self.trace = trace
        self.name = name
        self.codec = MpqemuCodec(os.close)
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
        # Decided once: the BAR path stays lean.
        trace = self.trace if self.trace is not None and self.trace.enabled else None
        if trace is not None:
            trace.record("mpqemu", "event", dev=self.name, what="connected")
        buf = bytearray(self.RECV_SIZE)
        # A resample matters only while the line is high (the device then
        # re-signals); while it is low the loop blocks in recvmsg alone, one
        # syscall fewer per register access.  A resample that came while the
        # line was low is taken once it is high again: a second signal of a
        # level already asserted changes nothing.
        if hasattr(type(self.device), "irq_line_level"):
            device = self.device

            def line_high() -> bool:
                return bool(device.irq_line_level)  # type: ignore[attr-defined]
        else:
            def line_high() -> bool:
                return True
        # One BAR access per chunk is the common case: answered right here
        # (bar_fast) without event objects; everything else, and every chunk
        # while tracing, goes through the codec's events and answer().
        bar_fast = self._bar_fast if trace is None else None
        try:
            while True:
                if self._irq_fds and watched != self._irq_fds[1]:
                    if watched is not None:
                        poller.unregister(watched)
                    watched = self._irq_fds[1]
                    poller.register(watched, select.POLLIN)
                if watched is not None and line_high():
                    ready = poller.poll()
                    if len(ready) != 1 or ready[0][0] != sock_fd:
                        which = {fd for fd, _ in ready}
                        if watched in which:
                            self._resample(watched)
                        if sock_fd not in which:
                            continue
                n, ancdata, _flags, _addr = self.sock.recvmsg_into((buf,), _ANCILLARY_SIZE)
                if not ancdata:
                    if not n:
                        return
                    if bar_fast is not None and bar_fast(buf, n):
                        continue
                fds = _received_fds(ancdata)
                if not n:
                    close_fds(fds)
                    return
                data = bytes(buf[:n])
                out = bytearray()
                events = self.codec.receive_data(data, fds)
                if trace is not None:
                    trace.record("mpqemu", "in", data, dev=self.name, **self._trace_fields(events, fds))
                for event in events:
                    reply = self.answer(event)
                    if reply is not None:
                        out += encode_ret(reply)
                if out:
                    self.sock.sendall(out)
                    if trace is not None:
                        sent = bytes(out)
                        trace.record("mpqemu", "out", sent, dev=self.name, **ret_fields(sent))
        except OSError as exc:
            log.warning("mpqemu: connection ended: %s", exc)
        finally:
            if trace is not None:
                trace.record("mpqemu", "event", dev=self.name, what="closed")
            self.close()

    def _bar_fast(self, buf: bytearray, n: int) -> bool:
        """Answer a chunk that is exactly one BAR access; False if it is not
        one (the caller then takes the general path).

        Same answers as :meth:`answer` gives a BarRead/BarWrite event: the
        device's value wrapped to 64 bits, 0 for a write, all-ones (logged)
        when the device raises.
        """
        access = self.codec.bar_access(buf, n)
        if access is None:
            return False
        cmd, addr, val, size, memory = access
        try:
            if cmd == Cmd.BAR_READ:
                value = int(self.device.bar_read(addr, size, memory) or 0) & ALL_ONES
            else:
                self.device.bar_write(addr, val, size, memory)
                value = 0
        except Exception:
            log.exception("mpqemu: handler failed for %s addr=%#x size=%d",
                          "BAR_READ" if cmd == Cmd.BAR_READ else "BAR_WRITE", addr, size)
            value = ALL_ONES
        self.sock.sendall(RET_MESSAGE.pack(Cmd.RET, 0, 8, value))
        return True

    def _trace_fields(self, events: list[Event], fds: list[int]) -> dict[str, Any]:
        """Trace fields of a received chunk: one message's flat, several as ``msgs``."""
        decode = getattr(getattr(self.device, "function", None), "decode", None)
        found = [event_fields(e, decode) for e in events]
        fields: dict[str, Any] = found[0] if len(found) == 1 else {"msgs": found}
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
        close_fds(self._ram_fds + self._irq_fds)
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
        """Call the device for one event; the value a read returns, else None."""
        dev = self.device
        match event:
            case BarRead():
                return dev.bar_read(event.addr, event.size, event.memory)
            case BarWrite():
                dev.bar_write(event.addr, event.val, event.size, event.memory)
            case CfgRead():
                return dev.config_read(event.addr, event.len)
            case CfgWrite():
                dev.config_write(event.addr, event.val, event.len)
            case DeviceReset():
                dev.reset()
            case SyncSysmem():
                try:
                    dev.sync_sysmem(event.regions, event.fds)
                except BaseException:
                    close_fds(event.fds)
                    raise
                close_fds(self._ram_fds)
                self._ram_fds = list(event.fds)
            case SetIrqfd():
                fds = [event.irqfd, event.resamplefd]
                try:
                    dev.set_irqfd(event.irqfd, event.resamplefd)
                except BaseException:
                    close_fds(fds)
                    raise
                close_fds(self._irq_fds)
                self._irq_fds = fds
            case Error():
                log.warning("mpqemu: dropped message: %s (cmd %d)", event.reason, event.cmd)
        return None
