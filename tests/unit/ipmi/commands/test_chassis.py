"""Chassis commands and the chassis part (IPMI 2.0 chapter 28)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pyipmi.msgs import chassis as pyipmi_chassis

import vhw.ipmi.commands  # noqa: F401  (registers the handlers)
from vhw.errors import DescriptionError
from vhw.ipmi.parts import chassis as chassis_mod
from vhw.ipmi.parts import watchdog as watchdog_mod
from vhw.ipmi.core.actions import Power, PowerOp
from vhw.ipmi.core.assemble import command_table
from vhw.ipmi.core.bmc import CC, Bmc, Context, NetFn, Privilege
from vhw.ipmi.parts.chassis import ChassisConfig, IdentifyState, RestartCause

CH = NetFn.CHASSIS
LAN = Context(channel=1, privilege=Privilege.OPERATOR, interface="lan", session_id=7)
USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=8)


class FakeMessaging:
    def __init__(self):
        self.system_resets = 0

    def system_reset(self):
        self.system_resets += 1


def make_bmc(**config) -> Bmc:
    bmc = Bmc(table=command_table())
    bmc.parts["chassis"] = chassis_mod.create_part(bmc, SimpleNamespace(chassis=ChassisConfig(**config)))
    bmc.parts["watchdog"] = watchdog_mod.create_part(bmc, None)
    return bmc


SYSTEM_INTERFACE = Context()  # frozen: safe to share as a default


def call(bmc, cmd, data=b"", now=0.0, ctx=SYSTEM_INTERFACE):
    return bmc.handle(CH, cmd, bytes(data), ctx, now)


def powered_on(bmc, now=0.0) -> Bmc:
    bmc.parts["chassis"].vm_powered_on(now, RestartCause.POWER_BUTTON)
    return bmc


def power_actions(bmc):
    return [a for a in bmc.take_actions() if isinstance(a, Power)]


# -- Get Chassis Capabilities (28.1) -------------------------------------------
def test_capabilities_answer_every_byte_including_bridge_address():
    """Table 28-2: flags, FRU/SDR/SEL/SM device addresses, bridge address.
    ipmi_sim sent no length at all and FreeIPMI timed out (anchors §2)."""
    rsp = call(make_bmc(), 0x00)
    assert rsp.cc == 0
    assert rsp.data == bytes([0x04, 0x20, 0x20, 0x20, 0x20, 0x20])
    decoded = pyipmi_chassis.GetChassisCapabilitiesRsp()
    decoded._decode(rsp.to_bytes())
    assert decoded.bridge_device_address == 0x20
    assert decoded.capabilities_flags.diagnostic_interrupt == 1


def test_capabilities_follow_the_config():
    bmc = make_bmc(intrusion_sensor=True, diagnostic_interrupt=False, sel_device_address=0x22)
    assert call(bmc, 0x00).data == bytes([0x01, 0x20, 0x20, 0x22, 0x20, 0x20])


def test_request_with_trailing_bytes_is_refused():
    """A command without request data given data: request length error (table 5-2)."""
    assert call(make_bmc(), 0x00, b"\x00").cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED
    assert call(make_bmc(), 0x01, b"\x00").cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED
    assert call(make_bmc(), 0x0F, b"\x00").cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED


def test_python_ipmi_fieldless_requests_ignore_trailing_bytes():
    """python-ipmi bug (worked around in the dispatcher): request classes
    without ``__fields__`` decode any data without complaint."""
    pyipmi_chassis.GetChassisStatusReq()._decode(b"\x01\x02")  # accepted: the bug
    assert call(make_bmc(), 0x01, b"\x01\x02").cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED


# -- Get Chassis Status (28.2) --------------------------------------------------
def test_status_reports_power_off_then_on_only_when_the_machine_layer_confirms():
    """Table 28-3 byte 1 [0]: power is on.  A request is not a confirmation."""
    bmc = make_bmc()
    assert call(bmc, 0x01).data[0] & 0x01 == 0
    assert call(bmc, 0x02, b"\x01", ctx=LAN).cc == 0
    assert call(bmc, 0x01).data[0] & 0x01 == 0  # still off: only asked
    bmc.parts["chassis"].vm_powered_on(1.0)
    status = call(bmc, 0x01, now=1.0).data
    assert len(status) == 3
    assert status[0] & 0x01 == 1
    assert status[1] & 0x10, "byte 2 [4]: last power-on was entered via IPMI command"


def test_status_power_on_by_other_means_clears_the_ipmi_bit():
    bmc = make_bmc()
    bmc.parts["chassis"].vm_powered_on(0.0, RestartCause.POWER_BUTTON)
    assert call(bmc, 0x01).data[1] & 0x10 == 0


@pytest.mark.parametrize("policy, bits", [("always-off", 0), ("previous", 1), ("always-on", 2)])
def test_status_reports_restore_policy(policy, bits):
    """Table 28-3 byte 1 [6:5]: 00 stay off, 01 previous, 10 always on."""
    assert (call(make_bmc(power_restore_policy=policy), 0x01).data[0] >> 5) & 0x3 == bits


# -- Chassis Control (28.3) -------------------------------------------------------
def test_power_up_when_off_asks_the_machine_layer_once():
    bmc = make_bmc()
    assert call(bmc, 0x02, b"\x01", ctx=LAN).cc == 0
    assert power_actions(bmc) == [Power(PowerOp.ON, "chassis control power up")]


def test_power_up_when_on_is_success_without_action():
    """Idempotent power (anchors §3 items 3 and 5: Ironic breaks otherwise)."""
    bmc = powered_on(make_bmc())
    assert call(bmc, 0x02, b"\x01", ctx=LAN).cc == 0
    assert power_actions(bmc) == []


def test_power_up_repeated_while_pending_asks_only_once():
    bmc = make_bmc()
    call(bmc, 0x02, b"\x01", ctx=LAN)
    call(bmc, 0x02, b"\x01", ctx=LAN)
    assert len(power_actions(bmc)) == 1


def test_power_up_while_power_down_is_under_way_is_not_lost():
    """A power-on during a shutdown must not be a silent no-op (kubevirtbmc#219)."""
    bmc = powered_on(make_bmc())
    call(bmc, 0x02, b"\x00", ctx=LAN)
    call(bmc, 0x02, b"\x01", ctx=LAN)
    assert [a.op for a in power_actions(bmc)] == [PowerOp.OFF, PowerOp.ON]


def test_power_down_when_on_then_again_while_going_off_then_when_off():
    bmc = powered_on(make_bmc())
    assert call(bmc, 0x02, b"\x00", ctx=LAN).cc == 0
    assert call(bmc, 0x02, b"\x00", ctx=LAN).cc == 0
    assert power_actions(bmc) == [Power(PowerOp.OFF, "chassis control power down")]
    bmc.parts["chassis"].vm_powered_off(5.0)
    assert call(bmc, 0x01, now=5.0).data[0] & 0x01 == 0
    assert call(bmc, 0x02, b"\x00", now=5.0, ctx=LAN).cc == 0
    assert power_actions(bmc) == []


def test_power_cycle_with_power_off_is_refused_with_d5():
    """Table 28-4, power cycle: "recommended that no action occur if system
    power is off (S4/S5) ... and that a D5h ... completion code be returned"."""
    bmc = make_bmc()
    assert call(bmc, 0x02, b"\x02", ctx=LAN).cc == CC.NOT_SUPPORTED_IN_PRESENT_STATE
    assert power_actions(bmc) == []


def test_power_cycle_with_power_on():
    bmc = powered_on(make_bmc())
    assert call(bmc, 0x02, b"\x02", ctx=LAN).cc == 0
    assert power_actions(bmc) == [Power(PowerOp.CYCLE, "chassis control power cycle")]


@pytest.mark.parametrize("control, op", [(3, PowerOp.RESET), (4, PowerOp.NMI)])
def test_reset_and_diagnostic_interrupt_need_power(control, op):
    """Pulse diagnostic interrupt = NMI (ipmi_sim answered CCh; anchors §2)."""
    bmc = make_bmc()
    assert call(bmc, 0x02, bytes([control]), ctx=LAN).cc == CC.NOT_SUPPORTED_IN_PRESENT_STATE
    assert power_actions(bmc) == []
    powered_on(bmc)
    assert call(bmc, 0x02, bytes([control]), ctx=LAN).cc == 0
    assert [a.op for a in power_actions(bmc)] == [op]


def test_soft_shutdown_when_on_and_when_off():
    """Option 5: ACPI power button; with power already off there is nothing to do."""
    bmc = make_bmc()
    assert call(bmc, 0x02, b"\x05", ctx=LAN).cc == 0
    assert power_actions(bmc) == []
    powered_on(bmc)
    assert call(bmc, 0x02, b"\x05", ctx=LAN).cc == 0
    assert power_actions(bmc) == [Power(PowerOp.SOFT_OFF, "chassis control soft shutdown")]


@pytest.mark.parametrize("data", [b"\x06", b"\x0f", b"\x11"])
def test_undefined_control_values_are_invalid_data(data):
    """Table 28-4: 06h..0Fh undefined, [7:4] reserved."""
    bmc = powered_on(make_bmc())
    assert call(bmc, 0x02, data, ctx=LAN).cc == CC.INVALID_DATA_FIELD
    assert power_actions(bmc) == []


@pytest.mark.parametrize("data, cc", [(b"", CC.REQUEST_LENGTH_INVALID), (b"\x01\x00", CC.REQUEST_FIELD_LENGTH_EXCEEDED)])
def test_chassis_control_request_length(data, cc):
    bmc = make_bmc()
    assert call(bmc, 0x02, data, ctx=LAN).cc == cc
    assert power_actions(bmc) == []


def test_chassis_control_needs_operator():
    """Appendix G: Chassis Control is an Operator command; Get Chassis Status is User."""
    bmc = powered_on(make_bmc())
    assert call(bmc, 0x02, b"\x00", ctx=USER).cc == CC.INSUFFICIENT_PRIVILEGE
    assert power_actions(bmc) == []
    assert call(bmc, 0x01, ctx=USER).cc == 0


# -- Chassis Identify (28.5) --------------------------------------------------------
def test_identify_default_interval_is_15_seconds():
    """Byte 1 absent: 15 s.  Status byte 3 [5:4]: 01b = timed on; [6] = supported."""
    bmc = make_bmc()
    assert call(bmc, 0x04, b"", now=100.0, ctx=LAN).cc == 0
    assert call(bmc, 0x01, now=114.9).data[2] == 0x40 | (IdentifyState.TIMED << 4)
    assert call(bmc, 0x01, now=115.0).data[2] == 0x40


def test_identify_interval_zero_turns_it_off_and_force_wins():
    bmc = make_bmc()
    call(bmc, 0x04, b"\x05", now=0.0, ctx=LAN)
    assert (call(bmc, 0x01, now=4.0).data[2] >> 4) & 3 == IdentifyState.TIMED
    call(bmc, 0x04, b"\x00", now=4.0, ctx=LAN)
    assert (call(bmc, 0x01, now=4.0).data[2] >> 4) & 3 == IdentifyState.OFF
    call(bmc, 0x04, b"\x00\x01", now=5.0, ctx=LAN)  # byte 2 [0] overrides byte 1
    assert (call(bmc, 0x01, now=1e6).data[2] >> 4) & 3 == IdentifyState.INDEFINITE


def test_identify_request_length_and_privilege():
    bmc = make_bmc()
    assert call(bmc, 0x04, b"\x05\x00\x00", ctx=LAN).cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED
    assert call(bmc, 0x04, b"\x05", ctx=USER).cc == CC.INSUFFICIENT_PRIVILEGE


# -- Set Power Restore Policy (28.8) -------------------------------------------------
def test_restore_policy_no_change_reports_supported_policies():
    """Byte 1 = 3: no change; response byte 2 [2:0] = supported policies."""
    bmc = make_bmc()
    rsp = call(bmc, 0x06, b"\x03", ctx=LAN)
    assert (rsp.cc, rsp.data) == (0, b"\x07")
    assert bmc.parts["chassis"].restore_policy == "always-off"


def test_restore_policy_set_shows_in_status():
    bmc = make_bmc()
    assert call(bmc, 0x06, b"\x02", ctx=LAN).cc == 0
    assert (call(bmc, 0x01).data[0] >> 5) & 3 == 2
    assert call(bmc, 0x06, b"\x01", ctx=LAN).cc == 0
    assert bmc.parts["chassis"].restore_policy == "previous"


def test_restore_policy_invalid_values():
    bmc = make_bmc()
    assert call(bmc, 0x06, b"\x04", ctx=LAN).cc == CC.INVALID_DATA_FIELD
    assert call(bmc, 0x06, b"", ctx=LAN).cc == CC.REQUEST_LENGTH_INVALID
    assert call(bmc, 0x06, b"\x02", ctx=USER).cc == CC.INSUFFICIENT_PRIVILEGE
    assert bmc.parts["chassis"].restore_policy == "always-off"


@pytest.mark.parametrize(
    "policy, previous_on, cause",
    [("always-on", False, RestartCause.POLICY_ALWAYS_ON), ("previous", True, RestartCause.POLICY_PREVIOUS)],
)
def test_restore_policy_powers_on_at_start(policy, previous_on, cause):
    bmc = make_bmc(power_restore_policy=policy)
    chassis = bmc.parts["chassis"]
    assert chassis.apply_power_restore_policy(previous_on) is True
    assert [a.op for a in power_actions(bmc)] == [PowerOp.ON]
    chassis.vm_powered_on(1.0)
    assert call(bmc, 0x07, now=1.0).data[0] == cause


@pytest.mark.parametrize("policy, previous_on", [("always-off", True), ("previous", False)])
def test_restore_policy_leaves_power_off(policy, previous_on):
    bmc = make_bmc(power_restore_policy=policy)
    assert bmc.parts["chassis"].apply_power_restore_policy(previous_on) is False
    assert power_actions(bmc) == []


# -- Get System Restart Cause (28.11) ---------------------------------------------------
def test_restart_cause_is_command_07_and_unknown_at_first():
    """Command 07h (QEMU's ipmi-bmc-sim answers it at 09h, which is Get System
    Boot Options).  Byte 2 [3:0] cause (table 28-11), byte 3 channel."""
    rsp = call(make_bmc(), 0x07)
    assert (rsp.cc, rsp.data) == (0, bytes([RestartCause.UNKNOWN, 0]))


def test_restart_cause_after_chassis_control_reset_names_the_channel():
    bmc = powered_on(make_bmc())
    call(bmc, 0x02, b"\x03", ctx=LAN)
    bmc.parts["chassis"].vm_reset(2.0)
    assert call(bmc, 0x07, now=2.0).data == bytes([RestartCause.CHASSIS_CONTROL, LAN.channel])


def test_restart_cause_after_guest_reboot():
    """A reset nobody at the BMC asked for is the guest's own (machine layer says so)."""
    bmc = powered_on(make_bmc())
    bmc.parts["chassis"].vm_reset(2.0, RestartCause.SOFT_RESET)
    assert call(bmc, 0x07, now=2.0).data[0] == RestartCause.SOFT_RESET
    bmc.parts["chassis"].vm_reset(3.0)
    assert call(bmc, 0x07, now=3.0).data[0] == RestartCause.UNKNOWN


def test_restart_cause_after_power_cycle_spans_off_and_on():
    bmc = powered_on(make_bmc())
    call(bmc, 0x02, b"\x02", ctx=LAN)
    chassis = bmc.parts["chassis"]
    chassis.vm_powered_off(1.0)
    chassis.vm_powered_on(2.0)
    assert call(bmc, 0x07, now=2.0).data[0] == RestartCause.CHASSIS_CONTROL


# -- Get POH Counter (28.14) -----------------------------------------------------------
def test_poh_counts_only_while_powered_on():
    bmc = make_bmc(poh_minutes_per_count=1)
    chassis = bmc.parts["chassis"]

    def poh(now):
        rsp = call(bmc, 0x0F, now=now)
        assert rsp.cc == 0 and len(rsp.data) == 5
        assert rsp.data[0] == 1  # minutes per count
        return int.from_bytes(rsp.data[1:], "little")

    assert poh(50.0) == 0
    chassis.vm_powered_on(100.0)
    assert poh(159.0) == 0
    assert poh(160.0) == 1
    chassis.vm_powered_off(190.0)  # 90 s on
    assert poh(5000.0) == 1
    chassis.vm_powered_on(6000.0)
    assert poh(6029.0) == 1
    assert poh(6030.0) == 2  # 120 s on


def test_poh_default_counts_hours():
    bmc = powered_on(make_bmc())
    rsp = call(bmc, 0x0F, now=2 * 3600.0 + 1)
    assert rsp.data == bytes([60, 2, 0, 0, 0])


# -- what the machine layer reports ------------------------------------------------------
def test_power_off_stops_the_watchdog_but_reset_does_not():
    bmc = powered_on(make_bmc())
    bmc.parts["messaging"] = messaging = FakeMessaging()
    app = NetFn.APP
    assert bmc.handle(app, 0x24, bytes([0x04, 0x01, 0, 0, 100, 0]), Context(), 0.0).cc == 0
    assert bmc.handle(app, 0x22, b"", Context(), 0.0).cc == 0
    chassis = bmc.parts["chassis"]
    chassis.vm_reset(1.0, RestartCause.SOFT_RESET)
    assert bmc.parts["watchdog"].running
    assert messaging.system_resets == 1
    chassis.vm_powered_off(2.0)
    assert not bmc.parts["watchdog"].running
    assert bmc.parts["watchdog"].present_countdown(50.0) == 80
    assert messaging.system_resets == 2
    assert bmc.next_deadline() is None


def test_create_part_tolerates_no_config():
    bmc = Bmc(table=command_table())
    chassis = chassis_mod.create_part(bmc, None)
    assert chassis.config == ChassisConfig()
    assert chassis_mod.create_part(bmc, SimpleNamespace(chassis=None)).config == ChassisConfig()


# -- ChassisConfig ------------------------------------------------------------------------
def test_config_from_dict():
    cfg = ChassisConfig.from_dict(
        {"power_restore_policy": "previous", "power_cycle_interval": 3, "front_panel_lockout": True},
        "bmc.chassis",
    )
    assert (cfg.power_restore_policy, cfg.power_cycle_interval, cfg.front_panel_lockout) == ("previous", 3, True)
    assert ChassisConfig.from_dict({}, "bmc.chassis") == ChassisConfig()


@pytest.mark.parametrize(
    "table, key",
    [
        ({"power_restore_policy": "on"}, "bmc.chassis.power_restore_policy"),
        ({"power_cycle_interval": 0}, "bmc.chassis.power_cycle_interval"),
        ({"identify_interval": True}, "bmc.chassis.identify_interval"),
        ({"poh_minutes_per_count": "60"}, "bmc.chassis.poh_minutes_per_count"),
        ({"intrusion_sensor": 1}, "bmc.chassis.intrusion_sensor"),
        ({"sel_device_address": 0x21}, "bmc.chassis.sel_device_address"),
        ({"power-restore-policy": "previous"}, "bmc.chassis.power-restore-policy"),
    ],
)
def test_config_errors_name_the_key(table, key):
    with pytest.raises(DescriptionError) as e:
        ChassisConfig.from_dict(table, "bmc.chassis")
    assert e.value.key == key


def test_config_must_be_a_table():
    with pytest.raises(DescriptionError) as e:
        ChassisConfig.from_dict(["always-on"], "bmc.chassis")
    assert e.value.key == "bmc.chassis"


def test_bmc_config_carries_the_chassis_table():
    from vhw.ipmi.core.config import BmcConfig

    cfg = BmcConfig.from_dict({"chassis": {"power_restore_policy": "always-on"}})
    assert cfg.chassis.power_restore_policy == "always-on"
    with pytest.raises(DescriptionError) as e:
        BmcConfig.from_dict({"chassis": {"colour": "red"}})
    assert e.value.key == "bmc.chassis.colour"


def test_python_ipmi_cannot_decode_an_optional_bitfield():
    """Why Chassis Identify's byte 2 is decoded as an integer: python-ipmi's
    Optional() creates no bit wrapper, so an Optional Bitfield fails to decode."""
    from pyipmi.msgs.message import Bitfield, Message, Optional

    class Probe(Message):
        __netfn__ = 0
        __cmdid__ = 0
        __fields__ = (Optional(Bitfield("b", 1, Bitfield.Bit("x", 1), Bitfield.ReservedBit(7, 0))),)

    with pytest.raises(AttributeError):
        Probe()._decode(b"\x01")


def test_a_request_left_over_from_before_a_power_off_is_not_blamed_later():
    """A hard reset asked for just before the VM went away must not become the
    restart cause of a guest reboot in the next run."""
    bmc = powered_on(make_bmc())
    call(bmc, 0x02, b"\x03", ctx=LAN)
    chassis = bmc.parts["chassis"]
    chassis.vm_powered_off(1.0)
    chassis.vm_powered_on(2.0, RestartCause.POWER_BUTTON)
    chassis.vm_reset(3.0)
    assert call(bmc, 0x07, now=3.0).data[0] == RestartCause.UNKNOWN
