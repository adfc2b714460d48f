"""The asyncio glue of SOL: the host end of the machine's serial port socketpair."""

from __future__ import annotations

import asyncio
import logging
import socket

from .runner import BmcRunner
from ..parts.sol import Sol

log = logging.getLogger(__name__)


class SerialLink:
    """Connects ``Sol`` to the host end of a QEMU serial chardev socketpair.

    ``guest_socket()`` makes a fresh socketpair for each QEMU launch and
    returns the end QEMU gets (the launcher passes its fd and closes it);
    the host end is read here.  ``runner`` is the BmcRunner whose timers
    call ``Sol.poll`` (``kick`` after serial input re-arms them).
    """

    def __init__(self, sol: Sol, runner: BmcRunner | None = None):
        self.sol = sol
        self.runner = runner
        self._host: socket.socket | None = None
        self._task: asyncio.Task | None = None
        sol.serial_writer = self._write

    def guest_socket(self) -> socket.socket:
        self._close_host()
        host, guest = socket.socketpair()
        host.setblocking(False)
        self._host = host
        self._task = asyncio.get_running_loop().create_task(self._read(host))
        self.sol.set_serial_connected(True)
        return guest

    def _now(self) -> float:
        return self.runner.now() if self.runner is not None else asyncio.get_running_loop().time()

    async def _read(self, host: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(host, 4096)
                if not data:
                    break
                self.sol.from_serial(data, self._now())
                if self.runner is not None:
                    self.runner.kick()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.sol.set_serial_connected(False)

    def _write(self, data: bytes) -> None:
        host = self._host
        if host is None:
            return
        try:
            host.send(data)
        except (BlockingIOError, OSError) as e:
            log.debug("SOL: %d characters for the serial port dropped: %s", len(data), e)

    def _close_host(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._host is not None:
            self._host.close()
            self._host = None

    async def close(self) -> None:
        task = self._task
        self._close_host()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
