"""IPMI v1.5 LAN sessions: codec and state machine (IPMI 2.0 sections 6.12, 13.6-13.8, 22.13-22.20).

The router is driven sans-I/O, without an event loop: ``now`` is passed
explicitly, so timeouts need no sleeping.
"""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vhw.ipmi.wire import ipmb
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.wire import rmcp, session15
from vhw.ipmi.wire.datagrams import LanDatagrams
from vhw.ipmi.parts.sessions import (
    AUTH_MD2,
    AUTH_MD5,
    AUTH_NONE,
    AUTH_PASSWORD,
    SequenceWindow,
    SessionTable,
    lan_context,
)

PEER = ("127.0.0.1", 40000)
USERS = [
    {"id": 2, "name": "admin", "password": "password", "privilege": "administrator"},
    {"id": 3, "name": "oper", "password": "operpass", "privilege": "operator"},
    {"id": 4, "name": "off", "password": "x", "enabled": False},
]


def make_router(**bmc):
    config = BmcConfig.from_dict({"users": USERS, **bmc})
    lan = lan_context(create_bmc(config))
    return lan, LanDatagrams(lan, rmcpplus=None)


class Client:
    """A minimal v1.5 remote console built on the codec under test."""

    def __init__(self, router, user="admin", password="password", auth=AUTH_MD5, peer=PEER):
        self.router, self.user, self.auth, self.peer = router, user, auth, peer
        self.password = password.encode().ljust(16, b"\0")
        self.sid, self.seq, self.rq_seq, self.now = 0, 0, 0, 0.0

    def send(self, netfn, cmd, data=b"", *, auth=None, sid=None, seq=None, password=None):
        self.rq_seq = (self.rq_seq + 1) & 0x3F
        msg = ipmb.encode_request(netfn, cmd, data, rq_seq=self.rq_seq)
        auth = self.auth if auth is None else auth
        sid = self.sid if sid is None else sid
        seq = self.seq if seq is None else seq
        pkt = session15.encode_packet(auth if sid else AUTH_NONE, seq, sid, msg, password or self.password)
        out = self.router.handle(pkt, self.peer, self.now)
        if not out:
            return None
        header, body = session15.parse_packet(rmcp.parse(out[0])[1])
        rsp = body[6:-1]
        self.last_header = header
        return rsp[0], rsp[1:]

    def challenge(self):
        name = self.user.encode().ljust(16, b"\0")
        return self.send(6, 0x39, bytes([self.auth]) + name, sid=0)

    def activate(self, priv=4, password=None):
        cc, data = self.challenge()
        assert cc == 0, hex(cc)
        temp, chal = struct.unpack_from("<I", data)[0], data[4:20]
        r = self.send(6, 0x3A, bytes([self.auth, priv]) + chal + struct.pack("<I", 0x1000), sid=temp, seq=0,
                      password=password)
        if r is None or r[0] != 0:
            return r
        self.sid, self.seq = struct.unpack_from("<II", r[1], 1)
        return r

    def request(self, netfn, cmd, data=b""):
        r = self.send(netfn, cmd, data)
        self.seq += 1
        return r


def test_codec_round_trip_and_checksums():
    """Section 13.8: both checksums are 2's complement; a corrupted byte is refused."""
    msg = ipmb.encode_request(6, 1, b"", rq_seq=5)
    req = session15.parse_request(msg)
    assert (req.netfn, req.cmd, req.rq_seq, req.rs_addr, req.rq_addr) == (6, 1, 5, 0x20, 0x81)
    rsp = session15.encode_response(req, 0, b"\x01")
    assert rsp[1] >> 2 == 7 and (sum(rsp[:3]) & 0xFF) == 0 and (sum(rsp[3:]) & 0xFF) == 0
    bad = bytearray(msg)
    bad[5] ^= 1
    with pytest.raises(session15.PacketError):
        session15.parse_request(bytes(bad))


def test_md5_auth_code_is_spec_22_17_1():
    """Section 22.17.1: MD5(password + session ID + message + session sequence + password)."""
    import hashlib
    pw = b"password".ljust(16, b"\0")
    msg = ipmb.encode_request(6, 1)
    expected = hashlib.md5(pw + struct.pack("<I", 0x11223344) + msg + struct.pack("<I", 7) + pw).digest()
    assert session15.auth_code(AUTH_MD5, pw, 0x11223344, msg, 7) == expected
    assert session15.auth_code(AUTH_PASSWORD, pw, 1, msg, 1) == pw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_packets_only_raise_packet_error(raw):
    try:
        header, msg = session15.parse_packet(raw)
        session15.parse_request(msg)
    except session15.PacketError:
        pass


def test_get_channel_auth_capabilities_v15_and_v20():
    """Section 22.13: enabled types per privilege; bit 7 of byte 1 asks for the IPMI v2.0 data."""
    lan, router = make_router()
    c = Client(router)
    cc, data = c.send(6, 0x38, b"\x0e\x04", sid=0)
    assert cc == 0 and data[0] == 1 and data[1] == 0x16 and data[1] & 0x80 == 0 and data[3] == 0  # MD2, MD5, password
    assert data[2] & 0x04  # non-null user names enabled
    cc, data = c.send(6, 0x38, b"\x8e\x04", sid=0)
    assert cc == 0 and data[1] & 0x80 and data[3] & 0x01


@pytest.mark.parametrize("auth", [AUTH_MD2, AUTH_MD5, AUTH_PASSWORD])
def test_activate_and_run_commands(auth):
    """Sections 22.16-22.18: challenge, activate (USER at first), raise to ADMINISTRATOR, close."""
    lan, router = make_router()
    c = Client(router, auth=auth)
    cc, data = c.activate(priv=4)
    assert cc == 0 and data[0] == auth and data[9] == 4
    assert lan.sessions.get(c.sid).privilege == 2
    assert c.request(6, 0x3B, b"\x04") == (0, b"\x04")
    cc, data = c.request(6, 0x01)
    assert cc == 0 and data[0] == 0x20
    assert lan.active_sessions(1) == 1
    assert c.request(6, 0x3C, struct.pack("<I", c.sid)) == (0, b"")
    assert lan.sessions.count() == 0


def test_unknown_user_and_disabled_user_get_81h():
    """Table 22-15: Get Session Challenge answers 81h for an invalid user name."""
    lan, router = make_router()
    assert Client(router, user="nobody").challenge()[0] == 0x81
    assert Client(router, user="off").challenge()[0] == 0x81
    assert Client(router, user="").challenge()[0] == 0x82  # null user not enabled


def test_wrong_password_is_an_answer_and_backs_off():
    """A wrong password is refused with an error answer (never silence); repeated failures block."""
    lan, router = make_router()
    c = Client(router, password="wrong")
    for _ in range(4):
        r = c.activate()
        assert r is not None and r[0] != 0
    assert lan.sessions.count() == 0 and lan.stats["auth_failed"] >= 3
    # now blocked for a while even with the right password
    good = Client(router)
    assert good.activate()[0] != 0
    good.now = 100.0
    assert good.activate()[0] == 0


def test_privilege_escalation_refused():
    """Section 22.17/22.18: above the user limit: Activate 86h, Set Session Privilege 81h; D4 on ADMIN commands."""
    lan, router = make_router()
    assert Client(router, user="oper", password="operpass").activate(priv=4)[0] == 0x86
    c = Client(router, user="oper", password="operpass")
    assert c.activate(priv=3)[0] == 0
    assert c.request(6, 0x3B, b"\x04")[0] == 0x81
    assert c.request(6, 0x3B, b"\x03") == (0, b"\x03")
    assert c.request(6, 0x40, b"\x01\x42\x44")[0] == 0xD4  # Set Channel Access: ADMINISTRATOR
    assert c.request(0, 0x01)[0] == 0  # chassis status: USER


def test_sequence_window_rejects_replay_and_far_numbers():
    """Section 6.12.13: a number already seen or more than 8 ahead is dropped."""
    lan, router = make_router()
    c = Client(router)
    c.activate()
    first = c.seq
    assert c.request(6, 0x01)[0] == 0
    assert c.send(6, 0x01, seq=first) is None  # replay
    assert c.send(6, 0x01, seq=first + 20) is None  # too far ahead
    assert c.send(6, 0x01, seq=first + 3)[0] == 0  # within the window
    assert c.send(6, 0x01, seq=first + 2)[0] == 0  # late but not seen
    assert c.send(6, 0x01, seq=first + 2) is None
    assert lan.stats["v15_bad_sequence"] == 3


def test_sequence_window_wraps():
    w = SequenceWindow(0xFFFFFFFE)
    assert w.accept(0xFFFFFFFE) and w.accept(0xFFFFFFFF) and not w.accept(0) and w.accept(1)
    assert not w.accept(0xFFFFFFFF)


def test_timeout_reclaims_slots():
    """Sessions idle longer than the timeout are expired; their slot is free again (22.17: 81h when full)."""
    lan, router = make_router()
    lan.sessions.max_sessions = 1
    a = Client(router)
    assert a.activate()[0] == 0
    b = Client(router, peer=("127.0.0.1", 40001))
    assert b.activate()[0] == 0x81
    lan.sessions.expire(a.now + 61)
    assert lan.sessions.count() == 0
    assert b.activate()[0] == 0
    assert a.request(6, 0x01) is None  # the old session is gone


def test_session_table_bounds():
    t = SessionTable(max_sessions=2)
    s1 = t.allocate("v15", 2, 4, PEER)
    s2 = t.allocate("v20", 2, 4, PEER)
    assert t.allocate("v15", 2, 4, PEER) is None
    assert s1.id != s2.id and 0 not in (s1.id, s2.id) and {s1.handle, s2.handle} == {1, 2}
    assert t.close(s1.id) and t.count() == 1


def test_disabled_channel_refuses_sessions():
    """Access mode "disabled" (section 22.22): no session can be activated (81h)."""
    lan, router = make_router(channels=[{"number": 1, "medium": "lan", "access_mode": "disabled"}])
    assert Client(router).activate()[0] == 0x81


def test_sessionless_commands_only():
    """Outside a session only the pre-session commands are answered (others D4)."""
    lan, router = make_router()
    assert Client(router).send(6, 0x01, sid=0)[0] == 0xD4
