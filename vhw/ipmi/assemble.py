"""Build a working Bmc from a BmcConfig: the command table plus every part.

Each subsystem module exposes ``create_part(bmc, config)``; parts are made in
the order of PARTS, so later ones find earlier ones in ``bmc.parts`` (the
watchdog posts into "messaging", the chassis tells the watchdog about power).
Non-volatile state goes to ``bmc.store`` (vhw.store.Store; in memory unless
the caller gives a file).
"""

from __future__ import annotations

import importlib

from ..store import Store
from .bmc import Bmc
from .channels import Channels
from .config import BmcConfig
from .messaging import Messaging
from .sysinfo import Param, SystemInfo

#: (name in bmc.parts, module with create_part(bmc, config)), in creation order.
PARTS = (
    ("chassis", "vhw.ipmi.chassis"),
    ("watchdog", "vhw.ipmi.watchdog"),
    ("users", "vhw.ipmi.users"),
    ("bootopts", "vhw.ipmi.bootopts"),
    ("dcmi", "vhw.ipmi.commands.dcmi"),
    ("sel", "vhw.ipmi.sel"),
    ("fru", "vhw.ipmi.fru"),
    ("sensors", "vhw.ipmi.sensors"),
    ("sdr", "vhw.ipmi.sdr"),
    ("lanconfig", "vhw.ipmi.lanconfig"),
    ("sol", "vhw.ipmi.lan.sol"),
)


def create_bmc(config: BmcConfig, store: Store | None = None) -> Bmc:
    import vhw.ipmi.commands  # noqa: F401  (registers every command module)

    bmc = Bmc(config=config)
    bmc.store = store if store is not None else Store(None)
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
