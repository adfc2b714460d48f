"""App NetFn commands: identity, global enables, flags, queues, system info.

Section and table numbers are IPMI 2.0 rev 1.1.
"""

from __future__ import annotations

import uuid

import pytest
from pyipmi.msgs import bmc as pm_bmc
from pyipmi.msgs import device_messaging as pm_dm

from vhw.ipmi.core.actions import InterruptEnable
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.core.config import BmcConfig, DeviceIdentity

APP = 0x06
SI = Context()
LAN_USER = Context(channel=1, privilege=Privilege.USER, interface="lan", session_id=2)
LAN_ADMIN = Context(channel=1, privilege=Privilege.ADMINISTRATOR, interface="lan", session_id=3)


@pytest.fixture
def bmc():
    return create_bmc(BmcConfig())


def call(bmc, cmd, data=b"", ctx=SI):
    return bmc.handle(APP, cmd, bytes(data), ctx, 0.0)


# -- Get Device ID (20.1, table 20-2) --------------------------------------------------


def test_get_device_id_from_config():
    ident = DeviceIdentity(device_id=0x81, device_revision=3, provides_device_sdrs=True, firmware_major=2,
                           firmware_minor=47, ipmi_version=0x02, additional_support=0x8D,
                           manufacturer_id=0x012345, product_id=0xBEEF, aux_firmware=b"\x01\x02\x03\x04")
    bmc = create_bmc(BmcConfig(identity=ident))
    rsp = call(bmc, 0x01)
    assert rsp.to_bytes() == bytes.fromhex("00 81 83 02 47 02 8d 45 23 01 ef be 01 02 03 04")
    decoded = pm_bmc.GetDeviceIdRsp()
    decoded._decode(rsp.to_bytes())  # python-ipmi, a strict client, reads it back
    assert decoded.firmware_revision.minor == 0x47 and decoded.product_id == 0xBEEF


def test_get_device_id_defaults_omit_aux_firmware(bmc):
    """Bytes 12:15 (aux firmware) are optional; the rest is 11 bytes + CC."""
    assert len(call(bmc, 0x01).to_bytes()) == 12


def test_get_device_id_default_identity_is_vhw(bmc):
    """Table 20-2 bytes 7:11: manufacturer ID (20 bits, LS byte first) and product ID.
    Without a description's identity the BMC is vhw: RFC 5612's documentation PEN
    32473 (007ED9h) and product 7668h, never QEMU ipmi-bmc-sim's unspecified 0."""
    body = call(bmc, 0x01).to_bytes()
    assert body[7:12] == bytes.fromhex("d9 7e 00 68 76")
    decoded = pm_bmc.GetDeviceIdRsp()
    decoded._decode(body)
    assert decoded.manufacturer_id == 32473 and decoded.product_id == 0x7668


def test_get_device_id_tolerates_the_ssif_probe_padding(bmc):
    """Linux ipmi_ssif probes with 65 bytes (ipmi-extern.md section 10): answer normally."""
    assert call(bmc, 0x01, bytes(63)) == call(bmc, 0x01)


def test_get_device_id_is_a_user_command(bmc):
    assert call(bmc, 0x01, ctx=LAN_USER).cc == 0
    assert call(bmc, 0x01, ctx=Context(channel=1, privilege=Privilege.CALLBACK, session_id=9)).cc == 0xD4


# -- GUIDs (20.8, 22.14) -----------------------------------------------------------------


def test_guids_are_returned_in_smbios_byte_order():
    dev = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    bmc = create_bmc(BmcConfig(device_guid=dev, system_guid=uuid.UUID(int=1)))
    assert call(bmc, 0x08).data == bytes.fromhex("33221100 5544 7766 8899 aabbccddeeff")
    assert call(bmc, 0x37).data == uuid.UUID(int=1).bytes_le


def test_default_guids_are_derived_from_the_machine_name():
    a = BmcConfig.from_dict({}, machine="alpha")
    assert a == BmcConfig.from_dict({}, machine="alpha")
    b = BmcConfig.from_dict({}, machine="beta")
    assert a.device_guid != b.device_guid and a.system_guid != b.system_guid
    assert a.device_guid != a.system_guid


def test_get_system_guid_works_at_callback_privilege(bmc):
    assert call(bmc, 0x37, ctx=Context(channel=1, privilege=Privilege.CALLBACK, session_id=4)).cc == 0


@pytest.mark.parametrize("cmd", [0x08, 0x37, 0x2F, 0x31, 0x33, 0x35])
def test_commands_without_request_data_refuse_data(bmc, cmd):
    """Table 5-2: data where the command takes none is a length error."""
    assert call(bmc, cmd, b"\x00").cc == 0xC8


# -- BMC Global Enables (22.1, 22.2) ------------------------------------------------------


def test_global_enables_default_to_system_event_logging(bmc):
    assert call(bmc, 0x2F).data == b"\x08"


def test_set_global_enables_round_trips_and_mirrors_the_interrupt(bmc):
    bmc.take_actions()
    assert call(bmc, 0x2E, b"\xed").cc == 0
    assert call(bmc, 0x2F).data == b"\xed"
    assert bmc.take_actions() == [InterruptEnable(True)]
    assert bmc.interrupt_enabled() is True


def test_set_global_enables_reserved_bit_is_cc(bmc):
    assert call(bmc, 0x2E, b"\x18").cc == 0xCC
    assert call(bmc, 0x2F).data == b"\x08"


def test_set_global_enables_needs_its_byte(bmc):
    assert call(bmc, 0x2E, b"").cc == 0xC7


def test_local_only_commands_are_refused_on_lan(bmc):
    """Appendix G marks these 'local only': only the system interface may use them."""
    for cmd, data in [(0x2E, b"\x08"), (0x30, b"\x00"), (0x31, b""), (0x32, b"\x00\x02"), (0x33, b""), (0x35, b"")]:
        assert call(bmc, cmd, data, LAN_ADMIN).cc == 0xC1, hex(cmd)
    assert call(bmc, 0x2F, ctx=LAN_USER).cc == 0


# -- Message flags, Get Message, Read Event Message Buffer (22.3-22.8) ----------------------


def test_get_message_on_an_empty_queue_is_80h(bmc):
    assert call(bmc, 0x33).to_bytes() == b"\x80"


def test_read_event_message_buffer_empty_is_80h(bmc):
    assert call(bmc, 0x35).to_bytes() == b"\x80"


def test_get_message_returns_channel_privilege_and_data(bmc):
    bmc.parts["messaging"].enqueue(1, b"\xaa\xbb", privilege=4)
    assert call(bmc, 0x31).data == b"\x01"
    assert call(bmc, 0x33).to_bytes() == b"\x00\x41\xaa\xbb"
    assert call(bmc, 0x31).data == b"\x00"


def test_clear_message_flags_flushes_the_receive_queue(bmc):
    bmc.parts["messaging"].enqueue(0, b"x")
    assert call(bmc, 0x30, b"\x01").cc == 0
    assert call(bmc, 0x33).cc == 0x80


def test_clear_message_flags_flushes_the_event_buffer(bmc):
    call(bmc, 0x2E, b"\x0c")
    assert bmc.parts["messaging"].post_event(bytes(16))
    assert call(bmc, 0x31).data == b"\x02"
    call(bmc, 0x30, b"\x02")
    assert call(bmc, 0x35).cc == 0x80


def test_read_event_message_buffer_returns_the_16_byte_record(bmc):
    call(bmc, 0x2E, b"\x0c")
    record = bytes(range(0x10, 0x20))
    bmc.parts["messaging"].post_event(record)
    assert call(bmc, 0x35).to_bytes() == b"\x00" + record


# -- Enable Message Channel Receive (22.5) ----------------------------------------------------


def test_enable_message_channel_receive_query_disable_enable(bmc):
    assert call(bmc, 0x32, b"\x00\x02").to_bytes() == b"\x00\x00\x01"
    assert call(bmc, 0x32, b"\x00\x00").to_bytes() == b"\x00\x00\x00"
    assert bmc.parts["messaging"].enqueue(0, b"x") is False
    assert call(bmc, 0x32, b"\x00\x01").to_bytes() == b"\x00\x00\x01"


@pytest.mark.parametrize("data, cc", [(b"\x00\x03", 0xCC), (b"\x05\x02", 0xCC), (b"\x00", 0xC7)])
def test_enable_message_channel_receive_bad_requests(bmc, data, cc):
    assert call(bmc, 0x32, data).cc == cc


# -- System Info Parameters (22.14a/b, table 22-16a) -----------------------------------------


def test_system_info_strings_from_config_read_back_in_blocks():
    bmc = create_bmc(BmcConfig(system_name="a-rather-long-system-name"))
    first = call(bmc, 0x59, b"\x00\x02\x00\x00")
    assert first.data[:2] == b"\x11\x00"  # revision 11h, set selector 0
    assert first.data[2:4] == bytes([0x00, 25])  # ASCII+Latin-1, 25 bytes
    assert first.data[4:] == b"a-rather-long-"
    second = call(bmc, 0x59, b"\x00\x02\x01\x00")
    assert second.data == b"\x11\x01" + b"system-name".ljust(16, b"\x00")


def test_set_then_get_a_system_info_string(bmc):
    block0 = bytes([0x01, 5]) + "héllo".encode()[:5].ljust(14, b"\x00")
    assert call(bmc, 0x58, b"\x04\x00" + block0).cc == 0
    assert call(bmc, 0x59, b"\x00\x04\x00\x00").data == b"\x11\x00" + block0
    assert bmc.parts["sysinfo"].string(4) == "héll"


def test_get_revision_only(bmc):
    assert call(bmc, 0x59, b"\x80\x01\x00\x00").to_bytes() == b"\x00\x11"


def test_set_in_progress_claim_is_exclusive(bmc):
    """81h: attempt to set 'set in progress' when not in 'set complete'."""
    assert call(bmc, 0x58, b"\x00\x01").cc == 0
    assert call(bmc, 0x59, b"\x00\x00\x00\x00").data == b"\x11\x01"
    assert call(bmc, 0x58, b"\x00\x01").cc == 0x81
    assert call(bmc, 0x58, b"\x00\x02").cc == 0  # commit write
    assert call(bmc, 0x59, b"\x00\x00\x00\x00").data == b"\x11\x00"


@pytest.mark.parametrize("data, cc", [
    (b"\x09\x00" + bytes(16), 0x80),  # parameter not supported
    (b"\x01\x00" + bytes(15), 0xC7),  # a block is 16 bytes
    (b"\x01\x10" + bytes(16), 0xC9),  # set selector beyond the 256 bytes kept
    (b"\x01\x00\x03" + bytes(15), 0xCC),  # encoding 3 is reserved
    (b"\x00\x03", 0xCC),  # set in progress 11b reserved
    (b"", 0xC7),
])
def test_set_system_info_errors(bmc, data, cc):
    assert call(bmc, 0x58, data).cc == cc


@pytest.mark.parametrize("data, cc", [(b"\x00\x09\x00\x00", 0x80), (b"\x00\x01\x10\x00", 0xC9), (b"\x00\x01\x00", 0xC7)])
def test_get_system_info_errors(bmc, data, cc):
    assert call(bmc, 0x59, data).cc == cc


def test_set_system_info_needs_administrator(bmc):
    assert call(bmc, 0x58, b"\x00\x01", LAN_USER).cc == 0xD4
    assert call(bmc, 0x59, b"\x80\x01\x00\x00", LAN_USER).cc == 0


def test_os_name_is_volatile(bmc):
    call(bmc, 0x58, b"\x04\x00" + bytes([0, 3]) + b"vhw".ljust(14, b"\x00"))
    call(bmc, 0x58, b"\x03\x00" + bytes([0, 3]) + b"lnx".ljust(14, b"\x00"))
    bmc.parts["sysinfo"].system_reset()
    assert bmc.parts["sysinfo"].string(4) == ""
    assert bmc.parts["sysinfo"].string(3) == "lnx"


# -- python-ipmi quirks we work around ------------------------------------------------------


def test_pyipmi_clobbers_a_field_named_data():
    """Message.__init__ sets self.data = '' after creating fields, so a
    RemainingBytes('data') field starts as a str; vhw.ipmi.wire.msgs avoids the
    name and the handlers always set ``data`` explicitly."""
    assert pm_dm.GetMessageRsp().data == ""
    assert pm_dm.ReadEventMessageBufferRsp().event_data is not None


def test_vhw_messages_are_not_registered_globally():
    from pyipmi.msgs.registry import DEFAULT_REGISTRY

    from vhw.ipmi.wire import msgs

    assert msgs.SetChannelAccessReq not in DEFAULT_REGISTRY.registry.values()
