"""Parameter groups and the UtilParamsGet/UtilParamsSet operation lists (B9).

Every I2O target (the executive and each DDM) publishes scalar parameter
groups; drivers read them with FIELD_GET (Linux ``i2o_parm_field_get`` reads
one field into an exactly sized buffer, NetBSD ``iop_field_get_all`` reads all
fields laid out as its C struct) and write a few with FIELD_SET (NetBSD sets
RBS operation timeouts).  Field order and sizes therefore follow the structs
in NetBSD ``i2o.h`` and the offsets Linux ``i2o_proc.c`` prints.

All groups here are scalar; TABLE_GET answers a scalar group as a one-row
table, the table-only operations answer SCALAR_ERROR.  Nothing raises on
guest input: a malformed list yields an OPERATION_ERROR block.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from collections.abc import Iterable, Sequence


class ParamOp(IntEnum):
    """Operation codes of an operation list (B9)."""

    FIELD_GET = 1
    LIST_GET = 2
    MORE_GET = 3
    SIZE_GET = 4
    TABLE_GET = 5
    FIELD_SET = 6
    LIST_SET = 7
    ROW_ADD = 8
    ROW_DELETE = 9
    TABLE_CLEAR = 10


READ_OPS = {ParamOp.FIELD_GET, ParamOp.LIST_GET, ParamOp.MORE_GET, ParamOp.SIZE_GET,
            ParamOp.TABLE_GET}
#: Operations that only make sense on table groups.
TABLE_ONLY_OPS = {ParamOp.LIST_GET, ParamOp.MORE_GET, ParamOp.SIZE_GET, ParamOp.LIST_SET,
                  ParamOp.ROW_ADD, ParamOp.ROW_DELETE, ParamOp.TABLE_CLEAR}
ALL_FIELDS = 0xFFFF
#: Operation codes by value (a dict lookup, not an enum call, per operation).
_OPS = {int(op): op for op in ParamOp}


class BlockStatus(IntEnum):
    """Result block status (I2O_PARAMS_STATUS_*)."""

    SUCCESS = 0x00
    BAD_KEY_ABORT = 0x01
    BAD_KEY_CONTINUE = 0x02
    BUFFER_FULL = 0x03
    BUFFER_TOO_SMALL = 0x04
    FIELD_UNREADABLE = 0x05
    FIELD_UNWRITEABLE = 0x06
    INSUFFICIENT_FIELDS = 0x07
    INVALID_GROUP_ID = 0x08
    INVALID_OPERATION = 0x09
    NO_KEY_FIELD = 0x0A
    NO_SUCH_FIELD = 0x0B
    NON_DYNAMIC_GROUP = 0x0C
    OPERATION_ERROR = 0x0D
    SCALAR_ERROR = 0x0E
    TABLE_ERROR = 0x0F
    WRONG_GROUP_TYPE = 0x10


# Group numbers every target answers, and the class-specific ones drivers read.
DEVICE_IDENTITY = 0xF100
DDM_IDENTITY = 0xF101
USER_INFORMATION = 0xF102
EXEC_IOP_HARDWARE = 0x0000
BSA_DEVICE_INFO = 0x0000
BSA_OPERATION = 0x0001
BSA_CACHE_CONTROL = 0x0003
BSA_MEDIA_INFO = 0x0004


@dataclass(frozen=True)
class Field:
    """One field: a struct format (``"H"``, ``"Q"``, ``"16s"``...) and whether
    FIELD_SET may change it."""

    name: str
    fmt: str
    settable: bool = False

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)


class ScalarGroup:
    """A scalar group: fixed fields stored packed, exactly as a read returns them."""

    def __init__(self, number: int, fields: Sequence[Field], values: Sequence[object]) -> None:
        if len(fields) != len(values):
            raise ValueError("one value per field")
        self.number = number
        self.fields = tuple(fields)
        self._sizes = [f.size for f in self.fields]  # calcsize once, not per read
        self._offsets = []
        offset = 0
        for size in self._sizes:
            self._offsets.append(offset)
            offset += size
        self._data = bytearray(offset)
        for index, value in enumerate(values):
            self.put(index, value)

    def put(self, index: int, value: object) -> None:
        """Device-side update of one field (text is NUL padded/cut)."""
        f = self.fields[index]
        start = self._offsets[index]
        self._data[start:start + self._sizes[index]] = struct.pack("<" + f.fmt, value)

    def raw(self, index: int) -> bytes:
        start = self._offsets[index]
        return bytes(self._data[start:start + self._sizes[index]])

    def all_raw(self) -> bytes:
        """Every field in order: the packed store is exactly that."""
        return bytes(self._data)

    def write_raw(self, index: int, data: bytes) -> None:
        start = self._offsets[index]
        self._data[start:start + len(data)] = data


def text(value: str, size: int) -> bytes:
    """ASCII text NUL padded to ``size`` (what I2O char[] fields hold)."""
    return value.encode("ascii", "replace")[:size].ljust(size, b"\0")


def identity_groups(*, class_id: int, tid: int, vendor: str, product: str,
                    description: str, revision: str, serial: str, ddm_name: str,
                    user_name: str = "") -> list[ScalarGroup]:
    """0xF100 DEVICE_IDENTITY, 0xF101 DDM_IDENTITY and 0xF102 USER_INFORMATION.

    Layouts: NetBSD ``struct i2o_param_device_identity`` / ``ddm_identity``;
    USER_INFORMATION as Linux i2o_proc prints it (device name, service name,
    physical location: char[64] each, instance number char[4]), all settable.
    """
    serial_b = text(serial, 16)
    return [
        ScalarGroup(DEVICE_IDENTITY, [
            Field("class_id", "I"), Field("owner_tid", "H"), Field("parent_tid", "H"),
            Field("vendor", "16s"), Field("product", "16s"), Field("description", "16s"),
            Field("revision", "8s"), Field("sn_format", "B"), Field("serial", "16s")],
            [class_id, 0xFFF, 0 if tid else 0xFFF, text(vendor, 16), text(product, 16),
             text(description, 16), text(revision, 8), 2 if serial else 0, serial_b]),
        ScalarGroup(DDM_IDENTITY, [
            Field("ddm_tid", "H"), Field("name", "24s"), Field("revision", "8s"),
            Field("sn_format", "B"), Field("serial", "12s")],
            [tid, text(ddm_name, 24), text(revision, 8), 2 if serial else 0, text(serial, 12)]),
        ScalarGroup(USER_INFORMATION, [
            Field("device_name", "64s", True), Field("service_name", "64s", True),
            Field("physical_location", "64s", True), Field("instance_number", "4s", True)],
            [text(user_name, 64), b"", b"", b""]),
    ]


# ---------------------------------------------------------------------------
# operation lists


@dataclass(frozen=True)
class ParamsOutcome:
    """What a UtilParamsGet/Set produced: the result list and whether every
    block succeeded (the reply's ReqStatus depends on it)."""

    results: bytes
    all_ok: bool
    modified: tuple[int, ...] = ()   # groups FIELD_SET changed (for events)
    padding: int = 0                 # trailing pad bytes of the last block

    @property
    def required(self) -> int:
        """Bytes the host must receive: everything but the last block's
        padding (Linux sizes the buffer as field size + 8, e.g. 10 bytes
        for the u16 power state)."""
        return len(self.results) - self.padding


def _block(status: int, data: bytes = b"") -> bytes:
    data = data + b"\0" * (-len(data) % 4)
    return struct.pack("<HBB", 1 + len(data) // 4, status, 0) + data


class ParamStore:
    """The groups of one target and the interpreter of operation lists."""

    def __init__(self, groups: Iterable[ScalarGroup] = ()) -> None:
        self.groups: dict[int, ScalarGroup] = {}
        for g in groups:
            self.add(g)

    def add(self, group: ScalarGroup) -> None:
        self.groups[group.number] = group

    def __getitem__(self, number: int) -> ScalarGroup:
        return self.groups[number]

    def execute(self, oplist: bytes, *, setting: bool) -> ParamsOutcome:
        """Run every operation of ``oplist``; one result block per operation
        processed.  ``setting`` is True for UtilParamsSet (write operations),
        False for UtilParamsGet (read operations).  An operation whose length
        cannot be known (unknown group for a SET, table-only operations,
        truncated list) ends the list after its error block.
        """
        blocks: list[bytes] = []
        modified: list[int] = []
        ok = True
        padding = 0
        if len(oplist) < 4:
            return ParamsOutcome(struct.pack("<HH", 1, 0) + _block(BlockStatus.OPERATION_ERROR), False)
        (count,) = struct.unpack_from("<H", oplist, 0)
        pos = 4
        for _ in range(count):
            status, data, end = self._one(oplist, pos, setting, modified)
            blocks.append(_block(status, data))
            padding = -len(data) % 4
            ok = ok and status == BlockStatus.SUCCESS
            if end is None:
                break
            pos = end + (-(end) % 4)
        return ParamsOutcome(struct.pack("<HH", len(blocks), 0) + b"".join(blocks), ok,
                             tuple(modified), padding)

    def _one(self, oplist: bytes, pos: int, setting: bool,
             modified: list[int]) -> tuple[int, bytes, int | None]:
        """One operation: (block status, block data, end offset or None when
        the rest of the list cannot be parsed)."""
        if pos + 6 > len(oplist):
            return BlockStatus.OPERATION_ERROR, b"", None
        code, number, fcount = struct.unpack_from("<HHH", oplist, pos)
        pos += 6
        op = _OPS.get(code)
        if op is None:
            return BlockStatus.INVALID_OPERATION, b"", None
        group = self.groups.get(number)
        if op in TABLE_ONLY_OPS:
            return (BlockStatus.SCALAR_ERROR if group else BlockStatus.INVALID_GROUP_ID), b"", None
        asked: list[int] | None = None  # None: all fields
        if fcount != ALL_FIELDS:
            if pos + 2 * fcount > len(oplist):
                return BlockStatus.OPERATION_ERROR, b"", None
            asked = list(struct.unpack_from(f"<{fcount}H", oplist, pos))
            pos += 2 * fcount
        writing = op is ParamOp.FIELD_SET
        if group is None:
            return BlockStatus.INVALID_GROUP_ID, b"", (None if writing else pos)
        indexes: Sequence[int] = range(len(group.fields)) if asked is None else asked
        if asked is not None and any(i >= len(group.fields) for i in asked):
            return BlockStatus.NO_SUCH_FIELD, b"", (None if writing else pos)
        if writing:
            size = sum(group.fields[i].size for i in indexes)
            if pos + size > len(oplist):
                return BlockStatus.OPERATION_ERROR, b"", None
            if not setting:
                return BlockStatus.INVALID_OPERATION, b"", pos + size
            if not all(group.fields[i].settable for i in indexes):
                return BlockStatus.FIELD_UNWRITEABLE, b"", pos + size
            for i in indexes:
                n = group.fields[i].size
                group.write_raw(i, oplist[pos:pos + n])
                pos += n
            modified.append(number)
            return BlockStatus.SUCCESS, b"", pos
        if setting:
            return BlockStatus.INVALID_OPERATION, b"", pos
        if fcount == ALL_FIELDS:
            data = group.all_raw()
        else:
            data = b"".join(group.raw(i) for i in indexes)
        if op is ParamOp.TABLE_GET:   # a scalar group is a one-row table
            data = struct.pack("<HH", 1, 0) + data
        return BlockStatus.SUCCESS, data, pos


# ---------------------------------------------------------------------------
# host-side helpers (tests, tools)


def encode_operations(ops: Sequence[tuple[int, int, Sequence[int] | None, bytes]]) -> bytes:
    """An operation list from ``(op, group, field indexes or None for all,
    values for SET)`` tuples, each padded to 4 bytes as drivers send them."""
    out = struct.pack("<HH", len(ops), 0)
    for op, group, fields, values in ops:
        body = struct.pack("<HHH", op, group, ALL_FIELDS if fields is None else len(fields))
        if fields is not None:
            body += struct.pack(f"<{len(fields)}H", *fields)
        body += values
        out += body + b"\0" * (-len(body) % 4)
    return out


@dataclass(frozen=True)
class ResultBlock:
    status: int
    data: bytes


def decode_results(results: bytes) -> list[ResultBlock]:
    """Split a result list into blocks (data without the block header)."""
    if len(results) < 4:
        return []
    (count,) = struct.unpack_from("<H", results, 0)
    pos, blocks = 4, []
    for _ in range(count):
        if pos + 4 > len(results):
            break
        size, status, _err = struct.unpack_from("<HBB", results, pos)
        blocks.append(ResultBlock(status, bytes(results[pos + 4:pos + 4 * max(size, 1)])))
        pos += 4 * max(size, 1)
    return blocks
