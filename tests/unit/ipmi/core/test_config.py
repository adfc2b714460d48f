"""BmcConfig.from_dict: every mistake names its exact key."""

from __future__ import annotations

import uuid

import pytest

from vhw.errors import DescriptionError
from vhw.ipmi.core.config import BmcConfig


def error_for(d: dict) -> DescriptionError:
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict(d)
    return e.value


def test_empty_table_gives_defaults():
    cfg = BmcConfig.from_dict({})
    assert cfg.interfaces == ("kcs",)
    assert [(c.number, c.medium) for c in cfg.channels] == [(0, "ipmb"), (1, "lan")]
    assert cfg.identity.ipmi_version == 0x02
    assert cfg.satellites == ()


def test_full_table():
    cfg = BmcConfig.from_dict({
        "device_id": 0x22, "firmware_major": 3, "firmware_minor": 14, "manufacturer_id": 7154,
        "product_id": 9, "aux_firmware": [1, 2, 3, 4], "additional_support": ["chassis", "sel"],
        "device_guid": "00112233-4455-6677-8899-aabbccddeeff",
        "interfaces": ["ssif", "kcs"],
        "satellites": [{"address": 0x40, "device_id": 7}, {"address": 0x72, "product_id": 2}],
        "system_name": "node1",
    })
    assert cfg.identity.device_id == 0x22 and cfg.identity.additional_support == 0x84
    assert cfg.identity.aux_firmware == b"\x01\x02\x03\x04"
    assert cfg.device_guid == uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    assert cfg.interfaces == ("ssif", "kcs")
    assert cfg.satellite(0, 0x72).identity.product_id == 2
    assert cfg.satellite(0, 0x74) is None
    assert cfg.system_name == "node1"


@pytest.mark.parametrize("d, key, why", [
    ({"satellites": [{"address": 0x40}, {"address": 0x41}]}, "bmc.satellites[1].address", "even IPMB slave address"),
    ({"satellites": [{"address": 0x00}]}, "bmc.satellites[0].address", "0x02..0xFE"),
    ({"satellites": [{"address": 0x20}]}, "bmc.satellites[0].address", "BMC's own address"),
    ({"satellites": [{"address": 0x40}, {"address": 0x40}]}, "bmc.satellites[1].address", "twice"),
    ({"satellites": [{"device_id": 1}]}, "bmc.satellites[0].address", "required"),
    ({"satellites": [{"address": 0x40, "colour": "red"}]}, "bmc.satellites[0].colour", "unknown key"),
    ({"satellites": [{"address": 0x40, "channel": 1}]}, "bmc.satellites[0].channel", "not an IPMB channel"),
    ({"device_id": 256}, "bmc.device_id", "0x0..0xff"),
    ({"firmware_minor": 100}, "bmc.firmware_minor", "0x0..0x63"),
    ({"device_revision": "1"}, "bmc.device_revision", "integer"),
    ({"aux_firmware": [1, 2, 3]}, "bmc.aux_firmware", "4 bytes"),
    ({"additional_support": ["sel", "telepathy"]}, "bmc.additional_support[1]", "must be one of"),
    ({"interfaces": ["kcs", "usb"]}, "bmc.interfaces[1]", "must be one of"),
    ({"interfaces": []}, "bmc.interfaces", "at least one"),
    ({"interfaces": ["kcs", "kcs"]}, "bmc.interfaces[1]", "twice"),
    ({"device_guid": "not-a-uuid"}, "bmc.device_guid", "UUID"),
    ({"channels": [{"number": 14, "medium": "lan"}]}, "bmc.channels[0].number", "0xb"),
    ({"channels": [{"number": 1, "medium": "serial"}]}, "bmc.channels[0].medium", "must be one of"),
    ({"channels": [{"medium": "lan"}]}, "bmc.channels[0].number", "required"),
    ({"channels": [{"number": 1, "medium": "lan"}, {"number": 1, "medium": "ipmb"}]}, "bmc.channels[1].number", "twice"),
    ({"channels": [{"number": 0, "medium": "ipmb", "privilege_limit": "user"}]}, "bmc.channels[0].privilege_limit", "session-based"),
    ({"channels": [{"number": 1, "medium": "lan", "access_mode": "sometimes"}]}, "bmc.channels[0].access_mode", "must be one of"),
    ({"system_name": 5}, "bmc.system_name", "string"),
    ({"system_name": "x" * 300}, "bmc.system_name", "longer than"),
    ({"frobnicate": True}, "bmc.frobnicate", "unknown key"),
])
def test_errors_name_the_exact_key(d, key, why):
    e = error_for(d)
    assert e.key == key
    assert why in e.reason


def test_not_a_table():
    e = error_for([1, 2])
    assert e.key == "bmc" and "table" in e.reason


def test_the_key_prefix_is_the_callers():
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"bogus": 1}, key="machines[2].bmc")
    assert str(e.value) == "machines[2].bmc.bogus: unknown key"


def test_chassis_table_is_validated_by_the_chassis_module_under_our_key():
    from vhw.ipmi.parts.chassis import ChassisConfig

    assert isinstance(BmcConfig.from_dict({"chassis": {}}).chassis, ChassisConfig)
    assert error_for({"chassis": {"bogus": 1}}).key.startswith("bmc.chassis")
