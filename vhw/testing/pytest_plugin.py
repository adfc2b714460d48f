"""pytest plugin: driver regression tests against vhw's devices in a few lines.

Installed with vhw (entry point ``pytest11: vhw``), so any test suite gets::

    import pytest

    @pytest.mark.vhw(description={"bmc": {"interfaces": ["kcs"]}})
    def test_mc_info(vhw_machine):
        r = vhw_machine.run("ipmitool -I open mc info")
        assert r.returncode == 0

``vhw_machine`` boots the machine the ``vhw`` marker describes (a dict, a
TOML path relative to the test file, or a ``Description``) with the chosen
guest, and hands the test a synchronous :class:`VhwMachine`: the test body is
plain blocking code while QEMU, the BMC and the IOPs run on an event loop in
a background thread.  ``vhw_module_machine`` is the same, booted once per
module (mark the module with ``pytestmark = pytest.mark.vhw(...)``).

Any guest: ``pytest --vhw-guest freebsd-14-amd64 [--vhw-image PATH]`` runs
the same tests on a downloaded guest (or your own build of it), reached
over its serial console; ``--vhw-access console`` drives the Linux guest
that way too.  A test says what it needs with ``needs=[...]`` on its marker
("agent", "compiler", "os:linux", a path such as "/dev/ipmi0", or a command
such as "ipmitool") and is skipped, with the reason, where the guest lacks
it; a guest that cannot carry the marker's machine (an IPMI interface its
driver does not know, no I2O driver) or cannot be fetched is a skip too.

A machine of vhw's Linux guest starts from a snapshot of its description
where the devices allow (vhw.machine.snapshot, docs/snapshots.md): the first
machine of a description boots and saves one, later ones restore it in a
fraction of the boot.  ``snapshot=False`` on the marker, or
``VHW_SNAPSHOT=0`` in the environment, makes a test's machine boot for real.

Every machine records a trace (vhw.trace: ``trace.jsonl`` + ``trace.pcapng``).
When a test fails, its report carries the console tail, QEMU's stderr and
the end of the decoded trace; the files are copied next to the test's results
JSON (``--vhw-results``, default ``build/vhw-results``), which ``vhw report``
turns into one page.  Each machine lives in the test's own tmp_path with its
own sockets, so tests are parallel-safe under pytest-xdist.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .facade import BmcFacade, FaultsFacade, LoopThread, PromFacade

#: Kernel messages that make a driver test fail even when its assertions pass.
KERNEL_TROUBLE = re.compile(rb"Oops[:\s]|BUG: |Kernel panic|general protection fault|Call Trace:")
DEFAULT_RESULTS = "build/vhw-results"
#: How much of a log a failure report quotes.
TAIL_BYTES = 12000
TRACE_LINES = 60


# -- what a test gets --------------------------------------------------------


class VhwMachine:
    """A booted machine, driven synchronously from a test.

    ``run`` and ``wait_event`` block; ``bmc``, ``faults`` and ``prom`` are
    the devices' test faces (vhw.testing.facade), each call run on the loop;
    ``trace`` is the vhw.trace.Trace (thread safe, read it directly);
    ``call(coro)`` runs anything else on the machine's loop.
    """

    def __init__(self, machine, loop: LoopThread, workdir: Path, guest: str) -> None:
        self.machine = machine
        self.loop = loop
        self.workdir = workdir
        self.guest = guest
        #: Filled by the test (``case``, ``finding``) for the results JSON.
        self.cases: list[dict] = []
        self.findings: list[dict] = []
        #: Conformance programs found or built in this guest (program), by name.
        self._programs: dict[str, str] = {}

    # guest
    def run(self, command: str, timeout: float = 120, check: bool = False, **kw):
        """Run a shell command in the guest (vhw.machine.agent.RunResult)."""
        result = self.call(self.machine.run(command, timeout=timeout, **kw))
        return result.check(command) if check else result

    def run_background(self, command: str, timeout: float = 120, **kw) -> concurrent.futures.Future:
        """Start a guest command and return at once; ``.result(seconds)`` is its RunResult.
        Over the console the guest runs one command at a time: others wait until it ends."""
        return self.loop.submit(self.machine.run(command, timeout=timeout, **kw))

    def sh(self, command: str, timeout: float = 120) -> str:
        """Run a command that must succeed; its stdout as text."""
        return self.run(command, timeout=timeout, check=True).stdout.decode(errors="replace")

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file in the guest (agent or console alike)."""
        self.call(self.machine.put(path, data, mode))

    def get(self, path: str) -> bytes:
        """Read a file from the guest."""
        return self.call(self.machine.get(path))

    def program(self, name: str) -> str:
        """The command that runs vhw's conformance program ``name`` (ipmi_conform, ptosm_conform,
        openprom_conform) in this guest: prebuilt on vhw's Linux guests, else built in the guest now
        (vhw.guests.programs).  Skips the test, with the reason, where the OS has nothing for the
        program or the guest no compiler; a program that does not build fails it."""
        from ..guests import programs

        if name not in self._programs:
            try:
                self._programs[name] = self.call(programs.ensure(self.machine, name, self.os))
            except programs.ProgramUnavailable as e:
                pytest.skip(f"vhw: {e}")
        return self._programs[name]

    @property
    def access(self) -> str:
        """How this machine reaches its guest: "agent" or "console"."""
        return self.machine.desc.machine.access

    @property
    def os(self) -> str:
        """The guest's OS family: linux, freebsd, illumos, netbsd."""
        return guest_os(self.guest)

    def lacks(self, need: str) -> str | None:
        """Why the running guest does not meet ``need`` (see NEEDS), or None if it does."""
        command = probe_command(need)
        if command is None:
            return None
        r = self.run(command, timeout=30)
        if r.returncode == 0:
            return None
        what = NEEDS.get(need) or (f"{need} on the guest" if need.startswith("/") else f"the {need} command")
        return f"needs {what}; {self.guest} has none"

    def call(self, coro, timeout: float | None = None):
        """Run a coroutine on the machine's loop and return its result."""
        return self.loop.call(coro, timeout)

    def background(self, coro) -> concurrent.futures.Future:
        """Start a coroutine on the machine's loop without waiting for it."""
        return self.loop.submit(coro)

    # devices
    @property
    def bmc(self) -> BmcFacade | None:
        """The BMC as the host sees it (None without vhw's in-process BMC)."""
        service = getattr(self.machine, "bmc_service", None)
        return BmcFacade(service, self.loop) if service is not None else None

    @property
    def prom(self) -> PromFacade | None:
        """A SPARC machine's EEPROM options (None on x86)."""
        prom = getattr(self.machine, "prom", None)
        return PromFacade(prom, self.loop) if prom is not None else None

    @property
    def faults(self) -> FaultsFacade:
        """Inject faults into the BMC, the IOPs, the EEPROM (docs/faults.md), and see what fired."""
        return FaultsFacade(self.machine.faults, self.loop)

    @property
    def trace(self):
        return self.machine.trace

    def lan_address(self) -> tuple[str, int] | None:
        """Where the BMC answers IPMI over LAN (when the description has ``lan``)."""
        service = getattr(self.machine, "bmc_service", None)
        return service.lan_address if service is not None else None

    # QEMU
    def qmp(self, command: str, **arguments):
        """Execute a QMP command and return its result."""
        return self.call(self.machine.qmp.execute(command, arguments or None))

    @property
    def events(self) -> list[dict]:
        return list(self.machine.events)

    def wait_event(self, name: str, timeout: float = 30, since: int = 0) -> dict:
        return self.call(self.machine.wait_event(name, timeout, since=since))

    def wait_ready(self, timeout: float = 60) -> None:
        """After a power cycle (QEMU relaunched): wait for the new guest's agent."""
        self.call(self.machine.wait_ready(timeout))

    def wait_rebooted(self, timeout: float = 60) -> None:
        """After a reset inside the same QEMU: wait until the guest is back (agent READY, or logged in again)."""
        self.call(self.machine.wait_rebooted(timeout))

    def wait_for(self, condition, timeout: float = 30, what: str = "the condition"):
        """Poll ``condition()`` (every 50 ms) until it returns something true, and return that;
        fail the test, naming ``what``, if it does not within ``timeout`` seconds.  Instead of
        sleeping for a guess: wait for the trace to show what the test waits for."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"vhw: no {what} within {timeout:g} s", pytrace=False)
            time.sleep(0.05)

    def requests(self, channel: str, netfn: int, cmd: int, since: float = 0.0) -> list[dict]:
        """The trace records of requests with ``netfn``/``cmd`` the BMC read on ``channel``
        (e.g. "ipmi-kcs") from time ``since``."""
        return self.trace.messages(channel, "in", netfn, cmd, since)

    def responses(self, channel: str, netfn: int, cmd: int, since: float = 0.0) -> list[dict]:
        """The trace records of responses (``netfn`` is the response's, the request's + 1) the BMC wrote."""
        return self.trace.messages(channel, "out", netfn, cmd, since)

    def console_text(self) -> str:
        path = self.workdir / "console.log"
        return path.read_bytes().decode(errors="replace") if path.is_file() else ""

    # results
    def case(self, name: str, outcome: str, detail: str = "") -> None:
        """Record one conformance case ("pass", "fail" or "skip") for the report."""
        if outcome not in ("pass", "fail", "skip"):
            raise ValueError(f"case outcome must be pass, fail or skip, not {outcome!r}")
        self.cases.append({"name": name, "outcome": outcome, "detail": detail})

    def conformance(self, output: str | bytes) -> list[dict]:
        """Record an in-guest conformance program's cases for the report.

        Understands both styles the guest programs print: ``PASS name`` /
        ``FAIL name: why`` / ``SKIP name: why`` lines (ptosm_conform) and JSON
        lines ``{"case", "ok", "detail"[, "finding"]}`` (ipmi_conform), whose
        findings (documented deviations from the seed) become warnings.
        """
        from ..report import parse_conformance_findings, parse_conformance_output

        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        found = [{"name": c.name, "outcome": c.outcome, "detail": c.detail} for c in parse_conformance_output(output)]
        for f in parse_conformance_findings(output):
            self.finding(f.severity, f.summary, f.evidence)
        self.cases.extend(found)
        return found

    def finding(self, severity: str, summary: str, evidence: str = "") -> None:
        """Record something a reader of the report should know, with its evidence."""
        if severity not in ("error", "warning", "info"):
            raise ValueError(f"severity must be error, warning or info, not {severity!r}")
        self.findings.append({"severity": severity, "summary": summary, "evidence": evidence})

    def devices(self) -> list[str]:
        desc = self.machine.desc
        out = []
        if desc.bmc is not None:
            out += [f"bmc:{name}" for name in desc.bmc.interfaces]
        out += [f"i2o:{index}" for index, _ in enumerate(desc.i2o)]
        if desc.prom is not None:
            out.append("prom")
        return out


# -- booting -----------------------------------------------------------------


def resolve_description(spec, base: Path):
    """The marker's ``description``: None, a dict, a TOML path, or a Description."""
    from ..machine.description import Description, load_description, parse_description

    if spec is None:
        return parse_description({}, "<vhw marker>")
    if isinstance(spec, Description):
        return spec
    if isinstance(spec, dict):
        return parse_description(spec, "<vhw marker>")
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        return load_description(path if path.is_absolute() else base / path)
    raise TypeError(f"description must be a dict, a TOML path or a Description, not {spec!r}")


#: What a test may ask of its guest (marker ``needs``), besides a path ("/dev/ipmi0") or a command ("ipmitool").
NEEDS = {
    "agent": "the vhw agent (binary-exact I/O, background commands)",
    "compiler": "a C compiler (cc, gcc or clang)",
}


def guest_os(guest: str) -> str:
    """The OS family of a guest: "linux" for vhw's built guests, else the recipe's (freebsd, illumos, netbsd)."""
    from ..guests.remote import REMOTE_GUESTS

    recipe = REMOTE_GUESTS.get(guest)
    return recipe.os if recipe is not None else "linux"


def static_lack(need: str, desc) -> str | None:
    """Why the machine cannot meet ``need`` before it boots, or None (probed after boot, or met)."""
    guest = desc.machine.guest
    if need == "agent" and desc.machine.access != "agent":
        return f"needs the vhw agent; {guest} is reached over its console here"
    if need.startswith("os:") and guest_os(guest) != need[3:]:
        return f"needs a {need[3:]} guest; {guest} is {guest_os(guest)}"
    return None


def probe_command(need: str) -> str | None:
    """The guest command that succeeds when ``need`` is met (None: nothing to probe)."""
    if need == "compiler":
        return "command -v cc || command -v gcc || command -v clang"
    if need.startswith("/"):
        return f"test -e {need}"
    if need in NEEDS or need.startswith("os:"):
        return None
    return f"command -v {need}"


def with_guest(desc, guest: str | None, access: str | None = None):
    """The marker's machine on the chosen guest and access (GuestMismatch when it cannot be)."""
    from ..machine.description import for_guest

    return for_guest(desc, guest, access)


def disks_in(desc, workdir: Path):
    """Relative disk image paths live in the machine's work directory: each
    test gets its own images (parallel-safe, nothing left in the checkout)."""
    import dataclasses

    def place(disk):
        if Path(disk.image).is_absolute():
            return disk
        return dataclasses.replace(disk, image=str(workdir / disk.image))

    iops = tuple(dataclasses.replace(iop, disks=tuple(place(d) for d in iop.disks)) for iop in desc.i2o)
    return dataclasses.replace(desc, i2o=iops)


def marker_value(node, key: str, default=None):
    """``key`` of the closest ``vhw`` marker that sets it: a test's own marker may add
    ``needs`` to its module's ``pytestmark`` without repeating the description."""
    for marker in node.iter_markers("vhw"):
        if key in marker.kwargs:
            return marker.kwargs[key]
    return default


def needs_of(node) -> tuple[str, ...]:
    """Every ``needs`` of the test's ``vhw`` markers (its own, its class's, its module's)."""
    found: list[str] = []
    for marker in node.iter_markers("vhw"):
        needs = marker.kwargs.get("needs", ())
        for need in (needs,) if isinstance(needs, str) else needs:
            if need not in found:
                found.append(need)
    return tuple(found)


def choose_guest(node, config) -> str | None:
    """The marker's ``guest`` pins a test; else ``--vhw-guest``; else the description's."""
    return marker_value(node, "guest") or config.getoption("vhw_guest")


async def start_machine(desc, workdir: Path, trace, image=None, snapshot: bool | None = None):
    """Boot ``desc`` (on the loop thread): ``image``, else the guest's (built if needed);
    ``snapshot``: may it start from a snapshot (None: $VHW_SNAPSHOT decides)."""
    from ..guests.images import GUESTS
    from ..machine.description import SPARC_TYPES

    if desc.machine.type in SPARC_TYPES and desc.machine.guest in GUESTS:
        from ..guests.images import ensure_image
        from ..prom.machine import SparcMachine

        image = image or await asyncio.to_thread(ensure_image, desc.machine.guest)
        sparc = SparcMachine(desc, image=image, workdir=workdir, trace=trace)
        await sparc.start()
        return sparc
    from ..machine.launcher import Machine

    machine = Machine(desc, image=image, workdir=workdir, trace=trace, snapshot=snapshot)
    await machine.start()
    return machine


_IMAGES = pytest.StashKey[dict]()


def session_image(config, guest: str):
    """What a downloaded ``guest`` boots, resolved once per session (--vhw-image, else the
    verified download); None for vhw's built guests (the machine builds them on first use).
    A guest that cannot be fetched (offline, not pinned) skips its tests with the reason."""
    from ..errors import ImageError
    from ..guests.images import GUESTS
    from ..guests.remote import get_remote, is_downloaded, mirrored, offline_message, reachable

    if guest in GUESTS:
        if config.getoption("vhw_image"):
            pytest.fail(f"--vhw-image is for the downloaded guests; {guest} is built by vhw", pytrace=False)
        return None
    images = config.stash.setdefault(_IMAGES, {})
    if guest not in images:
        given = config.getoption("vhw_image")
        try:
            if not given:
                recipe = get_remote(guest)
                if not is_downloaded(recipe):
                    ok, why = reachable(mirrored(recipe.url))
                    if not ok:
                        raise ImageError(offline_message(recipe, why))
            from ..guests.remote import boot_image

            images[guest] = ("ok", boot_image(guest, given))
        except ImageError as e:
            images[guest] = ("skip", str(e))
    state, value = images[guest]
    if state == "skip":
        pytest.skip(f"vhw: {value}")
    return value


def _boot(request, workdir: Path) -> VhwMachine:
    from ..errors import GuestMismatch, VhwError
    from ..trace import Trace

    node = request.node
    base = Path(str(node.fspath)).parent
    access = marker_value(node, "access") or request.config.getoption("vhw_access")
    try:
        desc = resolve_description(marker_value(node, "description"), base)
    except (VhwError, TypeError) as e:
        pytest.fail(f"vhw marker on {node.nodeid}: {e}", pytrace=False)
    try:
        desc = with_guest(desc, choose_guest(node, request.config), access)
    except GuestMismatch as e:
        pytest.skip(f"vhw: {e}")
    desc = disks_in(desc, workdir)
    for need in needs_of(node):
        why = static_lack(need, desc)
        if why:
            pytest.skip(f"vhw: {request.node.name} {why}")
    guest = desc.machine.guest
    image = session_image(request.config, guest)
    workdir.mkdir(parents=True, exist_ok=True)
    loop = LoopThread(f"vhw-{request.node.name}")
    trace = Trace.to_dir(workdir / "trace")
    try:
        machine = loop.call(start_machine(desc, workdir, trace, image, snapshot=marker_value(node, "snapshot")))
    except BaseException:
        trace.close()
        loop.close()
        raise
    return VhwMachine(machine, loop, workdir, guest)


def _skip_unless_met(request, vm: VhwMachine) -> None:
    """The marker's needs that only the running guest can answer (commands, paths, a compiler)."""
    for need in needs_of(request.node):
        why = static_lack(need, vm.machine.desc) or vm.lacks(need)
        if why:
            pytest.skip(f"vhw: {request.node.name} {why}")


def _shutdown(vm: VhwMachine) -> None:
    try:
        vm.call(vm.machine.stop(), timeout=60)
    finally:
        vm.trace.close()
        vm.loop.close()


def _trouble(vm: VhwMachine, since: int = 0) -> list[str]:
    """Kernel oops/BUG/panic lines the console printed (from byte ``since``)."""
    path = vm.workdir / "console.log"
    if not path.is_file():
        return []
    lines = path.read_bytes()[since:].splitlines()
    return [line.decode(errors="replace") for line in lines if KERNEL_TROUBLE.search(line)]


def _console_size(vm: VhwMachine) -> int:
    path = vm.workdir / "console.log"
    return path.stat().st_size if path.is_file() else 0


def _start_kind(machine) -> str:
    """How the machine's guest started: "snapshot" (restored), "boot+save", or "boot"."""
    boot = getattr(machine, "boot", None)
    if getattr(boot, "restored", False):
        return "snapshot"
    return "boot+save" if getattr(boot, "saved", False) else "boot"


def _use(request, vm: VhwMachine, since: int = 0, started: float | None = None):
    """Bind ``vm`` to the test for the failure report and the results JSON."""
    started = time.monotonic() if started is None else started
    request.node.stash[_MACHINE] = (vm, since, started, len(vm.cases), len(vm.findings),
                                    len(vm.machine.faults.events))


def _check_kernel(request, vm: VhwMachine, since: int) -> None:
    if marker_value(request.node, "allow_oops", False):
        return
    bad = _trouble(vm, since)
    if bad:
        vm.finding("error", "the guest kernel reported a fault", "\n".join(bad[:20]))
        pytest.fail("guest kernel reported trouble on the console:\n" + "\n".join(bad[:20]), pytrace=False)


@pytest.fixture
def vhw_machine(request, tmp_path) -> Iterator[VhwMachine]:
    """A machine booted for this test from its ``vhw`` marker, stopped after it."""
    started = time.monotonic()
    vm = _boot(request, tmp_path / "vhw")
    _use(request, vm, started=started)
    try:
        _skip_unless_met(request, vm)
        yield vm
        _check_kernel(request, vm, 0)
    finally:
        _shutdown(vm)


@pytest.fixture(scope="module")
def vhw_module_machine(request, tmp_path_factory) -> Iterator[VhwMachine]:
    """One machine for every test of a module (``pytestmark = pytest.mark.vhw(...)``)."""
    vm = _boot(request, tmp_path_factory.mktemp("vhw-module"))
    try:
        yield vm
    finally:
        _shutdown(vm)


@pytest.fixture
def vhw_shared(request, vhw_module_machine) -> Iterator[VhwMachine]:
    """The module's machine, with this test's console, cases and faults reported separately."""
    vm = vhw_module_machine
    since = _console_size(vm)
    _use(request, vm, since)
    _skip_unless_met(request, vm)
    yield vm
    _check_kernel(request, vm, since)


# -- pytest hooks -------------------------------------------------------------

_MACHINE = pytest.StashKey[tuple]()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("vhw", "vhw virtual hardware")
    group.addoption("--vhw-guest", dest="vhw_guest", metavar="NAME", default=None,
                    help="boot this guest for every vhw test that does not pin one (see `vhw guest list`): "
                         "a built one (linux-x86) or a downloaded one (freebsd-14-amd64, omnios, netbsd-10-amd64, ...)")
    group.addoption("--vhw-image", dest="vhw_image", metavar="PATH", default=None,
                    help="with a downloaded --vhw-guest: boot this disk image (your own build) instead of "
                         "the pinned download")
    group.addoption("--vhw-access", dest="vhw_access", choices=("agent", "console"), default=None,
                    help="how tests reach the guest: its vhw agent, or a login on its serial console "
                         "(the only way into the downloaded guests; default: the guest's own)")
    group.addoption("--vhw-results", dest="vhw_results", metavar="DIR", default=DEFAULT_RESULTS,
                    help=f"write one results JSON per vhw test here, for `vhw report` (default {DEFAULT_RESULTS}; "
                         "'' for none)")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "vhw(description=None, guest=None, access=None, needs=(), allow_oops=False): the machine the "
        "vhw_machine fixture boots: description is a dict, a TOML path relative to the test file, or a "
        "Description; guest pins the guest; access is agent or console; needs names what the test needs of "
        "the guest (agent, compiler, os:NAME, a path, a command) and skips it where the guest lacks that; "
        "allow_oops keeps a kernel Oops/BUG/panic on the console from failing the test",
    )


def _results_root(config, target: str) -> Path:
    return Path(config.rootpath) / target if not Path(target).is_absolute() else Path(target)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    bound = item.stash.get(_MACHINE, None)
    if bound is None:
        return
    vm = bound[0]
    if rep.failed and rep.when in ("call", "teardown", "setup"):
        _attach_failure(rep, vm, bound[1])
    if rep.when == "call" or (rep.when == "setup" and not rep.passed) or (rep.when == "teardown" and rep.failed):
        item.stash[_OUTCOME] = _merge_outcome(item.stash.get(_OUTCOME, None), rep)
    if rep.when == "teardown":
        _write_results(item, vm, bound)


_OUTCOME = pytest.StashKey[tuple]()


def _merge_outcome(old, rep) -> tuple:
    outcome = "failed" if rep.failed else rep.outcome
    if old is not None and old[0] == "failed":
        return old
    message = ""
    if rep.failed:
        message = str(rep.longrepr)[-4000:]
    elif rep.skipped and isinstance(rep.longrepr, tuple):
        message = rep.longrepr[2]
    return outcome, message


def _attach_failure(rep, vm: VhwMachine, since: int) -> None:
    names = {s[0] for s in rep.sections}
    path = vm.workdir / "console.log"
    if path.is_file() and "vhw console" not in names:
        text = path.read_bytes()[since:][-TAIL_BYTES:].decode(errors="replace")
        rep.sections.append(("vhw console", text))
    stderr = vm.workdir / "qemu.stderr"
    if stderr.is_file() and stderr.stat().st_size and "vhw qemu.stderr" not in names:
        rep.sections.append(("vhw qemu.stderr", stderr.read_bytes()[-TAIL_BYTES:].decode(errors="replace")))
    if "vhw trace" not in names:
        rep.sections.append(("vhw trace", _trace_tail(vm)))


def _trace_tail(vm: VhwMachine) -> str:
    from ..cli.trace import format_records

    records = vm.trace.records()
    lines = list(format_records(records))
    directory = getattr(vm.trace, "directory", None)
    head = f"{len(records)} records"
    if directory is not None:
        head += f"; full trace: {directory / 'trace.jsonl'}  pcapng: {directory / 'trace.pcapng'}"
    return "\n".join([head, *lines[-TRACE_LINES:]])


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:180]


def _write_results(item, vm: VhwMachine, bound: tuple) -> None:
    target = item.config.getoption("vhw_results")
    if not target:
        return
    _, since, started, ncases, nfindings, nfaults = bound
    outcome, message = item.stash.get(_OUTCOME, ("passed", ""))
    root = _results_root(item.config, target)
    name = _safe_name(item.nodeid)
    artifacts_dir = root / name
    artifacts = _copy_artifacts(vm, artifacts_dir, since)
    findings = list(vm.findings[nfindings:])
    if outcome == "failed" and message:
        findings.insert(0, {"severity": "error", "summary": "test failed", "evidence": message})
    desc = vm.machine.desc
    results = {
        "test": item.nodeid,
        "outcome": outcome,
        "duration": round(time.monotonic() - started, 3),
        "guest": vm.guest,
        "guest_kernel": _guest_kernel(vm),
        "access": getattr(vm.machine.desc.machine, "access", "agent"),
        "start": _start_kind(vm.machine),
        "machine": desc.machine.name,
        "devices": vm.devices(),
        "cases": vm.cases[ncases:],
        "findings": findings,
        "artifacts": {k: str(Path(v).relative_to(root)) for k, v in artifacts.items()},
        "faults": [_jsonable(e) for e in vm.machine.faults.events[nfaults:]],
    }
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
    tmp.replace(root / f"{name}.json")


def _guest_kernel(vm: VhwMachine) -> str:
    image = getattr(vm.machine, "image", None)
    return image.kernel_version if image is not None else ""


def _copy_artifacts(vm: VhwMachine, dest: Path, since: int) -> dict[str, Path]:
    """This test's console slice, QEMU's stderr and the trace so far, next to the JSON."""
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    console = vm.workdir / "console.log"
    if console.is_file():
        (dest / "console.log").write_bytes(console.read_bytes()[since:])
        out["console"] = dest / "console.log"
    stderr = vm.workdir / "qemu.stderr"
    if stderr.is_file():
        shutil.copyfile(stderr, dest / "qemu.stderr")
        out["qemu_stderr"] = dest / "qemu.stderr"
    directory = getattr(vm.trace, "directory", None)
    if directory is not None:
        for key, fname in (("trace", "trace.jsonl"), ("pcap", "trace.pcapng")):
            if (directory / fname).is_file():
                shutil.copyfile(directory / fname, dest / fname)
                out[key] = dest / fname
    return out


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
