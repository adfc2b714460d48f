"""One lock per event loop that its thread holds except while it waits in ``select``.

The extern reader threads (``extern_server``) answer QEMU's requests outside
the event loop, to skip the loop's wake-up on every request.  Everything else
that touches a Bmc (the LAN server, the runner's timers, QMP events, the
Python API) runs as callbacks on the loop.  This lock keeps the two apart
without every one of those places having to know: the loop's thread holds it
all the time, except while it is blocked in its selector with nothing to do,
and a reader thread answers a request only while holding it.  So a request
is answered either while the loop sleeps or between two of its iterations,
never in the middle of a callback, and the Bmc still sees one request at a
time, as with a single thread.

Only the standard library's selector loops have a selector to wrap; on any
other loop (uvloop, say) ``acquire_loop_lock`` returns None and the extern
server reads on the loop as before.
"""

from __future__ import annotations

import asyncio
import selectors
import threading
from typing import Any


class _LockReleasingSelector(selectors.BaseSelector):
    """The loop's selector, releasing the loop lock for the time ``select`` blocks."""

    def __init__(self, inner: selectors.BaseSelector) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.users = 0
        self.lock.acquire()  # made on the loop's thread, which holds it from now on

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.lock.release()
        try:
            return self.inner.select(timeout)
        finally:
            self.lock.acquire()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self.inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.inner.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self.inner.get_key(fileobj)

    def get_map(self) -> Any:
        return self.inner.get_map()

    def close(self) -> None:
        if self.lock.locked():
            self.lock.release()
        self.inner.close()


def acquire_loop_lock(loop: asyncio.AbstractEventLoop) -> threading.Lock | None:
    """The running loop's lock (installed on first use); call on the loop's thread.

    None when the loop has no selector to wrap.  Each successful call is
    matched by one ``release_loop_lock``.
    """
    selector = getattr(loop, "_selector", None)
    if isinstance(selector, _LockReleasingSelector):
        selector.users += 1
        return selector.lock
    if not isinstance(selector, selectors.BaseSelector) or not isinstance(loop, asyncio.BaseEventLoop):
        return None
    wrapper = _LockReleasingSelector(selector)
    wrapper.users = 1
    loop._selector = wrapper  # type: ignore[attr-defined]
    return wrapper.lock


def release_loop_lock(loop: asyncio.AbstractEventLoop) -> None:
    """Drop one use; the last one puts the loop's own selector back."""
    selector = getattr(loop, "_selector", None)
    if not isinstance(selector, _LockReleasingSelector):
        return
    selector.users -= 1
    if selector.users <= 0:
        loop._selector = selector.inner  # type: ignore[attr-defined]
        if selector.lock.locked():
            selector.lock.release()
