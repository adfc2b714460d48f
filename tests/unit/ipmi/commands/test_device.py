"""BMC device commands: Cold/Warm Reset, Get Self Test Results, ACPI power
state (IPMI 2.0 chapter 20)."""

from __future__ import annotations

import pytest
from pyipmi.msgs import bmc as pyipmi_bmc

import vhw.ipmi.commands  # noqa: F401  (registers the handlers)
from vhw.ipmi.parts import chassis as chassis_mod
from vhw.ipmi.parts import watchdog as watchdog_mod
from vhw.ipmi.core.assemble import command_table
from vhw.ipmi.core.bmc import CC, Bmc, Context, NetFn, Privilege
from vhw.ipmi.parts.chassis import RestartCause

APP = NetFn.APP
COLD, WARM, SELF_TEST, SET_ACPI, GET_ACPI = 0x02, 0x03, 0x04, 0x06, 0x07
OPERATOR = Context(channel=1, privilege=Privilege.OPERATOR, interface="lan", session_id=5)
USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=6)
WATCHDOG_10S_RESET = bytes([0x04, 0x01, 0, 0, 100, 0])


class ResettablePart:
    def __init__(self):
        self.cold = 0
        self.warm = 0

    def cold_reset(self):
        self.cold += 1

    def warm_reset(self):
        self.warm += 1


def make_bmc() -> Bmc:
    bmc = Bmc(table=command_table())
    bmc.parts["chassis"] = chassis_mod.create_part(bmc, None)
    bmc.parts["watchdog"] = watchdog_mod.create_part(bmc, None)
    bmc.parts["other"] = ResettablePart()
    bmc.parts["chassis"].vm_powered_on(0.0, RestartCause.POWER_BUTTON)
    return bmc


SYSTEM_INTERFACE = Context()  # frozen: safe to share as a default


def call(bmc, cmd, data=b"", now=0.0, ctx=SYSTEM_INTERFACE, netfn=APP):
    return bmc.handle(netfn, cmd, bytes(data), ctx, now)


# -- Get Self Test Results (20.4) ---------------------------------------------------
def test_self_test_passes():
    """20.4: 55h = no error, byte 3 = 00h."""
    rsp = call(make_bmc(), SELF_TEST, ctx=USER)
    assert (rsp.cc, rsp.data) == (0, b"\x55\x00")
    decoded = pyipmi_bmc.GetSelftestResultsRsp()
    decoded._decode(rsp.to_bytes())
    assert decoded.result == pyipmi_bmc.SELFTEST_RESULT_NO_ERROR


def test_self_test_with_data_is_refused():
    assert call(make_bmc(), SELF_TEST, b"\x00").cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED


# -- Cold Reset (20.2) ------------------------------------------------------------------
def test_cold_reset_answers_first_then_resets_volatile_state():
    bmc = make_bmc()
    assert call(bmc, 0x24, WATCHDOG_10S_RESET).cc == 0
    assert call(bmc, 0x22).cc == 0
    assert call(bmc, 0x04, b"\x00\x01", netfn=NetFn.CHASSIS).cc == 0  # identify on
    assert call(bmc, SET_ACPI, b"\x80\x80").cc == 0

    rsp = call(bmc, COLD, now=1.0)
    assert (rsp.cc, rsp.data) == (0, b"")
    assert bmc.parts["watchdog"].running, "nothing happens before the answer is out"
    assert bmc.next_deadline() == 1.0, "the runner is asked to poll right away"

    bmc.poll(1.0)
    assert bmc.parts["other"].cold == 1
    assert bmc.parts["other"].warm == 0
    assert not bmc.parts["watchdog"].running
    assert call(bmc, 0x22, now=1.0).cc == 0x80, "watchdog back to never set"
    assert call(bmc, GET_ACPI, now=1.0).data == b"\x2a\x2a"
    status = call(bmc, 0x01, now=1.0, netfn=NetFn.CHASSIS).data
    assert status[0] & 0x01 == 1, "the host stays powered: only the BMC restarted"
    assert (status[2] >> 4) & 3 == 0, "identify off"
    assert bmc.take_actions() == []
    bmc.poll(2.0)
    assert bmc.parts["other"].cold == 1, "one reset per request"


def test_cold_reset_happens_at_the_next_request_if_nobody_polls():
    bmc = make_bmc()
    call(bmc, 0x24, WATCHDOG_10S_RESET)
    call(bmc, COLD, now=1.0)
    assert call(bmc, 0x22, now=2.0).cc == 0x80


# -- Warm Reset (20.3) ------------------------------------------------------------------
def test_warm_reset_keeps_configuration_and_the_running_watchdog():
    """20.3: communication interfaces reset; configuration left alone."""
    bmc = make_bmc()
    call(bmc, 0x24, WATCHDOG_10S_RESET)
    call(bmc, 0x22)
    assert call(bmc, WARM, now=1.0).cc == 0
    bmc.poll(1.0)
    assert bmc.parts["other"].warm == 1
    assert bmc.parts["other"].cold == 0
    assert bmc.parts["watchdog"].running
    assert bmc.parts["watchdog"].present_countdown(1.0) == 90


def test_back_to_back_resets_happen_in_order():
    """The next request's dispatch polls first, so a pending reset is never skipped."""
    bmc = make_bmc()
    call(bmc, COLD, now=1.0)
    call(bmc, WARM, now=1.0)
    assert (bmc.parts["other"].cold, bmc.parts["other"].warm) == (1, 0)
    bmc.poll(1.0)
    assert (bmc.parts["other"].cold, bmc.parts["other"].warm) == (1, 1)


@pytest.mark.parametrize("cmd", [COLD, WARM])
def test_resets_need_administrator(cmd):
    """Appendix G: Cold and Warm Reset are Administrator commands."""
    bmc = make_bmc()
    assert call(bmc, cmd, ctx=OPERATOR).cc == CC.INSUFFICIENT_PRIVILEGE
    assert bmc.next_deadline() is None


@pytest.mark.parametrize("cmd", [COLD, WARM])
def test_resets_take_no_data(cmd):
    bmc = make_bmc()
    assert call(bmc, cmd, b"\x00").cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED
    assert bmc.next_deadline() is None


# -- Set / Get ACPI Power State (20.6, 20.7) ---------------------------------------------
def test_acpi_state_is_unknown_until_set():
    """2Ah = unknown, for both the system and the device state."""
    assert call(make_bmc(), GET_ACPI, ctx=USER).data == b"\x2a\x2a"


def test_acpi_state_set_bits_select_what_changes():
    """20.6: bit 7 of each byte = set this state; 7Fh = no change."""
    bmc = make_bmc()
    assert call(bmc, SET_ACPI, b"\x85\x00").cc == 0  # system S5/G2, device untouched
    assert call(bmc, GET_ACPI).data == b"\x05\x2a"
    assert call(bmc, SET_ACPI, b"\x00\x83").cc == 0  # device D3, system untouched
    assert call(bmc, GET_ACPI).data == b"\x05\x03"
    assert call(bmc, SET_ACPI, b"\xff\x80").cc == 0  # system "no change", device D0
    assert call(bmc, GET_ACPI).data == b"\x05\x00"
    assert call(bmc, SET_ACPI, b"\xa0\x80").cc == 0  # legacy on
    assert call(bmc, GET_ACPI).data == b"\x20\x00"


@pytest.mark.parametrize("data", [b"\x8b\x00", b"\x80\x84", b"\xb0\x00"])
def test_acpi_undefined_states_are_cch_and_change_nothing(data):
    bmc = make_bmc()
    call(bmc, SET_ACPI, b"\x80\x80")
    assert call(bmc, SET_ACPI, data).cc == CC.INVALID_DATA_FIELD
    assert call(bmc, GET_ACPI).data == b"\x00\x00"


@pytest.mark.parametrize(
    "cmd, data, cc",
    [
        (SET_ACPI, b"\x80", CC.REQUEST_LENGTH_INVALID),
        (SET_ACPI, b"\x80\x80\x00", CC.REQUEST_FIELD_LENGTH_EXCEEDED),
        (GET_ACPI, b"\x00", CC.REQUEST_FIELD_LENGTH_EXCEEDED),
    ],
)
def test_acpi_request_lengths(cmd, data, cc):
    assert call(make_bmc(), cmd, data).cc == cc


def test_acpi_privileges():
    """Appendix G: Set ACPI Power State Administrator, Get User."""
    bmc = make_bmc()
    assert call(bmc, SET_ACPI, b"\x80\x80", ctx=OPERATOR).cc == CC.INSUFFICIENT_PRIVILEGE
    assert call(bmc, GET_ACPI, ctx=USER).data == b"\x2a\x2a"


def test_python_ipmi_has_no_acpi_power_state_messages():
    """Why vhw.ipmi.commands.device defines its own: python-ipmi marks them unimplemented."""
    assert pyipmi_bmc.SetAcpiPowerStateReq.__not_implemented__
    assert pyipmi_bmc.GetAcpiPowerStateRsp.__not_implemented__
