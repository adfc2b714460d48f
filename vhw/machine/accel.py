"""Choosing the accelerator: TCG unless KVM proves it works.

On some hosts /dev/kvm exists but guests hang under it.  So KVM is used only
after a probe boots a 64 KiB firmware under ``-accel kvm`` that writes to
QEMU's isa-debug-exit port; QEMU must exit with the status that write asks for
within a few seconds.  Anything else (no /dev/kvm, QEMU refuses, a hang) falls
back to TCG with a log line.  The verdict is cached for the process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

#: Exit status QEMU reports for an isa-debug-exit write of 0x31: (0x31 << 1) | 1.
PROBE_EXIT_STATUS = 0x63
PROBE_TIMEOUT = 5.0

_verdicts: dict[str, str] = {}


def probe_firmware() -> bytes:
    """A 64 KiB BIOS whose reset vector writes 0x31 to port 0xF4 and halts."""
    code = bytes([
        0xB0, 0x31,  # mov al, 0x31
        0xE6, 0xF4,  # out 0xf4, al   (isa-debug-exit)
        0xF4,        # hlt
        0xEB, 0xFD,  # jmp back to hlt
    ])
    image = bytearray(b"\xF4" * 65536)
    image[-16 : -16 + len(code)] = code  # the reset vector is 16 bytes below 4 GiB
    return bytes(image)


def kvm_works(qemu: str) -> tuple[bool, str]:
    """Run the probe; returns (works, reason)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is not accessible"
    with tempfile.TemporaryDirectory(prefix="vhw-kvm-probe-") as tmp:
        bios = Path(tmp) / "probe.bin"
        bios.write_bytes(probe_firmware())
        argv = [qemu, "-accel", "kvm", "-M", "pc", "-m", "16", "-nodefaults", "-no-user-config",
                "-display", "none", "-bios", str(bios),
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x01"]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT, text=True)
        except subprocess.TimeoutExpired:
            return False, f"a KVM guest did not finish a trivial boot within {PROBE_TIMEOUT:.0f} s"
        except OSError as e:
            return False, f"cannot run {qemu}: {e.strerror}"
    if proc.returncode != PROBE_EXIT_STATUS:
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        return False, f"KVM probe exited with status {proc.returncode} {tail}".strip()
    return True, "probe passed"


def choose_accel(requested: str, qemu: str) -> str:
    """'tcg' stays TCG; 'kvm' and 'auto' use KVM only if the probe passes."""
    if requested == "tcg":
        return "tcg"
    if qemu not in _verdicts:
        ok, why = kvm_works(qemu)
        _verdicts[qemu] = "kvm" if ok else "tcg"
        if ok:
            log.info("KVM probe passed; using -accel kvm")
        else:
            log.warning("not using KVM (%s); falling back to TCG", why)
    return _verdicts[qemu]
