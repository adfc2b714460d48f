"""UtilParamsGet/UtilParamsSet (docs/i2o-mpqemu.md B9)."""

from __future__ import annotations

import struct

import pytest

from i2o.helpers import BUF, FakeGuestMemory, linux_bringup, message
from vhw.i2o import frames as f
from vhw.i2o.executive import EVENT_FIELD_MODIFIED
from vhw.i2o.iop import Iop, IopConfig
from vhw.i2o.params import (DEVICE_IDENTITY, USER_INFORMATION, BlockStatus, Field, ParamOp,
                            ParamStore, ScalarGroup, decode_results, encode_operations,
                            identity_groups, text)


@pytest.fixture
def store():
    groups = identity_groups(class_id=0x10, tid=8, vendor="vhw", product="disk",
                             description="d.img", revision="1.0", serial="S1", ddm_name="bsa")
    groups.append(ScalarGroup(0x0000, [Field("a", "B"), Field("b", "H"), Field("c", "Q", True)],
                              [1, 0x0203, 0x0405060708090A0B]))
    return ParamStore(groups)


def run(store, ops, setting=False):
    out = store.execute(encode_operations(ops), setting=setting)
    return out, decode_results(out.results)


def test_field_get_returns_fields_packed_in_order(store):
    """"Per operation: u16 block_size (words, including this header); u8
    block_status; u8 error_info_size; then the data.""" 
    out, (blk,) = run(store, [(ParamOp.FIELD_GET, 0, [2, 0], b"")])
    assert out.all_ok and blk.status == 0
    assert blk.data[:9] == struct.pack("<QB", 0x0405060708090A0B, 1)
    size = struct.unpack_from("<H", out.results, 4)[0]
    assert size == 1 + 3                                  # header + 9 bytes padded to 12


def test_all_fields_of_device_identity_match_the_netbsd_struct(store):
    """NetBSD struct i2o_param_device_identity: u32 class, u16 owner, u16
    parent, vendor[16], product[16], description[16], revlevel[8], snformat."""
    _, (blk,) = run(store, [(ParamOp.FIELD_GET, DEVICE_IDENTITY, None, b"")])
    cls, owner, parent = struct.unpack_from("<IHH", blk.data)
    assert (cls, owner, parent) == (0x10, 0xFFF, 0)
    assert blk.data[8:24].rstrip(b"\0") == b"vhw"
    assert blk.data[24:40].rstrip(b"\0") == b"disk"
    assert blk.data[56:64].rstrip(b"\0") == b"1.0"
    assert blk.data[64] == 2 and blk.data[65:67] == b"S1"


def test_table_get_answers_a_scalar_group_as_one_row(store):
    _, (blk,) = run(store, [(ParamOp.TABLE_GET, 0, [1], b"")])
    rows, more, value = struct.unpack_from("<HHH", blk.data)
    assert (blk.status, rows, more, value) == (0, 1, 0, 0x0203)


@pytest.mark.parametrize("ops,status", [
    ([(ParamOp.FIELD_GET, 0x1234, [0], b"")], BlockStatus.INVALID_GROUP_ID),
    ([(ParamOp.FIELD_GET, 0, [9], b"")], BlockStatus.NO_SUCH_FIELD),
    ([(ParamOp.LIST_GET, 0, None, b"")], BlockStatus.SCALAR_ERROR),
    ([(ParamOp.SIZE_GET, 0, None, b"")], BlockStatus.SCALAR_ERROR),
    ([(0x77, 0, None, b"")], BlockStatus.INVALID_OPERATION),
    ([(ParamOp.FIELD_SET, 0, [2], bytes(8))], BlockStatus.INVALID_OPERATION),  # SET in a Get
])
def test_read_errors_get_their_block_status(store, ops, status):
    out, blocks = run(store, ops)
    assert not out.all_ok and [b.status for b in blocks] == [status]


def test_a_failed_get_does_not_stop_the_next(store):
    out, blocks = run(store, [(ParamOp.FIELD_GET, 0x1234, [0], b""),
                              (ParamOp.FIELD_GET, 0, [0], b"")])
    assert [b.status for b in blocks] == [BlockStatus.INVALID_GROUP_ID, 0]
    assert blocks[1].data[0] == 1


def test_field_set_persists_and_unwritable_fields_are_refused(store):
    out, (blk,) = run(store, [(ParamOp.FIELD_SET, USER_INFORMATION, [0], text("db01", 64))],
                      setting=True)
    assert blk.status == 0 and out.modified == (USER_INFORMATION,)
    _, (blk,) = run(store, [(ParamOp.FIELD_GET, USER_INFORMATION, [0], b"")])
    assert blk.data.rstrip(b"\0") == b"db01"
    out, (blk,) = run(store, [(ParamOp.FIELD_SET, 0, [1], b"\1\0")], setting=True)
    assert blk.status == BlockStatus.FIELD_UNWRITEABLE
    _, (blk,) = run(store, [(ParamOp.FIELD_GET, 0, [0], b"")], setting=True)
    assert blk.status == BlockStatus.INVALID_OPERATION      # a GET in a Set


def test_truncated_operation_lists_are_operation_errors(store):
    full = encode_operations([(ParamOp.FIELD_GET, 0, [0, 1], b"")])
    for cut in (2, 7, 11):
        out = store.execute(full[:cut], setting=False)
        assert [b.status for b in decode_results(out.results)] == [BlockStatus.OPERATION_ERROR]


# -- through the IOP ----------------------------------------------------------


@pytest.fixture
def host():
    mem = FakeGuestMemory()
    iop = Iop(mem, config=IopConfig(org_id=0x1234, vendor="ACME"))
    yield linux_bringup(iop, mem)
    iop.close()


@pytest.mark.parametrize("immediate", [True, False])
def test_params_get_with_inline_or_dma_operation_list(host, immediate):
    """"SGL 1 = the operation list: Linux uses IMMEDIATE inline; NetBSD and
    FreeBSD use SIMPLE data-out. SGL 2 = the result buffer." """
    ops = encode_operations([(ParamOp.FIELD_GET, 0x0000, [0], b"")])
    r, res = host.params(0, ops, immediate=immediate)
    assert (r.status, r.detail) == (0, 0)
    count, _, bsize, bstatus = struct.unpack_from("<HHHB", res)
    assert (count, bsize, bstatus) == (1, 2, 0)
    assert struct.unpack_from("<H", res, 8)[0] == 0x1234          # I2O vendor id = org id


def test_short_result_buffer_is_a_partial_transfer_netbsd_accepts(host):
    """NetBSD iop_field_get_all: "let partial transfers count as success"
    when ReqStatus is ERROR_PARTIAL_XFER with UNKNOWN_ERROR."""
    ops = encode_operations([(ParamOp.FIELD_GET, DEVICE_IDENTITY, None, b"")])
    host.mem.mem[BUF:BUF + 128] = b"\xee" * 128
    r, res = host.params(0, ops, result_len=32)
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_PARTIAL_TRANSFER, f.DetailedStatus.UNKNOWN_ERROR)
    assert res[16:24].rstrip(b"\0") == b"ACME" and host.mem.mem[BUF + 32] == 0xEE


def test_failed_block_makes_the_reply_fail_for_linux(host):
    """Linux i2o_parm_issue fails on BlockStatus != 0 (res[1] bits 16-23)."""
    r, res = host.params(0, encode_operations([(ParamOp.FIELD_GET, 0x0004, [0], b"")]))
    assert r.status == f.ReqStatus.ERROR_PARTIAL_TRANSFER
    assert (struct.unpack_from("<I", res, 4)[0] >> 16) & 0xFF == BlockStatus.INVALID_GROUP_ID


def test_params_set_persists_and_raises_field_modified_event(host):
    host.post(message(f.Function.UTIL_EVENT_REGISTER, struct.pack("<I", EVENT_FIELD_MODIFIED),
                      ictx=0x55, tctx=0x66))
    assert host.replies() == []
    ops = encode_operations([(ParamOp.FIELD_SET, USER_INFORMATION, [2], text("rack 4", 64))])
    host.post(message(f.Function.UTIL_PARAMS_SET, struct.pack("<I", 0)
                      + f.encode_immediate(ops) + f.encode_simple(64, BUF, last=True), sgl_offset=5))
    event, done = host.replies()
    assert event.header.function == f.Function.UTIL_EVENT_REGISTER
    assert (event.header.initiator_context, event.header.transaction_context) == (0x55, 0x66)
    assert event.word4 == EVENT_FIELD_MODIFIED
    assert done.status == 0
    r, res = host.params(0, encode_operations([(ParamOp.FIELD_GET, USER_INFORMATION, [2], b"")]))
    assert res[8:72].rstrip(b"\0") == b"rack 4"


def test_params_without_result_buffer_is_missing_parameter(host):
    ops = encode_operations([(ParamOp.FIELD_GET, 0, [0], b"")])
    r = host.call(message(f.Function.UTIL_PARAMS_GET, struct.pack("<I", 0)
                          + f.encode_immediate(ops, last=True), sgl_offset=5))
    assert (r.status, r.detail) == (f.ReqStatus.ERROR_NO_DATA_TRANSFER, f.DetailedStatus.MISSING_PARAMETER)
