"""The I2O messaging unit (docs/i2o-mpqemu.md B2 and part A's
device-model rule for INTx)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from vhw.i2o import frames as f
from vhw.i2o.mu import (EMPTY, OUTBOUND_POST_BIT, REG_INBOUND, REG_INTR_MASK,
                        REG_INTR_STATUS, REG_OUTBOUND, FrameState, MessagingUnit)


class Guest:
    """Guest RAM as a dict of DMA writes, and the INTx line's history."""

    def __init__(self):
        self.mem: dict[int, bytes] = {}
        self.irq: list[bool] = []

    def mu(self, **kw) -> MessagingUnit:
        return MessagingUnit(self.mem.__setitem__, irq=self.irq.append, **kw)


def post(mu: MessagingUnit, data: bytes) -> int:
    """What a driver does: pop an MFA, store the frame word by word, post."""
    mfa = mu.read(REG_INBOUND)
    for i in range(0, len(data), 4):
        mu.write(mfa + i, int.from_bytes(data[i:i + 4], "little"))
    mu.write(REG_INBOUND, mfa)
    return mfa


def test_inbound_pops_distinct_frames_then_empty():
    """B2 0x40 read: a free MFA inside the BAR, 0xFFFFFFFF when none."""
    mu = Guest().mu(frame_count=3)
    mfas = [mu.read(REG_INBOUND) for _ in range(3)]
    assert mfas == [0x1000, 0x1080, 0x1100]
    assert mu.read(REG_INBOUND) == EMPTY


def test_posted_frames_come_out_in_order_and_are_released():
    mu = Guest().mu(frame_count=2)
    a = post(mu, f.Header(f.Function.UTIL_NOP, size=3).encode()[:12])
    b = post(mu, f.Header(f.Function.EXEC_STATUS_GET, size=9).encode())
    assert mu.read(REG_INBOUND) == EMPTY
    msgs = mu.posted_messages()
    assert [m.mfa for m in msgs] == [a, b]
    assert f.Header.unpack(msgs[1].data).function == 0xA0 and len(msgs[1].data) == 128
    assert mu.posted_messages() == []
    assert mu.read(REG_INBOUND) == EMPTY  # not free until released
    mu.release(b)
    mu.release(a)
    assert [mu.read(REG_INBOUND), mu.read(REG_INBOUND)] == [b, a]  # FIFO order


def test_posting_an_mfa_the_host_does_not_own_is_ignored():
    """Free-frame accounting (B2): only popped frames may be posted."""
    mu = Guest().mu()
    mu.write(REG_INBOUND, 0x1000)       # never popped
    mu.write(REG_INBOUND, 0x1004)       # not a frame start
    mfa = mu.read(REG_INBOUND)
    mu.write(REG_INBOUND, mfa)
    mu.write(REG_INBOUND, mfa)          # posted twice
    assert [m.mfa for m in mu.posted_messages()] == [mfa]
    assert mu.stats["bad_post"] == 3


def test_preserved_mfa_goes_back_to_the_host():
    """B4: after a failure reply the host recycles the preserved frame."""
    mu = Guest().mu(frame_count=1)
    mfa = post(mu, bytes(16))
    mu.posted_messages()
    mu.preserve(mfa)
    assert mu.frame_state(mfa) is FrameState.HOST
    mu.write(REG_INBOUND, mfa)
    assert [m.mfa for m in mu.posted_messages()] == [mfa]


def test_outbound_empty_reads_all_ones_and_replies_need_free_frames():
    g = Guest()
    mu = g.mu()
    assert mu.read(REG_OUTBOUND) == EMPTY
    assert mu.post_reply(b"x" * 20) is False
    for addr in (0x10000, 0x10200):
        mu.write(REG_OUTBOUND, addr)
    assert mu.post_reply(b"a" * 20) and mu.post_reply(b"b" * 20)
    assert mu.post_reply(b"c" * 20) is False
    assert g.mem == {0x10000: b"a" * 20, 0x10200: b"b" * 20}
    assert [mu.read(REG_OUTBOUND), mu.read(REG_OUTBOUND), mu.read(REG_OUTBOUND)] == [
        0x10000, 0x10200, EMPTY]


def test_outbound_returns_only_given_addresses_once():
    """Linux BUGs on a reply MFA outside its buffer: never invent or repeat."""
    g = Guest()
    mu = g.mu(max_outbound=2)
    for addr in (0x5000, 0x5000, 0x6000, 0x7000, EMPTY):
        mu.write(REG_OUTBOUND, addr)
    assert mu.free_outbound == 2
    assert mu.stats["bad_free"] == 2 and mu.stats["outbound_overflow"] == 1
    mu.post_reply(bytes(20))
    mu.write(REG_OUTBOUND, 0x5000)      # still posted: a host bug, ignored
    assert mu.free_outbound == 1


def test_interrupt_status_follows_the_outbound_post_fifo():
    """B2 0x30 bit 3 = outbound post FIFO not empty; INTx is that level while
    mask bit 3 is clear."""
    g = Guest()
    mu = g.mu()
    mu.write(REG_OUTBOUND, 0x8000)
    mu.write(REG_OUTBOUND, 0x8200)
    assert mu.read(REG_INTR_STATUS) == 0 and g.irq == []
    mu.post_reply(bytes(20))
    mu.post_reply(bytes(20))
    assert mu.read(REG_INTR_STATUS) == OUTBOUND_POST_BIT and g.irq == [True]
    mu.read(REG_OUTBOUND)
    assert mu.read(REG_INTR_STATUS) == OUTBOUND_POST_BIT and g.irq == [True]
    mu.read(REG_OUTBOUND)
    assert mu.read(REG_INTR_STATUS) == 0 and g.irq == [True, False]


def test_mask_gates_the_line_but_not_the_status():
    """B2 0x34: Linux writes 0xFFFFFFFF then 0; NetBSD read-modify-writes bit 3;
    pst polls status with the mask set."""
    g = Guest()
    mu = g.mu()
    mu.write(REG_INTR_MASK, 0xFFFFFFFF)
    assert mu.read(REG_INTR_MASK) == 0xFFFFFFFF
    mu.write(REG_OUTBOUND, 0x9000)
    mu.post_reply(bytes(20))
    assert mu.read(REG_INTR_STATUS) == OUTBOUND_POST_BIT and g.irq == [] and not mu.irq_level
    mu.write(REG_INTR_MASK, mu.read(REG_INTR_MASK) & ~OUTBOUND_POST_BIT)
    assert g.irq == [True] and mu.irq_level
    mu.write(REG_INTR_MASK, OUTBOUND_POST_BIT, size=1)  # byte store of the mask
    assert g.irq == [True, False]
    assert mu.read(REG_INTR_MASK, size=1) == OUTBOUND_POST_BIT


def test_partial_port_reads_do_not_pop():
    mu = Guest().mu()
    assert mu.read(REG_INBOUND, size=2) == 0xFFFF
    assert mu.read(REG_INBOUND) == 0x1000


def test_reply_is_cut_to_the_negotiated_frame_size():
    g = Guest()
    mu = g.mu()
    mu.configure_outbound(64)
    mu.write(REG_OUTBOUND, 0xA000)
    assert mu.post_reply(bytes(100))
    assert len(g.mem[0xA000]) == 64 and mu.stats["reply_truncated"] == 1


def test_failing_dma_still_queues_the_frame():
    def broken(gpa, data):
        raise OSError("unmapped")
    mu = MessagingUnit(broken)
    mu.write(REG_OUTBOUND, 0xB000)
    assert mu.post_reply(bytes(20)) and mu.read(REG_OUTBOUND) == 0xB000


def test_reset_returns_to_power_on():
    g = Guest()
    mu = g.mu(frame_count=2)
    post(mu, b"\x01\x00\x04\x00" * 4)
    mu.read(REG_INBOUND)
    mu.write(REG_INTR_MASK, 0xFFFFFFFF)
    mu.write(REG_OUTBOUND, 0xC000)
    mu.write(REG_OUTBOUND, 0xC200)
    mu.post_reply(bytes(20))
    mu.write(REG_INTR_MASK, 0)
    assert g.irq == [True]
    mu.reset()
    assert g.irq == [True, False]
    assert mu.read(REG_INTR_MASK) == 0 and mu.read(REG_INTR_STATUS) == 0
    assert mu.posted_messages() == [] and mu.free_outbound == 0
    assert [mu.read(REG_INBOUND), mu.read(REG_INBOUND)] == [0x1000, 0x1080]
    assert mu.frame_bytes(0x1000) == bytes(128)


def test_frame_bytes_of_unknown_mfa_is_empty():
    assert Guest().mu().frame_bytes(0x1001) == b""


_offsets = st.one_of(st.sampled_from([0x30, 0x34, 0x40, 0x44, 0x31, 0x42, 0x1000, 0x107C]),
                     st.integers(-4, 0x10008))
_ops = st.lists(st.one_of(
    st.tuples(st.just("r"), _offsets, st.sampled_from([1, 2, 4, 8, 3, 0]), st.just(0)),
    st.tuples(st.just("w"), _offsets, st.sampled_from([1, 2, 4, 8, 3]),
              st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0x1000, 0x1080, EMPTY, 0x8]))),
    st.tuples(st.just("reply"), st.just(0), st.integers(0, 300), st.just(0)),
    st.tuples(st.just("take"), st.just(0), st.just(0), st.booleans()),
    st.tuples(st.just("reset"), st.just(0), st.just(0), st.just(0)),
), max_size=60)


@settings(max_examples=200, deadline=None)
@given(_ops)
def test_random_register_traffic_never_raises(ops):
    """Part A: QEMU waits forever, so every access must be answered."""
    g = Guest()
    mu = g.mu(frame_count=4, max_outbound=4)
    for op, off, size, val in ops:
        if op == "r":
            v = mu.read(off, size)
            assert 0 <= v < 1 << 64
        elif op == "w":
            mu.write(off, val, size)
        elif op == "reply":
            mu.post_reply(bytes(size))
        elif op == "take":
            for m in mu.posted_messages():
                (mu.release if val else mu.preserve)(m.mfa)
        else:
            mu.reset()
        assert mu.read(REG_INTR_STATUS) in (0, OUTBOUND_POST_BIT)
        assert (g.irq[-1] if g.irq else False) == mu.irq_level
        assert mu.free_inbound <= 4 and mu.free_outbound <= 4
    states = [mu.frame_state(mu.frame_base + i * mu.frame_size) for i in range(4)]
    assert states.count(FrameState.FREE) == mu.free_inbound
