"""One OpenPROM conformance run of a SPARC guest, as `vhw run --guest linux-sparc64|linux-sparc32` does.

The SPARC guests run one program, openprom_conform, as /init: it walks the
tree and makes every openprom(4) call, then halts.  Where the firmware's own
tree is read differs by machine (openprom-sparc.md §6): sun4u halts to the ok
prompt, so it is read right after the run; OpenBIOS on sun4m powers the
machine off at the halt, so the tree is read at the ok prompt of a held
start first and the guest runs after a restart.
"""

from __future__ import annotations

from ..machine.description import parse_description
from .conform import build_report, parse_guest_output
from .machine import SparcMachine

#: The program's last line, whole (a match on its first word alone can cut it).
END_LINE = rb"@@vhw (end|fatal)[^\n]*\n"
MACHINE_OF = {"linux-sparc64": "sun4u", "linux-sparc32": "SS-5"}


async def conformance_run(guest: str, *, state: str | None = None, timeout: float = 300.0,
                          progress=None) -> dict:
    """Boot ``guest`` against vhw's EEPROM; the conformance report (vhw.prom.conform)."""
    machine = MACHINE_OF[guest]
    # The program writes the option named by its vhwvar argument (default
    # vhw-test-var); openprom(4) cannot create options, so it must exist.
    desc = parse_description({"machine": {"name": f"vhw-{machine}", "guest": guest,
                                          **({"state": state} if state else {})},
                              "prom": {"options": {"vhw-test-var": "initial"}}})
    m = SparcMachine(desc, progress=progress, append="vhwtoken=vhw-run")
    try:
        if machine == "sun4u":
            await m.start()
            await m.console.wait_for(END_LINE, timeout)
            await m.wait_prompt(60)
            text = m.console.path.read_bytes().decode("latin-1")
            fw_options = await m.firmware_options()
            tree = await m.firmware_tree()
            stored = dict(m.prom.options())
            await m.capture(fw_options)  # what the guest changed is kept (with --state)
            return build_report(parse_guest_output(text), machine=machine, firmware_tree=tree,
                                firmware_options=fw_options, stored=stored)
        await m.start(hold=True)
        await m.wait_prompt(timeout)
        tree = await m.firmware_tree()
        since = m.console.path.stat().st_size
        await m.restart()
        await m.console.wait_for(END_LINE, timeout)
        text = m.console.path.read_bytes()[since:].decode("latin-1")
        return build_report(parse_guest_output(text), machine=machine, firmware_tree=tree, firmware_options=None,
                            stored=dict(m.prom.options()), match="position")
    finally:
        await m.stop()
