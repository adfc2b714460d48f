"""The EEPROM store (vhw.prom.options) and `vhw prom` offline commands.

openprom-sparc.md §12.3: "A machine's options, IDPROM and (optionally) the
raw image live in the project's store and are updated atomically between
runs. The structured options are the truth; the image is derived."
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from vhw.cli import main
from vhw.prom import nvram
from vhw.prom.machine import build_argv
from vhw.prom.options import Change, PromOptions, captured_changes, sun4m_boot_letter, text_value
from vhw.store import Store


def test_initial_options_fill_a_new_store_only():
    store = Store(None)
    prom = PromOptions(store, "sun4u", mac="52:54:00:AA:BB:CC", initial=[("a", "1"), ("b", "2")])
    assert prom.options() == [("a", "1"), ("b", "2")] and prom.mac == "52:54:00:aa:bb:cc"
    prom.unset("a")
    again = PromOptions(store, "sun4u", mac="52:54:00:00:00:01", initial=[("a", "1")])
    assert again.options() == [("b", "2")]  # the store, not the description, is the truth
    assert again.mac == "52:54:00:aa:bb:cc"


def test_set_replaces_in_place_and_appends_new_names():
    prom = PromOptions(Store(None), "sun4u", initial=[("a", "1"), ("b", "2")])
    assert prom.set("a", "9") == Change("a", "1", "9")
    assert prom.set("c", "3") == Change("c", None, "3")
    assert prom.set("c", "3") is None
    assert prom.options() == [("a", "9"), ("b", "2"), ("c", "3")]


@pytest.mark.parametrize("name,value,why", [
    ("a=b", "x", "contains '='"),
    ("nul\0name", "x", "contains NUL"),
    ("", "x", "empty"),
    ("v", "x\0y", "contains NUL"),
    ("big", "x" * 0x2000, "system partition can hold at most"),
])
def test_bad_edits_are_refused_and_nothing_is_written(name, value, why):
    """Issue 7.7: option names with '=' or NUL, values too long for the
    partition: clear errors, nothing written."""
    prom = PromOptions(Store(None), "sun4u", initial=[("keep", "me")])
    with pytest.raises(nvram.NvramError, match=why):
        prom.set(name, value)
    assert prom.options() == [("keep", "me")]


def test_the_image_is_qemus_image_for_the_stored_options():
    prom = PromOptions(Store(None), "SS-5", mac="52:54:00:aa:bb:cc",
                       initial=[("my-var", "hello world"), ("boot-device", "net")])
    image = nvram.parse_image(prom.image())
    # boot-device is routed through -boot on sun4m, not NVRAM (§5)
    assert image.options == (("my-var", "hello world"),)
    assert image.idprom.mac_text == "52:54:00:aa:bb:cc" and image.idprom.machine_type == 0x80
    assert prom.image() == nvram.build_image("SS-5", [("my-var", "hello world")], mac="52:54:00:aa:bb:cc")


def test_import_takes_options_and_mac_all_or_nothing():
    prom = PromOptions(Store(None), "sun4u", initial=[("old", "1")])
    image = nvram.build_image("sun4u", [("x", "1"), ("y", "two words")], mac="52:54:00:01:02:03")
    changes = prom.import_image(image)
    assert [str(c) for c in changes] == ["+ x=1", "+ y=two words", "- old (was '1')"]
    assert prom.mac == "52:54:00:01:02:03"
    bad = bytearray(image)
    bad[1] ^= 0xFF  # system partition header checksum
    for broken in (bytes(bad), image[:100], image + b"\0"):
        with pytest.raises(nvram.NvramError):
            prom.import_image(broken)
    assert prom.options() == [("x", "1"), ("y", "two words")]


def test_sun4m_boot_device_must_be_expressible_with_boot():
    assert sun4m_boot_letter("disk:a disk") == "c" and sun4m_boot_letter("net") == "n"
    prom = PromOptions(Store(None), "SS-5")
    with pytest.raises(nvram.NvramError, match="-boot"):
        prom.set("boot-device", "/iommu/sbus/le")
    # sun4u takes any boot-device through NVRAM
    assert PromOptions(Store(None), "sun4u").set("boot-device", "/pci/ebus/le") is not None


def test_text_value_drops_one_nul_and_refuses_inner_nuls():
    assert text_value(b"abc\0") == "abc" and text_value(b"abc") == "abc" and text_value(b"\0") == ""
    assert text_value(b"a\0b") is None


def test_captured_changes_keep_only_real_changes():
    stored = {"my-var": "injected", "keep": "same"}
    firmware = {"my-var": b"set-from-guest", "keep": b"same\0", "auto-boot?": b"true\0",
                "new": b"x\0", "boot-device": b"disk:a disk\0", "weird": b"a\0b"}
    pairs, warnings = captured_changes(stored, firmware, {"auto-boot?": "true"}, family="sun4m")
    assert pairs == [("my-var", "set-from-guest"), ("keep", "same"), ("new", "x")]
    assert len(warnings) == 1 and "weird" in warnings[0]
    pairs, _ = captured_changes(stored, firmware, {"auto-boot?": "true"}, family="sun4u")
    assert ("boot-device", "disk:a disk") in pairs  # sun4u keeps it in NVRAM


def test_sigkill_during_edits_keeps_old_or_new_options(tmp_path):
    """A writer killed with SIGKILL mid-edit: the options are one committed
    state (each replace is one transaction), the file is intact."""
    db = tmp_path / "m.db"
    writer = textwrap.dedent(f"""
        from vhw.store import Store
        from vhw.prom.options import PromOptions
        prom = PromOptions(Store({str(db)!r}), "sun4u")
        i = int(prom.get("n") or 0)
        while True:
            i += 1
            prom.replace([("n", str(i))] + [(f"v{{k}}", str(i)) for k in range(20)])
            print(i, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    committed = 0
    for line in proc.stdout:
        committed = int(line)
        if committed >= 50:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(db)
    assert store.check() == "ok"
    options = dict(PromOptions(store, "sun4u").options())
    n = options["n"]
    assert int(n) >= committed and all(options[f"v{k}"] == n for k in range(20))


def _machine_file(tmp_path, guest="linux-sparc64", extra=""):
    path = tmp_path / "m.toml"
    path.write_text(f'[machine]\nname = "sp"\nguest = "{guest}"\nstate = "{tmp_path}/state"\n'
                    f'[prom.options]\n"vhw-test-var" = "initial"\n{extra}')
    return str(path)


def test_cli_set_get_unset_export_import_diff(tmp_path, capsys):
    m = _machine_file(tmp_path)
    assert main(["prom", "set", "-m", m, "my-var", "hello world"]) == 0
    assert main(["prom", "get", "-m", m, "my-var"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "hello world"
    image = tmp_path / "nv.bin"
    assert main(["prom", "export", "-m", m, str(image)]) == 0
    assert nvram.parse_image(image.read_bytes()).options == (("vhw-test-var", "initial"), ("my-var", "hello world"))
    assert main(["prom", "diff", "-m", m, "--image", str(image)]) == 0
    assert main(["prom", "unset", "-m", m, "my-var"]) == 0
    assert main(["prom", "get", "-m", m, "my-var"]) == 1
    assert main(["prom", "diff", "-m", m, "--image", str(image)]) == 1
    assert "+ my-var=hello world" in capsys.readouterr().out
    assert main(["prom", "import", "-m", m, str(image)]) == 0
    assert main(["prom", "list", "-m", m]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["vhw-test-var=initial", "my-var=hello world"]


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    m = _machine_file(tmp_path)
    assert main(["prom", "set", "-m", m, "a=b", "x"]) == 2
    assert "contains '='" in capsys.readouterr().err
    (tmp_path / "short.bin").write_bytes(b"\0" * 100)
    assert main(["prom", "import", "-m", m, str(tmp_path / "short.bin")]) == 2
    assert "truncated" in capsys.readouterr().err
    x86 = tmp_path / "x86.toml"
    x86.write_text('[machine]\nstate = "s"\n')
    assert main(["prom", "list", "-m", str(x86)]) == 2
    assert "not a SPARC machine" in capsys.readouterr().err
    nostate = tmp_path / "nostate.toml"
    nostate.write_text('[machine]\nguest = "linux-sparc32"\n')
    assert main(["prom", "list", "-m", str(nostate)]) == 2
    assert "no state directory" in capsys.readouterr().err


class _Image:
    def __init__(self, tmp_path, guest):
        self.guest = type("G", (), {"qemu": "qemu-system-sparc64" if guest == "linux-sparc64" else "qemu-system-sparc"})
        self.kernel = tmp_path / "vmlinux"
        self.initrd = tmp_path / "initramfs.cpio"


def test_argv_injects_the_store_and_routes_sun4m_boot_options(tmp_path):
    from vhw.machine.description import parse_description

    desc = parse_description({"machine": {"guest": "linux-sparc32"}})
    prom = PromOptions(Store(None), "SS-5", mac="52:54:00:aa:bb:cc",
                       initial=[("my-var", "a b"), ("boot-device", "net"), ("boot-file", "single")])
    argv = build_argv(desc, _Image(tmp_path, "linux-sparc32"), prom, qmp_fd=3, console_fd=4, qemu="qemu")
    assert argv[argv.index("-M") + 1] == "SS-5" and argv[argv.index("-accel") + 1] == "tcg"
    assert argv[argv.index("-boot") + 1] == "n"
    assert argv[argv.index("-append") + 1] == "console=ttyS0 single"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-prom-env"] == ["my-var=a b"]
    assert "user,model=lance,mac=52:54:00:aa:bb:cc,restrict=on" in argv
    desc = parse_description({"machine": {"guest": "linux-sparc64"}})
    prom = PromOptions(Store(None), "sun4u", initial=[("boot-device", "net")])
    argv = build_argv(desc, _Image(tmp_path, "linux-sparc64"), prom, qmp_fd=3, console_fd=4, qemu="qemu")
    assert "-boot" not in argv and [argv[i + 1] for i, a in enumerate(argv) if a == "-prom-env"] == ["boot-device=net"]
