"""The dispatcher's one access policy and the explicit command table.

IPMI 2.0 table 5-2: C1h "invalid command" for a command the BMC does not
implement (here also: not on this transport, or a part this BMC lacks);
D4h "insufficient privilege".  Sections 13.14 and 22.13-22.16: outside a
session a LAN channel takes only the session-setup commands.
"""

from __future__ import annotations

import sys
import types

import pytest

from vhw.ipmi.core.assemble import COMMAND_MODULES, command_table, create_bmc
from vhw.ipmi.core.bmc import CC, Bmc, CommandTable, Context, Privilege, command
from vhw.ipmi.core.config import BmcConfig


def table_of(*handlers):
    module = types.ModuleType("declared")
    for h in handlers:
        setattr(module, h.__name__, h)
    return CommandTable.from_modules([module])


@command(0x06, 0x70, privilege=Privilege.USER, requires=("sel",))
def needs_sel(bmc, ctx, req):
    return b"\x01"


@command(0x06, 0x71, privilege=Privilege.CALLBACK, sessionless=True, interfaces=("lan",))
def v15_setup(bmc, ctx, req):
    return b"\x02"


@command(0x06, 0x72, privilege=Privilege.ADMINISTRATOR)
def admin_only(bmc, ctx, req):
    return b"\x03"


def bmc_with(*handlers, parts=()):
    bmc = Bmc(table=table_of(*handlers))
    for name in parts:
        bmc.parts[name] = object()
    return bmc


def test_declaring_registers_nothing_until_a_table_is_built():
    assert len(Bmc().table) == 0
    assert [c.name for c in table_of(needs_sel, admin_only)] == ["needs_sel", "admin_only"]
    same_command = command(0x06, 0x70, privilege=Privilege.USER)(lambda bmc, ctx, req: None)
    same_command.__name__ = "same_command"
    with pytest.raises(ValueError, match="registered twice"):
        table_of(needs_sel, same_command)


def test_importing_the_command_modules_fills_no_table():
    for name in COMMAND_MODULES:
        sys.modules.pop(name, None)
    fresh = command_table()
    assert len(fresh) > 100
    assert len(Bmc().table) == 0          # a bare Bmc gets nothing from those imports
    assert len(command_table()) == len(fresh)


def test_a_missing_part_is_an_invalid_command():
    ctx = Context()
    assert bmc_with(needs_sel).handle(0x06, 0x70, b"", ctx, 0.0).cc == CC.INVALID_COMMAND
    assert bmc_with(needs_sel, parts=["sel"]).handle(0x06, 0x70, b"", ctx, 0.0).data == b"\x01"


def test_interfaces_limit_the_transports():
    bmc = bmc_with(v15_setup)
    assert bmc.handle(0x06, 0x71, b"", Context(interface="kcs"), 0.0).cc == CC.INVALID_COMMAND
    assert bmc.handle(0x06, 0x71, b"", Context(channel=1, interface="lanplus"), 0.0).cc == CC.INVALID_COMMAND
    assert bmc.handle(0x06, 0x71, b"", Context(channel=1, interface="lan", privilege=Privilege.CALLBACK),
                      0.0).data == b"\x02"


@pytest.mark.parametrize("interface", ["lan", "lanplus"])
def test_outside_a_session_only_sessionless_commands_run(interface):
    bmc = bmc_with(admin_only)
    no_session = Context(channel=1, interface=interface, privilege=Privilege.ADMINISTRATOR)
    rsp = bmc.handle(0x06, 0x72, b"", no_session, 0.0)
    assert (rsp.cc, rsp.refused) == (CC.INSUFFICIENT_PRIVILEGE, "session")
    in_session = Context(channel=1, interface=interface, privilege=Privilege.ADMINISTRATOR, session_id=5)
    assert bmc.handle(0x06, 0x72, b"", in_session, 0.0).data == b"\x03"
    operator = Context(channel=1, interface=interface, privilege=Privilege.OPERATOR, session_id=5)
    rsp = bmc.handle(0x06, 0x72, b"", operator, 0.0)
    assert (rsp.cc, rsp.refused) == (CC.INSUFFICIENT_PRIVILEGE, None)


def test_the_assembled_table_has_one_sessionless_list():
    """22.13 (38h), 22.16 (39h), 22.15 (54h): the only commands a LAN client sends before a session;
    Get Session Challenge and Activate Session are IPMI v1.5 LAN only."""
    table = create_bmc(BmcConfig()).table
    assert {(c.netfn, c.cmd) for c in table if c.sessionless} == {(0x06, 0x38), (0x06, 0x39), (0x06, 0x54)}
    assert {(c.netfn, c.cmd) for c in table if c.interfaces == frozenset({"lan"})} == {(0x06, 0x39), (0x06, 0x3A)}


class _Timer:
    def __init__(self, at: float | None):
        self.at = at

    def next_deadline(self) -> float | None:
        return self.at


def test_every_change_to_the_parts_is_seen_by_next_deadline():
    """The deadline methods are cached per parts version: adding, replacing or removing a part
    by any dict operation must show in the very next ``next_deadline``."""
    bmc = Bmc()
    assert bmc.next_deadline() is None
    bmc.parts["a"] = _Timer(5.0)
    assert bmc.next_deadline() == 5.0
    bmc.parts["a"] = _Timer(7.0)  # replaced under the same name
    assert bmc.next_deadline() == 7.0
    bmc.parts.update(b=_Timer(3.0))
    assert bmc.next_deadline() == 3.0
    bmc.parts.setdefault("c", _Timer(1.0))
    assert bmc.next_deadline() == 1.0
    bmc.parts.pop("c")
    assert bmc.next_deadline() == 3.0
    del bmc.parts["b"]
    assert bmc.next_deadline() == 7.0
    bmc.parts |= {"d": _Timer(2.0)}
    assert bmc.next_deadline() == 2.0
    bmc.parts.clear()
    assert bmc.next_deadline() is None
    # A plain dict handed in is taken over, and its changes seen the same way.
    bmc2 = Bmc(parts={"a": _Timer(4.0)})
    assert bmc2.next_deadline() == 4.0
    bmc2.parts["a"] = _Timer(9.0)
    assert bmc2.next_deadline() == 9.0
