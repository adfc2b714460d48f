"""The satellite controllers on IPMB that answer bridged requests (Send Message)."""

from __future__ import annotations

from ..core.bmc import CC, NetFn
from ..core.config import SatelliteConfig
from ..wire.msgs import device_id_response


class Satellite:
    """A simple management controller on IPMB: it answers Get Device ID.

    Everything else gets C1 (invalid command), LUNs other than 0 get C2, as a
    minimal IPMB controller would answer (IPMI 2.0 table 5-2).
    """

    def __init__(self, config: SatelliteConfig):
        self.config = config

    def answer(self, netfn: int, lun: int, cmd: int, data: bytes) -> tuple[int, bytes]:
        if lun != 0:
            return CC.INVALID_FOR_LUN, b""
        if netfn == NetFn.APP and cmd == 0x01:  # Get Device ID
            if data:
                return CC.REQUEST_LENGTH_INVALID, b""
            return CC.OK, device_id_response(self.config.identity)._encode()[1:]
        return CC.INVALID_COMMAND, b""
