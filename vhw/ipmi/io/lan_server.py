"""The asyncio UDP server of IPMI over LAN: only moves datagrams.

Each datagram goes to the sans-I/O router (``wire.datagrams.LanDatagrams``) and
its answers go back to the peer.  Nothing a peer sends can raise out of
here: a failure is logged and the datagram dropped.  Idle sessions are
expired every few seconds.  The Bmc's
runner, handed in, acts on what the requests of a datagram set in motion
once the replies are sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .extern_server import parse_address as parse_socket_address
from ..wire.datagrams import LanDatagrams
from ..wire.rmcpplus import RmcpPlus
from ..parts.sessions import LanContext
from .runner import BmcRunner
from ...trace import NULL_TRACE, Trace, lan_fields

log = logging.getLogger(__name__)

#: How often idle sessions are looked for (seconds).
EXPIRY_PERIOD = 5.0


def parse_address(address: str) -> tuple[str, int]:
    """"HOST:PORT" (IPv6 as "[::1]:PORT") -> (host, port); ValueError if malformed."""
    _, target = parse_socket_address(address)
    if isinstance(target, str):
        raise ValueError(f"{address!r}: expected HOST:PORT")
    host, port = target
    return host or "127.0.0.1", port


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: LanServer):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        server = self.server
        trace = server.trace
        if trace.enabled:
            trace.record("lan", "in", data, peer=_hostport(addr), local=server.local, **lan_fields(data))
        try:
            replies = server.router.handle(data, addr, server.runner.now())
            for reply in replies:
                assert self.transport is not None
                self.transport.sendto(reply, addr)
                if trace.enabled:
                    trace.record("lan", "out", reply, peer=_hostport(addr), local=server.local,
                                 **lan_fields(reply))
        except Exception:  # never let a datagram end the endpoint
            log.exception("LAN datagram from %s failed", addr)
        # After the replies: a power-off must not overtake its own answer; a
        # SOL packet may have armed or moved a stream timer (15.10).
        server.runner.settle()

    def error_received(self, exc) -> None:
        log.debug("LAN socket error: %s", exc)


def _hostport(addr) -> str:
    """A socket address as the trace writes it: "HOST:PORT", IPv6 as "[HOST]:PORT"."""
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class LanServer:
    """One UDP endpoint of one BMC's LAN channel.

    ``trace`` (vhw.trace.Trace) records every datagram in and out, channel
    "lan", with the peer's and the BMC's addresses.
    """

    def __init__(self, lan: LanContext, runner: BmcRunner, *, rmcpplus: Any = "auto", trace: Trace | None = None):
        self.lan = lan
        self.runner = runner
        self.trace = trace if trace is not None else NULL_TRACE
        #: The bound address as "HOST:PORT", once started (for the trace).
        self.local = "?"
        self.router = LanDatagrams(lan, RmcpPlus(lan) if rmcpplus == "auto" else rmcpplus)
        self._transport: asyncio.DatagramTransport | None = None
        self._expiry: asyncio.Task | None = None
        self.address: tuple[str, int] | None = None
        #: The BMC's SOL part (vhw.ipmi.parts.sol.Sol), given a sender at start.
        self.sol = lan.bmc.parts.get("sol")

    def send_sol(self, activation: Any, packet: bytes) -> None:
        """``Sol.console_sender``: a finished RMCP+ packet (``rmcpplus.encode_payload``)
        to the console of the session that activated SOL, as the BMC's own
        packets to that session (section 24.1: the payload goes to the
        activating session's address and the port Activate Payload named)."""
        transport = self._transport
        session = getattr(activation, "session", None)
        peer = getattr(session, "peer", None)
        if transport is None or peer is None:
            return
        try:
            transport.sendto(packet, peer)
        except Exception:
            log.debug("SOL packet to %s not sent", peer, exc_info=True)
            return
        if self.trace.enabled:
            self.trace.record("lan", "out", packet, peer=_hostport(peer), local=self.local, **lan_fields(packet))

    async def start(self, address: str = "127.0.0.1:623") -> tuple[str, int]:
        """Bind (port 0: any free port) and serve; returns the bound (host, port)."""
        host, port = parse_address(address)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=(host, port))
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self.address = (sockname[0], sockname[1])
        self.local = _hostport(self.address)
        if self.sol is not None:
            # Activate Payload reports this port (24.1; ipmitool refuses another),
            # and what SOL produces on its own leaves through this socket.
            self.sol.lan_port = self.address[1]
            self.sol.console_sender = self.send_sol
            self.lan.sol_handler = self.sol.sol_handler
        self.runner.attach(self)
        self._expiry = loop.create_task(self._expire_loop(), name="lan-session-expiry")
        log.info("IPMI LAN listening on %s:%d", *self.address)
        return self.address

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_PERIOD)
            try:
                self.lan.sessions.expire(self.runner.now())
            except Exception:
                log.exception("session expiry failed")

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            try:
                await self._expiry
            except asyncio.CancelledError:
                pass
            self._expiry = None
        if self.sol is not None and self.sol.console_sender == self.send_sol:
            self.sol.console_sender = None
            self.sol.lan_port = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            await self.runner.detach(self)
