"""mpqemu codec and adapter against messages laid out as QEMU 7.2 sends them.

Layout (docs/i2o-mpqemu.md §A2, include/hw/remote/mpqemu-link.h):
  header  = int cmd; 4 bytes padding; size_t size          -> "<iIQ", 16 bytes
  PciConfDataMsg = uint32_t addr; uint32_t val; int len     -> "<IIi", 12 bytes
  BarAccessMsg   = hwaddr addr; uint64_t val; unsigned size; bool memory (+3 pad)
                                                            -> "<QQIB3x", 24 bytes
  SyncSysmemMsg  = hwaddr gpas[8]; uint64_t sizes[8]; off_t offsets[8]
                                                            -> "<8Q8Q8q", 192 bytes
Commands: SYNC_SYSMEM 0, RET 1, PCI_CFGWRITE 2, PCI_CFGREAD 3, BAR_WRITE 4,
BAR_READ 5, SET_IRQFD 6, DEVICE_RESET 7.  fds travel as SCM_RIGHTS.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pci.helpers import is_open
from vhw.pci.mpqemu import (
    ALL_ONES,
    BarRead,
    BarWrite,
    CfgRead,
    CfgWrite,
    DeviceReset,
    Error,
    MemoryRegion,
    MpqemuCodec,
    SetIrqfd,
    SyncSysmem,
    encode_ret,
)
from vhw.pci.mpqemu_server import MpqemuServer


def header(cmd: int, size: int) -> bytes:
    return struct.pack("<iIQ", cmd, 0, size)


def cfg(cmd: int, addr: int, val: int, length: int) -> bytes:
    return header(cmd, 12) + struct.pack("<IIi", addr, val, length)


def bar(cmd: int, addr: int, val: int, size: int, memory: bool) -> bytes:
    return header(cmd, 24) + struct.pack("<QQIB3x", addr, val, size, memory)


def sysmem(regions: list[tuple[int, int, int]]) -> bytes:
    gpas = [r[0] for r in regions] + [0] * (8 - len(regions))
    sizes = [r[1] for r in regions] + [0] * (8 - len(regions))
    offs = [r[2] for r in regions] + [0] * (8 - len(regions))
    return header(0, 192) + struct.pack("<8Q8Q8q", *gpas, *sizes, *offs)


def memfd(name: str = "ram") -> int:
    return os.memfd_create(name)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


RET_ONES = header(1, 8) + b"\xff" * 8


# --- codec -------------------------------------------------------------------


def test_encode_ret_layout():
    assert encode_ret(0x1234) == header(1, 8) + struct.pack("<Q", 0x1234)
    assert encode_ret(-1) == encode_ret(ALL_ONES) == RET_ONES
    assert len(encode_ret(0)) == 24


def test_config_and_bar_events():
    c = MpqemuCodec(os.close)
    data = (
        cfg(3, 0x00, 0, 2)
        + cfg(2, 0x04, 0x103, 2)
        + bar(4, 0xFEBB0040, 0x1122334455667788, 8, True)
        + bar(5, 0xC000, 0, 1, False)
        + header(7, 0)
    )
    assert c.receive_data(data, []) == [
        CfgRead(0x00, 2),
        CfgWrite(0x04, 0x103, 2),
        BarWrite(0xFEBB0040, 0x1122334455667788, 8, True),
        BarRead(0xC000, 1, False),
        DeviceReset(),
    ]


def test_bar_access_takes_exactly_one_whole_bar_message():
    """The register path: a chunk that is one well-formed BAR_READ/BAR_WRITE
    decodes to its fields; anything else is left for receive_data, and
    nothing is taken while an earlier message is incomplete."""
    c = MpqemuCodec(os.close)
    w = bytearray(bar(4, 0xFEBB0040, 0x1122334455667788, 8, True)) + bytearray(8)
    assert c.bar_access(w, 40) == (4, 0xFEBB0040, 0x1122334455667788, 8, True)
    assert c.bar_access(bar(5, 0xC000, 0, 1, False), 40) == (5, 0xC000, 0, 1, False)
    assert c.bar_access(bar(5, 0xC000, 0, 1, False), 39) is None
    assert c.bar_access(cfg(3, 0, 0, 2) + bytes(12), 40) is None  # 40 bytes, not a BAR access
    bad_size = header(5, 16) + bytes(24)
    assert c.bar_access(bad_size, 40) is None
    data = cfg(3, 0x2E, 0, 2)
    assert c.receive_data(data[:5], []) == []
    assert c.bar_access(bar(5, 0xFEBB0044, 0, 4, True), 40) is None  # partial cfg pending
    assert c.receive_data(data[5:] + bar(5, 0xFEBB0044, 0, 4, True), []) == [
        CfgRead(0x2E, 2), BarRead(0xFEBB0044, 4, True)]
    # fds after the fast path still go to their message.
    fds = [memfd()]
    events = c.receive_data(sysmem([(0, 0x1000, 0)]), fds)
    assert events == [SyncSysmem([MemoryRegion(0, 0x1000, 0)], fds)]
    os.close(fds[0])


def test_byte_by_byte():
    c = MpqemuCodec(os.close)
    data = cfg(3, 0x2E, 0, 2) + bar(5, 0xFEBB0044, 0, 4, True)
    events = []
    for i in range(len(data)):
        events += c.receive_data(data[i:i + 1], [])
    assert events == [CfgRead(0x2E, 2), BarRead(0xFEBB0044, 4, True)]


def test_sync_sysmem_fds_with_first_byte():
    c = MpqemuCodec(os.close)
    fds = [memfd(), memfd()]
    data = sysmem([(0, 0xA0000, 0), (0x100000, 0x1FF00000, 0x100000)])
    events = c.receive_data(data[:1], fds)
    for i in range(1, len(data)):
        events += c.receive_data(data[i:i + 1], [])
    assert events == [SyncSysmem([MemoryRegion(0, 0xA0000, 0), MemoryRegion(0x100000, 0x1FF00000, 0x100000)], fds)]
    assert all(is_open(fd) for fd in fds)
    os.close(fds[0]), os.close(fds[1])


def test_fds_go_to_last_message_of_chunk():
    """Linux ends a read after the message carrying fds; earlier ones carry none."""
    c = MpqemuCodec(os.close)
    fds = [memfd(), memfd()]
    events = c.receive_data(cfg(3, 0, 0, 2) + header(6, 0), fds)
    assert events == [CfgRead(0, 2), SetIrqfd(fds[0], fds[1])]
    for fd in fds:
        os.close(fd)


def test_malformed_messages_answered_and_fds_closed():
    c = MpqemuCodec(os.close)
    stray = memfd()
    events = c.receive_data(cfg(3, 0, 0, 2), [stray])  # cfg read must not carry fds
    assert events == [Error(events[0].reason, 3, True)]
    assert not is_open(stray)

    one = memfd()
    [err] = c.receive_data(header(6, 0), [one])  # SET_IRQFD needs two
    assert isinstance(err, Error) and not err.reply and not is_open(one)

    [err] = c.receive_data(header(0, 192) + bytes(192), [])  # SYNC_SYSMEM without fds
    assert isinstance(err, Error) and not err.reply

    [err] = c.receive_data(header(5, 12) + bytes(12), [])  # BAR_READ with the wrong size
    assert isinstance(err, Error) and err.reply

    [err] = c.receive_data(header(42, 0), [])  # unknown cmd: QEMU never waits on it
    assert isinstance(err, Error) and not err.reply

    [err] = c.receive_data(header(1, 8) + bytes(8), [])  # RET is remote -> proxy only
    assert isinstance(err, Error) and not err.reply

    # oversized: reported at once, payload skipped, stream stays in sync
    events = c.receive_data(header(2, 300), [])
    assert len(events) == 1 and events[0].reply
    assert c.receive_data(bytes(300) + cfg(3, 8, 0, 4), []) == [CfgRead(8, 4)]


def test_nine_fds_rejected():
    c = MpqemuCodec(os.close)
    fds = [memfd() for _ in range(9)]
    [err] = c.receive_data(sysmem([(0, 4096, 0)]), fds)
    assert isinstance(err, Error)
    assert not any(is_open(fd) for fd in fds)


def test_stray_fds_mid_message_closed():
    c = MpqemuCodec(os.close)
    data = cfg(2, 4, 1, 2)
    fd = memfd()
    assert c.receive_data(data[:5], []) == []
    assert c.receive_data(data[5:], [fd]) == [CfgWrite(4, 1, 2)]
    assert not is_open(fd)


def test_codec_closes_nothing_itself_dropped_fds_go_to_its_port():
    """The codec is sans-I/O: an fd it drops goes to the close_fd it was given."""
    dropped: list[int] = []
    c = MpqemuCodec(dropped.append)
    stray, partial = memfd(), memfd()
    assert c.receive_data(cfg(3, 0, 0, 2), [stray])[0].reply  # cfg read must not carry fds
    assert dropped == [stray]
    assert c.receive_data(sysmem([(0, 4096, 0)])[:20], [partial]) == []  # incomplete: still held
    assert dropped == [stray]
    c.close()
    assert dropped == [stray, partial] and is_open(stray) and is_open(partial)
    os.close(stray), os.close(partial)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_random_bytes_never_raise(chunks):
    c = MpqemuCodec(os.close)
    for chunk in chunks:
        for event in c.receive_data(chunk, []):
            assert not isinstance(event, (SyncSysmem, SetIrqfd))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-2, 9), st.integers(0, 200)), max_size=8), st.integers(1, 40))
def test_random_headers_resync(msgs, step):
    """Plausible headers with any size: no exception, every waited-on cmd answered."""
    c = MpqemuCodec(os.close)
    data = b"".join(header(cmd, size) + bytes(size) for cmd, size in msgs)
    events = []
    for i in range(0, len(data), step):
        events += c.receive_data(data[i:i + step], [])
    assert len(events) == len(msgs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40), st.integers(0, 3)), max_size=8))
def test_random_bytes_with_fds_leak_nothing(chunks):
    """Every received fd ends up in exactly one event or closed."""
    c = MpqemuCodec(os.close)
    sent, kept = [], []
    for data, nfds in chunks:
        fds = [memfd() for _ in range(nfds)]
        sent += fds
        for event in c.receive_data(data, fds):
            if isinstance(event, SyncSysmem):
                kept += event.fds
            elif isinstance(event, SetIrqfd):
                kept += [event.irqfd, event.resamplefd]
    c.close()
    assert {fd for fd in sent if is_open(fd)} == set(kept)
    for fd in kept:
        os.close(fd)


# --- adapter over a real socketpair ------------------------------------------


class FakeDevice:
    def __init__(self):
        self.calls = []
        self.ram_fds = []

    def config_read(self, addr, length):
        self.calls.append(("cfgread", addr, length))
        return {0x00: 0x8086, 0x02: 0x1962}.get(addr, 0)

    def config_write(self, addr, val, length):
        self.calls.append(("cfgwrite", addr, val, length))

    def bar_read(self, addr, size, memory):
        if addr == 0xDEAD:
            raise RuntimeError("boom")
        return 0x1_0000_0000_0000_0000 + 0x44  # too wide: wrapped to 64 bits

    def bar_write(self, addr, val, size, memory):
        raise ValueError("write handler fails")

    def sync_sysmem(self, regions, fds):
        self.calls.append(("sync", regions))
        self.ram_fds = list(fds)

    def set_irqfd(self, irqfd, resamplefd):
        self.calls.append(("irqfd", irqfd, resamplefd))

    def reset(self):
        self.calls.append(("reset",))

    def resample(self):
        self.calls.append(("resample",))


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 10))


async def recv_exact(sock: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = b""
    while len(out) < n:
        chunk = await loop.sock_recv(sock, n - len(out))
        assert chunk, "remote closed"
        out += chunk
    return out


def pair():
    qemu, remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    qemu.setblocking(False)
    return qemu, remote


def test_server_answers_and_passes_fds():
    async def main():
        qemu, remote = pair()
        dev = FakeDevice()
        server = MpqemuServer(remote, dev)
        task = asyncio.create_task(server.serve())
        a, b = memfd("a"), memfd("b")
        os.ftruncate(a, 4096)
        socket.send_fds(qemu, [sysmem([(0, 4096, 0), (0x100000, 4096, 0)])], [a, b])
        os.close(a), os.close(b)
        i1, i2 = os.eventfd(0), os.eventfd(0)
        socket.send_fds(qemu, [header(6, 0)], [i1, i2])
        os.close(i1), os.close(i2)
        qemu.sendall(cfg(3, 0x00, 0, 2))
        assert await recv_exact(qemu, 24) == encode_ret(0x8086)
        qemu.sendall(cfg(2, 0x04, 0x103, 2))
        assert await recv_exact(qemu, 24) == encode_ret(0)
        qemu.sendall(bar(5, 0xFEBB0044, 0, 4, True))
        assert await recv_exact(qemu, 24) == encode_ret(0x44)
        qemu.sendall(bar(5, 0xDEAD, 0, 4, True))  # handler raises
        assert await recv_exact(qemu, 24) == RET_ONES
        qemu.sendall(bar(4, 0xFEBB0040, 1, 4, True))  # handler raises
        assert await recv_exact(qemu, 24) == RET_ONES
        qemu.sendall(header(5, 3) + b"xyz")  # malformed, waited on
        assert await recv_exact(qemu, 24) == RET_ONES
        qemu.sendall(header(7, 0))
        assert await recv_exact(qemu, 24) == encode_ret(0)

        regions = dev.calls[0][1]
        assert regions == [MemoryRegion(0, 4096, 0), MemoryRegion(0x100000, 4096, 0)]
        assert os.fstat(dev.ram_fds[0]).st_size == 4096  # a real, received memfd
        irq = dev.calls[1]
        assert irq[0] == "irqfd" and all(is_open(fd) for fd in irq[1:])
        assert dev.calls[-1] == ("reset",)
        held = dev.ram_fds + list(irq[1:])

        qemu.close()
        await task
        assert not any(is_open(fd) for fd in held)
        remote.close()

    run(main())


def test_old_sysmem_fds_closed_when_replaced():
    async def main():
        qemu, remote = pair()
        dev = FakeDevice()
        server = MpqemuServer(remote, dev)
        task = asyncio.create_task(server.serve())
        baseline = None
        for _ in range(20):
            fds = [memfd(), memfd()]
            socket.send_fds(qemu, [sysmem([(0, 4096, 0), (8192, 4096, 0)])], fds)
            for fd in fds:
                os.close(fd)
            qemu.sendall(cfg(3, 0, 0, 2))  # a reply means the sync before it was handled
            assert await recv_exact(qemu, 24) == encode_ret(0x8086)
            if baseline is None:
                baseline = open_fds()
            assert open_fds() == baseline  # exactly one set of two held
        old = dev.ram_fds
        assert all(is_open(fd) for fd in old)
        qemu.close()
        await task
        remote.close()
        assert open_fds() == baseline - 2 - 2  # both sockets and the last set closed

    run(main())


def test_resample_eventfd_reaches_the_device():
    """A8: at the guest's EOI KVM signals the resample eventfd, and the remote
    re-asserts if its condition still holds: the server watches that fd."""
    async def main():
        qemu, remote = pair()
        dev = FakeDevice()
        task = asyncio.create_task(MpqemuServer(remote, dev).serve())
        i1, i2 = os.eventfd(0), os.eventfd(0)
        socket.send_fds(qemu, [header(6, 0)], [i1, i2])
        qemu.sendall(cfg(3, 0x00, 0, 2))
        assert await recv_exact(qemu, 24) == encode_ret(0x8086)
        os.eventfd_write(i2, 1)
        for _ in range(100):
            if ("resample",) in dev.calls:
                break
            await asyncio.sleep(0.01)
        assert dev.calls.count(("resample",)) == 1
        qemu.sendall(cfg(3, 0x02, 0, 2))  # still serving after a resample
        assert await recv_exact(qemu, 24) == encode_ret(0x1962)
        os.close(i1), os.close(i2)
        qemu.close()
        await task
        remote.close()

    run(main())


class LevelDevice(FakeDevice):
    """A device that tells the server its INTx level."""

    irq_line_level = False


def test_resample_is_taken_only_while_the_line_is_high():
    """A8: a resample only matters while the level is high (the device then
    re-signals).  While a device reports its line low the server leaves the
    resample fd alone; once the line is high the pending resample reaches it."""
    async def main():
        qemu, remote = pair()
        dev = LevelDevice()
        task = asyncio.create_task(MpqemuServer(remote, dev).serve())
        i1, i2 = os.eventfd(0), os.eventfd(0)
        try:
            socket.send_fds(qemu, [header(6, 0)], [i1, i2])
            qemu.sendall(cfg(3, 0x00, 0, 2))
            assert await recv_exact(qemu, 24) == encode_ret(0x8086)
            os.eventfd_write(i2, 1)  # the guest's EOI while the line is low
            for _ in range(3):
                qemu.sendall(cfg(3, 0x02, 0, 2))
                assert await recv_exact(qemu, 24) == encode_ret(0x1962)
            await asyncio.sleep(0.05)
            assert ("resample",) not in dev.calls
            dev.irq_line_level = True
            qemu.sendall(cfg(3, 0x02, 0, 2))  # the loop looks at the level again after this
            assert await recv_exact(qemu, 24) == encode_ret(0x1962)
            for _ in range(100):
                if ("resample",) in dev.calls:
                    break
                await asyncio.sleep(0.01)
            assert dev.calls.count(("resample",)) == 1
        finally:
            qemu.close()  # the server sees EOF and ends, even after a failed check
            await task
            os.close(i1), os.close(i2)
            remote.close()

    run(main())
