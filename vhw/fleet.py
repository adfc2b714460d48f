"""Many LAN BMCs in one process, without VMs: `vhw fleet`.

``Fleet`` serves N independent BMCs (each its own ``Bmc`` from
``create_bmc``, its own state, its own UDP port) in the running asyncio
loop; management software sees N machines.  Each BMC has one ADMINISTRATOR
user (ID 2) allowed on the LAN channel, and a machine name ``fleet-<i>`` so
its GUIDs differ from its neighbours'.

There is no VM behind a fleet BMC: ``ChassisPowerPort`` confirms every power
action to the chassis at once (Chassis Control "power off" turns the reported
power off, "power on" on, "cycle" off then on after the chassis' interval),
so `ipmitool chassis power off/on/status` behave as with a real machine.

Idle cost.  Everything is sans-I/O under one loop; per BMC there is one UDP
endpoint and the runner's two tasks, which sleep without a deadline (no
wake-ups) while the BMC has no timer armed.  The LAN server's own periodic
session-expiry task is not started: one fleet-wide sweep does that job every
``EXPIRY_PERIOD`` seconds for the BMCs that have sessions (RMCP+ also
reclaims stale sessions whenever a packet arrives).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

from .errors import VhwError
from .ipmi.core.actions import PowerOp
from .ipmi.core.assemble import create_bmc
from .ipmi.core.bmc import Bmc
from .ipmi.core.config import BmcConfig
from .ipmi.io.lan_server import EXPIRY_PERIOD, LanServer, parse_address
from .ipmi.parts.sessions import lan_context
from .ipmi.io.runner import BmcRunner, host_clock_base
from .store import Store

log = logging.getLogger(__name__)

#: The user ID the fleet's one administrator gets (ID 1 is the anonymous user).
USER_ID = 2


def parse_user(text: str) -> tuple[str, str]:
    """"NAME:PASSWORD" -> (name, password); VhwError when malformed."""
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise VhwError(f"--user {text!r}: expected NAME:PASSWORD")
    return name, password


class ChassisPowerPort:
    """The power port of a BMC without a VM: the chassis is told the action happened."""

    def __init__(self, bmc: Bmc, cycle_interval: float | None = None):
        self.bmc = bmc
        #: The Bmc's runner (set once it is made with this port).
        self.runner: BmcRunner | None = None
        chassis_config = getattr(getattr(bmc, "config", None), "chassis", None)
        interval = getattr(chassis_config, "power_cycle_interval", 1.0)
        self.cycle_interval = float(interval if cycle_interval is None else cycle_interval)

    async def power(self, op: PowerOp, cause: str) -> None:
        chassis = self.bmc.parts.get("chassis")
        runner = self.runner
        if chassis is None or runner is None:
            return
        log.debug("power %s (%s)", op.value, cause or "no cause given")
        if op is PowerOp.ON:
            chassis.vm_powered_on(runner.now())
        elif op in (PowerOp.OFF, PowerOp.SOFT_OFF):
            chassis.vm_powered_off(runner.now())
        elif op is PowerOp.CYCLE:
            chassis.vm_powered_off(runner.now())
            runner.flush_actions()
            await asyncio.sleep(self.cycle_interval)
            chassis.vm_powered_on(runner.now())
        elif op is PowerOp.RESET and chassis.power_on:
            chassis.vm_reset(runner.now())
        # NMI: nothing to interrupt.
        runner.flush_actions()
        runner.kick()


class _FleetLanServer(LanServer):
    """A LanServer without its own periodic expiry task (the fleet sweeps instead)."""

    async def _expire_loop(self) -> None:
        return None


@dataclass(eq=False)
class FleetMember:
    index: int
    name: str
    bmc: Bmc
    server: LanServer
    store: Store

    @property
    def address(self) -> tuple[str, int] | None:
        return self.server.address

    def bound_address(self) -> tuple[str, int]:
        if self.server.address is None:
            raise RuntimeError(f"{self.name} is not listening")
        return self.server.address

    @property
    def lan(self):
        return self.server.lan


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def _close_store(store: Store) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


class Fleet:
    """N LAN BMCs on ``address``, ports ``base_port``.. (0: any free ports), in this loop."""

    def __init__(self, count: int, *, user: str, password: str, address: str = "127.0.0.1",
                 base_port: int = 0, state_dir: str | Path | None = None, power_on: bool = True,
                 progress: Callable[[str], None] | None = None):
        if count < 1:
            raise VhwError("a fleet needs at least one BMC (--count N, N >= 1)")
        if base_port and base_port + count - 1 > 65535:
            raise VhwError(f"ports {base_port}..{base_port + count - 1} run past 65535")
        self.count = count
        self.user, self.password = user, password
        self.host = address
        self.base_port = base_port
        self.state_dir = Path(state_dir) if state_dir else None
        self.power_on = power_on
        self.progress = progress
        self.members: list[FleetMember] = []
        self._sweeper: asyncio.Task | None = None
        # A fleet member's config is checked once, here, so a bad user fails before any port is bound.
        self._config(0)

    def _config(self, index: int) -> BmcConfig:
        user = {"id": USER_ID, "name": self.user, "password": self.password, "privilege": "administrator"}
        try:
            return BmcConfig.from_dict({"users": [user]}, "bmc", machine=f"fleet-{index}")
        except VhwError as e:
            raise VhwError(f"fleet user: {e}") from None

    def _address(self, index: int) -> str:
        port = self.base_port + index if self.base_port else 0
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"

    async def start(self) -> None:
        """Create and bind every BMC; on failure, close those already started and raise VhwError."""
        parse_address(self._address(0))  # ValueError early for a malformed host
        _raise_fd_limit(self.count * (3 if self.state_dir else 1) + 256)
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        step = max(1, self.count // 10) if self.count >= 50 else 0
        try:
            for i in range(self.count):
                self.members.append(await self._start_one(i))
                if step and (i + 1) % step == 0 and self.progress:
                    self.progress(f"[vhw] fleet: {i + 1}/{self.count} BMCs listening")
        except BaseException:
            await self.close()
            raise
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="fleet-session-expiry")

    async def _start_one(self, i: int) -> FleetMember:
        name = f"fleet-{i}"
        store = Store(self.state_dir / f"{name}.db") if self.state_dir is not None else Store(None)
        bmc = create_bmc(self._config(i), store=store, host_clock_base=host_clock_base())
        port = ChassisPowerPort(bmc)
        runner = port.runner = BmcRunner(bmc, power_port=port)
        server = _FleetLanServer(lan_context(bmc), runner)
        address = self._address(i)
        try:
            await server.start(address)
        except OSError as e:
            _close_store(store)
            raise VhwError(f"{name}: cannot listen for IPMI over LAN on {address}: {e.strerror or e}") from None
        chassis = bmc.parts.get("chassis")
        if chassis is not None and self.power_on:
            chassis.vm_powered_on(runner.now())
        runner.flush_actions()
        return FleetMember(i, name, bmc, server, store)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_PERIOD)
            for m in self.members:
                lan = m.server.lan
                if not lan.sessions.count():
                    continue
                try:
                    now = m.server.runner.now()
                    rmcpplus = m.server.router.rmcpplus
                    if rmcpplus is not None:
                        rmcpplus.expire(now)
                    else:
                        lan.sessions.expire(now)
                except Exception:
                    log.exception("%s: session expiry failed", m.name)

    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) of every member (all are bound once start() returned)."""
        return [m.bound_address() for m in self.members]

    def stats(self) -> dict[str, int]:
        """LAN counters summed over the fleet."""
        total: dict[str, int] = {}
        for m in self.members:
            for k, v in m.server.lan.stats.items():
                total[k] = total.get(k, 0) + v
        return total

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
            self._sweeper = None
        for m in self.members:
            try:
                await m.server.close()
            except Exception:
                log.exception("%s: close failed", m.name)
            _close_store(m.store)
        self.members.clear()


async def serve_fleet(*, count: int, base_port: int, user: str, address: str = "127.0.0.1",
                      state_dir: str | None = None, power_on: bool = True,
                      progress: Callable[[str], None], out: Callable[[str], None] = print) -> None:
    """`vhw fleet`: serve the fleet until SIGINT/SIGTERM.

    With base port 0 every BMC's address goes to ``out`` (stdout), one line
    "fleet-<i> HOST PORT" each, in order.
    """
    name, password = parse_user(user)
    fleet = Fleet(count, user=name, password=password, address=address, base_port=base_port,
                  state_dir=state_dir, power_on=power_on, progress=progress)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await fleet.start()
    try:
        if base_port == 0:
            for m in fleet.members:
                host, port = m.bound_address()
                out(f"{m.name} {host} {port}")
        first, last = fleet.members[0].bound_address(), fleet.members[-1].bound_address()
        where = (f"ports {first[1]}..{last[1]}" if base_port else "the ports listed on stdout")
        progress(f"[vhw] fleet: {count} BMCs on {first[0]} {where}, user {name!r} (ADMINISTRATOR), "
                 f"started in {loop.time() - started:.1f} s; Ctrl-C stops")
        progress(f"[vhw] e.g. ipmitool -I lanplus -H {first[0]} -p {first[1]} -U {name} -P ... chassis status")
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await fleet.close()
        progress("[vhw] fleet stopped")
