"""The SOL payload protocol (IPMI 2.0 sections 15.9-15.10), sans-I/O: one payload instance.

``SolStream`` has two sides: the remote console (SOL payload data in
``from_console``, packets out through ``take_console``) and the system
serial port (bytes in ``from_serial``, bytes out ``take_serial``).  Packet
sequence numbers 1..15 (0 = ACK-only packet), ACK/NACK with the accepted
character count, character accumulation (send when the send threshold is
reached or the accumulate interval has passed since the first buffered
character), retries of an unacknowledged packet (retry count, retry
interval), break, flow-control and flush operation bits.  Time is passed in.
The SOL part (``vhw.ipmi.parts.sol.Sol``) owns the instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAYLOAD_SOL = 1
INSTANCE = 1

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
