"""Build a working Bmc from a BmcConfig: the command table plus every part.

Parts are created in dependency order: messaging and channels first, so the
chassis and watchdog parts (owned by their modules, each exposing
``create_part(bmc, config)``) can find ``bmc.parts["messaging"]`` to set
the watchdog pre-timeout flag or post events.
"""

from __future__ import annotations

import importlib

from .bmc import Bmc
from .channels import Channels
from .config import BmcConfig
from .messaging import Messaging
from .sysinfo import Param, SystemInfo

#: Optional parts: (name in bmc.parts, module providing create_part).
OPTIONAL_PARTS = (("chassis", "vhw.ipmi.chassis"), ("watchdog", "vhw.ipmi.watchdog"))


def create_bmc(config: BmcConfig) -> Bmc:
    import vhw.ipmi.commands  # noqa: F401  (registers every command module)

    bmc = Bmc(config=config)
    bmc.parts["messaging"] = Messaging(bmc.emit)
    bmc.parts["channels"] = Channels(config.channels, config.interfaces)
    bmc.parts["sysinfo"] = SystemInfo(
        {
            Param.SYSTEM_FIRMWARE_VERSION: config.system_firmware_version,
            Param.SYSTEM_NAME: config.system_name,
            Param.PRIMARY_OS_NAME: config.primary_os_name,
        }
    )
    for name, module_name in OPTIONAL_PARTS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise  # the module exists but is broken: say so
            continue
        create_part = getattr(module, "create_part", None)
        if create_part is None:
            continue
        part = create_part(bmc, config)
        if part is not None:
            bmc.parts[name] = part
    return bmc
