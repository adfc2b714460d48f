"""Launching a machine: QEMU, its QMP monitor, console, agent and devices.

QEMU starts paused (-S) with every channel on a socketpair, so nothing it
writes before we read is lost.  The launcher connects QMP (qemu.qmp), starts
the console logger and the agent client, then continues the VM and waits for
the agent's READY.  QEMU gets PR_SET_PDEATHSIG, so it dies with its parent.
If QEMU is missing, refuses its command line or dies early, the error carries
its stderr; if the guest never comes up, the error carries the console tail.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

from qemu.qmp import EventListener, QMPClient

from ..errors import GuestError, QemuError, VhwError
from ..guests import GuestImage, ensure_image
from ..trace import NULL_TRACE, Trace
from .accel import choose_accel
from .agent import STREAM_LIMIT, AgentClient, RunResult
from .console import ConsoleLog
from .description import Description
from .qemu import BootChoice, Links, build_argv, qemu_binary

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
#: How long a KVM boot may take before the launcher gives up on KVM.
KVM_BOOT_LIMIT = 20.0


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _child_setup(cpu: int | None):
    """What runs in QEMU's child before exec: die with vhw; maybe pin."""
    def setup() -> None:
        _die_with_parent()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return setup


def proxy_cpu() -> int | None:
    """The CPU for QEMU and its out-of-process devices' threads.

    Every register access of a proxied PCI function is a synchronous round
    trip between QEMU's vCPU thread and the device thread; on the same CPU
    it costs about a third of a cross-CPU wake-up on a virtualized host
    (bench/i2o.py).  $VHW_PROXY_CPU picks the CPU ("none": no pinning); by
    default the last allowed CPU, away from CPU 0's interrupts.
    """
    choice = os.environ.get("VHW_PROXY_CPU", "").strip()
    allowed = sorted(os.sched_getaffinity(0))
    if choice == "none" or (not choice and len(allowed) < 2):
        return None
    if choice:
        try:
            cpu = int(choice)
        except ValueError:
            raise VhwError(f"VHW_PROXY_CPU={choice!r}: not a CPU number or 'none'") from None
        if cpu not in allowed:
            raise VhwError(f"VHW_PROXY_CPU={cpu}: not one of the CPUs this process may use {allowed}")
        return cpu
    return allowed[-1]


@dataclass
class BootTimes:
    """How long the last boot took (wall seconds; guest uptime at READY)."""

    launched: float = 0.0
    ready: float = 0.0
    guest_uptime: float = 0.0

    @property
    def to_ready(self) -> float:
        return self.ready - self.launched


@dataclass
class _Qemu:
    """One QEMU process and the host ends of its channels."""

    proc: asyncio.subprocess.Process
    qmp: QMPClient
    agent: AgentClient
    agent_writer: asyncio.StreamWriter
    sockets: list[socket.socket]
    tasks: list[asyncio.Task] = field(default_factory=list)
    stderr: bytearray = field(default_factory=bytearray)
    exit_reported: bool = False


class Machine:
    """A machine from a description, with its QEMU, agent and devices.

    Use as ``async with Machine(desc) as m: await m.run("uname -a")``.
    """

    def __init__(self, desc: Description, *, image: GuestImage | None = None,
                 workdir: str | Path | None = None, keep_workdir: bool = False,
                 progress: Callable[[str], None] | None = None,
                 extra_args: list[str] | None = None, trace: Trace | None = None,
                 faults=None):
        self.desc = desc
        #: Every message on every transport (vhw.trace); NULL_TRACE records nothing.
        self.trace = trace if trace is not None else NULL_TRACE
        #: The fault injector (vhw.faults) the devices consult: the one given,
        #: else one holding the description's [[fault]] tables (maybe none).
        if faults is None:
            from ..faults import FaultInjector

            faults = FaultInjector(desc.faults)
        if faults.trace is None:
            faults.trace = self.trace
        self.faults = faults
        self.image = image
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"vhw-{desc.machine.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep_workdir = keep_workdir
        self.progress = progress or (lambda msg: None)
        self.extra_args = list(extra_args or [])
        self.console = ConsoleLog(self.workdir / "console.log", trace=self.trace)
        self.accel: str | None = None
        self.boot = BootTimes()
        self.events: list[dict] = []
        self._event_cond: asyncio.Condition | None = None
        self._qemu: _Qemu | None = None
        #: Set once the current QEMU's agent said READY; cleared at each launch.
        self._ready: asyncio.Event | None = None
        self._bmc_links: dict[str, str] = {}
        self._devices: list = []  # objects with async close(), e.g. BMC servers
        #: vhw.ipmi.lan.sol.SerialLink when the BMC carries SOL ([bmc.sol]).
        self._sol_link = None

    # -- public API ------------------------------------------------------
    @property
    def agent(self) -> AgentClient:
        """The guest agent of the running QEMU (after a relaunch, ``await wait_ready()`` first)."""
        if self._qemu is None or self._ready is None or not self._ready.is_set():
            raise GuestError("the machine is not running, or its guest is not ready yet")
        return self._qemu.agent

    async def wait_ready(self, timeout: float) -> None:
        """Wait until a (re)launched guest's agent is ready."""
        deadline = time.monotonic() + timeout
        while self._ready is None or not self._ready.is_set():
            if time.monotonic() > deadline:
                raise GuestError(f"the guest was not ready within {timeout:.0f} s")
            await asyncio.sleep(0.05)

    @property
    def qmp(self) -> QMPClient:
        if self._qemu is None:
            raise GuestError("the machine is not running")
        return self._qemu.qmp

    @property
    def running(self) -> bool:
        return self._qemu is not None and self._qemu.proc.returncode is None

    @property
    def qemu_pid(self) -> int | None:
        return self._qemu.proc.pid if self._qemu else None

    async def run(self, command: str, **kw) -> RunResult:
        """Run a shell command in the guest through the agent."""
        return await self.agent.run(command, **kw)

    async def start(self) -> Machine:
        """Build the image if needed, attach devices, boot, wait for the agent."""
        self._event_cond = asyncio.Condition()
        self._ready = asyncio.Event()
        if self.image is None:
            self.image = await asyncio.to_thread(ensure_image, self.desc.machine.guest, progress=self.progress)
        try:
            await self._attach_devices()
            await self._boot()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Quit QEMU (politely, then by force), close devices, clean up."""
        await self._stop_qemu()
        for dev in reversed(self._devices):
            try:
                await dev.close()
            except Exception:  # closing must not hide the original error
                log.exception("closing %r failed", dev)
        self._devices.clear()
        self.console.close()
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> Machine:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def wait_event(self, name: str, timeout: float, predicate=None, since: int = 0) -> dict:
        """Wait for a QMP event (by index ``since`` in ``self.events``)."""
        assert self._event_cond is not None

        def find():
            for ev in self.events[since:]:
                if ev.get("event") == name and (predicate is None or predicate(ev)):
                    return ev
            return None

        async with self._event_cond:
            try:
                await asyncio.wait_for(self._event_cond.wait_for(lambda: find() is not None), timeout)
            except TimeoutError:
                raise GuestError(f"no QMP {name} event within {timeout:.0f} s") from None
            return find()

    async def wait_exit(self, timeout: float) -> int:
        """Wait for QEMU to exit on its own; returns its exit status."""
        if self._qemu is None:
            raise GuestError("the machine is not running")
        return await asyncio.wait_for(self._qemu.proc.wait(), timeout)

    # -- devices ---------------------------------------------------------
    async def _attach_devices(self) -> None:
        """Start device models QEMU connects to, before QEMU starts."""
        if self.desc.i2o:
            from ..i2o.device import IopAttachment

            for index, spec in enumerate(self.desc.i2o):
                self._devices.append(IopAttachment(spec, index, trace=self.trace, faults=self.faults))
        await self._attach_bmc()

    async def _attach_bmc(self) -> None:
        bmc = self.desc.bmc
        if bmc is None or bmc.backend == "qemu":
            return
        if bmc.backend == "extern":
            chardev = _chardev_for(bmc.address)
            self._bmc_links = {name: chardev for name in bmc.interfaces}
            return
        from ..ipmi.service import BmcService  # the in-process BMC

        store = None
        if self.desc.machine.state is not None:
            from ..store import Store

            store = Store(Path(self.desc.machine.state) / f"{self.desc.machine.name}.db")
        service = BmcService(bmc.config, machine=self, store=store, trace=self.trace, faults=self.faults)
        self._bmc_links = await service.listen(self.workdir, bmc.interfaces)
        self._devices.append(service)
        self.bmc_service = service
        sol = service.bmc.parts.get("sol")
        if getattr(bmc.config, "sol", None) is not None and sol is not None:
            # [bmc.sol]: a second serial port (ttyS1) carried by the BMC's SOL.
            from ..ipmi.lan.sol import SerialLink

            self._sol_link = SerialLink(sol, service.runner)
            self._devices.append(self._sol_link)

    def boot_choice(self) -> BootChoice | None:
        """What the devices (the BMC's boot flags) want this boot to use.

        Asked right before each launch (and before a BMC-requested reset):
        the machine layer plays the BIOS that reads the boot options.
        """
        for dev in self._devices:
            hook = getattr(dev, "boot_choice", None)
            if hook is not None:
                choice = hook()
                if choice is not None:
                    return choice
        return None

    # -- QEMU ------------------------------------------------------------
    async def _boot(self) -> None:
        qemu = qemu_binary(self.image.guest.qemu)
        self.accel = await asyncio.to_thread(choose_accel, self.desc.machine.accel, qemu)
        if self.accel == "kvm":
            try:
                await self._launch(qemu, "kvm", min(KVM_BOOT_LIMIT, self.desc.machine.boot_timeout))
                return
            except GuestError as e:
                log.warning("guest did not come up under KVM (%s); falling back to TCG", e)
                await self._stop_qemu()
                self.accel = "tcg"
        await self._launch(qemu, self.accel, self.desc.machine.boot_timeout)

    async def power_off(self) -> None:
        """Hard power-off: QEMU goes away, devices (the BMC) stay up."""
        await self._stop_qemu()

    async def relaunch(self) -> None:
        """Start QEMU again (power on after power off); devices stay up."""
        await self._stop_qemu()
        await self._launch(qemu_binary(self.image.guest.qemu), self.accel or "tcg",
                           self.desc.machine.boot_timeout)

    async def _launch(self, qemu: str, accel: str, boot_timeout: float) -> None:
        loop = asyncio.get_running_loop()
        if self._ready is not None:
            self._ready.clear()
        qmp_host, qmp_guest = socket.socketpair()
        con_host, con_guest = socket.socketpair()
        agent_host, agent_guest = socket.socketpair()
        sol_guest = self._sol_link.guest_socket() if self._sol_link is not None else None
        guest_ends = [qmp_guest, con_guest, agent_guest] + ([sol_guest] if sol_guest is not None else [])
        proxies = []
        proxied = [dev for dev in self._devices if hasattr(dev, "start_proxy")]
        cpu = proxy_cpu() if proxied else None
        for dev in proxied:  # out-of-process PCI functions (I2O)
            arg, sock = await dev.start_proxy(cpu)
            proxies.append(arg)
            guest_ends.append(sock)
        links = Links(qmp_guest.fileno(), con_guest.fileno(), agent_guest.fileno(), dict(self._bmc_links),
                      sol_fd=sol_guest.fileno() if sol_guest is not None else None,
                      proxy_devices=tuple(proxies))
        argv = build_argv(self.desc, self.image, links, accel=accel, qemu=qemu, extra=self.extra_args,
                          boot=self.boot_choice())
        (self.workdir / "qemu.argv").write_text(" ".join(argv) + "\n")
        log.debug("launching %s", " ".join(argv))
        self.progress(f"[vhw] booting {self.desc.machine.guest} ({accel})")
        self.boot = BootTimes(launched=time.monotonic())
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, pass_fds=[s.fileno() for s in guest_ends],
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, preexec_fn=_child_setup(cpu))
        except FileNotFoundError:
            raise QemuError(f"cannot run {qemu}: not found") from None
        finally:
            for s in guest_ends:
                s.close()
        agent_reader, agent_writer = await asyncio.open_connection(sock=agent_host, limit=STREAM_LIMIT)
        q = _Qemu(proc=proc, qmp=QMPClient(f"vhw-{self.desc.machine.name}"),
                  agent=AgentClient(agent_reader, agent_writer), agent_writer=agent_writer,
                  sockets=[qmp_host, con_host, agent_host])
        self._qemu = q
        q.tasks.append(loop.create_task(self._collect_stderr(q)))
        q.tasks.append(loop.create_task(self.console.follow(con_host)))
        q.tasks.append(loop.create_task(self._watch_exit(q)))
        try:
            await self._connect_qmp(q, qmp_host)
            self._notify_devices("on_qemu_start")
            await q.qmp.execute("cont")
            ready = loop.create_task(q.agent.wait_ready(boot_timeout))
            died = loop.create_task(proc.wait())
            done, _ = await asyncio.wait({ready, died}, return_when=asyncio.FIRST_COMPLETED)
            if ready in done:
                died.cancel()
                self.boot.guest_uptime = ready.result()
                self.boot.ready = time.monotonic()
                if self._ready is not None:
                    self._ready.set()
                self.progress(f"[vhw] guest ready in {self.boot.to_ready:.2f} s")
                return
            ready.cancel()
            await asyncio.sleep(0.05)  # let the stderr collector finish
            raise QemuError("QEMU exited before the guest was ready", stderr=q.stderr.decode(errors="replace"),
                            returncode=proc.returncode)
        except TimeoutError:
            raise GuestError(
                f"the guest agent was not ready within {boot_timeout:.0f} s "
                f"(console log: {self.console.path})\nlast console lines:\n{self.console.tail_text()}"
            ) from None
        except (EOFError, ConnectionError, OSError) as e:
            if proc.returncode is None:
                await asyncio.sleep(0.2)
            raise QemuError(f"QEMU's monitor failed ({e!r})", stderr=q.stderr.decode(errors="replace"),
                            returncode=proc.returncode) from None

    async def _connect_qmp(self, q: _Qemu, sock: socket.socket) -> None:
        try:
            await asyncio.wait_for(q.qmp.connect(sock), 30)
        except Exception as e:
            await asyncio.sleep(0.2)  # QEMU probably died: collect its words
            if q.proc.returncode is not None or isinstance(e, (EOFError, ConnectionError)):
                try:
                    await asyncio.wait_for(q.proc.wait(), 5)
                except TimeoutError:
                    pass
                raise QemuError("QEMU did not start", stderr=q.stderr.decode(errors="replace"),
                                returncode=q.proc.returncode) from None
            raise
        listener = EventListener()
        q.qmp.register_listener(listener)
        q.tasks.append(asyncio.get_running_loop().create_task(self._collect_events(listener)))

    async def _collect_events(self, listener: EventListener) -> None:
        async for ev in listener:
            self.events.append(dict(ev))
            log.debug("QMP event %s %s", ev.get("event"), ev.get("data"))
            await self._on_event(dict(ev))
            assert self._event_cond is not None
            async with self._event_cond:
                self._event_cond.notify_all()

    async def _on_event(self, ev: dict) -> None:
        """Hook for device models that follow the VM's life (the BMC)."""
        for dev in self._devices:
            hook = getattr(dev, "on_qmp_event", None)
            if hook is not None:
                try:
                    hook(ev)
                except Exception:
                    log.exception("device %r failed on event %s", dev, ev.get("event"))

    async def _watch_exit(self, q: _Qemu) -> None:
        await q.proc.wait()
        log.info("QEMU exited with status %s", q.proc.returncode)
        self._report_exit(q)

    def _report_exit(self, q: _Qemu) -> None:
        if not q.exit_reported:
            q.exit_reported = True
            self._notify_devices("on_qemu_exit")

    def _notify_devices(self, hook_name: str) -> None:
        for dev in self._devices:
            hook = getattr(dev, hook_name, None)
            if hook is not None:
                try:
                    hook()
                except Exception:
                    log.exception("device %r failed in %s", dev, hook_name)

    async def _collect_stderr(self, q: _Qemu) -> None:
        assert q.proc.stderr is not None
        with open(self.workdir / "qemu.stderr", "ab") as f:
            while chunk := await q.proc.stderr.read(4096):
                q.stderr += chunk
                f.write(chunk)
                f.flush()

    async def _stop_qemu(self) -> None:
        q, self._qemu = self._qemu, None
        if q is None:
            return
        if self._ready is not None:
            self._ready.clear()
        await quit_qemu(q.proc, q.qmp)
        for t in q.tasks:
            t.cancel()
        await asyncio.gather(*q.tasks, return_exceptions=True)
        q.agent_writer.close()
        for s in q.sockets:
            s.close()
        self._report_exit(q)


async def quit_qemu(proc: asyncio.subprocess.Process | None, qmp: QMPClient | None) -> None:
    """QEMU gone: QMP ``quit``, 5 s to exit, then SIGKILL; its monitor disconnected."""
    if proc is not None and proc.returncode is None:
        try:
            if qmp is not None:
                await asyncio.wait_for(qmp.execute("quit"), 5)
        except Exception:
            pass
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            log.warning("QEMU did not quit; killing it")
            proc.kill()
            await proc.wait()
    if qmp is not None:
        try:
            await asyncio.wait_for(qmp.disconnect(), 5)
        except Exception:  # after quit the socket is gone: EOFError is expected
            pass


def _chardev_for(address: str) -> str:
    """Chardev socket options that connect QEMU to a listening BMC."""
    from ..ipmi.extern_server import parse_address

    try:
        kind, target = parse_address(address)
    except ValueError:
        raise VhwError(f"BMC address {address!r} is not HOST:PORT or unix:PATH") from None
    if kind == "unix":
        return f"path={target},reconnect=1"
    host, port = target
    return f"host={host or '127.0.0.1'},port={port},reconnect=1,nodelay=on"
