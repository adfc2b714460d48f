"""vhw.faults: parsing, decisions and counts, and the hooks in the extern
connection, the BMC service, the IOP and the EEPROM capture.

What the guest must see is QEMU's and the specs' behaviour:
- QEMU 7.2 ipmi_bmc_extern waits 4 s (virtual) for a response and then
  answers the guest 0xC3 itself; a response with a bad checksum is dropped
  silently (docs/ipmi-extern.md §4, §7, §8).
- IPMI 2.0 §5.2 table 5-2: 0xC0 "Node Busy", 0xC3 "Timeout while processing
  command"; a response carries the completion code first.
- I2O 1.5: reply word 4 = DetailedStatus (bits 0-15) | ReqStatus << 24
  (table 3-2 DetailedStatus, i2o-mpqemu.md B4); an empty inbound FIFO reads
  0xFFFFFFFF (B2).
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from ipmi.helpers import QEMU_HELLO, FakeQemu, make_bmc, run, serve_pair
from vhw.errors import DescriptionError
from vhw.faults import FaultError, FaultInjector, flood_record, parse_scenario
from vhw.i2o import frames as f
from vhw.i2o.iop import Iop
from vhw.i2o.mu import EMPTY, REG_INBOUND, REG_OUTBOUND
from vhw.ipmi.core.actions import AttentionState
from vhw.ipmi.wire.extern import Control, ControlOp, Response, encode_request
from vhw.ipmi.io.extern_server import ExternServer
from vhw.ipmi.io.service import BmcService
from vhw.machine.description import load_scenario, parse_description, with_faults
from vhw.prom.options import captured_changes
from vhw.trace import Trace

H = bytes.fromhex


# -- parsing ---------------------------------------------------------------------
def desc_with(*faults, **top):
    data = {"bmc": {"backend": "vhw"}, "fault": list(faults), **top}
    return parse_description(data, "m.toml")


def test_description_fault_tables_parse():
    d = desc_with({"device": "bmc", "action": "completion-code", "netfn": 6, "cmd": 1, "cc": 0xC0, "count": 2},
                  {"device": "bmc", "action": "delay", "seconds": 5, "count": "always", "interface": "kcs"},
                  {"device": "bmc", "action": "expire-watchdog", "after": 3})
    cc, delay, wd = d.faults
    assert (cc.action, dict(cc.match), cc.param("cc"), cc.count) == ("completion-code", {"netfn": 6, "cmd": 1},
                                                                     0xC0, 2)
    assert delay.count is None and delay.param("seconds") == 5.0 and dict(delay.match) == {"interface": "kcs"}
    assert wd.after == 3.0 and wd.count == 1


@pytest.mark.parametrize("fault, key, reason", [
    ({"action": "drop"}, "fault[0].device", "is required"),
    ({"device": "disk", "action": "drop"}, "fault[0].device", "must be one of bmc, iop, prom"),
    ({"device": "bmc"}, "fault[0].action", "is required"),
    ({"device": "bmc", "action": "fail", "status": 5}, "fault[0].action", "for device 'bmc'"),
    ({"device": "bmc", "action": "delay"}, "fault[0].seconds", "is required"),
    ({"device": "bmc", "action": "delay", "seconds": 0}, "fault[0].seconds", "must be positive"),
    ({"device": "bmc", "action": "delay", "seconds": "5"}, "fault[0].seconds", "must be a int or float"),
    ({"device": "bmc", "action": "completion-code", "cc": 0}, "fault[0].cc", "between 0x1 and 0xff"),
    ({"device": "bmc", "action": "drop", "netfn": 0x40}, "fault[0].netfn", "between 0x0 and 0x3f"),
    ({"device": "bmc", "action": "drop", "interface": "lan"}, "fault[0].interface", "kcs, bt, ssif"),
    ({"device": "bmc", "action": "drop", "count": 0}, "fault[0].count", '"always"'),
    ({"device": "bmc", "action": "drop", "count": "often"}, "fault[0].count", '"always"'),
    ({"device": "bmc", "action": "drop", "cont": 2}, "fault[0].cont", "did you mean 'count'"),
    ({"device": "bmc", "action": "drop", "after": 2}, "fault[0].after", "only for"),
    ({"device": "bmc", "action": "expire-watchdog", "cmd": 1}, "fault[0].cmd", "matches no request"),
    ({"device": "bmc", "action": "expire-watchdog", "count": 2}, "fault[0].count", "happens once"),
    ({"device": "bmc", "action": "flood-events"}, "fault[0].events", "is required"),
    ({"device": "iop", "action": "fail", "status": 5}, "fault[0].device", "needs an [[i2o]] IOP"),
    ({"device": "prom", "action": "refuse-write"}, "fault[0].device", "needs a SPARC EEPROM"),
])
def test_bad_fault_tables_name_the_key_and_why(fault, key, reason):
    with pytest.raises(DescriptionError) as e:
        desc_with(fault)
    assert e.value.key == key and reason in e.value.reason, str(e.value)
    assert str(e.value).startswith("m.toml: ")


def test_iop_faults_checked_against_the_iops(tmp_path):
    i2o = [{"disk": [{"image": str(tmp_path / "d.img"), "size": 1}]}]
    with pytest.raises(DescriptionError, match=r"fault\[0\].iop: the machine has 1 IOP"):
        parse_description({"i2o": i2o, "fault": [{"device": "iop", "action": "delay", "seconds": 1, "iop": 1}]})
    with pytest.raises(DescriptionError, match="has no reply frame"):
        parse_description({"i2o": i2o, "fault": [{"device": "iop", "action": "fail", "status": 5,
                                                   "function": 0xA0}]})
    d = parse_description({"i2o": i2o, "fault": [{"device": "iop", "action": "fail", "status": 5, "detail": 0x1B,
                                                  "function": 6, "tid": 0}]})
    assert d.faults[0].params == (("status", 5), ("detail", 0x1B))


def test_scenario_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[[fault]]\ndevice = "bmc"\naction = "drop"\nnetfn = 6\ncmd = 1\n')
    [spec] = load_scenario(path)
    assert spec.action == "drop" and spec.count == 1
    with pytest.raises(DescriptionError, match="only \\[\\[fault\\]\\] tables"):
        parse_scenario({"machine": {}, "fault": []}, "s.toml")
    path.write_text('[[fault]]\ndevice = "bmc"\naction = "drop"\nnetfn = [6]\n')
    with pytest.raises(DescriptionError, match=r"s.toml: fault\[0\].netfn: must be a int"):
        load_scenario(path)
    # Checked against the machine the scenario is used with.
    with pytest.raises(DescriptionError, match="needs a \\[bmc\\]"):
        with_faults(parse_description({}), parse_scenario({"fault": [{"device": "bmc", "action": "drop"}]}),
                    "s.toml")


# -- decisions -----------------------------------------------------------------------
def test_counts_matching_and_cancel():
    fi = FaultInjector()
    assert not fi.bmc.armed and fi.bmc.on_request("kcs", 6, 1) is None
    fi.bmc.completion_code(0xC0, netfn=6, cmd=1, count=2)
    assert fi.bmc.armed
    assert fi.bmc.on_request("kcs", 6, 2) is None          # another command
    assert fi.bmc.on_request("kcs", 6, 1).params == {"cc": 0xC0}
    assert fi.bmc.on_request("bt", 6, 1).action == "completion-code"
    assert fi.bmc.on_request("kcs", 6, 1) is None           # two taken: gone
    assert not fi.bmc.armed and fi.rules == []
    rule = fi.bmc.drop(interface="ssif", count="always")
    for _ in range(5):
        assert fi.bmc.on_request("ssif", 10, 0x40).action == "drop"
    assert fi.bmc.on_request("kcs", 10, 0x40) is None
    assert rule.fired == 5
    rule.cancel()
    assert fi.bmc.on_request("ssif", 10, 0x40) is None and not fi.bmc.armed


def test_first_matching_rule_wins_and_clear():
    fi = FaultInjector()
    fi.iop.fail(0x05, function=0x06, count=1)
    fi.iop.delay(2, count="always")
    assert fi.iop.on_message(0, 0x06, 0).action == "fail"
    assert fi.iop.on_message(0, 0x06, 0).action == "delay"
    fi.clear()
    assert fi.iop.on_message(0, 0x06, 0) is None and not fi.iop.armed


@pytest.mark.parametrize("call", [
    lambda fi: fi.bmc.delay(0),
    lambda fi: fi.bmc.delay(5, count=0),
    lambda fi: fi.bmc.completion_code(0x100),
    lambda fi: fi.iop.fail(0),
    lambda fi: fi.iop.fail(5, function=0xA0),
    lambda fi: fi.prom.refuse_write(""),
    lambda fi: fi.bmc.expire_watchdog(),   # no BMC bound
])
def test_bad_api_calls_raise(call):
    with pytest.raises(FaultError):
        call(FaultInjector())


def test_effects_are_logged_and_traced(caplog):
    trace = Trace()
    fi = FaultInjector(trace=trace)
    fi.took_effect("bmc", "drop", netfn=6, cmd=1)
    assert fi.fired("bmc.drop") == [{"t": fi.events[0]["t"], "fault": "bmc.drop", "netfn": 6, "cmd": 1}]
    [rec] = trace.records("fault")
    assert rec["dir"] == "event" and rec["fault"] == "bmc.drop" and rec["cmd"] == 1
    assert "fault: bmc.drop netfn=0x06 cmd=0x01" in caplog.text


# -- the extern connection ---------------------------------------------------------------
async def faulty_pair(fi):
    server = ExternServer(make_bmc())
    server.faults = fi.bmc
    qemu, task = await serve_pair(server)
    await qemu.read_raw(5)
    qemu.send(QEMU_HELLO)
    return server, qemu, task


async def finish(server, qemu, task):
    await qemu.close()
    await task
    await server.close()


@run
async def test_completion_code_for_the_next_two_then_normal():
    """§5.2: the response is the completion code alone; the third is the real answer."""
    fi = FaultInjector()
    fi.bmc.completion_code(0xC0, netfn=6, cmd=1, count=2)
    server, qemu, task = await faulty_pair(fi)
    for seq in (1, 2):
        rsp = await qemu.request(seq, 6, 1)
        assert (rsp.seq, rsp.netfn, rsp.cmd, rsp.cc, rsp.data) == (seq, 7, 1, 0xC0, b"")
    rsp = await qemu.request(3, 6, 1)
    assert rsp.cc == 0 and len(rsp.data) == 15
    assert len(fi.fired("bmc.completion-code")) == 2
    await finish(server, qemu, task)


@run
async def test_delay_writes_the_answer_late_and_drop_writes_nothing():
    fi = FaultInjector()
    fi.bmc.delay(0.3, netfn=6, cmd=1)
    server, qemu, task = await faulty_pair(fi)
    loop = asyncio.get_running_loop()
    started = loop.time()
    qemu.send(encode_request(9, 6, 0, 1))
    assert await qemu.quiet(0.2)
    [rsp] = await qemu.events_(1)
    assert rsp.seq == 9 and rsp.cc == 0 and loop.time() - started >= 0.3
    fi.bmc.drop(netfn=6, cmd=1)
    qemu.send(encode_request(10, 6, 0, 1))
    assert await qemu.quiet(0.3)
    rsp = await qemu.request(11, 6, 1)   # the rule was for one request
    assert rsp.seq == 11 and rsp.cc == 0
    assert [e["seq"] for e in fi.events] == [9, 10]
    await finish(server, qemu, task)


@run
async def test_corrupt_checksum_is_dropped_by_a_qemu_codec():
    """§4: QEMU drops a response whose checksum is wrong; our VM-side codec does the same."""
    fi = FaultInjector()
    fi.bmc.corrupt_checksum(netfn=6, cmd=1)
    server, qemu, task = await faulty_pair(fi)
    qemu.send(encode_request(5, 6, 0, 1))
    raw = await qemu.read_raw(21)
    good = H("05 1c 01 00 00 03 09 08 02 9f 91 12 00 02 0f 00 00 00 00")
    assert raw[:-2] == good and raw[-1] == 0xA0
    assert (sum(good) + raw[-2]) & 0xFF != 0         # the checksum no longer sums to zero
    assert qemu.codec.receive_data(raw) == []           # dropped, as QEMU would
    await finish(server, qemu, task)


# -- the BMC service: disconnect, hold attention, flood, watchdog -------------------------
async def service_with(fi, tmp_path):
    service = BmcService(None, faults=fi)
    await service.listen(tmp_path, ["kcs"])
    qemu = await FakeQemu.connect(service.servers["kcs"].address)
    qemu.send(QEMU_HELLO)
    return service, qemu


async def drain(qemu):
    """Forget the connect announcements (VERSION, IRQ enable, attention)."""
    while True:
        qemu.events.clear()
        qemu.raw.clear()
        if await qemu.quiet(0.1):
            return


async def ask(qemu, seq, netfn, cmd, data=b""):
    """One request; its Response (controls in between are skipped)."""
    qemu.send(encode_request(seq, netfn, 0, cmd, data))
    while True:
        [e] = await qemu.events_(1)
        if isinstance(e, Response):
            return e


async def controls(qemu, n):
    return [e.op for e in await qemu.events_(n) if isinstance(e, Control)]


@run
async def test_disconnect_then_listen_again(tmp_path):
    fi = FaultInjector()
    service, qemu = await service_with(fi, tmp_path)
    await drain(qemu)
    address = service.servers["kcs"].address
    task = fi.bmc.disconnect(seconds=0.2)
    assert await qemu.eof()                     # QEMU sees the socket go
    assert not task.done()
    await task
    qemu2 = await FakeQemu.connect(address)     # reconnect=1 finds it again
    qemu2.send(QEMU_HELLO)
    rsp = await ask(qemu2, 1, 6, 1)
    assert rsp.cc == 0
    assert fi.fired("bmc.disconnect")[0]["interfaces"] == ["kcs"]
    await qemu2.close()
    await service.close()


@run
async def test_hold_attention_overrules_noattn_until_released(tmp_path):
    """§11: attention is a level; held, the guest keeps asking Get Message Flags."""
    fi = FaultInjector()
    service, qemu = await service_with(fi, tmp_path)
    await drain(qemu)
    assert service.runner.attention is AttentionState.NONE
    fi.bmc.hold_attention(0.4)
    assert await controls(qemu, 1) == [ControlOp.ATTN]
    rsp = await qemu.request(1, 6, 0x31)          # Get Message Flags: nothing there
    assert (rsp.cc, rsp.data) == (0, b"\x00")
    assert await qemu.quiet(0.1)                  # still held: no NOATTN
    assert await controls(qemu, 1) == [ControlOp.NOATTN]   # released after 0.4 s
    await qemu.close()
    await service.close()


@run
async def test_flood_events_feeds_the_event_buffer_as_the_guest_reads(tmp_path):
    fi = FaultInjector()
    service, qemu = await service_with(fi, tmp_path)
    await drain(qemu)
    # Set BMC Global Enables: event message buffer on (22.1), so events are offered.
    rsp = await ask(qemu, 1, 6, 0x2E, b"\x04")
    assert rsp.cc == 0
    before = len(service.bmc.parts["sel"])
    assert fi.bmc.flood_events(3) == 3
    assert len(service.bmc.parts["sel"]) == before + 3
    got = []
    for seq in range(2, 5):
        rsp = await ask(qemu, seq, 6, 0x35)        # Read Event Message Buffer
        assert rsp.cc == 0, rsp
        got.append(rsp.data)
    assert got == [flood_record(i) for i in range(3)]
    rsp = await ask(qemu, 5, 6, 0x35)
    assert rsp.cc == 0x80                         # 22.8: buffer empty
    await qemu.close()
    await service.close()


@run
async def test_expire_watchdog_takes_the_expiry_path(tmp_path):
    """27.7: at expiry a pending pre-timeout interrupt (NMI) comes first, then the
    action (hard reset) — here as extern control commands SEND_NMI then RESET."""
    fi = FaultInjector()
    service, qemu = await service_with(fi, tmp_path)
    await drain(qemu)
    service.on_qemu_start()                      # the chassis: powered on
    assert not fi.bmc.expire_watchdog()          # never set: nothing to expire
    # Set Watchdog Timer: SMS/OS, pre-timeout NMI + hard reset, 10 s pre-timeout, 600 s.
    assert service.request(6, 0x24, bytes((0x04, 0x21, 10, 0)) + struct.pack("<H", 6000)).cc == 0
    assert service.request(6, 0x22).cc == 0      # Reset Watchdog Timer: running
    sel_before = len(service.bmc.parts["sel"])
    assert fi.bmc.expire_watchdog()
    ops = []
    while ControlOp.RESET not in ops:
        ops += await controls(qemu, 1)
    assert ops.index(ControlOp.SEND_NMI) < ops.index(ControlOp.RESET)
    assert len(service.bmc.parts["sel"]) == sel_before + 2   # pre-timeout + expiry events
    rsp = service.request(6, 0x25)               # Get Watchdog Timer
    assert rsp.cc == 0 and rsp.data[4] & 0x10    # timer use SMS/OS expired flag
    await qemu.close()
    await service.close()


# -- the IOP ---------------------------------------------------------------------
class Ram:
    def __init__(self):
        self.mem = {}

    def write(self, addr, data):
        self.mem[addr] = bytes(data)

    def read(self, addr, n):
        return self.mem.get(addr, b"\0" * n)[:n]


class Clock:
    t = 100.0

    def __call__(self):
        return self.t


def iop_with_faults():
    fi = FaultInjector()
    fi.iop.clock = Clock()
    iop = Iop(Ram())
    iop.faults, iop.fault_index = fi.iop, 0
    for n in range(4):  # reply frames from the host
        iop.write(REG_OUTBOUND, 4, 0x10000 + n * 0x100)
    return fi, iop


def post_nop_like(iop, function=f.Function.UTIL_PARAMS_GET, tid=0x000, context=0x1234):
    """Post a UtilParamsGet-sized frame; returns nothing (the reply goes outbound)."""
    mfa = iop.read(REG_INBOUND, 4)
    assert mfa != EMPTY
    hdr = f.Header(function, tid, 1, 0xAB, context, 5, 0, 0)
    frame = hdr.encode() + b"\0" * 4
    for i in range(0, len(frame), 4):
        iop.write(mfa + i, 4, int.from_bytes(frame[i:i + 4], "little"))
    iop.write(REG_INBOUND, 4, mfa)


def reply(iop):
    addr = iop.read(REG_OUTBOUND, 4)
    if addr == EMPTY:
        return None
    rep = f.decode_reply(iop.dma.mem[addr])
    iop.write(REG_OUTBOUND, 4, addr)
    return rep


def test_iop_fail_answers_the_chosen_status_without_running():
    fi, iop = iop_with_faults()
    fi.iop.fail(0x0B, detail=0x1B, function=0x06, tid=0)   # TRANSACTION_ERROR, DEVICE_BUSY
    post_nop_like(iop, context=0x77)
    rep = reply(iop)
    assert (rep.status, rep.detail, rep.header.transaction_context) == (0x0B, 0x1B, 0x77)
    assert rep.word4 == 0x0B00001B
    post_nop_like(iop)                             # count 1: the next one runs: an empty
    rep = reply(iop)                               # ParamsGet is MISSING_PARAMETER (0x16)
    assert (rep.status, rep.detail) == (0x05, 0x16)
    assert fi.fired("iop.fail")[0]["function"] == 0x06


def test_iop_delay_and_withhold_then_release_and_reset():
    fi, iop = iop_with_faults()
    fi.iop.delay(2, function=0x06)
    post_nop_like(iop, context=1)
    assert reply(iop) is None                      # not yet
    fi.iop.clock.t += 2
    assert reply(iop).header.transaction_context == 1
    fi.iop.withhold(function=0x06, count=2)
    post_nop_like(iop, context=2)
    post_nop_like(iop, context=3)
    fi.iop.clock.t += 1000
    assert reply(iop) is None                      # withheld: time does not help
    fi.iop.release()
    assert {reply(iop).header.transaction_context, reply(iop).header.transaction_context} == {2, 3}
    fi.iop.withhold(count="always")
    post_nop_like(iop, context=4)
    iop.reset()                                    # a reset forgets what was held
    assert iop.counters["held_replies_dropped"] == 1
    fi.iop.release()
    assert iop.read(REG_OUTBOUND, 4) == EMPTY


def test_iop_exhaust_frames():
    """B2: an inbound-port read finding no free frame returns 0xFFFFFFFF."""
    fi, iop = iop_with_faults()
    fi.iop.exhaust_frames(count=2)
    assert [iop.read(REG_INBOUND, 4) for _ in range(3)][:2] == [EMPTY, EMPTY]
    fi.iop.exhaust_frames()                         # always, until restored
    assert all(iop.read(REG_INBOUND, 4) == EMPTY for _ in range(10))
    fi.iop.restore_frames()
    assert iop.read(REG_INBOUND, 4) != EMPTY
    assert not fi.iop.armed
    assert fi.iop.exhausted_reads == 12 and len(fi.fired("iop.exhaust-frames")) == 2


# -- the EEPROM ------------------------------------------------------------------
def test_refused_guest_write_is_not_captured():
    fi = FaultInjector()
    fi.prom.refuse_write("auto-boot?")
    stored = {"auto-boot?": "true"}
    firmware = {"auto-boot?": b"false", "diag-switch?": b"true"}
    pairs, warnings = captured_changes(stored, firmware, {"diag-switch?": "false"}, family="sun4u",
                                       refuse=fi.prom.refuses)
    assert dict(pairs) == {"auto-boot?": "true", "diag-switch?": "true"}
    assert any("refused" in w for w in warnings)
    assert fi.fired("prom.refuse-write")[0] == {**fi.events[0], "name": "auto-boot?", "old": "true", "new": "false"}
    pairs, _ = captured_changes(stored, firmware, {}, family="sun4u", refuse=fi.prom.refuses)
    assert dict(pairs)["auto-boot?"] == "false"     # count 1: the next capture stores it


# -- the model without a loop: time comes in, the service's port acts ------------------
class FakeService:
    """The BmcService as vhw.faults sees it (its port), on a hand-driven clock."""

    def __init__(self):
        self.t, self.servers, self.calls = 50.0, {"kcs": None, "bt": None}, []
        self.bmc = type("B", (), {"parts": {}})()

    def now(self):
        return self.t

    def post_event(self, record):
        return False

    def fault_disconnect(self, names, seconds):
        self.calls.append(("disconnect", names, seconds))
        return "the task"

    def fault_hold_attention(self, held, seconds=0.0):
        self.calls.append(("hold", held, seconds))

    def fault_expire_watchdog(self):
        return False


def test_bmc_immediate_actions_go_through_the_service_port():
    fi = FaultInjector(clock=lambda: 1234.5)
    service = FakeService()
    fi.bmc.bind(service)
    assert fi.bmc.disconnect(2, interface="bt") == "the task"
    fi.bmc.hold_attention(5)
    assert service.calls == [("disconnect", ["bt"], 2.0), ("hold", True, 5.0)]
    assert fi.bmc.attention_held(54.9) and not fi.bmc.attention_held(55.0)
    assert not fi.bmc.release_attention(52.0)      # the service's timer ran early: still held
    assert fi.bmc.release_attention(55.0)          # now it lets go, once
    assert not fi.bmc.release_attention(56.0)
    # The end of the hold is an event too (once), so a test can wait for it instead of sleeping.
    assert [(e["fault"], e["t"]) for e in fi.events] == [
        ("bmc.disconnect", 1234.5), ("bmc.hold-attention", 1234.5), ("bmc.hold-attention-ended", 1234.5)]


def test_timed_actions_are_handed_to_the_service_once():
    [spec] = desc_with({"device": "bmc", "action": "expire-watchdog", "after": 3}).faults
    fi = FaultInjector([spec])
    assert fi.bmc.vm_started() == [spec]
    assert fi.bmc.vm_started() == []               # a relaunch does not repeat them
    service = FakeService()
    fi.bmc.bind(service)
    fi.bmc.run_timed(spec)                          # the watchdog is not running: nothing done
    assert fi.events == []


def test_event_times_come_from_the_trace_without_a_clock():
    fi = FaultInjector(trace=Trace(clock=lambda: 99.0))
    fi.took_effect("prom", "refuse-write", name="auto-boot?")
    assert fi.events[0]["t"] == 99.0
    bare = FaultInjector()
    bare.took_effect("bmc", "drop")
    assert bare.events[0]["t"] is None


def test_iop_delays_need_the_transports_clock_and_a_lock_is_shared():
    fi = FaultInjector()
    with pytest.raises(FaultError, match="no clock"):
        fi.iop.clock()
    import threading

    first, second = threading.Lock(), threading.Lock()
    fi.serialize(first)
    fi.serialize(second)                            # a second IOP: the first lock stays
    assert fi.lock is first
    fi.iop.delay(1, function=6)
    assert fi.iop.on_message(0, 6, 0).action == "delay" and not first.locked()
