"""I2O frame, reply and SGL codecs (docs/i2o-mpqemu.md B3-B6)."""

from __future__ import annotations

import struct

from hypothesis import given, strategies as st

from vhw.i2o import frames as f
from vhw.i2o.frames import (DetailedStatus, FailureCode, Function, Header, MsgFlags,
                            ReqStatus, Request, RequestError, Sgl, TransportFailure)


def test_function_codes_match_the_sig_headers():
    """B6 plus i2o-dev.h / i2omsg.h: every code the issue names."""
    expected = {
        "EXEC_STATUS_GET": 0xA0, "EXEC_IOP_RESET": 0xBD, "EXEC_IOP_CLEAR": 0xBE,
        "EXEC_OUTBOUND_INIT": 0xA1, "EXEC_HRT_GET": 0xA8, "EXEC_LCT_NOTIFY": 0xA2,
        "EXEC_SYS_TAB_SET": 0xA3, "EXEC_SYS_ENABLE": 0xD1, "EXEC_SYS_QUIESCE": 0xC3,
        "EXEC_PATH_ENABLE": 0xD3, "UTIL_NOP": 0x00, "UTIL_PARAMS_GET": 0x06,
        "UTIL_PARAMS_SET": 0x05, "UTIL_EVENT_REGISTER": 0x13, "UTIL_CLAIM": 0x09,
        "UTIL_CLAIM_RELEASE": 0x0B, "BSA_BLOCK_READ": 0x30, "BSA_BLOCK_WRITE": 0x31,
        "BSA_CACHE_FLUSH": 0x37, "BSA_DEVICE_RESET": 0x27, "BSA_STATUS_CHECK": 0x25,
        "BSA_MEDIA_LOCK": 0x49, "BSA_MEDIA_UNLOCK": 0x4B, "BSA_MEDIA_EJECT": 0x43,
    }
    assert {name: Function[name].value for name in expected} == expected


def test_header_layout_matches_linux_word_masks():
    """B3: Linux writes EIGHT_WORD_MSG_SIZE | SGL_OFFSET_6 and
    function << 24 | HOST_TID << 12 | ADAPTER_TID."""
    hdr = Header(function=Function.EXEC_OUTBOUND_INIT, size=8, sgl_offset=6,
                 initiator_context=0xDEADBEEF, transaction_context=0x80000001)
    w0, w1, ictx, tctx = struct.unpack("<4I", hdr.encode())
    assert w0 == 0x00080000 | 0x0061
    assert w1 == 0xA1 << 24 | 1 << 12 | 0
    assert (ictx, tctx) == (0xDEADBEEF, 0x80000001)


@given(st.integers(0, 0xFF), st.integers(0, 0xFFF), st.integers(0, 0xFFF),
       st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF),
       st.integers(0, 15), st.integers(0, 0xFF), st.integers(0, 15))
def test_header_round_trip(fn, tgt, ini, ictx, tctx, size, off, flags, ver):
    hdr = Header(fn, tgt, ini, ictx, tctx, size, off, flags, ver)
    assert Header.unpack(hdr.encode()) == hdr


def frame(hdr: Header, body: bytes = b"", frame_size: int = 128) -> bytes:
    return (hdr.encode() + body).ljust(frame_size, b"\0")


def test_decode_request_trims_to_message_size():
    req = f.decode_request(frame(Header(Function.UTIL_NOP, size=3)))
    assert isinstance(req, Request) and len(req.data) == 12
    assert req.word(3) == 0  # lenient read past a 3-word NOP


def test_decode_request_failures_use_transport_codes():
    """B4 failure reply: bad version, size and offset are transport failures."""
    cases = [
        (Header(0, size=4, version=2), FailureCode.INVALID_VERSION),
        (Header(0, size=2), FailureCode.FRAME_TOO_SMALL),
        (Header(0, size=33), FailureCode.FRAME_TOO_LARGE),
        (Header(0, size=8, sgl_offset=2), FailureCode.INVALID_OFFSET),
        (Header(0, size=8, sgl_offset=9), FailureCode.INVALID_OFFSET),
        (Header(0, size=4, flags=MsgFlags.REPLY), FailureCode.INVALID_MSG_FLAGS),
        (Header(0, size=4, flags=MsgFlags.CONTEXT_64), FailureCode.INVALID_MSG_FLAGS),
    ]
    for hdr, code in cases:
        out = f.decode_request(frame(hdr))
        assert isinstance(out, TransportFailure) and out.code == code, hdr
    assert f.decode_request(b"\x01\x00").code == FailureCode.FRAME_TOO_SMALL


def test_sgl_offset_equal_to_size_is_an_empty_sgl():
    """ptosm sets SGL offset = MessageLength/4 even with no Data[] (B10)."""
    req = f.decode_request(frame(Header(Function.UTIL_PARAMS_GET, size=5, sgl_offset=5), bytes(4)))
    assert req.sgl() == Sgl((), ())


def test_reply_echoes_contexts_and_packs_status_word():
    """B4: REPLY flag, contexts bit-exact, word 4 = detail | ReqStatus << 24."""
    req = Header(Function.UTIL_CLAIM, target_tid=0x123, initiator_context=0xFFFFFFFF,
                 transaction_context=0x80000007, size=5)
    raw = f.encode_reply(req, ReqStatus.ERROR_NO_DATA_TRANSFER,
                         DetailedStatus.INVALID_TARGET_ADDRESS, b"\x01\x02")
    assert struct.unpack_from("<I", raw, 16)[0] == 0x05000013
    rep = f.decode_reply(raw)
    assert rep.header.flags == MsgFlags.REPLY and rep.header.size == 6
    assert rep.header.initiator_context == 0xFFFFFFFF
    assert rep.header.transaction_context == 0x80000007
    assert rep.header.target_tid == 0x123 and rep.header.function == Function.UTIL_CLAIM
    assert (rep.status, rep.detail, rep.body) == (5, 0x13, b"\x01\x02\0\0")
    assert not rep.failed
    assert len(raw) == (struct.unpack_from("<I", raw)[0] >> 16) * 4


def test_failure_reply_carries_preserved_mfa():
    bad = frame(Header(0xA0, size=4, version=3, initiator_context=7, transaction_context=9))
    failure = f.decode_request(bad)
    rep = f.decode_reply(f.encode_failure_reply(bad, failure, mfa=0x1080))
    assert rep.failed and rep.header.size == f.FAILURE_REPLY_WORDS
    assert (rep.header.initiator_context, rep.header.transaction_context) == (7, 9)
    assert f.failure_fields(rep) == (f.Severity.FORMAT_ERROR, FailureCode.INVALID_VERSION, 0x1080)


def test_decode_reply_rejects_non_replies():
    assert f.decode_reply(b"") is None
    assert f.decode_reply(frame(Header(0, size=5))) is None


def test_simple_sgl_round_trip_and_buffers():
    """B5: 0x54 (end of buffer, to IOP) then 0xD0 (last, to host)."""
    sgl = f.encode_simple(12, 0x1000, to_iop=True) + f.encode_simple(88, 0x2000, last=True)
    assert struct.unpack_from("<I", sgl)[0] == 0x5400000C
    assert struct.unpack_from("<I", sgl, 8)[0] == 0xD0000058
    req = f.decode_request(frame(Header(6, size=9, sgl_offset=5), bytes(4) + sgl))
    out = req.sgl()
    assert [(e.to_iop, e.count, e.address, e.last) for e in out.elements] == [
        (True, 12, 0x1000, False), (False, 88, 0x2000, True)]
    assert len(out.buffers) == 2 and out.total == 100


def test_immediate_element_like_linux_params_get():
    """B5/B9: Linux puts the operation list inline as 0x4C000000|n."""
    ops = struct.pack("<HHHHH", 1, 0, 1, 0xF100, 0xFFFF)
    sgl = f.encode_immediate(ops) + f.encode_simple(64, 0x3000, last=True)
    assert struct.unpack_from("<I", sgl)[0] == 0x4C00000A
    out = f.parse_sgl(bytes(16) + sgl, 4)
    assert out.elements[0].data == ops and out.elements[0].address is None
    assert out.elements[1].address == 0x3000


def test_sgl_validation_errors():
    bad = {
        "truncated simple": (struct.pack("<I", 0xD0000010), DetailedStatus.MESSAGE_TOO_SMALL),
        "truncated immediate": (struct.pack("<I", 0x4C000010), DetailedStatus.MESSAGE_TOO_SMALL),
        "local address": (struct.pack("<II", 0xD8000010, 0), DetailedStatus.INVALID_PARAMETER),
        "context words": (struct.pack("<II", 0xD1000010, 0), DetailedStatus.INVALID_PARAMETER),
        "page list": (struct.pack("<II", 0xE0000010, 0), DetailedStatus.INVALID_PARAMETER),
        "chain": (struct.pack("<II", 0xF0000010, 0), DetailedStatus.INVALID_PARAMETER),
        "wraps 4 GiB": (f.encode_simple(0x10, 0xFFFFFFF8, last=True), DetailedStatus.INVALID_PARAMETER),
    }
    for name, (sgl, detail) in bad.items():
        out = f.parse_sgl(bytes(16) + sgl, 4)
        assert isinstance(out, RequestError) and out.detail == detail, name
        assert out.status == ReqStatus.ERROR_NO_DATA_TRANSFER
    out = f.parse_sgl(bytes(16) + f.encode_simple(0x100, 0x1000), 4, mem_limit=0x1080)
    assert isinstance(out, RequestError)
    assert isinstance(f.parse_sgl(bytes(16), 7), RequestError)


def test_sgl_stops_at_last_element():
    sgl = f.encode_simple(4, 0x10, last=True) + b"\xff" * 8
    assert len(f.parse_sgl(bytes(16) + sgl, 4).elements) == 1


@given(st.binary(max_size=160))
def test_random_frames_never_raise(data):
    out = f.decode_request(data)
    assert isinstance(out, (Request, TransportFailure))
    if isinstance(out, Request):
        assert isinstance(out.sgl(), (Sgl, RequestError))
        f.encode_reply(out.header, ReqStatus.SUCCESS)
    else:
        f.encode_failure_reply(data, out, 0x1000)
    f.decode_reply(data)


@given(st.lists(st.tuples(st.integers(0, 0xFFFFFF), st.integers(0, 2**32 - 1 - 0xFFFFFF),
                          st.booleans()), min_size=1, max_size=8))
def test_simple_sgl_round_trip_property(elems):
    raw = b"".join(f.encode_simple(c, a, to_iop=d, last=i == len(elems) - 1)
                   for i, (c, a, d) in enumerate(elems))
    out = f.parse_sgl(bytes(16) + raw, 4)
    assert [(e.count, e.address, e.to_iop) for e in out.elements] == elems
