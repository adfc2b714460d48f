"""Accelerator choice: TCG by default, KVM only when a probe proves it."""

from vhw.machine import accel


def test_probe_firmware_puts_the_debug_exit_write_at_the_reset_vector():
    fw = accel.probe_firmware()
    assert len(fw) == 65536
    # The CPU starts at 0xFFFF0: 16 bytes below the top of a 64 KiB BIOS.
    assert fw[-16:-9] == bytes([0xB0, 0x31, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD])
    assert accel.PROBE_EXIT_STATUS == (0x31 << 1) | 1


def test_tcg_is_never_probed(monkeypatch):
    monkeypatch.setattr(accel, "kvm_works", lambda q: (_ for _ in ()).throw(AssertionError("probed")))
    assert accel.choose_accel("tcg", "qemu") == "tcg"


def test_failed_probe_falls_back_to_tcg_and_is_remembered(monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(accel, "_verdicts", {})
    monkeypatch.setattr(accel, "kvm_works", lambda q: calls.append(q) or (False, "guests hang"))
    assert accel.choose_accel("auto", "qemu-x") == "tcg"
    assert accel.choose_accel("kvm", "qemu-x") == "tcg"
    assert calls == ["qemu-x"]
    assert "falling back to TCG" in caplog.text


def test_missing_kvm_device_is_reported(monkeypatch):
    monkeypatch.setattr(accel.os, "access", lambda p, m: False)
    ok, why = accel.kvm_works("qemu")
    assert not ok and "/dev/kvm" in why
