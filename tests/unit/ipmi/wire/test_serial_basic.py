"""Basic Mode of the serial channel (IPMI 2.0 section 14.4), sans-I/O."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import CC, Context, Privilege, Response
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.parts.serial import SerialConfig, SerialLogin
from vhw.ipmi.wire.ipmb import checksum
from vhw.ipmi.wire.serial_basic import (
    ESCAPED,
    HANDSHAKE,
    BasicCodec,
    BasicMode,
    BasicRequest,
    encode_packet,
    encode_request,
    encode_response,
    escape,
)

GET_DEVICE_ID = BasicRequest(rs_addr=0x20, netfn=0x06, rs_lun=0, rq_addr=0x81, rq_seq=1, rq_lun=0, cmd=0x01)


def make_mode(**serial) -> tuple[BasicMode, list[Context]]:
    bmc = create_bmc(BmcConfig())
    config = SerialConfig.from_dict({"mode": "basic", **serial})
    seen: list[Context] = []

    def dispatch(netfn, cmd, data, lun, privilege, user_id):
        ctx = Context(channel=config.channel, privilege=privilege, interface="serial", lun=lun, user_id=user_id)
        seen.append(ctx)
        return bmc.handle(netfn, cmd, data, ctx, now=0.0)

    return BasicMode(dispatch, SerialLogin(config, bmc.parts["users"])), seen


def unframe(out: bytes) -> list[bytes]:
    """The messages in BMC output (handshakes skipped, escapes undone)."""
    codec_input = out.replace(bytes([HANDSHAKE]), b"")
    msgs, cur, esc, inside = [], bytearray(), False, False
    inverse = {v: k for k, v in ESCAPED.items()}
    for b in codec_input:
        if b == 0xA0:
            cur, inside = bytearray(), True
        elif b == 0xA5 and inside:
            msgs.append(bytes(cur))
            inside = False
        elif esc:
            cur.append(inverse[b])
            esc = False
        elif b == 0xAA:
            esc = True
        else:
            cur.append(b)
    return msgs


def test_escape_table_14_3():
    """14.4.1, table 14-3: A0h, A5h, A6h, AAh and 1Bh are sent as AAh followed by B0h, B5h, B6h, BAh, 3Bh."""
    assert escape(bytes([0xA0, 0xA5, 0xA6, 0xAA, 0x1B, 0x42])) == bytes.fromhex("AAB0 AAB5 AAB6 AABA AA3B 42")


def test_framing_start_and_stop():
    """14.4.1: a packet is a start character A0h, the message, and a stop character A5h."""
    assert encode_packet(b"\x01\xa5") == bytes.fromhex("A0 01 AAB5 A5")


def test_ipmb_checksums():
    """14.4.2: the message is IPMB format -- chk1 covers rsAddr and NetFn, chk2 rqAddr through the data."""
    msg = GET_DEVICE_ID.encode()
    assert msg == bytes.fromhex("20 18 C8 81 04 01 7A")
    assert sum(msg[:3]) % 256 == 0 and sum(msg[3:]) % 256 == 0
    assert checksum(b"\x20\x18") == 0xC8


def test_request_is_decoded():
    assert BasicCodec().feed(encode_request(GET_DEVICE_ID)) == [GET_DEVICE_ID]


def test_get_device_id_response_14_4_3():
    """14.4.3: the response swaps addresses and LUNs, answers NetFn+1, and puts the CC first."""
    mode, seen = make_mode()
    out = mode.feed(encode_request(GET_DEVICE_ID))
    assert out[0] == HANDSHAKE  # 14.4.1: the input buffer is free again
    (msg,) = unframe(out)
    assert msg[:6] == bytes([0x81, 0x1C, checksum(b"\x81\x1c"), 0x20, 0x04, 0x01])
    assert msg[6] == CC.OK and msg[7] == 0x20  # CC, then the device ID
    assert sum(msg[3:]) % 256 == 0
    assert seen[0].channel == 2 and seen[0].privilege == Privilege.USER and seen[0].interface == "serial"


def test_error_completion_code_passes_through():
    mode, _ = make_mode()
    req = BasicRequest(0x20, 0x06, 0, 0x81, 2, 0, 0xFF)
    (msg,) = unframe(mode.feed(encode_request(req)))
    assert msg[6] == CC.INVALID_COMMAND


def test_escaped_bytes_survive_both_ways():
    """14.4.1: bytes equal to the framing characters travel escaped, in requests and responses."""
    req = BasicRequest(0x20, 0x06, 0, 0x81, 0x28, 2, 0xA0, bytes([0xA5, 0xA6, 0xAA, 0x1B]))  # seq<<2|lun = A2
    assert BasicCodec().feed(encode_request(req)) == [req]
    rsp = encode_response(req, Response(0, bytes([0xA0, 0x1B])))
    assert bytes([0xA0, 0x1B]) not in rsp[1:-1]
    (msg,) = unframe(rsp)
    assert msg[-3:-1] == bytes([0xA0, 0x1B])


@pytest.mark.parametrize("raw,counter", [
    (bytes.fromhex("A0 20 18 C8 81 04 01 7C A5"), "dropped_bad_checksum2"),
    (bytes.fromhex("A0 20 18 C7 81 04 01 7A A5"), "dropped_bad_checksum1"),
    (bytes.fromhex("A0 20 18 C8 81 A5"), "dropped_too_short"),
    (bytes.fromhex("A0 20 18 AA 01 A5"), "dropped_bad_escape"),
    (bytes.fromhex("A0 20 18 1B A5"), "dropped_unescaped_esc"),
    (bytes.fromhex("A0 20 18 A0 20 18 C8 81 04 01 7A A5"), "dropped_restarted"),
    (bytes.fromhex("A0") + b"\x00" * 300 + bytes.fromhex("A5"), "dropped_too_long"),
    (bytes.fromhex("42 A5"), "ignored_outside_packet"),
])
def test_malformed_packets_are_dropped_and_counted(raw, counter):
    """14.4.4: a packet with a bad checksum or framing is discarded; the requester retries."""
    codec = BasicCodec()
    got = codec.feed(raw)
    assert codec.stats[counter] >= 1
    assert all(r == GET_DEVICE_ID.__class__(0x20, 6, 0, 0x81, 1, 0, 1) for r in got)


def test_handshake_characters_from_the_peer_are_ignored():
    """14.4.1: A6h is the packet handshake, never message data."""
    raw = encode_request(GET_DEVICE_ID)
    assert BasicCodec().feed(bytes([HANDSHAKE]) + raw[:3] + bytes([HANDSHAKE]) + raw[3:]) == [GET_DEVICE_ID]


def test_not_for_the_bmc_and_responses_are_dropped():
    mode, _ = make_mode()
    assert unframe(mode.feed(encode_request(BasicRequest(0x22, 6, 0, 0x81, 1, 0, 1)))) == []
    assert unframe(mode.feed(encode_request(BasicRequest(0x20, 7, 0, 0x81, 1, 0, 1)))) == []
    assert mode.stats["dropped_not_for_bmc"] == 1 and mode.stats["dropped_response_netfn"] == 1


def test_split_across_reads():
    raw = encode_request(GET_DEVICE_ID)
    codec = BasicCodec()
    got = [r for b in raw for r in codec.feed(bytes([b]))]
    assert got == [GET_DEVICE_ID]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_input_never_raises(data):
    """14.4: whatever arrives, the BMC answers or drops it -- and still answers the next good packet."""
    mode, _ = make_mode()
    mode.feed(data)
    out = mode.feed(b"\xa5" + encode_request(GET_DEVICE_ID))
    assert any(m[5] == 0x01 and m[6] == 0 for m in unframe(out) if len(m) > 6)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 63), st.integers(0, 3), st.integers(0, 255), st.integers(0, 63),
       st.integers(0, 3), st.integers(0, 255), st.binary(max_size=40))
def test_round_trip(rs, netfn, rs_lun, rq, seq, rq_lun, cmd, data):
    """14.4.1-14.4.2: any IPMB message, framed and escaped, decodes to itself."""
    req = BasicRequest(rs, netfn, rs_lun, rq, seq, rq_lun, cmd, data)
    assert BasicCodec().feed(encode_request(req)) == [req]
