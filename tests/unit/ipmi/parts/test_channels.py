"""Get Channel Info, Set/Get Channel Access.

IPMI 2.0 sections 6.3 (tables 6-1..6-3), 22.22-22.24, and the openUBMC Set
Channel Access reference (seed 002) whose worked example is

    ipmicmd -k "0f 00 06 40 01 80 22" smi 0   ->   0f 07 00 40 82

i.e. data 01 80 22 (channel 1, set volatile access "disabled", leave the
privilege limit) answered 82h "set not supported on selected channel (e.g.
channel is sessionless)".  openUBMC's channel 1 is session-less; in vhw's
default layout channel 1 is a LAN channel (multi-session), so the same bytes
succeed there and answer 82h on the session-less IPMB channel 0 and system
interface 0Fh -- and exactly 82h on channel 1 when channel 1 is configured
as IPMB, as in the seed's system.
"""

from __future__ import annotations

import pytest

from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.core.config import BmcConfig

APP = 0x06
SI = Context()
LAN_ADMIN = Context(channel=1, privilege=Privilege.ADMINISTRATOR, interface="lan", session_id=1)
LAN_USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=2)
SEED_002 = bytes.fromhex("01 80 22")


@pytest.fixture
def bmc():
    return create_bmc(BmcConfig())


def call(bmc, cmd, data, ctx=SI):
    return bmc.handle(APP, cmd, bytes(data), ctx, 0.0)


# -- Get Channel Info (22.24) -------------------------------------------------------


@pytest.mark.parametrize(
    "interface, protocol, aux",
    [("kcs", 0x05, b"\x60\x60"), ("bt", 0x08, b"\x60\x60"), ("ssif", 0x04, b"\xff\xff")],
)
def test_system_interface_channel_reports_the_asking_interface(interface, protocol, aux):
    """Channel 0Fh: medium 0Ch System Interface; protocol per table 6-2."""
    bmc = create_bmc(BmcConfig(interfaces=("kcs", "bt", "ssif")))
    rsp = call(bmc, 0x42, b"\x0f", Context(interface=interface))
    assert rsp.to_bytes() == bytes([0x00, 0x0F, 0x0C, protocol, 0x00, 0xF2, 0x1B, 0x00]) + aux


def test_channel_0e_is_the_channel_the_request_came_in_on(bmc):
    assert call(bmc, 0x42, b"\x0e").data[0] == 0x0F
    assert call(bmc, 0x42, b"\x0e", LAN_USER).data[0] == 0x01


def test_ipmb_channel_0_is_sessionless_ipmb(bmc):
    """Medium 01h IPMB, protocol 01h IPMB-1.0, session support 00b; IANA 7154."""
    assert call(bmc, 0x42, b"\x00").to_bytes() == bytes.fromhex("00 00 01 01 00 f2 1b 00 00 00")


def test_lan_channel_1_is_multi_session_802_3(bmc):
    """Medium 04h 802.3 LAN, protocol 01h, session support 10b + active count."""
    bmc.parts["channels"].active_sessions = lambda ch: 3 if ch == 1 else 0
    assert call(bmc, 0x42, b"\x01").to_bytes() == bytes.fromhex("00 01 04 01 83 f2 1b 00 00 00")


@pytest.mark.parametrize("number", [0x02, 0x0B, 0x0C, 0x0D])
def test_get_channel_info_for_an_absent_channel_is_cc(bmc, number):
    assert call(bmc, 0x42, bytes([number])).cc == 0xCC


@pytest.mark.parametrize("data, cc", [(b"", 0xC7), (b"\x01\x00", 0xC8)])
def test_get_channel_info_length(bmc, data, cc):
    assert call(bmc, 0x42, data).cc == cc


# -- Set Channel Access: the seed-002 worked example --------------------------------


def test_seed_002_vector_on_a_sessionless_channel_1_answers_82h():
    """Exactly the seed's bytes and answer, with channel 1 session-less as in their system."""
    bmc = create_bmc(BmcConfig.from_dict({"channels": [{"number": 0, "medium": "ipmb"}, {"number": 1, "medium": "ipmb"}]}))
    assert call(bmc, 0x40, SEED_002).to_bytes() == b"\x82"


@pytest.mark.parametrize("channel", [0x00, 0x0F])
def test_seed_002_bytes_on_sessionless_channels_answer_82h(bmc, channel):
    """82h = set not supported on selected channel (e.g. channel is sessionless)."""
    assert call(bmc, 0x40, bytes([channel]) + SEED_002[1:]).cc == 0x82


def test_seed_002_present_channel_from_the_system_interface_is_sessionless(bmc):
    assert call(bmc, 0x40, b"\x0e" + SEED_002[1:]).cc == 0x82


def test_seed_002_bytes_succeed_on_lan_channel_1_and_touch_only_volatile(bmc):
    """10b = set volatile access per [5:0] (000b = disabled); [7:6] of byte 3 = 00b: keep the limit."""
    assert call(bmc, 0x40, SEED_002).to_bytes() == b"\x00"
    assert call(bmc, 0x41, b"\x01\x80").to_bytes() == b"\x00\x00\x04"  # volatile: disabled, limit admin
    assert call(bmc, 0x41, b"\x01\x40").to_bytes() == b"\x00\x02\x04"  # non-volatile: always available


def test_set_non_volatile_access_and_privilege_limit(bmc):
    """01b = non-volatile; privilege byte 01b = set non-volatile limit to [3:0]."""
    assert call(bmc, 0x40, bytes([0x01, 0x40 | 0x20 | 0x10 | 0x01, 0x40 | 0x03])).cc == 0
    assert call(bmc, 0x41, b"\x01\x40").data == bytes([0x31, 0x03])
    assert call(bmc, 0x41, b"\x01\x80").data == bytes([0x02, 0x04])


def test_set_volatile_privilege_limit_only(bmc):
    assert call(bmc, 0x40, bytes([0x01, 0x00, 0x80 | 0x02])).cc == 0
    assert call(bmc, 0x41, b"\x01\x80").data == bytes([0x02, 0x02])
    assert call(bmc, 0x41, b"\x01\x40").data == bytes([0x02, 0x04])


def test_shared_access_mode_on_lan_is_83h(bmc):
    """83h = access mode not supported ("shared" is a serial-port notion)."""
    assert call(bmc, 0x40, bytes([0x01, 0x80 | 0x03, 0x00])).cc == 0x83
    assert call(bmc, 0x41, b"\x01\x80").data == bytes([0x02, 0x04])


def test_disabling_user_level_authentication_is_cc_when_unsupported(bmc):
    """Byte 2 bit 3: 'Return CCh ... if an attempt is made to set this bit, but the option is not supported.'"""
    assert call(bmc, 0x40, bytes([0x01, 0x80 | 0x08 | 0x02, 0x00])).cc == 0xCC


def test_user_level_bit_is_ignored_when_access_is_not_being_set(bmc):
    assert call(bmc, 0x40, bytes([0x01, 0x08, 0x80 | 0x04])).cc == 0


@pytest.mark.parametrize("byte2, byte3", [(0xC2, 0x00), (0x00, 0xC4), (0x00, 0x80), (0x00, 0x86)])
def test_reserved_selectors_and_privilege_limits_are_cc(bmc, byte2, byte3):
    """11b is reserved in both bytes; limit 0h is reserved and >5h undefined."""
    assert call(bmc, 0x40, bytes([0x01, byte2, byte3])).cc == 0xCC


def test_a_rejected_set_changes_nothing(bmc):
    """Access is valid but the privilege limit is not: neither is applied."""
    assert call(bmc, 0x40, bytes([0x01, 0x80 | 0x00, 0x80 | 0x00])).cc == 0xCC
    assert call(bmc, 0x41, b"\x01\x80").data == bytes([0x02, 0x04])


def test_set_channel_access_on_an_absent_channel_is_cc(bmc):
    assert call(bmc, 0x40, bytes([0x05, 0x80, 0x00])).cc == 0xCC


@pytest.mark.parametrize("data, cc", [(b"\x01\x80", 0xC7), (b"\x01\x80\x22\x00", 0xC8)])
def test_set_channel_access_length(bmc, data, cc):
    assert call(bmc, 0x40, data).cc == cc


def test_set_channel_access_needs_administrator(bmc):
    """Appendix G: Set Channel Access is an ADMIN command; a USER session gets D4h."""
    assert call(bmc, 0x40, SEED_002, LAN_USER).cc == 0xD4
    assert call(bmc, 0x40, SEED_002, LAN_ADMIN).cc == 0


def test_get_channel_access_is_a_user_command(bmc):
    assert call(bmc, 0x41, b"\x01\x80", LAN_USER).cc == 0
    assert call(bmc, 0x41, b"\x01\x80", Context(channel=1, privilege=Privilege.CALLBACK, session_id=3)).cc == 0xD4


# -- Get Channel Access (22.23) -------------------------------------------------------


@pytest.mark.parametrize("channel", [0x00, 0x0F])
def test_get_channel_access_on_sessionless_channels_is_82h(bmc, channel):
    assert call(bmc, 0x41, bytes([channel, 0x80])).cc == 0x82


@pytest.mark.parametrize("which", [0x00, 0xC0])
def test_get_channel_access_reserved_type_is_cc(bmc, which):
    assert call(bmc, 0x41, bytes([0x01, which])).cc == 0xCC


def test_configured_lan_defaults_show_in_both_settings():
    bmc = create_bmc(BmcConfig.from_dict({"channels": [
        {"number": 0, "medium": "ipmb"},
        {"number": 2, "medium": "lan", "access_mode": "pre_boot", "privilege_limit": "operator"},
    ]}))
    assert call(bmc, 0x41, b"\x02\x40").data == bytes([0x01, 0x03])
    assert call(bmc, 0x41, b"\x02\x80").data == bytes([0x01, 0x03])
    assert call(bmc, 0x42, b"\x01").cc == 0xCC


def test_bmc_restart_reloads_volatile_from_non_volatile(bmc):
    call(bmc, 0x40, SEED_002)
    bmc.parts["channels"].bmc_restart()
    assert call(bmc, 0x41, b"\x01\x80").data == bytes([0x02, 0x04])


def test_lan_asking_about_the_system_interface_gets_the_first_configured_one():
    bmc = create_bmc(BmcConfig(interfaces=("ssif", "kcs")))
    assert call(bmc, 0x42, b"\x0f", LAN_USER).data[:3] == bytes([0x0F, 0x0C, 0x04])
