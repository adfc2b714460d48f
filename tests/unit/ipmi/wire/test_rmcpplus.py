"""RMCP+ sessions, sans-I/O (IPMI 2.0 sections 13.14-13.32), driven by a small console written from the spec."""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipmi.helpers import Console, PEER, ipmi_req, pkt

from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.wire.rmcpplus import RmcpPlus, RmcpPlusConfig
from vhw.ipmi.parts.sessions import lan_context

USERS = [{"id": 2, "name": "admin", "password": "password"},
         {"id": 3, "name": "oper", "password": "operpass", "privilege": "operator"}]


def make(rmcpplus=None):
    bmc = create_bmc(BmcConfig.from_dict({"users": USERS, "rmcpplus": rmcpplus or {}}, machine="t"))
    lan = lan_context(bmc)
    return bmc, lan, RmcpPlus(lan)


@pytest.mark.parametrize("suite_id", [1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17])
def test_full_session_per_suite(suite_id):
    """13.17-13.24 then 13.28/13.29: open, RAKP 1-4, and an integrity/confidentiality-protected Get Device ID."""
    bmc, lan, rp = make()
    c = Console(rp, suite_id)
    assert c.open_status == 0
    assert c.login() == ("ok", 0)
    cc, data = c.send(0x06, 0x01)
    assert cc == 0 and data[0] == 0x20
    assert c.send(0x06, 0x3B, b"\x04") == (0, b"\x04")  # Set Session Privilege Level: ADMINISTRATOR


def test_open_session_answers_the_real_privilege_never_0():
    """Table 13-17 byte 3: for "0 = highest matching" the BMC answers the level it grants (FreeIPMI
    rejects 0); the proposed algorithms are echoed."""
    _, _, rp = make()
    c = Console(rp, 17, priv=0)
    assert c.open_status == 0 and c.open_rsp[2] == 4
    assert [c.open_rsp[12 + 8 * i + 4] for i in range(3)] == [3, 4, 1]


def test_suite_0_and_unknown_algorithms_refused_unless_enabled():
    """Table 13-15: 04h invalid authentication algorithm when RAKP-none is not enabled; suite 0 works when listed."""
    _, _, rp = make()
    assert Console(rp, 0).open_status == 0x04
    _, _, rp = make({"cipher_suites": [0, 3]})
    c = Console(rp, 0)
    assert c.open_status == 0 and c.login() == ("ok", 0)
    _, _, rp = make({"cipher_suites": [3]})
    assert Console(rp, 17).open_status == 0x04
    assert Console(rp, 2).open_status == 0x10  # no enabled suite goes without confidentiality
    _, _, rp = make({"cipher_suites": [1, 3]})
    assert Console(rp, 2).open_status == 0x11  # each algorithm is enabled, the combination is not


def test_wrong_password_rakp4_0f_no_session_and_rate_limited():
    """13.23: RAKP 2 is answered, RAKP 4 carries 0Fh (invalid integrity check value); repeated
    failures are refused at once for a while (LoginGuard), and no session slot is left behind."""
    _, lan, rp = make()
    assert Console(rp, 3, password=b"wrong").login() == ("rakp4", 0x0F)
    assert lan.sessions.count() == 0
    for _ in range(5):
        Console(rp, 3, password=b"wrong").login()
    assert Console(rp, 3).login() == ("rakp2", 0x0D)  # locked out, even with the right password
    assert lan.sessions.count() == 0
    assert Console(rp, 3, now=1000.0).login() == ("ok", 0)


def test_unknown_user_and_anonymous_refused_0d():
    """Table 13-15 0Dh unauthorized name; a null user name only when allow_anonymous."""
    _, lan, rp = make()
    assert Console(rp, 3, name=b"nobody").login() == ("rakp2", 0x0D)
    assert Console(rp, 3, name=b"", password=b"").login() == ("rakp2", 0x0D)
    assert lan.sessions.count() == 0


def test_operator_capped_and_refused_admin_command():
    """13.31 name-only lookup caps the session at the user's limit; the dispatcher answers D4 for ADMIN commands."""
    _, _, rp = make()
    c = Console(rp, 3, name=b"oper", password=b"operpass", role=0x13)
    assert c.login() == ("ok", 0)
    assert c.send(0x06, 0x3B, b"\x03") == (0, b"\x03")
    assert c.send(0x06, 0x40, b"\x01\x82\x84")[0] == 0xD4  # Set Channel Access needs ADMINISTRATOR
    assert c.send(0x06, 0x3B, b"\x04")[0] != 0
    c2 = Console(rp, 3, name=b"oper", password=b"operpass", role=0x04)  # privilege lookup: no such entry
    assert c2.login() == ("rakp2", 0x0A)


def test_replay_refused_window_accepts_out_of_order():
    """6.12.13/13.32: a sequence number is accepted once inside the window; replays are dropped."""
    _, _, rp = make()
    c = Console(rp, 3)
    c.login()
    assert c.send(0x06, 0x01, seq=5) is not None
    assert c.send(0x06, 0x01, seq=5) is None
    assert c.send(0x06, 0x01, seq=3) is not None
    assert c.send(0x06, 0x01, seq=3) is None
    assert c.send(0x06, 0x01, seq=500) is None


def test_sessionless_cipher_suites_answered_and_others_dropped():
    """22.15: Get Channel Cipher Suites answers outside a session (ipmitool asks it first); records are
    C0h, ID, auth, 40h|integrity, 80h|confidentiality in 16-byte chunks; a past-the-end index returns
    only the channel.  Other commands without a session are dropped (13.14)."""
    _, lan, rp = make({"cipher_suites": [3, 17]})
    listing = b""
    for index in range(4):
        (rsp,) = rp.handle(pkt(0, ipmi_req(0x06, 0x54, bytes([0x0E, 0, 0x80 | index]))), PEER, 0.0)
        msg = rsp[16:]
        assert msg[6] == 0 and msg[7] == 1
        listing += msg[8:-1]
        if len(msg[8:-1]) < 16:
            break
    assert listing == bytes([0xC0, 3, 1, 0x41, 0x81, 0xC0, 17, 3, 0x44, 0x81])
    assert lan.stats["rmcpplus_sessionless_54"] >= 1
    assert rp.handle(pkt(0, ipmi_req(0x06, 0x01)), PEER, 0.0) == []


def test_config_errors_name_the_key():
    with pytest.raises(DescriptionError, match=r"bmc.rmcpplus.cipher_suites\[1\]"):
        BmcConfig.from_dict({"rmcpplus": {"cipher_suites": [3, 4]}})
    with pytest.raises(DescriptionError, match="bmc.rmcpplus.bogus"):
        BmcConfig.from_dict({"rmcpplus": {"bogus": 1}})
    with pytest.raises(DescriptionError, match="bmc.rmcpplus.bmc_key"):
        RmcpPlusConfig.from_dict({"bmc_key": "0x" + "00" * 21}, "bmc.rmcpplus")
    assert RmcpPlusConfig.from_dict({"bmc_key": "0x0102"}).bmc_key == b"\x01\x02"
    assert RmcpPlusConfig().cipher_suites[0] != 0 and not RmcpPlusConfig().allow_anonymous


def test_bmc_key_changes_sik():
    """13.31: with K_G set the SIK is keyed by K_G; a console using Kuid gets a different RAKP 4 ICV."""
    _, _, rp = make({"bmc_key": "secretkey"})
    c = Console(rp, 3)
    with pytest.raises(AssertionError):
        c.login()


_BASE = [pkt(0x10, bytes(32)), pkt(0x12, bytes(44)), pkt(0x14, bytes(28)), pkt(0, ipmi_req(6, 0x54, b"\x0e\x00\x80")),
         pkt(0x40, bytes(40), sid=1, seq=1)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(_BASE), cut=st.integers(0, 80), junk=st.binary(max_size=64),
       flips=st.lists(st.tuples(st.integers(0, 79), st.integers(0, 255)), max_size=6))
def test_fuzz_never_raises_never_activates(base, cut, junk, flips):
    """No packet, however malformed, raises or makes an active session."""
    _, lan, rp = make()
    data = bytearray(base[:cut] + junk)
    for i, v in flips:
        if i < len(data):
            data[i] = v
    out = rp.handle(bytes(data), PEER, 0.0)
    assert isinstance(out, list)
    assert not [s for s in rp.sessions() if s.active]
    assert lan.stats.get("rmcpplus_internal_errors", 0) == 0
