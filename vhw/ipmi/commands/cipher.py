"""Get Channel Cipher Suites and the payload commands (IPMI 2.0 sections 22.15, 24.8, 24.9).

Get Channel Cipher Suites (App 54h) is answered with and without a session:
ipmitool's lanplus asks it before opening a session to pick a suite, and a
BMC that ignores it makes ipmitool wait 10 s (docs/ipmi-anchors.md).  The list is
the enabled suites of ``[bmc.rmcpplus]`` (vhw.ipmi.wire.rmcpplus), as records
(table 22-19) ``C0h, suite ID, auth, 40h|integrity, 80h|confidentiality``,
served 16 bytes per list index; an index past the end answers the channel
number alone, which ends the client's loop.
"""

from __future__ import annotations

from ..core.bmc import CC, command, Bmc, Context, IpmiError, NetFn, Privilege
from ..wire.crypto import CIPHER_SUITES

CMD_GET_CHANNEL_PAYLOAD_SUPPORT = 0x4E
CMD_GET_CHANNEL_CIPHER_SUITES = 0x54
#: Record tags (table 22-19).
STANDARD_SUITE_TAG = 0xC0
TAG_INTEGRITY, TAG_CONFIDENTIALITY = 0x40, 0x80
CHUNK = 16


def enabled_suites(bmc: Bmc) -> tuple[int, ...]:
    from ..wire.rmcpplus import RmcpPlusConfig

    cfg = getattr(getattr(bmc, "config", None), "rmcpplus", None)
    if not isinstance(cfg, RmcpPlusConfig):
        cfg = RmcpPlusConfig()
    return tuple(s for s in cfg.cipher_suites if s in CIPHER_SUITES)


def _lan_channel(bmc: Bmc, ctx: Context, number: int) -> int:
    channels = bmc.parts.get("channels")
    channel = channels.resolve(number & 0x0F, ctx.channel) if channels is not None else None
    if channel is None or channel.sessionless:
        raise IpmiError(CC.INVALID_DATA_FIELD, f"channel {number & 0x0F} has no RMCP+")
    return channel.number


def cipher_suite_records(suites: tuple[int, ...]) -> bytes:
    out = bytearray()
    for sid in suites:
        s = CIPHER_SUITES[sid]
        out += bytes([STANDARD_SUITE_TAG, sid, s.auth, TAG_INTEGRITY | s.integrity,
                      TAG_CONFIDENTIALITY | s.confidentiality])
    return bytes(out)


def supported_algorithms(suites: tuple[int, ...]) -> bytes:
    auth: list[int] = []
    integ: list[int] = []
    conf: list[int] = []
    for sid in suites:
        s = CIPHER_SUITES[sid]
        for lst, value in ((auth, s.auth), (integ, TAG_INTEGRITY | s.integrity),
                           (conf, TAG_CONFIDENTIALITY | s.confidentiality)):
            if value not in lst:
                lst.append(value)
    return bytes(auth + integ + conf)


@command(NetFn.APP, CMD_GET_CHANNEL_CIPHER_SUITES, privilege=Privilege.CALLBACK, sessionless=True,
         name="Get Channel Cipher Suites")
def get_channel_cipher_suites(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 22.15, tables 22-18/22-19: byte 1 channel, byte 2 payload type,
    byte 3 [7] list by cipher suite (else supported algorithms), [5:0] list index."""
    if len(data) != 3:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data)} data bytes, want 3")
    channel = _lan_channel(bmc, ctx, data[0])
    if data[1] not in (0x00, 0x01):  # IPMI and SOL payloads use the same suites
        raise IpmiError(CC.INVALID_DATA_FIELD, f"payload type {data[1]:#x}")
    suites = enabled_suites(bmc)
    listing = cipher_suite_records(suites) if data[2] & 0x80 else supported_algorithms(suites)
    index = data[2] & 0x3F
    return bytes([channel]) + listing[index * CHUNK:(index + 1) * CHUNK]


@command(NetFn.APP, CMD_GET_CHANNEL_PAYLOAD_SUPPORT, privilege=Privilege.USER,
         name="Get Channel Payload Support")
def get_channel_payload_support(bmc: Bmc, ctx: Context, data: bytes) -> bytes:
    """Section 24.8, table 24-9: standard payloads (bit 0 IPMI, bit 1 SOL when
    a SOL part exists), session setup payloads 10h-15h, no OEM payloads."""
    if len(data) != 1:
        raise IpmiError(CC.REQUEST_LENGTH_INVALID, f"{len(data)} data bytes, want 1")
    _lan_channel(bmc, ctx, data[0])
    standard = 0x01 | (0x02 if bmc.parts.get("sol") is not None else 0)
    return bytes([standard, 0x00, 0x3F, 0x00, 0x00, 0x00, 0x00, 0x00])
