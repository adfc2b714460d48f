"""SOL: configuration parameters (IPMI 2.0 section 26.2-26.3, table 26-5), the
payload commands (chapter 24) and the packet protocol (sections 15.9-15.10)."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest

from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.parts.sol import SolSpec
from vhw.ipmi.wire.sol_payload import (
    OP_BREAK,
    OP_FLUSH_INBOUND,
    OP_FLUSH_OUTBOUND,
    OP_NACK,
    ST_DEACTIVATING,
    ST_TRANSFER_UNAVAILABLE,
    SolStream,
)
from vhw.store import Store

T, APP = 0x0C, 0x06


def lan(priv=Privilege.ADMINISTRATOR, sid=0x1234, uid=2):
    return Context(channel=1, privilege=priv, interface="lan", session_id=sid, user_id=uid)


def make(store=None, sol=None):
    d = {} if sol is None else {"sol": sol}
    return create_bmc(BmcConfig.from_dict(d), store=store)


def getp(bmc, p, ctx=None):
    return bmc.handle(T, 0x22, bytes([1, p, 0, 0]), ctx or Context(), 0)


def setp(bmc, p, data, ctx=None):
    return bmc.handle(T, 0x21, bytes([1, p]) + bytes(data), ctx or Context(), 0)


def activate(bmc, ctx=None, aux=0x00):
    return bmc.handle(APP, 0x48, bytes([1, 1, aux, 0, 0, 0]), ctx or lan(), 0)


# -- configuration parameters -------------------------------------------------------------


def test_sol_parameters_defaults_and_revision():
    bmc = make()
    assert getp(bmc, 1).data == b"\x11\x01"           # SOL enabled
    assert getp(bmc, 3).data == b"\x11\x0c\x60"       # 60 ms, 96 characters
    assert getp(bmc, 7).data == b"\x11\x01"           # payload channel
    assert getp(bmc, 8).data == b"\x11" + struct.pack("<H", 623)
    assert bmc.handle(T, 0x22, bytes([0x81, 3, 0, 0]), Context(), 0).data == b"\x11"
    assert getp(bmc, 9).cc == 0x80


def test_sol_parameters_set_persist_and_validate(tmp_path):
    store = Store(tmp_path / "s.db")
    bmc = make(store)
    assert setp(bmc, 3, [2, 10]).cc == 0
    assert setp(bmc, 4, [3, 20]).cc == 0
    assert setp(bmc, 2, [0xC4]).cc == 0
    assert setp(bmc, 6, [0x07]).cc == 0
    assert setp(bmc, 7, [1]).cc == 0x82           # read only
    assert setp(bmc, 3, [0, 10]).cc == 0xCC       # 1-based
    assert setp(bmc, 5, [0x0B]).cc == 0xCC        # no such bit rate
    assert setp(bmc, 2, [0x00]).cc == 0xCC        # privilege 0
    assert setp(bmc, 3, [1]).cc == 0xC7
    assert setp(bmc, 0, [1]).cc == 0 and setp(bmc, 0, [1]).cc == 0x81
    store.close()
    again = make(Store(tmp_path / "s.db"))
    assert getp(again, 3).data == b"\x11\x02\x0a"
    assert getp(again, 4).data == b"\x11\x03\x14"
    assert getp(again, 2).data == b"\x11\xc4"
    assert getp(again, 6).data == b"\x11\x0a"     # volatile bit rate did not survive


def test_sol_spec():
    assert SolSpec.from_dict(None, "bmc.sol") is None
    assert SolSpec.from_dict({}, "bmc.sol").port == "ttyS1"
    with pytest.raises(DescriptionError, match="not supported yet"):
        SolSpec.from_dict({"port": "console"}, "bmc.sol")
    with pytest.raises(DescriptionError, match="bmc.sol.port"):
        BmcConfig.from_dict({"sol": {"port": "ttyS7"}})
    with pytest.raises(DescriptionError, match="bmc.sol.speed"):
        BmcConfig.from_dict({"sol": {"speed": 1}})


# -- payload commands ----------------------------------------------------------------------


def test_activate_once_status_info_deactivate():
    bmc = make()
    r = activate(bmc)
    assert r.cc == 0 and len(r.data) == 12
    inbound, outbound, port, vlan = struct.unpack("<HHHH", r.data[4:])
    assert inbound >= 5 and outbound >= 5 and port == 623 and vlan == 0xFFFF
    assert activate(bmc, lan(sid=0x9999)).cc == 0x80                   # one at a time (24.1)
    assert bmc.handle(APP, 0x4A, b"\x01", lan(), 0).data == b"\x01\x01\x00"
    info = bmc.handle(APP, 0x4B, b"\x01\x01", lan(), 0).data
    assert struct.unpack("<I", info[:4])[0] == 0x1234 and info[4] == 1 and len(info) == 16
    assert bmc.handle(APP, 0x49, bytes([1, 1, 0, 0, 0, 0]), lan(), 0).cc == 0
    assert bmc.handle(APP, 0x49, bytes([1, 1, 0, 0, 0, 0]), lan(), 0).cc == 0x80
    assert bmc.handle(APP, 0x4A, b"\x01", lan(), 0).data == b"\x01\x00\x00"


def test_activate_refusals():
    bmc = make()
    assert bmc.handle(APP, 0x48, bytes([1, 1, 0, 0, 0, 0]), Context(), 0).cc == 0xC1   # in-band: no session
    assert bmc.handle(APP, 0x48, bytes([2, 1, 0, 0, 0, 0]), lan(), 0).cc == 0xCC      # OEM payload
    assert bmc.handle(APP, 0x48, bytes([1, 2, 0, 0, 0, 0]), lan(), 0).cc == 0xCC      # instance 2
    assert setp(bmc, 2, [0x84]).cc == 0                                            # force encryption, admin
    assert activate(bmc, lan(Privilege.OPERATOR)).cc == 0xD4
    assert activate(bmc).cc == 0x84
    assert activate(bmc, aux=0x80).cc == 0
    bmc.handle(APP, 0x49, bytes([1, 1, 0, 0, 0, 0]), lan(), 0)
    assert setp(bmc, 1, [0]).cc == 0
    assert activate(bmc, aux=0x80).cc == 0x81


def test_user_payload_access():
    bmc = make()
    assert bmc.handle(APP, 0x4D, b"\x01\x02", lan(), 0).data == b"\x02\x00\x00\x00"
    assert bmc.handle(APP, 0x4C, bytes([1, 0x40 | 2, 0x02, 0, 0, 0]), lan(), 0).cc == 0   # disable SOL
    assert bmc.handle(APP, 0x4D, b"\x01\x02", lan(), 0).data == b"\x00\x00\x00\x00"
    assert activate(bmc).cc == 0x81
    assert activate(bmc, lan(uid=3)).cc == 0
    assert bmc.handle(APP, 0x4C, bytes([1, 2, 0x02, 0, 0, 0]), lan(Privilege.OPERATOR), 0).cc == 0xD4


# -- the packet protocol (15.9-15.10) ----------------------------------------------------


def stream(**kw):
    kw.setdefault("accumulate_interval", 0.05)
    kw.setdefault("send_threshold", 8)
    kw.setdefault("retry_count", 2)
    kw.setdefault("retry_interval", 0.5)
    return SolStream(**kw)


def ack(seq, count, op=0):
    return bytes([0, seq, count, op])


def test_accumulate_until_interval():
    s = stream()
    s.from_serial(b"abc", 1.0)
    assert s.take_console() == []
    assert s.next_deadline() == pytest.approx(1.05)
    s.poll(1.04)
    assert s.take_console() == []
    s.poll(1.05)
    assert s.take_console() == [bytes([1, 0, 0, 0]) + b"abc"]


def test_send_threshold_sends_at_once_and_one_packet_in_flight():
    s = stream()
    s.from_serial(b"0123456789", 1.0)
    assert s.take_console() == [bytes([1, 0, 0, 0]) + b"0123456789"]
    s.from_serial(b"ABCDEFGHIJ", 1.01)
    assert s.take_console() == []                      # waits for the ACK of packet 1
    s.from_console(ack(1, 10), 1.02)
    assert s.take_console() == [bytes([2, 0, 0, 0]) + b"ABCDEFGHIJ"]


def test_sequence_numbers_run_1_to_15_skipping_0():
    s = stream(send_threshold=1)
    seen = []
    for i in range(17):
        s.from_serial(b"x", float(i))
        (p,) = s.take_console()
        seen.append(p[0])
        s.from_console(ack(p[0], 1), float(i))
    assert seen == list(range(1, 16)) + [1, 2]


def test_partial_ack_resends_the_rest_in_a_new_packet():
    s = stream(send_threshold=4)
    s.from_serial(b"hello", 1.0)
    (p,) = s.take_console()
    s.from_console(ack(p[0], 2), 1.1)
    (q,) = s.take_console()
    assert q[0] == 2 and q[4:] == b"llo"


def test_retries_then_give_up():
    s = stream(send_threshold=1, retry_count=2, retry_interval=0.5)
    s.from_serial(b"z", 0.0)
    (p,) = s.take_console()
    s.poll(0.49)
    assert s.take_console() == []
    s.poll(0.5)
    assert s.take_console() == [p]                     # retry 1, same sequence number
    s.poll(1.0)
    assert s.take_console() == [p]                     # retry 2
    s.poll(1.5)
    assert s.take_console() == []                      # given up
    assert s.stats["given_up"] == 1 and s.next_deadline() is None
    s.from_serial(b"y", 2.0)
    assert s.take_console()[0][0] == 2


def test_no_retries_with_retry_count_0():
    s = stream(send_threshold=1, retry_count=0)
    s.from_serial(b"z", 0.0)
    s.take_console()
    s.poll(10.0)
    assert s.take_console() == []


def test_nack_pauses_then_resends():
    s = stream(send_threshold=1, retry_interval=0.5)
    s.from_serial(b"abc", 0.0)
    s.take_console()
    s.from_console(ack(1, 0, OP_NACK), 0.1)
    assert s.take_console() == []
    s.poll(0.59)
    assert s.take_console() == []
    s.poll(0.6)
    (p,) = s.take_console()
    assert p[0] == 2 and p[4:] == b"abc"


def test_console_data_is_acked_delivered_once():
    s = stream()
    s.from_console(bytes([3, 0, 0, 0]) + b"ls\r", 0.0)
    assert s.take_console() == [ack(3, 3)]
    assert s.take_serial() == b"ls\r"
    s.from_console(bytes([3, 0, 0, 0]) + b"ls\r", 0.1)   # retransmission: our ACK was lost
    assert s.take_console() == [ack(3, 3)]
    assert s.take_serial() == b""
    s.from_console(bytes([4, 0, 0, 0]) + b"x", 0.2)
    assert s.take_serial() == b"x"


def test_break_flush_and_status_bits():
    s = stream(send_threshold=100)
    s.from_console(bytes([1, 0, 0, OP_BREAK]), 0.0)
    assert s.take_breaks() == 1
    s.from_serial(b"pending", 0.0)
    s.from_console(bytes([0, 0, 0, OP_FLUSH_OUTBOUND]), 0.01)
    s.poll(1.0)
    assert [p for p in s.take_console() if p[0]] == []
    s.from_console(bytes([2, 0, 0, 0]) + b"abc", 1.0)
    s.from_console(bytes([0, 0, 0, OP_FLUSH_INBOUND]), 1.0)
    assert s.take_serial() == b""
    s.serial_connected = False
    s.take_console()
    s.from_console(bytes([3, 0, 0, 0]) + b"q", 2.0)
    assert s.take_console()[0][3] & ST_TRANSFER_UNAVAILABLE


def test_sol_handler_and_console_sender_with_a_fake_session():
    """The RMCP+ hook: sol_handler(session, data, now) returns finished packets;
    later packets (serial input, retries) go through console_sender."""
    bmc = make(sol={"port": "ttyS1"})
    sol = bmc.parts["sol"]
    sol.encode = lambda session, ptype, data: b"PKT" + bytes([ptype]) + data
    sent, serial = [], []
    sol.console_sender = lambda activation, packet: sent.append(packet)
    sol.serial_writer = serial.append
    assert activate(bmc).cc == 0
    session = SimpleNamespace(session_id=0x1234)
    assert sol.sol_handler(SimpleNamespace(session_id=0x9), bytes([1, 0, 0, 0]) + b"x", 0.0) == []
    out = sol.sol_handler(session, bytes([1, 0, 0, 0]) + b"echo hi\n", 0.0)
    assert out == [b"PKT\x01" + ack(1, 8)]
    assert serial == [b"echo hi\n"]
    sol.from_serial(b"hi\r\n", 1.0)
    bmc.poll(1.0 + 0.06)
    assert sent == [b"PKT\x01" + bytes([1, 0, 0, 0]) + b"hi\r\n"]
    assert bmc.next_deadline() == pytest.approx(1.06 + 0.5)
    bmc.handle(APP, 0x49, bytes([1, 1, 0, 0, 0, 0]), lan(), 2.0)
    assert sent[-1][4 + 3] & ST_DEACTIVATING
