"""How long Bmc.handle takes for Get Device ID (ipmi-extern.md section 10:
SSIF wants answers well under 1 ms).  Run: .venv/bin/python bench/dispatch.py"""

from __future__ import annotations

import statistics
import time

from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context
from vhw.ipmi.core.config import BmcConfig


def measure(netfn: int, cmd: int, data: bytes, rounds: int = 20000) -> list[float]:
    bmc = create_bmc(BmcConfig())
    ctx = Context()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        bmc.handle(netfn, cmd, data, ctx, 0.0)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return samples


def main() -> None:
    for name, netfn, cmd, data in [
        ("Get Device ID", 0x06, 0x01, b""),
        ("Get Message Flags", 0x06, 0x31, b""),
        ("Get Channel Info 0Fh", 0x06, 0x42, b"\x0f"),
    ]:
        s = sorted(measure(netfn, cmd, data))
        print(f"{name:24s} median {statistics.median(s):7.1f} us   p99 {s[int(len(s) * 0.99)]:7.1f} us")


if __name__ == "__main__":
    main()
