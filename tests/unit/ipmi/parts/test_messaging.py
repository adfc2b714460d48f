"""Message flags, attention, the event buffer and Send Message bridging.

IPMI 2.0 sections 22.1-22.8 and ipmi-extern.md section 11 (attention is a
level; NOATTN must follow when the flags clear).
"""

from __future__ import annotations

import pytest

from vhw.ipmi.core.actions import Attention, AttentionState, InterruptEnable
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.wire.ipmb import IpmbFrameError, IpmbRequest, checksum
from vhw.ipmi.parts.messaging import Messaging

APP = 0x06
SI = Context()  # system interface, as the guest's driver asks


@pytest.fixture
def emitted():
    return []


@pytest.fixture
def m(emitted):
    return Messaging(emitted.append)


def attention(emitted):
    return [a.state for a in emitted if isinstance(a, Attention)]


EVENT = bytes(range(16))

# -- the part ------------------------------------------------------------------


def test_nothing_pending_means_no_attention_and_nothing_emitted(m, emitted):
    assert m.attention_state() == AttentionState.NONE
    assert m.flags() == 0
    assert emitted == []


def test_pretimeout_raises_attn_and_clearing_it_sends_noattn(m, emitted):
    """Section 11: the 949-polls failure: after the flags clear NOATTN must go out."""
    m.set_pretimeout()
    assert m.flags() == 0x08
    assert attention(emitted) == [AttentionState.ATTN]
    m.clear_flags(0x08)
    assert m.flags() == 0
    assert attention(emitted) == [AttentionState.ATTN, AttentionState.NONE]
    assert m.attention_state() == AttentionState.NONE


def test_attention_is_emitted_only_on_change(m, emitted):
    m.enqueue(0, b"\x01")
    m.enqueue(0, b"\x02")
    m.set_pretimeout()
    assert attention(emitted) == [AttentionState.ATTN]
    m.pop_message()
    m.pop_message()
    assert attention(emitted) == [AttentionState.ATTN]  # pre-timeout still pending
    m.clear_flags(0x08)
    assert attention(emitted) == [AttentionState.ATTN, AttentionState.NONE]


def test_attn_irq_needs_the_matching_interrupt_enable(m, emitted):
    """Section 11: ATTN_IRQ only when the source's Global Enables interrupt is on."""
    m.set_enables(0x04)  # event buffer on, no interrupts
    m.post_event(EVENT)
    assert m.attention_state() == AttentionState.ATTN
    m.set_enables(0x04 | 0x01)  # receive-queue interrupt does not cover the event buffer
    assert m.attention_state() == AttentionState.ATTN
    m.set_enables(0x04 | 0x02)  # event-buffer-full interrupt does
    assert m.attention_state() == AttentionState.ATTN_IRQ
    assert attention(emitted) == [AttentionState.ATTN, AttentionState.ATTN_IRQ]


def test_receive_queue_and_pretimeout_use_the_receive_message_interrupt(m):
    m.set_enables(0x01)
    m.set_pretimeout()
    assert m.attention_state() == AttentionState.ATTN_IRQ
    m.clear_flags(0x08)
    m.enqueue(0, b"x")
    assert m.attention_state() == AttentionState.ATTN_IRQ


def test_interrupt_enable_mirrors_global_enables_bit0_on_change_only(m, emitted):
    m.set_enables(0x08)
    m.set_enables(0x09)
    m.set_enables(0x0D)
    m.set_enables(0x0C)
    assert [a.enabled for a in emitted if isinstance(a, InterruptEnable)] == [True, False]
    assert m.interrupt_enabled() is False


def test_event_buffer_respects_enable_and_is_never_overwritten(m):
    """Section 22.8: one entry; a disabled or full buffer takes no event."""
    assert m.post_event(EVENT) is False  # disabled by default (22.1)
    m.set_enables(0x04)
    assert m.post_event(EVENT) is True
    assert m.post_event(bytes(16)) is False
    assert m.read_event() == EVENT
    assert m.read_event() is None


def test_post_event_wants_a_16_byte_record(m):
    with pytest.raises(ValueError):
        m.post_event(b"\x00" * 15)


def test_receive_queue_is_bounded_and_fifo(emitted):
    m = Messaging(emitted.append, queue_size=2)
    assert m.enqueue(0, b"a") and m.enqueue(0, b"b")
    assert m.enqueue(0, b"c") is False
    assert m.dropped == 1
    assert [m.pop_message().data, m.pop_message().data] == [b"a", b"b"]
    assert m.pop_message() is None


def test_disabled_channel_receive_keeps_messages_out(m):
    m.set_channel_receive(0, False)
    assert m.enqueue(0, b"a") is False
    assert m.enqueue(1, b"b") is True


def test_system_reset_drops_everything_and_clears_attention(m, emitted):
    m.set_enables(0x0F)
    m.post_event(EVENT)
    m.enqueue(0, b"a")
    m.system_reset()
    assert m.flags() == 0
    assert m.enables == 0x08
    assert m.attention_state() == AttentionState.NONE
    assert emitted[-1] == Attention(AttentionState.NONE)


# -- through the dispatcher: the measured watchdog flow (ipmi-extern.md §11) ----


def test_measured_pretimeout_flow_ends_in_noattn():
    """Flags 0x0A -> clear 0x08 -> flags 0x02 -> read event -> NOATTN -> read 80h."""
    bmc = create_bmc(BmcConfig())
    assert bmc.handle(APP, 0x2E, b"\x0f", SI, 0).cc == 0
    bmc.take_actions()
    msg = bmc.parts["messaging"]
    msg.set_pretimeout()
    msg.post_event(EVENT)
    assert bmc.take_actions() == [Attention(AttentionState.ATTN_IRQ)]
    assert bmc.handle(APP, 0x31, b"", SI, 0).data == b"\x0a"
    assert bmc.handle(APP, 0x30, b"\x08", SI, 0).cc == 0
    assert bmc.handle(APP, 0x31, b"", SI, 0).data == b"\x02"
    assert bmc.take_actions() == []
    assert bmc.handle(APP, 0x35, b"", SI, 0).data == EVENT
    assert bmc.take_actions() == [Attention(AttentionState.NONE)]
    assert bmc.handle(APP, 0x35, b"", SI, 0).cc == 0x80
    assert bmc.attention_state() == AttentionState.NONE


# -- IPMB frames ----------------------------------------------------------------


def ipmb_request(rs_sa, netfn, cmd, data=b"", *, rs_lun=0, rq_sa=0x20, seq=5, rq_lun=2):
    head = bytes([rs_sa, netfn << 2 | rs_lun])
    body = bytes([rq_sa, seq << 2 | rq_lun, cmd]) + data
    return head + bytes([checksum(head)]) + body + bytes([checksum(body)])


def test_checksum_makes_the_span_sum_to_zero():
    assert checksum(b"\x20\x18") == 0xC8  # the classic Get Device ID header to the BMC
    assert (0x20 + 0x18 + checksum(b"\x20\x18")) & 0xFF == 0


@pytest.mark.parametrize("damage, cc", [(2, 0xCC), (-1, 0xCC)])
def test_ipmb_frame_with_bad_checksum_is_refused(damage, cc):
    frame = bytearray(ipmb_request(0x40, APP, 0x01))
    frame[damage] ^= 0xFF
    with pytest.raises(IpmbFrameError) as e:
        IpmbRequest.parse(bytes(frame))
    assert e.value.cc == cc


def test_ipmb_frame_shorter_than_header_is_c7():
    with pytest.raises(IpmbFrameError) as e:
        IpmbRequest.parse(ipmb_request(0x40, APP, 0x01)[:6])
    assert e.value.cc == 0xC7


def test_ipmb_response_frame_has_correct_checksums():
    req = IpmbRequest.parse(ipmb_request(0x40, APP, 0x01, seq=9, rq_lun=2, rs_lun=0))
    rsp = req.response(0, b"\xaa")
    assert rsp[:2] == bytes([0x20, (APP | 1) << 2 | 2])
    assert sum(rsp[:3]) & 0xFF == 0 and sum(rsp[3:]) & 0xFF == 0
    assert rsp[3:7] == bytes([0x40, 9 << 2 | 0, 0x01, 0x00])


# -- Send Message (22.7) ----------------------------------------------------------


@pytest.fixture
def bridged():
    cfg = BmcConfig.from_dict({"satellites": [{"address": 0x40, "device_id": 0x42, "manufacturer_id": 0x1234}]})
    bmc = create_bmc(cfg)
    bmc.take_actions()
    return bmc


def linux_reads_ipmb_response(get_message: bytes):
    """What Linux' handle_ipmb_get_msg_rsp takes from rsp[] (netfn, cmd, cc, data...)."""
    rsp = bytes([0x1C, 0x33]) + get_message
    assert len(rsp) >= 11
    return {
        "cc": rsp[2],
        "channel": rsp[3] & 0x0F,
        "netfn": rsp[4] >> 2,
        "slave_addr": rsp[6],
        "seq": rsp[7] >> 2,
        "lun": rsp[7] & 3,
        "cmd": rsp[8],
        "data": rsp[9:-1],  # the satellite's CC first, checksum dropped
    }


def test_send_message_round_trip_to_a_satellite(bridged):
    """Send Message (no tracking) -> ATTN -> Get Message Flags -> Get Message."""
    frame = ipmb_request(0x40, APP, 0x01, seq=7, rq_lun=2)
    assert bridged.handle(APP, 0x34, b"\x00" + frame, SI, 0).to_bytes() == b"\x00"
    assert bridged.take_actions() == [Attention(AttentionState.ATTN)]
    assert bridged.handle(APP, 0x31, b"", SI, 0).data == b"\x01"
    got = bridged.handle(APP, 0x33, b"", SI, 0)
    assert got.cc == 0
    seen = linux_reads_ipmb_response(got.to_bytes())
    assert seen["channel"] == 0 and seen["slave_addr"] == 0x40 and seen["seq"] == 7 and seen["lun"] == 0
    assert seen["cmd"] == 0x01 and seen["netfn"] == APP | 1
    assert seen["data"][0] == 0x00  # the satellite's completion code
    assert seen["data"][1] == 0x42  # its device ID
    assert seen["data"][7:10] == b"\x34\x12\x00"  # its manufacturer ID
    body = got.data[1:]  # the frame minus its rqSA (20h), which chk1 still covers
    assert (0x20 + sum(body[:2])) & 0xFF == 0 and sum(body[2:]) & 0xFF == 0
    assert bridged.take_actions() == [Attention(AttentionState.NONE)]


def test_send_message_to_an_absent_address_is_nak_on_write(bridged):
    """Table 22-11: 83h = NAK on write; nothing is queued."""
    rsp = bridged.handle(APP, 0x34, b"\x00" + ipmb_request(0x42, APP, 0x01), SI, 0)
    assert rsp.cc == 0x83
    assert bridged.parts["messaging"].flags() == 0


def test_satellite_answers_other_commands_with_c1(bridged):
    bridged.handle(APP, 0x34, b"\x00" + ipmb_request(0x40, APP, 0x08), SI, 0)
    seen = linux_reads_ipmb_response(bridged.handle(APP, 0x33, b"", SI, 0).to_bytes())
    assert seen["data"] == b"\xc1"


def test_send_message_with_bad_checksum_is_cc(bridged):
    frame = bytearray(ipmb_request(0x40, APP, 0x01))
    frame[-1] ^= 1
    assert bridged.handle(APP, 0x34, b"\x00" + bytes(frame), SI, 0).cc == 0xCC


@pytest.mark.parametrize("channel_byte", [0x01, 0x0F, 0x07, 0xC0])
def test_send_message_needs_an_ipmb_channel_and_valid_tracking(bridged, channel_byte):
    """LAN 1, the system interface, a missing channel, tracking 11b: CCh."""
    rsp = bridged.handle(APP, 0x34, bytes([channel_byte]) + ipmb_request(0x40, APP, 0x01), SI, 0)
    assert rsp.cc == 0xCC


def test_send_message_to_the_bmc_itself_is_answered_by_its_own_table(bridged):
    bridged.handle(APP, 0x34, b"\x00" + ipmb_request(0x20, APP, 0x01), SI, 0)
    seen = linux_reads_ipmb_response(bridged.handle(APP, 0x33, b"", SI, 0).to_bytes())
    assert seen["slave_addr"] == 0x20 and seen["data"][:2] == b"\x00\x20"


def test_send_message_to_the_bmc_does_not_lift_privilege(bridged):
    """A USER on LAN cannot reach an ADMIN command by bridging to 20h."""
    lan_user = Context(channel=1, privilege=Privilege.USER, session_id=7)
    inner = ipmb_request(0x20, APP, 0x40, bytes.fromhex("018022"))
    assert bridged.handle(APP, 0x34, b"\x40" + inner, lan_user, 0).cc == 0
    assert bridged.parts["messaging"].take_tracked(7)[0][6] == 0xD4


def test_send_message_with_tracking_from_lan_goes_to_the_session(bridged):
    lan = Context(channel=1, privilege=Privilege.USER, session_id=7)
    assert bridged.handle(APP, 0x34, b"\x40" + ipmb_request(0x40, APP, 0x01), lan, 0).cc == 0
    assert bridged.parts["messaging"].flags() == 0
    (frame,) = bridged.parts["messaging"].take_tracked(7)
    assert frame[0] == 0x20 and frame[3] == 0x40


def test_send_message_when_the_queue_is_full_is_node_busy(bridged):
    msg = bridged.parts["messaging"]
    while msg.queue_has_room():
        msg.enqueue(0, b"x")
    assert bridged.handle(APP, 0x34, b"\x00" + ipmb_request(0x40, APP, 0x01), SI, 0).cc == 0xC0


def test_send_message_shorter_than_an_ipmb_header_is_c7(bridged):
    assert bridged.handle(APP, 0x34, b"\x00\x40\x18", SI, 0).cc == 0xC7
