"""Message flags, the receive message queue, the event message buffer, attention.

This is the part of the BMC the guest's system-interface driver polls
(IPMI 2.0 sections 6.12-6.13 and 22.1-22.8).  Three flag sources exist:
the receive message queue, the event message buffer and the watchdog
pre-timeout flag.  Attention (KCS SMS_ATN, BT B2H_ATN) is a *level* derived
from them: set while any source is non-zero, cleared when all are zero.
It must be cleared explicitly, or the guest polls Get Message Flags for ever
(docs/ipmi-extern.md section 11: 949 polls in 10 s).  So every mutation ends in
``_update()``, which emits ``actions.Attention`` only when the level changes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntFlag
from collections.abc import Callable

from ..core import actions as act
from ..core.actions import AttentionState


class GlobalEnables(IntFlag):
    """BMC Global Enables (IPMI 2.0 section 22.1, table 22-2)."""

    RECEIVE_MESSAGE_QUEUE_INTERRUPT = 0x01
    EVENT_MESSAGE_BUFFER_FULL_INTERRUPT = 0x02
    EVENT_MESSAGE_BUFFER = 0x04
    SYSTEM_EVENT_LOGGING = 0x08
    OEM_0 = 0x20
    OEM_1 = 0x40
    OEM_2 = 0x80


#: Bit 4 of Global Enables is reserved (table 22-2).
GLOBAL_ENABLES_RESERVED = 0x10
#: After BMC initialisation only system event logging is enabled (22.1).
DEFAULT_GLOBAL_ENABLES = GlobalEnables.SYSTEM_EVENT_LOGGING


class MessageFlags(IntFlag):
    """Get Message Flags bits (IPMI 2.0 section 22.4, table 22-5)."""

    RECEIVE_MESSAGE_AVAILABLE = 0x01
    EVENT_MESSAGE_BUFFER_FULL = 0x02
    WATCHDOG_PRETIMEOUT = 0x08


#: An event message buffer entry: a 16-byte SEL-format event record (22.8).
EVENT_RECORD_SIZE = 16


@dataclass(frozen=True)
class ReceivedMessage:
    """One receive message queue entry as Get Message returns it (22.6)."""

    channel: int
    #: Inferred privilege level ([7:4] of byte 2); 0 for session-less channels.
    privilege: int
    data: bytes


class Messaging:
    """The message-flag state of one BMC; emits attention and IRQ-enable changes."""

    def __init__(self, emit: Callable[[act.Action], None], *, queue_size: int = 32):
        self._emit = emit
        self.queue_size = queue_size
        self._queue: deque[ReceivedMessage] = deque()
        self._event: bytes | None = None
        self._pretimeout = False
        self.enables = DEFAULT_GLOBAL_ENABLES
        #: Channels whose messages are kept out of the queue (Enable Message
        #: Channel Receive, 22.5); every channel is enabled by default.
        self._receive_disabled: set[int] = set()
        #: Bridged responses kept for a LAN session that asked for tracking.
        self._tracked: dict[int, deque[bytes]] = {}
        self._attention = AttentionState.NONE
        #: Messages dropped because their channel was disabled or the queue full.
        self.dropped = 0

    # -- what the transport asks ------------------------------------------
    def attention_state(self) -> AttentionState:
        """The level to (re)announce, e.g. after QEMU reconnects (docs/ipmi-extern.md §6)."""
        return self._attention

    def interrupt_enabled(self) -> bool:
        return bool(self.enables & GlobalEnables.RECEIVE_MESSAGE_QUEUE_INTERRUPT)

    # -- flags ------------------------------------------------------------
    def flags(self) -> MessageFlags:
        f = MessageFlags(0)
        if self._queue:
            f |= MessageFlags.RECEIVE_MESSAGE_AVAILABLE
        if self._event is not None:
            f |= MessageFlags.EVENT_MESSAGE_BUFFER_FULL
        if self._pretimeout:
            f |= MessageFlags.WATCHDOG_PRETIMEOUT
        return f

    def clear_flags(self, mask: int) -> None:
        """Clear Message Flags (22.3): clearing a flag discards what it flags."""
        if mask & MessageFlags.RECEIVE_MESSAGE_AVAILABLE:
            self._queue.clear()
        if mask & MessageFlags.EVENT_MESSAGE_BUFFER_FULL:
            self._event = None
        if mask & MessageFlags.WATCHDOG_PRETIMEOUT:
            self._pretimeout = False
        self._update()

    def set_enables(self, value: int) -> None:
        """Set BMC Global Enables; the caller has rejected reserved bits."""
        was_irq = self.interrupt_enabled()
        self.enables = GlobalEnables(value & ~GLOBAL_ENABLES_RESERVED & 0xFF)
        if self.interrupt_enabled() != was_irq:
            self._emit(act.InterruptEnable(self.interrupt_enabled()))
        self._update()

    # -- watchdog ---------------------------------------------------------
    def set_pretimeout(self) -> None:
        """The watchdog's pre-timeout interrupt fired (27.7, 'messaging interrupt')."""
        self._pretimeout = True
        self._update()

    # -- event message buffer ---------------------------------------------
    def post_event(self, record: bytes) -> bool:
        """Offer a 16-byte event record to the event message buffer.

        Returns False when the buffer is disabled in Global Enables or already
        full: the one-entry buffer is never overwritten (22.8), the event
        still goes to the SEL through whoever posted it.
        """
        if len(record) != EVENT_RECORD_SIZE:
            raise ValueError(f"event record must be {EVENT_RECORD_SIZE} bytes, not {len(record)}")
        if not self.enables & GlobalEnables.EVENT_MESSAGE_BUFFER or self._event is not None:
            return False
        self._event = bytes(record)
        self._update()
        return True

    def read_event(self) -> bytes | None:
        """Read Event Message Buffer (22.8): take the entry, or None when empty."""
        record, self._event = self._event, None
        if record is not None:
            self._update()
        return record

    # -- receive message queue ---------------------------------------------
    def queue_has_room(self) -> bool:
        return len(self._queue) < self.queue_size

    def channel_receive_enabled(self, channel: int) -> bool:
        return channel not in self._receive_disabled

    def set_channel_receive(self, channel: int, enabled: bool) -> None:
        if enabled:
            self._receive_disabled.discard(channel)
        else:
            self._receive_disabled.add(channel)

    def enqueue(self, channel: int, data: bytes, privilege: int = 0) -> bool:
        """Put a message for system software into the queue; False if dropped."""
        if not self.channel_receive_enabled(channel) or not self.queue_has_room():
            self.dropped += 1
            return False
        self._queue.append(ReceivedMessage(channel, privilege, bytes(data)))
        self._update()
        return True

    def pop_message(self) -> ReceivedMessage | None:
        """Get Message (22.6): the oldest entry, or None when the queue is empty."""
        if not self._queue:
            return None
        msg = self._queue.popleft()
        self._update()
        return msg

    # -- bridged responses for LAN sessions ---------------------------------
    def deliver_tracked(self, session_id: int, frame: bytes) -> None:
        """Keep a tracked Send Message response for the LAN session layer."""
        q = self._tracked.setdefault(session_id, deque(maxlen=self.queue_size))
        q.append(bytes(frame))

    def take_tracked(self, session_id: int) -> list[bytes]:
        q = self._tracked.pop(session_id, None)
        return list(q) if q else []

    # -- lifecycle ----------------------------------------------------------
    def system_reset(self) -> None:
        """The guest was reset (learned via QMP): nobody will read old messages."""
        self._queue.clear()
        self._event = None
        self._pretimeout = False
        self.set_enables(DEFAULT_GLOBAL_ENABLES)

    # -- attention ------------------------------------------------------------
    def _level(self) -> AttentionState:
        f = self.flags()
        if not f:
            return AttentionState.NONE
        e = self.enables
        irq = (
            (f & (MessageFlags.RECEIVE_MESSAGE_AVAILABLE | MessageFlags.WATCHDOG_PRETIMEOUT)
             and e & GlobalEnables.RECEIVE_MESSAGE_QUEUE_INTERRUPT)
            or (f & MessageFlags.EVENT_MESSAGE_BUFFER_FULL and e & GlobalEnables.EVENT_MESSAGE_BUFFER_FULL_INTERRUPT)
        )
        return AttentionState.ATTN_IRQ if irq else AttentionState.ATTN

    def _update(self) -> None:
        level = self._level()
        if level != self._attention:
            self._attention = level
            self._emit(act.Attention(level))
