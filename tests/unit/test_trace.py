"""vhw.trace: records, JSON lines, thread safety, the pcapng file, and `vhw trace`.

Issue 8 (capture): "every message on every transport ... recorded with
timestamps to a JSON-lines trace for assertions and to pcapng that Wireshark
and tshark decode (LAN as RMCP/IPMI; in-band IPMI messages in an
encapsulation tshark's IPMI dissector understands)".
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from vhw.ipmi.wire import ipmb
from vhw import cli
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.wire.extern import encode_control, encode_request, encode_response
from vhw.ipmi.io.extern_server import ExternServer
from vhw.ipmi.wire import rmcp, session15
from vhw.ipmi.io.service import BmcService
from vhw.pci.mpqemu import HEADER, encode_ret
from vhw.pci.mpqemu_server import MpqemuServer
from vhw.trace import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPMI_HPM_2,
    LINKTYPE_USER0,
    LINKTYPE_USER1,
    LINKTYPE_USER3,
    NULL_TRACE,
    Trace,
    extern_fields,
    iter_pcapng_blocks,
    lan_fields,
    read_jsonl,
)
from vhw.cli.trace import format_records

DATA = Path(__file__).parent / "data"
GET_DEVICE_ID_RSP = bytes.fromhex("00 20 01 00 01 02 8f 00 00 00 00 00 00 00 00 00")


def ticking(start: float = 1_700_000_000.0, step: float = 0.25):
    counter = itertools.count()
    return lambda: start + step * next(counter)


# -- records and JSON lines ----------------------------------------------------


def test_record_keeps_fields_and_filters():
    trace = Trace(clock=ticking())
    trace.record("ipmi-kcs", "in", b"\x01\x18\x01\xe6\xa0", seq=1, netfn=6, cmd=1)
    trace.record("console", "out", b"ok\n")
    [rec] = trace.records("ipmi-kcs")
    assert rec == {"t": 1_700_000_000.0, "channel": "ipmi-kcs", "dir": "in", "len": 5, "hex": "011801e6a0",
                   "seq": 1, "netfn": 6, "cmd": 1}
    assert [r["channel"] for r in trace.records(direction="out")] == ["console"]
    with pytest.raises(ValueError):
        trace.record("nonsense", "in", b"")
    with pytest.raises(ValueError):
        trace.record("lan", "sideways", b"")


def test_null_trace_records_nothing():
    assert not NULL_TRACE.enabled
    NULL_TRACE.record("lan", "in", b"x")
    assert NULL_TRACE.records() == []


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "t.jsonl"
    trace = Trace(path, clock=ticking())
    trace.record("lan", "in", rmcp.ping(tag=3), peer="127.0.0.1:5000", local="127.0.0.1:623")
    trace.record("fault", "event", kind="drop", target="ipmi-kcs", detail={"nth": 2})
    trace.record("mpqemu", "out", encode_ret(0x44), dev="i2o0", cmd="RET", ret=0x44)
    trace.close()
    assert read_jsonl(path) == trace.records()
    assert len(path.read_text().splitlines()) == 3


@pytest.mark.parametrize("content, message", [
    ("{not json\n", "t.jsonl:1: not a trace record (invalid JSON"),
    ('{"t": 1, "channel": "lan", "dir": "in", "hex": ""}\n[1, 2]\n', "t.jsonl:2: not a trace record (a JSON list"),
    ('{"t": 1, "channel": "lan", "hex": ""}\n', "t.jsonl:1: not a trace record (no dir)"),
    ('{"t": 1, "channel": "lan", "dir": "in", "hex": "zz"}\n', "hex is not hexadecimal"),
])
def test_read_jsonl_names_the_bad_line(tmp_path, content, message):
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError) as e:
        read_jsonl(path)
    assert message in str(e.value)


def test_thread_safety_no_lost_or_torn_records(tmp_path):
    """Records come from the asyncio loop and from mpqemu device threads at once."""
    trace = Trace.to_dir(tmp_path)
    n_threads, per_thread = 6, 300
    start = threading.Barrier(n_threads)

    def worker(i):
        start.wait()
        for k in range(per_thread):
            trace.record("console", "out", bytes([i]) * 40, thread=i, k=k)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trace.close()
    rows = read_jsonl(tmp_path / "trace.jsonl")
    assert len(rows) == n_threads * per_thread
    for i in range(n_threads):  # each thread's records, complete and in its order
        assert [r["k"] for r in rows if r["thread"] == i] == list(range(per_thread))
        assert all(r["hex"] == f"{i:02x}" * 40 for r in rows if r["thread"] == i)
    packets = [body for kind, body in iter_pcapng_blocks((tmp_path / "trace.pcapng").read_bytes()) if kind == 6]
    assert len(packets) == n_threads * per_thread


# -- pcapng ----------------------------------------------------------------------


def pcapng(path: Path):
    """(interfaces [(linktype, name)], packets [(ifid, ts_us, data, comment, flags)])."""
    interfaces, packets = [], []
    blocks = list(iter_pcapng_blocks(path.read_bytes()))
    assert blocks[0][0] == 0x0A0D0D0A and blocks[0][1][:4] == struct.pack("<I", 0x1A2B3C4D)
    for kind, body in blocks[1:]:
        if kind == 1:
            linktype = struct.unpack_from("<H", body)[0]
            opts = options(body[8:])
            interfaces.append((linktype, opts[2].decode()))
        elif kind == 6:
            ifid, hi, lo, caplen, origlen = struct.unpack_from("<IIIII", body)
            data = body[20:20 + caplen]
            opts = options(body[20 + caplen + (-caplen % 4):])
            comment = opts.get(1, b"").decode() or None
            flags = struct.unpack("<I", opts[2])[0] if 2 in opts else None
            packets.append((ifid, hi << 32 | lo, data, comment, flags))
    return interfaces, packets


def options(raw: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    while i + 4 <= len(raw):
        code, length = struct.unpack_from("<HH", raw, i)
        if code == 0:
            break
        out[code] = raw[i + 4:i + 4 + length]
        i += 4 + length + (-length % 4)
    return out


def test_pcapng_in_band_lan_mpqemu_console_and_events(tmp_path):
    trace = Trace.to_dir(tmp_path, clock=ticking())
    request = encode_request(0x21, 6, 0, 1)
    trace.record("ipmi-kcs", "in", request[:2])  # a frame split across two reads
    trace.record("ipmi-kcs", "in", request[2:])
    trace.record("ipmi-kcs", "out", encode_response(0x21, 6, 0, 1, GET_DEVICE_ID_RSP) + encode_control(1))
    trace.record("lan", "in", rmcp.ping(tag=7), peer="127.0.0.1:40000", local="127.0.0.1:31234")
    trace.record("lan", "out", rmcp.pack(rmcp.CLASS_ASF, rmcp.pong(7)), peer="127.0.0.1:40000",
                 local="127.0.0.1:31234")
    bar_read = HEADER.pack(5, 0, 24) + struct.pack("<QQI?3x", 0xFEBB0040, 0, 4, True)
    trace.record("mpqemu", "in", bar_read + bar_read[:10], dev="i2o0")
    trace.record("mpqemu", "in", bar_read[10:], dev="i2o0")
    trace.record("console", "out", b"login: ")
    trace.record("fault", "event", kind="corrupt", target="ipmi-kcs")
    trace.close()

    interfaces, packets = pcapng(tmp_path / "trace.pcapng")
    assert interfaces == [(LINKTYPE_IPMI_HPM_2, "ipmi-kcs"), (LINKTYPE_ETHERNET, "lan"),
                          (LINKTYPE_USER0, "mpqemu i2o0"), (LINKTYPE_USER1, "console"), (LINKTYPE_USER3, "events")]
    by_if = {i: [p for p in packets if p[0] == i] for i in range(len(interfaces))}

    # In-band: one HPM.2 block per message (PICMG HPM.2 table 3-20 layout).
    req, rsp, ctl = by_if[0]
    assert req[2][0] == 0x0F and req[2][7] == 0x05 and req[2][8] == 0x80  # channel 15, KCS, to the BMC
    assert req[2][11:] == bytes([6 << 2, 0x01]) and req[2][10] == 2
    assert req[4] == 1 and req[3] == "in-band kcs request seq 0x21"
    assert req[1] == 1_700_000_000_250_000  # the time of the record that completed the frame
    assert rsp[2][8] == 0x00 and rsp[2][11:] == bytes([7 << 2, 0x01]) + GET_DEVICE_ID_RSP and rsp[4] == 2
    assert (ctl[2][0] >> 4) & 3 == 2 and ctl[2][11:] == b"kcs control ATTN"  # embedded ASCII block

    # LAN: Ethernet/IPv4/UDP, the BMC side on port 623; scapy agrees on every checksum.
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    ping, pong = by_if[1]
    for (_, _, frame, comment, _), src, dst in ((ping, ("127.0.0.1", 40000), ("127.0.0.1", 623)),
                                                (pong, ("127.0.0.1", 623), ("127.0.0.1", 40000))):
        pkt = Ether(frame)
        assert (pkt[IP].src, pkt[UDP].sport) == src and (pkt[IP].dst, pkt[UDP].dport) == dst
        ip_sum, udp_sum = pkt[IP].chksum, pkt[UDP].chksum
        del pkt[IP].chksum, pkt[UDP].chksum
        rebuilt = Ether(bytes(pkt))
        assert (rebuilt[IP].chksum, rebuilt[UDP].chksum) == (ip_sum, udp_sum)
        assert comment == "BMC port 31234 shown as 623"
    assert bytes(Ether(ping[2])[UDP].payload) == rmcp.ping(tag=7)

    # mpqemu: one packet per message although the reads cut them differently.
    assert [p[2] for p in by_if[2]] == [bar_read, bar_read]
    assert by_if[2][0][3] == "BAR_READ mem 0xfebb0040 (4 bytes)"
    assert by_if[3][0][2] == b"login: "
    event = json.loads(by_if[4][0][2])
    assert event["kind"] == "corrupt" and event["channel"] == "fault"


def test_extern_fields_of_written_frames():
    assert extern_fields(encode_response(5, 6, 0, 1, b"\x00\x20")) == {"seq": 5, "netfn": 7, "lun": 0, "cmd": 1,
                                                                       "cc": 0}
    assert extern_fields(encode_control(0xFF, 1)) == {"control": "VERSION", "arg": 1}
    bad = bytearray(encode_response(5, 6, 0, 1, b"\x00"))
    bad[-2] ^= 1
    assert extern_fields(bytes(bad))["bad_checksum"] is True
    assert len(extern_fields(encode_control(1) + encode_control(5))["frames"]) == 2


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_the_pcapng(tmp_path):
    """The in-band request/response pair and a LAN v1.5 request, as tshark 4 reads them."""
    trace = Trace.to_dir(tmp_path, clock=ticking(step=0.001))
    trace.record("ipmi-bt", "in", encode_request(9, 6, 0, 1))
    trace.record("ipmi-bt", "out", encode_response(9, 6, 0, 1, GET_DEVICE_ID_RSP))
    msg = ipmb.encode_request(6, 0x38, b"\x8e\x04", rq_seq=1)
    trace.record("lan", "in", session15.encode_packet(0, 0, 0, msg),
                 peer="127.0.0.1:40000", local="127.0.0.1:623")
    trace.close()
    out = subprocess.run(["tshark", "-r", str(tmp_path / "trace.pcapng"), "-o", "ipmi.dissect_bus_commands:TRUE",
                          "-T", "fields", "-E", "separator=|", "-e", "frame.interface_name",
                          "-e", "ipmi.header.netfn", "-e", "ipmi.header.command", "-e", "ipmi.header.completion",
                          "-e", "_ws.col.Info"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines == ["ipmi-bt|0x06|0x01||Req, Get Device ID",
                     "ipmi-bt|0x07|0x01|0x00|Rsp, Get Device ID, Command Completed Normally (00h)",
                     "lan|0x06|0x38||Req, Get Channel Authentication Capabilities"], out


# -- the transports record ---------------------------------------------------------


def test_extern_server_records_requests_and_answers():
    async def main():
        trace = Trace(clock=ticking())
        server = ExternServer(BmcService(BmcConfig()).runner, interface="bt", trace=trace)
        qemu, bmc = socket.socketpair()
        task = asyncio.ensure_future(server.serve_socket(bmc))
        reader, writer = await asyncio.open_connection(sock=qemu)
        writer.write(encode_request(0x33, 6, 0, 1))
        for _ in range(250):  # until the answer went out (5 s at most)
            if any(r["dir"] == "out" and r.get("cmd") == 1 for r in trace.records()):
                break
            await asyncio.sleep(0.02)
        writer.close()
        await asyncio.wait_for(task, 5)
        await server.close()
        return trace

    trace = asyncio.run(main())
    ins = trace.records("ipmi-bt", "in")
    assert ins == [{"t": ins[0]["t"], "channel": "ipmi-bt", "dir": "in", "len": 5,
                    "hex": encode_request(0x33, 6, 0, 1).hex(), "seq": 0x33, "netfn": 6, "lun": 0, "cmd": 1}]
    outs = trace.records("ipmi-bt", "out")
    assert outs[0]["control"] == "VERSION"  # announced on connect (ipmi-extern.md §6)
    [answer] = [r for r in outs if r.get("cmd") == 1]
    assert answer["seq"] == 0x33 and answer["netfn"] == 7 and answer["cc"] == 0
    assert trace.records().index(ins[0]) < trace.records().index(answer)


def lan_exchange(*datagrams):
    """Send each datagram to a traced BMC's LAN server and wait for its answer;
    returns the trace, the server's and the client's addresses and the answers."""
    async def main():
        trace = Trace()
        service = BmcService(BmcConfig.from_dict({"lan": "127.0.0.1:0"}), trace=trace)
        addr = await service.start_lan("127.0.0.1:0")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            answers = []
            for datagram in datagrams:
                sock.sendto(datagram, addr)
                answers.append(await asyncio.wait_for(loop.sock_recv(sock, 1024), 2))
            return trace, addr, sock.getsockname(), answers
        finally:
            sock.close()
            await service.close()

    return asyncio.run(main())


def test_lan_server_records_datagrams_both_ways():
    trace, addr, me, [pong] = lan_exchange(rmcp.ping(tag=4))
    [rin] = trace.records("lan", "in")
    [rout] = trace.records("lan", "out")
    assert bytes.fromhex(rin["hex"]) == rmcp.ping(tag=4) and bytes.fromhex(rout["hex"]) == pong
    assert rin["peer"] == rout["peer"] == f"127.0.0.1:{me[1]}"
    assert rin["local"] == f"{addr[0]}:{addr[1]}"


class _Dev:
    def bar_read(self, addr, size, memory):
        return 0x1234

    def config_read(self, addr, length):
        return 0


def test_mpqemu_server_records_messages_and_replies():
    qemu, remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    trace = Trace()
    server = MpqemuServer(remote, _Dev(), trace=trace, name="i2o3")
    thread = threading.Thread(target=server.run)
    thread.start()
    msg = HEADER.pack(5, 0, 24) + struct.pack("<QQI?3x", 0xFEBB0044, 0, 4, True)
    qemu.sendall(msg)
    reply = qemu.recv(64)
    qemu.close()
    thread.join(5)
    remote.close()
    assert reply == encode_ret(0x1234)
    recs = trace.records("mpqemu")
    assert [(r["dir"], r.get("what")) for r in recs] == [("event", "connected"), ("in", None), ("out", None),
                                                         ("event", "closed")]
    rin, rout = recs[1], recs[2]
    assert rin["dev"] == "i2o3" and rin["cmd"] == "BAR_READ" and rin["addr"] == 0xFEBB0044 and rin["size"] == 4
    assert bytes.fromhex(rin["hex"]) == msg
    assert rout["cmd"] == "RET" and rout["ret"] == 0x1234 and bytes.fromhex(rout["hex"]) == reply


# -- `vhw trace` ----------------------------------------------------------------------

FIXTURE = DATA / "trace_fixture.jsonl"
EXPECTED = """\
    0.000000  console   out   'Linux version 6.1\\r\\n'
    0.250000  ipmi-kcs  in    seq 0x05 App Get Device Id req (NetFn 0x06 cmd 0x01)
    0.500000  ipmi-kcs  out   seq 0x05 App Get Device Id rsp (NetFn 0x07 cmd 0x01) CC 0x00 (OK) [20 01 00 01 02 8f 00 00 00 00 00 00 00 00 00]
    0.750000  ipmi-kcs  in    seq 0x06 Chassis cmd 0xFE req (NetFn 0x00 cmd 0xFE) [01]
    1.000000  ipmi-kcs  out   seq 0x06 Chassis cmd 0xFE rsp (NetFn 0x01 cmd 0xFE) CC 0xC1 (invalid command)
    1.250000  ipmi-kcs  out   control ATTN
    1.500000  lan       in    RMCP ASF Presence Ping tag 7  (from 127.0.0.1:40000)
    1.750000  lan       out   RMCP ASF Presence Pong tag 7  (to 127.0.0.1:40000)
    2.000000  lan       in    IPMI v1.5 auth none session 0x00000000 seq 0: rqSeq 1 App Get Channel Authentication Capabilities req (NetFn 0x06 cmd 0x38) [8e 04]  (from 127.0.0.1:40000)
    2.250000  mpqemu    in    i2o0: BAR_WRITE mem 0xfebb0040 = 0x1f000 (4 bytes)  [BAR0+0x40]
    2.500000  mpqemu    in    i2o0: BAR_READ mem 0xfebb0044 (4 bytes)  [BAR0+0x44]
    2.750000  mpqemu    out   i2o0: RET 0xffffffff
    3.000000  fault     event kind=drop nth=2 target=ipmi-kcs
"""


def make_fixture(path: Path) -> None:
    """How tests/unit/data/trace_fixture.jsonl was made (kept to regenerate it)."""
    path.unlink(missing_ok=True)
    t = Trace(path, clock=ticking())
    t.record("console", "out", b"Linux version 6.1\r\n")
    t.record("ipmi-kcs", "in", encode_request(5, 6, 0, 1), seq=5, netfn=6, lun=0, cmd=1)
    t.record("ipmi-kcs", "out", encode_response(5, 6, 0, 1, GET_DEVICE_ID_RSP), seq=5, netfn=7, lun=0, cmd=1, cc=0)
    t.record("ipmi-kcs", "in", encode_request(6, 0, 0, 0xFE, b"\x01"), seq=6, netfn=0, lun=0, cmd=0xFE)
    t.record("ipmi-kcs", "out", encode_response(6, 0, 0, 0xFE, b"\xc1"), seq=6, netfn=1, lun=0, cmd=0xFE, cc=0xC1)
    t.record("ipmi-kcs", "out", encode_control(1), control="ATTN")
    lan = {"peer": "127.0.0.1:40000", "local": "127.0.0.1:623"}
    t.record("lan", "in", rmcp.ping(tag=7), **lan)
    t.record("lan", "out", rmcp.pack(rmcp.CLASS_ASF, rmcp.pong(7)), **lan)
    msg = ipmb.encode_request(6, 0x38, b"\x8e\x04", rq_seq=1)
    t.record("lan", "in", session15.encode_packet(0, 0, 0, msg), **lan)
    t.record("mpqemu", "in", HEADER.pack(4, 0, 24) + struct.pack("<QQI?3x", 0xFEBB0040, 0x1F000, 4, True),
             dev="i2o0", cmd="BAR_WRITE", addr=0xFEBB0040, val=0x1F000, size=4, memory=True, bar=0, offset=0x40)
    t.record("mpqemu", "in", HEADER.pack(5, 0, 24) + struct.pack("<QQI?3x", 0xFEBB0044, 0, 4, True),
             dev="i2o0", cmd="BAR_READ", addr=0xFEBB0044, size=4, memory=True, bar=0, offset=0x44)
    t.record("mpqemu", "out", encode_ret(0xFFFFFFFF), dev="i2o0", cmd="RET", ret=0xFFFFFFFF)
    t.record("fault", "event", kind="drop", target="ipmi-kcs", nth=2)
    t.close()


def test_fixture_is_what_make_fixture_writes(tmp_path):
    make_fixture(tmp_path / "f.jsonl")
    assert read_jsonl(tmp_path / "f.jsonl") == read_jsonl(FIXTURE)


def test_pretty_printer_on_the_fixture(capsys):
    assert cli.main(["trace", str(FIXTURE)]) == 0
    assert capsys.readouterr().out == EXPECTED


def test_pretty_printer_filters(capsys, tmp_path):
    assert cli.main(["trace", str(FIXTURE), "--channel", "lan,fault", "--grep", "PONG|drop"]) == 0
    assert capsys.readouterr().out.splitlines() == [EXPECTED.splitlines()[7], EXPECTED.splitlines()[12]]
    assert cli.main(["trace", str(FIXTURE), "-c", "mpqemu", "--since", "2.4", "--until", "2.6", "--hex"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(EXPECTED.splitlines()[10]) and line.endswith(
        "  [" + (HEADER.pack(5, 0, 24) + struct.pack("<QQI?3x", 0xFEBB0044, 0, 4, True)).hex() + "]")
    shutil.copy(FIXTURE, tmp_path / "trace.jsonl")  # a directory made by Trace.to_dir
    assert cli.main(["trace", str(tmp_path), "--dir", "event"]) == 0
    assert capsys.readouterr().out.splitlines() == [EXPECTED.splitlines()[12]]


def test_decoding_keeps_frames_split_across_records():
    rsp = encode_response(5, 6, 0, 1, GET_DEVICE_ID_RSP)
    recs = [{"t": 0.0, "channel": "ipmi-kcs", "dir": "out", "hex": rsp[:7].hex()},
            {"t": 0.1, "channel": "ipmi-kcs", "dir": "out", "hex": rsp[7:].hex()}]
    first, second = format_records(recs)
    assert first.endswith("(partial frame, 7 bytes so far)")
    assert "App Get Device Id rsp" in second and "CC 0x00 (OK)" in second


@pytest.mark.parametrize("content, expect", [
    (None, "vhw: cannot read trace {path}: No such file or directory"),
    ("this is not json\n", "vhw: {path}:1: not a trace record (invalid JSON: Expecting value)"),
    (b"\xff\xfe\x00garbage", "vhw: {path}: not a trace (not UTF-8 text: invalid start byte)"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, content, expect):
    path = tmp_path / "trace.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert cli.main(["trace", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == expect.format(path=path) + "\n" and captured.out == ""


def test_lan_records_carry_netfn_cmd_and_cc():
    """The LAN server's records name the IPMI message (IPMI 2.0 section 13.8: NetFn, command,
    and for a response the completion code first in its data), whether a v1.5 packet or an
    RMCP+ IPMI payload outside a session; a pong names its ASF type (40h)."""
    v15 = session15.encode_packet(0, 0, 0, ipmb.encode_request(6, 0x38, b"\x8e\x04", rq_seq=1))
    plus = bytes([6, 0, 0xFF, 7, 6, 0]) + struct.pack("<IIH", 0, 0, 10) \
        + ipmb.encode_request(6, 0x54, b"\x0e\x00\x80", rq_seq=2)
    trace, *_ = lan_exchange(v15, plus, rmcp.ping(tag=4))
    got = [(r["dir"], r.get("netfn"), r.get("cmd"), r.get("cc"), r.get("session_id"), r.get("payload"),
            r.get("asf")) for r in trace.records("lan")]
    assert got == [("in", 0x06, 0x38, None, 0, None, None), ("out", 0x07, 0x38, 0x00, 0, None, None),
                   ("in", 0x06, 0x54, None, 0, 0, None), ("out", 0x07, 0x54, 0x00, 0, 0, None),
                   ("in", None, None, None, None, None, 0x80), ("out", None, None, None, None, None, 0x40)]


def test_lan_fields_of_what_cannot_be_read():
    assert lan_fields(b"\x01\x02") == {}
    encrypted = bytes([6, 0, 0xFF, 7, 6, 0xC0]) + struct.pack("<IIH", 0x1234, 5, 16) + bytes(16)
    assert lan_fields(encrypted) == {"payload": 0, "session_id": 0x1234, "encrypted": True}
