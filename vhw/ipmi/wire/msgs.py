"""IPMI message definitions python-ipmi lacks, in python-ipmi's declarative style.

They subclass ``pyipmi.msgs.message.Message`` but are deliberately *not*
registered in python-ipmi's global registry: vhw decodes by its own command
table, and registering would change what every other user of pyipmi in the
process decodes.

Field name ``data`` is avoided on purpose: ``Message.__init__`` assigns
``self.data = ''`` after creating the fields, so a field called ``data``
starts out as a string instead of its declared default (see
tests/unit/test_bmc_app.py::test_pyipmi_clobbers_a_field_named_data).
"""

from __future__ import annotations

from pyipmi.msgs import constants
from pyipmi.msgs.bmc import GetDeviceIdRsp
from pyipmi.msgs.message import Bitfield, ByteArray, CompletionCode, Message, RemainingBytes, UnsignedInt

from ..core.config import DeviceIdentity

NETFN_APP = constants.NETFN_APP


class GetSystemGuidReq(Message):
    """Get System GUID, App 37h (IPMI 2.0 section 22.14)."""

    __cmdid__ = constants.CMDID_GET_SYSTEM_GUID
    __netfn__ = NETFN_APP
    __fields__ = ()


class GetSystemGuidRsp(Message):
    __cmdid__ = constants.CMDID_GET_SYSTEM_GUID
    __netfn__ = NETFN_APP | 1
    __fields__ = (
        CompletionCode(),
        ByteArray("system_guid", 16),
    )


def _access_bits(*head: Bitfield.Bit) -> tuple[Bitfield.Bit, ...]:
    """Channel Access byte bits [5:0], LSB first (IPMI 2.0 tables 22-28/22-29)."""
    return (
        Bitfield.Bit("access_mode", 3, 0),
        Bitfield.Bit("user_level_auth_disabled", 1, 0),
        Bitfield.Bit("per_message_auth_disabled", 1, 0),
        Bitfield.Bit("alerting_disabled", 1, 0),
        *head,
    )


class SetChannelAccessReq(Message):
    """Set Channel Access, App 40h (IPMI 2.0 section 22.22, table 22-28)."""

    __cmdid__ = constants.CMDID_SET_CHANNEL_ACCESS
    __netfn__ = NETFN_APP
    __fields__ = (
        Bitfield("channel", 1, Bitfield.Bit("number", 4, 0), Bitfield.ReservedBit(4, 0)),
        # [7:6] 00b don't set, 01b non-volatile, 10b volatile, 11b reserved
        Bitfield("access", 1, *_access_bits(Bitfield.Bit("set", 2, 0))),
        Bitfield(
            "privilege",
            1,
            Bitfield.Bit("limit", 4, 0),
            Bitfield.ReservedBit(2, 0),
            Bitfield.Bit("set", 2, 0),
        ),
    )


class SetChannelAccessRsp(Message):
    __cmdid__ = constants.CMDID_SET_CHANNEL_ACCESS
    __netfn__ = NETFN_APP | 1
    __fields__ = (CompletionCode(),)


class GetChannelAccessReq(Message):
    """Get Channel Access, App 41h (IPMI 2.0 section 22.23, table 22-29)."""

    __cmdid__ = constants.CMDID_GET_CHANNEL_ACCESS
    __netfn__ = NETFN_APP
    __fields__ = (
        Bitfield("channel", 1, Bitfield.Bit("number", 4, 0), Bitfield.ReservedBit(4, 0)),
        # [7:6] 01b non-volatile, 10b present volatile; 00b and 11b reserved
        Bitfield("access", 1, Bitfield.ReservedBit(6, 0), Bitfield.Bit("which", 2, 0)),
    )


class GetChannelAccessRsp(Message):
    __cmdid__ = constants.CMDID_GET_CHANNEL_ACCESS
    __netfn__ = NETFN_APP | 1
    __fields__ = (
        CompletionCode(),
        Bitfield("access", 1, *_access_bits(Bitfield.ReservedBit(2, 0))),
        Bitfield("privilege", 1, Bitfield.Bit("limit", 4, 0), Bitfield.ReservedBit(4, 0)),
    )


class SetSystemInfoParametersReq(Message):
    """Set System Info Parameters, App 58h (IPMI 2.0 section 22.14a)."""

    __cmdid__ = constants.CMDID_SET_SYSTEM_INFO_PARAMETERS
    __netfn__ = NETFN_APP
    __fields__ = (
        UnsignedInt("parameter_selector", 1),
        RemainingBytes("parameter_data"),
    )


class SetSystemInfoParametersRsp(Message):
    __cmdid__ = constants.CMDID_SET_SYSTEM_INFO_PARAMETERS
    __netfn__ = NETFN_APP | 1
    __fields__ = (CompletionCode(),)


class GetSystemInfoParametersReq(Message):
    """Get System Info Parameters, App 59h (IPMI 2.0 section 22.14b)."""

    __cmdid__ = constants.CMDID_GET_SYSTEM_INFO_PARAMETERS
    __netfn__ = NETFN_APP
    __fields__ = (
        Bitfield("request", 1, Bitfield.ReservedBit(7, 0), Bitfield.Bit("revision_only", 1, 0)),
        UnsignedInt("parameter_selector", 1),
        UnsignedInt("set_selector", 1),
        UnsignedInt("block_selector", 1),
    )


class GetSystemInfoParametersRsp(Message):
    __cmdid__ = constants.CMDID_GET_SYSTEM_INFO_PARAMETERS
    __netfn__ = NETFN_APP | 1
    __fields__ = (
        CompletionCode(),
        UnsignedInt("revision", 1),
        RemainingBytes("parameter_data"),
    )


def _bcd(n: int) -> int:
    return ((n // 10) << 4) | (n % 10)


def device_id_response(identity: DeviceIdentity) -> GetDeviceIdRsp:
    """Get Device ID response (IPMI 2.0 table 20-2) for the BMC or a satellite."""
    rsp = GetDeviceIdRsp()
    rsp.completion_code = 0
    rsp.device_id = identity.device_id
    rsp.device_revision.device_revision = identity.device_revision
    rsp.device_revision.provides_device_sdrs = int(identity.provides_device_sdrs)
    rsp.firmware_revision.major = identity.firmware_major
    rsp.firmware_revision.device_available = 0  # 0 = normal operation
    rsp.firmware_revision.minor = _bcd(identity.firmware_minor)
    rsp.ipmi_version = identity.ipmi_version
    rsp.additional_support._value = identity.additional_support
    rsp.manufacturer_id = identity.manufacturer_id
    rsp.product_id = identity.product_id
    rsp.auxiliary = None if identity.aux_firmware is None else ByteArray("auxiliary", 4, identity.aux_firmware).create()
    return rsp
