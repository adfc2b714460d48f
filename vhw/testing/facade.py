"""What a driver test may touch of a machine's devices, as plain blocking calls.

The devices (the BMC service, the fault injector, the EEPROM) live on the
machine's event loop, in another thread (vhw.testing.pytest_plugin); a test
is plain blocking code.  These classes are the whole interface between the
two: each method is one call run on the loop, with the signature and the
meaning of the device's own, and nothing else of the device leaks out.
``VhwMachine.call(coroutine)`` stays for what is not here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any


class LoopThread:
    """An asyncio loop in a daemon thread; ``call`` runs a coroutine there and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, fn: Callable[..., Any], *args, **kwargs):
        """``fn(*args, **kwargs)`` in the loop's thread (device models are not thread safe)."""

        async def on_loop():
            return fn(*args, **kwargs)

        return self.call(on_loop())

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self.loop.close()


def bridge(fut: asyncio.Future) -> concurrent.futures.Future:
    """A loop-side future (a task already running) as a future the test thread can wait on."""
    out: concurrent.futures.Future = concurrent.futures.Future()

    def done(f: asyncio.Future) -> None:
        if f.cancelled():
            out.cancel()
        elif f.exception() is not None:
            out.set_exception(f.exception())  # type: ignore[arg-type]
        else:
            out.set_result(f.result())

    fut.add_done_callback(done)
    return out


class RuleHandle:
    """A fault rule as armed: ``cancel()`` disarms it before it runs out."""

    def __init__(self, rule, loop: LoopThread) -> None:
        self._rule, self._loop = rule, loop

    def cancel(self) -> None:
        self._loop.run(self._rule.cancel)


class BmcFaultsFacade:
    """The BMC's faults (vhw.faults.BmcFaults): per-request rules and immediate actions."""

    def __init__(self, faults, loop: LoopThread) -> None:
        self._faults, self._loop = faults, loop

    def _rule(self, method: str, *args, **kwargs) -> RuleHandle:
        return RuleHandle(self._loop.run(getattr(self._faults, method), *args, **kwargs), self._loop)

    def delay(self, seconds: float, *, netfn: int | None = None, cmd: int | None = None,
              interface: str | None = None, count: int | str = 1) -> RuleHandle:
        """Answer matching requests ``seconds`` late (past 4 s QEMU answers 0xC3 itself)."""
        return self._rule("delay", seconds, netfn=netfn, cmd=cmd, interface=interface, count=count)

    def drop(self, *, netfn: int | None = None, cmd: int | None = None, interface: str | None = None,
             count: int | str = 1) -> RuleHandle:
        """Run matching requests but send no response (QEMU: 0xC3 after 4 s)."""
        return self._rule("drop", netfn=netfn, cmd=cmd, interface=interface, count=count)

    def completion_code(self, cc: int, *, netfn: int | None = None, cmd: int | None = None,
                        interface: str | None = None, count: int | str = 1) -> RuleHandle:
        """Answer matching requests with completion code ``cc`` alone, without running them."""
        return self._rule("completion_code", cc, netfn=netfn, cmd=cmd, interface=interface, count=count)

    def corrupt_checksum(self, *, netfn: int | None = None, cmd: int | None = None,
                         interface: str | None = None, count: int | str = 1) -> RuleHandle:
        """Send matching responses with a wrong checksum (QEMU drops them: 0xC3 after 4 s)."""
        return self._rule("corrupt_checksum", netfn=netfn, cmd=cmd, interface=interface, count=count)

    def disconnect(self, seconds: float = 1.0, *, interface: str | None = None) -> concurrent.futures.Future:
        """Drop QEMU's connection now and serve again after ``seconds``; the future is done
        once the BMC listens again (QEMU reconnects within its reconnect=1 second)."""
        return self._loop.run(lambda: bridge(self._faults.disconnect(seconds, interface=interface)))

    def flood_events(self, events: int) -> int:
        """Put ``events`` system events in the SEL at once and feed them to the event buffer; how many went in."""
        return self._loop.run(self._faults.flood_events, events)

    def hold_attention(self, seconds: float) -> None:
        """Assert attention for ``seconds`` whatever the message flags say."""
        self._loop.run(self._faults.hold_attention, seconds)

    def expire_watchdog(self) -> bool:
        """Expire the running watchdog now (its own expiry path); False when none runs."""
        return self._loop.run(self._faults.expire_watchdog)


class IopFaultsFacade:
    """The IOPs' faults (vhw.faults.IopFaults)."""

    def __init__(self, faults, loop: LoopThread) -> None:
        self._faults, self._loop = faults, loop

    def delay(self, seconds: float, *, iop: int | None = None, function: int | None = None,
              tid: int | None = None, count: int | str = 1) -> RuleHandle:
        """Post matching replies ``seconds`` late."""
        return RuleHandle(self._loop.run(self._faults.delay, seconds, iop=iop, function=function, tid=tid,
                                         count=count), self._loop)

    def withhold(self, *, iop: int | None = None, function: int | None = None, tid: int | None = None,
                 count: int | str = 1) -> RuleHandle:
        """Keep matching replies until :meth:`release` (or an IOP reset drops them)."""
        return RuleHandle(self._loop.run(self._faults.withhold, iop=iop, function=function, tid=tid,
                                         count=count), self._loop)

    def release(self) -> None:
        """Let every withheld reply go."""
        self._loop.run(self._faults.release)

    def fail(self, status: int, detail: int | None = None, *, iop: int | None = None,
             function: int | None = None, tid: int | None = None, count: int | str = 1) -> RuleHandle:
        """Answer matching messages with ReqStatus ``status`` (and DetailedStatus ``detail``) instead of running them."""
        kwargs: dict[str, Any] = {"iop": iop, "function": function, "tid": tid, "count": count}
        if detail is not None:
            kwargs["detail"] = detail
        return RuleHandle(self._loop.run(self._faults.fail, status, **kwargs), self._loop)

    def exhaust_frames(self, count: int | str = "always") -> None:
        """Answer the next ``count`` inbound-port reads "no free frame"."""
        self._loop.run(self._faults.exhaust_frames, count)

    def restore_frames(self) -> None:
        self._loop.run(self._faults.restore_frames)


class PromFaultsFacade:
    """The EEPROM's faults (vhw.faults.PromFaults)."""

    def __init__(self, faults, loop: LoopThread) -> None:
        self._faults, self._loop = faults, loop

    def refuse_write(self, name: str | None = None, *, count: int | str = 1) -> RuleHandle:
        """Do not store the guest's change of option ``name`` (any option if None)."""
        return RuleHandle(self._loop.run(self._faults.refuse_write, name, count=count), self._loop)


class FaultsFacade:
    """The machine's fault injector (vhw.faults.FaultInjector), per device, and what fired."""

    def __init__(self, injector, loop: LoopThread) -> None:
        self._injector, self._loop = injector, loop
        self.bmc = BmcFaultsFacade(injector.bmc, loop)
        self.iop = IopFaultsFacade(injector.iop, loop)
        self.prom = PromFaultsFacade(injector.prom, loop)

    def fired(self, name: str) -> list[dict]:
        """The events of one fault ("bmc.delay", "iop.fail", ...) that took effect so far."""
        return self._injector.fired(name)

    @property
    def events(self) -> list[dict]:
        """Every fault that took effect, in order."""
        return list(self._injector.events)


class BmcFacade:
    """The machine's BMC as the host sees it (vhw.ipmi.io.service.BmcService)."""

    def __init__(self, service, loop: LoopThread) -> None:
        self._service, self._loop = service, loop

    def request(self, netfn: int, cmd: int, data: bytes = b""):
        """One request to the BMC from the host side (system interface context); its Response (cc, data)."""
        return self._loop.run(self._service.request, netfn, cmd, data)

    def post_event(self, record: bytes) -> bool:
        """A 16-byte event record into the SEL and the event message buffer (attention to the guest)."""
        return self._loop.run(self._service.post_event, record)

    def stop_interface(self, name: str) -> None:
        """Take one interface's extern link down (QEMU answers 0xD2 meanwhile)."""
        self._loop.call(self._service.stop_interface(name))

    def start_interface(self, name: str) -> None:
        self._loop.call(self._service.start_interface(name))

    @property
    def lan_address(self) -> tuple[str, int] | None:
        """Where the BMC answers IPMI over LAN (host, port), if it does."""
        return self._service.lan_address

    @property
    def stats(self) -> dict[str, int]:
        """The BMC's counters (requests, ...), a copy."""
        return dict(self._loop.run(lambda: dict(self._service.bmc.stats)))


class PromFacade:
    """A SPARC machine's EEPROM options (vhw.prom.options.PromOptions, the stored truth)."""

    def __init__(self, prom, loop: LoopThread) -> None:
        self._prom, self._loop = prom, loop

    def options(self) -> list[tuple[str, str]]:
        return self._loop.run(self._prom.options)

    def get(self, name: str) -> str | None:
        return self._loop.run(self._prom.get, name)

    def set(self, name: str, value: str):
        """Store ``name=value`` (one transaction); what changed, or None."""
        return self._loop.run(self._prom.set, name, value)

    def unset(self, name: str):
        return self._loop.run(self._prom.unset, name)
