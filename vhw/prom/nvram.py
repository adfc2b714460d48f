"""Codec for the 8 KiB OpenPROM NVRAM of QEMU's sun4m and sun4u machines.

QEMU 7.2 rebuilds this image at every start and OpenBIOS never writes it back
(docs/openprom-sparc.md §2, §3), so vhw must be able to build
the very bytes QEMU builds, read any dump back, and edit the options safely.

Facts, from QEMU 7.2:

* ``hw/sparc/sun4m.c: nvram_init()`` and ``hw/sparc64/sun4u.c:
  sun4u_NVRAM_set_params()`` zero a 0x1ff0-byte ``image``, call
  ``chrp_nvram_create_system_partition(image, 0, 0x1fd0)``, then
  ``chrp_nvram_create_free_partition(&image[sysp_end], 0x1fd0 - sysp_end)``,
  then ``Sun_init_header(&image[0x1fd8], macaddr, machine_id)`` and write
  bytes 0..0x1fef to the chip. sun4u passes machine id 0x80; sun4m takes it
  from the board's hwdef (``nvram_machine_id``).
* ``hw/nvram/chrp_nvram.c``: the system partition (signature 0x70, name
  "system") holds each -prom-env string NUL-terminated, then one NUL end
  marker, rounded up to 16 bytes (min_len 0); the free partition has
  signature 0x7f and name "free".
* ``include/hw/nvram/chrp_nvram.h: chrp_nvram_finish_partition()``: length/16
  big-endian in bytes 2-3; checksum = signature byte plus bytes 2..15, with
  the carry folded back into the low byte after every addition.
* ``include/hw/nvram/sun_nvram.h: Sun_init_header()``: IDPROM = format 1,
  machine id, MAC, 4 zero date bytes, host id = MAC bytes 3..5, XOR checksum
  of bytes 0..14.
* When the strings fill the system partition up to 0x1fd0, QEMU still
  writes a zero-length free header at 0x1fd0; the IDPROM covers all but its
  first 8 bytes (measured; :func:`partition_area`).
* ``hw/rtc/m48t59.c``: the clock registers sit at 0x1ff8 (M48T08, sun4m) and
  0x1ff0 (M48T59, sun4u) up to 0x1fff; they are live, so images are compared
  with them masked (:func:`mask_clock`).

Pure bytes in, bytes out: no I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import VhwError

NVRAM_SIZE = 0x2000
HEADER_SIZE = 16
PARTITION_AREA_END = 0x1FD0
IDPROM_OFFSET = 0x1FD8
IDPROM_SIZE = 16
SIG_SYSTEM = 0x70
SIG_FREE = 0x7F
SYSTEM_NAME = "system"
FREE_NAME = "free"

# hw/sparc/sun4m.c hwdefs (nvram_machine_id) and hw/sparc64/sun4u.c
# (Sun_init_header(..., 0x80)); measured identical with QEMU 7.2.
MACHINE_IDS = {
    "sun4u": 0x80,
    "sun4m": 0x80,
    "SS-5": 0x80,
    "SS-4": 0x80,
    "LX": 0x80,
    "SPARCClassic": 0x80,
    "SPARCbook": 0x80,
    "Voyager": 0x80,
    "SS-10": 0x72,
    "SS-20": 0x72,
    "SS-600MP": 0x71,
}

# Physical base of the NVRAM (openprom-sparc.md §1, §4): the M48T08 of the
# 0x7xxxxxxx sun4m boards and of SS-10/20/600MP (hw/sparc/sun4m.c hwdefs
# nvram_base), and the sun4u M48T59 behind the ebus at PCI I/O 0x2000, which
# is mapped only once OpenBIOS has programmed the Simba bridge.
NVRAM_BASES = {
    "SS-5": 0x71200000, "SS-4": 0x71200000, "LX": 0x71200000,
    "SPARCClassic": 0x71200000, "SPARCbook": 0x71200000, "Voyager": 0x71200000,
    "SS-10": 0xFF1200000, "SS-20": 0xFF1200000, "SS-600MP": 0xFF1200000,
    "sun4u": 0x1FE02002000,
}

# First clock/control register (hw/rtc/m48t59.c, m48t59_write(): plain
# memory ends at 0x1ff8 on the M48T08 of sun4m, at 0x1ff0 on the M48T59 of
# sun4u).
CLOCK_START_SUN4M = 0x1FF8
CLOCK_START_SUN4U = 0x1FF0

# The largest system partition: the whole area, leaving no free partition.
# chrp_nvram_create_system_partition(image, 0, 0x1fd0) accepts strings
# (with their NULs) up to 0x1fd0 - 16 bytes; when the end marker then pushes
# the rounded end to 0x1fe0 QEMU writes a free header of negative length
# into the IDPROM (measured): vhw refuses that one input.
MAX_SYSTEM_END = PARTITION_AREA_END


class NvramError(VhwError, ValueError):
    """An NVRAM image or an edit is invalid; names where and why."""

    def __init__(self, reason: str, *, offset: int | None = None,
                 partition: str | None = None):
        self.reason = reason
        self.offset = offset
        self.partition = partition
        where = []
        if partition is not None:
            where.append(f"partition {partition!r}")
        if offset is not None:
            where.append(f"offset 0x{offset:04x}")
        prefix = ("NVRAM " + " ".join(where) + ": ") if where else "NVRAM: "
        super().__init__(prefix + reason)


@dataclass(frozen=True)
class Partition:
    """One CHRP partition as found in an image (length includes header)."""

    offset: int
    signature: int
    checksum: int
    length: int
    name: str

    @property
    def body(self) -> range:
        """Byte offsets of the partition's contents after its header."""
        return range(self.offset + HEADER_SIZE, self.offset + self.length)


@dataclass(frozen=True)
class IdProm:
    """The Sun IDPROM (include/hw/nvram/sun_nvram.h: struct Sun_nvram)."""

    format: int
    machine_type: int
    mac: bytes
    date: int
    serial: bytes
    checksum: int

    @property
    def hostid(self) -> int:
        """The host ID Sun's ``hostid`` prints: machine type + serial."""
        return (self.machine_type << 24) | int.from_bytes(self.serial, "big")

    @property
    def mac_text(self) -> str:
        """The MAC as QEMU's ``-nic ...,mac=`` spells it."""
        return ":".join(f"{b:02x}" for b in self.mac)


@dataclass(frozen=True)
class NvramImage:
    """A decoded image; ``raw`` is the exact bytes it came from."""

    options: tuple[tuple[str, str], ...]
    idprom: IdProm
    partitions: tuple[Partition, ...]
    raw: bytes

    def option(self, name: str) -> str | None:
        """The value OpenBIOS ends up with: the last occurrence wins."""
        found = None
        for key, value in self.options:
            if key == name:
                found = value
        return found


# ---------------------------------------------------------------- checksums


def chrp_checksum(header: bytes | bytearray) -> int:
    """CHRP header checksum (chrp_nvram.h: chrp_nvram_finish_partition).

    Signature byte plus bytes 2..15, carry folded back after each add.
    """
    total = header[0]
    for byte in header[2:HEADER_SIZE]:
        total += byte
        total = (total + (total >> 8)) & 0xFF
    return total


def idprom_checksum(idprom: bytes) -> int:
    """XOR of IDPROM bytes 0..14 (sun_nvram.h: Sun_init_header)."""
    result = 0
    for byte in idprom[:15]:
        result ^= byte
    return result


# ----------------------------------------------------------------- building


def _partition_header(signature: int, name: str, length: int) -> bytes:
    """A 16-byte CHRP header with its checksum filled in."""
    raw_name = name.encode("ascii")
    header = bytearray(HEADER_SIZE)
    header[0] = signature
    header[2:4] = (length >> 4).to_bytes(2, "big")
    header[4:4 + len(raw_name)] = raw_name
    header[1] = chrp_checksum(header)
    return bytes(header)


def _option_pairs(options: Mapping[str, str] | Iterable[tuple[str, str]]
                  ) -> list[tuple[str, str]]:
    """Options as an ordered list of pairs, each validated."""
    items = options.items() if isinstance(options, Mapping) else options
    pairs = [(name, value) for name, value in items]
    for name, value in pairs:
        check_option(name, value)
    return pairs


def check_option(name: str, value: str) -> None:
    """Refuse what OpenBIOS could not read back as the same name=value."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise NvramError(f"option name and value must be str: {name!r}={value!r}",
                         partition=SYSTEM_NAME)
    if not name:
        raise NvramError("option name is empty", partition=SYSTEM_NAME)
    if "=" in name:
        raise NvramError(f"option name {name!r} contains '='", partition=SYSTEM_NAME)
    if "\0" in name:
        raise NvramError(f"option name {name!r} contains NUL", partition=SYSTEM_NAME)
    if "\0" in value:
        raise NvramError(f"value of option {name!r} contains NUL", partition=SYSTEM_NAME)


def _encode(text: str) -> bytes:
    """UTF-8 like QEMU's argv; surrogateescape keeps undecodable dump bytes."""
    return text.encode("utf-8", "surrogateescape")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def system_partition(pairs: Iterable[tuple[str, str]]) -> bytes:
    """The system partition QEMU builds (chrp_nvram_create_system_partition).

    Strings NUL-terminated, one more NUL, rounded up to 16 bytes.
    """
    body = b"".join(_encode(f"{n}={v}") + b"\0" for n, v in pairs) + b"\0"
    length = (HEADER_SIZE + len(body) + 15) & ~15
    if length > MAX_SYSTEM_END:
        need = HEADER_SIZE + len(body)
        raise NvramError(
            f"options need {need} bytes (rounded to {length}) but the system "
            f"partition can hold at most {MAX_SYSTEM_END} bytes including its "
            f"16-byte header and the end marker", partition=SYSTEM_NAME)
    padded = body + bytes(length - HEADER_SIZE - len(body))
    return _partition_header(SIG_SYSTEM, SYSTEM_NAME, length) + padded


def free_partition(length: int) -> bytes:
    """The free partition (chrp_nvram_create_free_partition): header + zeros.

    Length 0 still yields its 16-byte header: QEMU writes it at 0x1fd0 when
    the system partition fills the area.
    """
    return (_partition_header(SIG_FREE, FREE_NAME, length)
            + bytes(max(0, length - HEADER_SIZE)))


def partition_area(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Bytes 0..0x1fd7 as sun4m.c nvram_init / sun4u.c sun4u_NVRAM_set_params
    lay them out: system, free, and zeros (or, when the system partition
    fills the area, the first 8 bytes of QEMU's zero-length free header;
    the IDPROM at 0x1fd8 overwrites the rest of it).
    """
    system = system_partition(pairs)
    laid = system + free_partition(PARTITION_AREA_END - len(system))
    return (laid + bytes(IDPROM_OFFSET))[:IDPROM_OFFSET]


def parse_mac(mac: str | bytes) -> bytes:
    """Six bytes from ``aa:bb:cc:dd:ee:ff`` or from 6 raw bytes."""
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise NvramError(f"MAC must be 6 bytes, got {len(mac)}", partition="idprom")
        return bytes(mac)
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise NvramError(f"MAC {mac!r} is not of the form aa:bb:cc:dd:ee:ff",
                         partition="idprom")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise NvramError(f"MAC {mac!r} has a non-hex byte", partition="idprom") from None


def _serial(mac: bytes, hostid: int | bytes | None) -> bytes:
    """The 3-byte serial; QEMU copies MAC bytes 3..5 (Sun_init_header)."""
    if hostid is None:
        return mac[3:6]
    if isinstance(hostid, (bytes, bytearray)):
        if len(hostid) != 3:
            raise NvramError(f"host id must be 3 bytes, got {len(hostid)}",
                             partition="idprom")
        return bytes(hostid)
    if not 0 <= hostid <= 0xFFFFFF:
        raise NvramError(f"host id 0x{hostid:x} does not fit 24 bits", partition="idprom")
    return hostid.to_bytes(3, "big")


def build_idprom(mac: str | bytes, machine_type: int, *,
                 hostid: int | bytes | None = None, date: int = 0) -> bytes:
    """The 16-byte IDPROM (sun_nvram.h: Sun_init_header).

    Sun_init_header never writes the date: it stays the builder's memset
    zeros, hence the default 0.
    """
    raw_mac = parse_mac(mac)
    if not 0 <= machine_type <= 0xFF:
        raise NvramError(f"machine type {machine_type} is not a byte", partition="idprom")
    if not 0 <= date <= 0xFFFFFFFF:
        raise NvramError(f"date {date} does not fit 32 bits", partition="idprom")
    head = (bytes([1, machine_type]) + raw_mac + date.to_bytes(4, "big")
            + _serial(raw_mac, hostid))
    return head + bytes([idprom_checksum(head)])


def machine_type_for(machine: str) -> int:
    """IDPROM machine type QEMU writes for a machine family or -M name."""
    try:
        return MACHINE_IDS[machine]
    except KeyError:
        known = ", ".join(sorted(MACHINE_IDS))
        raise NvramError(f"unknown machine {machine!r} (known: {known})") from None


def build_image(machine: str,
                options: Mapping[str, str] | Iterable[tuple[str, str]] = (), *,
                mac: str | bytes = "00:00:00:00:00:00",
                hostid: int | bytes | None = None,
                machine_type: int | None = None,
                date: int = 0) -> bytes:
    """The 8 KiB image QEMU 7.2 builds for ``-prom-env`` options and a MAC.

    ``machine`` is "sun4m", "sun4u" or a sun4m ``-M`` name (for the IDPROM
    machine type). The clock registers are left zero. ``hostid``,
    ``machine_type`` and ``date`` go beyond what QEMU's command line can
    set; left at their defaults the result is QEMU's own image. The default
    MAC (zeros) is what sun4m writes when no NIC is configured; sun4u under
    -nodefaults writes 52:54:00:12:34:56 (measured).
    """
    mtype = machine_type_for(machine) if machine_type is None else machine_type
    idprom = build_idprom(mac, mtype, hostid=hostid, date=date)
    image = bytearray(NVRAM_SIZE)
    image[:IDPROM_OFFSET] = partition_area(_option_pairs(options))
    image[IDPROM_OFFSET:IDPROM_OFFSET + IDPROM_SIZE] = idprom
    return bytes(image)


def clock_start(machine: str) -> int:
    """First live clock register: 0x1ff0 on sun4u's M48T59, 0x1ff8 on sun4m's M48T08."""
    machine_type_for(machine)
    return CLOCK_START_SUN4U if machine == "sun4u" else CLOCK_START_SUN4M


def mask_clock(image: bytes, machine: str) -> bytes:
    """The image with the live clock registers zeroed, for comparisons."""
    _check_size(image)
    start = clock_start(machine)
    return bytes(image[:start]) + bytes(NVRAM_SIZE - start)


# ------------------------------------------------------------------ parsing


def _check_size(data: bytes) -> None:
    if len(data) < NVRAM_SIZE:
        raise NvramError(f"image is truncated: {len(data)} bytes, expected {NVRAM_SIZE}")
    if len(data) > NVRAM_SIZE:
        raise NvramError(f"image is oversized: {len(data)} bytes, expected {NVRAM_SIZE}")


def _read_partition(data: bytes, offset: int) -> Partition:
    """One header at ``offset``, checked against the partition area.

    Offsets and lengths are multiples of 16 and so is 0x1fd0, so a header
    that starts inside the area always fits in it.
    """
    header = data[offset:offset + HEADER_SIZE]
    name = header[4:].split(b"\0", 1)[0].decode("ascii", "replace")
    length = int.from_bytes(header[2:4], "big") * 16
    expected = chrp_checksum(header)
    if header[1] != expected:
        raise NvramError(
            f"bad header checksum 0x{header[1]:02x}, expected 0x{expected:02x}",
            offset=offset, partition=name or None)
    if length < HEADER_SIZE:
        raise NvramError(f"length {length} is shorter than its header",
                         offset=offset, partition=name or None)
    if offset + length > PARTITION_AREA_END:
        raise NvramError(
            f"length 0x{length:x} overruns the partition area end "
            f"0x{PARTITION_AREA_END:04x} (ends at 0x{offset + length:04x})",
            offset=offset, partition=name or None)
    return Partition(offset, header[0], header[1], length, name)


def parse_partitions(data: bytes) -> tuple[Partition, ...]:
    """Walk the headers from 0; they must tile 0..0x1fd0 exactly.

    A sequential walk is how OpenBIOS finds them, so a partition that
    overlaps the next one shows up as an overrun of the area.
    """
    partitions = []
    offset = 0
    while offset < PARTITION_AREA_END:
        part = _read_partition(data, offset)
        partitions.append(part)
        offset += part.length
    return tuple(partitions)


def _system(partitions: Iterable[Partition]) -> Partition:
    systems = [p for p in partitions if p.signature == SIG_SYSTEM and p.name == SYSTEM_NAME]
    if not systems:
        raise NvramError("no system partition (signature 0x70, name 'system')")
    if len(systems) > 1:
        raise NvramError("more than one system partition", offset=systems[1].offset,
                         partition=SYSTEM_NAME)
    return systems[0]


def parse_options(data: bytes, part: Partition) -> tuple[tuple[str, str], ...]:
    """``name=value`` strings up to the empty end marker, in order."""
    pairs: list[tuple[str, str]] = []
    pos = part.body.start
    end = part.body.stop
    while True:
        nul = data.find(b"\0", pos, end)
        if nul < 0:
            raise NvramError("options are not terminated by an empty string",
                             offset=pos, partition=part.name)
        if nul == pos:
            return tuple(pairs)
        entry = data[pos:nul]
        name, sep, value = entry.partition(b"=")
        if not sep or not name:
            raise NvramError(f"entry {_decode(entry)!r} is not name=value",
                             offset=pos, partition=part.name)
        pairs.append((_decode(name), _decode(value)))
        pos = nul + 1


def parse_idprom(data: bytes) -> IdProm:
    """The IDPROM at 0x1fd8, format and XOR checksum verified."""
    raw = data[IDPROM_OFFSET:IDPROM_OFFSET + IDPROM_SIZE]
    if raw[0] != 1:
        raise NvramError(f"IDPROM format 0x{raw[0]:02x}, expected 0x01",
                         offset=IDPROM_OFFSET, partition="idprom")
    expected = idprom_checksum(raw)
    if raw[15] != expected:
        raise NvramError(f"bad IDPROM checksum 0x{raw[15]:02x}, expected 0x{expected:02x}",
                         offset=IDPROM_OFFSET + 15, partition="idprom")
    return IdProm(format=raw[0], machine_type=raw[1], mac=bytes(raw[2:8]),
                  date=int.from_bytes(raw[8:12], "big"), serial=bytes(raw[12:15]),
                  checksum=raw[15])


def parse_image(data: bytes) -> NvramImage:
    """Decode and fully validate an 8 KiB dump; raises :class:`NvramError`."""
    data = bytes(data)
    _check_size(data)
    partitions = parse_partitions(data)
    options = parse_options(data, _system(partitions))
    return NvramImage(options=options, idprom=parse_idprom(data),
                      partitions=partitions, raw=data)


# ------------------------------------------------------------------ editing


_QEMU_LAYOUTS = (
    [(SIG_SYSTEM, SYSTEM_NAME), (SIG_FREE, FREE_NAME)],
    [(SIG_SYSTEM, SYSTEM_NAME)],
)


def _rebuild(image: NvramImage, pairs: list[tuple[str, str]]) -> bytes:
    """Re-lay bytes 0..0x1fd7 as QEMU would; keep the IDPROM and the rest.

    Only QEMU's own layouts ([system, free] or a full [system]) are
    rebuilt: other partitions would move, which OpenBIOS cannot cope with.
    """
    layout = [(p.signature, p.name) for p in image.partitions]
    if layout not in _QEMU_LAYOUTS:
        raise NvramError(f"cannot edit: partition layout {layout!r} is not "
                         f"[system, free] as QEMU builds it")
    out = bytearray(image.raw)
    out[:IDPROM_OFFSET] = partition_area(pairs)
    return bytes(out)


def set_option(data: bytes, name: str, value: str) -> bytes:
    """A new image with ``name=value``: replaces the first occurrence in
    place and drops later duplicates, otherwise appends."""
    check_option(name, value)
    image = parse_image(data)
    pairs: list[tuple[str, str]] = []
    replaced = False
    for key, old in image.options:
        if key != name:
            pairs.append((key, old))
        elif not replaced:
            pairs.append((name, value))
            replaced = True
    if not replaced:
        pairs.append((name, value))
    return _rebuild(image, pairs)


def unset_option(data: bytes, name: str) -> bytes:
    """A new image without any ``name=`` entry; an absent name is an error."""
    image = parse_image(data)
    pairs = [(k, v) for k, v in image.options if k != name]
    if len(pairs) == len(image.options):
        raise NvramError(f"option {name!r} is not set", partition=SYSTEM_NAME)
    return _rebuild(image, pairs)


def prom_env_args(options: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[str]:
    """QEMU arguments that make QEMU build the same system partition."""
    args: list[str] = []
    for name, value in _option_pairs(options):
        args += ["-prom-env", f"{name}={value}"]
    return args
