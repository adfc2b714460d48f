"""ExternServer and BmcRunner against a fake QEMU peer (docs/ipmi-extern.md)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from ipmi.helpers import ATTENTION_CMD, FakeQemu, H, IRQ_CMD, OEM, POWER_CMD, QEMU_HELLO, make_bmc, run, serve_pair

from vhw.ipmi.core.actions import Attention, AttentionState, PowerOp
from vhw.ipmi.core.bmc import Bmc, NetFn, Privilege
from vhw.ipmi.wire.extern import Control, ControlOp, Response, encode_request
from vhw.ipmi.io.extern_server import ExternServer, parse_address
from vhw.ipmi.io.runner import BmcRunner, ExternPowerPort

# -- connect --------------------------------------------------------------------


@run
async def test_connect_sends_capture_bytes_and_answers_get_device_id():
    """§13: on connect the BMC sends `ff 01 a1 00 a1`; `00 18 01 e7 a0` gets
    `00 1c 01 00 00 03 09 ... 7a a0`."""
    async with ExternServer(make_bmc()) as server:
        qemu, task = await serve_pair(server)
        assert await qemu.read_raw(5) == H("ff 01 a1 00 a1")
        qemu.send(QEMU_HELLO + H("00 18 01 e7 a0"))
        assert await qemu.read_raw(21) == H("00 1c 01 00 00 03 09 08 02 9f 91 12 00 02 0f 00 00 00 00 7a a0")
        assert server.connected
        await qemu.close()
        await task
        assert not server.connected


class AttentiveBmc(Bmc):
    def attention_state(self):
        return AttentionState.ATTN

    def interrupt_enabled(self):
        return True


@run
async def test_connect_sends_bmc_attention_and_irq_state():
    """§6/§11: after VERSION the BMC sends its current state; the interrupt
    enable goes first so that a pending ATTN_IRQ can interrupt."""
    async with ExternServer(make_bmc(AttentiveBmc)) as server:
        qemu, _ = await serve_pair(server)
        assert await qemu.read_raw(7) == H("ff 01 a1 05 a1 01 a1")


class SettableBmc(Bmc):
    attention = AttentionState.NONE
    irq = False

    def attention_state(self):
        return self.attention

    def interrupt_enabled(self):
        return self.irq


@run
async def test_reconnect_announces_what_the_bmc_says_now():
    """§6/§11: the state re-sent on connect is the BMC's current one, even if
    it changed while QEMU was away and no action said so."""
    bmc = make_bmc(SettableBmc)
    async with ExternServer(bmc) as server:
        qemu, _ = await serve_pair(server)
        assert await qemu.read_raw(7) == H("ff 01 a1 06 a1 00 a1")
        await qemu.close()
        while server.connected:
            await asyncio.sleep(0.01)
        bmc.attention, bmc.irq = AttentionState.ATTN_IRQ, True
        qemu, _ = await serve_pair(server)
        assert await qemu.read_raw(7) == H("ff 01 a1 05 a1 02 a1")


@run
async def test_a_bmc_that_is_down_keeps_listening_and_hangs_up_on_every_connect(tmp_path):
    """ipmi-extern.md §6 (BMC restart): while down, QEMU's connect must succeed
    and the line drop at once (QEMU then answers 0xD2 itself); a refused
    connect would make QEMU 7.2 with qboot lose its -kernel image at the next
    reset.  Back up, the next connect is served as a fresh one."""
    bmc = make_bmc(SettableBmc)
    async with ExternServer(bmc) as server:
        address = await server.start(f"unix:{tmp_path}/bmc.sock")
        qemu = await FakeQemu.connect(address)
        assert await qemu.read_raw(7) == H("ff 01 a1 06 a1 00 a1")
        down = asyncio.create_task(server.go_down())  # returns once QEMU has closed
        assert await qemu.eof()
        await down
        assert not server.connected
        for _ in range(2):  # QEMU's reconnect=1 retries: accepted, then closed
            retry = await FakeQemu.connect(address)
            assert await retry.eof()
        assert server.stats["refused-while-down"] == 2 and not server.connected
        server.go_up()
        qemu = await FakeQemu.connect(address)
        assert await qemu.read_raw(7) == H("ff 01 a1 06 a1 00 a1")
        assert server.connected and server.stats["connections"] == 2


@run
async def test_a_hang_up_never_makes_a_qemu_write_fail(tmp_path):
    """ipmi-extern.md §7: a frame whose write fails stays in QEMU 7.2's one
    output buffer across the disconnect, and the guest's next request aborts
    QEMU ("Got command when not finished with the previous command").  So the
    BMC hangs up instead of closing: it stops sending but reads until QEMU
    closes, and a frame QEMU writes after the BMC went down (its VERSION
    hello, a guest request) is taken and dropped, unanswered."""
    path = tmp_path / "bmc.sock"
    loop = asyncio.get_running_loop()
    async with ExternServer(make_bmc()) as server:
        await server.start(f"unix:{path}")
        for case in ("goes down while connected", "is connected to while down"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            await loop.sock_connect(sock, str(path))
            down = None
            if case == "goes down while connected":
                assert await loop.sock_recv(sock, 5) == H("ff 01 a1 00 a1")
                down = asyncio.create_task(server.go_down())
            while await loop.sock_recv(sock, 4096):  # to the BMC's EOF
                pass
            await asyncio.sleep(0.05)
            # With a plain close this raises BrokenPipeError (EPIPE).
            await loop.sock_sendall(sock, QEMU_HELLO + encode_request(1, NetFn.APP, 0, 0x01))
            await asyncio.sleep(0.05)
            sock.close()
            if down is not None:
                await down
        assert server.stats["refused-while-down"] == 1 and "requests" not in server.stats


# -- requests --------------------------------------------------------------------


@run
async def test_response_echoes_seq_netfn_lun_cmd():
    """§4/§7: echo QEMU's seq (escaped when needed), netfn | 1, same LUN and cmd."""
    async with ExternServer(make_bmc(), "bt") as server:
        qemu, _ = await serve_pair(server)
        await qemu.events_(2)
        for seq in (0x42, 0xAA, 0xA0, 0xFF):
            qemu.send(encode_request(seq, OEM, 2, 0x04))
            [rsp] = await qemu.events_(1)
            assert rsp == Response(seq, OEM | 1, 2, 0x04, 0, b"bt\x02")


@run
async def test_unknown_command_is_answered():
    """§14.2 / DESIGN: always answer; an unknown command gets CC 0xC1, not silence."""
    async with ExternServer(make_bmc()) as server:
        qemu, _ = await serve_pair(server)
        await qemu.events_(2)
        rsp = await qemu.request(9, NetFn.STORAGE, 0x99)
        assert (rsp.seq, rsp.netfn, rsp.cc) == (9, NetFn.STORAGE | 1, 0xC1)


@run
async def test_pipelined_same_seq_requests_all_answered_in_order():
    """§10: several requests in flight with the same seq; answer each, in
    arrival order."""
    async with ExternServer(make_bmc(), "ssif") as server:
        qemu, _ = await serve_pair(server)
        await qemu.events_(2)
        qemu.send(encode_request(0, NetFn.APP, 0, 0x01, bytes(63)) + encode_request(0, OEM, 0, 0x04) + encode_request(0, NetFn.APP, 0, 0x01))
        answers = await qemu.events_(3)
        assert [(r.seq, r.netfn, r.cmd) for r in answers] == [(0, 7, 1), (0, OEM | 1, 4), (0, 7, 1)]
        assert answers[0].cc == 0  # the 65-byte SSIF probe is answered (§10.3)
        assert answers[1].data == b"ssif\x00"


@run
async def test_malformed_frames_counted_and_service_continues():
    """§14.1: never crash on a bad frame; the next good request is answered."""
    async with ExternServer(make_bmc()) as server:
        qemu, _ = await serve_pair(server)
        await qemu.events_(2)
        qemu.send(H("00 18 01 e8 a0") + H("aa a1") + H("13 a1"))
        rsp = await qemu.request(1, NetFn.APP, 0x01)
        assert rsp.cc == 0 and rsp.seq == 1
        assert server.stats["bad_checksum"] == 1
        assert server.stats["escape_at_terminator"] == 1
        assert server.stats["unknown_control"] == 1


# -- attention -------------------------------------------------------------------


@run
async def test_attention_sent_only_on_change():
    """§11: attention is a level: ATTN when set, NOATTN when cleared, nothing
    when it does not change."""
    async with ExternServer(make_bmc()) as server:
        qemu, _ = await serve_pair(server)
        await qemu.events_(2)
        qemu.send(QEMU_HELLO)
        qemu.send(encode_request(1, OEM, 0, ATTENTION_CMD, b"\x01"))
        rsp, attention = await qemu.events_(2)
        assert rsp.seq == 1 and attention == Control(ControlOp.ATTN)
        qemu.send(encode_request(2, OEM, 0, ATTENTION_CMD, b"\x01"))
        [rsp] = await qemu.events_(1)
        assert rsp.seq == 2
        assert await qemu.quiet()
        qemu.send(encode_request(3, OEM, 0, ATTENTION_CMD, b"\x00"))
        assert await qemu.read_raw(6 + 2) == encode_request(3, OEM | 1, 0, ATTENTION_CMD, b"\x00") + H("00 a1")


@run
async def test_attention_follows_response_on_the_wire():
    """§11 watchdog flow: the response goes out, then `02 a1` (ATTN_IRQ)."""
    async with ExternServer(make_bmc()) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        qemu.send(QEMU_HELLO + encode_request(7, OEM, 0, ATTENTION_CMD, b"\x02"))
        assert await qemu.read_raw(6 + 2) == encode_request(7, OEM | 1, 0, ATTENTION_CMD, b"\x00") + H("02 a1")


@run
async def test_attn_irq_degrades_to_attn_without_irq_capability():
    """§5: never send a command whose capability bit is clear; ATTN_IRQ needs IRQ."""
    async with ExternServer(make_bmc()) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        qemu.send(H("ff 01 a1 08 10 a1") + encode_request(7, OEM, 0, ATTENTION_CMD, b"\x02"))
        assert (await qemu.read_raw(8))[-2:] == H("01 a1")


@run
async def test_interrupt_enable_mirrored():
    """§11: ENABLE_IRQ / DISABLE_IRQ mirror Set BMC Global Enables bit 0."""
    async with ExternServer(make_bmc()) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        qemu.send(QEMU_HELLO + encode_request(1, OEM, 0, IRQ_CMD, b"\x01"))
        assert (await qemu.read_raw(8))[-2:] == H("05 a1")
        qemu.send(encode_request(2, OEM, 0, IRQ_CMD, b"\x00"))
        assert (await qemu.read_raw(8))[-2:] == H("06 a1")


@run
async def test_reconnect_resends_state():
    """§6/§11: QEMU clears attention on disconnect; the BMC re-sends its state
    after every connect (reconnect=N)."""
    async with ExternServer(make_bmc()) as server:
        address = await server.start("127.0.0.1:0")
        qemu = await FakeQemu.connect(address)
        assert await qemu.read_raw(5) == H("ff 01 a1 00 a1")
        qemu.send(QEMU_HELLO + encode_request(1, OEM, 0, IRQ_CMD, b"\x01") + encode_request(2, OEM, 0, ATTENTION_CMD, b"\x02"))
        await qemu.read_raw(8 + 8)
        await qemu.close()
        while server.connected:
            await asyncio.sleep(0.01)
        qemu = await FakeQemu.connect(address)
        assert await qemu.read_raw(7) == H("ff 01 a1 05 a1 02 a1")
        rsp = await qemu.request(0x28, NetFn.APP, 0x01)  # §6: seq is not reset on reconnect
        assert rsp.seq == 0x28
        await qemu.close()
        assert server.stats["connections"] == 2


@run
async def test_second_connection_refused():
    """§1: ipmi_sim accepts one VM connection per port and closes a second one
    immediately; the first keeps working."""
    async with ExternServer(make_bmc()) as server:
        address = await server.start("127.0.0.1:0")
        first = await FakeQemu.connect(address)
        await first.read_raw(5)
        second = await FakeQemu.connect(address)
        assert await second.eof()
        rsp = await first.request(3, NetFn.APP, 0x01)
        assert rsp.cc == 0 and rsp.seq == 3
        assert server.stats["refused"] == 1
        await second.close()
        await first.close()


@run
async def test_unix_socket(tmp_path):
    """§1: a unix socket is the other safe transport; the file goes on close."""
    path = tmp_path / "bmc.sock"
    server = ExternServer(make_bmc())
    assert await server.start(f"unix:{path}") == f"unix:{path}"
    qemu = await FakeQemu.connect(f"unix:{path}")
    assert await qemu.read_raw(5) == H("ff 01 a1 00 a1")
    assert (await qemu.request(1, NetFn.APP, 0x01)).cc == 0
    await server.close()
    assert await qemu.eof()
    assert not path.exists()


@run
async def test_close_disconnects_peer():
    """Clean close on shutdown: the peer sees EOF and QEMU goes to CC 0xD2 (§6)."""
    server = ExternServer(make_bmc())
    qemu, task = await serve_pair(server)
    await qemu.read_raw(5)
    await server.close()
    assert await qemu.eof()
    await task
    assert not server.runner.running


# -- power ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "op,wire", [(PowerOp.OFF, "03 a1"), (PowerOp.RESET, "04 a1"), (PowerOp.NMI, "07 a1"), (PowerOp.SOFT_OFF, "09 a1")]
)
def test_power_as_extern_control_after_the_response(op, wire):
    """§12 table: power off -> `03 a1`, reset -> `04 a1`, soft -> `09 a1`,
    diag -> `07 a1`; the reply goes out first."""

    @run
    async def body():
        async with ExternServer(make_bmc()) as server:
            qemu, _ = await serve_pair(server)
            await qemu.read_raw(5)
            qemu.send(QEMU_HELLO + encode_request(4, OEM, 0, POWER_CMD, bytes((list(PowerOp).index(op),))))
            assert await qemu.read_raw(8) == encode_request(4, OEM | 1, 0, POWER_CMD, b"\x00") + H(wire)

    body()


@run
async def test_power_not_sent_before_capabilities():
    """§14.3: never send a command whose capability bit is clear (or unknown)."""
    async with ExternServer(make_bmc()) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        await qemu.request(4, OEM, POWER_CMD, bytes((list(PowerOp).index(PowerOp.OFF),)))
        assert await qemu.quiet(0.1)


@run
async def test_power_on_and_cycle_cannot_go_over_extern(caplog):
    """§5: QEMU cannot power a VM on or cycle it; that is logged, nothing sent."""
    caplog.set_level(logging.WARNING, logger="vhw.ipmi.io.runner")
    async with ExternServer(make_bmc()) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        qemu.send(QEMU_HELLO)
        for op in (PowerOp.ON, PowerOp.CYCLE):
            await qemu.request(4, OEM, POWER_CMD, bytes((list(PowerOp).index(op),)))
        assert await qemu.quiet(0.1)
    assert sum("cannot do this" in r.message for r in caplog.records) == 2


class RecordingPowerPort:
    def __init__(self):
        self.calls = []

    async def power(self, op, cause):
        self.calls.append((op, cause))


@run
async def test_power_port_gets_power_instead_of_extern():
    """DESIGN: power goes through one port; given one, nothing goes over extern."""
    port = RecordingPowerPort()
    async with ExternServer(make_bmc(), power_port=port) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        qemu.send(QEMU_HELLO)
        await qemu.request(4, OEM, POWER_CMD, bytes((list(PowerOp).index(PowerOp.ON),)))
        for _ in range(500):
            if port.calls:
                break
            await asyncio.sleep(0.01)
        assert port.calls == [(PowerOp.ON, "test")]
        assert await qemu.quiet()


# -- one Bmc, several interfaces --------------------------------------------------------


@run
async def test_shared_bmc_fans_attention_and_powers_once():
    """Several ExternServers on one Bmc: attention reaches every interface
    (§11), a power action is sent exactly once."""
    runner = BmcRunner(make_bmc())
    async with ExternServer(runner, "kcs") as kcs, ExternServer(runner, "bt") as bt:
        assert kcs.runner is bt.runner is runner
        q_kcs, _ = await serve_pair(kcs)
        q_bt, _ = await serve_pair(bt)
        for q in (q_kcs, q_bt):
            assert await q.read_raw(5) == H("ff 01 a1 00 a1")
            q.send(QEMU_HELLO)
        q_kcs.send(encode_request(1, OEM, 0, ATTENTION_CMD, b"\x01"))
        assert (await q_kcs.read_raw(8))[-2:] == H("01 a1")
        assert await q_bt.read_raw(2) == H("01 a1")
        q_bt.send(encode_request(2, OEM, 0, POWER_CMD, bytes((list(PowerOp).index(PowerOp.RESET),))))
        await q_bt.read_raw(6)
        peers = {"kcs": q_kcs, "bt": q_bt}
        first = None
        for _ in range(50):  # up to ~5 s under load for the first RESET
            for name, q in peers.items():
                if not await q.quiet(0.05):
                    first = name
                    break
            if first:
                break
        assert first is not None and bytes(peers.pop(first).raw) == H("04 a1")
        [other] = peers.values()
        assert await other.quiet(0.2)


class TimerPart:
    """A Bmc part with one deadline, like a watchdog pre-timeout."""

    def __init__(self, bmc: Bmc, delay: float):
        self.bmc, self.deadline = bmc, None
        self.delay = delay

    def arm(self, now: float) -> None:
        self.deadline = now + self.delay

    def next_deadline(self):
        return self.deadline

    def poll(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None
            self.bmc.emit(Attention(AttentionState.ATTN_IRQ))


@run
async def test_timer_fires_attention_without_a_request():
    """§11 watchdog flow: at the pre-timeout the BMC sends `02 a1` on its own."""
    bmc = make_bmc()
    part = TimerPart(bmc, 0.05)
    bmc.parts["timer"] = part

    @bmc.table.command(OEM, 0x05, privilege=Privilege.USER)
    def arm(b, ctx, data):
        part.arm(b.now)

    async with ExternServer(bmc) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        qemu.send(QEMU_HELLO)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await qemu.request(1, OEM, 0x05)
        assert await qemu.read_raw(2) == H("02 a1")
        assert loop.time() - started >= 0.05


class StuckPart:
    """A buggy part whose deadline stays in the past after poll."""

    def __init__(self):
        self.polls = 0

    def next_deadline(self):
        return 0.0

    def poll(self, now):
        self.polls += 1


@run
async def test_stuck_deadline_does_not_spin(caplog):
    """A part that never moves its deadline must not busy-loop the BMC: QEMU
    still gets answers (§7: read the socket promptly)."""
    bmc = make_bmc()
    bmc.parts["stuck"] = part = StuckPart()
    async with ExternServer(bmc) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        await asyncio.sleep(0.3)
        assert (await qemu.request(1, NetFn.APP, 0x01)).cc == 0
    assert part.polls < 30  # about one per 0.1 s back-off, not thousands
    assert "stays in the past" in caplog.text


class BrokenBmc(Bmc):
    def handle(self, *args, **kwargs):
        raise RuntimeError("bug")


@run
async def test_bmc_that_raises_still_answers():
    """DESIGN: QEMU's proxy waits for a reply; always answer (CC 0xFF on a bug)."""
    async with ExternServer(make_bmc(BrokenBmc)) as server:
        qemu, _ = await serve_pair(server)
        await qemu.read_raw(5)
        rsp = await qemu.request(5, NetFn.APP, 0x01)
        assert (rsp.seq, rsp.netfn, rsp.cmd, rsp.cc) == (5, 7, 1, 0xFF)


# -- pieces ---------------------------------------------------------------------------


def test_parse_address():
    """§1: TCP host:port (port 0 allowed) or a unix socket path."""
    assert parse_address("127.0.0.1:0") == ("tcp", ("127.0.0.1", 0))
    assert parse_address("[::1]:9002") == ("tcp", ("::1", 9002))
    assert parse_address("unix:/run/vhw/bmc.sock") == ("unix", "/run/vhw/bmc.sock")
    for bad in ("localhost", "host:port", "unix:", "h:70000"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_interface_is_validated():
    """§9: the interface comes from configuration, one of kcs, bt, ssif."""
    with pytest.raises(ValueError):
        ExternServer(make_bmc(), "smic")


def test_one_power_port_per_bmc():
    """DESIGN: power actions go to exactly one power port."""
    kcs = ExternServer(make_bmc(), power_port=RecordingPowerPort())
    assert ExternServer(kcs.runner, "ssif", power_port=kcs.runner.power_port).runner is kcs.runner
    with pytest.raises(ValueError):
        ExternServer(kcs.runner, "bt", power_port=RecordingPowerPort())


@run
async def test_extern_power_port_skips_disconnected_and_incapable():
    """§5: the first connected peer that advertised the bit carries the command."""

    class Peer:
        def __init__(self, connected, caps):
            self.connected, self.caps, self.sent = connected, caps, []

        def can(self, op):
            return op in self.caps

        def send_control(self, op, arg=None):
            self.sent.append(op)
            return True

    peers = [Peer(False, {ControlOp.POWEROFF}), Peer(True, set()), Peer(True, {ControlOp.POWEROFF}), Peer(True, {ControlOp.POWEROFF})]
    await ExternPowerPort(peers).power(PowerOp.OFF, "test")
    assert [p.sent for p in peers] == [[], [], [ControlOp.POWEROFF], []]


def test_the_runner_is_the_one_handed_in():
    """Actions must be routed once: the transports of a Bmc share the runner they are given,
    and a bare Bmc gets one of its own (no registry behind the scenes)."""
    bmc = make_bmc()
    runner = BmcRunner(bmc)
    assert ExternServer(runner, "bt").runner is runner
    own = ExternServer(make_bmc(), "kcs").runner
    assert own is not runner and ExternServer(own.bmc, "ssif").runner is not own
