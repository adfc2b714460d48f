"""I2O pass-through (UnixWare ptosm semantics, seed 003) against vhw's IOP.

All tests of this module share one booted machine (``vhw_shared``): the IOP
and its disk stay up while faults come and go.
"""

import pytest

pytestmark = pytest.mark.vhw(description="i2o.toml")


def ptosm_conform(vm):
    r = vm.run(f"{vm.program('ptosm_conform')} --iops 1", timeout=120)
    return r, vm.conformance(r.stdout)


def test_conformance_passes(vhw_shared):
    """Seed 003: NUMIOPS, MSGTFR with scatter-gather lists, EINVAL/EFAULT rules."""
    r, cases = ptosm_conform(vhw_shared)
    assert len(cases) >= 10 and not [c for c in cases if c["outcome"] == "fail"], r.stdout.decode()
    assert r.returncode == 0


def test_a_failed_reply_is_a_successful_ioctl_carrying_the_status(vhw_shared):
    """Seed 003: an IOP failure is not an ioctl error; the reply frame carries it.
    I2O 1.5 §3.4.1.2: word 4 = ReqStatus << 24 | DetailedStatus (0x0B TRANSACTION_ERROR,
    0x1B DEVICE_BUSY) for UtilParamsGet (function 06h) to the executive (TID 0)."""
    vhw_shared.faults.iop.fail(0x0B, detail=0x1B, function=0x06, tid=0)
    r, cases = ptosm_conform(vhw_shared)
    failed = [f"{c['name']}: {c['detail']}" for c in cases if c["outcome"] == "fail"]
    assert failed == ["iop0_params_get_device_identity: ioctl ok, ReqStatus 0xb detail 0x1b"], failed
    assert vhw_shared.faults.fired("iop.fail")[0]["status"] == 0x0B


def test_a_delayed_reply_still_completes(vhw_shared):
    """I2O 1.5 §4.4: replies may come in any order and at any time; a 2 s late reply
    to UtilParamsGet must still complete the guest's request."""
    vhw_shared.faults.iop.delay(2, function=0x06, count=1)
    r, cases = ptosm_conform(vhw_shared)
    assert r.returncode == 0 and not [c for c in cases if c["outcome"] == "fail"], r.stdout.decode()
    assert vhw_shared.faults.fired("iop.delay")
