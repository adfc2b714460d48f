"""PciFunction: type-0 config space semantics (PCI Local Bus 3.0, chapter 6)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vhw.pci import function as pci
from vhw.pci.function import BarKind, BarSpec, PciFunction, PciIdentity

IOP = PciIdentity(vendor_id=0x1044, device_id=0xA511, class_code=0x0E0001, revision_id=3,
                  subsystem_vendor_id=0x1044, subsystem_id=0xC035)


def make(bars=None, **kwargs) -> PciFunction:
    if bars is None:
        bars = {0: BarSpec(BarKind.MEM32, 0x10000)}
    return PciFunction(IOP, bars, **kwargs)


class Recorder:
    def __init__(self):
        self.accesses = []

    def read(self, offset, size):
        self.accesses.append(("r", offset, size))
        return 0x1122334455667788

    def write(self, offset, size, value):
        self.accesses.append(("w", offset, size, value))


# -- identity and masks ---------------------------------------------------

def test_identity_fields_read_back_and_are_read_only():
    f = make()
    assert f.config_read(0x00, 4) == 0xA5111044
    assert f.config_read(0x08, 4) == 0x0E000103
    assert f.config_read(0x2C, 4) == 0xC0351044
    assert f.config_read(0x3D, 1) == 1
    for offset in (0x00, 0x08, 0x2C, 0x3C):
        f.config_write(offset, 4, 0)
    assert f.config_read(0x00, 4) == 0xA5111044
    assert f.config_read(0x08, 4) == 0x0E000103
    assert f.config_read(0x2C, 4) == 0xC0351044
    assert f.config_read(0x3D, 1) == 1


def test_scratch_registers_are_writable():
    f = make()
    f.config_write(pci.INTERRUPT_LINE, 1, 0x0A)
    f.config_write(pci.CACHE_LINE_SIZE, 2, 0x4010)
    assert f.config_read(pci.INTERRUPT_LINE, 1) == 0x0A
    assert f.config_read(pci.CACHE_LINE_SIZE, 2) == 0x4010


def test_command_register_keeps_only_implemented_bits():
    f = make()  # memory BAR only: I/O enable is hardwired 0 (§6.2.2)
    f.config_write(pci.COMMAND, 2, 0xFFFF)
    assert f.command == (pci.CMD_MEMORY_SPACE | pci.CMD_BUS_MASTER
                         | pci.CMD_PARITY_ERROR_RESPONSE | pci.CMD_SERR_ENABLE
                         | pci.CMD_INTX_DISABLE)
    f.config_write(pci.COMMAND, 2, 0x103)  # what SeaBIOS writes
    assert f.command == 0x102
    g = make({0: BarSpec(BarKind.IO, 0x20)})
    g.config_write(pci.COMMAND, 2, 0x3)
    assert g.command == pci.CMD_IO_SPACE


def test_illegal_accesses_read_all_ones_and_are_ignored():
    f = make()
    assert f.config_read(0x01, 2) == 0xFFFF
    assert f.config_read(0x02, 4) == 0xFFFFFFFF
    assert f.config_read(0x100, 4) == 0xFFFFFFFF
    assert f.config_read(0x00, 3) == 0xFFFFFFFF
    assert f.config_read(-4, 4) == 0xFFFFFFFF
    f.config_write(0x3B, 2, 0xFFFF)
    f.config_write(0x3C, 8, 0xFF)
    assert f.config_read(0x3C, 1) == 0


def test_extended_config_space_is_optional():
    assert make(extended_config=True).config_read(0x100, 4) == 0
    assert make(extended_config=True).config_size == 4096
    assert make().config_size == 256


# -- status RW1C ------------------------------------------------------------

def test_status_error_bits_are_write_one_to_clear():
    f = make()
    f.set_status_error(pci.STATUS_RECEIVED_MASTER_ABORT | pci.STATUS_SIGNALED_TARGET_ABORT)
    f.config_write(pci.STATUS, 2, 0)  # writing 0 changes nothing
    assert f.status & pci.STATUS_RECEIVED_MASTER_ABORT
    f.config_write(pci.STATUS, 2, pci.STATUS_RECEIVED_MASTER_ABORT)
    assert f.status == pci.STATUS_SIGNALED_TARGET_ABORT
    f.config_write(pci.STATUS, 2, 0xFFFF)
    assert f.status == 0


def test_command_dword_write_clears_status_bits_too():
    f = make()
    f.set_status_error(pci.STATUS_DETECTED_PARITY_ERROR)
    f.config_write(pci.COMMAND, 4, (pci.STATUS_DETECTED_PARITY_ERROR << 16) | 0x2)
    assert f.status == 0 and f.command == 0x2


# -- BARs --------------------------------------------------------------------

def size_bar(f, offset):
    original = f.config_read(offset, 4)
    f.config_write(offset, 4, 0xFFFFFFFF)
    mask = f.config_read(offset, 4)
    f.config_write(offset, 4, original)
    return mask


def test_mem32_bar_sizing_and_assignment():
    f = make()
    assert f.config_read(0x10, 4) == 0
    assert size_bar(f, 0x10) == 0xFFFF0000
    f.config_write(0x10, 4, 0xFEBB0000)
    assert f.bar_address(0) == 0xFEBB0000
    f.config_write(0x10, 4, 0xFEBB1234)  # low address bits are hardwired 0
    assert f.config_read(0x10, 4) == 0xFEBB0000


def test_prefetchable_and_io_bar_sizing_keep_type_bits():
    f = make({0: BarSpec(BarKind.MEM32, 0x1000, prefetchable=True),
              1: BarSpec(BarKind.IO, 0x20)})
    assert size_bar(f, 0x10) == 0xFFFFF008
    assert size_bar(f, 0x14) == 0xFFFFFFE1
    assert f.config_read(0x14, 4) == 0x1


def test_unimplemented_bars_read_zero_even_after_sizing():
    f = make()
    for offset in range(0x14, 0x2C, 4):  # BARs 1-5 and the CardBus CIS pointer
        assert size_bar(f, offset) == 0


def test_mem64_bar_pair():
    f = make({0: BarSpec(BarKind.MEM64, 0x2_0000_0000, prefetchable=True)})
    assert f.config_read(0x10, 4) == 0xC
    assert size_bar(f, 0x10) == 0x0000000C  # 8 GiB: no low address bits
    assert size_bar(f, 0x14) == 0xFFFFFFFE
    f.config_write(0x10, 4, 0x0)
    f.config_write(0x14, 4, 0x4)
    assert f.bar_address(0) == 0x4_0000_0000
    assert f.bar_address(1) is None
    small = make({2: BarSpec(BarKind.MEM64, 0x4000)})
    assert size_bar(small, 0x18) == 0xFFFFC004
    assert size_bar(small, 0x1C) == 0xFFFFFFFF


def test_invalid_bar_specs_are_rejected():
    import pytest
    with pytest.raises(ValueError):
        BarSpec(BarKind.MEM32, 0x1800)
    with pytest.raises(ValueError):
        BarSpec(BarKind.MEM32, 8)
    with pytest.raises(ValueError):
        BarSpec(BarKind.IO, 0x10, prefetchable=True)
    with pytest.raises(ValueError):
        make({5: BarSpec(BarKind.MEM64, 0x1000)})
    with pytest.raises(ValueError):
        make({0: BarSpec(BarKind.MEM64, 0x1000), 1: BarSpec(BarKind.MEM32, 0x1000)})


def test_bar_access_routing_and_decode():
    f = make({0: BarSpec(BarKind.MEM32, 0x10000), 1: BarSpec(BarKind.IO, 0x20)})
    mem, io = Recorder(), Recorder()
    f.register_bar_handler(0, mem)
    f.register_bar_handler(1, io)
    assert f.bar_read(0, 0x40, 4) == 0x55667788
    f.bar_write(0, 0x40, 8, 0xDEADBEEF)
    f.bar_write(1, 0x4, 1, 0x1FF)
    assert mem.accesses == [("r", 0x40, 4), ("w", 0x40, 8, 0xDEADBEEF)]
    assert io.accesses == [("w", 0x4, 1, 0xFF)]
    # Out of range or unknown: all ones, handler untouched.
    assert f.bar_read(0, 0xFFFE, 4) == 0xFFFFFFFF
    assert f.bar_read(3, 0, 2) == 0xFFFF
    f.bar_write(0, 0x10000, 4, 1)
    assert len(mem.accesses) == 2
    # Absolute addresses decode only when assigned and enabled.
    f.config_write(0x10, 4, 0xFEBB0000)
    f.config_write(0x14, 4, 0xC000)
    assert f.decode(0xFEBB0040, memory=True) is None
    f.config_write(pci.COMMAND, 2, pci.CMD_MEMORY_SPACE | pci.CMD_IO_SPACE)
    assert f.decode(0xFEBB0040, memory=True) == (0, 0x40)
    assert f.decode(0xFEBC0000, memory=True) is None
    assert f.decode(0xC01F, memory=False) == (1, 0x1F)
    assert f.decode(0xC020, memory=False) is None


def test_bus_accesses_decode_and_dispatch_in_one_step():
    """bus_read/bus_write are decode() then bar_read/bar_write: absolute
    addresses of an enabled, assigned BAR reach its handler (masked to the
    access size); an access that starts in the BAR but does not fit, or has
    an illegal size, reads all ones and is dropped; nothing decodes outside."""
    f = make({0: BarSpec(BarKind.MEM32, 0x10000), 1: BarSpec(BarKind.IO, 0x20)})
    mem, io = Recorder(), Recorder()
    f.register_bar_handler(0, mem)
    f.config_write(0x10, 4, 0xFEBB0000)
    f.config_write(0x14, 4, 0xC000)
    assert f.bus_read(0xFEBB0040, 4, True) is None  # not enabled yet
    assert not f.bus_write(0xFEBB0040, 4, 1, True)
    f.config_write(pci.COMMAND, 2, pci.CMD_MEMORY_SPACE | pci.CMD_IO_SPACE)
    assert f.bus_read(0xFEBB0040, 4, True) == 0x55667788
    assert f.bus_write(0xFEBB0048, 2, 0x12345, True)
    assert mem.accesses == [("r", 0x40, 4), ("w", 0x48, 2, 0x2345)]
    assert f.bus_read(0xFEBBFFFE, 4, True) == 0xFFFFFFFF  # straddles the end
    assert f.bus_read(0xFEBB0040, 3, True) == 0xFFFFFFFF  # no 3-byte accesses: all_ones(3)
    assert f.bus_write(0xFEBBFFFC, 8, 1, True)  # decoded, but dropped
    assert len(mem.accesses) == 2
    assert f.bus_read(0xFEBC0000, 4, True) is None
    assert f.bus_read(0xFEBB0040, 4, False) is None  # I/O space, not memory
    # A handler registered after the windows were cached is used at once.
    assert f.bus_read(0xC004, 1, False) == 0xFF  # decodes, no handler yet
    f.register_bar_handler(1, io)
    assert f.bus_read(0xC004, 1, False) == 0x88
    assert io.accesses == [("r", 0x4, 1)]
    # Moving a BAR moves what decodes.
    f.config_write(0x10, 4, 0xFE000000)
    assert f.bus_read(0xFEBB0040, 4, True) is None
    assert f.bus_read(0xFE000040, 4, True) == 0x55667788


# -- capabilities --------------------------------------------------------------

def test_capability_chain_from_0x34():
    f = make()
    assert not f.status & pci.STATUS_CAPABILITIES_LIST
    first = f.add_capability(0x01, bytes([0x03, 0x00, 0x00, 0x00, 0x00, 0x00]),
                             writable=bytes([0, 0, 0xFF, 0xFF, 0, 0]))
    second = f.add_capability(0x09, b"\x05\x11\x22")
    assert f.status & pci.STATUS_CAPABILITIES_LIST
    assert f.config_read(pci.CAPABILITIES_POINTER, 1) == first == 0x40
    assert second % 4 == 0 and second >= first + 8
    assert f.config_read(first, 2) == (second << 8) | 0x01
    assert f.config_read(second, 2) == 0x0009
    assert f.config_read(second + 2, 1) == 0x05
    f.config_write(first, 4, 0)  # header is read-only
    f.config_write(first + 4, 2, 0xBEEF)  # writable body bytes
    f.config_write(second + 2, 1, 0)
    assert f.config_read(first, 2) == (second << 8) | 0x01
    assert f.config_read(first + 4, 2) == 0xBEEF
    assert f.config_read(second + 2, 1) == 0x05
    f.reset()
    assert f.config_read(first + 4, 2) == 0
    assert f.config_read(first, 2) == (second << 8) | 0x01


def test_capability_that_does_not_fit_is_rejected():
    import pytest
    f = make()
    with pytest.raises(ValueError):
        f.add_capability(0x09, bytes(0xC0))


# -- INTx ----------------------------------------------------------------------

def test_intx_level_status_bit_and_disable():
    levels = []
    f = make(on_irq_level=levels.append)
    f.set_irq(True)
    assert f.status & pci.STATUS_INTERRUPT and f.irq_line_level and levels == [True]
    f.set_irq(True)  # a level: no second notification
    assert levels == [True]
    f.config_write(pci.COMMAND, 2, pci.CMD_INTX_DISABLE)
    assert levels == [True, False] and not f.irq_line_level
    assert f.status & pci.STATUS_INTERRUPT  # still pending while masked (§6.2.3)
    f.config_write(pci.STATUS, 2, pci.STATUS_INTERRUPT)  # read-only: not cleared
    assert f.status & pci.STATUS_INTERRUPT
    f.config_write(pci.COMMAND, 2, 0)
    assert levels == [True, False, True]
    f.set_irq(False)
    assert levels == [True, False, True, False] and not f.status & pci.STATUS_INTERRUPT
    f.config_write(pci.COMMAND, 2, pci.CMD_INTX_DISABLE)
    f.set_irq(True)
    assert levels[-1] is False and len(levels) == 4


# -- reset ---------------------------------------------------------------------

def test_reset_restores_power_on_state():
    levels = []
    f = make(on_irq_level=levels.append)
    power_on = [f.config_read(o, 4) for o in range(0, 256, 4)]
    f.config_write(0x10, 4, 0xFEBB0000)
    f.config_write(pci.COMMAND, 2, 0x106)
    f.config_write(pci.INTERRUPT_LINE, 1, 11)
    f.set_status_error(pci.STATUS_RECEIVED_MASTER_ABORT)
    f.set_irq(True)
    f.reset()
    assert [f.config_read(o, 4) for o in range(0, 256, 4)] == power_on
    assert f.bar_address(0) is None and f.command == 0
    assert levels == [True, False] and not f.irq_line_level


# -- property: random writes ---------------------------------------------------

READ_ONLY_FIELDS = [(0x00, 4), (0x08, 4), (0x0E, 2), (0x2C, 4), (0x30, 4), (0x34, 4),
                    (0x3D, 1), (0x3E, 2), (0x28, 4)]

access = st.tuples(st.integers(-8, 4200), st.sampled_from([0, 1, 2, 3, 4, 8]),
                   st.integers(0, (1 << 64) - 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(access, max_size=40), st.booleans())
def test_random_config_writes_never_raise_or_touch_read_only_fields(writes, extended):
    f = make({0: BarSpec(BarKind.MEM32, 0x10000), 2: BarSpec(BarKind.MEM64, 0x4000),
              4: BarSpec(BarKind.IO, 0x10)}, extended_config=extended)
    f.add_capability(0x09, b"\x01\x02")
    before = {field: f.config_read(*field) for field in READ_ONLY_FIELDS}
    cap = f.config_read(0x40, 4)
    for offset, size, value in writes:
        f.config_write(offset, size, value)
        f.config_read(offset, size)
    assert {field: f.config_read(*field) for field in READ_ONLY_FIELDS} == before
    assert f.config_read(0x40, 4) == cap
    assert f.config_read(0x10, 4) & 0xF == 0
    assert f.config_read(0x18, 4) & 0xF == 0x4
    assert f.config_read(0x20, 4) & 0x3 == 0x1
    assert f.status & pci.STATUS_CAPABILITIES_LIST
