"""The driver's event path: event message buffer, attention and the ipmi_devintf queue."""

import json
import time

import pytest

pytestmark = pytest.mark.vhw(description="bmc-kcs.toml")


def test_a_burst_of_events_is_drained_by_the_driver_in_order(vhw_machine):
    """IPMI 2.0 §18.8/§22.8: the BMC raises attention while the event message buffer
    holds an event; the driver reads it (Read Event Message Buffer, 35h) until the BMC
    answers 80h "buffer empty", and queues each to users that enabled events. Five
    events posted at once reach the driver in order, none lost while the one-entry
    buffer is busy, and the first one reaches the waiting program."""
    conform = vhw_machine.program("ipmi_conform")
    started = time.time()
    reader = vhw_machine.run_background(f"{conform} -i kcs -c events -e 20", timeout=60)
    # Listening: having enabled events the program sends one Get Device ID (App 06h, cmd 01h).
    vhw_machine.wait_for(lambda: vhw_machine.requests("ipmi-kcs", 0x06, 0x01, since=started), 30,
                         "Get Device ID from the event receiver")
    posted = time.time()
    assert vhw_machine.faults.bmc.flood_events(5) == 5   # also logged in the SEL
    r = reader.result(90)
    vhw_machine.conformance(r.stdout)
    rows = [json.loads(line) for line in r.stdout.decode().splitlines() if line.startswith("{")]
    got = [bytes.fromhex(row["event"].replace(" ", "")) for row in rows if "event" in row]
    # flood_record(i): sensor type 12h (System Event), event data 2 = i (vhw.faults).
    assert got and got[0][10] == 0x12 and got[0][14] == 0, rows
    # The driver's reads, from the trace: a response frame is seq, netfn/lun, cmd, cc, data, checksum.
    answers = [bytes.fromhex(rec["hex"]) for rec in vhw_machine.trace.records("ipmi-kcs", "out")
               if rec.get("cmd") == 0x35 and rec.get("netfn") == 0x07 and rec["t"] >= posted]
    drained = [a[4:-2] for a in answers if a[3] == 0x00]
    assert [e[14] for e in drained] == [0, 1, 2, 3, 4], answers
    assert answers[-1][3] == 0x80, answers          # then "event message buffer empty"


def test_a_stuck_attention_line_neither_wedges_the_driver_nor_invents_messages(vhw_machine):
    """IPMI 2.0 §9 (KCS status register) / ipmi-extern.md §11: SMS_ATN tells the driver to read the message
    flags (Get Message Flags, §22.4). With attention stuck high for 4 s and no flag set,
    the driver keeps asking, finds nothing, still serves requests meanwhile, and
    queues nothing: afterwards an empty receive queue is still EAGAIN (seed 000)."""
    held = time.time()
    vhw_machine.faults.bmc.hold_attention(4)
    out = vhw_machine.sh("ipmitool -I open raw 6 1")          # a request during the storm
    assert len(out.split()) >= 11, out
    vhw_machine.wait_for(lambda: vhw_machine.faults.fired("bmc.hold-attention-ended"), 15, "end of the held attention")
    kcs = vhw_machine.trace.records("ipmi-kcs", "out")
    flags = [bytes.fromhex(r["hex"]) for r in kcs
             if r.get("netfn") == 0x07 and r.get("cmd") == 0x31 and r.get("cc") == 0 and held <= r["t"] < held + 4]
    assert len(flags) >= 2, flags                              # asked again and again while held
    assert all(f[4] & 0x0B == 0 for f in flags), flags          # and was told: nothing there
    r = vhw_machine.run(f"{vhw_machine.program('ipmi_conform')} -i kcs -c recv_eagain", timeout=60)
    vhw_machine.conformance(r.stdout)
    assert r.returncode == 0, r.stdout.decode()
