"""The BMC as a running service: one Bmc, its runner, its extern servers.

``BmcService`` is what a machine attaches: it listens (before QEMU starts)
on one UNIX socket per guest interface, follows the VM's life through the
launcher's hooks (launch, QMP RESET, exit) so the chassis part knows the
truth, and powers the VM through ``MachinePowerPort`` — QMP for what QEMU can
do, a relaunch for power-on.  ``serve_standalone`` runs the same BMC for a
QEMU started by someone else (`vhw bmc`), powering through extern control
commands.

Boot options: the machine layer asks ``boot_choice()`` before each launch
(and the power port before a BMC-requested reset) and the service marks the
flags used once QEMU started with them -- the BIOS's part of the contract.
With a store file (``--state DIR``) the BMC's non-volatile state outlives
this process.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import tempfile
from pathlib import Path
from collections.abc import Callable

from ...errors import VhwError
from ...store import Store
from ..core.actions import PowerOp
from ..core.assemble import create_bmc
from ..core.bmc import Context, Privilege, Response
from ..core.config import BmcConfig
from .extern_server import ExternServer
from .lan_server import LanServer
from .runner import BmcRunner, host_clock_base

log = logging.getLogger(__name__)


class MachinePowerPort:
    """Power through QMP and the launcher (one power port, two adapters: this one and ``ExternPowerPort``).

    Power-off is a hard stop of QEMU (the VM is gone, the BMC stays up);
    power-on relaunches it; a cycle is both, with the chassis' interval
    between.  Reset, NMI and the ACPI button are QMP commands.
    """

    def __init__(self, machine, cycle_interval: float = 1.0):
        self.machine = machine
        self.cycle_interval = cycle_interval

    async def power(self, op: PowerOp, cause: str) -> None:
        m = self.machine
        log.info("power %s (%s)", op.value, cause or "no cause given")
        if op is PowerOp.ON:
            if not m.running:
                await m.relaunch()
        elif op is PowerOp.OFF:
            await m.power_off()
        elif op is PowerOp.CYCLE:
            await m.power_off()
            await asyncio.sleep(self.cycle_interval)
            await m.relaunch()
        elif not m.running:
            log.warning("power %s (%s): the VM is off; nothing to do", op.value, cause)
        elif op is PowerOp.RESET:
            choice = m.boot_choice()
            if choice is not None:
                await _set_boot_order(m, choice)
            await m.qmp.execute("system_reset")
        elif op is PowerOp.NMI:
            await m.qmp.execute("inject-nmi")
        elif op is PowerOp.SOFT_OFF:
            await m.qmp.execute("system_powerdown")


async def _set_boot_order(machine, choice) -> None:
    """Apply boot flags to a running QEMU before a reset (HMP boot_set; best effort)."""
    from ...machine.qemu import BOOT_DRIVES

    drive = BOOT_DRIVES.get(choice.device)
    if drive is None:
        return
    try:
        await machine.qmp.execute("human-monitor-command", {"command-line": f"boot_set {drive}"})
    except Exception as e:  # the reset must happen anyway
        log.warning("could not set the boot order to %s before reset: %s", drive, e)


class BmcService:
    """One BMC serving a machine's guest interfaces."""

    def __init__(self, config: BmcConfig | None, *, machine=None, store: Store | None = None,
                 trace=None, faults=None):
        self.config = config or BmcConfig()
        #: vhw.trace.Trace for in-band and LAN messages; vhw.faults injector; None: neither.
        self.trace = trace
        self.faults = faults
        self.bmc = create_bmc(self.config, store=store if store is not None else Store(None),
                              host_clock_base=host_clock_base())
        #: Boot flags handed to the machine layer and not yet reported used.
        self._boot_in_flight = False
        port = None
        if machine is not None:
            chassis_config = getattr(self.config, "chassis", None)
            port = MachinePowerPort(machine, getattr(chassis_config, "power_cycle_interval", 1.0))
        self.runner = BmcRunner(self.bmc, power_port=port)
        if faults is not None:
            faults.bmc.bind(self)  # immediate faults act through this service
        self.servers: dict[str, ExternServer] = {}
        self._sockdir: Path | None = None
        #: The IPMI-over-LAN listener, once started.
        self.lan_server: LanServer | None = None

    async def start_lan(self, address: str | None = None) -> tuple[str, int]:
        """Serve IPMI over LAN on UDP ``address`` (default: the config's ``lan``); the same Bmc."""
        from ..parts.sessions import lan_context

        address = address or self.config.lan
        if not address:
            raise VhwError("no LAN address: give one or set lan = \"HOST:PORT\" in [bmc]")
        if self.lan_server is not None:
            raise VhwError("this BMC already listens on LAN")
        server = LanServer(lan_context(self.bmc), self.runner, trace=self.trace)
        try:
            bound = await server.start(address)
        except OSError as e:
            raise VhwError(f"cannot listen for IPMI over LAN on {address}: {e.strerror or e}") from None
        self.lan_server = server
        return bound

    @property
    def lan_address(self) -> tuple[str, int] | None:
        """The (host, port) the LAN listener is bound to (port 0 resolved), or None."""
        return self.lan_server.address if self.lan_server is not None else None

    @property
    def chassis(self):
        return self.bmc.parts.get("chassis")

    @property
    def bootopts(self):
        return self.bmc.parts.get("bootopts")

    def boot_choice(self):
        """The BMC's boot flags for the boot about to happen (a qemu.BootChoice), or None."""
        from ...machine.qemu import BootChoice

        if self.bootopts is None:
            return None
        cause = self.chassis.pending_cause if self.chassis is not None else None
        request = self.bootopts.boot_request(cause) if cause is not None else self.bootopts.boot_request()
        self._boot_in_flight = request is not None
        if request is None:
            return None
        return BootChoice(request.device.name.lower(), request.persistent)

    def _boot_happened(self) -> None:
        if self._boot_in_flight and self.bootopts is not None:
            self.bootopts.boot_used()
        self._boot_in_flight = False

    def now(self) -> float:
        """The BMC's clock (the runner's loop time)."""
        return self.runner.now()

    _now = now

    async def listen(self, workdir: Path | None, interfaces) -> dict[str, str]:
        """Listen for QEMU on a UNIX socket per interface; returns chardev options.

        The sockets live in a short private directory (UNIX paths are limited
        to 107 bytes, test work directories are long).
        """
        self._sockdir = Path(tempfile.mkdtemp(prefix="vhw-bmc-"))
        chardevs = {}
        for name in interfaces:
            server = ExternServer(self.runner, interface=name, trace=self.trace)
            server.faults = self.faults.bmc if self.faults is not None else None
            path = self._sockdir / f"{name}.sock"
            await server.start(f"unix:{path}")
            self.servers[name] = server
            chardevs[name] = f"path={path},reconnect=1"
        if getattr(self.config, "lan", None) and self.lan_server is None:
            host, port = await self.start_lan()
            log.info("BMC: IPMI over LAN on %s:%d", host, port)
        return chardevs

    # -- the Python API: act on the BMC from the host ----------------------
    def request(self, netfn: int, cmd: int, data: bytes = b"", ctx: Context | None = None) -> Response:
        """Send one request as a host-side client would (default: LAN channel 1, ADMINISTRATOR).

        The answer is immediate; what the request set in motion (power,
        attention) is acted on by the runner as for any transport.
        """
        ctx = ctx or Context(channel=1, interface="lan", session_id=0, privilege=Privilege.ADMINISTRATOR)
        rsp = self.runner.handle(netfn, cmd, bytes(data), ctx)
        self._settle()
        return rsp

    def post_event(self, record: bytes) -> bool:
        """Put a 16-byte event record into the event message buffer (attention follows)."""
        posted = self.bmc.parts["messaging"].post_event(bytes(record))
        self._settle()
        return posted

    async def stop_interface(self, name: str) -> None:
        """Hang up on QEMU, as a crashed BMC would: QEMU answers 0xD2 meanwhile and retries every second."""
        await self.servers[name].go_down()

    async def start_interface(self, name: str) -> None:
        """Serve the interface again; QEMU's next reconnect (reconnect=1) gets through."""
        self.servers[name].go_up()

    # -- what vhw.faults' immediate BMC actions do (the faults' port) --------
    def fault_disconnect(self, names: list[str], seconds: float) -> asyncio.Task:
        """Start closing the interfaces' sockets (QEMU answers 0xD2 meanwhile) and
        listening again after ``seconds``; the task ends once listening again."""
        return asyncio.get_running_loop().create_task(self._disconnect_for(names, seconds))

    async def _disconnect_for(self, names: list[str], seconds: float) -> None:
        names = [n for n in names if n in self.servers]
        for name in names:
            await self.stop_interface(name)
        await asyncio.sleep(seconds)
        for name in names:
            await self.start_interface(name)
        log.info("fault: BMC listening again on %s", ", ".join(names))

    def fault_hold_attention(self, held: bool, seconds: float = 0.0) -> None:
        """Assert ATTN on every connection regardless of the flags (for ``seconds``,
        then the faults say whether to let go), or go back to the BMC's own state."""
        from ..core.actions import AttentionState

        self.runner.flush_actions()
        state = AttentionState.ATTN if held else self.runner.attention
        for server in self.servers.values():
            server.set_attention(state)
        if held:
            asyncio.get_running_loop().call_later(seconds, self._attention_timer)

    def _attention_timer(self) -> None:
        if self.faults is not None and self.faults.bmc.release_attention(self.now()):
            self.fault_hold_attention(False)

    def fault_expire_watchdog(self) -> bool:
        """The watchdog's countdown reaches zero now (its own expiry path); False if not running."""
        watchdog = self.bmc.parts.get("watchdog")
        if watchdog is None or not watchdog.expire_now(self._now()):
            return False
        self._settle()
        return True

    # -- the launcher's hooks: what happened to the VM ---------------------
    def on_qemu_start(self) -> None:
        if self.faults is not None:
            loop = asyncio.get_running_loop()
            for spec in self.faults.bmc.vm_started():  # the description's timed faults
                loop.call_later(spec.after or 0.0, self.faults.bmc.run_timed, spec)
        if self.chassis is not None:
            self.chassis.vm_powered_on(self._now())
        self._boot_happened()
        self._settle()

    def on_qmp_event(self, ev: dict) -> None:
        if ev.get("event") == "RESET":
            if self.chassis is not None:
                self.chassis.vm_reset(self._now())
            self._boot_happened()
            if self.bootopts is not None:
                self.bootopts.system_reset()
            self._settle()

    def on_qemu_exit(self) -> None:
        if self.chassis is not None:
            self.chassis.vm_powered_off(self._now())
        if self.bootopts is not None:
            self.bootopts.system_reset()
        self._settle()

    def _settle(self) -> None:
        """Act on what the state change queued (attention drops, timers)."""
        self.runner.flush_actions()
        self.runner.kick()

    async def close(self) -> None:
        if self.lan_server is not None:
            await self.lan_server.close()
            self.lan_server = None
        for server in self.servers.values():
            await server.close()
        self.servers.clear()
        await self.runner.close()
        if self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)


def load_bmc_config(path: str | None) -> BmcConfig:
    """The [bmc] table of a description (backend vhw), or the defaults."""
    if not path:
        return BmcConfig()
    from ...machine.description import load_description

    desc = load_description(path)
    if desc.bmc is None:
        return BmcConfig.from_dict({}, "bmc", machine=desc.machine.name)
    if desc.bmc.backend != "vhw":
        raise VhwError(f"{path}: [bmc] backend is {desc.bmc.backend!r}; `vhw bmc` serves backend \"vhw\"")
    return desc.bmc.config


def state_file(state_dir: str | Path, config_path: str | None) -> Path:
    """DIR/<machine name>.db: one SQLite file per machine ("vhw" without a description)."""
    name = "vhw"
    if config_path:
        from ...machine.description import load_description

        name = load_description(config_path).machine.name
    return Path(state_dir) / f"{name}.db"


async def serve_standalone(*, config_path: str | None, extern: str | None, interface: str,
                           progress: Callable[[str], None], state_dir: str | None = None,
                           control: str | None = None, lan: str | None = None,
                           serial: str | None = None) -> None:
    """`vhw bmc`: serve one BMC to a QEMU started by anyone (and/or on LAN), until SIGINT/SIGTERM."""
    config = load_bmc_config(config_path)
    store = Store(state_file(state_dir, config_path)) if state_dir else None
    service = BmcService(config, store=store)
    server = None
    if extern:
        server = ExternServer(service.runner, interface=interface)
        try:
            address = await server.start(extern)
        except OSError as e:
            raise VhwError(f"cannot listen on {extern}: {e.strerror or e}") from None
    lan = lan or getattr(config, "lan", None)
    if lan:
        try:
            host, port = await service.start_lan(lan)
        except VhwError:
            if server is not None:
                await server.close()
            raise
        progress(f"[vhw] IPMI over LAN on {host}:{port} (ipmitool -I lan -H {host} -p {port} ...)")
    from .serial_server import start_serial  # the serial channel (IPMI 2.0 chapter 14)

    serial_server = await start_serial(service, serial, progress)
    chassis = service.chassis
    if chassis is not None and server is not None:
        # Nothing tells a standalone BMC about the VM but the socket: a
        # connected QEMU is a powered-on VM (what ipmi_sim does, too).
        server.on_connect = lambda: chassis.vm_powered_on(service._now())
        server.on_disconnect = lambda: chassis.vm_powered_off(service._now())
    control_server = None
    if control:
        from ...control import ControlServer

        control_server = ControlServer(service)
        await control_server.start(control)
        progress(f"[vhw] control socket {control} (vhw bmc set-sensor --control {control} ...)")
    if server is not None:
        progress(f"[vhw] BMC listening on {address} for QEMU's ipmi-bmc-extern ({interface}); Ctrl-C stops")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if control_server is not None:
            await control_server.close()
        if serial_server is not None:
            await serial_server.close()
        if server is not None:
            await server.close()
        await service.close()
        progress("[vhw] BMC stopped")
