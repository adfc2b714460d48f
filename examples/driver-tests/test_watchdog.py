"""ipmi_watchdog regression tests (IPMI 2.0 chapter 27, Linux 6.1 ipmi_watchdog)."""

import pytest

# Linux's ipmi_watchdog module and its parameters: other guests skip with that reason.
pytestmark = pytest.mark.vhw(description="bmc-kcs.toml", needs=["os:linux"])


def test_pretimeout_interrupt_wakes_a_reader_of_dev_watchdog(vhw_machine):
    """IPMI 2.0 §27.7: with the messaging pre-timeout interrupt the BMC sets the
    "watchdog pre-timeout" message flag (bit 3, §22.4) pretimeout seconds before
    expiry; ipmi_watchdog's preop_give_data then makes read(/dev/watchdog) return.
    timeout 30 s, pretimeout 26 s: the read returns about 4 s after the start;
    writing the magic 'V' and closing stops the timer (nowayout=0)."""
    vhw_machine.sh("modprobe ipmi_watchdog timeout=30 pretimeout=26 preaction=pre_int "
                   "preop=preop_give_data action=reset nowayout=0 start_now=1")
    out = vhw_machine.sh("s=$(date +%s); dd if=/dev/watchdog bs=1 count=1 2>/dev/null | wc -c; "
                         "echo $(( $(date +%s) - s )); printf V > /dev/watchdog", timeout=60)
    nbytes, elapsed = out.split()
    assert nbytes == "1", out                    # one byte of data: the pre-timeout happened
    assert 2 <= int(elapsed) <= 8, out
    # The trace shows how it got there: Get Message Flags answered with bit 3 set.
    flags = [r for r in vhw_machine.trace.records("ipmi-kcs", "out")
             if r.get("netfn") == 0x07 and r.get("cmd") == 0x31 and r.get("cc") == 0]
    # A record's hex is the extern frame: seq, netfn/lun, cmd, cc, flags, checksum.
    assert any(bytes.fromhex(r["hex"])[4] & 0x08 for r in flags), flags


def test_watchdog_expired_now_resets_with_cause_watchdog(vhw_machine):
    """IPMI 2.0 §27.7 action "hard reset" and §28.11 restart cause 3 ("watchdog expired"):
    expiring the timer early (a fault) resets the VM through QMP like a real expiry."""
    vhw_machine.sh("modprobe ipmi_watchdog timeout=300 action=reset start_now=1 nowayout=0")
    since = len(vhw_machine.events)
    assert vhw_machine.faults.bmc.expire_watchdog()
    vhw_machine.wait_event("RESET", 20, since=since)
    vhw_machine.wait_rebooted(60)
    assert "watchdog expired" in vhw_machine.sh("ipmitool -I open chassis restart_cause")
