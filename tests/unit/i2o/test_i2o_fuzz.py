"""Hypothesis fuzz of the IOP: random frames, SGLs pointing inside and
outside guest memory, and random register traffic.  The IOP never raises,
every request that expects a reply gets exactly one (a reply or a FAIL),
no-reply functions get none, and inbound frame accounting stays exact."""

from __future__ import annotations

import struct
from collections import Counter

from hypothesis import HealthCheck, given, settings, strategies as st

from i2o.helpers import MEM_SIZE, FakeGuestMemory, HostDriver, linux_bringup, ram_disk
from vhw.i2o import frames as f
from vhw.i2o.executive import NO_REPLY_FUNCTIONS
from vhw.i2o.iop import Iop
from vhw.i2o.mu import EMPTY, REG_INBOUND, FrameState

DISK_SIZE = 64 * 1024
SCRATCH = 0x100000          # random SGLs land here or beyond guest RAM, never on reply frames
SCRATCH_END = 0x180000
HELD = {f.Function.EXEC_LCT_NOTIFY, f.Function.UTIL_EVENT_REGISTER}
FUNCTIONS = [int(fn) for fn in f.Function] + [0x02, 0x7F, 0xA5, 0xC5]

addresses = st.one_of(st.integers(SCRATCH, SCRATCH_END - 1), st.integers(MEM_SIZE - 64, 0xFFFFFFFF))
sgl_element = st.builds(
    lambda flags, count, addr: struct.pack("<II", flags << 24 | count, addr),
    st.sampled_from([0xD0, 0x54, 0xD4, 0x50, 0x10, 0x14, 0x90, 0x4C, 0xCC, 0x20, 0xE0, 0xE4, 0x30,
                     0x00, 0x80, 0x7C, 0x11, 0x18]) | st.integers(0, 0xFF),
    st.integers(0, 0x3000) | st.integers(0, 0xFFFFFF),
    addresses)


@st.composite
def frames(draw):
    """A frame that is mostly well formed, with random body words and SGL."""
    fn = draw(st.sampled_from(FUNCTIONS) | st.integers(0, 0xFF))
    tid = draw(st.sampled_from([0, 0, 8, 8, 1, 9, 0x123, 0xFFF]))
    body = draw(st.lists(st.integers(0, 0xFFFFFFFF) | st.sampled_from([0, 88, 512, 0xFFFFFFFF]),
                         max_size=6))
    body_bytes = struct.pack(f"<{len(body)}I", *body)
    sgl = b"".join(draw(st.lists(sgl_element, max_size=3)))
    size = 4 + (len(body_bytes) + len(sgl)) // 4
    sgl_offset = 4 + len(body) if sgl else 0
    flags, version = 0, 1
    mangle = draw(st.sampled_from(["none"] * 6 + ["size", "sgl_offset", "flags", "version"]))
    if mangle == "size":
        size = draw(st.integers(0, 40))
    elif mangle == "sgl_offset":
        sgl_offset = draw(st.integers(0, 15))
    elif mangle == "flags":
        flags = draw(st.integers(0, 0xFF))
    elif mangle == "version":
        version = draw(st.integers(0, 15))
    return f.Header(fn, target_tid=tid, size=size, sgl_offset=sgl_offset, flags=flags,
                    version=version).encode() + body_bytes + sgl


class Fuzzer:
    """Posts frames with unique contexts and accounts every reply."""

    def __init__(self, running: bool) -> None:
        self.mem = FakeGuestMemory()
        self.iop = Iop(self.mem, disks=[ram_disk(DISK_SIZE)])
        self.host = linux_bringup(self.iop, self.mem) if running else HostDriver(self.iop, self.mem)
        if not running:
            self.host.give_frames()
        self.expect: dict[int, tuple[str, int]] = {}
        self.got: Counter = Counter()
        self.next_ctx = 0x1000

    def post(self, frame: bytes) -> None:
        frame = frame[:self.iop.config.inbound_frame_size]
        ctx = self.next_ctx
        self.next_ctx += 1
        frame = frame[:12].ljust(12, b"\0") + struct.pack("<I", ctx) + frame[16:]
        fn = frame[7]
        decoded = f.decode_request(frame.ljust(self.iop.config.inbound_frame_size, b"\0"))
        if isinstance(decoded, f.TransportFailure):
            kind = "fail"
        elif fn in HELD:
            kind = "held"
        elif fn == f.Function.UTIL_NOP or (fn in NO_REPLY_FUNCTIONS
                                           and decoded.header.target_tid == f.IOP_TID):
            kind = "none"        # executive functions elsewhere are wrong-target errors
        else:
            kind = "one"
        self.expect[ctx] = (kind, fn)
        self.host.post(frame)
        self.drain()

    def drain(self) -> None:
        for r in self.host.replies():
            ctx = r.header.transaction_context
            if r.failed:
                _, _, mfa = f.failure_fields(r)
                self.host.nop(mfa)       # what Linux/UnixWare do with the preserved MFA
            self.got[ctx] += 1
        if self.iop.mu.free_outbound < 8:  # IopReset/OutboundInit forgot the frames
            self.host.give_frames()
            self.drain()

    def check(self) -> None:
        dropped = self.iop.stats["replies_dropped_by_reset"]
        assert dropped == 0                # we always keep reply frames available
        for ctx, (kind, fn) in self.expect.items():
            n = self.got[ctx]
            if kind in ("one", "fail"):
                assert n == 1, (hex(fn), kind, n)
            elif kind == "none":
                assert n == 0, (hex(fn), kind, n)
            elif fn == f.Function.EXEC_LCT_NOTIFY:
                assert n <= 1
        states = Counter(self.iop.mu.frame_state(self.iop.mu.frame_base + i * self.iop.mu.frame_size)
                         for i in range(self.iop.mu.frame_count))
        assert sum(states.values()) == self.iop.mu.frame_count
        assert states[FrameState.POSTED] == states[FrameState.IOP] == states[FrameState.HOST] == 0
        assert states[FrameState.FREE] == self.iop.mu.free_inbound == self.iop.mu.frame_count


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(running=st.booleans(), posted=st.lists(frames(), min_size=1, max_size=8))
def test_random_frames_get_exactly_their_replies(running, posted):
    fz = Fuzzer(running)
    try:
        for frame in posted:
            fz.post(frame)
        fz.check()
        assert fz.iop.stats["internal_error"] == 0
    finally:
        fz.iop.close()


register_access = st.tuples(
    st.booleans(),
    st.sampled_from([0x30, 0x34, 0x40, 0x44, 0x31, 0x42, 0x1000, 0x1004, 0xFFFC, 0xFFFF, 0x10000])
    | st.integers(0, 0x10010),
    st.sampled_from([1, 2, 4, 8, 3, 0]),
    st.integers(0, 0xFFFFFFFF) | st.sampled_from([0x1000, 0x1080, 0x10000, EMPTY]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(running=st.booleans(), traffic=st.lists(register_access, max_size=40),
       posted=st.lists(frames(), max_size=3))
def test_random_register_traffic_never_raises_and_frames_stay_accounted(running, traffic, posted):
    mem = FakeGuestMemory()
    iop = Iop(mem, disks=[ram_disk(DISK_SIZE)])
    try:
        if running:
            linux_bringup(iop, mem)
        else:
            HostDriver(iop, mem)
        for frame in posted:
            if iop.read(REG_INBOUND, 4) == EMPTY:
                break
            mfa = iop.mu.frame_base + [iop.mu.frame_state(iop.mu.frame_base + i * iop.mu.frame_size)
                                       for i in range(iop.mu.frame_count)].index(FrameState.HOST) * iop.mu.frame_size
            frame = frame[:128] + b"\0" * (-len(frame[:128]) % 4)
            for i in range(0, len(frame), 4):
                iop.write(mfa + i, 4, int.from_bytes(frame[i:i + 4], "little"))
            iop.write(REG_INBOUND, 4, mfa)
        for is_read, offset, size, value in traffic:
            if is_read:
                v = iop.read(offset, size)
                assert isinstance(v, int)
            else:
                iop.write(offset, size, value)
            states = Counter(iop.mu.frame_state(iop.mu.frame_base + i * iop.mu.frame_size)
                             for i in range(iop.mu.frame_count))
            assert sum(states.values()) == iop.mu.frame_count
            assert states[FrameState.FREE] == iop.mu.free_inbound
            assert states[FrameState.POSTED] == states[FrameState.IOP] == 0
        assert iop.stats["internal_error"] == 0
        assert iop.irq_level == (bool(iop.read(0x30, 4) & 8) and not iop.read(0x34, 4) & 8)
    finally:
        iop.close()
