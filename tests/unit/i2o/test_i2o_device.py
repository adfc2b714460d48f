"""The IOP as an mpqemu PCI function: identity, BAR decode, DMA over memfd
RAM, INTx through eventfds, and a server that answers every request."""

import asyncio
import os
import random
import socket
import struct

import pytest

from vhw.i2o.device import BAR0_SIZE, I2O_CLASS_CODE, IopPciDevice
from vhw.pci.mpqemu import BAR_ACCESS, HEADER, PCI_CONF, SYNC_SYSMEM, MemoryRegion
from vhw.pci.mpqemu_server import MpqemuServer

BASE = 0xFEBB0000
RAM = 1 << 20


def enabled_device(**kw) -> IopPciDevice:
    dev = IopPciDevice(**kw)
    dev.config_write(0x10, BASE, 4)
    dev.config_write(0x04, 0x0006, 2)  # memory space + bus master
    return dev


def memfd_ram(dev: IopPciDevice) -> int:
    fd = os.memfd_create("ram")
    os.ftruncate(fd, RAM)
    dev.sync_sysmem([MemoryRegion(0, RAM, 0)], [fd])
    return fd


def post_unknown_function(dev: IopPciDevice, reply_frame: int) -> None:
    """A 4-word request for function 0x55 to the executive: a failure reply."""
    dev.bar_write(BASE + 0x44, reply_frame, 4, True)  # give the IOP a reply frame
    mfa = dev.bar_read(BASE + 0x40, 4, True)
    assert mfa != 0xFFFFFFFF
    words = [(4 << 16) | 0x01, (0x55 << 24) | (1 << 12) | 0, 0x11111111, 0x22222222]
    for i, w in enumerate(words):
        dev.bar_write(BASE + mfa + 4 * i, w, 4, True)
    dev.bar_write(BASE + 0x40, mfa, 4, True)


def test_config_space_is_an_i2o_iop_with_a_64k_memory_bar():
    """i2o-mpqemu.md B1: class 0x0E0001; a 64 KiB 32-bit memory BAR0; A6: the
    remote sizes BARs itself, BARs 1-5 and 0x28 read 0; pin A at 0x3D."""
    dev = IopPciDevice()
    assert dev.config_read(0x00, 2) == 0x1234 and dev.config_read(0x02, 2) == 0x0E01
    assert dev.config_read(0x08, 4) >> 8 == I2O_CLASS_CODE
    assert dev.config_read(0x3D, 1) == 1
    dev.config_write(0x10, 0xFFFFFFFF, 4)
    assert dev.config_read(0x10, 4) == (~(BAR0_SIZE - 1)) & 0xFFFFFFFF  # 32-bit, non-prefetchable
    for bar in (0x14, 0x18, 0x1C, 0x20, 0x24, 0x28):
        dev.config_write(bar, 0xFFFFFFFF, 4)
        assert dev.config_read(bar, 4) == 0


def test_bar_accesses_decode_only_while_memory_space_is_enabled():
    dev = IopPciDevice()
    dev.config_write(0x10, BASE, 4)
    assert dev.bar_read(BASE + 0x40, 4, True) == 0xFFFFFFFF and dev.unclaimed == 1
    dev.config_write(0x04, 0x0002, 2)
    mfa = dev.bar_read(BASE + 0x40, 4, True)  # B2: a read of 0x40 pops a free MFA
    assert mfa != 0xFFFFFFFF and 0x48 <= mfa < BAR0_SIZE
    assert dev.bar_read(BASE + 0x40, 4, False) == 0xFFFFFFFF  # an I/O port is not the memory BAR
    assert dev.bar_read(BASE + BAR0_SIZE, 4, True) == 0xFFFFFFFF
    dev.config_write(0x10, 0xFE000000, 4)  # moved: the old base decodes nothing
    assert dev.bar_read(BASE + 0x30, 4, True) == 0xFFFFFFFF
    assert dev.bar_read(0xFE000030, 4, True) == 0
    dev.close()


def test_replies_reach_memfd_ram_and_raise_intx_through_the_eventfd():
    """A8: INTx is a level, "outbound post FIFO non-empty and unmasked";
    a rising level writes the interrupt eventfd, a resample re-signals it
    while the level holds; Interrupt Disable (PCI 3.0 6.2.2 bit 10) gates it."""

    def main():
        dev = enabled_device()
        ram = memfd_ram(dev)
        intr, resample = os.eventfd(0, os.EFD_NONBLOCK), os.eventfd(0, os.EFD_NONBLOCK)
        dev.set_irqfd(intr, resample)
        post_unknown_function(dev, 0x8000)
        reply = os.pread(ram, 20, 0x8000)
        w = struct.unpack("<5I", reply)
        assert w[2:4] == (0x11111111, 0x22222222)  # B4: contexts echoed bit-exactly
        assert (w[4] >> 24) != 0  # not SUCCESS
        assert dev.bar_read(BASE + 0x30, 4, True) & 0x08
        assert os.eventfd_read(intr) == 1
        assert dev.config_read(0x06, 2) & 0x08  # PCI status: Interrupt Status
        dev.resample()  # EOI while the reply is still queued (the server calls this)
        assert os.eventfd_read(intr) == 1
        assert dev.bar_read(BASE + 0x44, 4, True) == 0x8000  # the host pops the reply
        dev.resample()
        with pytest.raises(BlockingIOError):
            os.eventfd_read(intr)  # level low: no re-signal
        dev.config_write(0x04, 0x0406, 2)  # Interrupt Disable
        post_unknown_function(dev, 0x8200)
        with pytest.raises(BlockingIOError):
            os.eventfd_read(intr)
        assert dev.config_read(0x06, 2) & 0x08  # the request still shows in status
        dev.close()
        for fd in (ram, intr, resample):  # the caller's fds stay the caller's
            os.fstat(fd)
            os.close(fd)

    main()


def test_close_releases_every_duplicated_fd():
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    dev = enabled_device()
    for _ in range(5):  # about 115 maps per boot arrive (A5): none may leak
        ram = memfd_ram(dev)
        os.close(ram)
    intr, resample = os.eventfd(0), os.eventfd(0)
    dev.set_irqfd(intr, resample)
    dev.set_irqfd(intr, resample)
    os.close(intr), os.close(resample)
    dev.close()
    assert open_fds() == before


def _message(cmd: int, payload: bytes) -> bytes:
    return HEADER.pack(cmd, 0, len(payload)) + payload


def _random_request(rng: random.Random) -> tuple[bytes, bool]:
    """One proxy request and whether QEMU would wait for its RET (A3)."""
    kind = rng.choice(["cfgread", "cfgwrite", "barread", "barwrite", "reset", "garbage"])
    if kind in ("cfgread", "cfgwrite"):
        addr = rng.choice([0x04, 0x10, 0x30, 0x3C, rng.randrange(0, 0x110)])
        return _message(3 if kind == "cfgread" else 2,
                        PCI_CONF.pack(addr, rng.getrandbits(32), rng.choice([1, 2, 4, 3, 8]))), True
    if kind in ("barread", "barwrite"):
        off = rng.choice([0x30, 0x34, 0x40, 0x44, rng.randrange(0, BAR0_SIZE + 16)])
        return _message(5 if kind == "barread" else 4,
                        BAR_ACCESS.pack(BASE + off, rng.getrandbits(64), rng.choice([1, 2, 4, 8, 3]),
                                        rng.random() < 0.9)), True
    if kind == "reset":
        return _message(7, b""), True
    return _message(rng.choice([2, 3, 4, 5]), os.urandom(rng.randrange(0, 30))), True


def test_random_proxy_traffic_always_gets_exactly_one_answer():
    """A3: "Every request must be answered, including malformed ones" -- a
    missing RET freezes the vCPU.  Random config/BAR/reset/garbage traffic
    against the IOP, with guest frames posted in between."""

    async def main():
        qemu, remote = socket.socketpair()
        dev = enabled_device()
        server = MpqemuServer(remote, dev)
        task = asyncio.create_task(server.serve())
        loop = asyncio.get_running_loop()
        qemu.setblocking(False)
        fd = os.memfd_create("ram")
        os.ftruncate(fd, RAM)
        socket.send_fds(qemu, [_message(0, SYNC_SYSMEM.pack(*([0] + [0] * 7), *([RAM] + [0] * 7),
                                                         *([0] * 8)))], [fd])
        os.close(fd)
        rng = random.Random(1234)
        for _ in range(1500):
            msg, waits = _random_request(rng)
            await loop.sock_sendall(qemu, msg)
            if waits:
                got = await asyncio.wait_for(loop.sock_recv(qemu, 24), 2)
                assert len(got) == 24 and struct.unpack_from("<i", got)[0] == 1  # RET
            if rng.random() < 0.05:  # keep the IOP decoding after random config writes
                for m in (_message(2, PCI_CONF.pack(0x10, BASE, 4)), _message(2, PCI_CONF.pack(4, 6, 2))):
                    await loop.sock_sendall(qemu, m)
                    await asyncio.wait_for(loop.sock_recv(qemu, 24), 2)
        qemu.close()
        await asyncio.wait_for(task, 5)
        remote.close()
        dev.close()

    asyncio.run(main())
