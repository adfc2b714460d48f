"""The BMC model and its one dispatcher.

Every IPMI request, whichever transport carried it (the guest's KCS/BT/SSIF
through QEMU's ipmi-bmc-extern, a LAN session, a serial channel), comes through
``Bmc.handle``.  The command table is keyed by (NetFn, command) and carries the
minimum privilege and the channels a command is allowed on, so privilege and
channel checks live here once and not in every handler (the shape of OpenBMC's
phosphor-host-ipmid registry).

The model is sans-I/O: time is passed in (``now``, seconds on a monotonic
clock), nothing here touches a socket, a thread or a clock.  What the BMC wants
done outside (raise attention, power the VM off, arm a timer) is queued as
actions that the transport or machine layer takes with ``take_actions()``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import IntEnum
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, NamedTuple

from mypy_extensions import mypyc_attr
from pyipmi.errors import DecodingError, EncodingError
from pyipmi.msgs.message import Message

from . import actions as act

log = logging.getLogger(__name__)


class NetFn(IntEnum):
    """Request network functions (IPMI 2.0 table 5-1); responses are +1."""

    CHASSIS = 0x00
    BRIDGE = 0x02
    SENSOR_EVENT = 0x04
    APP = 0x06
    FIRMWARE = 0x08
    STORAGE = 0x0A
    TRANSPORT = 0x0C
    GROUP_EXTENSION = 0x2C
    OEM_GROUP = 0x2E


class Privilege(IntEnum):
    """Privilege levels (IPMI 2.0 table 6-1 / section 6.8)."""

    CALLBACK = 1
    USER = 2
    OPERATOR = 3
    ADMINISTRATOR = 4
    OEM = 5


class CC(IntEnum):
    """Completion codes (IPMI 2.0 table 5-2)."""

    OK = 0x00
    NODE_BUSY = 0xC0
    INVALID_COMMAND = 0xC1
    INVALID_FOR_LUN = 0xC2
    TIMEOUT = 0xC3
    OUT_OF_SPACE = 0xC4
    RESERVATION_CANCELLED = 0xC5
    REQUEST_TRUNCATED = 0xC6
    REQUEST_LENGTH_INVALID = 0xC7
    REQUEST_FIELD_LENGTH_EXCEEDED = 0xC8
    PARAMETER_OUT_OF_RANGE = 0xC9
    CANNOT_RETURN_REQUESTED_BYTES = 0xCA
    NOT_PRESENT = 0xCB
    INVALID_DATA_FIELD = 0xCC
    ILLEGAL_FOR_SENSOR_OR_RECORD = 0xCD
    RESPONSE_NOT_PROVIDED = 0xCE
    DUPLICATED_REQUEST = 0xCF
    SDR_UPDATE_MODE = 0xD0
    FIRMWARE_UPDATE_MODE = 0xD1
    INITIALIZATION_IN_PROGRESS = 0xD2
    DESTINATION_UNAVAILABLE = 0xD3
    INSUFFICIENT_PRIVILEGE = 0xD4
    NOT_SUPPORTED_IN_PRESENT_STATE = 0xD5
    SUBFUNCTION_DISABLED = 0xD6
    UNSPECIFIED = 0xFF


#: Channel number of the system interface (IPMI 2.0 table 6-1).
SYSTEM_INTERFACE = 0x0F
#: Channel number meaning "the channel this request arrived on".
PRESENT_CHANNEL = 0x0E
#: The primary IPMB channel.
PRIMARY_IPMB = 0x00


class IpmiError(Exception):
    """Raised by a handler to answer with a completion code and no data."""

    def __init__(self, cc: int, why: str = ""):
        self.cc = int(cc)
        self.why = why
        super().__init__(f"completion code 0x{self.cc:02X}" + (f": {why}" if why else ""))


@dataclass(frozen=True)
class Context:
    """Who is asking: the channel, the session's privilege, the interface.

    ``interface`` names the transport: "kcs", "bt", "ssif" (the system
    interfaces), "lan" (IPMI v1.5 LAN), "lanplus" (RMCP+), "serial".

    The system interface is sessionless and has no privilege limit (IPMI 2.0
    section 6.8: commands from system software are not privilege-checked),
    so its default privilege is ADMINISTRATOR.
    """

    channel: int = SYSTEM_INTERFACE
    privilege: Privilege = Privilege.ADMINISTRATOR
    interface: str = "kcs"
    lun: int = 0
    session_id: int | None = None
    user_id: int | None = None
    #: Requester's slave address and LUN as the IPMB would carry them
    #: (0x81 = system software ID 0x40<<1|1, IPMI 2.0 section 5.5).
    requester_address: int = 0x81
    requester_lun: int = 0
    #: The LAN peer's (host, port), for the session commands; None elsewhere.
    peer: Any = None

    @property
    def is_system_interface(self) -> bool:
        return self.channel == SYSTEM_INTERFACE

    @property
    def has_session(self) -> bool:
        return self.session_id is not None


class Response(NamedTuple):
    """A completion code and the response data after it.

    ``refused`` names the access rule that answered instead of the handler
    ("session": a command that needs a session came outside one), so a
    transport whose spec drops such requests (RMCP+, section 13.14) can.
    Immutable; a tuple because one is made for every request.
    """

    cc: int
    data: bytes = b""
    refused: str | None = None

    def to_bytes(self) -> bytes:
        return bytes([self.cc]) + self.data


Handler = Callable[["Bmc", Context, Any], Any]

#: ``Context.interface`` of the transports that carry sessions: IPMI v1.5
#: LAN and RMCP+.  Outside a session only ``sessionless`` commands pass.
SESSION_INTERFACES = frozenset({"lan", "lanplus"})


@dataclass(frozen=True)
class Command:
    """One row of the command table: everything the dispatcher checks."""

    netfn: int
    cmd: int
    name: str
    privilege: Privilege
    handler: Handler
    #: python-ipmi (or vhw.ipmi.wire.msgs) request class the data is decoded with;
    #: None hands the handler the raw request bytes.
    request: type[Message] | None = None
    #: Response class the handler fills; None means the handler returns bytes.
    response: type[Message] | None = None
    #: Channels the command is accepted on; None means every channel.
    #: "system" and "session" are symbolic: the system interface, or any
    #: channel carrying a session.
    channels: frozenset[str] | None = None
    #: Accepted on a LAN channel outside a session (IPMI 2.0 sections 13.14,
    #: 22.13-22.16: the commands that set a session up).
    sessionless: bool = False
    #: The transports (``Context.interface``) that may carry it; None: all.
    interfaces: frozenset[str] | None = None
    #: Parts (``bmc.parts`` names) the handler uses; a BMC without one of
    #: them does not implement the command (C1h).
    requires: tuple[str, ...] = ()


#: Attribute of a handler function that holds the rows ``command`` declared.
DECLARED = "ipmi_commands"


def command(
    netfn: int,
    cmd: int,
    *,
    privilege: Privilege,
    request: type[Message] | None = None,
    response: type[Message] | None = None,
    channels: Iterable[str] | None = None,
    sessionless: bool = False,
    interfaces: Iterable[str] | None = None,
    requires: Iterable[str] = (),
    name: str | None = None,
) -> Callable[[Handler], Handler]:
    """Declare ``handler`` as the answer to (NetFn, command).

    Nothing is registered anywhere: the row is kept on the function and
    ``CommandTable.from_modules`` (called by ``vhw.ipmi.core.assemble``) puts the
    rows of the modules it is given into a table.
    """

    def declare(handler: Handler) -> Handler:
        row = Command(
            netfn=int(netfn),
            cmd=int(cmd),
            name=name or handler.__name__,
            privilege=privilege,
            handler=handler,
            request=request,
            response=response,
            channels=frozenset(channels) if channels is not None else None,
            sessionless=sessionless,
            interfaces=frozenset(interfaces) if interfaces is not None else None,
            requires=tuple(requires),
        )
        rows = getattr(handler, DECLARED, None)
        if rows is None:
            rows = []
            setattr(handler, DECLARED, rows)
        rows.append(row)
        return handler

    return declare


class CommandTable:
    """Commands keyed by (NetFn, command), built from declared handlers."""

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        self._commands: dict[tuple[int, int], Command] = {}
        for row in commands:
            self.add(row)

    @classmethod
    def from_modules(cls, modules: Iterable[ModuleType]) -> CommandTable:
        """Every row declared (``@command``) by the functions of ``modules``."""
        table = cls()
        for module in modules:
            for value in vars(module).values():
                for row in getattr(value, DECLARED, ()) if callable(value) else ():
                    table.add(row)
        return table

    def add(self, row: Command) -> None:
        key = (row.netfn, row.cmd)
        if key in self._commands:
            raise ValueError(f"command NetFn 0x{row.netfn:02X} cmd 0x{row.cmd:02X} registered twice")
        self._commands[key] = row

    def command(self, netfn: int, cmd: int, *, privilege: Privilege, **options: Any) -> Callable[[Handler], Handler]:
        """``@table.command(...)``: declare a handler and add it to this table (tests, small tables)."""

        def add(handler: Handler) -> Handler:
            command(netfn, cmd, privilege=privilege, **options)(handler)
            self.add(getattr(handler, DECLARED)[-1])
            return handler

        return add

    def get(self, netfn: int, cmd: int) -> Command | None:
        return self._commands.get((netfn, cmd))

    def __iter__(self) -> Iterator[Command]:
        return iter(sorted(self._commands.values(), key=lambda c: (c.netfn, c.cmd)))

    def __len__(self) -> int:
        return len(self._commands)


def _channel_allowed(command: Command, ctx: Context) -> bool:
    if command.channels is None:
        return True
    if "system" in command.channels and ctx.is_system_interface:
        return True
    return "session" in command.channels and ctx.has_session


@mypyc_attr(native_class=False)
class Parts(dict[str, Any]):
    """``Bmc.parts``: a dict that counts its changes, so that what is derived
    from the parts (the deadline methods asked on every request) is redone
    only when a part is added, replaced or removed."""

    version = 0

    def _changed(self) -> None:
        self.version += 1

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed()

    def pop(self, *args: Any) -> Any:
        self._changed()
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self._changed()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._changed()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()

    def __ior__(self, other: Any) -> Parts:  # type: ignore[override,misc]
        self.update(other)
        return self


def encode_response(rsp: Message) -> bytes:
    """Encode a filled python-ipmi response; returns the bytes after the CC."""
    if getattr(rsp, "completion_code", None) is None:
        rsp.completion_code = 0
    raw = rsp._encode()  # python-ipmi's encoder, CC first
    return raw[1:]


@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass
class Bmc:
    """One BMC: the single truth every in-band and LAN client sees.

    Subsystems (event/message queues, channels, watchdog, chassis) hang off
    this object as attributes created by their modules; handlers reach them
    through the ``bmc`` argument.
    """

    config: Any = None
    #: The commands this BMC answers (``vhw.ipmi.core.assemble.command_table``).
    table: CommandTable = field(default_factory=CommandTable)
    _actions: list[act.Action] = field(default_factory=list, repr=False)
    #: Counters for observability and tests: requests, errors by CC, ...
    stats: dict[str, int] = field(default_factory=dict, repr=False)
    #: Subsystems; set up by ``vhw.ipmi.core.assemble`` (or tests).
    parts: Parts = field(default_factory=Parts, repr=False)
    #: Non-volatile state (vhw.ipmi.core.nonvolatile.NonVolatile); None in bare test BMCs.
    store: Any = field(default=None, repr=False)
    now: float = 0.0
    #: The host's UTC time at ``now`` = 0, for the parts whose clocks follow
    #: the host's (the SEL's "host" clock); read by the transport side
    #: (``vhw.ipmi.io.runner.host_clock_base``), 0 in a bare BMC.
    host_clock_base: float = 0.0
    _deadline_key: tuple = field(default=(), repr=False, compare=False)
    _deadline_methods: tuple = field(default=(), repr=False, compare=False)
    #: Called with (now, netfn, cmd, data, ctx) before each request is answered
    #: (vhw.machine.snapshot.BmcJournal records with it); None: nobody listens.
    recorder: Callable[[float, int, int, bytes, Context], None] | None = field(default=None, repr=False,
                                                                              compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.parts, Parts):
            self.parts = Parts(self.parts)

    # -- actions ---------------------------------------------------------
    def emit(self, action: act.Action) -> None:
        """Queue an action for the transport or machine layer."""
        self._actions.append(action)

    def take_actions(self) -> list[act.Action]:
        out, self._actions = self._actions, []
        return out

    # -- state the transports announce on (re)connect --------------------
    def attention_state(self) -> act.AttentionState | None:
        """SMS_ATN level to resend after QEMU reconnects (docs/ipmi-extern.md section 11)."""
        messaging = self.parts.get("messaging")
        return messaging.attention_state() if messaging is not None else None

    def interrupt_enabled(self) -> bool | None:
        """Global Enables bit 0, mirrored as ENABLE_IRQ/DISABLE_IRQ."""
        messaging = self.parts.get("messaging")
        return messaging.interrupt_enabled() if messaging is not None else None

    # -- time ------------------------------------------------------------
    def poll(self, now: float) -> None:
        """Advance time: fire due timers (watchdog, ...) of every part."""
        self.now = max(self.now, now)
        for part in list(self.parts.values()):
            poll = getattr(part, "poll", None)
            if poll is not None:
                poll(self.now)

    def next_deadline(self) -> float | None:
        """Earliest time ``poll`` must be called again, or None."""
        earliest = None
        for nd in self._deadline_sources():
            d = nd()
            if d is not None and (earliest is None or d < earliest):
                earliest = d
        return earliest

    def _deadline_sources(self) -> tuple[Callable[[], float | None], ...]:
        """The parts' ``next_deadline`` methods, looked up again only when the parts change.

        Asked twice per request, so the lookup by name is not redone each time.
        """
        parts = self.parts
        key = self._deadline_key
        if not key or key[0] is not parts or key[1] != parts.version:
            self._deadline_key = (parts, parts.version)
            self._deadline_methods = tuple(
                nd for nd in (getattr(part, "next_deadline", None) for part in parts.values()) if nd is not None)
        return self._deadline_methods

    # -- the dispatcher --------------------------------------------------
    def handle(self, netfn: int, cmd: int, data: bytes, ctx: Context, now: float) -> Response:
        """Answer one request.  Never raises: a bug answers 0xFF and is logged."""
        # Parts say when they need time to pass (next_deadline); polling every
        # part on every request would scan every sensor each time.
        if self.recorder is not None:
            self.recorder(now, netfn, cmd, bytes(data), ctx)
        self.now = max(self.now, now)
        due = self.next_deadline()
        if due is not None and due <= self.now:
            self.poll(now)
        self._count("requests")
        try:
            rsp = self._dispatch(netfn, cmd, bytes(data), ctx)
        except Exception:  # a handler bug must never kill the transport
            log.exception("handler failed: NetFn 0x%02X cmd 0x%02X data %s", netfn, cmd, bytes(data).hex())
            rsp = Response(CC.UNSPECIFIED)
        if rsp.cc != CC.OK:
            self._count(f"cc_{rsp.cc:02x}")
        return rsp

    def refusal(self, command: Command | None, ctx: Context) -> Response | None:
        """The access policy, in one place: the answer when ``ctx`` may not run ``command``.

        Unknown, not on this transport, not on this channel, or a part the
        BMC lacks: C1h (IPMI 2.0 table 5-2, "invalid command").  On a LAN
        transport outside a session only the session-setup commands pass
        (sections 13.14, 22.13-22.16), whatever the context's privilege;
        others get D4h, marked ``refused="session"``.  Below the command's privilege: D4h.
        """
        if command is None:
            return Response(CC.INVALID_COMMAND)
        if command.interfaces is not None and ctx.interface not in command.interfaces:
            return Response(CC.INVALID_COMMAND)
        if not _channel_allowed(command, ctx):
            return Response(CC.INVALID_COMMAND)
        for part in command.requires:
            if part not in self.parts:
                log.debug("%s: this BMC has no %s part", command.name, part)
                return Response(CC.INVALID_COMMAND)
        if ctx.interface in SESSION_INTERFACES and not ctx.has_session:
            # No session, no privilege yet: a session-setup command runs as is.
            return None if command.sessionless else Response(CC.INSUFFICIENT_PRIVILEGE, refused="session")
        if ctx.privilege < command.privilege:
            return Response(CC.INSUFFICIENT_PRIVILEGE)
        return None

    def _dispatch(self, netfn: int, cmd: int, data: bytes, ctx: Context) -> Response:
        command = self.table.get(netfn, cmd)
        refusal = self.refusal(command, ctx)
        if refusal is not None:
            return refusal
        assert command is not None
        if command.request is not None:
            if data and not getattr(command.request, "__fields__", ()):
                # python-ipmi's _decode skips its "extra bytes" check for a
                # message without fields; a command taking no data must still
                # refuse data (IPMI 2.0 table 5-2).
                return Response(CC.REQUEST_FIELD_LENGTH_EXCEEDED)
            req = command.request()
            try:
                req._decode(data)
            except DecodingError as e:
                if "extra bytes" in str(e):
                    return Response(CC.REQUEST_FIELD_LENGTH_EXCEEDED)
                return Response(CC.REQUEST_LENGTH_INVALID)
        else:
            req = data
        try:
            result = command.handler(self, ctx, req)
        except IpmiError as e:
            if e.why:
                log.debug("%s: CC 0x%02X: %s", command.name, e.cc, e.why)
            return Response(e.cc)
        return self._to_response(command, result)

    def _to_response(self, command: Command, result: Any) -> Response:
        if result is None:
            return Response(CC.OK)
        if isinstance(result, Response):
            return result
        if isinstance(result, (bytes, bytearray)):
            return Response(CC.OK, bytes(result))
        if isinstance(result, Message):
            try:
                return Response(CC.OK, encode_response(result))
            except EncodingError:
                log.exception("%s: response does not encode", command.name)
                return Response(CC.UNSPECIFIED)
        raise TypeError(f"{command.name}: handler returned {type(result).__name__}")

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1
