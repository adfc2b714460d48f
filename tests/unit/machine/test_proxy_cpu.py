"""Where QEMU and its out-of-process devices' threads run (launcher.proxy_cpu)."""

import pytest

from vhw.errors import VhwError
from vhw.machine import launcher


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(launcher.os, "sched_getaffinity", lambda pid: {0, 1})


def test_default_is_the_last_allowed_cpu(two_cpus, monkeypatch):
    monkeypatch.delenv("VHW_PROXY_CPU", raising=False)
    assert launcher.proxy_cpu() == 1


def test_env_picks_a_cpu_or_turns_pinning_off(two_cpus, monkeypatch):
    monkeypatch.setenv("VHW_PROXY_CPU", "0")
    assert launcher.proxy_cpu() == 0
    monkeypatch.setenv("VHW_PROXY_CPU", "none")
    assert launcher.proxy_cpu() is None


@pytest.mark.parametrize("value, words", [("7", "not one of the CPUs"), ("x", "not a CPU number")])
def test_bad_env_values_are_clear_errors(two_cpus, monkeypatch, value, words):
    monkeypatch.setenv("VHW_PROXY_CPU", value)
    with pytest.raises(VhwError, match=words):
        launcher.proxy_cpu()


def test_one_cpu_needs_no_pinning(monkeypatch):
    monkeypatch.delenv("VHW_PROXY_CPU", raising=False)
    monkeypatch.setattr(launcher.os, "sched_getaffinity", lambda pid: {3})
    assert launcher.proxy_cpu() is None
