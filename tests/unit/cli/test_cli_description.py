"""`vhw run`'s command-line overrides apply to the description, keeping the rest of it."""

from pathlib import Path

import pytest

from vhw.cli import _load_description, build_parser
from vhw.errors import DescriptionError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "small-1u.toml"


def load(*argv):
    return _load_description(build_parser().parse_args(["run", *argv, "--", "true"]))


def test_defaults_without_a_file():
    desc = load()
    assert desc.machine.guest == "linux-x86" and desc.bmc is None


def test_ipmi_override_keeps_the_description_s_bmc_settings():
    desc = load("--machine", str(EXAMPLE), "--ipmi", "bt", "--state", "/tmp/s")
    assert desc.bmc.interfaces == ("bt",) and desc.bmc.backend == "vhw"
    assert len(desc.bmc.config.sensors) == 6  # users, sensors, FRU ... survive the override
    assert desc.machine.name == "small-1u" and desc.machine.state == "/tmp/s"


def test_another_backend_drops_the_vhw_only_settings():
    desc = load("--machine", str(EXAMPLE), "--bmc-backend", "qemu")
    assert desc.bmc.backend == "qemu" and desc.bmc.interfaces == ("kcs",)


def test_ipmi_alone_attaches_vhw_s_bmc_and_overrides_are_validated():
    assert load("--ipmi", "kcs,ssif").bmc.interfaces == ("kcs", "ssif")
    with pytest.raises(DescriptionError, match="bmc.interfaces"):
        load("--ipmi", "smic")
