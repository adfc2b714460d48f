"""Fault injection: a sans-I/O plan of what goes wrong, and when.

A :class:`FaultInjector` holds rules for three devices and answers the
transports' questions ("this request arrived: anything to do?").  It never
touches a socket, a clock, a task or a thread itself: the BMC service, the
extern connection, the IOP and the SPARC machine ask it and act.  What needs
the outside world comes in through ports the transports give it: the BMC
service (:meth:`BmcFaults.bind`) carries out the immediate BMC actions and
runs their timers, the IOP's transport gives the clock its delays count on
(``IopFaults.clock``) and, asking from its device thread, a lock
(:meth:`FaultInjector.serialize`); event times come from ``clock`` or the
trace's clock.  Every fault that
takes effect is logged (WARNING, logger ``vhw.faults``), appended to
:attr:`FaultInjector.events` and recorded in the machine's trace as
``trace.record("fault", "event", fault="bmc.delay", ...)``.

Rules come from a description's ``[[fault]]`` tables, from a scenario file
(``vhw run --faults FILE``; the same tables, nothing else) or from Python::

    m = Machine(desc)                       # m.faults: a FaultInjector
    m.faults.bmc.delay(5, netfn=6, cmd=1)   # next Get Device ID answered 5 s late
    m.faults.bmc.completion_code(0xC0, netfn=6, cmd=1, count=2)
    m.faults.bmc.drop(netfn=4, cmd=0x2D)
    m.faults.bmc.corrupt_checksum(count="always", interface="kcs")
    await m.faults.bmc.disconnect(seconds=2)   # extern sockets down, then up again
    m.faults.bmc.flood_events(100)
    m.faults.bmc.hold_attention(seconds=5)
    m.faults.bmc.expire_watchdog()
    m.faults.iop.delay(2, function=0x06)
    m.faults.iop.withhold(function=0x31); m.faults.iop.release()
    m.faults.iop.fail(0x05, detail=0x1B, function=0x06, tid=0)
    m.faults.iop.exhaust_frames(count=10); m.faults.iop.restore_frames()
    m.faults.prom.refuse_write("auto-boot?")
    m.faults.clear()

Request rules (``delay``, ``drop``, ``completion_code``,
``corrupt_checksum``; IOP ``delay``, ``withhold``, ``fail``; PROM
``refuse_write``) match what they name (an absent key matches anything) and
take effect ``count`` times (an int, default 1, or ``"always"``); they
return the :class:`Rule`, whose ``cancel()`` removes it.  The other actions
act at once (from Python) or ``after`` seconds of the VM's life (from a
description).  ``docs/faults.md`` has the schema and what the guest sees.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import DescriptionError, VhwError
from .tables import Table

log = logging.getLogger(__name__)

DEVICES = ("bmc", "iop", "prom")
#: device -> action -> (parameters (name, required), match keys); immediate
#: actions carry no match keys and may have ``after``.
BMC_REQUEST_ACTIONS = ("delay", "drop", "completion-code", "corrupt-checksum")
BMC_IMMEDIATE_ACTIONS = ("disconnect", "flood-events", "hold-attention", "expire-watchdog")
IOP_REQUEST_ACTIONS = ("delay", "withhold", "fail")
IOP_STATE_ACTIONS = ("exhaust-frames",)
PROM_ACTIONS = ("refuse-write",)
ACTIONS = {
    "bmc": BMC_REQUEST_ACTIONS + BMC_IMMEDIATE_ACTIONS,
    "iop": IOP_REQUEST_ACTIONS + IOP_STATE_ACTIONS,
    "prom": PROM_ACTIONS,
}
MATCH_KEYS = {"bmc": ("netfn", "cmd", "interface"), "iop": ("iop", "function", "tid"), "prom": ("name",)}
#: action -> its parameters and whether each is required.
PARAMS: dict[tuple[str, str], dict[str, bool]] = {
    ("bmc", "delay"): {"seconds": True},
    ("bmc", "completion-code"): {"cc": True},
    ("bmc", "disconnect"): {"seconds": False},
    ("bmc", "flood-events"): {"events": True},
    ("bmc", "hold-attention"): {"seconds": True},
    ("iop", "delay"): {"seconds": True},
    ("iop", "fail"): {"status": True, "detail": False},
}
ALWAYS = "always"
#: QEMU 7.2 waits 4 s of virtual time for a response, then answers 0xC3 (docs/ipmi-extern.md §7).
QEMU_TIMEOUT = 4.0
#: I2O DetailedStatus UNKNOWN_ERROR (I2O 1.5 table 3-2), ``fail``'s default detail.
DEFAULT_DETAIL = 0x0018
#: Functions answered without a reply frame (ExecStatusGet writes a status
#: block, ExecOutboundInit a status byte, UtilNOP nothing): ``fail`` cannot
#: change what the host sees for them.
IOP_NO_REPLY_FUNCTIONS = (0x00, 0xA0, 0xA1, 0xBD)
MAX_SECONDS = 3600.0


class FaultError(VhwError):
    """A fault that cannot be injected (bad parameters, no device to act on)."""


@dataclass(frozen=True)
class FaultSpec:
    """One validated ``[[fault]]`` table: what, where, how often."""

    device: str
    action: str
    match: tuple[tuple[str, Any], ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    count: int | None = 1          # None: always
    after: float | None = None     # immediate BMC actions from a description

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


# -- parsing -------------------------------------------------------------------
def _number(t, name: str, lo: float, hi: float, *, integer: bool, required: bool, unit: str = ""):
    if name not in t.data:
        if required:
            raise t.fail(name, "is required for this action")
        return None
    value = t.take(name, None, int if integer else (int, float))
    if not lo <= value <= hi:
        shown = (lambda v: f"{v:#x}") if name in _HEX_KEYS else str
        raise t.fail(name, f"must be between {shown(lo)} and {shown(hi)}{unit}; got {shown(value)}")
    return value


_HEX_KEYS = ("netfn", "cmd", "cc", "function", "tid", "status", "detail")


def parse_fault(data: Any, path: str, source: str) -> FaultSpec:
    """One ``[[fault]]`` table -> FaultSpec; DescriptionError names the key and why."""
    t = Table(data, path, source)
    device = t.take("device", None, str)
    if device is None:
        raise t.fail("device", f"is required: one of {', '.join(DEVICES)}")
    if device not in DEVICES:
        raise t.fail("device", f"must be one of {', '.join(DEVICES)}; got {device!r}")
    action = t.take("action", None, str)
    if action is None:
        raise t.fail("action", f"is required: for {device}, one of {', '.join(ACTIONS[device])}")
    if action not in ACTIONS[device]:
        raise t.fail("action", f"must be one of {', '.join(ACTIONS[device])} for device {device!r}; got {action!r}")
    params_known = PARAMS.get((device, action), {})
    immediate = action in BMC_IMMEDIATE_ACTIONS
    match_keys = () if immediate else MATCH_KEYS[device]
    t.known = ("device", "action", "count", "after") + match_keys + tuple(params_known)
    for key in MATCH_KEYS[device]:
        if immediate and key in t.data:
            raise t.fail(key, f"{action!r} acts on the whole BMC at once; it matches no request")
    match: list[tuple[str, Any]] = []
    if device == "bmc" and not immediate:
        for key, hi in (("netfn", 0x3F), ("cmd", 0xFF)):
            v = _number(t, key, 0, hi, integer=True, required=False)
            if v is not None:
                match.append((key, v))
        iface = t.take("interface", None, str)
        if iface is not None:
            if iface not in ("kcs", "bt", "ssif"):
                raise t.fail("interface", f"must be one of kcs, bt, ssif; got {iface!r}")
            match.append(("interface", iface))
    elif device == "iop":
        for key, hi in (("iop", 15), ("function", 0xFF), ("tid", 0xFFF)):
            v = _number(t, key, 0, hi, integer=True, required=False)
            if v is not None:
                match.append((key, v))
    elif device == "prom":
        name = t.take("name", None, str)
        if name is not None:
            if not name:
                raise t.fail("name", "must name an option, not be empty")
            match.append(("name", name))
    params: list[tuple[str, Any]] = []
    for name, required in params_known.items():
        if name == "seconds":
            v = _number(t, name, 0, MAX_SECONDS, integer=False, required=required, unit=" s")
            if v is not None and v <= 0:
                raise t.fail(name, f"must be positive; got {v}")
        elif name == "cc":
            v = _number(t, name, 0x01, 0xFF, integer=True, required=True)
        elif name == "events":
            v = _number(t, name, 1, 100000, integer=True, required=True)
        elif name == "status":
            v = _number(t, name, 0x01, 0xFF, integer=True, required=True)
        elif name == "detail":
            v = _number(t, name, 0, 0xFFFF, integer=True, required=False)
        else:  # pragma: no cover - PARAMS and this switch are kept together
            raise AssertionError(name)
        if v is not None:
            params.append((name, float(v) if name == "seconds" else v))
    if device == "iop" and action == "fail" and dict(match).get("function") in IOP_NO_REPLY_FUNCTIONS:
        raise t.fail("function", f"function {dict(match)['function']:#04x} has no reply frame to fail")
    count: int | None = 1
    if "count" in t.data:
        raw = t.take("count", None, (int, str))
        if raw == ALWAYS:
            count = None
        elif isinstance(raw, str):
            raise t.fail("count", f'must be a positive number or "always"; got {raw!r}')
        elif immediate:
            raise t.fail("count", f"{action!r} happens once; use several [[fault]] tables to repeat it")
        elif raw < 1:
            raise t.fail("count", f'must be a positive number or "always"; got {raw}')
        else:
            count = raw
    after = None
    if "after" in t.data:
        if not immediate:
            raise t.fail("after", f"only for {', '.join(BMC_IMMEDIATE_ACTIONS)}: "
                                  f"{action!r} takes effect on the requests it matches")
        after = float(_number(t, "after", 0, 24 * 3600, integer=False, required=True, unit=" s"))
    t.finish()
    return FaultSpec(device, action, tuple(match), tuple(params), count, after)


def parse_faults(data: Any, source: str, key: str = "fault") -> tuple[FaultSpec, ...]:
    """The ``[[fault]]`` array of a description or scenario document."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DescriptionError(key, "must be an array of tables ([[fault]])", source=source)
    return tuple(parse_fault(item, f"{key}[{i}]", source) for i, item in enumerate(data))


def parse_scenario(data: dict, source: str = "<scenario>") -> tuple[FaultSpec, ...]:
    """A scenario document: ``[[fault]]`` tables and nothing else."""
    if not isinstance(data, dict):
        raise DescriptionError("<scenario>", "must be a TOML document", source=source)
    extra = sorted(k for k in data if k != "fault")
    if extra:
        raise DescriptionError(extra[0], "unknown key: a scenario file holds only [[fault]] tables", source=source)
    return parse_faults(data.get("fault", []), source)


# -- live rules ----------------------------------------------------------------------
@dataclass(eq=False)
class Rule:
    """A request rule in force; ``remaining`` None = always."""

    spec: FaultSpec
    remaining: int | None
    owner: _DeviceFaults = field(repr=False)
    fired: int = 0

    @property
    def device(self) -> str:
        return self.spec.device

    @property
    def action(self) -> str:
        return self.spec.action

    def matches(self, values: dict) -> bool:
        return all(values.get(k) == v for k, v in self.spec.match)

    def cancel(self) -> None:
        self.owner._remove(self)


@dataclass(frozen=True)
class Decision:
    """What a transport must do for one request."""

    action: str
    params: dict
    rule: Rule


def _count(count: int | str | None) -> int | None:
    if count is None or count == ALWAYS:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FaultError(f'count must be a positive number or "always", not {count!r}')
    return count


def _seconds(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_SECONDS:
        raise FaultError(f"seconds must be a number in (0, {MAX_SECONDS:.0f}], not {seconds!r}")
    return float(seconds)


def _match(**kw) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for k, v in kw.items() if v is not None)


class _DeviceFaults:
    device = ""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector
        self.rules: list[Rule] = []
        #: True while any rule is in force: the transports' cheap first check.
        self.armed = False

    @property
    def _lock(self) -> AbstractContextManager[Any]:
        return self.injector.lock

    def _add(self, spec: FaultSpec) -> Rule:
        rule = Rule(spec, spec.count, self)
        with self._lock:
            self.rules.append(rule)
            self.armed = True
        log.info("fault armed: %s %s %s count=%s", spec.device, spec.action, _describe(spec.match + spec.params),
                 "always" if spec.count is None else spec.count)
        return rule

    def _remove(self, rule: Rule) -> None:
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)
            self._rearm()

    def _rearm(self) -> None:
        self.armed = bool(self.rules)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self._rearm()

    def decide(self, **values) -> Decision | None:
        """The first matching rule, its count taken; None when no rule matches."""
        if not self.armed:
            return None
        with self._lock:
            for rule in self.rules:
                if rule.matches(values):
                    rule.fired += 1
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self.rules.remove(rule)
                            self._rearm()
                    return Decision(rule.action, dict(rule.spec.params), rule)
        return None

    def took_effect(self, action: str, **details) -> None:
        self.injector.took_effect(self.device, action, **details)


class BmcService(Protocol):
    """What the BMC's faults act through: the running BMC service (vhw.ipmi.io.service.BmcService)."""

    servers: Any
    bmc: Any

    def now(self) -> float: ...

    def post_event(self, record: bytes) -> bool: ...

    def fault_disconnect(self, names: list[str], seconds: float) -> Awaitable[None]: ...

    def fault_hold_attention(self, held: bool, seconds: float = 0.0) -> None: ...

    def fault_expire_watchdog(self) -> bool: ...


class BmcFaults(_DeviceFaults):
    """The BMC's faults: per-request rules for the extern transport, and
    immediate actions carried out by the bound BmcService.

    Nothing here waits: a disconnect's reconnect, the end of held attention
    and the description's timed actions are timers the service runs.
    """

    device = "bmc"

    def __init__(self, injector: FaultInjector) -> None:
        super().__init__(injector)
        self.service: BmcService | None = None
        self._timed: list[FaultSpec] = []
        #: Service time until which attention is held asserted (0: not held).
        self.attention_until = 0.0
        #: Events still to feed into the event message buffer (flood_events).
        self.flood: list[bytes] = []
        self._started = False

    # -- request rules ------------------------------------------------------
    def delay(self, seconds: float, *, netfn: int | None = None, cmd: int | None = None,
              interface: str | None = None, count: int | str = 1) -> Rule:
        """Answer matching requests ``seconds`` late; past 4 s QEMU has already answered 0xC3."""
        return self._add(FaultSpec("bmc", "delay", _match(netfn=netfn, cmd=cmd, interface=interface),
                                   (("seconds", _seconds(seconds)),), _count(count)))

    def drop(self, *, netfn: int | None = None, cmd: int | None = None, interface: str | None = None,
             count: int | str = 1) -> Rule:
        """Handle matching requests but send no response (QEMU: 0xC3 after 4 s)."""
        return self._add(FaultSpec("bmc", "drop", _match(netfn=netfn, cmd=cmd, interface=interface), (),
                                   _count(count)))

    def completion_code(self, cc: int, *, netfn: int | None = None, cmd: int | None = None,
                        interface: str | None = None, count: int | str = 1) -> Rule:
        """Answer matching requests with completion code ``cc`` and no data, without running them."""
        if isinstance(cc, bool) or not isinstance(cc, int) or not 0x01 <= cc <= 0xFF:
            raise FaultError(f"completion code must be 0x01..0xFF, not {cc!r}")
        return self._add(FaultSpec("bmc", "completion-code", _match(netfn=netfn, cmd=cmd, interface=interface),
                                   (("cc", cc),), _count(count)))

    def corrupt_checksum(self, *, netfn: int | None = None, cmd: int | None = None,
                         interface: str | None = None, count: int | str = 1) -> Rule:
        """Send matching responses with a wrong checksum (QEMU drops them: 0xC3 after 4 s)."""
        return self._add(FaultSpec("bmc", "corrupt-checksum", _match(netfn=netfn, cmd=cmd, interface=interface),
                                   (), _count(count)))

    def on_request(self, interface: str, netfn: int, cmd: int) -> Decision | None:
        """The extern connection asks before answering a request."""
        return self.decide(interface=interface, netfn=netfn, cmd=cmd)

    # -- immediate actions (need the BmcService) -----------------------------------
    def bind(self, service: BmcService) -> None:
        """The BmcService that carries out immediate actions (set by the service)."""
        self.service = service

    def _need_service(self, what: str) -> BmcService:
        if self.service is None:
            raise FaultError(f"bmc {what}: this machine has no in-process BMC (backend \"vhw\")")
        return self.service

    def disconnect(self, seconds: float = 1.0, *, interface: str | None = None) -> Awaitable[None]:
        """Close the extern socket(s) now and listen again after ``seconds``.

        Returns what the service started to do it (an asyncio task); await
        it to know the BMC listens again (QEMU reconnects within its
        reconnect=1 second)."""
        service = self._need_service("disconnect")
        seconds = _seconds(seconds)
        names = [interface] if interface else sorted(service.servers)
        missing = [n for n in names if n not in service.servers]
        if missing:
            raise FaultError(f"bmc disconnect: interface {missing[0]!r} is not listening")
        self.took_effect("disconnect", seconds=seconds, interfaces=names)
        return service.fault_disconnect(names, seconds)

    def flood_events(self, events: int) -> int:
        """Log ``events`` system events in the SEL and feed them, one by one, into
        the event message buffer as fast as the guest reads it.  Returns how
        many the SEL took."""
        service = self._need_service("flood_events")
        if isinstance(events, bool) or not isinstance(events, int) or not 1 <= events <= 100000:
            raise FaultError(f"events must be 1..100000, not {events!r}")
        records = [flood_record(i) for i in range(events)]
        sel = service.bmc.parts.get("sel")
        logged = 0
        if sel is not None:
            now = service.now()
            logged = sum(1 for r in records if sel.add(r, now) is not None)
        self.took_effect("flood-events", events=events, sel_logged=logged)
        self.flood.extend(records)
        self.feed()
        return logged

    def feed(self) -> bool:
        """Offer the next flood event to the event message buffer (when empty)."""
        if not self.flood or self.service is None:
            return False
        messaging = self.service.bmc.parts.get("messaging")
        if messaging is None:
            self.flood.clear()
            return False
        if self.service.post_event(self.flood[0]):
            self.flood.pop(0)
            return True
        return False

    def hold_attention(self, seconds: float) -> None:
        """Assert attention (ATTN) on every connected interface for ``seconds``,
        whatever the message flags say; the guest keeps asking Get Message Flags."""
        service = self._need_service("hold_attention")
        seconds = _seconds(seconds)
        self.attention_until = service.now() + seconds
        self.took_effect("hold-attention", seconds=seconds)
        service.fault_hold_attention(True, seconds)

    def attention_held(self, now: float) -> bool:
        return self.attention_until > now

    def release_attention(self, now: float) -> bool:
        """The service's timer ran out at ``now``: True (and no longer held) when
        attention goes back to the BMC's own state; False while a later
        hold_attention still holds it."""
        if not self.attention_until or self.attention_held(now):
            return False
        self.attention_until = 0.0
        self.took_effect("hold-attention-ended")  # a test waits for this rather than sleeping
        return True

    def expire_watchdog(self) -> bool:
        """Expire a running watchdog now, as its countdown reaching zero would:
        pre-timeout interrupt (if set and not yet fired), SEL event, action.
        False (and nothing done) when the watchdog is not running."""
        service = self._need_service("expire_watchdog")
        expired = service.fault_expire_watchdog()
        if expired:
            self.took_effect("expire-watchdog")
        else:
            log.warning("fault: bmc expire-watchdog: the watchdog is not running; nothing done")
        return expired

    # -- description-timed actions -------------------------------------------------------
    def _add_timed(self, spec: FaultSpec) -> None:
        self._timed.append(spec)

    def vm_started(self) -> list[FaultSpec]:
        """The VM started: the description's timed actions to schedule (each at
        ``spec.after`` seconds, then :meth:`run_timed`); only at the first start."""
        if self._started:
            return []
        self._started = True
        return list(self._timed)

    def run_timed(self, spec: FaultSpec) -> None:
        """A timed action's time came (the service's timer)."""
        try:
            if spec.action == "disconnect":
                self.disconnect(spec.param("seconds", 1.0))
            elif spec.action == "flood-events":
                self.flood_events(spec.param("events"))
            elif spec.action == "hold-attention":
                self.hold_attention(spec.param("seconds"))
            elif spec.action == "expire-watchdog":
                self.expire_watchdog()
        except Exception:  # a fault must not take the BMC down
            log.exception("fault: bmc %s failed", spec.action)


def _no_clock() -> float:
    raise FaultError("iop delay/withhold: no clock; the IOP's transport sets IopFaults.clock")


class IopFaults(_DeviceFaults):
    """The IOPs' faults, asked from each IOP's device thread (under the
    injector's lock, see :meth:`FaultInjector.serialize`)."""

    device = "iop"

    def __init__(self, injector: FaultInjector, clock: Callable[[], float] = _no_clock) -> None:
        super().__init__(injector)
        #: The clock a delayed reply's release time counts on (the IOP's
        #: transport gives it: a monotonic clock).
        self.clock = clock
        #: Inbound-port reads still to answer empty (None: none; -1: until restored).
        self._exhaust: int | None = None
        #: Bumped by release(): each IOP lets its withheld replies go when it sees a new value.
        self.release_generation = 0
        #: Inbound-port reads answered empty by exhaust_frames (logged once per arming).
        self.exhausted_reads = 0
        self._exhaust_reported = False

    def _rearm(self) -> None:
        self.armed = bool(self.rules) or self._exhaust is not None

    def delay(self, seconds: float, *, iop: int | None = None, function: int | None = None,
              tid: int | None = None, count: int | str = 1) -> Rule:
        """Post matching replies ``seconds`` late (released at the guest's next MU access after that)."""
        return self._add(FaultSpec("iop", "delay", _match(iop=iop, function=function, tid=tid),
                                   (("seconds", _seconds(seconds)),), _count(count)))

    def withhold(self, *, iop: int | None = None, function: int | None = None, tid: int | None = None,
                 count: int | str = 1) -> Rule:
        """Keep matching replies until :meth:`release` (or an IOP reset drops them)."""
        return self._add(FaultSpec("iop", "withhold", _match(iop=iop, function=function, tid=tid), (),
                                   _count(count)))

    def release(self) -> None:
        """Let every withheld reply go (at each IOP's next guest access)."""
        with self._lock:
            self.release_generation += 1
        log.info("fault: iop withheld replies released")

    def fail(self, status: int, detail: int = DEFAULT_DETAIL, *, iop: int | None = None,
             function: int | None = None, tid: int | None = None, count: int | str = 1) -> Rule:
        """Answer matching messages with ReqStatus ``status`` and DetailedStatus
        ``detail`` instead of running them."""
        if isinstance(status, bool) or not isinstance(status, int) or not 0x01 <= status <= 0xFF:
            raise FaultError(f"ReqStatus must be 0x01..0xFF, not {status!r}")
        if isinstance(detail, bool) or not isinstance(detail, int) or not 0 <= detail <= 0xFFFF:
            raise FaultError(f"DetailedStatus must be 0..0xFFFF, not {detail!r}")
        if function in IOP_NO_REPLY_FUNCTIONS:
            raise FaultError(f"function {function:#04x} has no reply frame to fail")
        return self._add(FaultSpec("iop", "fail", _match(iop=iop, function=function, tid=tid),
                                   (("status", int(status)), ("detail", int(detail))), _count(count)))

    def exhaust_frames(self, count: int | str = ALWAYS) -> None:
        """Answer the next ``count`` inbound-port reads 0xFFFFFFFF (no free frame);
        "always": until :meth:`restore_frames`."""
        n = _count(count)
        with self._lock:
            self._exhaust = -1 if n is None else n
            self._exhaust_reported = False
            self.armed = True
        log.info("fault armed: iop exhaust-frames count=%s", count)

    def restore_frames(self) -> None:
        with self._lock:
            self._exhaust = None
            self._rearm()

    def frames_exhausted(self, iop: int) -> bool:
        """An inbound-port read: True when it must find no free frame."""
        if self._exhaust is None:
            return False
        with self._lock:
            if self._exhaust is None:
                return False
            if self._exhaust > 0:
                self._exhaust -= 1
                if self._exhaust == 0:
                    self._exhaust = None
                    self._rearm()
            self.exhausted_reads += 1
            first, self._exhaust_reported = not self._exhaust_reported, True
        if first:  # a polling driver reads the port in a loop: one record per arming
            self.took_effect("exhaust-frames", iop=iop)
        return True

    def on_message(self, iop: int, function: int, tid: int) -> Decision | None:
        return self.decide(iop=iop, function=function, tid=tid)

    def clear(self) -> None:
        super().clear()
        self.restore_frames()


class PromFaults(_DeviceFaults):
    """The EEPROM's faults: guest writes not stored."""

    device = "prom"

    def refuse_write(self, name: str | None = None, *, count: int | str = 1) -> Rule:
        """Refuse (do not store) the guest's change of option ``name`` (any option if None)."""
        if name is not None and (not isinstance(name, str) or not name):
            raise FaultError(f"option name must be a non-empty string, not {name!r}")
        return self._add(FaultSpec("prom", "refuse-write", _match(name=name), (), _count(count)))

    def refuses(self, name: str, old: str | None, new: str | None) -> bool:
        """Asked for each guest-made change at capture; True = keep the stored value."""
        decision = self.decide(name=name)
        if decision is None:
            return False
        self.took_effect("refuse-write", name=name, old=old, new=new)
        return True


class FaultInjector:
    """A machine's faults: ``.bmc``, ``.iop``, ``.prom``; see the module docstring."""

    def __init__(self, specs=(), *, trace=None, clock: Callable[[], float] | None = None) -> None:
        #: vhw.trace.Trace that gets a "fault" record per fault taking effect (None: none).
        self.trace = trace
        #: Wall clock (seconds since the epoch) of the events' "t"; None: the
        #: trace's clock, and no time without a trace.
        self.clock = clock
        #: Every fault that took effect: {"t", "fault", ...details}.
        self.events: list[dict] = []
        #: Held while rules and events change or are read; a no-op until a
        #: transport that asks from another thread gives a real lock.
        self.lock: AbstractContextManager[Any] = nullcontext()
        self.bmc = BmcFaults(self)
        self.iop = IopFaults(self)
        self.prom = PromFaults(self)
        for spec in specs:
            self.add(spec)

    def serialize(self, lock: AbstractContextManager[Any]) -> None:
        """Ask under ``lock`` from now on: a transport that consults the rules
        from its own thread (the IOP's device thread) gives one, before that
        thread starts.  The first lock given stays (every IOP shares it)."""
        if isinstance(self.lock, nullcontext):
            self.lock = lock

    def add(self, spec: FaultSpec) -> Rule | None:
        """Put one parsed spec in force (timed BMC actions wait for the VM's start)."""
        dev = getattr(self, spec.device)
        if spec.device == "bmc" and spec.action in BMC_IMMEDIATE_ACTIONS:
            self.bmc._add_timed(spec)
            return None
        if spec.device == "iop" and spec.action == "exhaust-frames":
            self.iop.exhaust_frames(ALWAYS if spec.count is None else spec.count)
            return None
        return dev._add(spec)

    @property
    def rules(self) -> list[Rule]:
        return [*self.bmc.rules, *self.iop.rules, *self.prom.rules]

    def clear(self) -> None:
        """Remove every rule and state (held attention runs out by itself)."""
        self.bmc.clear()
        self.bmc.flood.clear()
        self.iop.clear()
        self.prom.clear()

    def took_effect(self, device: str, action: str, **details) -> None:
        name = f"{device}.{action}"
        log.warning("fault: %s %s", name, _describe(tuple(details.items())))
        if self.clock is not None:
            t: float | None = self.clock()
        else:
            t = self.trace.now() if self.trace is not None else None
        with self.lock:
            self.events.append({"t": t, "fault": name, **details})
        if self.trace is not None:
            self.trace.record("fault", "event", b"", fault=name, **details)

    def fired(self, name: str) -> list[dict]:
        """The events of one fault ("bmc.delay", ...) that took effect so far."""
        with self.lock:
            return [e for e in self.events if e["fault"] == name]


def _describe(pairs) -> str:
    out = []
    for k, v in pairs:
        if isinstance(v, int) and not isinstance(v, bool) and k in ("netfn", "cmd", "cc", "function", "status",
                                                                     "detail", "seq"):
            v = f"{v:#04x}"
        out.append(f"{k}={v}")
    return " ".join(out) or "(any)"


def flood_record(index: int) -> bytes:
    """A SEL system event record (type 02h) for flood_events: sensor type 12h
    "System Event", offset 00h "System Reconfigured" (IPMI 2.0 table 42-3),
    event data 2 = the flood index (OEM code in byte 2, data 1 [7:6] = 10b)."""
    return struct.pack("<HBIHBBBBBBB", 0, 0x02, 0, 0x0020, 0x04, 0x12, 0xF0, 0x6F,
                       0x80, index & 0xFF, (index >> 8) & 0xFF)
