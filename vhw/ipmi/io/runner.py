"""The hub that owns one Bmc inside an asyncio loop.

Several transports share one Bmc (the guest's KCS, BT and SSIF through their
own extern servers, LAN sessions), but the actions the Bmc queues must be
acted on exactly once.  The runner is that one place: every transport asks
it to handle requests, it takes the Bmc's actions, fans attention and
interrupt-enable changes out to every attached system-interface transport,
sends power actions to exactly one power port, and runs the Bmc's timers
(watchdog, ...) by calling ``bmc.poll`` at ``bmc.next_deadline()``.

Whoever owns the Bmc makes its runner and hands it to every transport
(``BmcService`` does for a machine); a second runner for one Bmc would act
on its actions twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Protocol, runtime_checkable
from collections.abc import Iterable

from ..core.actions import Attention, AttentionState, InterruptEnable, Power, PowerOp
from ..core.bmc import CC, Bmc, Context, Response
from ..wire.extern import ControlOp

log = logging.getLogger(__name__)


def host_clock_base() -> float:
    """The host's UTC time at monotonic time 0: what ``create_bmc`` is given
    when ``now`` is the loop's clock (``time.monotonic``)."""
    return time.time() - time.monotonic()


@runtime_checkable
class PowerPort(Protocol):
    """Where power actions go: QMP and the launcher, or extern control commands."""

    async def power(self, op: PowerOp, cause: str) -> None: ...


class SystemInterfaceSink(Protocol):
    """What the runner fans attention to: one connected extern server each."""

    def set_attention(self, state: AttentionState) -> None: ...

    def set_interrupt_enable(self, enabled: bool) -> None: ...


class ExternControlSender(Protocol):
    """An extern server as the power adapter sees it."""

    @property
    def connected(self) -> bool: ...

    def can(self, op: ControlOp) -> bool: ...

    def send_control(self, op: ControlOp, arg: int | None = None) -> bool: ...


#: What QEMU can do itself when asked over the extern channel (docs/ipmi-extern.md §5, §12).
EXTERN_POWER_CONTROL: dict[PowerOp, ControlOp] = {
    PowerOp.OFF: ControlOp.POWEROFF,
    PowerOp.RESET: ControlOp.RESET,
    PowerOp.NMI: ControlOp.SEND_NMI,
    PowerOp.SOFT_OFF: ControlOp.GRACEFUL_SHUTDOWN,
}


class ExternPowerPort:
    """Power over ipmi-bmc-extern control commands: the adapter without QMP.

    ``servers`` is read on every call (a live list), and the first connected
    one whose peer advertised the needed capability carries the command, so a
    BMC reached through KCS and SSIF powers the VM off once.  QEMU cannot power
    on or power-cycle a VM (§5): those are logged, and need the machine layer.
    """

    def __init__(self, servers: Iterable[ExternControlSender]) -> None:
        self.servers = servers

    async def power(self, op: PowerOp, cause: str) -> None:
        control = EXTERN_POWER_CONTROL.get(op)
        if control is None:
            log.warning(
                "power %s (%s): ipmi-bmc-extern cannot do this; it needs QMP and the launcher",
                op.value,
                cause or "no cause given",
            )
            return
        for server in list(self.servers):
            if not hasattr(server, "send_control"):  # a LAN transport, say
                continue
            if server.connected and server.can(control):
                log.info("power %s (%s): sending %s", op.value, cause or "no cause given", control.name)
                server.send_control(control)
                return
        log.warning(
            "power %s (%s): no connected ipmi-bmc-extern peer accepts %s",
            op.value,
            cause or "no cause given",
            control.name,
        )


class BmcRunner:
    """Owns a Bmc in the running loop: requests, timers and action routing.

    One per Bmc, passed to each transport that serves it.  The runner starts
    with its first attached transport and stops when the last one detaches;
    it may start again later (in another loop, too).
    """

    def __init__(self, bmc: Bmc, *, power_port: PowerPort | None = None) -> None:
        self.bmc = bmc
        self._sinks: list[Any] = []
        self._power_port = power_port
        self._default_power_port = ExternPowerPort(self._sinks)
        self.attention: AttentionState = self._bmc_attention() or AttentionState.NONE
        #: None until the Bmc said (by action or ``interrupt_enabled()``).
        self.interrupt_enabled: bool | None = self._bmc_interrupt_enabled()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._timer_task: asyncio.Task | None = None
        #: The deadline the timer task sleeps towards; requests that leave it
        #: unchanged need not wake the task (one loop wake-up per request less).
        self._armed_deadline: float | None = None
        self._power_queue: asyncio.Queue[Power] | None = None
        self._power_task: asyncio.Task | None = None

    # -- power port -------------------------------------------------------
    @property
    def power_port(self) -> PowerPort:
        """The given port, else extern control commands on the attached servers."""
        return self._power_port or self._default_power_port

    @power_port.setter
    def power_port(self, port: PowerPort) -> None:
        if self._power_port is not None and self._power_port is not port:
            raise ValueError("this BMC already has a power port; power actions go to exactly one")
        self._power_port = port

    # -- lifecycle --------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._timer_task is not None and not self._timer_task.done()

    def attach(self, sink: Any) -> None:
        """Register a transport; starts the runner in the running loop if needed.

        Sinks with ``set_attention``/``set_interrupt_enable`` receive changes;
        sinks that are extern servers also carry power when no port was given.
        """
        if sink not in self._sinks:
            self._sinks.append(sink)
        if not self.running:
            self._start()

    async def detach(self, sink: Any) -> None:
        """Unregister a transport; the last one out stops the runner."""
        if sink in self._sinks:
            self._sinks.remove(sink)
        if not self._sinks:
            await self.close()

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._power_queue = asyncio.Queue()
        self._timer_task = self._loop.create_task(self._run_timers(), name="bmc-timers")
        self._power_task = self._loop.create_task(self._run_power(), name="bmc-power")

    async def close(self) -> None:
        """Stop the timer and power tasks; queued power actions are dropped."""
        tasks = [t for t in (self._timer_task, self._power_task) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._timer_task = self._power_task = None
        if self._power_queue is not None and not self._power_queue.empty():
            log.warning("runner closed with %d power action(s) not done", self._power_queue.qsize())
        self._power_queue = None

    # -- requests ---------------------------------------------------------
    def now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    def handle(self, netfn: int, cmd: int, data: bytes, ctx: Context) -> Response:
        """Answer one request now.  Call ``settle`` once the answer is out."""
        try:
            return self.bmc.handle(netfn, cmd, data, ctx, now=self.now())
        except Exception:  # Bmc.handle promises not to raise; QEMU must get an answer anyway
            log.exception("Bmc.handle raised for NetFn 0x%02X cmd 0x%02X", netfn, cmd)
            return Response(CC.UNSPECIFIED)

    def settle(self) -> None:
        """Once the answers to requests are out (from ``handle``, or those a
        transport gave to ``Bmc.handle`` itself, the LAN session layers): act on
        the actions they queued, and re-arm the timer if they armed, moved or
        stopped a deadline.  After the answer, so that neither delays it."""
        self.flush_actions()
        if self.bmc.next_deadline() != self._armed_deadline:
            self.kick()

    def kick(self) -> None:
        """Re-read the Bmc's deadline and actions soon (after outside changes)."""
        if self._wake is not None:
            self.call_on_loop(self._wake.set)

    def call_on_loop(self, fn: Any, *args: Any) -> None:
        """``fn(*args)`` now on the loop's thread, soon (waking the loop) from another one.

        The extern reader threads answer requests outside the loop; what they
        set in motion on the loop (a timer re-armed, a power action queued)
        comes through here.
        """
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    # -- actions ----------------------------------------------------------
    def flush_actions(self) -> None:
        """Act on everything the Bmc queued: fan out attention, queue power."""
        for action in self.bmc.take_actions():
            if isinstance(action, Attention):
                self.attention = action.state
                for sink in list(self._sinks):
                    setter = getattr(sink, "set_attention", None)
                    if setter is not None:
                        setter(action.state)
            elif isinstance(action, InterruptEnable):
                self.interrupt_enabled = action.enabled
                for sink in list(self._sinks):
                    setter = getattr(sink, "set_interrupt_enable", None)
                    if setter is not None:
                        setter(action.enabled)
            elif isinstance(action, Power):
                if self._power_queue is None:
                    log.warning("power %s (%s) dropped: runner not running", action.op.value, action.cause)
                else:
                    self.call_on_loop(self._power_queue.put_nowait, action)
            else:
                log.warning("unknown BMC action %r ignored", action)

    def current_state(self) -> tuple[AttentionState, bool | None]:
        """Attention and interrupt-enable to announce on a (re)connect.

        Pending actions are applied first; a Bmc that can say its state
        (``attention_state()``, ``interrupt_enabled()``) is the truth.
        """
        self.flush_actions()
        attention = self._bmc_attention()
        if attention is not None:
            self.attention = attention
        enabled = self._bmc_interrupt_enabled()
        if enabled is not None:
            self.interrupt_enabled = enabled
        return self.attention, self.interrupt_enabled

    def _bmc_attention(self) -> AttentionState | None:
        query = getattr(self.bmc, "attention_state", None)
        return query() if callable(query) else None

    def _bmc_interrupt_enabled(self) -> bool | None:
        query = getattr(self.bmc, "interrupt_enabled", None)
        enabled = query() if callable(query) else None
        return None if enabled is None else bool(enabled)

    # -- tasks ------------------------------------------------------------
    async def _run_timers(self) -> None:
        assert self._wake is not None and self._loop is not None
        stuck: float | None = None
        while True:
            deadline = self.bmc.next_deadline()
            if deadline is not None and deadline <= self._loop.time():
                if deadline == stuck:  # poll did not move a past deadline: a part's bug
                    log.warning("BMC deadline %.3f stays in the past after poll; backing off", deadline)
                    await asyncio.sleep(0.1)
                stuck = deadline
            timeout = None if deadline is None else max(0.0, deadline - self._loop.time())
            self._armed_deadline = deadline
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            try:
                self.bmc.poll(self._loop.time())
                self.flush_actions()
            except Exception:  # a timer bug must not stop the timers for good
                log.exception("BMC timer poll failed")
                await asyncio.sleep(0.1)

    async def _run_power(self) -> None:
        """One power action at a time, in order, off the request path."""
        assert self._power_queue is not None
        while True:
            action = await self._power_queue.get()
            try:
                await self.power_port.power(action.op, action.cause)
            except Exception:
                log.exception("power %s (%s) failed", action.op.value, action.cause)
