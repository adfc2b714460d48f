"""The extern reader thread and the loop lock (vhw.ipmi.io.loop_lock).

Requests on an extern connection are answered from a thread; the Bmc must
still see one caller at a time (the loop's callbacks and the thread never
overlap), answers and the actions they queue must come out as on the loop,
and a loop without a selector to wrap keeps the loop-driven path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from ipmi.helpers import H, QEMU_HELLO, make_bmc, run, serve_pair

from vhw.ipmi.core.actions import Power, PowerOp
from vhw.ipmi.core.bmc import Bmc, NetFn
from vhw.ipmi.io import loop_lock
from vhw.ipmi.io.extern_server import ExternServer
from vhw.ipmi.wire.extern import encode_request


async def connect(server):
    """A fake QEMU past the BMC's VERSION (§13) and its own hello."""
    qemu, task = await serve_pair(server)
    assert await qemu.read_raw(5) == H("ff 01 a1 00 a1")
    qemu.send(QEMU_HELLO)
    return qemu, task


@dataclass
class RecordingBmc(Bmc):
    """Notes the thread of every request, and whether another caller was inside at the time."""

    threads: list[int] = field(default_factory=list)
    inside: int = 0
    overlaps: int = 0
    #: Seconds to stay inside (sleeping lets go of the GIL: a second caller could come in).
    linger: float = 0.0

    def handle(self, netfn, cmd, data, ctx, now):
        self.inside += 1
        if self.inside > 1:
            self.overlaps += 1
        try:
            self.threads.append(threading.get_ident())
            if self.linger:
                time.sleep(self.linger)
            return super().handle(netfn, cmd, data, ctx, now)
        finally:
            self.inside -= 1


@run
async def test_requests_are_answered_from_the_reader_thread():
    bmc = make_bmc(RecordingBmc)
    async with ExternServer(bmc) as server:
        qemu, task = await connect(server)
        for seq in range(20):
            rsp = await qemu.request(seq, NetFn.APP, 0x01)
            assert (rsp.seq, rsp.netfn, rsp.cc) == (seq, NetFn.APP | 1, 0)
        assert len(bmc.threads) == 20
        # Answered off the loop's thread while the loop sleeps; the fake QEMU
        # shares this loop, so a request may find the loop still busy and go
        # to the loop instead (READER_PATIENCE): most, not all, come from the thread.
        off_loop = [t for t in bmc.threads if t != threading.get_ident()]
        assert len(off_loop) > len(bmc.threads) // 2
        await qemu.close()
        await task
    assert not server.connected


@run
async def test_loop_callbacks_never_overlap_a_request():
    """A loop callback that calls the Bmc while the guest sends requests: never two callers at once."""
    bmc = make_bmc(RecordingBmc)
    bmc.linger = 0.0005
    async with ExternServer(bmc) as server:
        qemu, task = await connect(server)
        stop = False

        async def from_the_loop():
            from vhw.ipmi.core.bmc import Context

            while not stop:
                bmc.handle(NetFn.APP, 0x01, b"", Context(interface="kcs"), 0.0)
                await asyncio.sleep(0.0002)  # idle in select now and then: the reader gets its turn

        poker = asyncio.create_task(from_the_loop())
        for seq in range(100):
            rsp = await qemu.request(seq & 0xFF, NetFn.APP, 0x01)
            assert rsp.cc == 0
        stop = True
        await poker
        assert bmc.overlaps == 0
        await qemu.close()
        await task


class PowerOffBmc(Bmc):
    def handle(self, netfn, cmd, data, ctx, now):
        rsp = super().handle(netfn, cmd, data, ctx, now)
        if (netfn, cmd) == (NetFn.APP, 0x01):
            self.emit(Power(PowerOp.OFF, "test"))
        return rsp


@run
async def test_an_action_queued_on_the_thread_reaches_the_loop():
    """A power action from a request answered on the thread is carried out by the loop's power task."""
    done = asyncio.Event()
    seen = []

    class Port:
        async def power(self, op, cause):
            seen.append((op, threading.get_ident()))
            done.set()

    async with ExternServer(make_bmc(PowerOffBmc), power_port=Port()) as server:
        qemu, task = await connect(server)
        assert (await qemu.request(1, NetFn.APP, 0x01)).cc == 0
        await asyncio.wait_for(done.wait(), 2)
        assert seen == [(PowerOp.OFF, threading.get_ident())]
        await qemu.close()
        await task


@run
async def test_the_loop_gets_its_own_selector_back_after_the_last_connection():
    loop = asyncio.get_running_loop()
    own = loop._selector
    async with ExternServer(make_bmc()) as server:
        qemu, task = await connect(server)
        assert (await qemu.request(1, NetFn.APP, 0x01)).cc == 0
        assert loop._selector is not own
        await qemu.close()
        await task
    assert loop._selector is own


def test_a_loop_without_a_selector_keeps_reading_on_the_loop():
    class NoSelectorLoop:
        pass

    assert loop_lock.acquire_loop_lock(NoSelectorLoop()) is None


@run
async def test_without_the_thread_the_loop_answers():
    bmc = make_bmc(RecordingBmc)
    server = ExternServer(bmc)
    server.reader_thread = False
    async with server:
        qemu, task = await connect(server)
        assert (await qemu.request(1, NetFn.APP, 0x01)).cc == 0
        assert bmc.threads == [threading.get_ident()]
        await qemu.close()
        await task


@run
async def test_a_busy_loop_gets_the_requests_in_order():
    """While the loop is busy (holding its lock), the reader hands requests to it instead of waiting:
    every request is answered once, in order, none lost."""
    import time as clock

    bmc = make_bmc(RecordingBmc)
    async with ExternServer(bmc) as server:
        qemu, task = await connect(server)
        for seq in range(5):
            qemu.send(encode_request(seq, NetFn.APP, 0, 0x01))
        # Keep the loop busy (no select, lock held) well past READER_PATIENCE.
        end = clock.monotonic() + 0.05
        while clock.monotonic() < end:
            pass
        replies = await qemu.events_(5)
        assert [(r.seq, r.cc) for r in replies] == [(seq, 0) for seq in range(5)]
        assert threading.get_ident() in bmc.threads  # the loop answered what it was handed
        await qemu.close()
        await task


def test_a_loop_that_ends_while_the_reader_stops_raises_nothing():
    """A machine's loop may end right after QEMU hung up, with the reader's stop still waiting
    for the thread: the dropped stop must give up quietly (a full run reported it as an
    unraisable RuntimeError "no running event loop"), not raise from its clean-up."""
    release = threading.Event()
    slow_reader = threading.Thread(target=release.wait, daemon=True)  # joins only when told
    slow_reader.start()

    async def hang_up_and_leave():
        server = ExternServer(make_bmc())
        gone = asyncio.Event()
        server.on_disconnect = gone.set
        qemu, _ = await connect(server)
        assert (await qemu.request(1, NetFn.APP, 0x01)).cc == 0
        connection = server._connection
        real_reader = connection._reader
        connection._reader = slow_reader  # the stop now waits for this one
        await qemu.close()
        await asyncio.wait_for(gone.wait(), 5)
        real_reader.join(5)  # saw EOF: gone
        await asyncio.sleep(0.05)  # the stop task runs up to its wait for the join
        await server.runner.close()  # the runner's own tasks end properly: only the stop is left
        return connection

    loop = asyncio.new_event_loop()
    try:
        connection = loop.run_until_complete(hang_up_and_leave())
        stops = [t for t in asyncio.all_tasks(loop) if "_stop_reader" in repr(t.get_coro())]
        assert len(stops) == 1
    finally:
        loop.close()
    try:
        stops[0].get_coro().close()  # what dropping the task does: GeneratorExit at its await
    finally:
        release.set()
    assert connection._reader_wake is None  # the clean-up ran to its end
