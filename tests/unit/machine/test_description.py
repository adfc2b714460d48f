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


def test_i2o_iops_get_slots_in_order_and_their_disks(tmp_path):
    desc = parse_description({"i2o": [
        {"disk": [{"image": "a.img", "size": 8}, {"image": "b.img", "cache": "write-back", "read-only": True,
                                                   "block-size": 4096}]},
        {"slot": 20},
        {}]})
    assert [s.slot for s in desc.i2o] == [0x10, 20, 0x12]
    a, b = desc.i2o[0].disks
    assert (a.image, a.size, a.write_back, a.block_size, a.read_only) == ("a.img", 8, False, 512, False)
    assert (b.write_back, b.block_size, b.read_only) == (True, 4096, True)
    # I2O 0Eh class is fixed; the IDs default to the experimental 1234h vendor.
    assert (desc.i2o[1].vendor_id, desc.i2o[1].device_id) == (0x1234, 0x0E01)
    assert parse_description({}).i2o == ()


@pytest.mark.parametrize("table, key, words", [
    ({"i2o": 3}, "i2o", "array of tables"),
    ({"i2o": [{"slot": 0}]}, "i2o[0].slot", "between 1 and 30"),
    ({"i2o": [{"slot": 5}, {"slot": 5}]}, "i2o[1].slot", "already used"),
    ({"i2o": [{"disk": [{}]}]}, "i2o[0].disk[0].image", "required"),
    ({"i2o": [{"disk": [{"image": "x", "cache": "lazy"}]}]}, "i2o[0].disk[0].cache", "write-through, write-back"),
    ({"i2o": [{"disk": [{"image": "x", "block-size": 100}]}]}, "i2o[0].disk[0].block-size", "512, 1024"),
    ({"i2o": [{"disk": [{"image": "x", "size": 0}]}]}, "i2o[0].disk[0].size", "between 1"),
    ({"i2o": [{"disks": []}]}, "i2o[0].disks", "did you mean 'disk'"),
])
def test_i2o_errors_name_the_key(table, key, words):
    with pytest.raises(DescriptionError) as info:
        parse_description(table, "t.toml")
    assert info.value.key == key and words in info.value.reason


@pytest.mark.parametrize("key, table, why", [
    ("bmc", {"interfaces": ["kcs"]}, "no IPMI interface devices"),
    ("i2o", [{"slot": 3}], "without x-pci-proxy-dev"),
])
def test_a_sparc_machine_refuses_a_bmc_or_an_iop_and_says_why(key, table, why):
    with pytest.raises(DescriptionError) as e:
        parse_description({"machine": {"guest": "linux-sparc64"}, key: table})
    assert e.value.key == key and "SPARC machine sun4u" in str(e.value) and why in str(e.value)
