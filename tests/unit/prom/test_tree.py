"""The OpenPROM tree model and its /dev/openprom semantics (vhw/prom/tree.py).

Each rule quotes its source: the 4.4BSD openprom(4) page
(the 4.4BSD openprom(4) manual, "the seed") or
docs/openprom-sparc.md (§9 reference table, §10 illumos).
"""

from __future__ import annotations

import errno
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vhw.prom.tree import (
    LINUX_DEVIATIONS,
    MAX_FIELD_LENGTH,
    OBP_MAXPROPNAME,
    OPENBIOS_DEVIATIONS,
    OPROM_MAX_PARAM,
    OpenpromDevice,
    OpioResult,
    OpromReply,
    PromTree,
    SunOpenpromDevice,
    decode_ints,
    decode_string,
    decode_strings,
    encode_int,
    encode_ints,
    encode_string,
    encode_strings,
    encode_value,
)

BIG = 65536  # a buffer larger than any value here

SS5 = {
    "name": "SUNW,SPARCstation-5",
    "banner-name": "SPARCstation 5",
    "#address-cells": 2,
    "options": {
        "auto-boot?": "true",
        "boot-device": "disk:a disk",
        "my-var": "injected-by-host",
    },
    "iommu@0,10000000": {
        "reg": [0, 0x10000000, 0x300],
        "sbus@0,10001000": {
            "espdma@5,8400000": {"esp@5,8800000": {"sd@0,0": {}}},
        },
    },
    "obio": {
        "zs@0,100000": {"device_type": "serial", "keyboard": None},
        "eeprom@0,200000": {"model": "mk48t08"},
    },
    "aliases": {"disk": "/iommu/sbus/espdma/esp/sd@3,0"},
}


@pytest.fixture
def tree() -> PromTree:
    return PromTree.from_description(SS5, ids=range(0xFFD00000 - 2**32, 0xFFD00000 - 2**32 + 100 * 64, 64))


def node_of(tree: PromTree, path: str) -> int:
    node = tree.find(path)
    assert node is not None, path
    return node.node_id


def unknown_node(tree: PromTree) -> int:
    return max(tree.nodes) + 1


# ------------------------------------------------------------------ encoding


def test_strings_are_nul_terminated():
    assert encode_string("disk") == b"disk\0"
    assert encode_strings(["SUNW,foo", "bar"]) == b"SUNW,foo\0bar\0"
    assert decode_string(b"disk\0") == "disk"
    assert decode_strings(b"SUNW,foo\0bar\0") == ["SUNW,foo", "bar"]
    with pytest.raises(ValueError):
        encode_string("a\0b")


def test_int_arrays_are_big_endian_32_bit_cells():
    assert encode_int(1) == b"\0\0\0\1"
    assert encode_ints([0x10000000, 0x300]) == b"\x10\0\0\0\0\0\x03\0"
    assert encode_int(-1) == b"\xff\xff\xff\xff"
    assert decode_ints(b"\x10\0\0\0\0\0\x03\0") == [0x10000000, 0x300]
    with pytest.raises(ValueError):
        encode_int(2**32)
    with pytest.raises(ValueError):
        decode_ints(b"\0\0\0")


def test_description_values_encode_as_openfirmware_does():
    assert encode_value(None) == b"" and encode_value(True) == b""
    assert encode_value(b"\1\2") == b"\1\2"
    assert encode_value([1, 2]) == encode_ints([1, 2])
    assert encode_value(["a", "b"]) == b"a\0b\0"
    with pytest.raises(ValueError):
        encode_value(1.5)


# ---------------------------------------------------------------------- tree


def test_tree_from_description(tree):
    assert [n.path for n in tree.walk()] == [
        "/", "/options", "/iommu@0,10000000", "/iommu@0,10000000/sbus@0,10001000",
        "/iommu@0,10000000/sbus@0,10001000/espdma@5,8400000",
        "/iommu@0,10000000/sbus@0,10001000/espdma@5,8400000/esp@5,8800000",
        "/iommu@0,10000000/sbus@0,10001000/espdma@5,8400000/esp@5,8800000/sd@0,0",
        "/obio", "/obio/zs@0,100000", "/obio/eeprom@0,200000", "/aliases",
    ]
    assert tree.root.name == "SUNW,SPARCstation-5"
    # Ids are handed out in walk order from the given sequence.
    assert [n.node_id for n in tree.walk()] == sorted(tree.nodes)
    assert all(tree.nodes[n.node_id] is n for n in tree.walk())


def test_name_property_comes_first_then_description_order(tree):
    eeprom = tree.find("/obio/eeprom@0,200000")
    assert list(eeprom.properties) == ["name", "model"]
    assert eeprom.properties["name"] == b"eeprom\0"
    assert eeprom.unit_address == "0,200000"
    assert tree.find("/obio/zs@0,100000").properties["keyboard"] == b""


def test_find_by_path(tree):
    assert tree.find("/") is tree.root
    assert tree.find("/options") is tree.options
    assert tree.find("/obio/eeprom").name == "eeprom"  # no unit: first of that name
    assert tree.find("/obio/eeprom@0,200000").path == "/obio/eeprom@0,200000"
    assert tree.find("/obio/eeprom@1,0") is None
    assert tree.find("/nope") is None
    assert tree.find("options") is None


def test_tree_rejects_bad_ids_and_components():
    with pytest.raises(ValueError, match="used twice"):
        PromTree.from_description({"a": {}}, ids=[5, 5])
    with pytest.raises(ValueError):
        PromTree.from_description({"a": {}}, ids=[1, 0])
    with pytest.raises(ValueError):
        PromTree.from_description({"a": {}}, ids=[2**31])
    with pytest.raises(ValueError, match="ran out"):
        PromTree.from_description({"a": {}}, ids=[1])
    with pytest.raises(ValueError):
        PromTree.from_description({"@1": {}})


# ----------------------------------------------------- openprom(4): node ops


def test_getoptnode(tree):
    """"OPIOCGETOPTNODE Takes nothing, and fills in the options node number.\""""
    assert OpenpromDevice(tree).get_opt_node() == (0, tree.options.node_id)
    # It needs no permission at all (the 4.4BSD driver answers it first).
    assert OpenpromDevice(tree, os.O_WRONLY).get_opt_node() == (0, tree.options.node_id)
    assert OpenpromDevice(PromTree.from_description({"a": {}})).get_opt_node() == (0, 0)


def test_getnext_of_zero_is_the_first_node(tree):
    """"the node following number 0 is the first node.\""""
    assert OpenpromDevice(tree).get_next(0) == (0, tree.root.node_id)


def test_getnext_after_the_last_node_is_zero(tree):
    """"The node following the last node is number 0\""""
    dev = OpenpromDevice(tree)
    assert dev.get_next(tree.root.node_id) == (0, 0)
    assert dev.get_next(node_of(tree, "/aliases")) == (0, 0)
    assert dev.get_next(node_of(tree, "/options")) == (0, node_of(tree, "/iommu@0,10000000"))


def test_getchild(tree):
    """"OPIOCGETCHILD Takes a node number and returns the number of the first
    ``child'' of that node. This child may have siblings; these can be
    discovered by using OPIOCGETNEXT.\""""
    dev = OpenpromDevice(tree)
    assert dev.get_child(tree.root.node_id) == (0, node_of(tree, "/options"))
    assert dev.get_child(node_of(tree, "/obio/eeprom")) == (0, 0)  # a leaf


def test_getchild_of_zero_is_einval(tree):
    """"[EINVAL] ... or is zero where zero is not allowed." (§9: GETCHILD(0) → EINVAL)"""
    assert OpenpromDevice(tree).get_child(0) == (errno.EINVAL, None)


@pytest.mark.parametrize("op", ["get_next", "get_child", "get", "set", "next_prop"])
def test_unknown_node_is_einval(tree, op):
    """"[EINVAL] The given node number is not zero and does not correspond to
    any valid node\""""
    dev = OpenpromDevice(tree, os.O_RDWR)
    bad = unknown_node(tree)
    calls = {
        "get_next": lambda n: dev.get_next(n),
        "get_child": lambda n: dev.get_child(n),
        "get": lambda n: dev.get(n, b"name", BIG),
        "set": lambda n: dev.set(n, b"x", b"y"),
        "next_prop": lambda n: dev.next_prop(n, b"", BIG),
    }
    for node in (bad, -1, "1", None, True, 1.0):
        assert calls[op](node) == (errno.EINVAL, None), node


@pytest.mark.parametrize("op", ["get", "set", "next_prop"])
def test_node_zero_is_not_allowed_for_properties(tree, op):
    """"or is zero where zero is not allowed.\""""
    dev = OpenpromDevice(tree, os.O_RDWR)
    result = {
        "get": lambda: dev.get(0, b"name", BIG),
        "set": lambda: dev.set(0, b"x", b"y"),
        "next_prop": lambda: dev.next_prop(0, b"", BIG),
    }[op]()
    assert result == (errno.EINVAL, None)


# -------------------------------------------------------- openprom(4): GET


def test_get_missing_property_has_length_minus_one(tree):
    """"If no such property is associated with that node, the value length is
    set to -1.\""""
    assert OpenpromDevice(tree).get(tree.options.node_id, b"no-such-option", BIG) == (0, OpioResult(-1, b""))


def test_get_property_without_value_has_length_zero(tree):
    """"If the named property exists but has no value, the value length is set to 0.\""""
    zs = node_of(tree, "/obio/zs")
    assert OpenpromDevice(tree).get(zs, b"keyboard", BIG) == (0, OpioResult(0, b""))


def test_get_value(tree):
    """"OPIOCGET Fills in the value of the named property for the given node.\""""
    dev = OpenpromDevice(tree)
    assert dev.get(tree.options.node_id, b"my-var", BIG) == (0, OpioResult(17, b"injected-by-host\0"))
    iommu = node_of(tree, "/iommu@0,10000000")
    assert dev.get(iommu, b"reg", 12) == (0, OpioResult(12, encode_ints([0, 0x10000000, 0x300])))


def test_get_truncates_to_the_callers_buffer(tree):
    """"At entry to the ioctl, the counts are expected to reflect the buffer
    size; on return, the counts are updated to reflect the buffer contents."
    The 4.4BSD driver copies only the buffer's worth and leaves op_buflen at
    the buffer size."""
    dev = OpenpromDevice(tree)
    assert dev.get(tree.options.node_id, b"my-var", 8) == (0, OpioResult(8, b"injected"))
    assert dev.get(tree.options.node_id, b"my-var", 0) == (0, OpioResult(0, b""))
    # Missing stays -1 whatever the buffer.
    assert dev.get(tree.options.node_id, b"nope", 0) == (0, OpioResult(-1, b""))


def test_get_negative_buffer_is_einval(tree):
    assert OpenpromDevice(tree).get(tree.options.node_id, b"my-var", -1) == (errno.EINVAL, None)


def test_get_needs_read_permission(tree):
    """"[EBADF] The requested operation requires permissions not specified at
    the call to open().\""""
    dev = OpenpromDevice(tree, os.O_WRONLY)
    options = tree.options.node_id
    assert dev.get(options, b"my-var", BIG) == (errno.EBADF, None)
    assert dev.next_prop(options, b"", BIG) == (errno.EBADF, None)
    assert dev.get_next(0) == (errno.EBADF, None)
    assert dev.get_child(options) == (errno.EBADF, None)
    # The node is checked first: a bad node is EINVAL even without permission.
    assert dev.get(unknown_node(tree), b"x", BIG) == (errno.EINVAL, None)


# -------------------------------------------------------- openprom(4): SET


def test_set_on_options_then_get(tree):
    """"OPIOCSET Writes the given value under the given name." The BSD drivers
    hand op_buflen + 1 bytes (value and NUL) to the PROM (§9 deviation 3)."""
    dev = OpenpromDevice(tree, os.O_RDWR)
    options = tree.options.node_id
    assert dev.set(options, b"my-var", b"set-from-guest") == (0, None)
    assert dev.get(options, b"my-var", BIG) == (0, OpioResult(15, b"set-from-guest\0"))
    # New names are created (IEEE 1275 setprop), after the existing ones.
    assert dev.set(options, b"brand-new-var", b"") == (0, None)
    assert dev.get(options, b"brand-new-var", BIG) == (0, OpioResult(1, b"\0"))
    assert list(tree.options.properties)[-1] == "brand-new-var"


def test_set_refused_elsewhere_is_einval(tree):
    """"The OPENPROM may refuse this operation; in this case EINVAL is returned.\""""
    dev = OpenpromDevice(tree, os.O_RDWR)
    eeprom = node_of(tree, "/obio/eeprom")
    assert dev.set(eeprom, b"model", b"other") == (errno.EINVAL, None)
    assert tree.nodes[eeprom].properties["model"] == b"mk48t08\0"
    assert dev.set(tree.root.node_id, b"x", b"y") == (errno.EINVAL, None)


@pytest.mark.parametrize("name", [b"", b"a=b", b"a\0b", b"name"])
def test_set_refuses_names_an_nvram_option_cannot_have(tree, name):
    """Refusal is EINVAL ("The OPENPROM may refuse this operation")."""
    before = dict(tree.options.properties)
    assert OpenpromDevice(tree, os.O_RDWR).set(tree.options.node_id, name, b"v") == (errno.EINVAL, None)
    assert tree.options.properties == before


def test_set_needs_write_permission(tree):
    """"[EBADF] The requested operation requires permissions not specified at
    the call to open()." (§9: SET on an O_RDONLY descriptor → EBADF)"""
    before = dict(tree.options.properties)
    assert OpenpromDevice(tree, os.O_RDONLY).set(tree.options.node_id, b"my-var", b"x") == (errno.EBADF, None)
    assert OpenpromDevice(tree, os.O_WRONLY).set(tree.options.node_id, b"my-var", b"x") == (0, None)
    assert before["my-var"] == b"injected-by-host\0"


# ------------------------------------------------------- lengths, bad input


@pytest.mark.parametrize("op", ["get", "set-name", "set-value", "next_prop"])
def test_fields_over_8191_bytes_are_enametoolong(tree, op):
    """"[ENAMETOOLONG] The given name or value field exceeds the maximum
    allowed length (8191 bytes).\""""
    dev = OpenpromDevice(tree, os.O_RDWR)
    options = tree.options.node_id
    call = {
        "get": lambda f: dev.get(options, f, BIG),
        "set-name": lambda f: dev.set(options, f, b"v"),
        "set-value": lambda f: dev.set(options, b"long-var", f),
        "next_prop": lambda f: dev.next_prop(options, f, BIG),
    }[op]
    assert call(b"x" * (MAX_FIELD_LENGTH + 1)) == (errno.ENAMETOOLONG, None)
    assert call(b"x" * MAX_FIELD_LENGTH)[0] != errno.ENAMETOOLONG


def test_value_of_exactly_8191_bytes_round_trips(tree):
    dev = OpenpromDevice(tree, os.O_RDWR)
    value = b"v" * MAX_FIELD_LENGTH
    assert dev.set(tree.options.node_id, b"nvramrc", value) == (0, None)
    assert dev.get(tree.options.node_id, b"nvramrc", BIG) == (0, OpioResult(8192, value + b"\0"))


@pytest.mark.parametrize("bad", ["my-var", None, 7, ["m"], memoryview(b"x")])
def test_non_bytes_fields_are_einval_not_exceptions(tree, bad):
    dev = OpenpromDevice(tree, os.O_RDWR)
    options = tree.options.node_id
    assert dev.get(options, bad, BIG) == (errno.EINVAL, None)
    assert dev.set(options, bad, b"v") == (errno.EINVAL, None)
    assert dev.set(options, b"my-var", bad) == (errno.EINVAL, None)
    assert dev.next_prop(options, bad, BIG) == (errno.EINVAL, None)
    assert dev.get(options, b"my-var", "8") == (errno.EINVAL, None)


def test_name_with_nul_names_no_property(tree):
    """No PROM name holds a NUL: GET answers as for a missing property."""
    dev = OpenpromDevice(tree)
    assert dev.get(tree.options.node_id, b"my-var\0junk", BIG) == (0, OpioResult(-1, b""))
    assert dev.next_prop(tree.options.node_id, b"my-var\0", BIG) == (errno.EINVAL, None)


def test_bytearray_fields_are_accepted(tree):
    dev = OpenpromDevice(tree, os.O_RDWR)
    assert dev.set(tree.options.node_id, bytearray(b"x"), bytearray(b"y")) == (0, None)
    assert dev.get(tree.options.node_id, bytearray(b"x"), BIG) == (0, OpioResult(2, b"y\0"))


# --------------------------------------------------- openprom(4): NEXTPROP


def test_nextprop_empty_name_gives_the_first_name(tree):
    """"As with OPIOCGETNEXT, the next name after the empty string is the first name.\""""
    assert OpenpromDevice(tree).next_prop(tree.options.node_id, b"", BIG) == (0, OpioResult(4, b"name"))


def test_nextprop_follows_openprom_order(tree):
    """"Finds the property whose name follows the given name in OPENPROM
    internal order. The resulting name is returned in the value field.\""""
    dev = OpenpromDevice(tree)
    options = tree.options.node_id
    assert dev.next_prop(options, b"name", BIG) == (0, OpioResult(10, b"auto-boot?"))
    assert dev.next_prop(options, b"auto-boot?", BIG) == (0, OpioResult(11, b"boot-device"))


def test_nextprop_of_the_last_name_is_empty(tree):
    """"If the named property is the last, the ``next'' name is the empty string.\""""
    assert OpenpromDevice(tree).next_prop(tree.options.node_id, b"my-var", BIG) == (0, OpioResult(0, b""))


def test_nextprop_of_a_bad_name_is_einval(tree):
    """§9 reference: "NEXTPROP with a bad previous name | EINVAL"."""
    assert OpenpromDevice(tree).next_prop(tree.options.node_id, b"no-such", BIG) == (errno.EINVAL, None)


def test_nextprop_truncates_to_the_buffer(tree):
    dev = OpenpromDevice(tree)
    assert dev.next_prop(tree.options.node_id, b"name", 4) == (0, OpioResult(4, b"auto"))


def test_nextprop_of_a_node_without_properties():
    bare = PromTree()
    assert OpenpromDevice(bare).next_prop(bare.root.node_id, b"", BIG) == (0, OpioResult(0, b""))


# --------------------------------------------------------- hypothesis walks

_word = st.text("abcdefgh,-", min_size=1, max_size=6).filter(lambda w: w[0].isalpha())
component = st.builds(lambda n, unit: f"{n}@{unit}" if unit else n, _word, st.sampled_from(["", "0", "1f,0", "5,8800000"]))
prop_name = st.text("abcdefgh#?-", min_size=1, max_size=8).filter(lambda n: n != "name")
prop_value = st.one_of(st.none(), st.binary(max_size=12), st.text("abc xyz", max_size=8), st.lists(st.integers(0, 2**32 - 1), max_size=3))
node_description = st.recursive(
    st.dictionaries(prop_name, prop_value, max_size=4),
    lambda children: st.dictionaries(prop_name, prop_value, max_size=3).flatmap(
        lambda props: st.dictionaries(component, children, max_size=4).map(lambda kids: {**props, **kids})
    ),
    max_leaves=25,
)
# Node ids as a PROM might hand them out: a base, a stride, either sign
# (OpenBIOS phandles are addresses, negative as a 32-bit int on sparc32).
id_pool = st.builds(
    lambda base, stride, sign: itertools.count(sign * base, sign * stride),
    st.integers(2, 2**30), st.integers(1, 2**16), st.sampled_from([1, -1]),
)


def openprom_walk(dev: OpenpromDevice) -> list[int]:
    """Every node reachable by GETNEXT(0), GETCHILD and GETNEXT, in order."""
    seen: list[int] = []
    err, first = dev.get_next(0)
    assert err == 0
    stack = [first]
    while stack:
        node = stack.pop()
        if node == 0:
            continue
        seen.append(node)
        err, sibling = dev.get_next(node)
        assert err == 0
        err, child = dev.get_child(node)
        assert err == 0
        stack += [sibling, child]
    return seen


@settings(max_examples=60, deadline=None)
@given(node_description, id_pool)
def test_getnext_getchild_walk_visits_every_node_once(description, ids):
    tree = PromTree.from_description(description, ids=ids)
    seen = openprom_walk(OpenpromDevice(tree))
    assert sorted(seen) == sorted(tree.nodes)
    assert seen == [n.node_id for n in tree.walk()]


@settings(max_examples=60, deadline=None)
@given(node_description, id_pool)
def test_oprom_next_child_walk_visits_every_node_once(description, ids):
    tree = PromTree.from_description(description, ids=ids)
    dev = SunOpenpromDevice(tree)
    seen = []
    stack = [dev.next(0)[1]]
    while stack:
        node = stack.pop()
        if node:
            seen.append(node)
            stack += [dev.next(node)[1], dev.child(node)[1]]
    assert seen == [n.node_id for n in tree.walk()]


@settings(max_examples=60, deadline=None)
@given(node_description, st.data())
def test_nextprop_visits_every_property_once_in_order_then_wraps(description, data):
    tree = PromTree.from_description(description)
    node = data.draw(st.sampled_from(list(tree.walk())))
    dev = OpenpromDevice(tree)
    names, previous = [], b""
    for _ in range(len(node.properties) + 1):
        err, result = dev.next_prop(node.node_id, previous, BIG)
        assert err == 0
        if result.buf == b"":
            break
        names.append(result.buf.decode("latin-1"))
        previous = result.buf
    assert names == list(node.properties)
    # After the last name comes ''; after '' the first name again.
    if names:
        assert dev.next_prop(node.node_id, names[-1].encode("latin-1"), BIG) == (0, OpioResult(0, b""))
        assert dev.next_prop(node.node_id, b"", BIG)[1].buf == names[0].encode("latin-1")


option_name = st.binary(min_size=1, max_size=40).filter(lambda n: b"\0" not in n and b"=" not in n and n != b"name")


@settings(max_examples=100, deadline=None)
@given(option_name, st.binary(max_size=300))
def test_set_then_get_round_trips_on_options(name, value):
    tree = PromTree.from_description(SS5)
    dev = OpenpromDevice(tree, os.O_RDWR)
    options = tree.options.node_id
    assert dev.set(options, name, value) == (0, None)
    assert dev.get(options, name, BIG) == (0, OpioResult(len(value) + 1, value + b"\0"))
    assert name.decode("latin-1") in tree.options.properties


# --------------------------------------------------------- Sun OPROM* family


def test_oprom_next_and_child_move_the_current_node(tree):
    """§10: "The SunOS interface: struct openpromio with OPROMGETOPT,
    OPROMNEXT, OPROMCHILD, OPROMGETPROP, OPROMNXTPROP"; NEXT(0) is the root."""
    dev = SunOpenpromDevice(tree)
    assert dev.next(0) == (0, tree.root.node_id)
    assert dev.current == tree.root.node_id
    assert dev.child(tree.root.node_id) == (0, tree.options.node_id)
    # The stored value already ends in NUL; the driver adds one if room.
    assert dev.getprop(b"my-var") == (0, OpromReply(17, b"injected-by-host\0\0"))
    assert dev.next(tree.root.node_id) == (0, 0)
    assert dev.child(0) == (0, 0)
    assert dev.setnodeid(node_of(tree, "/obio/eeprom")) == (0, None)
    assert dev.getprop(b"model") == (0, OpromReply(8, b"mk48t08\0\0"))


def test_oprom_bad_nodes_are_einval(tree):
    dev = SunOpenpromDevice(tree)
    for node in (unknown_node(tree), -1, "x"):
        assert dev.next(node) == (errno.EINVAL, None)
        assert dev.child(node) == (errno.EINVAL, None)
    assert dev.next(0, bufsize=3) == (errno.EINVAL, None)
    # No current node yet (OBP_NONODE): property calls are EINVAL.
    assert dev.getprop(b"name") == (errno.EINVAL, None)
    assert dev.nxtprop(b"") == (errno.EINVAL, None)


def test_oprom_getprop_sizes(tree):
    """illumos: "There is no error code if the buf is too small"; a missing or
    empty property gives size 0 too; NUL added "If space permits"."""
    dev = SunOpenpromDevice(tree)
    dev.setnodeid(tree.options.node_id)
    assert dev.getprop(b"nope") == (0, OpromReply(0, b"\0"))
    assert dev.getprop(b"my-var", bufsize=16) == (0, OpromReply(0, b"\0"))
    assert dev.getprop(b"my-var", bufsize=17) == (0, OpromReply(17, b"injected-by-host\0"))
    assert dev.getprop(b"my-var", bufsize=18) == (0, OpromReply(17, b"injected-by-host\0\0"))
    dev.setnodeid(node_of(tree, "/obio/zs"))
    assert dev.getprop(b"keyboard") == (0, OpromReply(0, b"\0"))
    assert dev.getproplen(b"keyboard") == (0, OpromReply(4, b"\0\0\0\0"))
    assert dev.getproplen(b"nope") == (0, OpromReply(4, b"\xff\xff\xff\xff"))
    assert dev.getproplen(b"device_type") == (0, OpromReply(4, encode_int(7)))


def test_oprom_names_and_buffer_limits(tree):
    dev = SunOpenpromDevice(tree)
    dev.setnodeid(tree.options.node_id)
    assert dev.getprop(b"x" * (OBP_MAXPROPNAME - 1)) == (0, OpromReply(0, b"\0"))
    assert dev.getprop(b"x" * OBP_MAXPROPNAME) == (errno.EINVAL, None)
    assert dev.getprop(b"my-var", bufsize=4) == (errno.ENAMETOOLONG, None)
    assert dev.getprop(b"my-var", bufsize=0) == (errno.EINVAL, None)
    assert dev.getprop(b"my-var", bufsize=OPROM_MAX_PARAM + 1) == (errno.EINVAL, None)
    assert dev.getprop("my-var") == (errno.EINVAL, None)
    assert dev.getprop(b"my\0var") == (errno.EINVAL, None)


def test_oprom_nxtprop_counts_the_nul_and_ends_with_size_zero(tree):
    dev = SunOpenpromDevice(tree)
    dev.setnodeid(tree.options.node_id)
    assert dev.nxtprop(b"") == (0, OpromReply(5, b"name\0"))
    assert dev.nxtprop(b"name") == (0, OpromReply(11, b"auto-boot?\0"))
    assert dev.nxtprop(b"my-var") == (0, OpromReply(0, b""))
    assert dev.nxtprop(b"no-such") == (0, OpromReply(0, b""))
    assert dev.nxtprop(b"name", bufsize=10) == (0, OpromReply(0, b""))


def test_oprom_options_hide_name(tree):
    """illumos "4010173: 'name' is a property, but it's not an option.\""""
    dev = SunOpenpromDevice(tree)
    assert dev.getopt(b"name") == (0, OpromReply(0, b"\0"))
    assert dev.nxtopt(b"") == (0, OpromReply(11, b"auto-boot?\0"))
    names, previous = [], b""
    for _ in range(len(tree.options.properties) + 1):
        err, reply = dev.nxtopt(previous)
        assert err == 0
        if reply.size == 0:
            break
        previous = reply.array[:-1]
        names.append(previous.decode())
    assert names == ["auto-boot?", "boot-device", "my-var"]
    assert dev.getopt(b"boot-device") == (0, OpromReply(12, b"disk:a disk\0\0"))


def test_oprom_setopt_and_setopt2(tree):
    dev = SunOpenpromDevice(tree, os.O_RDWR)
    assert dev.setopt(b"my-var", b"abc") == (0, None)
    assert tree.options.properties["my-var"] == b"abc\0"
    # OPROMSETOPT sees a C string: bytes after a NUL are lost.
    assert dev.setopt(b"my-var", b"ab\0cd") == (0, None)
    assert tree.options.properties["my-var"] == b"ab\0"
    # OPROMSETOPT2 stores every byte, but illumos wants a NUL in the value.
    assert dev.setopt2(b"bin-var", b"\1\0\2") == (0, None)
    assert tree.options.properties["bin-var"] == b"\1\0\2"
    assert dev.setopt2(b"bin-var", b"\1\2") == (errno.EINVAL, None)
    assert dev.getopt(b"bin-var") == (0, OpromReply(3, b"\1\0\2\0"))


def test_oprom_setopt_refusals(tree):
    before = dict(tree.options.properties)
    rw = SunOpenpromDevice(tree, os.O_RDWR)
    assert SunOpenpromDevice(tree, os.O_RDONLY).setopt(b"my-var", b"x") == (errno.EPERM, None)
    assert rw.setopt(b"name", b"x") == (errno.EINVAL, None)
    assert rw.setopt(b"a=b", b"x") == (errno.EINVAL, None)
    assert rw.setopt(b"", b"x") == (errno.EINVAL, None)
    assert rw.setopt(b"a\0b", b"x") == (errno.EINVAL, None)
    assert rw.setopt(b"my-var", "x") == (errno.EINVAL, None)
    assert rw.setopt(b"my-var", b"x" * OPROM_MAX_PARAM) == (errno.EINVAL, None)
    assert tree.options.properties == before
    assert SunOpenpromDevice(PromTree(), os.O_RDWR).setopt(b"a", b"b") == (errno.EINVAL, None)


def test_oprom_read_calls_need_read_permission(tree):
    dev = SunOpenpromDevice(tree, os.O_WRONLY)
    assert dev.getopt(b"my-var") == (errno.EPERM, None)
    assert dev.nxtopt(b"") == (errno.EPERM, None)
    assert dev.next(0) == (errno.EPERM, None)
    assert dev.child(0) == (errno.EPERM, None)
    assert dev.getprop(b"name") == (errno.EPERM, None)
    assert dev.getproplen(b"name") == (errno.EPERM, None)


def test_oprom_getopt_without_options_node_is_einval():
    assert SunOpenpromDevice(PromTree()).getopt(b"x") == (errno.EINVAL, None)


# --------------------------------------------------------------- deviations


def test_linux_deviations_are_recorded_as_data():
    """§9 "Deviations of Linux 6.1 ... from 4.4BSD openprom(4)": five rows."""
    assert [d.name for d in LINUX_DEVIATIONS] == [
        "get-missing-property", "nextprop-returns-value", "set-stores-no-nul",
        "set-cannot-create", "no-name-length-limit",
    ]
    for deviation in LINUX_DEVIATIONS + OPENBIOS_DEVIATIONS:
        assert deviation.operation.startswith("OPIOC")
        assert deviation.seed_behaviour and deviation.observed_behaviour
        assert "openprom-sparc.md §" in deviation.evidence
    assert len({d.name for d in LINUX_DEVIATIONS + OPENBIOS_DEVIATIONS}) == 7


def test_the_model_follows_the_seed_not_linux(tree):
    """Each Linux deviation, checked against the model: the model keeps the seed."""
    dev = OpenpromDevice(tree, os.O_RDWR)
    options = tree.options.node_id
    assert dev.get(options, b"no-such-option", BIG) == (0, OpioResult(-1, b""))  # not EINVAL
    assert dev.next_prop(options, b"", BIG)[1].buf == b"name"  # a name, not .node's value
    dev.set(options, b"my-var", b"set-from-guest")
    assert dev.get(options, b"my-var", BIG)[1].buflen == 15  # NUL kept
    assert dev.set(options, b"brand-new-var", b"x") == (0, None)  # not ENODEV
    assert dev.get(options, b"n" * 8192, BIG) == (errno.ENAMETOOLONG, None)  # not EINVAL
