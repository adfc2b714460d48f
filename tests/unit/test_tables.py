"""vhw.tables.Table: the one reader of description tables; errors name the key."""

from __future__ import annotations

import pytest

from vhw.errors import DescriptionError
from vhw.tables import Table


def test_values_are_checked_and_taken():
    t = Table({"memory": 256, "accel": "kvm", "on": True}, "machine", "m.toml")
    assert t.int_range("memory", 128, 16, 4096) == 256
    assert t.choice("accel", "tcg", ("tcg", "kvm")) == "kvm"
    assert t.boolean("on", False) is True
    assert t.integer("absent", 7, 0, 0xFF) == 7
    assert t.data == {}
    t.finish()


@pytest.mark.parametrize("call, key, reason", [
    (lambda t: t.int_range("n", 0, 1, 5), "top.n", "must be between 1 and 5; got 9"),
    (lambda t: t.integer("n", 0, 0, 0x07), "top.n", "must be 0x0..0x7, not 0x9"),
    (lambda t: t.take("flag", 0, int), "top.flag", "must be a number, not True"),
    (lambda t: t.choice("word", "a", ("a", "b")), "top.word", "must be one of a, b; got 'c'"),
])
def test_errors_name_the_key(call, key, reason):
    t = Table({"n": 9, "flag": True, "word": "c"}, "top", "f.toml")
    with pytest.raises(DescriptionError) as e:
        call(t)
    assert (e.value.key, e.value.reason, e.value.source) == (key, reason, "f.toml")


def test_unknown_keys_get_a_suggestion_or_the_known_list():
    t = Table({"memroy": 1}, "machine")
    t.known = ("memory", "cpus")
    with pytest.raises(DescriptionError, match=r"machine\.memroy: unknown key \(did you mean 'memory'\?\)"):
        t.finish()
    with pytest.raises(DescriptionError, match=r"bmc\.sol\.colour: unknown key \(known: port\)"):
        Table({"colour": "red"}, "bmc.sol").expect(("port",))
    t = Table({"bogus": 1}, "bmc")
    t.raw("interfaces")
    with pytest.raises(DescriptionError) as e:
        t.finish()
    assert str(e.value) == "bmc.bogus: unknown key"


def test_not_a_table():
    with pytest.raises(DescriptionError, match="bmc.chassis: must be a table, not list"):
        Table([1], "bmc.chassis")
    assert Table(None, "x").data == {}
