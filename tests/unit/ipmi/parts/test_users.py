"""The user table and its commands (IPMI 2.0 sections 22.26-22.30)."""

from __future__ import annotations

import pytest

from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.core.config import BmcConfig
from vhw.store import Store

APP = 0x06
SI = Context()
LAN_OPERATOR = Context(channel=1, privilege=Privilege.OPERATOR, interface="lan", session_id=1)
LAN_USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=2)
H = bytes.fromhex

USERS = [
    {"id": 2, "name": "admin", "password": "secret"},
    {"id": 3, "name": "operator", "password": "x" * 20, "privilege": {"1": "operator", "15": "user"},
     "link_auth": True},
    {"id": 4, "name": "off", "enabled": False, "privilege": "user"},
]


def make_bmc(users=USERS, store=None):
    return create_bmc(BmcConfig.from_dict({"users": users}, machine="t"), store=store)


def call(bmc, cmd, data, ctx=SI):
    return bmc.handle(APP, cmd, bytes(data), ctx, 0.0)


def name16(text: str) -> bytes:
    return text.encode().ljust(16, b"\0")


# -- Get User Access (22.27) -------------------------------------------------------
def test_get_user_access_reports_counts_status_and_channel_limits():
    """Table 22-34: byte 1 maximum user IDs, byte 2 [7:6] enable status and
    [5:0] enabled count, byte 3 fixed-name count (user 1), byte 4 the
    channel's callback/link-auth/messaging bits and privilege limit."""
    bmc = make_bmc()
    rsp = call(bmc, 0x44, [0x01, 0x02])
    assert rsp.cc == 0
    assert rsp.data == bytes([15, 0x40 | 2, 1, 0x10 | 4])  # enabled, 2 enabled users; messaging, admin
    assert call(bmc, 0x44, [0x01, 0x03]).data == bytes([15, 0x40 | 2, 1, 0x20 | 0x10 | 3])
    assert call(bmc, 0x44, [0x0F, 0x03]).data[3] & 0x0F == 2  # per-channel table: user on 0Fh
    assert call(bmc, 0x44, [0x01, 0x04]).data[1] >> 6 == 2  # disabled via the description
    assert call(bmc, 0x44, [0x01, 0x05]).data == bytes([15, 2, 1, 0x0F])  # unused: status unspecified, no access


def test_get_user_access_present_channel_is_the_asking_channel():
    """0Eh means "this channel" (table 6-1): in the guest that is 0Fh, which
    `ipmitool user list` relies on."""
    bmc = make_bmc()
    assert call(bmc, 0x44, [0x0E, 0x03]).data == call(bmc, 0x44, [0x0F, 0x03]).data
    assert call(bmc, 0x44, [0x0E, 0x03], LAN_OPERATOR).data == call(bmc, 0x44, [0x01, 0x03]).data


@pytest.mark.parametrize("data, cc", [
    ([0x01, 0x00], 0xCC),  # user ID 0 is reserved
    ([0x01, 16], 0xCC),  # beyond the 15 IDs
    ([0x05, 0x02], 0xCC),  # no channel 5
    ([0x01], 0xC7),
])
def test_get_user_access_rejects_bad_requests(data, cc):
    assert call(make_bmc(), 0x44, data).cc == cc


def test_user_commands_need_operator_or_administrator():
    """Appendix G: Get User Access/Name need Operator; the Set commands Administrator."""
    bmc = make_bmc()
    assert call(bmc, 0x44, [0x01, 0x02], LAN_USER).cc == 0xD4
    assert call(bmc, 0x46, [0x02], LAN_OPERATOR).cc == 0
    assert call(bmc, 0x45, [0x05] + list(name16("x")), LAN_OPERATOR).cc == 0xD4


# -- Set User Access (22.26) -----------------------------------------------------
def test_set_user_access_changes_flags_only_when_byte_1_bit_7_says_so():
    """Table 22-33: byte 1 bit 7 "enable changing bits 6:4"; without it only
    the privilege limit (and the optional session limit) change."""
    bmc = make_bmc()
    assert call(bmc, 0x43, [0x80 | 0x40 | 0x20 | 0x01, 0x05, 0x03, 0x02]).cc == 0
    assert call(bmc, 0x44, [0x01, 0x05]).data[3] == 0x40 | 0x20 | 0x03
    assert call(bmc, 0x43, [0x01, 0x05, 0x02]).cc == 0  # flags kept
    assert call(bmc, 0x44, [0x01, 0x05]).data[3] == 0x40 | 0x20 | 0x02
    users = bmc.parts["users"]
    assert users.access(5, 1).session_limit == 2
    assert users.privilege_limit(5, 1) == 2 and users.privilege_limit(5, 0x0F) == 0x0F


@pytest.mark.parametrize("data, cc", [
    ([0x01, 0x05, 0x00], 0xCC),  # privilege limit 0 is reserved
    ([0x01, 0x05, 0x06], 0xCC),
    ([0x01, 0x00, 0x02], 0xCC),
    ([0x09, 0x05, 0x02], 0xCC),
    ([0x01, 0x05], 0xC7),
])
def test_set_user_access_rejects_bad_requests(data, cc):
    assert call(make_bmc(), 0x43, data).cc == cc


# -- Get/Set User Name (22.28, 22.29) ----------------------------------------------
def test_get_user_name_is_16_bytes_and_user_1_is_the_null_name():
    bmc = make_bmc()
    assert call(bmc, 0x46, [0x02]).data == name16("admin")
    assert call(bmc, 0x46, [0x01]).data == bytes(16)
    assert call(bmc, 0x46, [0x00]).cc == 0xCC


def test_set_user_name_refuses_the_fixed_name_duplicates_and_garbage():
    """Section 22.28: user 1's name is fixed (CCh).  Names are unique here
    (CCh for one another user has) because the LAN side looks users up by
    name; control characters are refused too."""
    bmc = make_bmc()
    assert call(bmc, 0x45, [0x05] + list(name16("alice"))).cc == 0
    assert call(bmc, 0x46, [0x05]).data == name16("alice")
    assert call(bmc, 0x45, [0x01] + list(name16("root"))).cc == 0xCC
    assert call(bmc, 0x45, [0x06] + list(name16("admin"))).cc == 0xCC
    assert call(bmc, 0x45, [0x06] + list(b"bad\x07name".ljust(16, b"\0"))).cc == 0xCC
    assert call(bmc, 0x45, [0x02] + list(name16("admin"))).cc == 0  # its own name again: fine
    assert call(bmc, 0x45, [0x05] + list(name16("alice")[:15])).cc == 0xC7
    assert call(bmc, 0x45, [0x05] + list(bytes(16))).cc == 0  # clearing a name
    assert bmc.parts["users"].find_by_name("alice") is None


# -- Set User Password (22.30) -----------------------------------------------------
def password_request(uid, op, password=None, twenty=False):
    size = 20 if twenty else 16
    head = [(0x80 if twenty else 0) | uid, op]
    return head + (list(password.encode().ljust(size, b"\0")) if password is not None else [])


def test_set_and_test_password_in_16_byte_form():
    """Table 22-36: operation 10b sets, 11b tests; 80h = size right, data wrong."""
    bmc = make_bmc()
    assert call(bmc, 0x47, password_request(5, 2, "hunter2")).cc == 0
    assert call(bmc, 0x47, password_request(5, 3, "hunter2")).cc == 0
    assert call(bmc, 0x47, password_request(5, 3, "hunter3")).cc == 0x80
    assert bmc.parts["users"].password(5) == b"hunter2".ljust(16, b"\0")


def test_test_password_in_the_other_size_is_81h():
    """Section 22.30: 81h "wrong password size was used" -- a password stored
    with the 20-byte form (byte 1 bit 7) tested with the 16-byte form."""
    bmc = make_bmc()
    assert call(bmc, 0x47, password_request(3, 3, "x" * 20, twenty=True)).cc == 0
    assert call(bmc, 0x47, password_request(3, 3, "x" * 16)).cc == 0x81
    assert call(bmc, 0x47, password_request(2, 3, "secret", twenty=True)).cc == 0x81


def test_disable_and_enable_set_the_enable_status():
    """Operations 00b/01b; Get User Access byte 2 [7:6] says 10b/01b afterwards."""
    bmc = make_bmc()
    assert call(bmc, 0x47, [0x02, 0x00]).cc == 0
    assert call(bmc, 0x44, [0x01, 0x02]).data[1] == 0x80 | 1
    assert not bmc.parts["users"].enabled(2)
    assert call(bmc, 0x47, [0x02, 0x01] + [0] * 16).cc == 0  # password bytes are ignored
    assert call(bmc, 0x44, [0x01, 0x02]).data[1] == 0x40 | 2


@pytest.mark.parametrize("data, cc", [
    ([0x02, 0x02] + [0x41] * 15, 0xC7),  # set: 16 bytes exactly
    ([0x82, 0x02] + [0x41] * 16, 0xC7),  # 20-byte form with 16 bytes
    ([0x02], 0xC7),
    ([0x00, 0x01], 0xCC),
])
def test_set_user_password_rejects_bad_lengths_and_ids(data, cc):
    assert call(make_bmc(), 0x47, data).cc == cc


# -- the lookup API and the description --------------------------------------------
def test_lookup_api_for_sessions():
    users = make_bmc().parts["users"]
    assert users.find_by_name("operator") == 3
    assert users.find_by_name(b"operator\0\0\0") == 3
    assert users.find_by_name("") == 1  # the anonymous user
    assert users.find_by_name("nobody") is None
    assert users.password(3) == b"x" * 20
    assert users.privilege_limit(3, 1) == 3 and users.privilege_limit(2, 1) == 4
    assert users.enabled(2) and not users.enabled(4) and not users.enabled(1)


@pytest.mark.parametrize("users, key", [
    ([{"id": 0}], "bmc.users[0].id"),
    ([{"id": 2}, {"id": 2}], "bmc.users[1].id"),
    ([{"id": 1, "name": "anon"}], "bmc.users[0].name"),
    ([{"id": 2, "name": "a"}, {"id": 3, "name": "a"}], "bmc.users[1].name"),
    ([{"id": 2, "password": "p" * 21}], "bmc.users[0].password"),
    ([{"id": 2, "privilege": "root"}], "bmc.users[0].privilege"),
    ([{"id": 2, "privilege": {"14": "user"}}], "bmc.users[0].privilege.14"),
    ([{"id": 2, "colour": "red"}], "bmc.users[0].colour"),
])
def test_description_errors_name_the_key(users, key):
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"users": users})
    assert e.value.key == key


def test_the_store_wins_over_the_description_after_the_first_start(tmp_path):
    """The description seeds an empty state; afterwards the state file is the truth."""
    path = tmp_path / "t.db"
    bmc = make_bmc(store=Store(path))
    assert call(bmc, 0x45, [0x02] + list(name16("root"))).cc == 0
    bmc.store.close()
    again = make_bmc(store=Store(path))
    assert call(again, 0x46, [0x02]).data == name16("root")
