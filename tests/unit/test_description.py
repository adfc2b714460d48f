"""The machine description schema: defaults, validation, messages naming the key."""

import pytest

from vhw.errors import DescriptionError
from vhw.machine.description import default_description, load_description, parse_description


def test_defaults_boot_the_offline_linux_guest_under_tcg():
    desc = parse_description({})
    m = desc.machine
    assert (m.guest, m.memory, m.cpus, m.accel, m.type, m.firmware) == ("linux-x86", 256, 1, "tcg", "q35", "qboot")
    assert desc.bmc is None


def test_a_full_machine_table_is_read():
    desc = parse_description({"machine": {
        "name": "n1", "guest": "linux-x86", "memory": 512, "cpus": 2, "accel": "auto", "type": "pc",
        "firmware": "seabios", "append": "vhw.debug=1", "modules": ["ipmi_watchdog"], "boot-timeout": 30}})
    m = desc.machine
    assert (m.name, m.memory, m.cpus, m.accel, m.type, m.firmware) == ("n1", 512, 2, "auto", "pc", "seabios")
    assert m.modules == ("ipmi_watchdog",) and m.boot_timeout == 30.0


@pytest.mark.parametrize("table, key, words", [
    ({"machine": {"memory": "lots"}}, "machine.memory", "must be a int"),
    ({"machine": {"memory": 8}}, "machine.memory", "between 64 and 65536"),
    ({"machine": {"memory": True}}, "machine.memory", "must be a number"),
    ({"machine": {"accel": "hvf"}}, "machine.accel", "one of tcg, kvm, auto"),
    ({"machine": {"type": "virt"}}, "machine.type", "one of q35, pc"),
    ({"machine": {"modules": ["ok", 3]}}, "machine.modules[1]", "non-empty string"),
    ({"machine": {"memroy": 256}}, "machine.memroy", "did you mean 'memory'"),
    ({"machine": {"name": "a b"}}, "machine.name", "letters, digits"),
    ({"machine": {"boot-timeout": 0}}, "machine.boot-timeout", "positive"),
    ({"machine": []}, "machine", "must be a table"),
    ({"machnie": {}}, "machnie", "did you mean 'machine'"),
    ({"bmc": {"backend": "qemu", "interfaces": ["kcs", "smic"]}}, "bmc.interfaces[1]", "one of kcs, bt, ssif"),
    ({"bmc": {"backend": "qemu", "interfaces": []}}, "bmc.interfaces", "at least one"),
    ({"bmc": {"backend": "qemu", "interfaces": ["kcs", "kcs"]}}, "bmc.interfaces", "twice"),
    ({"bmc": {"backend": "extern"}}, "bmc.address", "required"),
    ({"bmc": {"backend": "qemu", "address": "127.0.0.1:1"}}, "bmc.address", "only meaningful"),
    ({"bmc": {"backend": "qemu", "sdr": 1}}, "bmc.sdr", "unknown key"),
])
def test_errors_name_the_key_and_the_reason(table, key, words):
    with pytest.raises(DescriptionError) as info:
        parse_description(table, "t.toml")
    assert info.value.key == key
    assert words in info.value.reason
    assert str(info.value).startswith(f"t.toml: {key}: ")


def test_load_reports_toml_syntax_errors_and_missing_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[machine\n")
    with pytest.raises(DescriptionError) as info:
        load_description(bad)
    assert info.value.key == "<toml>" and str(bad) in str(info.value)
    with pytest.raises(DescriptionError) as info:
        load_description(tmp_path / "missing.toml")
    assert "cannot read" in str(info.value)


def test_load_reads_a_file(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text('[machine]\nname = "x"\nmemory = 128\n[bmc]\nbackend = "extern"\naddress = "127.0.0.1:9002"\n'
                 'interfaces = ["bt"]\n')
    desc = load_description(f)
    assert desc.machine.name == "x" and desc.machine.memory == 128
    assert desc.bmc.backend == "extern" and desc.bmc.address == "127.0.0.1:9002" and desc.bmc.interfaces == ("bt",)


def test_default_description_with_interfaces():
    desc = default_description(interfaces=("kcs", "ssif"), backend="qemu")
    assert desc.bmc.interfaces == ("kcs", "ssif") and desc.bmc.backend == "qemu"
