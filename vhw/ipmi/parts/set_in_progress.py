"""Parameter 0 of the configuration-parameter commands: "set in progress".

Set/Get LAN Configuration Parameters (IPMI 2.0 table 23-4), SOL (26-5),
System Boot Options (28-14) and System Info (22-?) share it: 00b set
complete, 01b set in progress (a claim; a second claim answers 81h), 10b
commit write, 11b reserved.  vhw applies each write at once, so "commit
write" has nothing left to do and returns to "set complete".
"""

from __future__ import annotations

from ..core.bmc import CC, IpmiError

COMPLETE, IN_PROGRESS, COMMIT_WRITE = 0, 1, 2
#: "Set in progress" claimed by another party (each of the four tables).
CC_ALREADY_CLAIMED = 0x81


class SetInProgress:
    """The claim state of one parameter set.

    ``reserved_bits_refused``: bits [7:2] set answer CCh (Boot Options and
    System Info), else they are ignored (LAN and SOL configuration).
    """

    def __init__(self, *, reserved_bits_refused: bool = False) -> None:
        self.state = COMPLETE
        self.reserved_bits_refused = reserved_bits_refused

    def get(self) -> bytes:
        return bytes([self.state])

    def set(self, data: bytes) -> None:
        """Apply the parameter data; IpmiError C7h/CCh/81h as the tables say."""
        if len(data) != 1:
            raise IpmiError(CC.REQUEST_LENGTH_INVALID, "set in progress takes one byte")
        if self.reserved_bits_refused and data[0] & 0xFC:
            raise IpmiError(CC.INVALID_DATA_FIELD, f"reserved bits of set in progress: {data[0]:#x}")
        value = data[0] & 0x03
        if value == 3:
            raise IpmiError(CC.INVALID_DATA_FIELD, "set in progress value 11b is reserved")
        if value == IN_PROGRESS and self.state != COMPLETE:
            raise IpmiError(CC_ALREADY_CLAIMED, "parameters already claimed (set in progress)")
        self.state = IN_PROGRESS if value == IN_PROGRESS else COMPLETE

    def reset(self) -> None:
        self.state = COMPLETE
