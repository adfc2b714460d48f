"""A control socket for a running BMC: change it from another process.

`vhw bmc --control PATH` listens on a UNIX socket for one JSON object per
line and answers one per line: ``{"ok": true, ...}`` or ``{"ok": false,
"error": "..."}``.  Requests:

    {"op": "set-sensor", "sensor": "CPU Temp", "value": 91.5}
    {"op": "set-sensor", "sensor": 5, "state": [0, 3]}       (discrete)
    {"op": "get-sensor", "sensor": "CPU Temp"}
    {"op": "post-event", "record": "hex of 16 bytes"}
    {"op": "ping"}

It is a local administrative channel (file permissions guard it), not IPMI;
clients use ``control_request`` (and `vhw bmc set-sensor`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from .errors import VhwError

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024


class ControlServer:
    """Serves control requests for one BmcService, or for anything with an
    async ``handler(request) -> dict`` (a SPARC machine's PROM)."""

    def __init__(self, service=None, handler=None) -> None:
        self.service = service
        self.handler = handler
        self.path: str | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self, path: str) -> None:
        if os.path.exists(path):
            os.unlink(path)
        self._server = await asyncio.start_unix_server(self._serve, path=path, limit=MAX_LINE)
        os.chmod(path, 0o600)
        self.path = path

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(await self.answer_async(line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as e:
            log.warning("control connection dropped: %s", e)
        finally:
            writer.close()

    def answer(self, line: bytes) -> dict[str, Any]:
        """One request line in, one answer out; bad input is an answer, never an exception."""
        try:
            return {"ok": True, **self._do(_request(line))}
        except Exception as e:
            return _refusal(e, line)

    async def answer_async(self, line: bytes) -> dict[str, Any]:
        if self.handler is None:
            return self.answer(line)
        try:
            return {"ok": True, **await self.handler(_request(line))}
        except Exception as e:
            return _refusal(e, line)

    def _do(self, req: dict) -> dict[str, Any]:
        op = req.get("op")
        service = self.service
        now = service._now()
        if op == "ping":
            return {}
        if op in ("set-sensor", "get-sensor"):
            sensors = service.bmc.parts.get("sensors")
            if sensors is None:
                raise ValueError("this BMC has no sensors")
            key = req["sensor"]
            if op == "set-sensor":
                if "state" in req:
                    sensors.set_state(key, [int(o) for o in req["state"]], now)
                else:
                    value = req["value"]
                    sensors.set_value(key, None if value is None else float(value), now)
                service._settle()
            return {"sensor": sensors.get(key).name, "value": sensors.reading(key, now)}
        if op == "post-event":
            record = bytes.fromhex(req["record"])
            if len(record) != 16:
                raise ValueError("an event record is 16 bytes")
            return {"posted": service.post_event(record)}
        raise ValueError(f"unknown op {op!r}; known: ping, set-sensor, get-sensor, post-event")


def _request(line: bytes) -> dict:
    req = json.loads(line)
    if not isinstance(req, dict):
        raise ValueError("a request is a JSON object")
    return req


def _refusal(e: Exception, line: bytes) -> dict[str, Any]:
    """The answer to a request that failed: the reason, or (for a bug) that it was one."""
    if isinstance(e, (ValueError, KeyError, TypeError, VhwError)):
        return {"ok": False, "error": str(e).strip("'\"")}
    log.error("control request %r failed", line[:200], exc_info=e)  # a bug must not take the device down
    return {"ok": False, "error": f"internal error: {e}"}


async def control_request(path: str, request: dict, timeout: float = 10.0) -> dict:
    """Send one request to a control socket; raises VhwError for a refusal."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
    except (TimeoutError, OSError) as e:
        raise VhwError(f"cannot reach the control socket {path}: {e}") from None
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    if not line:
        raise VhwError(f"the control socket {path} closed the connection")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise VhwError(f"refused: {answer.get('error')}")
    return answer
