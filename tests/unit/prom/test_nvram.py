"""The sun4m/sun4u NVRAM codec (vhw/prom/nvram.py).

Two kinds of evidence: fixtures dumped from QEMU 7.2 (tests/unit/data/
prom_*.bin, run everywhere) and live comparisons that start
qemu-system-sparc / qemu-system-sparc64, read the NVRAM through QMP
``pmemsave`` and compare it with ``build_image`` (skipped, with the reason,
where the binaries are missing).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vhw.prom import nvram
from vhw.prom.nvram import (
    IDPROM_OFFSET,
    MAX_SYSTEM_END,
    NVRAM_SIZE,
    NvramError,
    build_image,
    mask_clock,
    parse_image,
    set_option,
    unset_option,
)

DATA = Path(__file__).parent / "data"

# The options and MACs the fixtures were captured with (see capture_fixtures).
FIXTURE_OPTIONS = [
    ("auto-boot?", "false"),
    ("my-var", "hello world"),
    ("empty-var", ""),
    ("eq-var", "a=b=c"),
]
FIXTURES = {
    "sun4m": ("prom_sun4m_ss5.bin", "SS-5", "52:54:00:aa:bb:cc"),
    "sun4u": ("prom_sun4u.bin", "sun4u", "52:54:00:12:34:56"),
}

# ------------------------------------------------------------- QEMU capture

# Physical base of the NVRAM (openprom-sparc.md §1, §4): M48T08 of the
# 0x7xxxxxxx sun4m boards, of SS-10/20/600MP, and the sun4u M48T59 behind
# the ebus, mapped once OpenBIOS has programmed the Simba bridge.
BASES = nvram.NVRAM_BASES
QEMU_TIMEOUT = 15.0


def _binary(board: str) -> str:
    return "qemu-system-sparc64" if board == "sun4u" else "qemu-system-sparc"


def _needs(board: str):
    """Skip unless the QEMU binary for ``board`` is on PATH."""
    binary = _binary(board)
    return pytest.mark.skipif(
        shutil.which(binary) is None,
        reason=f"{binary} not on PATH (Debian package qemu-system-sparc): "
               f"live byte-identity comparison with QEMU skipped")


class _Qmp:
    """Just enough QMP over the child's stdio for pmemsave and quit."""

    def __init__(self, proc: subprocess.Popen, deadline: float):
        self.proc = proc
        self.deadline = deadline
        self.buf = b""
        self.reply()  # greeting
        self.command("qmp_capabilities")

    def _line(self) -> dict:
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("QEMU did not answer on QMP in time")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError("QEMU exited: " + self.proc.stderr.read().decode())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def reply(self) -> dict:
        while True:
            msg = self._line()
            if "event" not in msg:
                return msg

    def command(self, name: str, **args) -> dict:
        self.proc.stdin.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.proc.stdin.flush()
        return self.reply()


def qemu_nvram(board: str, prom_env: list[str] = (), mac: str | None = None) -> bytes:
    """Start QEMU for ``board``, read its 8 KiB NVRAM, quit.

    sun4m is read paused (-S) before any firmware runs. On sun4u the NVRAM is
    reachable only after OpenBIOS has opened the bridge window (§1), so the
    machine runs until the dump starts with the system signature 0x70;
    OpenBIOS only reads NVRAM (§6), so this is still QEMU's own image.
    """
    argv = [_binary(board), "-M", board, "-nodefaults", "-display", "none",
            "-serial", "null", "-monitor", "none", "-qmp", "stdio"]
    argv += ["-vga", "none"] if board == "sun4u" else ["-S"]
    for env in prom_env:
        argv += ["-prom-env", env]
    if mac is not None:
        argv += ["-net", f"nic,macaddr={mac}"]
    deadline = time.monotonic() + QEMU_TIMEOUT
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        qmp = _Qmp(proc, deadline)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "nvram.bin"
            while True:
                reply = qmp.command("pmemsave", val=BASES[board], size=NVRAM_SIZE,
                                    filename=str(path))
                data = path.read_bytes() if "return" in reply and path.exists() else b""
                if data[:1] == b"\x70":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"NVRAM of {board} not readable: {reply}")
                time.sleep(0.05)
        qmp.command("quit")
        proc.wait(timeout=5)
        return data
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def qemu_refuses(board: str, prom_env: list[str]) -> str:
    """QEMU's stderr when it refuses to start with these -prom-env strings."""
    argv = [_binary(board), "-M", board, "-nodefaults", "-display", "none", "-S",
            "-monitor", "none"]
    for env in prom_env:
        argv += ["-prom-env", env]
    proc = subprocess.run(argv, capture_output=True, timeout=QEMU_TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0, "QEMU accepted options it should refuse"
    return proc.stderr.decode()


def capture_fixtures() -> None:
    """Regenerate tests/unit/prom/data/prom_*.bin (run by hand, not by pytest)."""
    env = [f"{n}={v}" for n, v in FIXTURE_OPTIONS]
    for name, board, mac in FIXTURES.values():
        (DATA / name).write_bytes(qemu_nvram(board, env, mac))


# ----------------------------------------------------- fixtures from QEMU


def fixture(machine: str) -> bytes:
    return (DATA / FIXTURES[machine][0]).read_bytes()


@pytest.mark.parametrize("machine", ["sun4m", "sun4u"])
def test_build_matches_the_image_qemu_dumped(machine):
    _, board, mac = FIXTURES[machine]
    built = build_image(board, FIXTURE_OPTIONS, mac=mac)
    assert built == mask_clock(fixture(machine), machine)


@pytest.mark.parametrize("machine", ["sun4m", "sun4u"])
def test_parse_of_a_qemu_dump_gives_options_idprom_and_partitions(machine):
    _, _, mac = FIXTURES[machine]
    image = parse_image(fixture(machine))
    assert image.options == tuple(FIXTURE_OPTIONS)
    assert image.option("my-var") == "hello world" and image.option("empty-var") == ""
    assert image.option("missing") is None
    idp = image.idprom
    assert (idp.format, idp.machine_type, idp.mac_text, idp.date) == (1, 0x80, mac, 0)
    assert idp.serial == bytes.fromhex(mac.replace(":", ""))[3:]
    assert idp.hostid == int("80" + mac.replace(":", "")[6:], 16)
    system, free = image.partitions
    assert (system.offset, system.signature, system.name, system.length) == (0, 0x70, "system", 0x50)
    assert (free.offset, free.signature, free.name, free.length) == (0x50, 0x7F, "free", 0x1FD0 - 0x50)
    assert image.raw == fixture(machine)


def test_fixture_header_checksums_are_the_bytes_qemu_wrote():
    raw = fixture("sun4m")
    assert raw[:16] == bytes.fromhex("70 1d 00 05") + b"system".ljust(12, b"\0")
    assert nvram.chrp_checksum(raw[:16]) == raw[1]
    assert nvram.chrp_checksum(raw[0x50:0x60]) == raw[0x51]
    assert nvram.idprom_checksum(raw[IDPROM_OFFSET:IDPROM_OFFSET + 16]) == raw[IDPROM_OFFSET + 15]


def test_checksum_folds_the_carry_back():
    # 0x7f + 0x01 + 0xfe + ... needs the end-around carry: computed by hand.
    header = bytes([0x7F, 0, 0xFF, 0xFF]) + b"\xff" * 12
    total = 0x7F
    for _ in range(14):
        total += 0xFF
        total = (total + (total >> 8)) & 0xFF
    assert nvram.chrp_checksum(header) == total == 0x7F
    assert nvram.chrp_checksum(bytes([0x70, 0x99]) + bytes(14)) == 0x70  # byte 1 ignored


# ------------------------------------------------------------ round trips


def test_default_image_layout():
    raw = build_image("sun4u", mac="52:54:00:12:34:56")
    image = parse_image(raw)
    assert image.options == ()
    assert [(p.offset, p.length) for p in image.partitions] == [(0, 0x20), (0x20, 0x1FB0)]
    assert raw[IDPROM_OFFSET:IDPROM_OFFSET + 16] == bytes.fromhex("01 80 525400123456 00000000 123456 87")
    assert raw[0x1FD0:IDPROM_OFFSET] == bytes(8) and raw[0x1FE8:] == bytes(24)


def test_machine_types_per_board():
    for board, mtype in [("SS-5", 0x80), ("SS-10", 0x72), ("SS-20", 0x72),
                         ("SS-600MP", 0x71), ("sun4u", 0x80), ("sun4m", 0x80)]:
        assert parse_image(build_image(board)).idprom.machine_type == mtype
    with pytest.raises(NvramError, match="unknown machine 'SS-99'"):
        build_image("SS-99")


def test_explicit_hostid_machine_type_and_date_go_into_the_idprom():
    raw = build_image("sun4m", mac=bytes(range(6)), hostid=0xABCDEF, machine_type=0x57,
                      date=0x01020304)
    idp = parse_image(raw).idprom
    assert (idp.machine_type, idp.mac, idp.date, idp.serial) == (0x57, bytes(range(6)), 0x01020304, b"\xab\xcd\xef")
    assert idp.hostid == 0x57ABCDEF
    assert parse_image(build_image("sun4m", hostid=b"\x01\x02\x03")).idprom.serial == b"\x01\x02\x03"


names = st.text(st.characters(blacklist_characters="=\0", blacklist_categories=("Cs",)), min_size=1, max_size=20)
values = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(names, values), max_size=30), st.binary(min_size=6, max_size=6),
       st.sampled_from(["sun4m", "sun4u"]))
def test_round_trip_any_options(options, mac, machine):
    raw = build_image(machine, options, mac=mac)
    assert len(raw) == NVRAM_SIZE
    image = parse_image(raw)
    assert image.options == tuple(options) and image.idprom.mac == mac
    assert build_image(machine, image.options, mac=image.idprom.mac) == raw


def test_dump_bytes_that_are_not_utf8_survive_a_round_trip():
    raw = bytearray(build_image("sun4m", [("k", "vv")]))
    raw[0x12:0x14] = b"\xff\xfe"  # value bytes; the header checksum does not cover the body
    image = parse_image(bytes(raw))
    assert build_image("sun4m", image.options) == bytes(raw)


def test_mapping_options_keep_insertion_order():
    raw = build_image("sun4m", {"b": "1", "a": "2"})
    assert parse_image(raw).options == (("b", "1"), ("a", "2"))


def test_prom_env_args():
    assert nvram.prom_env_args({"a": "b c", "e": ""}) == ["-prom-env", "a=b c", "-prom-env", "e="]
    with pytest.raises(NvramError):
        nvram.prom_env_args({"a=": "x"})


# ----------------------------------------------------------------- editing


def test_set_option_replaces_in_place_and_keeps_the_idprom_and_tail():
    raw = bytearray(fixture("sun4m"))
    new = set_option(bytes(raw), "my-var", "bye")
    image = parse_image(new)
    assert image.options == (("auto-boot?", "false"), ("my-var", "bye"), ("empty-var", ""), ("eq-var", "a=b=c"))
    assert new[0x1FD0:] == bytes(raw[0x1FD0:])  # IDPROM and live clock bytes untouched
    _, board, mac = FIXTURES["sun4m"]
    assert mask_clock(new, "sun4m") == build_image(board, image.options, mac=mac)


def test_set_option_appends_and_grows_into_the_free_partition():
    raw = build_image("sun4u")
    new = set_option(raw, "x", "y" * 40)
    image = parse_image(new)
    assert image.options == (("x", "y" * 40),)
    assert [(p.offset, p.length) for p in image.partitions] == [(0, 0x40), (0x40, 0x1FD0 - 0x40)]


def test_set_option_collapses_duplicates_last_value_rule():
    raw = build_image("sun4m", [("a", "1"), ("b", "2"), ("a", "3")])
    assert parse_image(raw).option("a") == "3"  # OpenBIOS reads in order: last wins
    assert parse_image(set_option(raw, "a", "9")).options == (("a", "9"), ("b", "2"))


def test_unset_option_removes_every_occurrence_and_shrinks():
    raw = build_image("sun4m", [("a", "1" * 30), ("b", "2"), ("a", "3")])
    new = unset_option(raw, "a")
    assert parse_image(new).options == (("b", "2"),)
    assert new == build_image("sun4m", [("b", "2")])
    with pytest.raises(NvramError, match="option 'zz' is not set"):
        unset_option(new, "zz")


@pytest.mark.parametrize("name,value,reason", [
    ("a=b", "x", "contains '='"),
    ("a\0b", "x", "contains NUL"),
    ("", "x", "name is empty"),
    ("ok", "x\0y", "contains NUL"),
    ("ok", 5, "must be str"),
])
def test_bad_option_names_and_values_are_refused(name, value, reason):
    raw = build_image("sun4m")
    with pytest.raises(NvramError, match=reason):
        set_option(raw, name, value)
    with pytest.raises(NvramError, match=reason):
        build_image("sun4m", [(name, value)])


def test_a_full_system_partition_leaves_no_free_partition():
    # header 16 + "k=" + value + NUL + end NUL == 0x1fd0: QEMU then writes a
    # zero-length free header at 0x1fd0, of which the IDPROM leaves 8 bytes.
    raw = build_image("sun4m", [("k", "v" * (0x1FD0 - 20))])
    image = parse_image(raw)
    assert [(p.name, p.length) for p in image.partitions] == [("system", 0x1FD0)]
    assert raw[0x1FD0:IDPROM_OFFSET] == nvram._partition_header(0x7F, "free", 0)[:8]
    assert raw[0x1FD0:0x1FD4] == bytes.fromhex("7f 23 00 00")  # measured with QEMU 7.2
    shrunk = set_option(raw, "k", "v")
    assert shrunk == build_image("sun4m", [("k", "v")])  # stray header bytes gone again
    assert set_option(shrunk, "k", "v" * (0x1FD0 - 20)) == raw


def test_values_that_do_not_fit_are_refused():
    # Largest fit: header 16 + string + NUL + end NUL == MAX_SYSTEM_END (0x1fd0).
    biggest = "v" * (MAX_SYSTEM_END - 16 - 2 - 2)
    raw = build_image("sun4m", [("k", biggest)])
    image = parse_image(raw)
    assert image.partitions[0].length == MAX_SYSTEM_END == 0x1FD0
    with pytest.raises(NvramError, match="system partition can hold at most 8144 bytes"):
        build_image("sun4m", [("k", biggest + "v")])
    with pytest.raises(NvramError, match="partition 'system'"):
        set_option(raw, "k2", "")
    assert parse_image(raw).options == (("k", biggest),)  # the input image is untouched


def test_editing_refuses_a_layout_qemu_does_not_build():
    raw = bytearray(build_image("sun4m"))
    # Split the free partition in two: 0x20 "free" + rest "free" (still valid to parse).
    raw[0x20:0x30] = nvram._partition_header(0x7F, "free", 0x20)
    raw[0x40:0x50] = nvram._partition_header(0x7F, "free", 0x1FD0 - 0x40)
    image = parse_image(bytes(raw))
    assert len(image.partitions) == 3
    with pytest.raises(NvramError, match="partition layout"):
        set_option(bytes(raw), "a", "b")


# --------------------------------------------------------------- bad input


def test_truncated_and_oversized_images():
    raw = build_image("sun4m")
    with pytest.raises(NvramError, match="truncated: 8191 bytes"):
        parse_image(raw[:-1])
    with pytest.raises(NvramError, match="truncated: 0 bytes"):
        parse_image(b"")
    with pytest.raises(NvramError, match="oversized: 8193 bytes"):
        parse_image(raw + b"\0")
    with pytest.raises(NvramError, match="truncated"):
        set_option(raw[:100], "a", "b")
    with pytest.raises(NvramError, match="oversized"):
        mask_clock(raw + b"\0", "sun4u")


def _corrupt(raw: bytes, offset: int, value: int) -> bytes:
    out = bytearray(raw)
    out[offset] = value
    return bytes(out)


def test_bad_partition_checksums_name_the_partition_and_offset():
    raw = build_image("sun4m", {"a": "b"})
    with pytest.raises(NvramError) as err:
        parse_image(_corrupt(raw, 1, raw[1] ^ 1))
    assert err.value.offset == 0 and err.value.partition == "system"
    assert "NVRAM partition 'system' offset 0x0000: bad header checksum" in str(err.value)
    with pytest.raises(NvramError, match=r"partition 'fFee' offset 0x0020: bad header checksum 0x20, expected 0xf3"):
        parse_image(_corrupt(raw, 0x25, ord("F")))  # name byte changed, checksum stale
    with pytest.raises(NvramError, match="bad header checksum"):
        set_option(_corrupt(raw, 1, 0), "x", "y")


def _with_header(raw: bytes, offset: int, signature: int, name: str, length: int) -> bytes:
    out = bytearray(raw)
    out[offset:offset + 16] = nvram._partition_header(signature, name, length)
    return bytes(out)


def test_overrunning_overlapping_and_empty_partitions():
    raw = build_image("sun4m")
    with pytest.raises(NvramError, match=r"'free' offset 0x0020: length 0x1fc0 overruns .*\(ends at 0x1fe0\)"):
        parse_image(_with_header(raw, 0x20, 0x7F, "free", 0x1FC0))
    # System partition claims 0x40 bytes: it overlaps the free partition's
    # header, so the walk lands mid-partition at 0x40 on zeros.
    with pytest.raises(NvramError, match="offset 0x0040: length 0 is shorter than its header"):
        parse_image(_with_header(raw, 0, 0x70, "system", 0x40))
    with pytest.raises(NvramError, match="'system' offset 0x0000: length 0x1fe0 overruns"):
        parse_image(_with_header(raw, 0, 0x70, "system", 0x1FE0))
    with pytest.raises(NvramError, match="shorter than its header"):
        parse_image(_with_header(raw, 0x20, 0x7F, "free", 0))


def test_all_zero_dump_is_refused():
    # What a sun4u read returns before OpenBIOS opens the bridge (§1).
    with pytest.raises(NvramError, match="NVRAM offset 0x0000: length 0 is shorter than its header"):
        parse_image(bytes(NVRAM_SIZE))


def test_missing_or_duplicate_system_partition():
    raw = build_image("sun4m")
    with pytest.raises(NvramError, match="no system partition"):
        parse_image(_with_header(raw, 0, 0x71, "system", 0x20))
    two = _with_header(_with_header(raw, 0x20, 0x70, "system", 0x20), 0x40, 0x7F, "free", 0x1F90)
    with pytest.raises(NvramError, match="more than one system partition"):
        parse_image(two)


def test_bad_option_strings_in_a_dump():
    raw = build_image("sun4m", {"a": "b"})
    with pytest.raises(NvramError, match=r"offset 0x0010: entry 'abb' is not name=value"):
        parse_image(_corrupt(raw, 0x11, ord("b")))
    with pytest.raises(NvramError, match="entry '==b' is not name=value"):
        parse_image(_corrupt(raw, 0x10, ord("=")))
    full = bytearray(raw)
    full[0x10:0x20] = b"x=" + b"y" * 14  # no NUL left in the body
    with pytest.raises(NvramError, match="'system' offset 0x0010: options are not terminated"):
        parse_image(bytes(full))


def test_bad_idprom():
    raw = build_image("sun4u", mac="52:54:00:12:34:56")
    with pytest.raises(NvramError, match=r"'idprom' offset 0x1fe7: bad IDPROM checksum 0x86, expected 0x87"):
        parse_image(_corrupt(raw, IDPROM_OFFSET + 15, 0x86))
    with pytest.raises(NvramError, match="bad IDPROM checksum"):
        parse_image(_corrupt(raw, IDPROM_OFFSET + 3, 0))
    with pytest.raises(NvramError, match="IDPROM format 0x02"):
        parse_image(_corrupt(raw, IDPROM_OFFSET, 2))


@pytest.mark.parametrize("kwargs,reason", [
    ({"mac": "52:54:00:12:34"}, "not of the form"),
    ({"mac": "52:54:00:12:34:zz"}, "non-hex"),
    ({"mac": b"\0" * 5}, "6 bytes"),
    ({"hostid": 1 << 24}, "24 bits"),
    ({"hostid": b"\0\0"}, "3 bytes"),
    ({"machine_type": 256}, "not a byte"),
    ({"date": -1}, "32 bits"),
])
def test_bad_idprom_inputs(kwargs, reason):
    with pytest.raises(NvramError, match=reason):
        build_image("sun4m", **kwargs)


def test_mask_clock_per_chip():
    raw = bytes(range(256)) * 32
    assert mask_clock(raw, "sun4m")[0x1FF0:0x1FF8] == raw[0x1FF0:0x1FF8]
    assert mask_clock(raw, "sun4m")[0x1FF8:] == bytes(8)
    assert mask_clock(raw, "sun4u")[0x1FF0:] == bytes(16)
    assert mask_clock(raw, "SS-10")[:0x1FF8] == raw[:0x1FF8]


# ---------------------------------------------------- live QEMU comparisons

LIVE_OPTIONS = [
    ("auto-boot?", "false"),
    ("boot-device", "net"),
    ("my-var", "hello world"),
    ("empty-var", ""),
    ("eq", "x=y"),
    ("dup", "1"),
    ("dup", "2"),
    ("utf8", "grüße"),
]


@pytest.mark.parametrize("board", [
    pytest.param(b, marks=_needs(b))
    for b in ["SS-5", "SS-10", "SS-20", "SS-600MP", "SS-4", "LX", "SPARCClassic",
              "SPARCbook", "Voyager", "sun4u"]
])
def test_qemu_default_image_is_byte_identical(board):
    # -nodefaults: no NIC configured; sun4m writes a zero MAC, sun4u its
    # default 52:54:00:12:34:56 (measured).
    mac = "52:54:00:12:34:56" if board == "sun4u" else "00:00:00:00:00:00"
    dump = qemu_nvram(board)
    machine = "sun4u" if board == "sun4u" else "sun4m"
    assert mask_clock(dump, machine) == build_image(board, mac=mac)


@pytest.mark.parametrize("board", [pytest.param(b, marks=_needs(b)) for b in ["SS-5", "SS-10", "sun4u"]])
def test_qemu_image_with_prom_env_and_mac_is_byte_identical(board):
    mac = "02:12:34:ab:cd:ef"
    machine = "sun4u" if board == "sun4u" else "sun4m"
    dump = qemu_nvram(board, [f"{n}={v}" for n, v in LIVE_OPTIONS], mac)
    assert mask_clock(dump, machine) == build_image(board, LIVE_OPTIONS, mac=mac)
    image = parse_image(dump)
    assert image.options == tuple(LIVE_OPTIONS) and image.idprom.mac_text == mac


@pytest.mark.parametrize("board", [pytest.param(b, marks=_needs(b)) for b in ["SS-5", "sun4u"]])
@pytest.mark.parametrize("system_end,lengths", [
    (0x1FC0, [0x1FC0, 0x10]),  # the free partition is just its header
    (0x1FD0, [0x1FD0]),        # no free partition; stray header at 0x1fd0
])
def test_qemu_fullest_system_partition_is_byte_identical(board, system_end, lengths):
    machine = "sun4u" if board == "sun4u" else "sun4m"
    # body: "k=" + v + NUL, "k2=" + 35 w + NUL, end NUL; header 16.
    fill = [("k", "v" * (system_end - 16 - 3 - 39 - 1)), ("k2", "w" * 35)]
    mac = "52:54:00:12:34:56"
    built = build_image(board, fill, mac=mac)
    assert [p.length for p in parse_image(built).partitions] == lengths
    dump = qemu_nvram(board, nvram.prom_env_args(fill)[1::2], mac)
    assert mask_clock(dump, machine) == built


@_needs("SS-5")
def test_qemu_refuses_or_corrupts_what_vhw_refuses():
    # Strings + NULs of 0x1fc1 bytes: QEMU exits.
    assert "NVRAM is too small" in qemu_refuses("SS-5", ["k=" + "v" * (0x1FC1 - 3)])
    with pytest.raises(NvramError, match="system partition can hold at most"):
        build_image("SS-5", [("k", "v" * (0x1FC1 - 3))])
    # Exactly 0x1fc0: QEMU starts, but its system partition claims 0x1fe0
    # bytes and its free header lands in the IDPROM date field.
    exact = "v" * (0x1FC0 - 3)
    with pytest.raises(NvramError, match="system partition can hold at most"):
        build_image("SS-5", [("k", exact)])
    dump = qemu_nvram("SS-5", ["k=" + exact])
    assert dump[0x1FE0:0x1FE4] == bytes.fromhex("7f 23 ff ff")
    with pytest.raises(NvramError, match="'system' offset 0x0000: length 0x1fe0 overruns"):
        parse_image(dump)


@_needs("SS-5")
def test_set_option_image_equals_what_qemu_builds_for_the_new_options():
    mac = "52:54:00:aa:bb:cc"
    before = qemu_nvram("SS-5", ["a=1", "b=2"], mac)
    edited = unset_option(set_option(set_option(before, "b", "two"), "c", "3"), "a")
    after = qemu_nvram("SS-5", ["b=two", "c=3"], mac)
    assert mask_clock(edited, "sun4m") == mask_clock(after, "sun4m")
