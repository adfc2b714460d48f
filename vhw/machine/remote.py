"""Boot a downloaded guest (FreeBSD, illumos, NetBSD) against vhw's BMC.

These guests have no vhw agent: everything goes through the serial console
(vhw.machine.serial).  The BMC is the same in-process one the Linux guests
use, on the interfaces the recipe names, with its chassis commands acting on
this QEMU through QMP.  Each run boots a qcow2 overlay of the cached image.

``run_recipe`` is the whole guest test: boot, get past the boot loader, log
in, load the driver, build ipmi_raw where the guest has a compiler, run the
recipe's checks, and return one case per step for the report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from qemu.qmp import EventListener, QMPClient

from ..errors import GuestError, QemuError
from ..guests import source_root
from ..remote import (CLOUD_PASSWORD, RemoteRecipe, cloud_init_seed, image_format,
                      make_overlay)
from .launcher import quit_qemu
from .qemu import extern_bmc_args, qemu_binary
from .serial import ConsoleDriver

log = logging.getLogger(__name__)

#: Disk bus per OS: NetBSD's live image names its root wd0 (IDE); the others find theirs on virtio.
DISK_BUS = {"netbsd": "ide"}


def remote_argv(recipe: RemoteRecipe, disk: Path, disk_format: str, *, accel: str, qmp_fd: int, console_fd: int,
                bmc_chardevs: dict[str, str], seed: Path | None = None, qemu: str | None = None,
                prom_env: list[str] | None = None) -> list[str]:
    """QEMU's argv for a remote recipe: its disk (or CD), console, QMP and IPMI devices."""
    argv = [
        qemu or qemu_binary(recipe.qemu),
        "-name", f"vhw-{recipe.name}",
        "-nodefaults", "-no-user-config", "-display", "none", "-S",
        "-accel", accel,
        "-M", recipe.machine_type,
        "-m", str(recipe.memory),
        "-chardev", f"socket,id=qmp,fd={qmp_fd}",
        "-mon", "chardev=qmp,mode=control",
        "-chardev", f"socket,id=console,fd={console_fd}",
        "-serial", "chardev:console",
    ]
    if recipe.cpu:
        argv += ["-cpu", recipe.cpu]
    if recipe.cdrom:
        argv += ["-drive", f"file={disk},format={disk_format},media=cdrom,readonly=on", "-boot", "d"]
    else:
        argv += ["-drive", f"file={disk},format={disk_format},if={DISK_BUS.get(recipe.os, 'virtio')}"]
    if seed is not None:
        argv += ["-drive", f"file={seed},format=raw,media=cdrom,readonly=on"]
    if recipe.machine_type == "sun4u":
        argv += ["-nic", "user,model=sunhme,restrict=on"]
        argv += prom_env or []
    else:
        argv += ["-nic", "user,model=virtio-net-pci"]
    argv += extern_bmc_args(recipe.interfaces, bmc_chardevs)
    return argv


@dataclass
class StepResult:
    name: str
    outcome: str  # pass / fail / skip
    detail: str = ""


class RemoteMachine:
    """One downloaded guest in QEMU, driven over its serial console.

    Provides what the BMC's power port needs (``running``, ``qmp``,
    ``power_off``, ``relaunch``, ``boot_choice``), so chassis commands from
    the guest or the LAN power, reset and NMI it.
    """

    def __init__(self, recipe: RemoteRecipe, image: Path, *, workdir: str | Path | None = None,
                 progress=None, bmc_config=None, trace=None, faults=None, accel: str = "tcg"):
        self.recipe = recipe
        self.image = Path(image)
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"vhw-{recipe.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.progress = progress or (lambda msg: None)
        self.bmc_config, self.trace, self.faults = bmc_config, trace, faults
        self.accel = accel
        self.console: ConsoleDriver | None = None
        self.bmc_service = None
        self._proc: asyncio.subprocess.Process | None = None
        self._qmp: QMPClient | None = None
        self._sockets: list[socket.socket] = []
        self._tasks: list[asyncio.Task] = []
        self._chardevs: dict[str, str] = {}
        self._disk: Path | None = None
        self._seed: Path | None = None
        self._stderr_path = self.workdir / "qemu.stderr"

    # -- what the BMC's power port uses ----------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def qmp(self) -> QMPClient:
        if self._qmp is None:
            raise GuestError(f"{self.recipe.name} is not running")
        return self._qmp

    def boot_choice(self):
        return None  # the downloaded images boot their own disk; boot flags are not applied

    async def power_off(self) -> None:
        await self._stop_qemu()

    async def relaunch(self) -> None:
        await self._stop_qemu()
        await self._launch()

    # -- life cycle ------------------------------------------------------------------
    async def start(self) -> RemoteMachine:
        fmt = image_format(self.image)
        if self.recipe.cdrom:
            self._disk, self._disk_format = self.image, fmt  # read-only media
        else:
            self._disk = await asyncio.to_thread(make_overlay, self.image, self.workdir / "disk.qcow2", fmt)
            self._disk_format = "qcow2"
        if self.recipe.cloud_init:
            self._seed = await asyncio.to_thread(cloud_init_seed, self.workdir / "seed.iso", "vhw", CLOUD_PASSWORD)
        if self.recipe.interfaces:
            from ..ipmi.service import BmcService

            self.bmc_service = BmcService(self.bmc_config, machine=self, trace=self.trace, faults=self.faults)
            self._chardevs = await self.bmc_service.listen(self.workdir, self.recipe.interfaces)
        await self._launch()
        return self

    def _prom_env(self) -> list[str]:
        from ..prom import nvram
        from ..prom.options import PromOptions
        from ..store import Store

        return nvram.prom_env_args(PromOptions(Store(None), "sun4u").injected_options())

    async def _launch(self) -> None:
        qmp_host, qmp_guest = socket.socketpair()
        con_host, con_guest = socket.socketpair()
        argv = remote_argv(self.recipe, self._disk, self._disk_format, accel=self.accel,
                           qmp_fd=qmp_guest.fileno(), console_fd=con_guest.fileno(),
                           bmc_chardevs=self._chardevs, seed=self._seed,
                           prom_env=self._prom_env() if self.recipe.machine_type == "sun4u" else None)
        (self.workdir / "qemu.argv").write_text(" ".join(argv) + "\n")
        self.progress(f"[vhw] booting {self.recipe.name} ({self.accel}); console transcript "
                      f"{self.workdir / 'console.log'}")
        # stderr goes to a file: nothing has to drain it, and it stays as evidence.
        stderr_file = open(self._stderr_path, "ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv, pass_fds=[qmp_guest.fileno(), con_guest.fileno()], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr_file)
        except FileNotFoundError:
            raise QemuError(f"cannot run {argv[0]}: not found") from None
        finally:
            stderr_file.close()
            qmp_guest.close()
            con_guest.close()
        self._sockets = [qmp_host, con_host]
        self._qmp = QMPClient(f"vhw-{self.recipe.name}")
        try:
            await asyncio.wait_for(self._qmp.connect(qmp_host), 30)
        except Exception:
            await asyncio.sleep(0.3)
            stderr = self._stderr_path.read_bytes()[-4096:].decode(errors="replace")
            raise QemuError("QEMU did not start", stderr=stderr, returncode=self._proc.returncode) from None
        reader, writer = await asyncio.open_connection(sock=con_host)
        if self.console is not None:
            self.console.close()
        self.console = ConsoleDriver(reader, writer, transcript=self.workdir / "console.log", name=self.recipe.name)
        # The BMC hears what the launcher's Machine tells it: power on, resets, exit.
        listener = EventListener()
        self._qmp.register_listener(listener)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._forward_events(listener)),
                       loop.create_task(self._watch_exit(self._proc))]
        self._notify("on_qemu_start")
        await self._qmp.execute("cont")

    def _notify(self, hook: str, *args) -> None:
        if self.bmc_service is not None:
            try:
                getattr(self.bmc_service, hook)(*args)
            except Exception:
                log.exception("the BMC failed in %s", hook)

    async def _forward_events(self, listener: EventListener) -> None:
        async for ev in listener:
            self._notify("on_qmp_event", dict(ev))

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        self._notify("on_qemu_exit")

    async def _stop_qemu(self) -> None:
        proc, qmp, self._proc, self._qmp = self._proc, self._qmp, None, None
        await quit_qemu(proc, qmp)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)  # the exit watcher tells the BMC
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        for s in self._sockets:
            s.close()
        self._sockets = []

    async def stop(self) -> None:
        await self._stop_qemu()
        if self.console is not None:
            self.console.close()
        if self.bmc_service is not None:
            await self.bmc_service.close()

    async def __aenter__(self) -> RemoteMachine:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- the console session ------------------------------------------------------------
    async def login(self) -> None:
        """Past the boot loader steps to a shell prompt (logging in if the recipe says so)."""
        r = self.recipe
        started = time.monotonic()
        for step in r.boot_steps:
            await self.console.expect([step.expect], step.timeout)
            await self.console.send(step.send)
        if r.user is not None:
            left = max(60.0, r.boot_timeout - (time.monotonic() - started))
            await self.console.login(r.user, r.password, shell_prompt=r.shell_prompt, timeout=left)
        else:
            await self.console.sendline("")
            await self.console.expect([re.compile(r.shell_prompt.encode(), re.M)], r.boot_timeout)
        self.progress(f"[vhw] {r.name}: shell after {time.monotonic() - started:.0f} s")

    async def run(self, command: str, timeout: float = 300) -> tuple[int, str]:
        if self.console is None:
            raise GuestError(f"{self.recipe.name} is not running")
        return await self.console.run(command, timeout)

    async def upload(self, path: str, text: str) -> None:
        """Write a text file in the guest through the shell (a quoted here-document)."""
        if "VHW_EOF" in text:
            raise ValueError("the text holds the here-document terminator")
        body = text if text.endswith("\n") else text + "\n"
        status, out = await self.run(f"cat > {path} <<'VHW_EOF'\n{body}VHW_EOF", timeout=600)
        if status != 0:
            raise GuestError(f"{self.recipe.name}: writing {path} failed: {out.strip()}")


async def run_recipe(machine: RemoteMachine, *, results: Path | None = None) -> list[StepResult]:
    """The recipe's whole test on a started machine; one StepResult per step."""
    r = machine.recipe
    steps: list[StepResult] = []
    started = time.monotonic()
    try:
        await machine.login()
        steps.append(StepResult("login", "pass"))
        for command in r.setup:
            await machine.run(command)
        for check in r.checks:
            status, out = await machine.run(check.command)
            steps.append(StepResult(check.name, "pass" if status == 0 else "fail",
                                    _last_line(out) if status == 0 else f"exit status {status}: {out.strip()[-300:]}"))
        if r.build_ipmi_raw:
            steps += await _ipmi_raw(machine)
    except GuestError as e:
        steps.append(StepResult("console", "fail", str(e)[-600:]))
    if results is not None:
        write_results(results, r, steps, time.monotonic() - started, machine.workdir)
    return steps


async def _ipmi_raw(machine: RemoteMachine) -> list[StepResult]:
    """Build ipmi_raw in the guest (with the <linux/ipmi.h> shim) and get the BMC's device ID."""
    status, cc = await machine.run("command -v cc || command -v gcc || command -v clang")
    if status != 0 or not cc.strip():
        return [StepResult("build-ipmi_raw", "skip", "the guest has no C compiler")]
    root = source_root()
    await machine.run("mkdir -p /tmp/vhw/linux")
    await machine.upload("/tmp/vhw/linux/ipmi.h", (root / "guest-images/remote/linux/ipmi.h").read_text())
    await machine.upload("/tmp/vhw/ipmi_raw.c", (root / "guest-images/src/ipmi_raw.c").read_text())
    compiler = cc.strip().splitlines()[-1]
    status, out = await machine.run(f"{compiler} -std=c99 -D_XOPEN_SOURCE=700 -I/tmp/vhw "
                                    "-o /tmp/vhw/ipmi_raw /tmp/vhw/ipmi_raw.c", timeout=600)
    if status != 0:
        return [StepResult("build-ipmi_raw", "fail", out.strip()[-600:])]
    steps = [StepResult("build-ipmi_raw", "pass", compiler)]
    status, out = await machine.run("/tmp/vhw/ipmi_raw 06 01")
    # IPMI 2.0 §20.1 Get Device ID: completion code 00, then 11+ bytes (device ID first).
    words = out.split()
    ok = status == 0 and len(words) >= 12 and words[0] == "00"
    steps.append(StepResult("get-device-id", "pass" if ok else "fail", out.strip()[-300:] or f"exit {status}"))
    return steps


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][-200:] if lines else ""


def write_results(path: Path, recipe: RemoteRecipe, steps: list[StepResult], duration: float,
                  workdir: Path) -> Path:
    """A results file in the pytest plugin's schema, so `vhw report` shows the guest test."""
    failed = any(s.outcome == "fail" for s in steps)
    data = {
        "test": f"guest:{recipe.name}",
        "outcome": "failed" if failed else "passed",
        "duration": round(duration, 3),
        "guest": recipe.name,
        "machine": recipe.machine_type,
        "devices": [f"bmc:{i}" for i in recipe.interfaces],
        "cases": [{"name": s.name, "outcome": s.outcome, "detail": s.detail} for s in steps],
        "findings": [{"severity": "error", "summary": f"{s.name} failed", "evidence": s.detail}
                     for s in steps if s.outcome == "fail"],
        # The keys the pytest plugin's results files use.
        "artifacts": {"console": str(workdir / "console.log"), "qemu_stderr": str(workdir / "qemu.stderr"),
                      "qemu.argv": str(workdir / "qemu.argv")},
        "faults": [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path
