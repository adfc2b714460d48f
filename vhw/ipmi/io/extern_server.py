"""The asyncio transport between QEMU's ``ipmi-bmc-extern`` and a Bmc.

Thin on purpose: framing lives in ``wire.extern.ExternCodec``, answers in
``core.bmc.Bmc.handle``, action routing and timers in ``io.runner.BmcRunner``.  What is
left is moving bytes, and doing it promptly: QEMU has one output buffer and
aborts if the guest's next request finds it still busy (docs/ipmi-extern.md §7),
so each request is answered from ``data_received`` before it returns, and
reading never waits on anything.  On the standard selector loop that happens
in a reader thread per connection, holding the loop lock (``loop_lock``),
which saves a turn of the event loop per request; the Bmc still has one
caller at a time.

One listener serves one VM (§1): QEMU connects as the client with
``reconnect=N``, a second simultaneous connection is hung up at once, as
``ipmi_sim`` does.  Every (re)connect announces VERSION 1, the interrupt
enable and the attention level, because QEMU forgets attention on disconnect
(§6, §11).

vhw never closes a connection outright: it *hangs up* (``_Connection.hang_up``),
shutting down its sending side and reading until QEMU closes.  QEMU 7.2's
ipmi-bmc-extern keeps a frame whose write failed in its output buffer across
the disconnect, and aborts the whole VM at the guest's next request ("IPMI KCS:
Got command when not finished with the previous command", §7); a write into a
socket whose peer still reads never fails.

Section numbers (§N) are those of docs/ipmi-extern.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import select
import socket
import stat
import threading
from collections.abc import Callable
from typing import Any

from ..core.actions import AttentionState
from ..core.bmc import Bmc, Context
from ..wire.extern import (
    DEFAULT_MAX_FRAME,
    PROTOCOL_VERSION,
    Capability,
    Control,
    ControlOp,
    ExternCodec,
    Request,
    encode_control,
    encode_response,
)
from .loop_lock import acquire_loop_lock, release_loop_lock
from .runner import BmcRunner, PowerPort
from ...trace import NULL_TRACE, Trace, extern_fields

log = logging.getLogger(__name__)

INTERFACES = ("kcs", "bt", "ssif")

#: QEMU's response input buffer, seq..checksum unescaped (§4); longer answers
#: reach the guest truncated with CC 0xC6.
QEMU_RESPONSE_LIMIT = 302

#: Seconds a hung-up peer has to close its end before the connection is aborted.
HANG_UP_GRACE = 5.0

#: Seconds the reader thread waits for a busy loop to go idle before handing
#: a request to the loop instead.
READER_PATIENCE = 0.001

_ATTENTION_CONTROL = {
    AttentionState.NONE: ControlOp.NOATTN,
    AttentionState.ATTN: ControlOp.ATTN,
    AttentionState.ATTN_IRQ: ControlOp.ATTN_IRQ,
}


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """``"HOST:PORT"`` -> ("tcp", (host, port)); ``"unix:PATH"`` -> ("unix", path).

    IPv6 hosts are written in brackets: ``[::1]:9002``.
    """
    if address.startswith("unix:"):
        path = address[len("unix:") :]
        if not path:
            raise ValueError(f"{address!r}: unix: needs a path")
        return "unix", path
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r}: expected HOST:PORT or unix:PATH")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port_number = int(port)
    if port_number > 0xFFFF:
        raise ValueError(f"{address!r}: port out of range")
    return "tcp", (host, port_number)


class _Connection(asyncio.Protocol):
    """One QEMU connection: its codec and what it has been told so far."""

    def __init__(self, server: ExternServer) -> None:
        self.server = server
        self.codec = ExternCodec(max_frame=server.max_frame, stats=server.stats)
        self.transport: asyncio.Transport | None = None
        #: Hung up (or refused): what QEMU still sends is read and dropped.
        self.refused = False
        self.closed = asyncio.get_running_loop().create_future()
        self.peer = "?"
        #: The requester context per LUN: made once, requests only read it.
        self._contexts: dict[int, Context] = {}
        #: Last attention / interrupt enable sent on this connection.
        self.attention: AttentionState | None = None
        self.interrupt_enabled: bool | None = None
        #: The reader thread answering requests (see ``_start_reader``), if any.
        self._reader: threading.Thread | None = None
        self._reader_wake: int | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        #: Chunks the reader handed to the loop, and those the loop has handled
        #: (each counter has one writer: the reader, the loop).
        self._handed_out = 0
        self._handed_back = 0

    # -- asyncio.Protocol ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are no asyncio.Transport subclasses
        self.peer = _describe_peer(transport)
        server = self.server
        if server.down:
            # Out of service: QEMU's connect succeeds and the line drops at
            # once, so QEMU keeps answering 0xD2 itself and keeps retrying.
            server._count("refused-while-down")
            self.hang_up()
            return
        if server._connection is not None:
            # ipmi_sim does the same: one VM per port (§1).
            server._count("refused")
            log.warning(
                "%s: refused a second connection from %s; %s is connected",
                server.name,
                self.peer,
                server._connection.peer,
            )
            self.hang_up()
            return
        server._connection = self
        server._count("connections")
        log.info("%s: QEMU connected from %s", server.name, self.peer)
        server._notify(server.on_connect)
        self.send_control(ControlOp.VERSION, PROTOCOL_VERSION)
        attention, enabled = server.runner.current_state()
        # Interrupt enable first, so that a pending ATTN_IRQ can interrupt.
        if enabled is not None:
            self.set_interrupt_enable(enabled)
        self.set_attention(attention)
        if server.reader_thread:
            self._start_reader()

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        events = self.codec.receive_data(data)
        server = self.server
        if server.trace.enabled:  # before the answers, which _write records
            server.trace.record(server.trace_channel, "in", data, **_trace_fields(events))
        for event in events:
            if isinstance(event, Request):
                self._answer(event)
            elif isinstance(event, Control):
                self._on_control(event)

    def eof_received(self) -> bool:
        return False  # QEMU hung up (or answered our hang-up): close our end too

    def hang_up(self) -> None:
        """End the connection so that no write of QEMU's can fail.

        Our sending side is shut down (QEMU reads EOF, answers what is
        outstanding with 0xD2 and closes), but we go on reading and dropping
        until QEMU's close reaches us: a frame QEMU writes meanwhile lands in
        our buffer instead of failing with EPIPE and staying in QEMU's output
        buffer, where the guest's next request would abort QEMU (§7).
        """
        self.refused = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
            # A peer that never closes is cut off after a grace period.
            asyncio.get_running_loop().call_later(HANG_UP_GRACE, transport.abort)
        else:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        if server._connection is self:
            server._connection = None
            server._notify(server.on_disconnect)
            if self.codec.pending:
                log.debug("%s: %d bytes of an unfinished frame lost", server.name, self.codec.pending)
            log.info("%s: QEMU at %s disconnected%s", server.name, self.peer, f": {exc}" if exc else "")
        if self._reader is not None:
            asyncio.get_running_loop().create_task(self._stop_reader())
        elif not self.closed.done():
            self.closed.set_result(None)

    # -- the reader thread ---------------------------------------------------
    def _start_reader(self) -> None:
        """Answer QEMU's requests from a thread blocked on the socket, not from the loop.

        A request then costs one wake-up of that thread instead of a turn of
        the event loop (bench/inband.py measures the difference).  The thread
        reads a duplicate of the socket's descriptor while the transport's
        reading is paused, and handles what it read holding the loop lock
        (``loop_lock``), or hands it to the loop when the loop is busy: the
        Bmc still sees one caller at a time.  Writes go
        through the transport as before.  At EOF or an error the thread hands
        the socket back to the loop, which reads the end and closes as usual.
        """
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        sock = self.transport.get_extra_info("socket")
        lock = acquire_loop_lock(loop) if sock is not None else None
        if lock is None:
            return  # not a selector loop: the loop reads, as without a thread
        fd = os.dup(sock.fileno())
        self._reader_loop = loop
        wake_r, self._reader_wake = os.pipe()
        self.transport.pause_reading()
        self._reader = threading.Thread(target=self._read_loop, args=(loop, lock, fd, wake_r),
                                        name=f"{self.server.name}-reader", daemon=True)
        self._reader.start()

    def _read_loop(self, loop: asyncio.AbstractEventLoop, lock: threading.Lock, fd: int, wake: int) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(wake, select.POLLIN)
        try:
            while True:
                ready = poller.poll()
                if any(f == wake for f, _ in ready):
                    return
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    loop.call_soon_threadsafe(self._reader_done)
                    return
                # The lock is free while the loop sleeps: answer here.  A loop
                # still at work a moment later gets the bytes instead, in order
                # behind any it already has, so a busy loop cannot starve the guest.
                if self._handed_out == self._handed_back and lock.acquire(timeout=READER_PATIENCE):
                    try:
                        self.data_received(data)
                    finally:
                        lock.release()
                else:
                    self._handed_out += 1
                    loop.call_soon_threadsafe(self._data_on_loop, data)
        except Exception:  # a bug: the loop takes the socket over again
            log.exception("%s: the reader thread failed", self.server.name)
            loop.call_soon_threadsafe(self._reader_done)
        finally:
            os.close(fd)
            os.close(wake)

    def _data_on_loop(self, data: bytes) -> None:
        """Bytes the reader thread handed over while the loop was busy (kept in order)."""
        try:
            self.data_received(data)
        finally:
            self._handed_back += 1

    def _reader_done(self) -> None:
        """On the loop: the thread saw EOF (or failed); the loop reads the end itself."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    async def _stop_reader(self) -> None:
        """Wake the thread, wait for it (the loop lock is free meanwhile), then resolve ``closed``.

        The loop may end before the thread is joined (a machine shut down
        right after QEMU hung up): the clean-up then runs as the task is
        dropped, with no loop running, and must not raise.
        """
        reader, self._reader = self._reader, None
        try:
            if self._reader_wake is not None:
                with contextlib.suppress(OSError):  # a thread that saw EOF is gone already
                    os.write(self._reader_wake, b"x")
            if reader is not None:
                await asyncio.to_thread(reader.join)
        finally:
            if self._reader_wake is not None:
                os.close(self._reader_wake)
                self._reader_wake = None
            loop, self._reader_loop = self._reader_loop, None
            if loop is not None:
                release_loop_lock(loop)
            if not self.closed.done() and not self.closed.get_loop().is_closed():
                self.closed.set_result(None)

    # -- requests and controls ---------------------------------------------
    def _answer(self, req: Request) -> None:
        server = self.server
        faults = server.faults
        if faults is not None and (faults.armed or faults.flood or faults.attention_until):
            if self._reader is not None and threading.current_thread() is self._reader:
                # The rare path schedules timers: it runs on the loop.
                server.runner.call_on_loop(self._answer_with_faults, req, faults)
            else:
                self._answer_with_faults(req, faults)
            return
        self._write(encode_response(req.seq, req.netfn, req.lun, req.cmd, self._handle(req)))
        # After the answer is out: a POWEROFF must not overtake its own reply.
        server.runner.settle()

    def _answer_with_faults(self, req: Request, faults) -> None:
        """``_answer`` while a vhw.faults rule or state is in force (the rare path)."""
        server = self.server
        decision = faults.on_request(server.interface, req.netfn, req.cmd)
        where = {"interface": server.interface, "seq": req.seq, "netfn": req.netfn, "cmd": req.cmd}
        frame: bytes | None
        if decision is None:
            frame = encode_response(req.seq, req.netfn, req.lun, req.cmd, self._handle(req))
        elif decision.action == "completion-code":
            # Not run: a BMC answering e.g. 0xC0 (node busy) did not do the command.
            cc = decision.params["cc"]
            faults.took_effect("completion-code", cc=cc, **where)
            frame = encode_response(req.seq, req.netfn, req.lun, req.cmd, bytes((cc,)))
        else:  # the BMC runs the command; what happens to its answer is the fault
            body = self._handle(req)
            frame = encode_response(req.seq, req.netfn, req.lun, req.cmd, body)
            if decision.action == "drop":
                faults.took_effect("drop", **where)
                frame = None
            elif decision.action == "corrupt-checksum":
                frame = corrupt_response(req.seq, req.netfn, req.lun, req.cmd, body)
                faults.took_effect("corrupt-checksum", **where)
            elif decision.action == "delay":
                seconds = decision.params["seconds"]
                # Past QEMU's 4 s (virtual) timeout the guest already got 0xC3
                # from QEMU and the late frame's stale seq makes QEMU drop it (§7).
                faults.took_effect("delay", seconds=seconds, **where)
                asyncio.get_running_loop().call_later(seconds, self._write_late, frame)
                frame = None
        if frame is not None:
            self._write(frame)
        if faults.flood:
            faults.feed()  # the next flood event, once the guest emptied the buffer
        server.runner.settle()
        if faults.attention_until and faults.attention_held(server.runner.now()):
            self.set_attention(AttentionState.ATTN)  # held: a NOATTN just sent is overruled

    def _write_late(self, frame: bytes) -> None:
        self._write(frame)  # a no-op if QEMU went away meanwhile
        self.server.runner.flush_actions()

    def _handle(self, req: Request) -> bytes:
        """The BMC's answer (CC and data) to one request."""
        server = self.server
        ctx = self._contexts.get(req.lun)
        if ctx is None:
            ctx = self._contexts[req.lun] = Context(interface=server.interface, lun=req.lun)
        rsp = server.runner.handle(req.netfn, req.cmd, req.data, ctx)
        body = rsp.to_bytes()
        if len(body) + 4 > QEMU_RESPONSE_LIMIT:
            log.warning(
                "%s: %d-byte response to NetFn 0x%02X cmd 0x%02X exceeds QEMU's %d; the guest gets CC 0xC6",
                server.name,
                len(body) + 4,
                req.netfn,
                req.cmd,
                QEMU_RESPONSE_LIMIT,
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: seq %02x NetFn 0x%02X cmd 0x%02X [%s] -> [%s]", server.name, req.seq,
                      req.netfn, req.cmd, req.data.hex(" "), body.hex(" "))
        return body

    def _on_control(self, control: Control) -> None:
        name = self.server.name
        if control.op is ControlOp.VERSION:
            log.info("%s: peer protocol version %s", name, control.arg)
        elif control.op is ControlOp.CAPABILITIES:
            caps = self.codec.capabilities
            names = "|".join(str(c.name) for c in Capability if c and c in caps) or "none"
            log.info("%s: peer capabilities 0x%02X (%s)", name, control.arg or 0, names)
        elif control.op is ControlOp.RESET:
            # QEMU 7.2 never sends this (§12); guest resets come from QMP.
            log.info("%s: peer reports a VM reset", name)
        else:
            log.debug("%s: ignoring control %s from the peer", name, control.op.name)

    # -- output --------------------------------------------------------------
    def send_control(self, op: ControlOp, arg: int | None = None) -> bool:
        if not self.codec.can(op):
            log.warning("%s: not sending %s: the peer did not advertise it", self.server.name, op.name)
            return False
        log.debug("%s: sending control %s", self.server.name, op.name)
        self._write(encode_control(op, arg))
        self.server._count("controls_sent")
        return True

    def set_attention(self, state: AttentionState) -> None:
        if state == self.attention:
            return
        op = _ATTENTION_CONTROL[state]
        if op is ControlOp.ATTN_IRQ and not self.codec.can(op):
            op = ControlOp.ATTN  # attention without the interrupt beats none
        if self.send_control(op):
            self.attention = state

    def set_interrupt_enable(self, enabled: bool) -> None:
        if enabled == self.interrupt_enabled:
            return
        if self.send_control(ControlOp.ENABLE_IRQ if enabled else ControlOp.DISABLE_IRQ):
            self.interrupt_enabled = enabled

    def _write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            transport = self.transport
            transport.write(frame)  # sent at once unless the socket is full
            server = self.server
            if self._reader is not None and transport.get_write_buffer_size():
                server.runner.call_on_loop(_nothing)  # from the reader: the loop must see its new writer
            if server.trace.enabled:
                server.trace.record(server.trace_channel, "out", frame, **extern_fields(frame))


def _nothing() -> None:
    pass


def _trace_fields(events: list) -> dict:
    """Trace fields of what a chunk from QEMU held: one request's header flat, else ``frames``."""
    found: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, Request):
            found.append({"seq": event.seq, "netfn": event.netfn, "lun": event.lun, "cmd": event.cmd})
        elif isinstance(event, Control):
            found.append({"control": event.op.name} if event.arg is None else {"control": event.op.name, "arg": event.arg})
    if len(found) == 1:
        return found[0]
    return {"frames": found} if found else {}


def corrupt_response(seq: int, netfn_req: int, lun: int, cmd: int, cc_and_data: bytes) -> bytes:
    """``encode_response`` with a wrong checksum byte (fault injection): QEMU
    drops such a frame silently and the guest gets 0xC3 after 4 s (§4)."""
    from ..wire.extern import MSG_END, escape
    from ..wire.ipmb import checksum

    unescaped = bytes((seq, (netfn_req | 1) << 2 | lun, cmd)) + bytes(cc_and_data)
    return escape(unescaped + bytes(((checksum(unescaped) + 0x55) & 0xFF,))) + bytes((MSG_END,))


def _describe_peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else "a unix socket"


class ExternServer:
    """Serves one VM's ipmi-bmc-extern chardev for a Bmc.

    ``bmc`` is the BmcRunner of the Bmc to serve (share it with the other
    transports of that Bmc), or a bare Bmc, which gets a runner of its own.
    ``interface`` is the guest interface QEMU puts in front of the
    BMC; nothing on the wire says which it is (§9), so the configuration does.
    Without a ``power_port``, power actions become extern control commands.
    """

    #: vhw.faults.BmcFaults consulted for each request (set by BmcService); None: no faults.
    faults = None
    #: Answer requests from a thread per connection (``_Connection._start_reader``);
    #: False: from the event loop.
    reader_thread = True

    def __init__(
        self,
        bmc: Bmc | BmcRunner,
        interface: str = "kcs",
        *,
        power_port: PowerPort | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        name: str | None = None,
        trace: Trace | None = None,
    ) -> None:
        if interface not in INTERFACES:
            raise ValueError(f"interface {interface!r}: expected one of {', '.join(INTERFACES)}")
        if isinstance(bmc, BmcRunner):
            self.runner = bmc
            if power_port is not None:
                self.runner.power_port = power_port
        else:
            self.runner = BmcRunner(bmc, power_port=power_port)
        self.bmc = self.runner.bmc
        self.interface = interface
        self.max_frame = max_frame
        self.name = name or f"extern-{interface}"
        #: Records every chunk read and every frame written (vhw.trace).
        self.trace = trace if trace is not None else NULL_TRACE
        self.trace_channel = f"ipmi-{interface}"
        #: Connections, refusals, requests, dropped frames by reason, ...
        self.stats: dict[str, int] = {}
        #: The bound address, ``HOST:PORT`` or ``unix:PATH``, once listening.
        self.address: str | None = None
        self._server: asyncio.AbstractServer | None = None
        self._unix_path: str | None = None
        self._connection: _Connection | None = None
        self._attached = False
        #: Called (no arguments) when QEMU connects or goes away: a standalone
        #: BMC takes a connected QEMU for a powered-on VM.
        self.on_connect: Callable[[], None] | None = None
        self.on_disconnect: Callable[[], None] | None = None
        #: Out of service (go_down): connections are accepted and closed at once.
        self.down = False

    # -- what the runner and the power adapter use ---------------------------
    @property
    def connected(self) -> bool:
        return self._connection is not None

    def can(self, op: ControlOp) -> bool:
        """Whether the connected peer accepts ``op``; False when nobody is connected."""
        return self._connection is not None and self._connection.codec.can(op)

    def send_control(self, op: ControlOp, arg: int | None = None) -> bool:
        """Send a control command if connected and advertised; says whether it went out."""
        if self._connection is None:
            log.warning("%s: not sending %s: QEMU is not connected", self.name, ControlOp(op).name)
            return False
        return self._connection.send_control(ControlOp(op), arg)

    def set_attention(self, state: AttentionState) -> None:
        if self._connection is not None:
            self._connection.set_attention(state)

    def set_interrupt_enable(self, enabled: bool) -> None:
        if self._connection is not None:
            self._connection.set_interrupt_enable(enabled)

    # -- lifecycle -------------------------------------------------------------
    async def start(self, address: str) -> str:
        """Listen on ``HOST:PORT`` (port 0 picks one) or ``unix:PATH``; returns the bound address."""
        if self._server is not None:
            raise RuntimeError(f"{self.name}: already listening on {self.address}")
        loop = asyncio.get_running_loop()
        _, target = parse_address(address)
        if isinstance(target, str):  # unix
            _remove_stale_socket(target)
            self._server = await loop.create_unix_server(lambda: _Connection(self), path=target)
            self._unix_path = target
            self.address = f"unix:{target}"
        else:
            host, port = target
            sock = await _bind_tcp(loop, host, port)
            self._server = await loop.create_server(lambda: _Connection(self), sock=sock)
            bound = sock.getsockname()
            self.address = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
            if not ipaddress.ip_address(bound[0]).is_loopback:
                log.warning("%s: listening on %s; nothing on this socket authenticates (§1)", self.name, self.address)
        self._attach()
        log.info("%s: listening on %s", self.name, self.address)
        return self.address

    async def go_down(self) -> None:
        """Drop QEMU's connection and hang up on every reconnect until ``go_up``, as a crashed BMC would.

        The socket keeps listening: QEMU 7.2 with qboot loses the -kernel
        image at its next system reset once a reconnect attempt has *failed*
        (connect refused or no socket file), so vhw never lets a connect
        fail; a connection that is accepted and closed does not trigger it.
        """
        self.down = True
        await self._drop_connection()

    def go_up(self) -> None:
        """Serve again: QEMU's next reconnect (within its reconnect=1 second) is answered."""
        self.down = False

    async def serve_socket(self, sock: socket.socket) -> None:
        """Serve an already-connected socket (one end of a socketpair, say) until it closes."""
        loop = asyncio.get_running_loop()
        self._attach()
        sock.setblocking(False)
        _, protocol = await loop.connect_accepted_socket(lambda: _Connection(self), sock)
        await protocol.closed

    async def close(self) -> None:
        """Stop listening, close the connection, and let go of the runner."""
        if self._server is not None:
            self._server.close()
        await self._drop_connection()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._unix_path is not None:
            try:
                os.unlink(self._unix_path)
            except FileNotFoundError:
                pass
            self._unix_path = None
        if self._attached:
            self._attached = False
            await self.runner.detach(self)

    async def __aenter__(self) -> ExternServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _drop_connection(self) -> None:
        """Hang up on QEMU, if connected, and wait (5 s at most) until it has closed."""
        conn = self._connection
        if conn is not None and conn.transport is not None:
            conn.hang_up()
            try:
                await asyncio.wait_for(asyncio.shield(conn.closed), 5)
            except TimeoutError:
                conn.transport.abort()

    def _attach(self) -> None:
        if not self._attached:
            self._attached = True
            self.runner.attach(self)

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _notify(self, hook: Callable[[], None] | None) -> None:
        if hook is None:
            return
        try:
            hook()
            self.runner.flush_actions()
        except Exception:  # a hook bug must not take the connection down
            log.exception("%s: connection hook failed", self.name)


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a dead vhw would make bind fail; other files are kept."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


async def _bind_tcp(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """Bind one socket: with port 0, binding every address of "localhost" would pick different ports."""
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, type_, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock
