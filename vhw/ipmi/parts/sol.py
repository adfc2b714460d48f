"""Serial over LAN (IPMI 2.0 chapters 15 and 26): configuration, payload, model.

Two layers, both sans-I/O (time is passed in):

- ``SolStream`` (``vhw.ipmi.wire.sol_payload``): one active SOL payload instance, the packet protocol of
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

``vhw.ipmi.io.sol_link.SerialLink`` is the asyncio glue between ``Sol`` and
the host end of the socketpair QEMU's second serial port is on; it is used
only when the description has a ``[bmc.sol]`` table.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from ...errors import DescriptionError
from ...tables import Table
from .set_in_progress import SetInProgress
from ..wire.rmcpplus import encode_payload
from ..wire.sol_payload import PAYLOAD_SOL, SolStream

log = logging.getLogger(__name__)

STORE_NAMESPACE = "sol"
PARAMETER_REVISION = 0x11

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
