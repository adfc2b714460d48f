"""In-band IPMI throughput from inside the guest, vhw against the references.

One run measures:

1. Requests per second of Get Device ID that the guest's ``ipmi_raw -n N 6 1``
   gets through /dev/ipmi0 (Linux ipmi_si over KCS by default), for three
   BMCs behind the same guest image and the same QEMU flags (TCG):
   vhw's BMC (backend "vhw", in this process), OpenIPMI's ``ipmi_sim``
   behind ``ipmi-bmc-extern`` (backend "extern") and QEMU's built-in
   ``ipmi-bmc-sim`` (backend "qemu").  The three machines boot once and are
   measured in interleaved rounds (vhw, ipmi_sim, qemu, vhw, ...); the
   figure is the median over the rounds.
2. vhw's own processing time per request, in-process, outside any guest:
   ``Bmc.handle`` for Get Device ID, and the full codec path
   (``ExternCodec.receive_data`` of an encoded frame, ``Bmc.handle``,
   ``encode_response``).
3. Diagnostic: the host-only round trip over the extern socket (a client
   playing QEMU sends a request frame and waits for the response frame), for
   ipmi_sim and for vhw's BMC as its own process (`vhw bmc`) over TCP and
   over a UNIX socket (what backend "vhw" uses).  It tells the BMC's share of
   the in-guest time apart from QEMU's and the guest's.

Targets (reported PASS/MISS, never the exit status): vhw's in-guest rate at
least 1.0 of ipmi_sim's, as the median of the per-round ratios (the two runs
of a round share the host's load of the moment) over --rounds (9 by
default); vhw's processing under 100 us median.  The exit
status is 0 when everything ran, 1 when something broke, 2 when a
prerequisite (ipmi_sim, the guest image) is missing.

Run: .venv/bin/python bench/inband.py [--seconds N] [--rounds R]
     [--interface kcs|bt|ssif] [--json FILE] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

HERE = Path(__file__).resolve().parent
SIM_CONFIG_DIR = HERE / "ipmi_sim"

#: (label, description backend) in the order of every round.
BACKENDS = (("vhw", "vhw"), ("ipmi_sim", "extern"), ("qemu", "qemu"))

TARGET_RATE_RATIO = 1.0  # vhw in-guest rate / ipmi_sim's (median of per-round ratios), at least
TARGET_PROCESSING_US = 100.0  # vhw processing time per request, median, below

GET_DEVICE_ID = (0x06, 0x01)
RATE_LINE = re.compile(r"(\d+) requests in ([0-9.]+) s")


class Broken(Exception):
    """Something did not work: the benchmark cannot report a figure (exit 1)."""


class Missing(Exception):
    """A prerequisite is not installed (exit 2)."""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    """In a child before exec: SIGKILL when the benchmark dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def summarize_us(samples_ns: list[int]) -> dict:
    s = sorted(x / 1000 for x in samples_ns)
    return {"median": statistics.median(s), "p99": percentile(s, 99), "min": s[0], "iterations": len(s)}


# -- ports and processes -----------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the caller retries on a race)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, without connecting to it.

    Connecting would cost the BMC its one VM connection (ipmi_sim takes one
    per serial port), so read the kernel's table instead.
    """
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":  # TCP_LISTEN
                    return True
    except OSError:
        pass
    return False


def stop_process(proc: subprocess.Popen, name: str) -> None:
    """SIGTERM, then SIGKILL; never returns with the process alive."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            say(f"[bench] {name} (pid {proc.pid}) ignored SIGTERM; killing it")
            proc.kill()
            proc.wait()


class IpmiSim:
    """OpenIPMI's ipmi_sim with the configuration of bench/ipmi_sim, on a free loopback port."""

    def __init__(self, workdir: Path, name: str = "ipmi_sim"):
        self.binary = shutil.which("ipmi_sim")
        if self.binary is None:
            raise Missing("ipmi_sim is not installed: it comes with Debian's openipmi package "
                          "(apt-get install openipmi, or `make deps`)")
        for f in ("lan.conf.in", "bmc.emu"):
            if not (SIM_CONFIG_DIR / f).is_file():
                raise Missing(f"{SIM_CONFIG_DIR / f} is missing")
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> IpmiSim:
        template = (SIM_CONFIG_DIR / "lan.conf.in").read_text()
        last_error = ""
        for attempt in range(attempts):
            port = free_port()
            conf = self.dir / "lan.conf"
            conf.write_text(template.replace("@ADDRESS@", "127.0.0.1").replace("@PORT@", str(port)))
            state = self.dir / f"state{attempt}"
            state.mkdir()
            out = open(self.dir / "ipmi_sim.log", "wb")
            proc = subprocess.Popen(
                [self.binary, "-c", str(conf), "-f", str(SIM_CONFIG_DIR / "bmc.emu"), "-s", str(state), "-n"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
            out.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None and not tcp_listening(port):
                time.sleep(0.02)
            if proc.poll() is None and tcp_listening(port):
                self.proc, self.port = proc, port
                return self
            stop_process(proc, self.name)
            last_error = (self.dir / "ipmi_sim.log").read_text(errors="replace").strip()
            say(f"[bench] {self.name} did not listen on 127.0.0.1:{port} (attempt {attempt + 1}): {last_error}")
        raise Broken(f"{self.name} would not start; it said:\n{last_error}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, self.name)


class VhwBmcProcess:
    """`vhw bmc --extern ADDR`: vhw's BMC as its own process (for the host-only diagnostic)."""

    def __init__(self, workdir: Path, transport: str):
        self.workdir = workdir
        self.transport = transport
        self.proc: subprocess.Popen | None = None
        self.target: tuple[str, int] | str | None = None

    def start(self, attempts: int = 3) -> VhwBmcProcess:
        for attempt in range(attempts):
            if self.transport == "tcp":
                port = free_port()
                address, target = f"127.0.0.1:{port}", ("127.0.0.1", port)
            else:
                path = str(self.workdir / f"vhw-bmc-{attempt}.sock")
                address, target = f"unix:{path}", path
            log = open(self.workdir / f"vhw-bmc-{self.transport}.log", "wb")
            proc = subprocess.Popen([sys.executable, "-m", "vhw.cli", "bmc", "--extern", address],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent)
            log.close()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and proc.poll() is None:
                if (tcp_listening(target[1]) if isinstance(target, tuple) else os.path.exists(target)):
                    self.proc, self.target = proc, target
                    return self
                time.sleep(0.02)
            stop_process(proc, "vhw bmc")
        said = (self.workdir / f"vhw-bmc-{self.transport}.log").read_text(errors="replace").strip()
        raise Broken(f"`vhw bmc` over {self.transport} would not start; it said:\n{said}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, "vhw bmc")


# -- 2. processing time, in-process -------------------------------------------------


def bench_processing(iterations: int) -> dict:
    """Bmc.handle, and receive_data + handle + encode_response, for Get Device ID."""
    from vhw.ipmi.core.assemble import create_bmc
    from vhw.ipmi.core.bmc import CC, Context
    from vhw.ipmi.core.config import BmcConfig
    from vhw.ipmi.wire.extern import ExternCodec, Request, Response, Role, encode_request, encode_response

    netfn, cmd = GET_DEVICE_ID
    clock = time.perf_counter_ns
    monotonic = time.monotonic

    bmc = create_bmc(BmcConfig())
    ctx = Context(interface="kcs")
    for _ in range(min(1000, iterations)):  # warm caches (lru_cache, python-ipmi) first
        bmc.handle(netfn, cmd, b"", ctx, monotonic())
    handle_ns = []
    rsp = None
    for _ in range(iterations):
        t0 = clock()
        rsp = bmc.handle(netfn, cmd, b"", ctx, monotonic())
        handle_ns.append(clock() - t0)
    if rsp is None or rsp.cc != CC.OK:
        raise Broken(f"Bmc.handle answered Get Device ID with {rsp!r}")

    # The codec path as the extern server runs it for one request: decode the
    # frame, a Context per request, handle, encode the response frame.
    bmc = create_bmc(BmcConfig())
    codec = ExternCodec()
    frames = [encode_request(seq, netfn, 0, cmd) for seq in range(256)]

    def one(frame: bytes) -> bytes:
        (req,) = codec.receive_data(frame)
        assert isinstance(req, Request)
        r = bmc.handle(req.netfn, req.cmd, req.data, Context(interface="kcs", lun=req.lun), monotonic())
        return encode_response(req.seq, req.netfn, req.lun, req.cmd, r.to_bytes())

    for i in range(min(1000, iterations)):
        one(frames[i & 0xFF])
    codec_ns = []
    out = b""
    for i in range(iterations):
        frame = frames[i & 0xFF]
        t0 = clock()
        out = one(frame)
        codec_ns.append(clock() - t0)
    (decoded,) = ExternCodec(Role.VM).receive_data(out)
    if not isinstance(decoded, Response) or decoded.cc != 0 or decoded.netfn != netfn | 1 or decoded.cmd != cmd:
        raise Broken(f"the codec path produced a wrong response frame {out.hex()}")
    return {"handle": summarize_us(handle_ns), "codec_path": summarize_us(codec_ns),
            "response_bytes": len(out)}


# -- 3. host-only round trip over the extern socket ---------------------------------


class ExternClient:
    """Plays QEMU's side of one extern connection, blocking, one request at a time."""

    def __init__(self, target: tuple[str, int] | str):
        from vhw.ipmi.wire.extern import encode_request

        family = socket.AF_INET if isinstance(target, tuple) else socket.AF_UNIX
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(target)
        if family == socket.AF_INET:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as QEMU's nodelay=on
        self.sock.sendall(bytes((0xFF, 0x01, 0xA1, 0x08, 0x3F, 0xA1)))  # VERSION 1, CAPABILITIES 0x3F
        netfn, cmd = GET_DEVICE_ID
        self.frames = [encode_request(seq, netfn, 0, cmd) for seq in range(256)]
        self.seq = 0
        self.last = b""
        time.sleep(0.1)  # the BMC's VERSION and attention state
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while self.sock.recv(4096):
                pass
        self.sock.setblocking(True)

    def request(self) -> int:
        """One Get Device ID; returns the round trip in ns."""
        frame = self.frames[self.seq & 0xFF]
        self.seq += 1
        buf = bytearray()
        t0 = time.perf_counter_ns()
        self.sock.sendall(frame)
        while True:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Broken("the BMC closed the extern connection")
            buf += chunk
            end = buf.find(0xA0)  # A0 only ever ends a message (data bytes are escaped)
            if end >= 0:
                t1 = time.perf_counter_ns()
                break
        # Control commands (attention) may precede the answer; keep the message.
        start = max(buf.rfind(0xA1, 0, end) + 1, 0)
        self.last = bytes(buf[start:end + 1])
        return t1 - t0

    def check_last(self) -> None:
        from vhw.ipmi.wire.extern import ExternCodec, Response, Role

        events = ExternCodec(Role.VM).receive_data(self.last)
        if not events or not isinstance(events[-1], Response) or events[-1].cc != 0:
            raise Broken(f"unexpected answer to Get Device ID on the extern socket: {self.last.hex()}")

    def close(self) -> None:
        self.sock.close()


def bench_host_rtt(workdir: Path, per_round: int, rounds: int, gap_s: float) -> dict:
    """ipmi_sim, `vhw bmc` over TCP and over a UNIX socket, interleaved rounds."""
    sim = IpmiSim(workdir, name="ipmi_sim-rtt")
    servers: list[tuple[str, object, tuple | str]] = []
    clients: dict[str, ExternClient] = {}
    try:
        sim.start()
        servers.append(("ipmi_sim tcp", sim, ("127.0.0.1", sim.port)))
        for transport in ("tcp", "unix"):
            p = VhwBmcProcess(workdir, transport).start()
            servers.append((f"vhw bmc {transport}", p, p.target))
        for name, _, target in servers:
            clients[name] = ExternClient(target)
        samples: dict[str, list[int]] = {name: [] for name in clients}
        for c in clients.values():  # warm-up
            for _ in range(200):
                c.request()
        for _ in range(rounds):
            for name, c in clients.items():
                for _ in range(per_round):
                    samples[name].append(c.request())
                    if gap_s:
                        time.sleep(gap_s)
                c.check_last()
        return {name: summarize_us(s) for name, s in samples.items()}
    finally:
        for c in clients.values():
            c.close()
        for _, proc, _ in servers:
            proc.stop()
        sim.stop()


# -- 1. in-guest rate -------------------------------------------------------------


@dataclass
class Runner:
    label: str
    machine: object
    #: CPU seconds used so far by the process that is this BMC (None: inside QEMU).
    cpu: Callable[[], float] | None = None
    count: int = 0
    rates: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    requests: int = 0


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (clock ticks, so sum over many requests)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_ipmi_raw(label: str, result, count: int) -> float:
    """Requests per second out of ipmi_raw's stderr; checks the answer too."""
    out = result.stdout.decode(errors="replace").strip()
    err = result.stderr.decode(errors="replace").strip()
    if result.returncode != 0:
        raise Broken(f"{label}: ipmi_raw -n {count} failed (status {result.returncode}, {result.how}): {err or out}")
    if not out.split() or out.split()[0] != "00":
        raise Broken(f"{label}: Get Device ID answered with completion code {out[:2]!r}: {out}")
    m = RATE_LINE.search(err)
    if not m or int(m.group(1)) != count:
        raise Broken(f"{label}: no timing line from ipmi_raw -n {count}: {err!r}")
    seconds = float(m.group(2))
    if seconds <= 0:
        raise Broken(f"{label}: ipmi_raw reported {seconds} s")
    return count / seconds


async def guest_rate(r: Runner, count: int, timeout: float) -> float:
    netfn, cmd = GET_DEVICE_ID
    result = await r.machine.run(f"ipmi_raw -n {count} {netfn:x} {cmd:x}", timeout=timeout)
    return parse_ipmi_raw(r.label, result, count)


async def bench_inguest(args, workdir: Path, sim: IpmiSim, report: dict) -> dict:
    from vhw.guests.images import ensure_image
    from vhw.machine.description import parse_description
    from vhw.machine.launcher import Machine

    image = await asyncio.to_thread(ensure_image, "linux-x86", progress=say)
    runners: list[Runner] = []
    async with contextlib.AsyncExitStack() as stack:
        machines = []
        for label, backend in BACKENDS:
            bmc = {"backend": backend, "interfaces": [args.interface]}
            if backend == "extern":
                bmc["address"] = sim.address
            desc = parse_description({"machine": {"name": f"bench-{label.replace('_', '-')}", "accel": "tcg"},
                                      "bmc": bmc}, f"<bench {label}>")
            machines.append((label, Machine(desc, image=image, workdir=workdir / f"machine-{label}")))
        t0 = time.monotonic()
        say(f"[bench] booting {len(machines)} guests ({args.interface}, TCG)")
        started = await asyncio.gather(*(m.start() for _, m in machines), return_exceptions=True)
        for (label, m), res in zip(machines, started, strict=True):
            if isinstance(res, BaseException):
                for (_, other), ok in zip(machines, started, strict=True):
                    if not isinstance(ok, BaseException):
                        await other.stop()
                raise Broken(f"{label}: the guest did not boot: {res}")
            stack.push_async_callback(m.stop)
            # vhw's BMC is this process (its event loop); ipmi_sim its own; QEMU's is inside QEMU.
            cpu = {"vhw": time.process_time, "ipmi_sim": lambda: process_cpu(sim.proc.pid)}.get(label)
            runners.append(Runner(label, m, cpu))
        say(f"[bench] guests ready in {time.monotonic() - t0:.1f} s")
        slot = max(0.3, args.seconds / (args.rounds * len(runners)))
        for r in runners:  # warm up twice; the second sizes the runs to ~slot seconds
            await guest_rate(r, 100, 120)
            rate = await guest_rate(r, 200, 120)
            r.count = int(min(200_000, max(100, rate * slot)))
        vhw_machine = runners[0].machine
        vhw_before = vhw_machine.bmc_service.bmc.stats.get("requests", 0)
        say(f"[bench] {args.rounds} rounds of about {slot:.1f} s per BMC: "
            + ", ".join(f"{r.label} {r.count} requests" for r in runners))
        for rnd in range(args.rounds):
            line = []
            for r in runners:
                cpu0 = r.cpu() if r.cpu else 0.0
                rate = await guest_rate(r, r.count, slot * 20 + 60)
                if r.cpu:
                    r.cpu_seconds += r.cpu() - cpu0
                r.requests += r.count
                r.rates.append(rate)
                line.append(f"{r.label} {rate:8.1f}/s")
            say(f"[bench] round {rnd + 1}: " + "   ".join(line))
        # vhw must have seen every request it is credited with.
        seen = vhw_machine.bmc_service.bmc.stats.get("requests", 0) - vhw_before
        if seen < runners[0].count * args.rounds:
            raise Broken(f"vhw's BMC counted {seen} requests, expected at least {runners[0].count * args.rounds}")
        if not sim.alive():
            raise Broken("ipmi_sim died during the rounds")
        if args.profile:
            await profile_vhw(runners[0], args.profile, slot)
        report["boot_seconds"] = {r.label: round(r.machine.boot.to_ready, 2) for r in runners}
    return {r.label: {"rates": [round(x, 1) for x in r.rates], "median": statistics.median(r.rates),
                      "min": min(r.rates), "max": max(r.rates), "requests_per_run": r.count,
                      "ms_per_request": 1000 / statistics.median(r.rates),
                      "bmc_cpu_us_per_request": (1e6 * r.cpu_seconds / r.requests) if r.cpu else None}
            for r in runners}


async def profile_vhw(r: Runner, path: str, slot: float) -> None:
    """One more vhw run under cProfile (this process's event loop is vhw's BMC)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        rate = await guest_rate(r, r.count, slot * 40 + 60)
    finally:
        prof.disable()
    prof.dump_stats(path)
    say(f"[bench] profiled vhw run: {rate:.1f} requests/s under cProfile; stats in {path}; top by own time:")
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(15)


# -- report ---------------------------------------------------------------------


def versions() -> dict:
    out = {"python": platform.python_version(), "cpus": os.cpu_count()}
    with contextlib.suppress(Exception):
        q = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True, timeout=10)
        out["qemu"] = q.stdout.splitlines()[0]
    with contextlib.suppress(Exception):
        d = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "openipmi"], capture_output=True, text=True,
                           timeout=10)
        if d.returncode == 0:
            out["openipmi"] = d.stdout.strip()
    return out


def print_report(report: dict) -> None:
    ig = report.get("inguest")
    if ig:
        print(f"\nIn-guest Get Device ID through /dev/ipmi0 ({report['interface']}, TCG), "
              f"{report['rounds']} interleaved rounds:")
        print(f"  {'BMC':10s} {'median req/s':>13s} {'ms/req':>8s} {'min':>9s} {'max':>9s} {'BMC CPU us/req':>15s}"
              "  rounds")
        for label, f in ig.items():
            cpu = f["bmc_cpu_us_per_request"]
            cpu_text = f"{cpu:15.1f}" if cpu is not None else f"{'(in QEMU)':>15s}"
            print(f"  {label:10s} {f['median']:13.1f} {f['ms_per_request']:8.3f} {f['min']:9.1f} {f['max']:9.1f} "
                  f"{cpu_text}  " + " ".join(f"{x:.0f}" for x in f["rates"]))
        for name, paired in report["paired_ratios"].items():
            print(f"  ratio {name:14s} {paired:6.3f} (median of per-round ratios; ratio of the medians "
                  f"{report['ratios'][name]:.3f})")
        print("  per-round vhw/ipmi_sim " + " ".join(f"{x:.2f}" for x in report["round_ratios"]["vhw/ipmi_sim"]))
    pt = report.get("processing_us")
    if pt:
        print("\nvhw processing per Get Device ID, in-process (microseconds):")
        for name, title in (("handle", "Bmc.handle"),
                            ("codec_path", "receive_data + handle + encode_response")):
            f = pt[name]
            print(f"  {title:42s} median {f['median']:7.1f}  p99 {f['p99']:7.1f}  ({f['iterations']} iterations)")
    rtt = report.get("host_rtt_us")
    if rtt:
        print(f"\nHost-only round trip on the extern socket, no guest (microseconds; "
              f"{report['host_rtt_gap_ms']} ms between requests):")
        for name, f in rtt.items():
            print(f"  {name:14s} median {f['median']:7.1f}  p99 {f['p99']:7.1f}  ({f['iterations']} requests)")
    print("\nTargets:")
    for t in report["targets"]:
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {t['name']}: {t['value']:.3f} (target {t['target']})")


def targets(report: dict) -> list[dict]:
    out = []
    ig = report.get("inguest")
    if ig:
        ratio = report["paired_ratios"]["vhw/ipmi_sim"]
        out.append({"name": "in-guest rate vhw/ipmi_sim (median of per-round ratios)", "value": ratio,
                    "target": f">= {TARGET_RATE_RATIO}",
                    "pass": ratio >= TARGET_RATE_RATIO})
    pt = report.get("processing_us")
    if pt:
        for name in ("handle", "codec_path"):
            med = pt[name]["median"]
            out.append({"name": f"processing median us ({name})", "value": med,
                        "target": f"< {TARGET_PROCESSING_US:g}", "pass": med < TARGET_PROCESSING_US})
    return out


async def run(args, workdir: Path) -> dict:
    report: dict = {"interface": args.interface, "accel": "tcg", "rounds": args.rounds,
                    "seconds": args.seconds, "versions": versions()}
    say("[bench] vhw processing time, in-process")
    report["processing_us"] = bench_processing(args.iterations)
    if not args.no_host_rtt:
        say("[bench] host-only extern round trip: ipmi_sim, vhw bmc (tcp), vhw bmc (unix)")
        gap = 0.0003
        report["host_rtt_gap_ms"] = gap * 1000
        report["host_rtt_us"] = bench_host_rtt(workdir, 1000, 3, gap)
    if not args.no_guest:
        sim = IpmiSim(workdir)
        try:
            sim.start()
            say(f"[bench] ipmi_sim listening on {sim.address} (pid {sim.proc.pid})")
            report["inguest"] = await bench_inguest(args, workdir, sim, report)
        finally:
            sim.stop()
        ig = report["inguest"]
        report["ratios"] = {f"vhw/{other}": ig["vhw"]["median"] / ig[other]["median"] for other in ("ipmi_sim", "qemu")}
        # Rounds run back to back, so a ratio within a round shares the host's load of the moment.
        report["round_ratios"] = {f"vhw/{other}": [round(a / b, 4) for a, b in zip(ig["vhw"]["rates"],
                                                                                   ig[other]["rates"], strict=True)]
                                  for other in ("ipmi_sim", "qemu")}
        report["paired_ratios"] = {name: statistics.median(r) for name, r in report["round_ratios"].items()}
    report["targets"] = targets(report)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=45.0,
                   help="in-guest measuring time over all rounds and BMCs (default 45; boots come on top)")
    p.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    p.add_argument("--interface", choices=("kcs", "bt", "ssif"), default="kcs",
                   help="guest interface in front of every BMC (default kcs)")
    p.add_argument("--iterations", type=int, default=20000,
                   help="in-process iterations per processing figure (default 20000)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--profile", metavar="FILE",
                   help="after the rounds, run vhw once more under cProfile and dump the stats here")
    p.add_argument("--no-guest", action="store_true", help="skip the in-guest part (no QEMU, no ipmi_sim boot)")
    p.add_argument("--no-host-rtt", action="store_true", help="skip the host-only round-trip diagnostic")
    p.add_argument("--keep", action="store_true", help="keep the work directory (console logs, ipmi_sim log)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.iterations < 100:
        p.error("--rounds must be >= 1, --seconds > 0, --iterations >= 100")

    sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing, too
    workdir = Path(tempfile.mkdtemp(prefix="vhw-bench-inband-"))
    started = time.monotonic()
    try:
        if not args.no_guest and shutil.which("ipmi_sim") is None:
            raise Missing("ipmi_sim is not installed: it comes with Debian's openipmi package "
                          "(apt-get install openipmi, or `make deps`)")
        report = asyncio.run(run(args, workdir))
    except Missing as e:
        say(f"bench/inband.py: {e}")
        return 2
    except Broken as e:
        say(f"bench/inband.py: FAILED: {e}\n(work directory kept: {workdir})")
        args.keep = True
        return 1
    except Exception as e:  # a vhw error (QEMU missing, image missing, ...) or a bug
        from vhw.errors import ImageError, VhwError

        if not isinstance(e, VhwError):
            traceback.print_exc()
        say(f"bench/inband.py: FAILED: {type(e).__name__}: {e}\n(work directory kept: {workdir})")
        args.keep = True
        return 2 if isinstance(e, ImageError) else 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    print_report(report)
    print(f"\n(total {report['wall_seconds']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
