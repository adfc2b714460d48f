"""A machine: QEMU, its devices, and a way into the guest.

One class for every guest vhw boots on x86: the built Linux guest and the
downloaded FreeBSD, illumos and NetBSD images (and NetBSD's sun4u disk).
QEMU starts paused (-S) with every channel on a socketpair, so nothing it
writes before we read is lost (vhw.machine.process does the spawning).  The
devices (the BMC, the I2O IOPs) are listening before QEMU starts.  The way
in is pluggable (``[machine] access``):

* ``agent``: the vhw agent on a virtio-serial port (linux-x86; fastest,
  binary-exact); ready when it says READY;
* ``console``: a login on the serial console (vhw.machine.serial); ready
  once the boot loader steps and the login got a shell.

Either way ``run``/``put``/``get`` are the same calls.  If QEMU is missing,
refuses its command line or dies early, the error carries its stderr; if the
guest never comes up, the error carries the console tail.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qemu.qmp import QMPClient

from ..errors import GuestError, QemuError, VhwError
from ..trace import NULL_TRACE, Trace
from .accel import choose_accel
from .agent import STREAM_LIMIT, AgentClient, RunResult
from .console import ConsoleLog
from .description import Description
from .process import QemuProcess
from .qemu import BootChoice, Links, build_argv, qemu_binary
from .serial import ConsoleChannel, ConsoleDriver, ConsoleLogin
from . import snapshot as snap
from .snapshot import BmcJournal, Snapshot, snapshots_enabled

if TYPE_CHECKING:
    from ..ipmi.io.service import BmcService
    from ..ipmi.io.sol_link import SerialLink

log = logging.getLogger(__name__)

#: How long a KVM boot may take before the launcher gives up on KVM.
KVM_BOOT_LIMIT = 20.0
#: How long saving a snapshot may take (QEMU writing guest RAM to the cache).
SNAPSHOT_SAVE_LIMIT = 60.0
#: The login the Linux guest's /init offers on its console when booted with access = "console".
LINUX_CONSOLE_LOGIN = ConsoleLogin(user="root", password="vhw", shell_prompt=r"[#$] ?$")


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
    """How long the last boot took (wall seconds; guest uptime at READY, 0 over the console).

    ``restored``: the guest came from a snapshot (``ready`` is then when its
    agent answered and its clock was set); ``saved``: this boot made one
    (``save`` seconds, after ``ready``).
    """

    launched: float = 0.0
    ready: float = 0.0
    guest_uptime: float = 0.0
    restored: bool = False
    saved: bool = False
    save: float = 0.0

    @property
    def to_ready(self) -> float:
        return self.ready - self.launched


@dataclass
class _SnapshotPlan:
    """What the first launch does about snapshots: restore ``snapshot``, or record and save under ``key``."""

    key: str
    snapshot: Snapshot | None = None
    journal: BmcJournal | None = None


@dataclass
class _Run:
    """One QEMU process of the machine and the host ends of its channels."""

    qemu: QemuProcess
    channel: AgentClient | ConsoleChannel
    sockets: list[socket.socket]
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)
    exit_reported: bool = False


class Machine:
    """A machine from a description, with its QEMU, devices and guest channel.

    Use as ``async with Machine(desc) as m: await m.run("uname -a")``.
    ``image`` is what it boots (vhw.guests.remote.boot_image resolves the guest's,
    building or fetching it, when not given).  ``snapshot``: start from a
    snapshot of the description where its devices allow (vhw.machine.snapshot;
    None: $VHW_SNAPSHOT decides, default on; False: always a real boot).
    """

    def __init__(self, desc: Description, *, image=None, workdir: str | Path | None = None,
                 keep_workdir: bool = False, progress: Callable[[str], None] | None = None,
                 extra_args: list[str] | None = None, trace: Trace | None = None, faults=None,
                 snapshot: bool | None = None, save_at_ready: bool = True):
        self.desc = desc
        self.use_snapshot = snapshots_enabled(snapshot)
        #: Save the missing snapshot as soon as the guest is ready; False: when ``save_snapshot`` is called.
        self.save_at_ready = save_at_ready
        #: The snapshot still to save (a first boot that found none), until it is saved.
        self._pending_save: _SnapshotPlan | None = None
        #: Why this machine boots normally although snapshots are on (None: it may use one).
        self.snapshot_refused: str | None = None
        #: The key of the snapshot this machine restored or saved (None: no snapshot was involved).
        self.snapshot_key: str | None = None
        #: The BMC's journal while the first boot records one for its snapshot.
        self._journal: BmcJournal | None = None
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
        self.access = desc.machine.access
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
        self._run_state: _Run | None = None
        #: Set once the current QEMU's guest is ready; cleared at each launch.
        self._ready: asyncio.Event | None = None
        self._bmc_links: dict[str, str] = {}
        self._devices: list = []  # objects with async close(), e.g. BMC servers
        #: The in-process BMC ([bmc] backend = "vhw") once started; None for QEMU's or an external BMC.
        self.bmc_service: BmcService | None = None
        #: vhw.ipmi.io.sol_link.SerialLink when the BMC carries SOL ([bmc.sol]).
        self._sol_link: SerialLink | None = None
        #: A downloaded guest's disk as this machine boots it (its overlay), and its seed ISO.
        self._disk: tuple[str, str] | None = None
        self._seed: Path | None = None

    # -- public API ------------------------------------------------------------------
    @property
    def guest(self) -> AgentClient | ConsoleChannel:
        """The way into the running guest (agent or console channel); GuestError until it is ready."""
        r = self._run_state
        if r is None or self._ready is None or not self._ready.is_set():
            raise GuestError("the machine is not running, or its guest is not ready yet")
        return r.channel

    @property
    def agent(self) -> AgentClient:
        """The guest agent of the running QEMU (after a relaunch, ``await wait_ready()`` first)."""
        channel = self.guest
        if not isinstance(channel, AgentClient):
            raise GuestError(f"{self.desc.machine.guest} is reached over its console here (access = "
                             f'"{self.access}"): it has no agent; use run/put/get')
        return channel

    async def run(self, command: str, *, timeout: float | None = 60.0, stdin: bytes = b"") -> RunResult:
        """Run a shell command in the guest."""
        return await self.guest.run(command, timeout=timeout, stdin=stdin)

    async def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file in the guest."""
        await self.guest.put(path, data, mode)

    async def get(self, path: str) -> bytes:
        """Read a file from the guest."""
        return await self.guest.get(path)

    async def wait_ready(self, timeout: float) -> None:
        """Wait until a (re)launched guest is ready."""
        deadline = time.monotonic() + timeout
        while self._ready is None or not self._ready.is_set():
            if time.monotonic() > deadline:
                raise GuestError(f"the guest was not ready within {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def wait_rebooted(self, timeout: float) -> None:
        """After a reset inside the same QEMU: wait until the guest is back (agent READY, or logged in again)."""
        r = self._run_state
        if r is None:
            raise GuestError("the machine is not running")
        if isinstance(r.channel, AgentClient):
            await r.channel.wait_ready(timeout)
        else:
            r.channel.lost()
            await r.channel.wait_ready(timeout)

    @property
    def qmp(self) -> QMPClient:
        if self._run_state is None:
            raise GuestError("the machine is not running")
        return self._run_state.qemu.qmp

    @property
    def running(self) -> bool:
        return self._run_state is not None and self._run_state.qemu.running

    @property
    def qemu_pid(self) -> int | None:
        return self._run_state.qemu.pid if self._run_state else None

    async def start(self) -> Machine:
        """Build or fetch the image if needed, attach devices, boot, wait for the guest."""
        self._event_cond = asyncio.Condition()
        self._ready = asyncio.Event()
        if self.image is None:
            from ..guests.remote import boot_image

            self.image = await asyncio.to_thread(boot_image, self.desc.machine.guest, progress=self.progress)
        try:
            await self._prepare_disk()
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
        if self._run_state is None:
            raise GuestError("the machine is not running")
        return await asyncio.wait_for(self._run_state.qemu.wait(), timeout)

    # -- devices and disks -------------------------------------------------------------
    async def _prepare_disk(self) -> None:
        """A downloaded guest boots a fresh qcow2 overlay of its image (install media read-only)."""
        from ..guests.remote import CLOUD_PASSWORD, DiskImage, cloud_init_seed, make_overlay

        image = self.image
        if not isinstance(image, DiskImage):
            return
        fmt = image.format
        if image.recipe.cdrom:
            self._disk = (str(image.path), fmt)
        else:
            overlay = await asyncio.to_thread(make_overlay, image.path, self.workdir / "disk.qcow2", fmt)
            self._disk = (str(overlay), "qcow2")
        if image.recipe.cloud_init:
            self._seed = await asyncio.to_thread(cloud_init_seed, self.workdir / "seed.iso", "vhw", CLOUD_PASSWORD)

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
            if bmc.address is None:
                raise VhwError("[bmc] backend = \"extern\" needs an address (HOST:PORT or unix:PATH)")
            chardev = _chardev_for(bmc.address)
            self._bmc_links = {name: chardev for name in bmc.interfaces}
            return
        from ..ipmi.io.service import BmcService  # the in-process BMC

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
            from ..ipmi.io.sol_link import SerialLink

            self._sol_link = SerialLink(sol, service.runner)
            self._devices.append(self._sol_link)

    def boot_choice(self) -> BootChoice | None:
        """What the devices (the BMC's boot flags) want this boot to use.

        Asked right before each launch (and before a BMC-requested reset):
        the machine layer plays the BIOS that reads the boot options.  A
        downloaded guest boots its own disk: no choice applies.
        """
        if self._disk is not None:
            return None
        for dev in self._devices:
            hook = getattr(dev, "boot_choice", None)
            if hook is not None:
                choice = hook()
                if choice is not None:
                    return choice
        return None

    # -- QEMU ------------------------------------------------------------------------------
    async def _boot(self) -> None:
        qemu = qemu_binary(self.image.qemu)
        self.accel = await asyncio.to_thread(choose_accel, self.desc.machine.accel, qemu)
        if self.accel == "kvm":
            try:
                await self._first_launch(qemu, "kvm", min(KVM_BOOT_LIMIT, self.desc.machine.boot_timeout))
                return
            except GuestError as e:
                log.warning("guest did not come up under KVM (%s); falling back to TCG", e)
                await self._stop_qemu()
                self.accel = "tcg"
        await self._first_launch(qemu, self.accel, self.desc.machine.boot_timeout)

    async def _first_launch(self, qemu: str, accel: str, boot_timeout: float) -> None:
        """The machine's first launch: from a snapshot where one can be used, else a boot (saving one).

        A snapshot that does not restore is marked unusable (its key is not
        tried again) and the machine boots normally with fresh devices.
        """
        try:
            await self._launch(qemu, accel, boot_timeout, snapshots=True)
        except (QemuError, GuestError) as e:
            self._stop_journal()
            if not self.boot.restored:
                raise
            log.warning("restoring the snapshot failed (%s); booting normally", e)
            await self._stop_qemu()
            key = self.snapshot_key
            if key is not None:
                await asyncio.to_thread(snap.mark_unrestorable, key, str(e))
            await self._reset_devices()
            await self._launch(qemu, accel, boot_timeout)

    async def _reset_devices(self) -> None:
        """Devices as new (after a failed restore fed the BMC a journal)."""
        for dev in reversed(self._devices):
            await dev.close()
        self._devices.clear()
        self.bmc_service = None
        self._sol_link = None
        await self._attach_devices()

    async def _plan_snapshot(self, argv: list[str]) -> _SnapshotPlan | None:
        """Restore a snapshot of this argv, or record this boot to save one; None: neither."""
        if not self.use_snapshot:
            return None
        why = snap.snapshot_unsupported(self.desc, self.image, access=self.access, extra_args=self.extra_args)
        if why is None and self.boot_choice() is not None:
            why = "the BMC's boot flags choose this boot's device"
        self.snapshot_refused = why
        if why is not None:
            log.info("booting %s normally: %s", self.desc.machine.name, why)
            return None
        version = await asyncio.to_thread(snap.qemu_version, argv[0])
        key = snap.snapshot_key(desc=self.desc, image=self.image, argv=argv, bmc_links=self._bmc_links,
                                qemu_version=version)
        self.snapshot_key = key
        refused = await asyncio.to_thread(snap.unrestorable, key)
        if refused is not None:
            self.snapshot_refused = f"its snapshot did not restore before: {refused}"
            return None
        found = await asyncio.to_thread(snap.find_snapshot, key)
        if found is not None:
            return _SnapshotPlan(key, snapshot=found)
        journal = self._journal = BmcJournal()
        if self.bmc_service is not None:
            journal.attach(self.bmc_service.bmc)
        return _SnapshotPlan(key, journal=journal)

    def _stop_journal(self) -> None:
        if self._journal is not None:
            self._journal.detach()
            self._journal = None

    def _restore_devices(self, plan: _SnapshotPlan) -> None:
        """The BMC as the snapshot's guest left it: its journal replayed up to now."""
        assert plan.snapshot is not None
        if self.bmc_service is not None:
            journal = plan.snapshot.journal()
            count = journal.replay(self.bmc_service.bmc, self.bmc_service.now())
            log.debug("BMC: %d journaled request(s) replayed", count)

    async def _restored_ready(self, channel: AgentClient) -> float:
        """A restored guest is ready when its agent answers; its clock is set to the host's on the way.

        The guest's wall clock stopped when the snapshot was taken (its
        virtual clocks continue from there, as after a pause).
        """
        r = await channel.run(f"date -u -s @{int(time.time() + 0.5)} >/dev/null && cut -d' ' -f1 /proc/uptime",
                              timeout=10.0)
        r.check("clock setting after restore")
        try:
            return float(r.text.strip())
        except ValueError:
            return 0.0

    async def save_snapshot(self) -> bool:
        """Save the snapshot this machine's first boot found missing: now, with the guest and the
        BMC as they are (the guest stops for the save and runs on).  False if there is none to
        save or saving failed (the machine runs on either way).

        A machine made with ``save_at_ready=False`` saves only here, so what a test did first
        (a SEL entry, a setting) is in the snapshot."""
        plan, self._pending_save = self._pending_save, None
        run = self._run_state
        if plan is None or run is None or plan.journal is None:
            return False
        return await self._save_snapshot(run, plan)

    async def _save_snapshot(self, run: _Run, plan: _SnapshotPlan) -> bool:
        """Stop the ready guest, write its migration stream and the BMC's journal to the cache, go on."""
        assert plan.journal is not None
        journal = plan.journal
        started = time.monotonic()
        qmp = run.qemu.qmp
        try:
            with snap.building(plan.key) as staging:
                if staging is None:  # another process is making it right now
                    return False
                await qmp.execute("stop")
                journal.saved_at = self.bmc_service.now() if self.bmc_service is not None else 0.0
                journal.detach()
                try:
                    await run.qemu.save_state(staging / "vm.state", SNAPSHOT_SAVE_LIMIT)
                finally:
                    await qmp.execute("cont")
                await asyncio.to_thread(snap.publish, staging, plan.key, journal, {
                    "machine": self.desc.machine.name, "guest": self.desc.machine.guest,
                    "uptime_at_ready": self.boot.guest_uptime})
            self.boot.saved = True
            self.boot.save = time.monotonic() - started
            self.progress(f"[vhw] snapshot saved in {self.boot.save:.2f} s")
            return True
        except Exception as e:  # the machine runs on without a snapshot
            log.warning("could not save a snapshot of %s: %s", self.desc.machine.name, e)
            return False
        finally:
            self._stop_journal()

    async def power_off(self) -> None:
        """Hard power-off: QEMU goes away, devices (the BMC) stay up."""
        await self._stop_qemu()

    async def relaunch(self) -> None:
        """Start QEMU again (power on after power off); devices stay up."""
        await self._stop_qemu()
        await self._launch(qemu_binary(self.image.qemu), self.accel or "tcg", self.desc.machine.boot_timeout)

    def _login(self) -> ConsoleLogin:
        from ..guests.remote import DiskImage

        if isinstance(self.image, DiskImage):
            return self.image.recipe.console_login
        return LINUX_CONSOLE_LOGIN

    async def _launch(self, qemu: str, accel: str, boot_timeout: float, *, snapshots: bool = False) -> None:
        """Start QEMU and wait for the guest; ``snapshots``: the first launch, which may restore or save one."""
        if self._ready is not None:
            self._ready.clear()
        qmp_host, qmp_guest = socket.socketpair()
        con_host, con_guest = socket.socketpair()
        agent_host = agent_guest = None
        if self.access == "agent":
            agent_host, agent_guest = socket.socketpair()
        sol_guest = self._sol_link.guest_socket() if self._sol_link is not None else None
        guest_ends = [s for s in (qmp_guest, con_guest, agent_guest, sol_guest) if s is not None]
        proxies = []
        proxied = [dev for dev in self._devices if hasattr(dev, "start_proxy")]
        cpu = proxy_cpu() if proxied else None
        for dev in proxied:  # out-of-process PCI functions (I2O)
            arg, sock = await dev.start_proxy(cpu)
            proxies.append(arg)
            guest_ends.append(sock)
        links = Links(qmp_guest.fileno(), con_guest.fileno(),
                      agent_guest.fileno() if agent_guest is not None else None, dict(self._bmc_links),
                      sol_fd=sol_guest.fileno() if sol_guest is not None else None,
                      proxy_devices=tuple(proxies), disk=self._disk,
                      seed=str(self._seed) if self._seed is not None else None, prom_env=self._prom_env())
        argv = build_argv(self.desc, self.image, links, accel=accel, qemu=qemu, extra=self.extra_args,
                          boot=self.boot_choice())
        plan = await self._plan_snapshot(argv) if snapshots else None
        restoring = plan is not None and plan.snapshot is not None
        self.boot = BootTimes(launched=time.monotonic(), restored=restoring)
        if plan is not None and plan.snapshot is not None:
            self._restore_devices(plan)
            plan.snapshot.touch()
            argv = [*argv, *QemuProcess.incoming_args(plan.snapshot.state)]
        self.progress(f"[vhw] {'restoring' if restoring else 'booting'} {self.desc.machine.guest} "
                      f"({accel}, {self.access})")
        try:
            process = await QemuProcess.spawn(argv, workdir=self.workdir, qmp=qmp_host, pass_sockets=guest_ends,
                                              name=f"vhw-{self.desc.machine.name}", cpu=cpu,
                                              on_event=self._on_event)
        except BaseException:
            for s in (qmp_host, con_host, agent_host):
                if s is not None:
                    s.close()
            self._stop_journal()
            raise
        console_writer = await self.console.follow(con_host)
        channel: AgentClient | ConsoleChannel
        writers = [console_writer]
        if agent_host is not None:
            agent_reader, agent_writer = await asyncio.open_connection(sock=agent_host, limit=STREAM_LIMIT)
            channel = AgentClient(agent_reader, agent_writer)
            writers.append(agent_writer)
        else:
            driver = ConsoleDriver(console_writer.write, name=self.desc.machine.guest, note=self.console.note)
            self.console.attach(driver)
            channel = ConsoleChannel(driver, self._login())
        run = _Run(qemu=process, channel=channel, sockets=[s for s in (qmp_host, con_host, agent_host) if s],
                   writers=writers)
        self._run_state = run
        loop = asyncio.get_running_loop()
        run.tasks.append(loop.create_task(self._watch_exit(run)))
        try:
            self._notify_devices("on_qemu_start")
            if restoring:
                await process.wait_loaded(boot_timeout)
            await process.qmp.execute("cont")
            if restoring and isinstance(channel, AgentClient):
                ready = loop.create_task(asyncio.wait_for(self._restored_ready(channel), boot_timeout))
            else:
                ready = loop.create_task(channel.wait_ready(boot_timeout))
            died = loop.create_task(process.wait())
            done, _ = await asyncio.wait({ready, died}, return_when=asyncio.FIRST_COMPLETED)
            if ready in done:
                died.cancel()
                uptime = ready.result()
                self.boot.guest_uptime = uptime if isinstance(channel, AgentClient) else 0.0
                self.boot.ready = time.monotonic()
                self.progress(f"[vhw] guest ready in {self.boot.to_ready:.2f} s"
                              f"{' (from a snapshot)' if restoring else ''}")
                if plan is not None and plan.journal is not None:
                    self._pending_save = plan
                    if self.save_at_ready:
                        await self.save_snapshot()
                if self._ready is not None:
                    self._ready.set()
                return
            ready.cancel()
            await asyncio.sleep(0.05)
            raise process.exited_error("QEMU exited before the guest was ready")
        except TimeoutError:
            raise GuestError(
                f"the guest was not ready within {boot_timeout:.0f} s "
                f"(console log: {self.console.path})\nlast console lines:\n{self.console.tail_text()}"
            ) from None
        except GuestError as e:
            try:  # a channel that closed usually means QEMU is exiting: say so with its stderr
                await asyncio.wait_for(process.wait(), 0.5)
            except TimeoutError:
                pass
            if not process.running:
                raise process.exited_error(f"QEMU exited before the guest was ready ({e})") from None
            raise GuestError(f"{e}\n(console log: {self.console.path})") from None
        except (EOFError, ConnectionError, OSError) as e:
            if process.running:
                await asyncio.sleep(0.2)
            raise QemuError(f"QEMU's monitor failed ({e!r})", stderr=process.stderr_text(),
                            returncode=process.returncode) from None

    def _prom_env(self) -> tuple[str, ...]:
        """vhw's EEPROM for a sun4u disk guest (NetBSD sparc64): -prom-env of the description's options."""
        if self._disk is None or self.desc.prom is None:
            return ()
        from ..prom import nvram
        from ..prom.options import PromOptions
        from ..store import Store

        prom = PromOptions(Store(None), self.desc.machine.type, mac=self.desc.prom.mac,
                           initial=self.desc.prom.options)
        return tuple(nvram.prom_env_args(prom.injected_options()))

    def _on_event(self, ev: dict) -> None:
        self.events.append(ev)
        r = self._run_state
        if ev.get("event") == "RESET" and r is not None and isinstance(r.channel, ConsoleChannel):
            r.channel.lost()  # the shell is gone with the old boot: log in again (wait_rebooted)
        for dev in self._devices:
            hook = getattr(dev, "on_qmp_event", None)
            if hook is not None:
                try:
                    hook(ev)
                except Exception:
                    log.exception("device %r failed on event %s", dev, ev.get("event"))
        if self._event_cond is not None:
            asyncio.get_running_loop().create_task(self._notify_waiters())

    async def _notify_waiters(self) -> None:
        assert self._event_cond is not None
        async with self._event_cond:
            self._event_cond.notify_all()

    async def _watch_exit(self, run: _Run) -> None:
        await run.qemu.wait()
        log.info("QEMU exited with status %s", run.qemu.returncode)
        self._report_exit(run)

    def _report_exit(self, run: _Run) -> None:
        if not run.exit_reported:
            run.exit_reported = True
            self._notify_devices("on_qemu_exit")

    def _notify_devices(self, hook_name: str) -> None:
        for dev in self._devices:
            hook = getattr(dev, hook_name, None)
            if hook is not None:
                try:
                    hook()
                except Exception:
                    log.exception("device %r failed in %s", dev, hook_name)

    async def _stop_qemu(self) -> None:
        run, self._run_state = self._run_state, None
        self._pending_save = None  # a snapshot is of one QEMU run
        self._stop_journal()
        if run is None:
            return
        if self._ready is not None:
            self._ready.clear()
        await run.qemu.quit()
        for t in run.tasks:
            t.cancel()
        await asyncio.gather(*run.tasks, return_exceptions=True)
        await self.console.stop()
        if isinstance(run.channel, ConsoleChannel):
            self.console.detach(run.channel.driver)
        for w in run.writers:
            w.close()
        for s in run.sockets:
            s.close()
        self._report_exit(run)


def _chardev_for(address: str) -> str:
    """Chardev socket options that connect QEMU to a listening BMC."""
    from ..ipmi.io.extern_server import parse_address

    try:
        _, target = parse_address(address)
    except ValueError:
        raise VhwError(f"BMC address {address!r} is not HOST:PORT or unix:PATH") from None
    if isinstance(target, str):  # unix
        return f"path={target},reconnect=1"
    host, port = target
    return f"host={host or '127.0.0.1'},port={port},reconnect=1,nodelay=on"
