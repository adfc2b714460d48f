"""The ipmi-bmc-extern codec against docs/ipmi-extern.md."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vhw.ipmi.wire.extern import (
    ASSUMED_CAPABILITIES,
    Capability,
    Control,
    ControlOp,
    ExternCodec,
    Request,
    Response,
    Role,
    checksum,
    encode_control,
    encode_request,
    encode_response,
    escape,
)

H = bytes.fromhex


def feed(data: bytes, codec: ExternCodec | None = None) -> list:
    return (codec or ExternCodec()).receive_data(data)


# -- §13: the measured capture on connect -----------------------------------

CAPTURE_QEMU = H("ff 01 a1 08 3f a1 00 18 01 e7 a0")
CAPTURE_BMC_HELLO = H("ff 01 a1 00 a1")
CAPTURE_RESPONSE = H("00 1c 01 00 00 03 09 08 02 9f 91 12 00 02 0f 00 00 00 00 7a a0")
GET_DEVICE_ID_BODY = H("00 00 03 09 08 02 9f 91 12 00 02 0f 00 00 00 00")


def test_capture_from_qemu_decodes():
    """§13: `ff 01 a1 08 3f a1` then `00 18 01 e7 a0` is VERSION 1, CAPABILITIES
    0x3F, and Get Device ID (seq 00, netfn 06 lun 0, cmd 01)."""
    codec = ExternCodec()
    assert codec.receive_data(CAPTURE_QEMU) == [
        Control(ControlOp.VERSION, 1),
        Control(ControlOp.CAPABILITIES, 0x3F),
        Request(seq=0, netfn=0x06, lun=0, cmd=0x01, data=b""),
    ]
    assert codec.peer_version == 1
    assert codec.peer_capabilities == Capability(0x3F)


def test_capture_bmc_side_encodes_byte_for_byte():
    """§13: the BMC sends `ff 01 a1 00 a1` (VERSION 1, NOATTN) and answers with
    `00 1c 01 00 ... 7a a0`."""
    assert encode_control(ControlOp.VERSION, 1) + encode_control(ControlOp.NOATTN) == CAPTURE_BMC_HELLO
    assert encode_response(0x00, 0x06, 0, 0x01, GET_DEVICE_ID_BODY) == CAPTURE_RESPONSE


def test_capture_response_decodes_in_vm_role():
    """§4: response = seq, (netfn|1)<<2|lun, cmd, CC, data, checksum."""
    [rsp] = feed(CAPTURE_RESPONSE, ExternCodec(Role.VM))
    assert rsp == Response(seq=0, netfn=0x07, lun=0, cmd=0x01, cc=0, data=GET_DEVICE_ID_BODY[1:])


def test_control_and_message_in_one_segment():
    """§7: `05 a1 03 1c 2e 00 b3 a0` arrived in one segment and both parts count."""
    assert feed(H("05 a1 03 1c 2e 00 b3 a0"), ExternCodec(Role.VM)) == [
        Control(ControlOp.ENABLE_IRQ),
        Response(seq=3, netfn=0x07, lun=0, cmd=0x2E, cc=0, data=b""),
    ]


# -- §2 escaping --------------------------------------------------------------


def test_measured_round_trip_vector():
    """§2: request data `a0 a1 aa b0 b1 ba 00 ff` travels as
    `aa b0 aa b1 aa ba b0 b1 ba 00 ff` and comes back intact."""
    data = H("a0 a1 aa b0 b1 ba 00 ff")
    assert escape(data) == H("aa b0 aa b1 aa ba b0 b1 ba 00 ff")
    frame = encode_request(0x05, 0x06, 0, 0x37, data)
    assert H("aa b0 aa b1 aa ba b0 b1 ba 00 ff") in frame
    assert feed(frame) == [Request(0x05, 0x06, 0, 0x37, data)]


@pytest.mark.parametrize("seq", [0xA0, 0xA1, 0xAA])
def test_seq_needing_escape(seq):
    """§2: the escape rule applies to the sequence byte too."""
    frame = encode_request(seq, 0x06, 0, 0x01)
    assert frame[:2] == bytes((0xAA, seq | 0x10))
    assert feed(frame) == [Request(seq, 0x06, 0, 0x01, b"")]


@pytest.mark.parametrize("netfn,lun", [(0x28, 0), (0x28, 1), (0x2A, 2)])
def test_netfn_byte_needing_escape(netfn, lun):
    """§2/§4: netfn<<2|lun of 0xA0, 0xA1, 0xAA is escaped like any data byte."""
    frame = encode_request(0x01, netfn, lun, 0x02)
    assert frame[1] == 0xAA
    assert feed(frame) == [Request(0x01, netfn, lun, 0x02, b"")]


@pytest.mark.parametrize("cmd", [0xA0, 0xA1, 0xAA])
def test_cmd_needing_escape(cmd):
    """§2: any byte equal to A0, A1 or AA is sent as AA, byte|0x10."""
    frame = encode_request(0x01, 0x06, 0, cmd)
    assert frame[2:4] == bytes((0xAA, cmd | 0x10))
    assert feed(frame) == [Request(0x01, 0x06, 0, cmd, b"")]


@pytest.mark.parametrize("target", [0xA0, 0xA1, 0xAA])
def test_checksum_needing_escape(target):
    """§2: the escape rule applies to the checksum byte too."""
    head = bytes((0x01, 0x06 << 2, 0x01))
    pad = (-(sum(head) + target)) & 0xFF  # one data byte that makes the checksum `target`
    assert checksum(head + bytes((pad,))) == target
    frame = encode_request(0x01, 0x06, 0, 0x01, bytes((pad,)))
    assert frame[-3:] == bytes((0xAA, target | 0x10, 0xA0))
    assert feed(frame) == [Request(0x01, 0x06, 0, 0x01, bytes((pad,)))]


def test_response_needing_escapes_everywhere():
    """§2: seq, netfn, cmd, CC and data of a response are all escaped."""
    frame = encode_response(0xAA, 0x28, 0, 0xA1, H("a0 aa"))  # netfn byte (0x29<<2) = 0xA4: plain
    assert feed(frame, ExternCodec(Role.VM)) == [Response(0xAA, 0x29, 0, 0xA1, 0xA0, H("aa"))]
    assert all(b not in (0xA0, 0xA1) for b in frame[:-1])


@pytest.mark.parametrize("arg", [0xA0, 0xA1, 0xAA])
def test_control_argument_needing_escape(arg):
    """§2: QEMU's receiver unescapes control commands too."""
    frame = encode_control(ControlOp.VERSION, arg)
    assert frame == bytes((0xFF, 0xAA, arg | 0x10, 0xA1))
    assert feed(frame) == [Control(ControlOp.VERSION, arg)]


def test_double_escape_leaves_one_escape_pending():
    """§2: after AA clear bit 4 of the next byte; a second AA is itself an
    escape (QEMU's receiver behaves the same)."""
    frame = encode_request(0x01, 0x06, 0, 0x01, H("a0"))
    doubled = frame.replace(H("aa b0"), H("aa aa b0"))
    assert feed(doubled) == [Request(0x01, 0x06, 0, 0x01, H("a0"))]


# -- §3 checksum -------------------------------------------------------------


def test_checksum_makes_frame_sum_zero():
    """§3: the sum of all bytes including the checksum is 0 mod 256."""
    frame = H("00 18 01")
    assert checksum(frame) == 0xE7
    assert (sum(frame) + checksum(frame)) & 0xFF == 0
    assert checksum(b"") == 0


def test_bad_checksum_dropped_counted_and_resynced():
    """§3/§14.1: verify the checksum over the unescaped bytes, seq included;
    never crash on a bad frame."""
    codec = ExternCodec()
    events = codec.receive_data(H("00 18 01 e8 a0") + H("01 18 01 e6 a0"))
    assert events == [Request(1, 0x06, 0, 0x01, b"")]
    assert codec.stats["bad_checksum"] == 1
    assert codec.stats["requests"] == 1


def test_checksum_covers_seq():
    """§3: the sequence byte is part of the sum: the same frame with another seq fails."""
    codec = ExternCodec()
    assert codec.receive_data(H("01 18 01 e7 a0")) == []
    assert codec.stats["bad_checksum"] == 1


# -- malformed frames ---------------------------------------------------------


@pytest.mark.parametrize("frame", [H("00 a0"), H("00 18 a0"), H("00 18 e8 a0")])
def test_short_request_dropped(frame):
    """§4: a request is at least seq, netfn/lun, cmd and checksum."""
    codec = ExternCodec()
    assert codec.receive_data(frame) == []
    assert codec.stats["short"] == 1


def test_shortest_request_accepted():
    """§4: four bytes (seq, netfn, cmd, checksum) is a request with no data."""
    assert feed(H("00 18 01 e7 a0")) == [Request(0, 6, 0, 1, b"")]


def test_short_response_dropped_in_vm_role():
    """§4: QEMU needs at least 5 unescaped bytes; shorter responses are dropped."""
    codec = ExternCodec(Role.VM)
    assert codec.receive_data(H("00 1c 01 e3 a0")) == []
    assert codec.stats["short"] == 1


def test_overlong_frame_dropped_then_resync():
    """§4 size limits: QEMU sends at most 302 bytes; a longer frame is dropped
    and decoding resumes at the next terminator."""
    codec = ExternCodec(max_frame=16)
    ok_at_limit = encode_request(1, 6, 0, 1, bytes(12))  # 16 unescaped bytes
    too_long = encode_request(2, 6, 0, 1, bytes(13))  # 17
    events = codec.receive_data(ok_at_limit + too_long + encode_request(3, 6, 0, 1))
    assert [e.seq for e in events] == [1, 3]
    assert codec.stats["overlong"] == 1


def test_default_cap_accepts_largest_qemu_request():
    """§4: netfn..data of a forwarded request is at most 300 bytes."""
    frame = encode_request(7, 6, 0, 1, bytes(range(256)) + bytes(42))  # netfn+cmd+298 = 300
    assert feed(frame) == [Request(7, 6, 0, 1, bytes(range(256)) + bytes(42))]


def test_overlong_control_dropped():
    """§2: QEMU discards a control command that follows an over-long message."""
    codec = ExternCodec(max_frame=8)
    assert codec.receive_data(bytes(20) + H("01 a1") + H("00 a1")) == [Control(ControlOp.NOATTN)]
    assert codec.stats["overlong"] == 1


@pytest.mark.parametrize("terminator", [0xA0, 0xA1])
def test_escape_pending_at_terminator_dropped(terminator):
    """§2/§4: a control command that arrives while an escape is pending is
    discarded; a message with an unfinished escape is dropped."""
    codec = ExternCodec()
    events = codec.receive_data(H("00 18 01 e7 aa") + bytes((terminator,)) + H("00 18 01 e7 a0"))
    assert events == [Request(0, 6, 0, 1, b"")]
    assert codec.stats["escape_at_terminator"] == 1


def test_empty_frames_ignored():
    """§2: an empty control command (A1 with no opcode) is ignored; so is A0 alone."""
    codec = ExternCodec()
    assert codec.receive_data(H("a0 a1 a1 a0")) == []
    assert codec.stats == {"empty": 4}


def test_garbage_between_frames():
    """§14.1: never crash on a bad frame.  Without a start marker, garbage is
    lost with the frame it runs into; the frame after the next terminator decodes."""
    codec = ExternCodec()
    events = codec.receive_data(
        encode_request(1, 6, 0, 1)
        + H("de ad be ef a0")  # garbage terminated as a message: bad checksum
        + H("13 37 a1")  # garbage as a control: unknown opcode
        + H("55 66") + encode_request(2, 6, 0, 1)  # runs into the next frame: lost with it
        + encode_request(3, 6, 0, 1)
    )
    assert [e.seq for e in events] == [1, 3]
    assert codec.stats["bad_checksum"] == 2
    assert codec.stats["unknown_control"] == 1


def test_control_extra_bytes_ignored():
    """§2: QEMU uses only the first byte as the opcode; VERSION's argument and
    anything after it do not change the command."""
    assert feed(H("ff 01 02 03 a1")) == [Control(ControlOp.VERSION, 1)]
    assert feed(H("00 a1")) == [Control(ControlOp.NOATTN, None)]


def test_pipelined_same_seq_requests_all_yielded_in_order():
    """§10: four requests reached the BMC back-to-back, all with seq 00; answer
    each, in arrival order."""
    frames = [encode_request(0, 6, 0, 1, bytes(63)), encode_request(0, 6, 0, 0x30), encode_request(0, 6, 0, 0x2F), encode_request(0, 6, 0, 0x37)]
    events = feed(b"".join(frames))
    assert [(e.seq, e.cmd) for e in events] == [(0, 1), (0, 0x30), (0, 0x2F), (0, 0x37)]
    assert events[0].data == bytes(63)


def test_byte_at_a_time_feed():
    """§7: QEMU itself reads one byte per callback; frames split anywhere decode the same."""
    stream = CAPTURE_QEMU + encode_request(0xAA, 0x28, 1, 0xA0, H("a0 a1 aa"))
    codec = ExternCodec()
    events = [e for b in stream for e in codec.receive_data(bytes((b,)))]
    assert events == feed(stream)


# -- §5 capabilities -----------------------------------------------------------


def test_can_before_capabilities():
    """§5/§13: the BMC sends its attention state before QEMU's CAPABILITIES is
    read; QEMU always has ATTN and IRQ, nothing else is assumed."""
    codec = ExternCodec()
    assert codec.capabilities == ASSUMED_CAPABILITIES
    assert codec.can(ControlOp.VERSION)
    assert codec.can(ControlOp.NOATTN) and codec.can(ControlOp.ATTN_IRQ)
    assert not codec.can(ControlOp.POWEROFF)
    assert not codec.can(ControlOp.SEND_NMI)


def test_can_after_qemu_capabilities():
    """§5: QEMU 7.2 sends `08 3f a1`; DISABLE/ENABLE (0x40) is never advertised."""
    codec = ExternCodec()
    codec.receive_data(H("08 3f a1"))
    for op in (ControlOp.POWEROFF, ControlOp.RESET, ControlOp.SEND_NMI, ControlOp.GRACEFUL_SHUTDOWN, ControlOp.ATTN_IRQ):
        assert codec.can(op), op
    assert not codec.can(ControlOp.DISABLE)
    assert not codec.can(ControlOp.CAPABILITIES)  # VM -> BMC only


def test_capability_bits_are_per_command():
    """§5: ATTN_IRQ needs ATTN and IRQ; never send a command whose bit is clear."""
    codec = ExternCodec()
    codec.receive_data(H("08 10 a1"))
    assert codec.can(ControlOp.ATTN)
    assert not codec.can(ControlOp.ATTN_IRQ)
    assert not codec.can(ControlOp.ENABLE_IRQ)
    codec.receive_data(H("08 00 a1"))
    assert not codec.can(ControlOp.NOATTN)
    assert codec.can(ControlOp.VERSION)


# -- encoders -----------------------------------------------------------------


def test_response_netfn_is_request_netfn_or_1_same_lun():
    """§4: response netfn byte = (netfn | 1) << 2 | lun, cmd echoed."""
    frame = encode_response(0x10, 0x0A, 2, 0x42, H("00"))
    assert frame[:3] == bytes((0x10, (0x0B << 2) | 2, 0x42))


def test_response_needs_completion_code():
    """§14.2: always include a CC (QEMU drops a response without one, §4)."""
    with pytest.raises(ValueError):
        encode_response(0, 6, 0, 1, b"")


@pytest.mark.parametrize("args", [(256, 6, 0, 1), (0, 64, 0, 1), (0, 6, 4, 1), (0, 6, 0, 256), (-1, 6, 0, 1)])
def test_encoder_rejects_out_of_range_fields(args):
    """Our own bugs fail loudly; only peer input is tolerated silently."""
    with pytest.raises(ValueError):
        encode_request(*args)


# -- fuzz -----------------------------------------------------------------------


@settings(max_examples=400)
@given(st.lists(st.binary(max_size=64), max_size=20), st.sampled_from(list(Role)))
def test_random_bytes_never_raise(chunks, role):
    """§14.1: never crash on a bad frame, whatever arrives."""
    codec = ExternCodec(role, max_frame=32)
    for chunk in chunks:
        for event in codec.receive_data(chunk):
            assert isinstance(event, (Request, Response, Control))
    assert codec.pending <= 32


@settings(max_examples=200)
@given(st.binary(max_size=80), st.integers(0, 255), st.binary(max_size=40))
def test_terminator_resyncs_after_any_garbage(garbage, seq, data):
    """§2: a frame after a terminator decodes whatever came before it."""
    codec = ExternCodec()
    events = codec.receive_data(garbage + b"\xa0" + encode_request(seq, 6, 0, 1, data))
    assert events[-1] == Request(seq, 6, 0, 1, data)


requests = st.builds(
    Request,
    seq=st.integers(0, 255),
    netfn=st.integers(0, 63),
    lun=st.integers(0, 3),
    cmd=st.integers(0, 255),
    data=st.binary(max_size=300),
)
controls = st.builds(
    Control,
    op=st.sampled_from([op for op in ControlOp]),
    arg=st.one_of(st.none(), st.integers(0, 255)),
)


@settings(max_examples=200)
@given(st.lists(st.one_of(requests, controls), max_size=10), st.data())
def test_round_trip_random_requests_and_controls(messages, data):
    """§2-§5: what the encoders write, the codec reads back, however it is split."""
    stream = b"".join(
        encode_request(m.seq, m.netfn, m.lun, m.cmd, m.data) if isinstance(m, Request) else encode_control(m.op, m.arg)
        for m in messages
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    codec = ExternCodec()
    events = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        events += codec.receive_data(stream[start:end])
    assert events == messages


@settings(max_examples=200)
@given(
    st.integers(0, 255), st.integers(0, 63), st.integers(0, 3), st.integers(0, 255),
    st.binary(min_size=1, max_size=300),
)
def test_round_trip_random_responses(seq, netfn, lun, cmd, body):
    """§4: the response round-trips with netfn | 1, same LUN, cmd and CC."""
    [rsp] = ExternCodec(Role.VM).receive_data(encode_response(seq, netfn, lun, cmd, body))
    assert rsp == Response(seq, netfn | 1, lun, cmd, body[0], body[1:])
