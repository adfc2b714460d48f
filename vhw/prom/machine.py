"""A SPARC machine whose EEPROM vhw owns: inject, run, read back, persist.

QEMU and OpenBIOS are only transports for the PROM options
(openprom-sparc.md §12): at every start the options in the machine's store
go in as ``-prom-env`` (on sun4m ``boot-device``/``boot-file`` go through
``-boot``/``-append``, which OpenBIOS reads instead); the live NVRAM can be
read through QMP ``pmemsave`` at any time; and when the guest halts to the
ok prompt, ``printenv`` is read from the serial console and whatever the
guest changed is stored, so it is there at the next start.  Each store
update is one SQLite transaction: killing QEMU (or vhw) loses nothing
already stored.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qemu.qmp import QMPClient

from ..errors import GuestError
from ..guests.images import GuestImage, ensure_image
from ..machine.console import ConsoleLog
from ..machine.description import Description
from ..machine.process import QemuProcess
from ..machine.qemu import qemu_binary
from ..store import Store
from ..trace import NULL_TRACE, Trace
from . import nvram
from .okprompt import OkPrompt
from .options import SUN4M_ROUTED, Change, PromOptions, captured_changes, sun4m_boot_letter
from .tree import PromTree

log = logging.getLogger(__name__)

def build_argv(desc: Description, image: GuestImage, prom: PromOptions, *, qmp_fd: int, console_fd: int,
               qemu: str | None = None, append: str = "", extra: list[str] | None = None,
               hold: bool = False) -> list[str]:
    """QEMU's argv for a SPARC description; the EEPROM comes from ``prom``.

    ``hold``: stop at the ok prompt instead of booting (``auto-boot?=false``
    for this start only; it is not stored)."""
    m = desc.machine
    kernel_args = ["console=ttyS0"] + ([m.append] if m.append else []) + ([append] if append else [])
    argv = [
        qemu or qemu_binary(image.guest.qemu),
        "-name", f"vhw-{m.name}",
        "-M", m.type,
        "-accel", "tcg",  # no KVM for SPARC guests on an x86 host
        "-nodefaults", "-no-user-config", "-display", "none", "-S",
        "-m", str(m.memory),
        "-kernel", str(image.kernel),
        "-chardev", f"socket,id=qmp,fd={qmp_fd}",
        "-mon", "chardev=qmp,mode=control",
        "-chardev", f"socket,id=console,fd={console_fd}",
        "-serial", "chardev:console",
        # The IDPROM MAC is the first NIC's (openprom-sparc.md §2).
        "-nic", f"user,model={'sunhme' if prom.family == 'sun4u' else 'lance'},mac={prom.mac},restrict=on",
    ]
    if image.initrd.exists():
        argv += ["-initrd", str(image.initrd)]
    if prom.family == "sun4m":
        routed = dict((n, v) for n, v in prom.options() if n in SUN4M_ROUTED)
        if "boot-device" in routed:
            argv += ["-boot", sun4m_boot_letter(routed["boot-device"])]
        if routed.get("boot-file"):
            # OpenBIOS sun4m sets boot-file from the kernel command line.
            kernel_args.append(routed["boot-file"])
    argv += ["-append", " ".join(kernel_args)]
    argv += nvram.prom_env_args(prom.injected_options() + ([("auto-boot?", "false")] if hold else []))
    argv += extra or []
    return argv


class SparcMachine:
    """One SPARC guest with vhw's EEPROM.

    ``async with SparcMachine(desc) as m: await m.wait_prompt(60)`` boots the
    guest; ``capture()`` stores what the guest changed once it sits at the
    ok prompt.  ``store`` defaults to ``<state>/<name>.db`` of the
    description (in memory without ``state``).
    """

    def __init__(self, desc: Description, *, image: GuestImage | None = None, store: Store | None = None,
                 workdir: str | Path | None = None, append: str = "",
                 progress: Callable[[str], None] | None = None, faults=None, trace: Trace = NULL_TRACE):
        if desc.prom is None:
            raise ValueError(f"{desc.machine.type} is not a SPARC machine")
        self.desc = desc
        #: vhw.faults.FaultInjector (prom.refuse_write); made from the description's [[fault]] if not given.
        if faults is None:
            from ..faults import FaultInjector

            faults = FaultInjector(desc.faults)
        self.faults = faults
        #: Where tests read the machine's records (the SPARC machine's devices record none yet).
        self.trace = trace
        self.image = image
        self.append = append
        self.progress = progress or (lambda msg: None)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"vhw-{desc.machine.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if store is None:
            state = desc.machine.state
            store = Store(Path(state) / f"{desc.machine.name}.db" if state else None)
        self.store = store
        self.prom = PromOptions(store, desc.machine.type, mac=desc.prom.mac, initial=desc.prom.options)
        self.console = ConsoleLog(self.workdir / "console.log")
        self.ok: OkPrompt | None = None  # the firmware prompt of the current QEMU
        self.qemu: QemuProcess | None = None
        self._sockets: list[socket.socket] = []
        self._writer: asyncio.StreamWriter | None = None
        #: The options injected at the current start (what the guest sees first).
        self.injected: list[tuple[str, str]] = []
        self.cmdline = ""
        self.hold = False
        self.started_at = 0.0

    # -- life cycle ------------------------------------------------------------
    async def start(self, *, hold: bool = False) -> SparcMachine:
        """Boot; with ``hold`` the firmware stops at the ok prompt (the guest
        is not started), e.g. to read the firmware's tree."""
        self.hold = hold
        if self.image is None:
            self.image = await asyncio.to_thread(ensure_image, self.desc.machine.guest, progress=self.progress)
        try:
            await self._launch()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aenter__(self) -> SparcMachine:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    @property
    def qmp(self) -> QMPClient | None:
        """The running QEMU's monitor (None when stopped)."""
        return self.qemu.qmp if self.qemu is not None else None

    async def _launch(self) -> None:
        qmp_host, qmp_guest = socket.socketpair()
        con_host, con_guest = socket.socketpair()
        self._sockets = [qmp_host, con_host]
        self.injected = self.prom.options()
        assert self.image is not None, "start() resolves the image"
        argv = build_argv(self.desc, self.image, self.prom, qmp_fd=qmp_guest.fileno(),
                          console_fd=con_guest.fileno(), append=self.append, hold=self.hold)
        self.cmdline = argv[argv.index("-append") + 1]
        self.progress(f"[vhw] booting {self.desc.machine.guest} on {self.desc.machine.type}")
        self.started_at = time.monotonic()
        self.qemu = await QemuProcess.spawn(argv, workdir=self.workdir, qmp=qmp_host,
                                            pass_sockets=[qmp_guest, con_guest], name=f"vhw-{self.desc.machine.name}")
        self._writer = await self.console.follow(con_host)
        self.ok = ok = OkPrompt(self._write_console)
        self.console.attach(ok)
        await self.qemu.qmp.execute("cont")

    def _write_console(self, data: bytes) -> None:
        if self._writer is not None:
            self._writer.write(data)

    async def _quit_qemu(self) -> None:
        """QEMU gone (quit, then kill), its sockets and console reader closed."""
        qemu, self.qemu = self.qemu, None
        if qemu is not None:
            await qemu.quit()
        await self.console.stop()
        if self.ok is not None:
            self.console.detach(self.ok)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for s in self._sockets:
            s.close()
        self._sockets.clear()

    async def stop(self) -> None:
        """Quit QEMU and clean up; the store stays."""
        await self._quit_qemu()
        self.console.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def restart(self, *, hold: bool = False) -> None:
        """A full QEMU restart: quit, then start again from the store."""
        self.hold = hold
        await self._quit_qemu()
        self.console.feed(b"\n[vhw] --- QEMU restarted ---\n")
        await self._launch()

    # -- the EEPROM ------------------------------------------------------------
    async def wait_prompt(self, timeout: float) -> int:
        """Wait for the ok prompt (after the firmware starts, or the guest halts)."""
        if self.ok is None:
            raise GuestError("the machine is not running")
        try:
            return await self.ok.wait_prompt(timeout)
        except GuestError:
            raise
        except Exception as e:
            raise GuestError(f"no ok prompt within {timeout:.0f} s ({e}); console log {self.console.path}\n"
                             f"{self.console.tail_text()}") from None

    async def read_nvram(self) -> bytes:
        """The live 8 KiB NVRAM, read through QMP pmemsave (clock registers live)."""
        if self.qmp is None:
            raise GuestError("the machine is not running")
        path = self.workdir / "nvram.bin"
        await self.qmp.execute("pmemsave", {"val": nvram.NVRAM_BASES[self.desc.machine.type],
                                            "size": nvram.NVRAM_SIZE, "filename": str(path)})
        data = path.read_bytes()
        if self.prom.family == "sun4u" and data[:1] != bytes([nvram.SIG_SYSTEM]):
            # §1: the M48T59 is reachable only once OpenBIOS has programmed
            # the Simba bridge's I/O window; before that it reads as zeros.
            raise GuestError("the sun4u NVRAM is not mapped yet (OpenBIOS maps it while starting); "
                             "read it again once the firmware has run")
        return data

    def _ok_prompt(self) -> OkPrompt:
        if self.ok is None:
            raise GuestError(f"{self.desc.machine.name} is not running: no firmware prompt to ask")
        return self.ok

    async def firmware_options(self) -> dict[str, bytes]:
        """/options as the firmware holds it now (printenv at the ok prompt)."""
        return await self._ok_prompt().printenv()

    async def firmware_tree(self, timeout: float = 60) -> PromTree:
        """The whole device tree as the firmware holds it (ok prompt)."""
        return await self._ok_prompt().dump_tree(timeout)

    async def capture(self, firmware: dict[str, bytes] | None = None) -> list[Change]:
        """Store what the guest (or an ok-prompt user) changed in /options.

        Needs the ok prompt.  A value equal to what the store injected, or to
        the firmware's default for an option the store does not hold, is
        left alone, so only real changes are stored (one transaction).
        """
        if firmware is None:
            firmware = await self.firmware_options()
        from .okprompt_codec import FIRMWARE_DEFAULTS  # measured printenv of a pristine OpenBIOS

        # OpenBIOS shows the kernel command line as boot-file (§5, and on sun4u too).
        defaults = {**FIRMWARE_DEFAULTS[self.prom.family], "boot-file": self.cmdline}
        if self.hold:  # auto-boot?=false was this start's own, not a change
            firmware = {k: v for k, v in firmware.items() if k != "auto-boot?"}
        pairs, warnings = captured_changes(dict(self.injected), firmware, defaults, family=self.prom.family,
                                           refuse=self.faults.prom.refuses)
        for w in warnings:
            log.warning("not stored: %s", w)
        usable = []
        for name, value in pairs:
            try:
                nvram.check_option(name, value)
                usable.append((name, value))
            except nvram.NvramError as e:
                log.warning("not stored: %s", e)
        # Keep options stored since this start began (vhw prom set) too.
        current = dict(self.prom.options())
        merged = dict(usable)
        merged.update({n: v for n, v in current.items() if dict(self.injected).get(n) != v})
        try:
            return self.prom.replace(list(merged.items()))
        except nvram.NvramError as e:
            log.warning("captured options not stored: %s", e)
            raise
