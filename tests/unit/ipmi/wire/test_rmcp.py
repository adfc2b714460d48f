"""RMCP and ASF presence ping/pong (IPMI 2.0 section 13.1-13.2, ASF 2.0 section 3.2)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vhw.ipmi.wire import rmcp


def test_presence_ping_gets_pong_with_ipmi_supported():
    """ASF 2.0 3.2.4.3: the Pong echoes the tag, IANA 4542, entities bit 7 = IPMI supported."""
    header, body = rmcp.parse(rmcp.ping(tag=0x5A))
    assert header.cls == rmcp.CLASS_ASF and not header.wants_ack
    (out,) = rmcp.handle_asf(header, body)
    assert out[:4] == bytes([0x06, 0x00, 0xFF, 0x06])
    assert out[4:8] == bytes([0x00, 0x00, 0x11, 0xBE])  # IANA 4542
    assert out[8] == 0x40 and out[9] == 0x5A and out[11] == 16
    data = out[12:]
    assert len(data) == 16
    assert data[0:4] == bytes([0x00, 0x00, 0x11, 0xBE])
    assert data[8] & 0x80  # supported entities: IPMI


def test_ack_requested_when_sequence_is_not_ff():
    """ASF 2.0 3.2.2.2: a message with sequence number != FFh is acknowledged (class | 80h, no data)."""
    header, body = rmcp.parse(rmcp.ping(tag=1, seq=7))
    out = rmcp.handle_asf(header, body)
    assert out[0] == bytes([0x06, 0x00, 0x07, 0x86])
    assert out[1][8] == 0x40


def test_received_ack_is_silent():
    header, body = rmcp.parse(bytes([0x06, 0x00, 0x07, 0x86]))
    assert header.ack and rmcp.handle_asf(header, body) == []


@pytest.mark.parametrize("raw", [b"", b"\x06\x00", b"\x05\x00\xff\x06" + bytes(8)])
def test_malformed_headers_raise_rmcp_error(raw):
    with pytest.raises(rmcp.RmcpError):
        rmcp.handle_asf(*rmcp.parse(raw))


def test_short_asf_message_is_malformed():
    header, body = rmcp.parse(rmcp.ping()[:-2])
    with pytest.raises(rmcp.RmcpError):
        rmcp.handle_asf(header, body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_only_ever_raise_rmcp_error(raw):
    try:
        header, body = rmcp.parse(raw)
        if header.cls == rmcp.CLASS_ASF:
            rmcp.handle_asf(header, body)
    except rmcp.RmcpError:
        pass
