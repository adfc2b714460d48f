"""Get/Set LAN Configuration Parameters (IPMI 2.0 sections 23.1-23.2, table 23-4)."""

from __future__ import annotations

import pytest

from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.parts.lanconfig import derive_mac
from vhw.store import Store

T = 0x0C
SET, GET = 0x01, 0x02
LAN = Context(channel=1, privilege=Privilege.ADMINISTRATOR, interface="lan", session_id=5, user_id=2)


def make(lan_config=None, store=None, machine="m1"):
    d = {} if lan_config is None else {"lan_config": lan_config}
    return create_bmc(BmcConfig.from_dict(d, machine=machine), store=store)


def get(bmc, param, sel=0, chan=1, ctx=None):
    return bmc.handle(T, GET, bytes([chan, param, sel, 0]), ctx or Context(), 0)


def put(bmc, param, data, chan=1, ctx=None):
    return bmc.handle(T, SET, bytes([chan, param]) + bytes(data), ctx or Context(), 0)


def test_description_values_are_reported():
    """Parameters 3, 4, 5, 6, 12, 16 come from [bmc.lan_config]; revision 11h first (23.2)."""
    bmc = make({"ip": "192.168.7.9", "netmask": "255.255.0.0", "gateway": "192.168.0.1",
                "mac": "02:11:22:33:44:55", "ip_source": "dhcp", "community": "vhw"})
    assert get(bmc, 3).data == b"\x11\xc0\xa8\x07\x09"
    assert get(bmc, 4).data == b"\x11\x02"
    assert get(bmc, 5).data == b"\x11\x02\x11\x22\x33\x44\x55"
    assert get(bmc, 6).data == b"\x11\xff\xff\x00\x00"
    assert get(bmc, 12).data == b"\x11\xc0\xa8\x00\x01"
    assert get(bmc, 16).data == b"\x11" + b"vhw".ljust(18, b"\x00")


def test_default_mac_is_local_unicast_and_per_machine():
    a, b = derive_mac("a"), derive_mac("b")
    assert a != b
    first = int(a[:2], 16)
    assert first & 0x02 and not first & 0x01
    assert get(make(machine="a"), 5).data[1:].hex(":") == a


@pytest.mark.parametrize("key,value", [("ip", "300.1.1.1"), ("netmask", "255.0.255.0"), ("mac", "zz"),
                                       ("ip_source", "magic"), ("colour", "red"), ("community", "x" * 19)])
def test_description_errors_name_the_key(key, value):
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"lan_config": {key: value}})
    assert f"bmc.lan_config.{key}" in str(e.value)


def test_set_ip_is_reported_and_persisted(tmp_path):
    store = Store(tmp_path / "s.db")
    bmc = make(store=store)
    assert put(bmc, 3, [10, 9, 8, 7]).cc == 0
    assert get(bmc, 3).data == b"\x11\x0a\x09\x08\x07"
    store.close()
    again = make(store=Store(tmp_path / "s.db"))
    assert get(again, 3).data == b"\x11\x0a\x09\x08\x07"


def test_revision_only():
    """23.2: byte 1 bit 7 = get parameter revision only."""
    assert get(make(), 3, chan=0x81).data == b"\x11"


def test_unsupported_readonly_and_lengths():
    bmc = make()
    assert get(bmc, 9).cc == 0x80          # primary RMCP port: not supported
    assert put(bmc, 9, [1, 2]).cc == 0x80
    assert put(bmc, 1, [0x15]).cc == 0x82  # authentication type support is read only
    assert put(bmc, 17, [1]).cc == 0x82
    assert put(bmc, 23, [0] * 13).cc == 0x82
    assert put(bmc, 3, [1, 2, 3]).cc == 0xC7
    assert bmc.handle(T, GET, b"\x01\x03", Context(), 0).cc == 0xC7


def test_set_in_progress_rules():
    """Parameter 0: claiming 'set in progress' twice answers 81h; commit write and set complete release it."""
    bmc = make()
    assert put(bmc, 0, [1]).cc == 0
    assert get(bmc, 0).data == b"\x11\x01"
    assert put(bmc, 0, [1]).cc == 0x81
    assert put(bmc, 0, [2]).cc == 0      # commit write
    assert get(bmc, 0).data == b"\x11\x00"
    assert put(bmc, 0, [1]).cc == 0
    assert put(bmc, 0, [0]).cc == 0
    assert put(bmc, 0, [3]).cc == 0xCC


def test_channel_must_be_the_lan_channel():
    bmc = make()
    assert get(bmc, 3, chan=0x0E).cc == 0xCC      # in-band, 0Eh is the system interface
    assert get(bmc, 3, chan=0x0E, ctx=LAN).cc == 0  # over LAN it is channel 1
    assert get(bmc, 3, chan=0).cc == 0xCC


def test_privileges_appendix_g():
    bmc = make()
    user = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=1)
    op = Context(channel=1, privilege=Privilege.OPERATOR, interface="lan", session_id=1)
    assert get(bmc, 3, ctx=user).cc == 0xD4
    assert get(bmc, 3, ctx=op).cc == 0
    assert put(bmc, 3, [1, 2, 3, 4], ctx=op).cc == 0xD4


def test_auth_type_enables_validated_exposed_and_pushed_to_lan_context():
    bmc = make()
    part = bmc.parts["lanconfig"]
    assert get(bmc, 1).data == b"\x11\x17"  # none, MD2, MD5, straight password (table 23-4)
    assert put(bmc, 2, [0x20, 0, 0, 0, 0]).cc == 0xCC  # OEM proprietary is not supported
    assert put(bmc, 2, [0x01, 0x04, 0x10, 0x14, 0x00]).cc == 0
    assert [part.auth_type_enables(p) for p in range(1, 6)] == [0x01, 0x04, 0x10, 0x14, 0x00]
    from vhw.ipmi.parts.sessions import lan_context

    lan = lan_context(bmc)
    bmc.handle(0x06, 0x01, b"", Context(), 1.0)  # any request syncs a new LAN context
    assert lan.auth_type_enables[4] == 0x14
    assert put(bmc, 2, [0x04] * 5).cc == 0
    assert lan.auth_type_enables[1] == 0x04


def test_auth_support_matches_the_lan_core():
    from vhw.ipmi.parts.sessions import SUPPORTED_AUTH_TYPES

    assert get(make(), 1).data[1] == sum(1 << t for t in SUPPORTED_AUTH_TYPES)


def test_cipher_suite_parameters():
    """Parameters 22-24: entry count, entries, privilege nibbles (entry 0 in byte 2 [3:0])."""
    bmc = make()
    part = bmc.parts["lanconfig"]
    n = get(bmc, 22).data[1]
    entries = get(bmc, 23).data[2:]
    assert len(entries) == n and 3 in entries and 17 in entries
    privs = [0x44] * 8
    i3 = entries.index(3)
    privs[i3 // 2] = (0x3 << 4 | 0x4) if i3 % 2 else (0x40 | 0x3)
    assert put(bmc, 24, [0] + privs).cc == 0
    got = part.cipher_suite_privileges()
    assert got[3] == 3 and got[17] == 4
    assert put(bmc, 24, [0] + [0x66] * 8).cc == 0xCC


def test_destinations_and_vlan():
    bmc = make()
    assert get(bmc, 17).data == b"\x11\x04"
    assert put(bmc, 18, [2, 0x80, 5, 2]).cc == 0
    assert get(bmc, 18, sel=2).data == b"\x11\x02\x80\x05\x02"
    assert get(bmc, 18, sel=9).cc == 0xCC
    assert put(bmc, 19, [1, 0, 0, 10, 0, 0, 1, 2, 3, 4, 5, 6, 7]).cc == 0
    assert get(bmc, 19, sel=1).data[4:8] == b"\x0a\x00\x00\x01"
    assert put(bmc, 20, [0x64, 0x80]).cc == 0
    assert get(bmc, 20).data == b"\x11\x64\x80"
    assert put(bmc, 21, [9]).cc == 0xCC


def test_bad_values_refused():
    bmc = make()
    assert put(bmc, 6, [255, 0, 255, 0]).cc == 0xCC
    assert put(bmc, 5, [1, 2, 3, 4, 5, 6]).cc == 0xCC  # multicast MAC
    assert put(bmc, 4, [7]).cc == 0xCC
