"""IPMI over LAN: vhw's BMC vs OpenIPMI's ipmi_sim, and a fleet of 1000 BMCs in one process.

1. Rate (lanplus, cipher suite 3).  Both BMCs run as their own process on a
   free loopback UDP port: ipmi_sim with bench/ipmi_sim/lan-bench.conf.in,
   vhw as `vhw fleet --count 1`.  The same client, an asyncio RMCP+ console
   written here on vhw.ipmi.wire.crypto, (a) opens K sessions and sends Get
   Device ID in each as fast as the answers come back, and (b) sets up
   sessions (Open Session, RAKP 1/3, Close Session) from K workers.  Figures:
   requests/s, setups/s, the server's CPU time per request, and vhw/ipmi_sim
   ratios, in interleaved rounds (vhw, ipmi_sim, vhw, ...).  The headline
   figure is the median of the per-round ratios: the two measurements of a
   round share the host's load of the moment.
2. Fleet.  A child process starts 1000 BMCs (vhw.fleet.Fleet); its RSS before
   and after gives memory per idle BMC; its idle CPU is sampled; then one
   session per BMC and ~500 Get Device ID requests/s spread over all of them
   for ~10 s give the latency percentiles.

Targets: vhw's request rate >= 1.0 of ipmi_sim's (median of the per-round
ratios over --rounds, 9 by default); 1000 BMCs under 300 MB
with p99 under 50 ms at 500 requests/s.  Measures, does not gate: exit 0
with PASS/MISS, 1 when something broke, 2 when ipmi_sim is missing (the
fleet part still runs then).  Traffic goes to 127.0.0.1 only.

    .venv/bin/python bench/lan.py [--seconds 3] [--rounds 9] [--sessions 4]
                                  [--fleet 1000] [--fleet-rate 500] [--fleet-seconds 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from vhw.ipmi.wire import crypto  # noqa: E402
from vhw.ipmi.wire.crypto import CIPHER_SUITES, SessionKeys  # noqa: E402

TARGET_RATE_RATIO = 1.0
TARGET_FLEET_MB = 300.0
TARGET_P99_MS = 50.0
USER, PASSWORD = b"admin", b"secret"
SUITE = 3
ROLE = 0x14  # ADMINISTRATOR, name-only lookup


class Broken(Exception):
    pass


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the client: RMCP+ console, sans-I/O messages + one asyncio socket ----------------------------

def _rmcpp(ptype: int, body: bytes, sid: int = 0, seq: int = 0) -> bytes:
    return bytes([6, 0, 0xFF, 7, 6, ptype]) + struct.pack("<IIH", sid, seq, len(body)) + body


def _ipmi_req(netfn: int, cmd: int, data: bytes, seq: int) -> bytes:
    head = bytes([0x20, netfn << 2])
    body = bytes([0x81, (seq & 0x3F) << 2, cmd]) + data
    return head + bytes([(-sum(head)) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF])


class ConsoleSession:
    """One RMCP+ session of the console: handshake messages and protected requests."""

    _next_csid = 0x1000

    def __init__(self, address):
        ConsoleSession._next_csid += 1
        self.csid = ConsoleSession._next_csid
        self.address = address
        self.suite = CIPHER_SUITES[SUITE]
        self.seq = 0
        self.rq_seq = 0

    def open_request(self) -> bytes:
        s = self.suite
        body = (bytes([1, 4, 0, 0]) + struct.pack("<I", self.csid) + bytes([0, 0, 0, 8, s.auth, 0, 0, 0])
                + bytes([1, 0, 0, 8, s.integrity, 0, 0, 0]) + bytes([2, 0, 0, 8, s.confidentiality, 0, 0, 0]))
        return _rmcpp(0x10, body)

    def rakp1(self, open_rsp: bytes) -> bytes:
        if open_rsp[1]:
            raise Broken(f"Open Session refused: status {open_rsp[1]:#x}")
        self.bsid = struct.unpack_from("<I", open_rsp, 8)[0]
        self.rm = os.urandom(16)
        return _rmcpp(0x12, bytes([2, 0, 0, 0]) + struct.pack("<I", self.bsid) + self.rm
                      + bytes([ROLE, 0, 0, len(USER)]) + USER)

    def rakp3(self, r2: bytes) -> bytes:
        if r2[1]:
            raise Broken(f"RAKP 2 status {r2[1]:#x}")
        rc = r2[8:24]
        code = crypto.rakp3_auth_code(self.suite.auth, PASSWORD, rc, self.csid, ROLE, USER)
        self.keys = SessionKeys.derive(self.suite, PASSWORD, None, self.rm, rc, ROLE, USER)
        return _rmcpp(0x14, bytes([3, 0, 0, 0]) + struct.pack("<I", self.bsid) + code)

    @staticmethod
    def check_rakp4(r4: bytes) -> None:
        if r4[1]:
            raise Broken(f"RAKP 4 status {r4[1]:#x}")

    def request(self, netfn: int, cmd: int, data: bytes = b"") -> bytes:
        self.seq += 1
        self.rq_seq += 1
        k = self.keys
        body = k.encrypt(_ipmi_req(netfn, cmd, data, self.rq_seq))
        p = bytes([6, 0xC0]) + struct.pack("<IIH", self.bsid, self.seq, len(body)) + body
        pad = (-(len(p) + 2)) % 4
        p += b"\xff" * pad + bytes([pad, 7])
        return bytes([6, 0, 0xFF, 7]) + p + k.auth_code(p)

    def completion_code(self, rsp: bytes) -> int:
        """The answer's CC, once its AuthCode (13.28.4) checks out and it decrypts."""
        if rsp[5] & 0x40:
            n = crypto.AUTHCODE_LENGTH[self.suite.integrity]
            if not self.keys.verify(rsp[4:len(rsp) - n], rsp[len(rsp) - n:]):
                raise Broken("answer with a wrong AuthCode")
        length = struct.unpack_from("<H", rsp, 14)[0]
        payload = rsp[16:16 + length]
        if rsp[5] & 0x80:
            payload = self.keys.decrypt(payload)
        if payload is None or len(payload) < 7:
            raise Broken("malformed answer")
        return payload[6]


class Client(asyncio.DatagramProtocol):
    """One UDP socket; answers go to the waiter of their console session ID."""

    def __init__(self):
        self.waiters: dict[int, asyncio.Future] = {}
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if len(data) < 16 or data[4] != 6:
            return
        ptype = data[5] & 0x3F
        if ptype in (0x11, 0x13, 0x15):
            csid = struct.unpack_from("<I", data, 20)[0]
        else:
            csid = struct.unpack_from("<I", data, 6)[0]
        fut = self.waiters.pop(csid, None)
        if fut is not None and not fut.done():
            fut.set_result(data)

    async def exchange(self, s: ConsoleSession, packet: bytes, timeout: float = 1.0, tries: int = 3) -> bytes:
        loop = asyncio.get_running_loop()
        for _ in range(tries):
            fut = loop.create_future()
            self.waiters[s.csid] = fut
            self.transport.sendto(packet, s.address)
            try:
                return await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                self.waiters.pop(s.csid, None)
        raise Broken(f"no answer from {s.address[0]}:{s.address[1]}")

    async def login(self, address) -> ConsoleSession:
        s = ConsoleSession(address)
        r = await self.exchange(s, s.open_request())
        r = await self.exchange(s, s.rakp1(r[16:]))
        r = await self.exchange(s, s.rakp3(r[16:]))
        s.check_rakp4(r[16:])
        return s

    async def close_session(self, s: ConsoleSession) -> None:
        rsp = await self.exchange(s, s.request(0x06, 0x3C, struct.pack("<I", s.bsid)))
        if s.completion_code(rsp) != 0:
            raise Broken("Close Session failed")


async def make_client() -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    sock = client.transport.get_extra_info("socket")
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        except OSError:
            pass
    return client


# -- servers as processes ------------------------------------------------------------------------

def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def ping(client: Client, address) -> bool:
    try:
        s = await client.login(address)
        await client.close_session(s)
        return True
    except Broken:
        return False


async def start_ipmi_sim(workdir: Path, client: Client):
    binary = shutil.which("ipmi_sim")
    if binary is None:
        return None, None
    port = free_udp_port()
    conf = workdir / "lan.conf"
    conf.write_text((HERE / "ipmi_sim" / "lan-bench.conf.in").read_text().replace("@PORT@", str(port)))
    (workdir / "sim-state").mkdir()
    log = open(workdir / "ipmi_sim.log", "wb")
    proc = subprocess.Popen([binary, "-c", str(conf), "-f", str(HERE / "ipmi_sim" / "bmc.emu"),
                             "-s", str(workdir / "sim-state"), "-n"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    address = ("127.0.0.1", port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        if await ping(client, address):
            return proc, address
        await asyncio.sleep(0.1)
    stop(proc)
    raise Broken("ipmi_sim did not answer on LAN: " + (workdir / "ipmi_sim.log").read_text(errors="replace"))


async def start_vhw(workdir: Path, client: Client):
    proc = subprocess.Popen([sys.executable, "-m", "vhw.cli", "fleet", "--count", "1", "--base-port", "0",
                             "--user", f"{USER.decode()}:{PASSWORD.decode()}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(workdir / "vhw.log", "wb"), cwd=HERE.parent)
    line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
    fields = line.split()
    if len(fields) != 3:
        stop(proc)
        raise Broken("vhw fleet did not print its port: " + (workdir / "vhw.log").read_text(errors="replace"))
    address = (fields[1].decode(), int(fields[2]))
    if not await ping(client, address):
        stop(proc)
        raise Broken("vhw fleet did not answer")
    return proc, address


# -- part 1: rate and session setups ---------------------------------------------------------------

async def request_rate(client: Client, address, pid: int, sessions: int, seconds: float) -> dict:
    conns = [await client.login(address) for _ in range(sessions)]
    count = 0
    stop_at = 0.0

    async def worker(s):
        nonlocal count
        while time.monotonic() < stop_at:
            rsp = await client.exchange(s, s.request(0x06, 0x01))
            if s.completion_code(rsp) != 0:
                raise Broken("Get Device ID failed")
            count += 1

    cpu0, own0 = process_cpu(pid), time.process_time()
    t0 = time.monotonic()
    stop_at = t0 + seconds
    await asyncio.gather(*(worker(s) for s in conns))
    elapsed = time.monotonic() - t0
    cpu, own = process_cpu(pid) - cpu0, time.process_time() - own0
    for s in conns:
        await client.close_session(s)
    n = max(count, 1)
    return {"rate": count / elapsed, "server_cpu_us": cpu / n * 1e6, "client_cpu_us": own / n * 1e6,
            # The share of the run the client was on a CPU: near 1, the client sets the pace.
            "client_busy": own / elapsed}


async def setup_rate(client: Client, address, pid: int, workers: int, seconds: float) -> dict:
    count = 0
    stop_at = time.monotonic() + seconds

    async def worker():
        nonlocal count
        while time.monotonic() < stop_at:
            s = await client.login(address)
            await client.close_session(s)
            count += 1

    cpu0 = process_cpu(pid)
    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.monotonic() - t0
    return {"rate": count / elapsed, "server_cpu_us": (process_cpu(pid) - cpu0) / max(count, 1) * 1e6}


async def part_rate(args, workdir: Path, results: dict) -> None:
    client = await make_client()
    sim_proc, sim_addr = await start_ipmi_sim(workdir, client)
    if sim_proc is None:
        say("[bench] ipmi_sim is not installed (Debian's openipmi): the rate comparison is skipped")
        results["rate"] = None
        return
    vhw_proc, vhw_addr = await start_vhw(workdir, client)
    servers = {"vhw": (vhw_proc, vhw_addr), "ipmi_sim": (sim_proc, sim_addr)}
    rounds: dict[str, dict[str, list]] = {n: {"requests": [], "setups": [], "req_cpu": [], "setup_cpu": [],
                                              "client_cpu": [], "client_busy": []} for n in servers}
    try:
        for r in range(args.rounds):
            for name, (proc, addr) in servers.items():
                rq = await request_rate(client, addr, proc.pid, args.sessions, args.seconds)
                st = await setup_rate(client, addr, proc.pid, args.sessions, args.seconds / 2)
                rounds[name]["requests"].append(rq["rate"])
                rounds[name]["req_cpu"].append(rq["server_cpu_us"])
                rounds[name]["setups"].append(st["rate"])
                rounds[name]["setup_cpu"].append(st["server_cpu_us"])
                rounds[name]["client_cpu"].append(rq["client_cpu_us"])
                rounds[name]["client_busy"].append(rq["client_busy"])
                say(f"[bench] round {r + 1} {name:8s}: {rq['rate']:7.0f} requests/s "
                    f"({rq['server_cpu_us']:.0f} us server CPU each), {st['rate']:6.0f} setups/s")
    finally:
        for proc, _ in servers.values():
            stop(proc)
        client.transport.close()
    med = {n: {k: statistics.median(v) for k, v in d.items()} for n, d in rounds.items()}

    def per_round(key: str) -> list[float]:
        return [a / b for a, b in zip(rounds["vhw"][key], rounds["ipmi_sim"][key], strict=True)]

    req_ratios, setup_ratios = per_round("requests"), per_round("setups")
    results["rate"] = {"rounds": rounds, "median": med,
                       "round_ratios_requests": req_ratios, "round_ratios_setups": setup_ratios,
                       # the headline: median of the per-round ratios
                       "ratio_requests": statistics.median(req_ratios),
                       "ratio_setups": statistics.median(setup_ratios),
                       "ratio_of_medians_requests": med["vhw"]["requests"] / med["ipmi_sim"]["requests"],
                       "sessions": args.sessions, "seconds": args.seconds}


# -- part 2: the fleet -----------------------------------------------------------------------------

def fleet_child(count: int) -> None:
    """Runs in the child: start ``count`` BMCs, report RSS and ports on stdout, serve until stdin closes."""
    from vhw.fleet import Fleet

    async def main():
        before = process_rss_mb(os.getpid())
        fleet = Fleet(count, user=USER.decode(), password=PASSWORD.decode(), base_port=0)
        t0 = time.monotonic()
        await fleet.start()
        started = time.monotonic() - t0
        after = process_rss_mb(os.getpid())
        print(json.dumps({"rss_before_mb": before, "rss_after_mb": after, "start_s": started,
                          "ports": [m.address[1] for m in fleet.members]}), flush=True)
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        loop.add_reader(sys.stdin.fileno(), done.set)  # the parent closes our stdin to stop us
        await done.wait()
        await fleet.close()

    asyncio.run(main())


async def part_fleet(args, results: dict) -> None:
    proc = subprocess.Popen([sys.executable, __file__, "--fleet-child", str(args.fleet)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=HERE.parent)
    try:
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        if not line:
            raise Broken("the fleet child died while starting")
        info = json.loads(line)
        say(f"[bench] fleet: {args.fleet} BMCs started in {info['start_s']:.1f} s, "
            f"RSS {info['rss_before_mb']:.0f} -> {info['rss_after_mb']:.0f} MB")
        cpu0, t0 = process_cpu(proc.pid), time.monotonic()
        await asyncio.sleep(3)
        idle_cpu = (process_cpu(proc.pid) - cpu0) / (time.monotonic() - t0)
        addresses = [("127.0.0.1", p) for p in info["ports"]]
        client = await make_client()
        sem = asyncio.Semaphore(32)

        async def login(a):
            async with sem:
                return await client.login(a)

        t0 = time.monotonic()
        conns = await asyncio.gather(*(login(a) for a in addresses))
        login_s = time.monotonic() - t0
        say(f"[bench] fleet: {len(conns)} sessions in {login_s:.1f} s; idle CPU {idle_cpu * 100:.1f} %; "
            f"now {args.fleet_rate} requests/s for {args.fleet_seconds} s")
        latencies: list[float] = []
        failures = 0

        async def one(s):
            nonlocal failures
            t = time.perf_counter()
            try:
                rsp = await client.exchange(s, s.request(0x06, 0x01), timeout=1.0, tries=1)
                if s.completion_code(rsp) != 0:
                    failures += 1
                    return
                latencies.append(time.perf_counter() - t)
            except Broken:
                failures += 1

        loop = asyncio.get_running_loop()
        interval = 1.0 / args.fleet_rate
        total = int(args.fleet_rate * args.fleet_seconds)
        busy: set = set()
        pending = []
        cpu0 = process_cpu(proc.pid)
        start = loop.time()
        i = 0
        while i < total:
            due = start + i * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            s = conns[i % len(conns)]
            if s.csid in busy:  # still waiting on this BMC (one outstanding request per session)
                failures += 1
            else:
                busy.add(s.csid)
                task = loop.create_task(one(s))
                task.add_done_callback(lambda _t, c=s.csid: busy.discard(c))
                pending.append(task)
            i += 1
        await asyncio.gather(*pending)
        elapsed = loop.time() - start
        load_cpu = (process_cpu(proc.pid) - cpu0) / elapsed
        rss_loaded = process_rss_mb(proc.pid)
        client.transport.close()
        latencies.sort()

        def pct(p):
            return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e3 if latencies else float("nan")

        results["fleet"] = {
            "count": args.fleet, "start_s": info["start_s"], "rss_before_mb": info["rss_before_mb"],
            "rss_after_mb": info["rss_after_mb"], "rss_with_sessions_mb": rss_loaded,
            "kb_per_bmc": (info["rss_after_mb"] - info["rss_before_mb"]) * 1024 / args.fleet,
            "idle_cpu_fraction": idle_cpu, "login_s": login_s, "requests": len(latencies), "failures": failures,
            "offered_rate": args.fleet_rate, "achieved_rate": len(latencies) / elapsed,
            "server_cpu_fraction": load_cpu,
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": latencies[-1] * 1e3 if latencies else None,
        }
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            stop(proc)


def report(results: dict) -> None:
    print("\nIPMI over LAN (lanplus, cipher suite 3, Get Device ID)")
    r = results.get("rate")
    if r:
        m = r["median"]
        print(f"{'':10s} {'requests/s':>11s} {'server us/req':>14s} {'client us/req':>14s} {'client busy':>12s} "
              f"{'setups/s':>9s} {'server us/setup':>16s}")
        for n in ("vhw", "ipmi_sim"):
            print(f"{n:10s} {m[n]['requests']:11.0f} {m[n]['req_cpu']:14.0f} {m[n]['client_cpu']:14.0f} "
                  f"{m[n]['client_busy'] * 100:11.0f}% {m[n]['setups']:9.0f} {m[n]['setup_cpu']:16.0f}")
        if min(m[n]["client_busy"] for n in ("vhw", "ipmi_sim")) > 0.85:
            print("  the client was on a CPU most of both runs: the rates are the client's pace, and the "
                  "servers' CPU per request is the comparison of their cost")
        ok = r["ratio_requests"] >= TARGET_RATE_RATIO
        rounds = len(r["round_ratios_requests"])
        print(f"request rate vhw/ipmi_sim, median of {rounds} per-round ratios {r['ratio_requests']:.3f} "
              f"(target >= {TARGET_RATE_RATIO}) {'PASS' if ok else 'MISS'}")
        print("  per-round ratios " + " ".join(f"{x:.2f}" for x in r["round_ratios_requests"])
              + f"; ratio of the medians {r['ratio_of_medians_requests']:.3f}")
        print(f"session setups vhw/ipmi_sim {r['ratio_setups']:.3f} (median of per-round ratios; no target)")
    f = results.get("fleet")
    if f:
        print(f"\nfleet of {f['count']} BMCs in one process (started in {f['start_s']:.1f} s)")
        print(f"RSS {f['rss_before_mb']:.0f} MB before, {f['rss_after_mb']:.0f} MB after "
              f"({f['kb_per_bmc']:.0f} KB per idle BMC), {f['rss_with_sessions_mb']:.0f} MB with a session each; "
              f"idle CPU {f['idle_cpu_fraction'] * 100:.1f} %")
        print(f"{f['requests']} requests at {f['achieved_rate']:.0f}/s (offered {f['offered_rate']}), "
              f"{f['failures']} failed; latency p50 {f['p50_ms']:.2f} ms, p90 {f['p90_ms']:.2f} ms, "
              f"p99 {f['p99_ms']:.2f} ms, max {f['max_ms']:.2f} ms; server CPU {f['server_cpu_fraction'] * 100:.0f} %")
        mem_ok = f["rss_after_mb"] < TARGET_FLEET_MB
        lat_ok = f["p99_ms"] < TARGET_P99_MS and f["failures"] == 0
        print(f"memory {f['rss_after_mb']:.0f} MB (target < {TARGET_FLEET_MB:.0f}) {'PASS' if mem_ok else 'MISS'}; "
              f"p99 {f['p99_ms']:.1f} ms (target < {TARGET_P99_MS:.0f}) {'PASS' if lat_ok else 'MISS'}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="seconds per request-rate measurement")
    p.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    p.add_argument("--sessions", type=int, default=4, help="concurrent sessions (K)")
    p.add_argument("--fleet", type=int, default=1000, help="BMCs in the fleet (0 skips the fleet part)")
    p.add_argument("--fleet-rate", type=int, default=500, help="aggregate requests/s to the fleet")
    p.add_argument("--fleet-seconds", type=float, default=10.0)
    p.add_argument("--no-rate", action="store_true", help="skip the vhw/ipmi_sim comparison")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--fleet-child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.fleet_child:
        fleet_child(args.fleet_child)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results: dict = {}
    status = 0
    with tempfile.TemporaryDirectory(prefix="vhw-bench-lan-") as tmp:
        try:
            if not args.no_rate:
                asyncio.run(part_rate(args, Path(tmp), results))
                if results.get("rate") is None:
                    status = 2
            if args.fleet:
                asyncio.run(part_fleet(args, results))
        except Broken as e:
            say(f"[bench] broken: {e}")
            status = 1
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
