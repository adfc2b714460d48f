"""A machine restored from a snapshot finds the BMC its snapshotted guest left (vhw.machine.snapshot).

The snapshot is taken after the guest wrote a SEL entry through KCS and the
host set the System Name; a machine restored from it must show both to a
fresh guest command through /dev/ipmi0 (Get SEL Entry, IPMI 2.0 section 31.5;
Get System Info Parameters, 22.14b), keep the guest's agent and clock
working, and a machine of another description must not use it.
"""

import asyncio
import time
import uuid

from vhw.ipmi.core.bmc import NetFn
from vhw.machine import snapshot as snap
from vhw.machine.description import parse_description

# Add SEL Entry data (section 31.6, record table 32-1): ID and timestamp are the BMC's to fill.
SEL_RECORD = "0x00 0x00 0x02 0x00 0x00 0x00 0x00 0x20 0x00 0x04 0x07 0x2a 0x6f 0x01 0xff 0xff"
SYSTEM_NAME = b"snapshot-e2e"


def raw_bytes(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split())


def test_a_restored_machine_has_the_bmc_state_the_snapshot_had(make_machine):
    name = f"snap-{uuid.uuid4().hex[:8]}"  # a description of its own: this test makes its snapshot
    desc = parse_description({"machine": {"name": name}, "bmc": {"interfaces": ["kcs"]}})

    async def main():
        first = make_machine(desc, snapshot=True, save_at_ready=False)
        async with first as m:
            assert not m.boot.restored and m.snapshot_refused is None
            added = await m.run(f"ipmitool -I open raw 0x0a 0x44 {SEL_RECORD}")
            assert added.returncode == 0, added.stderr
            record_id = raw_bytes(added.text)  # 2 bytes, LS first
            # Set System Info Parameters, System Name (parameter 2), set 0 (table 22-16a): ASCII,
            # the length, then the string in the set's 14 bytes.
            block = bytes([0, len(SYSTEM_NAME)]) + SYSTEM_NAME.ljust(14, b"\0")
            rsp = m.bmc_service.request(NetFn.APP, 0x58, bytes([2, 0]) + block)
            assert rsp.cc == 0
            assert await m.save_snapshot()
            assert m.boot.saved
            key = m.snapshot_key
            assert (await m.run("true")).returncode == 0  # the saved guest runs on
        try:
            second = make_machine(desc, snapshot=True)
            async with second as m:
                assert m.boot.restored and m.snapshot_key == key
                # A fresh request through KCS, answered by the restored BMC: the entry is there.
                entry = await m.run("ipmitool -I open raw 0x0a 0x43 0x00 0x00 "
                                    f"0x{record_id[0]:02x} 0x{record_id[1]:02x} 0x00 0xff")
                assert entry.returncode == 0, entry.stderr
                record = raw_bytes(entry.text)[2:]  # after the next record ID
                assert record[:2] == record_id and record[7:] == raw_bytes(SEL_RECORD)[7:]
                info = await m.run("ipmitool -I open raw 0x06 0x59 0x00 0x02 0x00 0x00")
                assert info.returncode == 0, info.stderr
                data = raw_bytes(info.text)  # revision, set selector, encoding, length, string
                assert data[4:4 + data[3]] == SYSTEM_NAME
                listed = await m.run("ipmitool -I open sel list")
                assert listed.returncode == 0 and listed.text.count("\n") == 1, listed.text
                # The guest's clock was set to the host's at the restore.
                guest_now = float((await m.run("date +%s")).text)
                assert abs(guest_now - time.time()) < 5
            plain = make_machine(parse_description({"machine": {"name": f"{name}-other"},
                                                    "bmc": {"interfaces": ["kcs"]}}), snapshot=False)
            async with plain as m:  # another description, and snapshots off: a real boot, no entry
                assert not m.boot.restored and not m.boot.saved
                assert "0x" not in (await m.run("ipmitool -I open sel list")).text
        finally:
            snap.discard(key)

    asyncio.run(main())
