"""Serial over LAN (IPMI 2.0 chapters 15 and 26): configuration, payload, model.

Two layers, both sans-I/O (time is passed in):

- ``SolStream``: one active SOL payload instance, the packet protocol of
  sections 15.9-15.10.  Two sides: the remote console (SOL payload data in
  ``from_console``, packets out through ``take_console``) and the system
  serial port (bytes in ``from_serial``, bytes out ``take_serial``).
  Packet sequence numbers 1..15 (0 = ACK-only packet), ACK/NACK with the
  accepted character count, character accumulation (send when the send
  threshold is reached or the accumulate interval has passed since the first
  buffered character), retries of an unacknowledged packet (retry count,
  retry interval), break, flow-control and flush operation bits.
- ``Sol`` (``bmc.parts["sol"]``): the SOL configuration parameters (table
  26-5, persisted in the store, namespace "sol"), payload activation
  (instance 1, one at a time) and user payload access, and the two hooks:
  ``sol_handler(session, data, now)`` that the RMCP+ layer calls for inbound
  payload type 1 (it returns finished packets, made with
  ``rmcpplus.encode_payload``) and ``console_sender`` / ``serial_writer``
  callables for what the stream produces later (timers, serial input).

``vhw.ipmi.lan.sol_link.SerialLink`` is the asyncio glue between ``Sol`` and
the host end of the socketpair QEMU's second serial port is on; it is used
only when the description has a ``[bmc.sol]`` table.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from ...errors import DescriptionError
from ...tables import Table
from ..set_in_progress import SetInProgress
from .rmcpplus import encode_payload

log = logging.getLogger(__name__)

PAYLOAD_SOL = 1
INSTANCE = 1
STORE_NAMESPACE = "sol"
PARAMETER_REVISION = 0x11

#: Payload sizes reported by Activate Payload (4 header bytes + characters).
MAX_PAYLOAD = 256
MAX_CHARS = MAX_PAYLOAD - 4
#: Characters held for the serial port before the BMC refuses more (NACK).
SERIAL_BUFFER = 4096
#: Characters held from the serial port before the oldest are dropped.
CONSOLE_BUFFER = 16384

# Operation bits, remote console -> BMC (table 15-2? section 15.9, byte 4).
OP_NACK = 0x40
OP_RING_WOR = 0x20
OP_BREAK = 0x10
OP_DEASSERT_CTS = 0x08
OP_DEASSERT_DCD_DSR = 0x04
OP_FLUSH_INBOUND = 0x02
OP_FLUSH_OUTBOUND = 0x01
# Status bits, BMC -> remote console.
ST_NACK = 0x40
ST_TRANSFER_UNAVAILABLE = 0x20
ST_DEACTIVATING = 0x10
ST_OVERRUN = 0x08
ST_BREAK = 0x04

# SOL configuration parameters (section 26.3, table 26-5).
P_SET_IN_PROGRESS, P_ENABLE, P_AUTH, P_ACCUMULATE, P_RETRY = 0, 1, 2, 3, 4
P_NV_BIT_RATE, P_V_BIT_RATE, P_CHANNEL, P_PORT = 5, 6, 7, 8
BIT_RATES = frozenset({0, 6, 7, 8, 9, 10})
CC_PARAMETER_NOT_SUPPORTED, CC_READ_ONLY = 0x80, 0x82
_LENGTHS = {P_ENABLE: 1, P_AUTH: 1, P_ACCUMULATE: 2, P_RETRY: 2, P_NV_BIT_RATE: 1, P_V_BIT_RATE: 1, P_PORT: 2}
_DEFAULTS = {
    P_ENABLE: b"\x01",
    P_AUTH: b"\x02",          # no forced encryption/authentication, User privilege
    P_ACCUMULATE: b"\x0c\x60",  # 60 ms, 96 characters
    P_RETRY: b"\x07\x32",       # 7 retries, 500 ms apart
    P_NV_BIT_RATE: b"\x0a",     # 115.2 kbps
    P_PORT: struct.pack("<H", 623),
}


class SolError(Exception):
    def __init__(self, cc: int, why: str):
        self.cc, self.why = cc, why
        super().__init__(f"0x{cc:02X}: {why}")


@dataclass(frozen=True)
class SolSpec:
    """``[bmc.sol]``: which serial port of the machine SOL carries."""

    #: "ttyS1": a second serial port just for SOL ("console", sharing ttyS0
    #: with the console log, is planned and refused for now).
    port: str = "ttyS1"

    @classmethod
    def from_dict(cls, d: Any, key: str) -> SolSpec | None:
        if d is None:
            return None
        t = Table(d, key)
        t.expect(("port",))
        port = t.raw("port", "ttyS1")
        if port == "console":
            raise DescriptionError(f"{key}.port", '"console" (SOL on ttyS0) is not supported yet; use "ttyS1"')
        if port != "ttyS1":
            raise DescriptionError(f"{key}.port", f'must be "ttyS1", not {port!r}')
        return cls(port=port)


# -- the packet protocol ---------------------------------------------------------------


@dataclass
class _Inflight:
    seq: int
    data: bytes
    deadline: float
    retries_left: int


@dataclass
class SolStream:
    """One SOL payload instance (sections 15.9-15.10); see the module docstring."""

    accumulate_interval: float = 0.060
    send_threshold: int = 96
    retry_count: int = 7
    retry_interval: float = 0.5
    max_chars: int = MAX_CHARS
    #: False while the serial port is not there (the VM is off): status bit 5.
    serial_connected: bool = True
    _out: bytearray = field(default_factory=bytearray)
    _out_since: float | None = None
    _inflight: _Inflight | None = None
    _next_seq: int = 1
    _paused_until: float | None = None
    _serial: bytearray = field(default_factory=bytearray)
    _console: list = field(default_factory=list)
    _last_in: tuple[int, int] | None = None  # (seq, accepted) of the last console packet
    _status_once: int = 0
    #: Operation bits the console set last: CTS/DCD deasserted, ring.
    cts_deasserted: bool = False
    dcd_dsr_deasserted: bool = False
    ring: bool = False
    #: Breaks the console asked for since the last take_breaks().
    breaks: int = 0
    #: Counters: packets sent, retried, given up, duplicates seen, characters dropped.
    stats: dict = field(default_factory=dict)

    def _count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def _status(self) -> int:
        st = self._status_once
        self._status_once = 0
        if not self.serial_connected:
            st |= ST_TRANSFER_UNAVAILABLE
        return st

    # -- console side ----------------------------------------------------------------
    def from_console(self, packet: bytes, now: float) -> None:
        """One SOL payload from the remote console (section 15.9's four header bytes, then characters)."""
        if len(packet) < 4:
            self._count("malformed")
            return
        seq, ack, count, op = packet[0] & 0x0F, packet[1] & 0x0F, packet[2], packet[3]
        data = bytes(packet[4:])
        if ack and self._inflight is not None and ack == self._inflight.seq:
            sent = self._inflight.data
            accepted = min(count, len(sent))
            rest = sent[accepted:]
            self._inflight = None
            if rest:
                # Unaccepted characters go first in the next packet (15.10).
                self._out[:0] = rest
                self._out_since = now - self.accumulate_interval  # already waited: send when allowed
            if op & OP_NACK:
                self._paused_until = now + self.retry_interval
                self._count("nacked")
            else:
                self._paused_until = None
        elif not op & OP_NACK:
            self._paused_until = None
        self.ring = bool(op & OP_RING_WOR)
        self.cts_deasserted = bool(op & OP_DEASSERT_CTS)
        self.dcd_dsr_deasserted = bool(op & OP_DEASSERT_DCD_DSR)
        if op & OP_FLUSH_INBOUND:
            self._serial.clear()
        if op & OP_FLUSH_OUTBOUND:
            self._out.clear()
            self._out_since = None
        if seq:
            if op & OP_BREAK and (self._last_in is None or self._last_in[0] != seq):
                self.breaks += 1
            self._receive(seq, data)
        self.poll(now)

    def _receive(self, seq: int, data: bytes) -> None:
        if self._last_in is not None and self._last_in[0] == seq:
            # A retransmission: our ACK was lost.  ACK again, deliver nothing.
            self._count("duplicates")
            accepted = self._last_in[1]
        else:
            space = max(0, SERIAL_BUFFER - len(self._serial))
            accepted = min(len(data), space)
            self._serial += data[:accepted]
            self._last_in = (seq, accepted)
        nack = ST_NACK if data and accepted == 0 else 0
        self._console.append(bytes([0, seq, accepted, self._status() | nack]))

    def take_console(self) -> list[bytes]:
        """SOL payloads for the remote console, oldest first."""
        out, self._console = self._console, []
        return out

    # -- serial side -------------------------------------------------------------------
    def from_serial(self, data: bytes, now: float) -> None:
        """Characters the system wrote to its serial port."""
        if not data:
            return
        if not self._out:
            self._out_since = now
        self._out += data
        if len(self._out) > CONSOLE_BUFFER:
            drop = len(self._out) - CONSOLE_BUFFER
            del self._out[:drop]
            self._count("overrun_chars", drop)
            self._status_once |= ST_OVERRUN
        self.poll(now)

    def serial_break(self) -> None:
        """The system side sent a break: reported in the next packet's status."""
        self._status_once |= ST_BREAK

    def take_serial(self) -> bytes:
        out = bytes(self._serial)
        self._serial.clear()
        return out

    def take_breaks(self) -> int:
        n, self.breaks = self.breaks, 0
        return n

    # -- time ------------------------------------------------------------------------------
    def _due(self, now: float) -> bool:
        if not self._out or self._inflight is not None:
            return False
        if self._paused_until is not None and now < self._paused_until:
            return False
        if len(self._out) >= self.send_threshold:
            return True
        return self._out_since is not None and now >= self._out_since + self.accumulate_interval

    def poll(self, now: float) -> None:
        f = self._inflight
        if f is not None and now >= f.deadline:
            if f.retries_left > 0:
                f.retries_left -= 1
                f.deadline = now + self.retry_interval
                self._console.append(bytes([f.seq, 0, 0, self._status()]) + f.data)
                self._count("retries")
            else:
                # Given up (15.10): the characters are lost; go on with the next.
                self._inflight = None
                self._count("given_up")
                self._count("lost_chars", len(f.data))
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
        if self._due(now):
            chunk = bytes(self._out[:self.max_chars])
            del self._out[:len(chunk)]
            self._out_since = now if self._out else None
            seq = self._next_seq
            self._next_seq = seq % 15 + 1
            self._inflight = _Inflight(seq, chunk, now + self.retry_interval, self.retry_count)
            self._console.append(bytes([seq, 0, 0, self._status()]) + chunk)
            self._count("sent")

    def next_deadline(self) -> float | None:
        candidates = []
        if self._inflight is not None:
            candidates.append(self._inflight.deadline)
        elif self._out:
            if self._paused_until is not None:
                candidates.append(self._paused_until)
            elif self._out_since is not None:
                candidates.append(self._out_since + self.accumulate_interval)
        return min(candidates) if candidates else None

    def deactivating(self) -> bytes:
        """The last packet: status 'SOL deactivating' (section 15.9)."""
        return bytes([0, 0, 0, self._status() | ST_DEACTIVATING])


# -- configuration, activation, the hooks ----------------------------------------------


@dataclass
class Activation:
    session_id: int
    user_id: int | None
    stream: SolStream
    encrypted: bool
    authenticated: bool
    #: The RMCP+ session object, once known (activation or first packet).
    session: Any = None


class Sol:
    """``bmc.parts["sol"]``: SOL configuration parameters, activation, hooks."""

    def __init__(self, store: Any = None, *, channel: int = 1, spec: SolSpec | None = None, bmc: Any = None):
        self.store = store
        self.channel = channel
        self.spec = spec
        self.bmc = bmc
        self.set_in_progress = SetInProgress()
        #: Parameters (by number) and payload access (by ("access", channel, user)) without a store.
        self._memory: dict[Any, bytes] = {}
        self.volatile_bit_rate = self.get(P_NV_BIT_RATE)
        self.active: Activation | None = None
        #: Where the stream's later packets go: a callable taking the finished
        #: packet bytes (set by the LAN server), or None.
        self.console_sender: Callable[[Activation, bytes], None] | None = None
        #: Where characters for the system serial port go (SerialLink).
        self.serial_writer: Callable[[bytes], None] | None = None
        #: Called with the number of breaks the console requested.
        self.break_handler: Callable[[int], None] | None = None
        #: The UDP port Activate Payload reports; the LAN server sets its own.
        self.lan_port: int | None = None
        self.serial_connected = spec is not None
        #: encode(session, payload_type, data) -> packet; default rmcpplus.encode_payload.
        self.encode: Callable[[Any, int, bytes], bytes] | None = None

    # -- parameters (section 26.3) ---------------------------------------------------------
    def _read(self, param: int) -> bytes:
        if param in self._memory:
            return self._memory[param]
        if self.store is not None:
            v = self.store.get(STORE_NAMESPACE, str(param))
            if v is not None:
                return bytes.fromhex(v)
        return _DEFAULTS[param]

    def get(self, param: int) -> bytes:
        if param == P_SET_IN_PROGRESS:
            return self.set_in_progress.get()
        if param == P_V_BIT_RATE:
            return self.volatile_bit_rate
        if param == P_CHANNEL:
            return bytes([self.channel])
        if param == P_PORT and self.lan_port is not None:
            return struct.pack("<H", self.lan_port)  # the LAN server's real port (Activate Payload's too)
        if param in _DEFAULTS:
            return self._read(param)
        raise SolError(CC_PARAMETER_NOT_SUPPORTED, f"SOL parameter {param} not supported")

    def set(self, param: int, data: bytes) -> None:
        if param == P_CHANNEL:
            raise SolError(CC_READ_ONLY, "the SOL payload channel is read only")
        if param == P_SET_IN_PROGRESS:
            self.set_in_progress.set(data)
            return
        if param not in _LENGTHS:
            raise SolError(CC_PARAMETER_NOT_SUPPORTED, f"SOL parameter {param} not supported")
        if len(data) != _LENGTHS[param]:
            raise SolError(0xC7, f"SOL parameter {param} takes {_LENGTHS[param]} bytes")
        data = bytes(data)
        if param == P_AUTH and not 1 <= data[0] & 0x0F <= 5:
            raise SolError(0xCC, f"SOL privilege level {data[0] & 0x0F}")
        if param == P_AUTH and data[0] & 0x30:
            raise SolError(0xCC, "reserved bits in SOL authentication")
        if param == P_ACCUMULATE and (data[0] == 0 or data[1] == 0):
            raise SolError(0xCC, "accumulate interval and send threshold are 1-based")
        if param == P_RETRY and data[0] & 0xF8:
            raise SolError(0xCC, "retry count is 0..7")
        if param in (P_NV_BIT_RATE, P_V_BIT_RATE) and data[0] & 0x0F not in BIT_RATES:
            raise SolError(0xCC, f"bit rate code {data[0]:#x}")
        if param == P_V_BIT_RATE:
            self.volatile_bit_rate = data
            return
        if self.store is not None:
            self.store.put(STORE_NAMESPACE, str(param), data.hex())
        else:
            self._memory[param] = data
        if param == P_NV_BIT_RATE:
            self.volatile_bit_rate = data

    @property
    def enabled(self) -> bool:
        return bool(self.get(P_ENABLE)[0] & 0x01)

    def auth(self) -> tuple[bool, bool, int]:
        """(force encryption, force authentication, minimum privilege)."""
        b = self.get(P_AUTH)[0]
        return bool(b & 0x80), bool(b & 0x40), b & 0x0F

    def payload_port(self) -> int:
        return self.lan_port if self.lan_port is not None else struct.unpack("<H", self.get(P_PORT))[0]

    # -- user payload access (sections 24.6-24.7); stored per channel and user ------------
    def payload_access(self, channel: int, user_id: int) -> bytes:
        v = self.store.get("payload_access", f"{channel}.{user_id}") if self.store is not None else \
            self._memory.get(("access", channel, user_id))
        # Default: SOL (payload 1) enabled for every user.
        return bytes.fromhex(v) if isinstance(v, str) else (v if v is not None else b"\x02\x00\x00\x00")

    def set_payload_access(self, channel: int, user_id: int, value: bytes) -> None:
        if self.store is not None:
            self.store.put("payload_access", f"{channel}.{user_id}", bytes(value).hex())
        else:
            self._memory[("access", channel, user_id)] = bytes(value)

    # -- activation (sections 24.1-24.2) -------------------------------------------------------
    def activate(self, session_id: int, user_id: int | None, *, encrypted: bool, authenticated: bool) -> Activation:
        interval = self.get(P_ACCUMULATE)
        retry = self.get(P_RETRY)
        stream = SolStream(accumulate_interval=interval[0] * 0.005, send_threshold=interval[1],
                           retry_count=retry[0] & 0x07, retry_interval=retry[1] * 0.010,
                           serial_connected=self.serial_connected)
        self.active = Activation(session_id, user_id, stream, encrypted, authenticated)
        self._attach_lan()
        return self.active

    def deactivate(self) -> None:
        """End the active payload; the console gets a last packet whose status
        says "SOL deactivating" (section 15.9, table 15-2, status bit 4)."""
        a, self.active = self.active, None
        if a is not None:
            self._send(a, [a.stream.deactivating()])

    def _attach_lan(self) -> None:
        """Install ``sol_handler`` on the LAN context and find the activating session.

        The payload belongs to the RMCP+ session whose Activate Payload made it
        (section 24.1); the shared session table knows it by its ID.
        """
        lan = self.bmc.parts.get("lan") if self.bmc is not None else None
        if lan is None:
            return
        lan.sol_handler = self.sol_handler
        a = self.active
        if a is not None and a.session is None:
            base = lan.sessions.get(a.session_id) if getattr(lan, "sessions", None) is not None else None
            rp = base.attrs.get("rmcpplus") if base is not None and getattr(base, "kind", "") == "v20" else None
            a.session = rp

    def session_closed(self, session_id: int) -> None:
        """The LAN side closed a session: its payload goes away (no packet to send)."""
        if self.active is not None and self.active.session_id == session_id:
            self.active = None

    # -- the hooks ---------------------------------------------------------------------
    def sol_handler(self, session: Any, data: bytes, now: float) -> list[bytes]:
        """RMCP+ hands inbound payload type 1 here; returns finished packets for the console."""
        a = self.active
        sid = getattr(session, "session_id", getattr(session, "id", None))
        if a is None or sid != a.session_id:
            return []
        a.session = session
        a.stream.from_console(bytes(data), now)
        self._flush_serial(a)
        return [self._encode(a, p) for p in a.stream.take_console()]

    def from_serial(self, data: bytes, now: float) -> None:
        """Characters from the system serial port; dropped while no SOL is active."""
        a = self.active
        if a is None:
            return
        a.stream.from_serial(data, now)
        self._send(a, a.stream.take_console())

    def set_serial_connected(self, connected: bool) -> None:
        self.serial_connected = connected
        if self.active is not None:
            self.active.stream.serial_connected = connected

    def poll(self, now: float) -> None:
        a = self.active
        if a is None:
            return
        a.stream.poll(now)
        self._send(a, a.stream.take_console())

    def next_deadline(self) -> float | None:
        return self.active.stream.next_deadline() if self.active is not None else None

    def _flush_serial(self, a: Activation) -> None:
        out = a.stream.take_serial()
        if out and self.serial_writer is not None:
            self.serial_writer(out)
        n = a.stream.take_breaks()
        if n and self.break_handler is not None:
            self.break_handler(n)

    def _encode(self, a: Activation, payload: bytes) -> bytes:
        if a.session is None:
            return payload
        encode = self.encode or encode_payload
        return encode(a.session, PAYLOAD_SOL, payload)

    def _send(self, a: Activation, payloads: list[bytes]) -> None:
        if not payloads:
            return
        if self.console_sender is None or a.session is None:
            log.debug("SOL: %d packet(s) for the console and no way to send them yet", len(payloads))
            return
        for p in payloads:
            self.console_sender(a, self._encode(a, p))


def create_part(bmc, config) -> Sol | None:
    channels = getattr(config, "channels", ()) or ()
    lan = next((c.number for c in channels if c.medium == "lan"), None)
    if lan is None:
        return None
    return Sol(bmc.store, channel=lan, spec=getattr(config, "sol", None), bmc=bmc)
