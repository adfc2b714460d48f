"""The watchdog timer and its commands (IPMI 2.0 chapter 27)."""

from __future__ import annotations

import pytest
from pyipmi.msgs import bmc as pyipmi_bmc

import vhw.ipmi.commands  # noqa: F401  (registers the handlers)
from vhw.ipmi.parts import chassis as chassis_mod
from vhw.ipmi.parts import watchdog as watchdog_mod
from vhw.ipmi.core.actions import Attention, AttentionState, Power, PowerOp
from vhw.ipmi.core.assemble import command_table
from vhw.ipmi.core.bmc import CC, Bmc, Context, NetFn, Privilege
from vhw.ipmi.parts.chassis import RestartCause
from vhw.ipmi.parts.watchdog import WATCHDOG_SENSOR_NUMBER, WATCHDOG_SENSOR_TYPE

APP = NetFn.APP
RESET, SET, GET = 0x22, 0x24, 0x25
SMS_OS = 0x04
USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=3)
OPERATOR = Context(channel=1, privilege=Privilege.OPERATOR, interface="lan", session_id=4)


class FakeMessaging:
    """Stands in for vhw.ipmi.parts.messaging: records, and raises attention like it."""

    def __init__(self, bmc):
        self.bmc = bmc
        self.pretimeouts = 0
        self.events: list[bytes] = []

    def set_pretimeout(self):
        self.pretimeouts += 1
        self.bmc.emit(Attention(AttentionState.ATTN_IRQ))

    def post_event(self, record: bytes) -> bool:
        assert len(record) == 16
        self.events.append(record)
        self.bmc.emit(Attention(AttentionState.ATTN_IRQ))
        return True


class FakeSel:
    def __init__(self):
        self.records: list[bytes] = []

    def add(self, record: bytes):
        self.records.append(record)


def make_bmc(*, messaging=False, sel=False, power_on=True) -> Bmc:
    bmc = Bmc(table=command_table())
    bmc.parts["chassis"] = chassis_mod.create_part(bmc, None)
    bmc.parts["watchdog"] = watchdog_mod.create_part(bmc, None)
    if messaging:
        bmc.parts["messaging"] = FakeMessaging(bmc)
    if sel:
        bmc.parts["sel"] = FakeSel()
    if power_on:
        bmc.parts["chassis"].vm_powered_on(0.0, RestartCause.POWER_BUTTON)
    return bmc


def set_data(*, use=SMS_OS, dont_log=False, dont_stop=False, action=0, pre_irq=0, pre_s=0, clear=0, countdown=100):
    return bytes(
        [
            use | (dont_stop << 6) | (dont_log << 7),
            action | (pre_irq << 4),
            pre_s,
            clear,
            countdown & 0xFF,
            countdown >> 8,
        ]
    )


SYSTEM_INTERFACE = Context()  # frozen: safe to share as a default


def call(bmc, cmd, data=b"", now=0.0, ctx=SYSTEM_INTERFACE):
    return bmc.handle(APP, cmd, bytes(data), ctx, now)


def armed(now=0.0, **kw) -> Bmc:
    """A Bmc whose watchdog was set (with ``kw``) and started at ``now``."""
    bmc = make_bmc(messaging=kw.pop("messaging", False), sel=kw.pop("sel", False))
    assert call(bmc, SET, set_data(**kw), now=now).cc == 0
    assert call(bmc, RESET, now=now).cc == 0
    return bmc


def get(bmc, now):
    rsp = call(bmc, GET, now=now)
    assert rsp.cc == 0
    return rsp.data


def countdown(bmc, now) -> int:
    return int.from_bytes(get(bmc, now)[6:8], "little")


def powers(bmc):
    return [a for a in bmc.take_actions() if isinstance(a, Power)]


# -- Reset Watchdog Timer (27.5) ----------------------------------------------
def test_reset_before_any_set_is_80h():
    """27.5: 80h = attempt to start un-initialized watchdog."""
    assert call(make_bmc(), RESET).cc == 0x80


def test_reset_with_data_is_refused():
    bmc = make_bmc()
    call(bmc, SET, set_data())
    assert call(bmc, RESET, b"\x00").cc == CC.REQUEST_FIELD_LENGTH_EXCEEDED


# -- Set Watchdog Timer (27.6) --------------------------------------------------
def test_set_answers_only_a_completion_code():
    """ipmi_sim answered Set with a garbage length (anchors §2); the response is CC only."""
    rsp = call(make_bmc(), SET, set_data())
    assert (rsp.cc, rsp.data) == (0, b"")


@pytest.mark.parametrize("data, cc", [(set_data()[:5], CC.REQUEST_LENGTH_INVALID), (set_data() + b"\x00", CC.REQUEST_FIELD_LENGTH_EXCEEDED)])
def test_set_request_length(data, cc):
    bmc = make_bmc()
    assert call(bmc, SET, data).cc == cc
    assert bmc.parts["watchdog"].settings is None


@pytest.mark.parametrize(
    "kw",
    [
        {"use": 0},  # timer use 000b reserved
        {"use": 6},
        {"use": 7},
        {"action": 4},  # 100b..111b reserved
        {"action": 7},
        {"pre_irq": 4},
        {"pre_irq": 7},
        {"pre_irq": 2, "pre_s": 11, "countdown": 100},  # interrupt 11 s before a 10 s timer
    ],
)
def test_set_invalid_fields_are_cch_and_change_nothing(kw):
    bmc = make_bmc()
    assert call(bmc, SET, set_data(**kw)).cc == CC.INVALID_DATA_FIELD
    assert bmc.parts["watchdog"].settings is None
    assert call(bmc, RESET).cc == 0x80


def test_set_accepts_nmi_pretimeout_and_interval_equal_to_countdown():
    """Pre-timeout NMI must be accepted (ipmi_sim's missing break rejected it, anchors §2)."""
    bmc = make_bmc()
    assert call(bmc, SET, set_data(pre_irq=2, pre_s=10, countdown=100)).cc == 0
    assert get(bmc, 0.0)[1] == 0x20


def test_set_needs_operator_and_get_needs_user():
    """Appendix G: Set/Reset Watchdog Timer Operator, Get Watchdog Timer User."""
    bmc = make_bmc()
    assert call(bmc, SET, set_data(), ctx=USER).cc == CC.INSUFFICIENT_PRIVILEGE
    assert call(bmc, SET, set_data(), ctx=OPERATOR).cc == 0
    assert call(bmc, RESET, ctx=USER).cc == CC.INSUFFICIENT_PRIVILEGE
    assert call(bmc, GET, ctx=USER).cc == 0


# -- Get Watchdog Timer (27.7) ----------------------------------------------------
def test_get_answers_all_eight_bytes():
    """27.7: use, actions, pre-timeout, flags, initial countdown, present countdown.
    ipmi_sim left the present countdown out (anchors §2)."""
    bmc = make_bmc()
    call(bmc, SET, set_data(dont_log=True, action=1, pre_irq=3, pre_s=2, countdown=0x1234))
    data = get(bmc, 5.0)
    assert data == bytes([0x80 | SMS_OS, 0x31, 2, 0, 0x34, 0x12, 0x34, 0x12])
    decoded = pyipmi_bmc.GetWatchdogTimerRsp()
    decoded._decode(b"\x00" + data)  # python-ipmi said "Data too short" to ipmi_sim
    assert decoded.present_countdown == 0x1234
    assert decoded.timer_use.is_running == 0


def test_get_before_any_set_is_all_zero():
    assert get(make_bmc(), 0.0) == bytes(8)


def test_present_countdown_follows_now():
    """Byte 8:9 counts down in 100 ms ticks from the Reset."""
    bmc = armed(now=10.0, countdown=100)
    assert get(bmc, 10.0)[0] & 0x40, "byte 2 [6]: timer is running"
    assert countdown(bmc, 10.0) == 100
    assert countdown(bmc, 10.05) == 100
    assert countdown(bmc, 10.3) == 97
    assert countdown(bmc, 12.5) == 75
    assert countdown(bmc, 19.95) == 1
    assert countdown(bmc, 20.0) == 0
    assert get(bmc, 20.0)[0] & 0x40 == 0, "expired: stopped"


def test_reset_restarts_from_the_initial_countdown():
    bmc = armed(now=0.0, countdown=100)
    assert countdown(bmc, 6.0) == 40
    assert call(bmc, RESET, now=6.0).cc == 0
    assert countdown(bmc, 6.0) == 100
    assert countdown(bmc, 15.9) == 1
    assert powers(bmc) == []


# -- running / stopped --------------------------------------------------------------
def test_set_without_dont_stop_stops_a_running_timer():
    bmc = armed(now=0.0, countdown=100)
    assert call(bmc, SET, set_data(countdown=50), now=3.0).cc == 0
    assert get(bmc, 3.0)[0] & 0x40 == 0
    assert countdown(bmc, 100.0) == 50
    assert bmc.next_deadline() is None


def test_set_with_dont_stop_keeps_running_from_the_new_countdown():
    """27.6 byte 1 [6]: running timer continues from the new countdown."""
    bmc = armed(now=0.0, countdown=100)
    assert call(bmc, SET, set_data(dont_stop=True, countdown=50), now=3.0).cc == 0
    assert get(bmc, 3.0)[0] & 0x40
    assert countdown(bmc, 4.0) == 40
    assert bmc.next_deadline() == 8.0


def test_set_with_dont_stop_leaves_a_stopped_timer_stopped():
    bmc = make_bmc()
    call(bmc, SET, set_data(countdown=100))
    assert call(bmc, SET, set_data(dont_stop=True, countdown=30), now=1.0).cc == 0
    assert get(bmc, 1.0)[0] & 0x40 == 0
    assert countdown(bmc, 9.0) == 30


# -- pre-timeout ------------------------------------------------------------------------
def test_pretimeout_nmi_fires_at_countdown_minus_interval():
    bmc = armed(now=0.0, countdown=100, pre_irq=2, pre_s=3, action=0)
    assert bmc.next_deadline() == 7.0
    bmc.poll(6.9)
    assert powers(bmc) == []
    bmc.poll(7.0)
    assert powers(bmc) == [Power(PowerOp.NMI, "watchdog pre-timeout")]
    bmc.poll(8.0)
    assert powers(bmc) == []
    assert bmc.next_deadline() == 10.0


def test_pretimeout_messaging_interrupt_sets_the_flag_once():
    bmc = armed(now=0.0, countdown=100, pre_irq=3, pre_s=5, messaging=True)
    messaging = bmc.parts["messaging"]
    bmc.poll(4.9)
    assert messaging.pretimeouts == 0
    bmc.poll(5.0)
    bmc.poll(6.0)
    assert messaging.pretimeouts == 1


def test_pretimeout_rearms_after_reset():
    bmc = armed(now=0.0, countdown=100, pre_irq=2, pre_s=5)
    bmc.poll(5.0)
    assert len(powers(bmc)) == 1
    call(bmc, RESET, now=6.0)
    bmc.poll(11.0)
    assert powers(bmc) == [Power(PowerOp.NMI, "watchdog pre-timeout")]


def test_pretimeout_without_messaging_part_is_harmless():
    bmc = armed(now=0.0, countdown=100, pre_irq=3, pre_s=5)
    bmc.poll(5.0)
    assert powers(bmc) == []


# -- expiry -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action, op, offset",
    [(1, PowerOp.RESET, 0x01), (2, PowerOp.OFF, 0x02), (3, PowerOp.CYCLE, 0x03), (0, None, 0x00)],
)
def test_expiry_acts_once_sets_the_flag_and_logs(action, op, offset):
    """Table 42-3, Watchdog 2: offsets 00h status only, 01h reset, 02h power
    down, 03h power cycle; event data 2 = interrupt type [7:4], timer use [3:0]."""
    bmc = armed(now=0.0, countdown=100, action=action, sel=True, messaging=True)
    assert bmc.next_deadline() == 10.0
    bmc.poll(9.99)
    assert powers(bmc) == []
    bmc.poll(10.0)
    bmc.poll(11.0)
    bmc.poll(30.0)
    expected = [] if op is None else [Power(op, "watchdog expired")]
    assert powers(bmc) == expected
    assert get(bmc, 30.0)[3] == 1 << SMS_OS, "timer use expiration flag SMS/OS"
    assert bmc.next_deadline() is None
    (record,) = bmc.parts["sel"].records
    assert bmc.parts["messaging"].events == [record]
    assert record[2] == 0x02  # system event record
    assert record[7:9] == b"\x20\x00"  # generator: the BMC
    assert record[9] == 0x04  # EvM rev, IPMI 2.0
    assert record[10:13] == bytes([WATCHDOG_SENSOR_TYPE, WATCHDOG_SENSOR_NUMBER, 0x6F])
    assert record[13:16] == bytes([0xC0 | offset, SMS_OS, 0xFF])


def test_expiry_flow_is_event_attention_then_reset():
    """ipmi-extern.md §11, measured: at expiry ATTN_IRQ (for the event), then RESET."""
    bmc = armed(now=0.0, countdown=100, action=1, pre_irq=3, pre_s=5, messaging=True)
    bmc.poll(5.0)
    pre = bmc.take_actions()
    assert pre == [Attention(AttentionState.ATTN_IRQ), Attention(AttentionState.ATTN_IRQ)]
    assert bmc.parts["messaging"].events[0][13] == 0xC8  # 08h timer interrupt
    assert bmc.parts["messaging"].events[0][14] == 0x30 | SMS_OS  # messaging interrupt
    bmc.poll(10.0)
    assert bmc.take_actions() == [Attention(AttentionState.ATTN_IRQ), Power(PowerOp.RESET, "watchdog expired")]


def test_dont_log_is_honoured():
    """27.6 byte 1 [7]: no event logged; the expiration flag is still set."""
    bmc = armed(now=0.0, countdown=10, action=1, pre_irq=3, pre_s=1, dont_log=True, sel=True, messaging=True)
    bmc.poll(5.0)
    assert bmc.parts["sel"].records == []
    assert bmc.parts["messaging"].events == []
    assert bmc.parts["messaging"].pretimeouts == 1
    assert powers(bmc) == [Power(PowerOp.RESET, "watchdog expired")]
    assert get(bmc, 5.0)[3] == 1 << SMS_OS


def test_expiration_flags_clear_mask():
    """27.6 byte 4: a 1 bit clears that timer use's flag; others are kept."""
    bmc = armed(now=0.0, countdown=1)
    bmc.poll(1.0)
    assert get(bmc, 1.0)[3] == 0x10
    call(bmc, SET, set_data(clear=0x02), now=1.0)
    assert get(bmc, 1.0)[3] == 0x10
    call(bmc, SET, set_data(clear=0x10), now=1.0)
    assert get(bmc, 1.0)[3] == 0x00


def test_zero_countdown_expires_on_reset():
    """A countdown of 0 started by Reset: the timer events occur at once."""
    bmc = armed(now=4.0, countdown=0, action=1)
    assert bmc.next_deadline() == 4.0
    bmc.poll(4.0)
    assert powers(bmc) == [Power(PowerOp.RESET, "watchdog expired")]


def test_a_late_poll_fires_pretimeout_then_expiry():
    bmc = armed(now=0.0, countdown=100, action=2, pre_irq=2, pre_s=3)
    bmc.poll(60.0)
    assert [a.op for a in powers(bmc)] == [PowerOp.NMI, PowerOp.OFF]


def test_expiry_with_the_system_off_asks_for_nothing():
    bmc = make_bmc(power_on=False)
    call(bmc, SET, set_data(action=1, countdown=10))
    call(bmc, RESET)
    bmc.poll(1.0)
    assert powers(bmc) == []
    assert get(bmc, 1.0)[3] == 1 << SMS_OS


def test_no_chassis_part_still_emits_the_action():
    bmc = Bmc(table=command_table())
    bmc.parts["watchdog"] = watchdog_mod.create_part(bmc, None)
    call(bmc, SET, set_data(action=3, countdown=10))
    call(bmc, RESET)
    bmc.poll(1.0)
    assert powers(bmc) == [Power(PowerOp.CYCLE, "watchdog expired")]


# -- restart cause ----------------------------------------------------------------------------
def restart_cause(bmc, now):
    return bmc.handle(NetFn.CHASSIS, 0x07, b"", Context(), now).data[0]


def test_restart_cause_after_watchdog_reset_vs_chassis_control_reset():
    """Table 28-11: 4 = watchdog expiration, 1 = chassis control command."""
    bmc = armed(now=0.0, countdown=10, action=1)
    bmc.poll(1.0)
    assert powers(bmc) == [Power(PowerOp.RESET, "watchdog expired")]
    bmc.parts["chassis"].vm_reset(1.5)
    assert restart_cause(bmc, 1.5) == RestartCause.WATCHDOG

    ctx = Context(channel=1, privilege=Privilege.OPERATOR, interface="lan", session_id=9)
    assert bmc.handle(NetFn.CHASSIS, 0x02, b"\x03", ctx, 2.0).cc == 0
    bmc.parts["chassis"].vm_reset(2.5)
    assert restart_cause(bmc, 2.5) == RestartCause.CHASSIS_CONTROL


def test_restart_cause_after_watchdog_power_cycle():
    bmc = armed(now=0.0, countdown=10, action=3)
    bmc.poll(1.0)
    chassis = bmc.parts["chassis"]
    chassis.vm_powered_off(1.2)
    chassis.vm_powered_on(3.0)
    assert restart_cause(bmc, 3.0) == RestartCause.WATCHDOG
    assert bmc.handle(NetFn.CHASSIS, 0x01, b"", Context(), 3.0).data[1] & 0x10 == 0


# -- with the assembled BMC (real messaging part) ------------------------------------------
def test_measured_linux_watchdog_flow_with_the_assembled_bmc():
    """ipmi-extern.md §11, measured with ``ipmi_watchdog timeout=10 pretimeout=5
    action=reset preaction=pre_int``: at +5 s ATTN_IRQ, flags 0Ah, clear 08h,
    flags 02h, read the event, NOATTN, read again 80h; at +10 s ATTN_IRQ for
    the event, then RESET."""
    from vhw.ipmi.core.assemble import create_bmc
    from vhw.ipmi.core.config import BmcConfig

    bmc = create_bmc(BmcConfig.from_dict({}))
    bmc.parts["chassis"].vm_powered_on(0.0)
    assert call(bmc, 0x2E, b"\x0f").cc == 0  # Set BMC Global Enables, as Linux does
    assert call(bmc, SET, set_data(action=1, pre_irq=3, pre_s=5, countdown=100)).cc == 0
    assert call(bmc, RESET).cc == 0
    bmc.take_actions()

    bmc.poll(5.0)
    assert bmc.take_actions() == [Attention(AttentionState.ATTN_IRQ)]
    assert call(bmc, 0x31, now=5.0).data == b"\x0a"  # Get Message Flags
    assert call(bmc, 0x30, b"\x08", now=5.0).cc == 0  # Clear Message Flags: pre-timeout
    assert call(bmc, 0x31, now=5.0).data == b"\x02"
    event = call(bmc, 0x35, now=5.0)  # Read Event Message Buffer
    assert event.cc == 0
    assert event.data[10] == WATCHDOG_SENSOR_TYPE and event.data[13] == 0xC8
    assert bmc.take_actions() == [Attention(AttentionState.NONE)]
    assert call(bmc, 0x35, now=5.0).cc == 0x80

    bmc.poll(10.0)
    assert bmc.take_actions() == [Attention(AttentionState.ATTN_IRQ), Power(PowerOp.RESET, "watchdog expired")]
    bmc.parts["chassis"].vm_reset(10.5)
    assert restart_cause(bmc, 10.5) == RestartCause.WATCHDOG
    assert call(bmc, 0x31, now=10.5).data == b"\x00", "the reset dropped the stale event"
