"""The asyncio transport of the serial channel: a pty, or a serial device.

Thin on purpose, like ``extern_server``: bytes go to ``TerminalMode`` or
``BasicMode`` (``terminal.py``/``basic.py``), requests to the one
``Bmc`` dispatcher through ``BmcRunner.handle`` with
``Context(channel=<serial channel>, interface="serial")``, and the runner
acts on the queued actions once the answer is written.

With ``device = "pty"`` the server opens a new pseudo-terminal, puts its
slave side in raw mode (so the line discipline neither echoes the BMC's own
output back nor turns CR into LF) and keeps the slave open, so clients may
come and go (``ipmitool -I serial-terminal -D <slave>:115200``) without the
master seeing a hang-up.  Any other device is opened through pyserial at
the configured baud rate, 8N1, no flow control.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import tty
from typing import Any

from ..core.bmc import Context, Privilege, Response
from .runner import BmcRunner
from ..parts.serial import SerialConfig, SerialLogin

log = logging.getLogger(__name__)

#: Output not yet taken by the other side, beyond which answers are dropped
#: (a pty nobody reads fills up; the BMC must not grow without bound).
MAX_PENDING_OUTPUT = 64 * 1024


class SerialServer:
    """One serial channel of one BMC."""

    def __init__(self, runner: BmcRunner, config: SerialConfig | None = None) -> None:
        self.runner = runner
        self.config = config or SerialConfig()
        users = runner.bmc.parts.get("users") if hasattr(runner.bmc, "parts") else None
        self.login = SerialLogin(self.config, users)
        self.stats: dict[str, int] = {}
        if self.config.mode == "terminal":
            from ..wire.serial_terminal import TerminalMode

            self.mode: Any = TerminalMode(self._dispatch, self.login, echo=self.config.echo, clock=self._now)
        else:
            from ..wire.serial_basic import BasicMode

            self.mode = BasicMode(self._dispatch, self.login)
        self.path: str | None = None
        self._fd: int | None = None
        self._slave_fd: int | None = None
        self._serial: Any = None
        self._pending = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer_armed = False

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> str:
        """Open the pty or device; returns the path a client opens."""
        self._loop = asyncio.get_running_loop()
        if self.config.device == "pty":
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._fd, self._slave_fd = master, slave
            self.path = os.ttyname(slave)
        else:
            import serial  # pyserial

            try:
                self._serial = serial.Serial(self.config.device, self.config.baud, bytesize=8, parity="N",
                                             stopbits=1, timeout=0, write_timeout=0, xonxoff=False,
                                             rtscts=False)
            except (serial.SerialException, ValueError) as e:
                raise OSError(errno.ENODEV, f"cannot open {self.config.device}: {e}") from None
            self._fd = self._serial.fileno()
            os.set_blocking(self._fd, False)
            self.path = self.config.device
        self._loop.add_reader(self._fd, self._on_readable)
        self.runner.attach(self)
        log.info("serial channel %d (%s mode) on %s", self.config.channel, self.config.mode, self.path)
        return self.path

    async def close(self) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            if self._writer_armed:
                self._loop.remove_writer(self._fd)
                self._writer_armed = False
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        elif self._fd is not None:
            os.close(self._fd)
        if self._slave_fd is not None:
            os.close(self._slave_fd)
        self._fd = self._slave_fd = None
        await self.runner.detach(self)

    # -- requests -----------------------------------------------------------------
    def _now(self) -> float:
        return self.runner.now()

    def _dispatch(self, netfn: int, cmd: int, data: bytes, lun: int, privilege: Privilege,
                  user_id: int | None) -> Response:
        ctx = Context(channel=self.config.channel, privilege=privilege, interface="serial", lun=lun,
                      user_id=user_id)
        return self.runner.handle(netfn, cmd, data, ctx)

    def feed(self, data: bytes) -> bytes:
        """Answer input bytes (also the in-process API for tests)."""
        try:
            return self.mode.feed(data)
        except Exception:  # the codecs promise not to raise; the channel must survive anyway
            log.exception("serial %s mode failed on %r", self.config.mode, bytes(data)[:64])
            self._count("codec_failures")
            return b""

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:  # no slave open (cannot happen while we hold it): wait
                return
            log.warning("serial read failed: %s", e)
            self._count("read_errors")
            return
        if not data:
            return
        out = self.feed(data)
        if out:
            self._write(out)
        self.runner.settle()

    def _write(self, data: bytes) -> None:
        if len(self._pending) + len(data) > MAX_PENDING_OUTPUT:
            self._count("output_dropped")
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        while self._pending and self._fd is not None:
            try:
                n = os.write(self._fd, self._pending)
            except BlockingIOError:
                break
            except OSError as e:
                log.warning("serial write failed: %s", e)
                self._count("write_errors")
                self._pending.clear()
                break
            del self._pending[:n]
        want = bool(self._pending) and self._fd is not None
        if want and not self._writer_armed and self._loop is not None and self._fd is not None:
            self._loop.add_writer(self._fd, self._flush)
            self._writer_armed = True
        elif not want and self._writer_armed and self._loop is not None and self._fd is not None:
            self._loop.remove_writer(self._fd)
            self._writer_armed = False


async def start_serial(service: Any, spec: str | None, progress: Any = None) -> SerialServer | None:
    """`vhw bmc --serial MODE:PATH` (or the description's [bmc.serial]): start, announce, return it.

    ``spec`` overrides the mode and device of ``[bmc.serial]``; None with no
    table means no serial channel.  Errors a user can cause are VhwErrors.
    """
    from ...errors import VhwError

    config = getattr(service.config, "serial", None)
    if spec:
        try:
            config = SerialConfig.from_spec(spec, config)
        except ValueError as e:
            raise VhwError(str(e)) from None
    if config is None:
        return None
    server = SerialServer(service.runner, config)
    try:
        path = await server.start()
    except OSError as e:
        raise VhwError(f"cannot open the serial channel on {config.device}: {e.strerror or e}") from None
    if progress is not None:
        progress(f"[vhw] serial channel {config.channel} ({config.mode} mode) on {path} "
                 f"(ipmitool -I serial-{config.mode} -D {path}:{config.baud} ...)")
    return server
