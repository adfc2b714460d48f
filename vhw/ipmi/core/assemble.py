"""Build a working Bmc from a BmcConfig: the command table plus every part.

The command table is built here, explicitly, from the handlers that the
modules of COMMAND_MODULES declare (``vhw.ipmi.core.bmc.command``); importing a
module registers nothing.  Each subsystem module exposes ``create_part(bmc, config)``; parts are made in
the order of PARTS, so later ones find earlier ones in ``bmc.parts`` (the
watchdog posts into "messaging", the chassis tells the watchdog about power).
Non-volatile state goes to ``bmc.store`` (a ``NonVolatile``: the machine's
store file, or memory unless the caller gives one).
"""

from __future__ import annotations

import importlib

from .bmc import Bmc, CommandTable
from ..parts.channels import Channels
from .config import BmcConfig
from ..parts.messaging import Messaging
from .nonvolatile import MemoryStore, NonVolatile
from ..parts.sysinfo import Param, SystemInfo

#: (name in bmc.parts, module with create_part(bmc, config)), in creation order.
PARTS = (
    ("chassis", "vhw.ipmi.parts.chassis"),
    ("watchdog", "vhw.ipmi.parts.watchdog"),
    ("users", "vhw.ipmi.parts.users"),
    ("bootopts", "vhw.ipmi.parts.bootopts"),
    ("dcmi", "vhw.ipmi.parts.dcmi"),
    ("sel", "vhw.ipmi.parts.sel"),
    ("fru", "vhw.ipmi.parts.fru"),
    ("sensors", "vhw.ipmi.parts.sensors"),
    ("sdr", "vhw.ipmi.parts.sdr"),
    ("lanconfig", "vhw.ipmi.parts.lanconfig"),
    ("sol", "vhw.ipmi.parts.sol"),
)


#: The modules whose declared handlers make the command table, one per NetFn
#: (or command group).
COMMAND_MODULES = (
    "vhw.ipmi.commands.app",
    "vhw.ipmi.commands.chassis",
    "vhw.ipmi.commands.device",
    "vhw.ipmi.commands.watchdog",
    "vhw.ipmi.commands.storage",
    "vhw.ipmi.commands.users",
    "vhw.ipmi.commands.bootopts",
    "vhw.ipmi.commands.dcmi",
    "vhw.ipmi.commands.sensor",
    "vhw.ipmi.commands.sdr",
    "vhw.ipmi.commands.session",
    "vhw.ipmi.commands.cipher",
    "vhw.ipmi.commands.lanconfig",
    "vhw.ipmi.commands.payload",
)


def command_table(modules: tuple[str, ...] = COMMAND_MODULES) -> CommandTable:
    """A fresh table of every command the ``modules`` declare."""
    return CommandTable.from_modules(importlib.import_module(name) for name in modules)


def create_bmc(config: BmcConfig, store: NonVolatile | None = None, *, table: CommandTable | None = None,
               host_clock_base: float = 0.0) -> Bmc:
    """A Bmc with every part of ``config`` and the full command table (or ``table``).

    ``host_clock_base`` is the host's UTC time at ``now`` = 0 (the SEL's
    "host" clock counts from it); the transport side reads it from the real
    clocks (``vhw.ipmi.io.runner.host_clock_base``).
    """
    bmc = Bmc(config=config, table=table if table is not None else command_table(),
              host_clock_base=host_clock_base)
    bmc.store = store if store is not None else MemoryStore()
    bmc.parts["messaging"] = Messaging(bmc.emit)
    bmc.parts["channels"] = Channels(config.channels, config.interfaces, store=bmc.store)
    bmc.parts["sysinfo"] = SystemInfo(
        {
            Param.SYSTEM_FIRMWARE_VERSION: config.system_firmware_version,
            Param.SYSTEM_NAME: config.system_name,
            Param.PRIMARY_OS_NAME: config.primary_os_name,
        },
        store=bmc.store,
    )
    for name, module_name in PARTS:
        part = importlib.import_module(module_name).create_part(bmc, config)
        if part is not None:
            bmc.parts[name] = part
    return bmc
