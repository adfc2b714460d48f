"""FRU inventory device 0, the BMC's own (IPMI 2.0 chapter 34), and the image
it holds (Platform Management FRU Information Storage Definition v1.0).

The image is generated from the ``[bmc.fru]`` table: a common header, then the
chassis, board and product info areas and a multirecord area, each present
only if described.  Once a client writes FRU data (Write FRU Data), the whole
written image is kept in ``bmc.store`` (namespace "fru", record = FRU device
ID) and wins over the description from then on, across restarts, as an EEPROM
would: tools that program FRU contents must see them again after a BMC reset.

Encoding choices (the spec's section numbers):
- strings are 8-bit ASCII + Latin-1 (type/length 11b with language English,
  section 13), at most 63 bytes; an empty string is C0h.  That type needs at
  least two data bytes because C1h is the end-of-fields marker, so a
  one-character string is packed as 6-bit ASCII (type 10b) and must be a
  character 6-bit ASCII has (space to underscore, no lower case);
- areas end with C1h, zero padding to a multiple of 8 and a zero checksum
  (sections 10-12); the common header likewise (section 8);
- multirecords have format version 2, the end-of-list bit on the last one, a
  record checksum and a header checksum (section 16.1).
"""

from __future__ import annotations

import datetime
import struct
from dataclasses import dataclass, field
from typing import Any

from ...errors import DescriptionError
from ...tables import Table
from ..core.bmc import CC, IpmiError
from ..wire.ipmb import checksum

NAMESPACE = "fru"
#: The BMC's own FRU device (section 34: FRU device ID 0 is the management controller's).
BMC_FRU_DEVICE = 0
DEFAULT_SIZE = 1024
MAX_SIZE = 0xFFFF
#: Type/length byte limits (section 13).
MAX_STRING_BYTES = 63
END_OF_FIELDS = 0xC1
#: Areas are multiples of 8 bytes; their length byte counts up to 255 of them.
AREA_UNIT = 8
MAX_AREA_BYTES = 255 * AREA_UNIT
FORMAT_VERSION = 0x01
MULTIRECORD_FORMAT_VERSION = 0x02
END_OF_LIST = 0x80
#: Board Mfg. Date/Time counts minutes from 0:00 1/1/96 (section 11).
MFG_EPOCH = datetime.datetime(1996, 1, 1, tzinfo=datetime.UTC)

#: SMBIOS chassis types (SMBIOS 3.x table 17) by the names descriptions use.
CHASSIS_TYPES = {
    "other": 0x01, "unknown": 0x02, "desktop": 0x03, "low_profile_desktop": 0x04,
    "pizza_box": 0x05, "mini_tower": 0x06, "tower": 0x07, "portable": 0x08,
    "laptop": 0x09, "notebook": 0x0A, "hand_held": 0x0B, "docking_station": 0x0C,
    "all_in_one": 0x0D, "sub_notebook": 0x0E, "space_saving": 0x0F, "lunch_box": 0x10,
    "main_server": 0x11, "expansion": 0x12, "sub_chassis": 0x13, "bus_expansion": 0x14,
    "peripheral": 0x15, "raid": 0x16, "rack_mount": 0x17, "sealed_case_pc": 0x18,
    "multi_system": 0x19, "compact_pci": 0x1A, "advanced_tca": 0x1B, "blade": 0x1C,
    "blade_enclosure": 0x1D, "tablet": 0x1E, "convertible": 0x1F, "detachable": 0x20,
    "iot_gateway": 0x21, "embedded_pc": 0x22, "mini_pc": 0x23, "stick_pc": 0x24,
}

#: Multirecord type IDs (section 16.1, table 16-2).
POWER_SUPPLY_RECORD = 0x00


# -- encoding -------------------------------------------------------------------
def _pack_6bit_ascii(text: str) -> bytes:
    """6-bit packed ASCII (section 13.3): 4 characters in 3 bytes, LSB first."""
    codes = [ord(c) - 0x20 for c in text]
    bits = 0
    for i, c in enumerate(codes):
        bits |= c << (6 * i)
    return bits.to_bytes((len(codes) * 6 + 7) // 8, "little")


def encode_string(text: str, where: str = "string") -> bytes:
    """A type/length byte and the string's bytes (section 13)."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raise DescriptionError(where, "must be Latin-1 text (FRU 8-bit ASCII + Latin-1)") from None
    if len(raw) > MAX_STRING_BYTES:
        raise DescriptionError(where, f"{len(raw)} bytes, longer than the {MAX_STRING_BYTES} a type/length byte can say")
    if len(raw) == 1:
        if not 0x20 <= raw[0] <= 0x5F:
            raise DescriptionError(
                where,
                "a one-character string must be 6-bit ASCII (space to '_', no lower case):"
                " 8-bit ASCII needs two bytes, C1h is the end-of-fields marker",
            )
        packed = _pack_6bit_ascii(text)
        return bytes([0x80 | len(packed)]) + packed
    return bytes([0xC0 | len(raw)]) + raw


def _finish_area(body: bytes) -> bytes:
    """Version and length bytes, end marker, padding and checksum around fields."""
    fields = body + bytes([END_OF_FIELDS])
    length = len(fields) + 2 + 1  # version, length ... checksum
    units = -(-length // AREA_UNIT)
    area = bytes([FORMAT_VERSION, units & 0xFF]) + fields  # > 255 units: build_image refuses it
    area += bytes(units * AREA_UNIT - 1 - len(area))
    return area + bytes([checksum(area)])


# -- the description ----------------------------------------------------------------
@dataclass(frozen=True)
class ChassisInfo:
    """Chassis Info Area (section 10)."""

    type: int = CHASSIS_TYPES["rack_mount"]
    part_number: str = ""
    serial_number: str = ""
    extra: tuple[str, ...] = ()

    def encode(self) -> bytes:
        body = bytes([self.type]) + _strings(self.part_number, self.serial_number, *self.extra)
        return _finish_area(body)


@dataclass(frozen=True)
class BoardInfo:
    """Board Info Area (section 11); language English (0)."""

    #: Minutes since 1996-01-01 00:00 UTC; 0 = unspecified.
    manufacture_date: int = 0
    manufacturer: str = ""
    product: str = ""
    serial_number: str = ""
    part_number: str = ""
    fru_file_id: str = ""
    extra: tuple[str, ...] = ()

    def encode(self) -> bytes:
        body = bytes([0]) + self.manufacture_date.to_bytes(3, "little")
        body += _strings(self.manufacturer, self.product, self.serial_number, self.part_number,
                         self.fru_file_id, *self.extra)
        return _finish_area(body)


@dataclass(frozen=True)
class ProductInfo:
    """Product Info Area (section 12); language English (0)."""

    manufacturer: str = ""
    name: str = ""
    part_number: str = ""
    version: str = ""
    serial_number: str = ""
    asset_tag: str = ""
    fru_file_id: str = ""
    extra: tuple[str, ...] = ()

    def encode(self) -> bytes:
        body = bytes([0]) + _strings(self.manufacturer, self.name, self.part_number, self.version,
                                     self.serial_number, self.asset_tag, self.fru_file_id, *self.extra)
        return _finish_area(body)


@dataclass(frozen=True)
class MultiRecord:
    """One record of the MultiRecord area: its type ID and data (section 16)."""

    type_id: int
    payload: bytes

    def encode(self, last: bool) -> bytes:
        version = MULTIRECORD_FORMAT_VERSION | (END_OF_LIST if last else 0)
        header = bytes([self.type_id, version, len(self.payload), checksum(self.payload)])
        return header + bytes([checksum(header)]) + self.payload


def _strings(*texts: str) -> bytes:
    # Already validated by the config; encode_string raises only for bad input.
    return b"".join(encode_string(t) for t in texts)


@dataclass(frozen=True)
class FruConfig:
    """The ``[bmc.fru]`` table: FRU device 0's contents and size."""

    chassis: ChassisInfo | None = None
    board: BoardInfo | None = None
    product: ProductInfo | None = field(
        default_factory=lambda: ProductInfo(manufacturer="vhw", name="vhw virtual machine"))
    multirecords: tuple[MultiRecord, ...] = ()
    #: Bytes of FRU storage; None = 1024, or more if the image needs it.
    size: int | None = None

    def image(self) -> bytes:
        """The FRU image: common header, areas in spec order, zero fill to ``size``."""
        return build_image(self.chassis, self.board, self.product, self.multirecords, self.size)

    @classmethod
    def from_dict(cls, d: Any, key: str) -> FruConfig:
        r = Table(d, key)
        chassis = _chassis(r) if r.has("chassis") else None
        board = _board(r) if r.has("board") else None
        product = _product(r) if r.has("product") else None
        records = tuple(_multirecord(mr) for mr in (r.tables("multirecord") or []))
        size = r.integer("size", DEFAULT_SIZE, 8, MAX_SIZE) if r.has("size") else None
        r.finish()
        try:
            build_image(chassis, board, product, records, size)
        except ImageDoesNotFit as e:
            raise DescriptionError(f"{key}.{e.where}" if e.where else key, e.why) from None
        return cls(chassis=chassis, board=board, product=product, multirecords=records, size=size)


class ImageDoesNotFit(ValueError):
    """An area or the whole image is too big; ``where`` is the key below [bmc.fru]."""

    def __init__(self, where: str, why: str) -> None:
        self.where, self.why = where, why
        super().__init__(f"{where or 'image'}: {why}")


def build_image(chassis: ChassisInfo | None, board: BoardInfo | None, product: ProductInfo | None,
                records: tuple[MultiRecord, ...], size: int | None) -> bytes:
    """Lay the areas out after the common header (section 8).

    Raises ImageDoesNotFit when an area or the image does not fit.
    """
    areas: list[tuple[str, bytes | None]] = [
        ("chassis", chassis.encode() if chassis else None),
        ("board", board.encode() if board else None),
        ("product", product.encode() if product else None),
    ]
    for name, area in areas:
        if area is not None and len(area) > MAX_AREA_BYTES:
            raise ImageDoesNotFit(name, f"the area needs {len(area)} bytes, more than {MAX_AREA_BYTES}")
    multi = b"".join(r.encode(i == len(records) - 1) for i, r in enumerate(records)) or None
    image = bytearray(8)
    offsets = [0]  # internal use area: none
    for _, area in areas + [("multirecord", multi)]:
        if area is None:
            offsets.append(0)
            continue
        offsets.append(len(image) // AREA_UNIT)
        image += area
        image += bytes(-len(image) % AREA_UNIT)
    if max(offsets) > 0xFF:
        raise ImageDoesNotFit("", "the areas start beyond the 2040 bytes the common header can point to")
    header = bytes([FORMAT_VERSION, *offsets, 0])
    image[0:8] = header + bytes([checksum(header)])
    if size is None:
        size = max(DEFAULT_SIZE, len(image))
    if len(image) > size:
        raise ImageDoesNotFit("size", f"the FRU image needs {len(image)} bytes, more than {size}")
    return bytes(image) + bytes(size - len(image))


# -- description readers ------------------------------------------------------------
def _text(r: Any, name: str) -> str:
    v = r.string(name, "")
    encode_string(v, r.key(name))
    return v


def _extra(r: Any) -> tuple[str, ...]:
    v = r.raw("extra", [])
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise DescriptionError(r.key("extra"), "must be a list of strings")
    for i, s in enumerate(v):
        encode_string(s, f"{r.key('extra')}[{i}]")
        if s == "":
            raise DescriptionError(f"{r.key('extra')}[{i}]", "an empty custom field says nothing; leave it out")
    return tuple(v)


def _sub(r: Any, name: str) -> Any:
    return Table(r.raw(name, {}), r.key(name))


def _chassis(parent: Any) -> ChassisInfo:
    r = _sub(parent, "chassis")
    t = r.raw("type", "rack_mount")
    if isinstance(t, str):
        if t not in CHASSIS_TYPES:
            raise DescriptionError(
                r.key("type"), f"must be an SMBIOS chassis type number or one of {', '.join(CHASSIS_TYPES)}, not {t!r}")
        t = CHASSIS_TYPES[t]
    elif isinstance(t, bool) or not isinstance(t, int) or not 0x01 <= t <= 0xFF:
        raise DescriptionError(r.key("type"), "must be an SMBIOS chassis type 0x01..0xFF or a name like \"rack_mount\"")
    info = ChassisInfo(type=t, part_number=_text(r, "part_number"), serial_number=_text(r, "serial_number"),
                       extra=_extra(r))
    r.finish()
    return info


def _board(parent: Any) -> BoardInfo:
    r = _sub(parent, "board")
    info = BoardInfo(
        manufacture_date=_manufacture_date(r.raw("manufacture_date", 0), r.key("manufacture_date")),
        manufacturer=_text(r, "manufacturer"),
        product=_text(r, "product"),
        serial_number=_text(r, "serial_number"),
        part_number=_text(r, "part_number"),
        fru_file_id=_text(r, "fru_file_id"),
        extra=_extra(r),
    )
    r.finish()
    return info


def _product(parent: Any) -> ProductInfo:
    r = _sub(parent, "product")
    info = ProductInfo(**{n: _text(r, n) for n in ("manufacturer", "name", "part_number", "version",
                                                   "serial_number", "asset_tag", "fru_file_id")},
                       extra=_extra(r))
    r.finish()
    return info


def _manufacture_date(v: Any, where: str) -> int:
    """Minutes since 1996-01-01 00:00 UTC from minutes, a TOML date-time or date."""
    if isinstance(v, datetime.datetime):
        when = v if v.tzinfo else v.replace(tzinfo=datetime.UTC)
        v = int((when - MFG_EPOCH).total_seconds() // 60)
    elif isinstance(v, datetime.date):
        midnight = datetime.datetime(v.year, v.month, v.day, tzinfo=datetime.UTC)
        v = int((midnight - MFG_EPOCH).total_seconds() // 60)
    elif isinstance(v, bool) or not isinstance(v, int):
        raise DescriptionError(where, "must be a date-time like 2023-03-14T09:30:00Z, a date, or minutes since 1996-01-01")
    if not 0 <= v <= 0xFFFFFF:
        raise DescriptionError(where, "must lie between 1996-01-01 and 2027-11-24 (3 bytes of minutes since 1996)")
    return v


def _multirecord(r: Any) -> MultiRecord:
    if r.has("type") and r.has("type_id"):
        raise DescriptionError(r.key("type_id"), 'give either type = "power_supply" or type_id with data')
    if r.has("type"):
        r.choice("type", "power_supply", ("power_supply",))  # the one kind there is
        record = _power_supply(r)
    else:
        if not r.has("type_id"):
            raise DescriptionError(r.key("type_id"), 'required: a record type ID 0x00..0xFF, or type = "power_supply"')
        type_id = r.integer("type_id", 0, 0, 0xFF)
        record = MultiRecord(type_id, _bytes(r, "data"))
    r.finish()
    return record


def _bytes(r: Any, name: str) -> bytes:
    v = r.raw(name, None)
    if isinstance(v, str):
        try:
            data = bytes.fromhex(v)
        except ValueError:
            raise DescriptionError(r.key(name), "must be hex digits like \"5a 31 00\" or a list of bytes") from None
    elif isinstance(v, list) and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in v):
        data = bytes(v)
    else:
        raise DescriptionError(r.key(name), "required: hex digits like \"5a 31 00\" or a list of bytes 0..255")
    if len(data) > 255:
        raise DescriptionError(r.key(name), f"{len(data)} bytes, a multirecord holds at most 255")
    return data


def _power_supply(r: Any) -> MultiRecord:
    """Power Supply Information (FRU spec section 18.1, 24 bytes).

    Voltages in volts (stored in 10 mV units), frequencies in Hz, currents
    in A, times in ms except hold-up time (s), powers in W and VA.
    """

    def volts(name: str, default: float) -> int:
        v = r.raw(name, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 655.35:
            raise DescriptionError(r.key(name), "must be volts 0..655.35")
        return round(v * 100)

    capacity = r.integer("capacity", 0, 0, 0xFFF)
    peak_va = r.integer("peak_va", 0xFFFF, 0, 0xFFFF)
    inrush_current = r.integer("inrush_current", 0xFF, 0, 0xFF)
    inrush_interval = r.integer("inrush_interval", 0, 0, 0xFF)
    low1, high1 = volts("input_low", 100.0), volts("input_high", 240.0)
    low2, high2 = volts("input2_low", 0), volts("input2_high", 0)
    freq_low = r.integer("frequency_low", 50, 0, 0xFF)
    freq_high = r.integer("frequency_high", 60, 0, 0xFF)
    dropout = r.integer("dropout_tolerance", 0, 0, 0xFF)
    flags = (r.boolean("predictive_fail", False) << 0 | r.boolean("power_factor_correction", True) << 1
             | r.boolean("autoswitch", True) << 2 | r.boolean("hot_swap", False) << 3)
    peak_capacity = r.integer("peak_capacity", capacity, 0, 0xFFF)
    hold_up_time = r.integer("hold_up_time", 0, 0, 0xF)
    payload = struct.pack(
        "<HHBBHHHHBBBBHBHB",
        capacity, peak_va, inrush_current, inrush_interval, low1, high1, low2, high2,
        freq_low, freq_high, dropout, flags, hold_up_time << 12 | peak_capacity,
        0, 0, 0,  # combined wattage: none; predictive fail tachometer threshold: none
    )
    return MultiRecord(POWER_SUPPLY_RECORD, payload)


# -- the device -------------------------------------------------------------------------
class FruDevice:
    """FRU device 0: the described image, or the one clients last wrote.

    Byte-addressed (Get FRU Inventory Area Info "access by bytes").  Each
    Write FRU Data stores the whole image again in one transaction: at 1 KiB
    that is cheaper than bookkeeping of diffs and can never tear.
    """

    def __init__(self, store: Any, described: bytes, device_id: int = BMC_FRU_DEVICE) -> None:
        self.store = store
        self.device_id = device_id
        written = dict(store.records(NAMESPACE)).get(device_id)
        self.image = bytearray(written if written is not None else described)

    @property
    def size(self) -> int:
        return len(self.image)

    def read(self, offset: int, count: int) -> bytes:
        """Up to ``count`` bytes from ``offset``; fewer at the end of the area."""
        if offset >= self.size:
            raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"offset {offset} beyond {self.size} bytes")
        return bytes(self.image[offset:offset + count])

    def write(self, offset: int, data: bytes) -> int:
        if offset + len(data) > self.size:
            raise IpmiError(CC.PARAMETER_OUT_OF_RANGE,
                            f"{len(data)} bytes at {offset} run past the {self.size}-byte area")
        self.image[offset:offset + len(data)] = data
        if data:
            self.store.append(NAMESPACE, bytes(self.image), record_id=self.device_id)
        return len(data)


def create_part(bmc: Any, config: Any) -> dict[int, FruDevice]:
    """``bmc.parts["fru"]``: FRU devices by ID (only 0, the BMC's own)."""
    fru_config = getattr(config, "fru", None) or FruConfig()
    if bmc.store is None:
        from ..core.nonvolatile import MemoryStore

        bmc.store = MemoryStore()
    return {BMC_FRU_DEVICE: FruDevice(bmc.store, fru_config.image())}
