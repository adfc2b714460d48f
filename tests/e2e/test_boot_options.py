"""Boot options set from the guest decide the next QEMU launch (IPMI 2.0 28.12-28.13).

The guest boots with -kernel, so the boot device changes nothing it can see;
what is checked is the machine layer's side of the contract: the relaunched
QEMU's command line (qemu.argv in the work directory) and the valid bit.
"""

import asyncio

from vhw.machine.description import parse_description


def test_bootdev_from_the_guest_reaches_the_relaunched_qemu(make_machine, tmp_path):
    state = tmp_path / "state"
    desc = parse_description({"machine": {"name": "bootdev", "state": str(state)},
                              "bmc": {"backend": "vhw", "interfaces": ["kcs"]}})

    async def power_cycle(m):
        since = len(m.events)
        await m.run("(sleep 0.5; ipmitool -I open chassis power cycle) >/dev/null 2>&1 &")
        await m.wait_event("SHUTDOWN", 30, since=since)
        await asyncio.sleep(1)
        await m.wait_ready(60)
        return (m.workdir / "qemu.argv").read_text()

    async def scenario():
        async with make_machine(desc) as m:
            assert "-boot" not in (m.workdir / "qemu.argv").read_text().split()
            r = await m.run("ipmitool -I open chassis bootdev pxe")
            assert r.returncode == 0 and "Set Boot Device to pxe" in r.text, r.stderr

            argv = await power_cycle(m)
            assert "-boot once=n" in argv
            r = await m.run("ipmitool -I open chassis bootparam get 5")
            assert "Boot Flag Invalid" in r.text  # next boot only: spent by the boot

            # Persistent "force boot from default hard drive" (data 1 = C0h, data 2 = 08h).
            r = await m.run("ipmitool -I open raw 0 8 5 0xc0 0x08 0 0 0")
            assert r.returncode == 0, r.stderr
            assert "-boot order=c" in await power_cycle(m)
            r = await m.run("ipmitool -I open chassis bootparam get 5")
            assert "Boot Flag Valid" in r.text and "all future boots" in r.text
        assert (state / "bootdev.db").exists()

    asyncio.run(scenario())
