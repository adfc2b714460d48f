"""One QEMU process: spawned paused, dies with vhw, stderr kept, QMP connected, quit or killed.

Every machine (the agent- and console-driven guests, the SPARC machines)
starts QEMU through :meth:`QemuProcess.spawn`, so they all get the same
guarantees: QEMU gets PR_SET_PDEATHSIG (it dies with vhw, even on SIGKILL),
its stderr goes to ``qemu.stderr`` in the work directory (nothing has to
drain a pipe, and the file stays as evidence), its command line to
``qemu.argv``, and a QEMU that is missing, refuses its command line or dies
before its monitor answers raises :class:`QemuError` carrying what it said.
:meth:`quit` is the one way to stop it: QMP ``quit``, a grace period, then
SIGKILL.  :meth:`save_state`, :meth:`incoming_args` and :meth:`wait_loaded`
move a VM's state to and from a file (vhw.machine.snapshot).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shlex
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from qemu.qmp import EventListener, QMPClient

from ..errors import QemuError

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
#: Seconds QEMU gets to leave after QMP ``quit`` before it is killed.
QUIT_GRACE = 5.0
#: Seconds QEMU's monitor gets to greet us after the spawn.
QMP_CONNECT_TIMEOUT = 30.0
#: How much of qemu.stderr an error quotes.
STDERR_TAIL = 4096


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _child_setup(cpu: int | None) -> Callable[[], None]:
    """What runs in QEMU's child before exec: die with vhw; maybe pin to ``cpu``."""

    def setup() -> None:
        _die_with_parent()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


class QemuProcess:
    """A running QEMU and its QMP client (``qmp``)."""

    def __init__(self, proc: asyncio.subprocess.Process, qmp: QMPClient, workdir: Path) -> None:
        self.proc = proc
        self.qmp = qmp
        self.workdir = workdir
        self._tasks: list[asyncio.Task] = []

    @classmethod
    async def spawn(cls, argv: list[str], *, workdir: Path, qmp: socket.socket, pass_sockets: list[socket.socket],
                    name: str = "vhw", cpu: int | None = None,
                    on_event: Callable[[dict], None] | None = None) -> QemuProcess:
        """Start ``argv`` (which names ``pass_sockets``' fds and has ``-S``) and connect QMP on ``qmp``.

        ``pass_sockets`` are QEMU's ends of the channels: they are handed to
        the child and closed here.  ``on_event`` gets every QMP event as a
        dict, in order.  The VM is still paused; the caller sends ``cont``.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "qemu.argv").write_text(" ".join(argv) + "\n")
        log.debug("launching %s", " ".join(argv))
        stderr = open(workdir / "qemu.stderr", "ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, pass_fds=[s.fileno() for s in pass_sockets], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr, preexec_fn=_child_setup(cpu))
        except FileNotFoundError:
            qmp.close()
            raise QemuError(f"cannot run {argv[0]}: not found") from None
        finally:
            stderr.close()
            for s in pass_sockets:
                s.close()
        self = cls(proc, QMPClient(name), workdir)
        try:
            await self._connect(qmp)
        except BaseException:
            await self.quit()
            raise
        if on_event is not None:
            listener = EventListener()
            self.qmp.register_listener(listener)
            self._tasks.append(asyncio.get_running_loop().create_task(self._forward(listener, on_event)))
        return self

    async def _connect(self, sock: socket.socket) -> None:
        try:
            await asyncio.wait_for(self.qmp.connect(sock), QMP_CONNECT_TIMEOUT)
        except Exception as e:
            # QEMU probably died (a bad option, a missing file): collect its words.
            try:
                await asyncio.wait_for(self.proc.wait(), 5 if isinstance(e, (EOFError, ConnectionError)) else 0.5)
            except TimeoutError:
                pass
            raise QemuError("QEMU did not start", stderr=self.stderr_text(),
                            returncode=self.proc.returncode) from None

    @staticmethod
    async def _forward(listener: EventListener, on_event: Callable[[dict], None]) -> None:
        async for ev in listener:
            event = dict(ev)
            log.debug("QMP event %s %s", event.get("event"), event.get("data"))
            try:
                on_event(event)
            except Exception:  # a device's hook must not stop the event stream
                log.exception("QMP event handler failed on %s", event.get("event"))

    # -- state -------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def stderr_text(self, limit: int = STDERR_TAIL) -> str:
        """The end of what QEMU wrote to stderr so far."""
        try:
            with open(self.workdir / "qemu.stderr", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    async def wait(self) -> int:
        return await self.proc.wait()

    def exited_error(self, what: str) -> QemuError:
        """A QemuError for QEMU having exited, with its stderr and status."""
        return QemuError(what, stderr=self.stderr_text(), returncode=self.proc.returncode)

    # -- snapshots: QEMU's migration stream to and from a file ---------------------
    async def save_state(self, path: Path, timeout: float) -> None:
        """Write the paused VM's whole state to ``path`` (QMP ``migrate`` to ``exec:cat``); QemuError if
        QEMU fails.  The VM stays paused (runstate postmigrate): ``cont`` resumes it."""
        await self.qmp.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(path))}"})
        await asyncio.wait_for(self._migration_done(), timeout)

    @staticmethod
    def incoming_args(path: Path) -> list[str]:
        """What makes a spawned QEMU load ``path`` (with ``-S`` it stays paused once loaded)."""
        return ["-incoming", f"exec:cat {shlex.quote(str(path))}"]

    async def wait_loaded(self, timeout: float) -> None:
        """Until the state given by ``incoming_args`` is in.  A VM saved paused stays paused after
        the load whatever ``cont`` said before, so ``cont`` comes after this."""
        await asyncio.wait_for(self._migration_done(), timeout)

    async def _migration_done(self) -> None:
        while True:
            info = await self.qmp.execute("query-migrate")
            if not isinstance(info, dict):
                raise QemuError(f"query-migrate answered {info!r}")
            status = info.get("status")
            if status == "completed":
                return
            if status in ("failed", "cancelled"):
                raise QemuError(f"QEMU's migration {status}: {info.get('error-desc', '')}",
                                stderr=self.stderr_text(), returncode=self.proc.returncode)
            await asyncio.sleep(0.01)

    # -- the end -----------------------------------------------------------------
    async def quit(self) -> None:
        """QEMU gone: QMP ``quit``, QUIT_GRACE seconds to exit, then SIGKILL; its monitor disconnected."""
        proc, qmp = self.proc, self.qmp
        if proc.returncode is None:
            try:
                await asyncio.wait_for(qmp.execute("quit"), QUIT_GRACE)
            except Exception:
                pass
            try:
                await asyncio.wait_for(proc.wait(), QUIT_GRACE)
            except TimeoutError:
                log.warning("QEMU did not quit; killing it")
                proc.kill()
                await proc.wait()
        try:
            await asyncio.wait_for(qmp.disconnect(), QUIT_GRACE)
        except Exception:  # after quit the socket is gone: EOFError is expected
            pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
