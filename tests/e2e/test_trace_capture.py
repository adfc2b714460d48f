"""Capture (issue 8): a real guest's traffic in trace.jsonl and in a pcapng tshark decodes.

"every message on every transport (in-band IPMI, LAN, mpqemu/I2O, console)
recorded with timestamps to a JSON-lines trace for assertions and to pcapng
that Wireshark and tshark decode (LAN as RMCP/IPMI; in-band IPMI messages in
an encapsulation tshark's IPMI dissector understands; verify with tshark in a
test)."

One linux-x86 machine: vhw's BMC on KCS and on LAN (127.0.0.1, any port), one
I2O IOP.  The guest runs ``ipmitool mc info`` (Get Device ID, IPMI 2.0 20.1),
the host runs ``ipmitool -I lanplus`` against the LAN port; then tshark reads
the pcapng.  tshark 4.0 shows IPMI message fields only with
``ipmi.dissect_bus_commands`` on (docs/trace.md).
"""

import asyncio
import shutil
import subprocess

import pytest

from vhw.machine.description import parse_description
from vhw.trace import Trace, read_jsonl

ADMIN = ("admin", "adminpass")


def capture_desc(tmp_path):
    return parse_description({
        "machine": {"memory": 256},
        "bmc": {"backend": "vhw", "interfaces": ["kcs"], "lan": "127.0.0.1:0",
                "users": [{"id": 2, "name": ADMIN[0], "password": ADMIN[1], "privilege": "administrator"}]},
        "i2o": [{"disk": [{"image": str(tmp_path / "iop0.img"), "size": 16}]}],
    })


async def host_lanplus(m, *args: str) -> tuple[int, str]:
    host, port = m.bmc_service.lan_address
    proc = await asyncio.create_subprocess_exec(
        "ipmitool", "-I", "lanplus", "-H", host, "-p", str(port), "-U", ADMIN[0], "-P", ADMIN[1], "-C", "17", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode, out.decode(errors="replace")


def tshark(pcapng, *args: str) -> list[list[str]]:
    out = subprocess.run(["tshark", "-r", str(pcapng), "-o", "ipmi.dissect_bus_commands:TRUE", *args,
                          "-E", "separator=|"], capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (Makefile DEB_PACKAGES)")
def test_guest_and_lan_traffic_decoded_by_tshark(make_machine, tmp_path):
    trace_dir = tmp_path / "trace"
    trace = Trace.to_dir(trace_dir)

    async def scenario():
        async with make_machine(capture_desc(tmp_path), trace=trace) as m:
            r = await m.run("ipmitool -I open mc info", timeout=120)
            assert r.returncode == 0 and b"IPMI Version" in r.stdout, r.stdout + r.stderr
            rc, text = await host_lanplus(m, "mc", "info")
            assert rc == 0 and "IPMI Version" in text, text
            return m.bmc_service.lan_address

    lan_address = asyncio.run(scenario())
    trace.close()

    # -- trace.jsonl: in-band, LAN, mpqemu and console records, with their fields
    records = read_jsonl(trace_dir / "trace.jsonl")
    assert records == sorted(records, key=lambda r: r["t"])  # one clock, written in order
    kcs_in = [r for r in records if r["channel"] == "ipmi-kcs" and r["dir"] == "in"]
    kcs_out = [r for r in records if r["channel"] == "ipmi-kcs" and r["dir"] == "out"]
    gets = [r for r in kcs_in if (r.get("netfn"), r.get("cmd")) == (6, 1)]
    assert gets, kcs_in[:5]
    answers = [r for r in kcs_out if (r.get("netfn"), r.get("cmd"), r.get("cc")) == (7, 1, 0)]
    assert {r["seq"] for r in gets} <= {r["seq"] for r in answers}  # every Get Device ID answered
    lan = [r for r in records if r["channel"] == "lan"]
    assert {r["dir"] for r in lan} == {"in", "out"}
    assert all(r["local"] == f"{lan_address[0]}:{lan_address[1]}" for r in lan)
    mpq = [r for r in records if r["channel"] == "mpqemu"]
    assert any(r.get("cmd") == "PCI_CFGREAD" for r in mpq) and any(r.get("cmd") == "BAR_READ" for r in mpq), mpq[:5]
    assert all(r["dev"] == "i2o0" for r in mpq)
    assert any(r.get("bar") == 0 for r in mpq if r.get("cmd") in ("BAR_READ", "BAR_WRITE"))
    console = b"".join(bytes.fromhex(r["hex"]) for r in records if r["channel"] == "console")
    assert b"VHW-READY" in console  # the guest init's line on ttyS0 (the kernel runs quiet)

    # -- trace.pcapng, as tshark decodes it
    pcap = trace_dir / "trace.pcapng"
    inband = tshark(pcap, "-Y", 'frame.interface_name == "ipmi-kcs" && ipmi.header.command == 0x01',
                    "-T", "fields", "-e", "ipmi.header.netfn", "-e", "ipmi.header.command",
                    "-e", "ipmi.header.completion", "-e", "_ws.col.Info")
    assert ["0x06", "0x01", "", "Req, Get Device ID"] in inband, inband[:6]
    assert ["0x07", "0x01", "0x00", "Rsp, Get Device ID, Command Completed Normally (00h)"] in inband, inband[:6]
    matched = tshark(pcap, "-Y", 'frame.interface_name == "ipmi-kcs" && ipmi.response_to', "-T", "fields",
                     "-e", "ipmi.response_to")
    assert matched  # tshark paired responses with their requests

    lan_rows = tshark(pcap, "-Y", 'frame.interface_name == "lan"', "-T", "fields", "-e", "udp.srcport",
                      "-e", "udp.dstport", "-e", "rmcp.class", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info")
    assert lan_rows and all("623" in (row[0], row[1]) and row[2] == "0x07" for row in lan_rows), lan_rows[:6]
    infos = [row[4] for row in lan_rows]
    # ipmitool lanplus: v1.5 Get Channel Authentication Capabilities (22.13), then RMCP+ (13.17-13.23).
    assert "Req, Get Channel Authentication Capabilities" in infos, infos
    assert any(i.startswith("Rsp, Get Channel Authentication Capabilities, Command Completed Normally")
               for i in infos), infos
    payloads = tshark(pcap, "-Y", 'frame.interface_name == "lan" && ipmi_session.payloadtype',
                      "-T", "fields", "-e", "ipmi_session.payloadtype")
    kinds = {row[0] for row in payloads}
    assert {"0x10", "0x11", "0x12", "0x13", "0x14", "0x15"} <= kinds, kinds  # Open Session, RAKP 1-4

    # -- vhw trace prints the same story
    from vhw.cli.trace import format_records

    lines = list(format_records(records, channels={"ipmi-kcs"}))
    assert any("App Get Device Id rsp (NetFn 0x07 cmd 0x01) CC 0x00 (OK)" in line for line in lines), lines[:5]
