"""The pytest plugin (vhw.testing.pytest_plugin) run by pytester against a fake machine.

The real boots are exercised by examples/driver-tests (with xdist); here the
machine is a stand-in so the plugin's own rules can be checked exactly:
marker forms, guest choice, failure sections, results JSON, kernel-trouble
detection, module sharing and the thread bridge.
"""

import asyncio
import importlib
import json
import threading

import pytest

from vhw.testing import facade, pytest_plugin
from vhw.faults import FaultInjector
from vhw.machine.agent import RunResult

pytest_plugins = ["pytester"]


class FakeMachine:
    """Answers ``run`` from a table: ``oops`` prints a kernel Oops on the console."""

    started: list = []

    def __init__(self, desc, workdir, trace):
        self.desc, self.workdir, self.trace = desc, workdir, trace
        self.faults = FaultInjector(desc.faults, trace=trace)
        self.events = []
        self.console = workdir / "console.log"
        self.console.write_bytes(b"Linux version 6.1 (fake)\nVHW-READY\n")
        self.stopped = False

    async def run(self, command, timeout=None, **kw):
        self.trace.record("console", "out", f"$ {command}\n".encode())
        with self.console.open("ab") as f:
            f.write(f"$ {command}\n".encode())
            if command == "oops":
                f.write(b"[   12.5] BUG: kernel NULL pointer dereference, address: 0000000000000000\n")
        if command.startswith("echo "):
            return RunResult("exit", 0, command[5:].encode() + b"\n", b"")
        if command == "command -v echo":  # the guest's only command
            return RunResult("exit", 0, b"echo\n", b"")
        return RunResult("exit", 1, b"", b"sh: not found\n")

    async def stop(self):
        self.stopped = True


@pytest.fixture
def fake(monkeypatch):
    FakeMachine.started = []

    async def start_machine(desc, workdir, trace, image=None, snapshot=None):
        m = FakeMachine(desc, workdir, trace)
        m.snapshot = snapshot
        FakeMachine.started.append(m)
        return m

    monkeypatch.setattr(pytest_plugin, "start_machine", start_machine)
    return FakeMachine


def results(pytester, name=None) -> dict:
    files = sorted((pytester.path / "build" / "vhw-results").glob("*.json"))
    by_test = {json.loads(f.read_text())["test"].split("::")[-1]: json.loads(f.read_text()) for f in files}
    return by_test if name is None else by_test[name]


def test_marker_dict_boots_and_results_json_follows_the_schema(pytester, fake):
    pytester.makepyfile(test_a="""
        import pytest

        @pytest.mark.vhw(description={"machine": {"name": "m1"}, "bmc": {"interfaces": ["kcs", "bt"]}})
        def test_it(vhw_machine):
            assert vhw_machine.run("echo hi").stdout == b"hi\\n"
            vhw_machine.conformance('{"case": "recv_eagain", "ok": true, "detail": "d"}\\n'
                                    '{"case": "my_lun", "ok": false, "detail": "x", "finding": "F1"}\\n'
                                    'PASS numiops\\nFAIL msgtfr_sgl: ioctl ok, ReqStatus 0xb\\nSKIP x: no disk\\n')
            vhw_machine.finding("info", "noted", "evidence")
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    r = results(pytester, "test_it")
    assert set(r) == {"test", "outcome", "duration", "guest", "guest_kernel", "access", "start", "machine",
                      "devices", "cases", "findings", "artifacts", "faults"}
    assert r["outcome"] == "passed" and r["guest"] == "linux-x86" and r["machine"] == "m1"
    assert r["start"] == "boot"  # the fake has no BootTimes: neither restored nor saved
    assert r["devices"] == ["bmc:kcs", "bmc:bt"]
    assert [(c["name"], c["outcome"]) for c in r["cases"]] == [
        ("recv_eagain", "pass"), ("my_lun", "fail"), ("numiops", "pass"), ("msgtfr_sgl", "fail"), ("x", "skip")]
    assert r["cases"][3]["detail"] == "ioctl ok, ReqStatus 0xb"
    assert [(f["severity"], f["summary"]) for f in r["findings"]] == [("warning", "my_lun: F1"), ("info", "noted")]
    root = pytester.path / "build" / "vhw-results"
    assert (root / r["artifacts"]["console"]).read_bytes().endswith(b"$ echo hi\n")
    assert (root / r["artifacts"]["trace"]).is_file() and (root / r["artifacts"]["pcap"]).is_file()
    assert fake.started[0].stopped


def test_the_marker_can_make_a_machine_boot_for_real(pytester, fake):
    pytester.makepyfile(test_s="""
        import pytest

        @pytest.mark.vhw(description={"bmc": {"interfaces": ["kcs"]}}, snapshot=False)
        def test_cold(vhw_machine):
            pass

        @pytest.mark.vhw(description={"bmc": {"interfaces": ["kcs"]}})
        def test_default(vhw_machine):
            pass
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    by_name = {m.workdir.parent.name: m.snapshot for m in fake.started}
    assert sorted(by_name.values(), key=repr) == [False, None]  # None: the machine's default ($VHW_SNAPSHOT)


def test_results_say_how_the_machine_started():
    from types import SimpleNamespace

    from vhw.machine.launcher import BootTimes

    assert pytest_plugin._start_kind(SimpleNamespace(boot=BootTimes(restored=True))) == "snapshot"
    assert pytest_plugin._start_kind(SimpleNamespace(boot=BootTimes(saved=True))) == "boot+save"
    assert pytest_plugin._start_kind(SimpleNamespace(boot=BootTimes())) == "boot"


def test_a_failure_carries_console_trace_and_pcap_path(pytester, fake):
    pytester.makepyfile(test_b="""
        import pytest

        @pytest.mark.vhw(description={"bmc": {}})
        def test_fails(vhw_machine):
            vhw_machine.run("echo before")
            assert vhw_machine.run("ipmitool mc info").returncode == 0
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*vhw console*", "*$ ipmitool mc info*", "*vhw trace*",
                                 "*records; full trace: *trace.jsonl  pcapng: *trace.pcapng*"])
    r = results(pytester, "test_fails")
    assert r["outcome"] == "failed"
    assert r["findings"][0]["summary"] == "test failed" and "returncode" in r["findings"][0]["evidence"]


def test_a_kernel_bug_on_the_console_fails_a_passing_test_unless_allowed(pytester, fake):
    pytester.makepyfile(test_c="""
        import pytest

        @pytest.mark.vhw(description={"bmc": {}})
        def test_oops(vhw_machine):
            vhw_machine.run("oops")

        @pytest.mark.vhw(description={"bmc": {}}, allow_oops=True)
        def test_oops_allowed(vhw_machine):
            vhw_machine.run("oops")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*guest kernel reported trouble*", "*BUG: kernel NULL pointer dereference*"])
    r = results(pytester)
    assert r["test_oops"]["outcome"] == "failed"
    assert r["test_oops"]["findings"][-1]["summary"] == "the guest kernel reported a fault"
    assert r["test_oops_allowed"]["outcome"] == "passed"


def test_guest_choice_marker_pin_beats_option_beats_description(pytester, fake):
    pytester.makepyfile(test_d="""
        import pytest

        @pytest.mark.vhw(description={"machine": {"guest": "linux-x86"}})
        def test_from_option(vhw_machine):
            pass

        @pytest.mark.vhw(description={"bmc": {}}, guest="linux-x86")
        def test_pinned(vhw_machine):
            pass
    """)
    pytester.runpytest("-p", "no:cacheprovider", "--vhw-guest", "linux-sparc64").assert_outcomes(passed=2)
    r = results(pytester)
    assert r["test_from_option"]["guest"] == "linux-sparc64" and r["test_from_option"]["machine"] == "vhw"
    assert fake.started[0].desc.machine.type == "sun4u" and fake.started[0].desc.prom is not None
    assert r["test_pinned"]["guest"] == "linux-x86"


def test_a_guest_that_cannot_carry_the_machine_is_skipped_with_what_it_lacks(pytester, fake):
    """A BMC on a SPARC guest, BT on illumos (its driver knows KCS only), an IOP where there is no
    I2O driver: skips naming the reason, and nothing boots."""
    pytester.makepyfile(test_e="""
        import pytest

        @pytest.mark.vhw(description={"bmc": {"interfaces": ["kcs"]}}, guest="linux-sparc64")
        def test_sparc_bmc(vhw_machine):
            pass

        @pytest.mark.vhw(description={"bmc": {"interfaces": ["bt"]}}, guest="omnios")
        def test_illumos_bt(vhw_machine):
            pass

        @pytest.mark.vhw(description={"i2o": [{}]}, guest="freebsd-14-amd64")
        def test_freebsd_iop(vhw_machine):
            pass

        @pytest.mark.vhw(guest="omnios", access="agent")
        def test_illumos_agent(vhw_machine):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines_random([
        "*linux-sparc64 runs on sun4u, which has no IPMI devices*",
        "*omnios's IPMI driver knows kcs; this machine needs bt*",
        "*freebsd-14-amd64 has no I2O pass-through driver*",
        "*omnios has no vhw agent*"])
    assert fake.started == []


def test_a_downloaded_guest_that_cannot_be_fetched_is_skipped_with_the_reason(pytester, fake, monkeypatch,
                                                                               tmp_path):
    monkeypatch.setenv("VHW_CACHE_DIR", str(tmp_path / "cache"))
    # The module in sys.modules: pytester's runs drop modules they imported, so `vhw.guests.remote`
    # reached as an attribute of the package may be a stale copy.
    monkeypatch.setattr(importlib.import_module("vhw.guests.remote"), "reachable",
                        lambda url, timeout=5.0: (False, "no route to host"))
    pytester.makepyfile(test_e="""
        import pytest

        @pytest.mark.vhw(description={"bmc": {"interfaces": ["kcs"]}})
        def test_one(vhw_machine):
            pass

        @pytest.mark.vhw(description={"bmc": {"interfaces": ["kcs"]}})
        def test_two(vhw_machine):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--vhw-guest", "freebsd-14-amd64")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*skipped freebsd-14-amd64: download.freebsd.org is unreachable (no route to host)*"
                                 "--image PATH*"])
    assert fake.started == []


def test_a_downloaded_guest_boots_your_image_on_its_machine_over_its_console(pytester, fake, tmp_path):
    """--vhw-image: the developer's own build, on the recipe's machine type and memory, SeaBIOS, console access."""
    from vhw.guests.remote import REMOTE_GUESTS, DiskImage

    disk = tmp_path / "my-freebsd.raw"
    disk.write_bytes(b"\0" * 4096)
    images = []

    async def start_machine(desc, workdir, trace, image=None, snapshot=None):
        images.append(image)
        m = fake(desc, workdir, trace)
        fake.started.append(m)
        return m

    mp = pytest.MonkeyPatch()
    mp.setattr(pytest_plugin, "start_machine", start_machine)
    try:
        pytester.makepyfile(test_e="""
            import pytest

            @pytest.mark.vhw(description={"bmc": {"interfaces": ["kcs", "ssif"]}})
            def test_it(vhw_machine):
                assert vhw_machine.access == "console" and vhw_machine.os == "freebsd"
        """)
        # --opt=value: a separate value token would count as a path when pytest picks its rootdir.
        result = pytester.runpytest("-p", "no:cacheprovider", "--vhw-guest=freebsd-14-amd64",
                                    f"--vhw-image={disk}")
        result.assert_outcomes(passed=1)
    finally:
        mp.undo()
    recipe = REMOTE_GUESTS["freebsd-14-amd64"]
    (m,) = fake.started
    assert (m.desc.machine.type, m.desc.machine.memory, m.desc.machine.firmware, m.desc.machine.access) == (
        recipe.machine_type, recipe.memory, "seabios", "console")
    assert images == [DiskImage(recipe, disk.resolve(), own=True)]
    assert results(pytester, "test_it")["access"] == "console"


def test_toml_description_is_relative_to_the_test_file_and_disks_to_the_workdir(pytester, fake):
    sub = pytester.mkpydir("sub")
    (sub / "m.toml").write_text('[machine]\nname = "from-toml"\n[[i2o]]\n[[i2o.disk]]\nimage = "d0.img"\nsize = 1\n')
    (sub / "test_f.py").write_text(
        "import pytest\n"
        "@pytest.mark.vhw(description='m.toml')\n"
        "def test_toml(vhw_machine):\n"
        "    disk = vhw_machine.machine.desc.i2o[0].disks[0].image\n"
        "    assert disk == str(vhw_machine.workdir / 'd0.img'), disk\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    r = results(pytester, "test_toml")
    assert r["machine"] == "from-toml" and r["devices"] == ["i2o:0"]


def test_a_bad_description_is_an_error_naming_the_test(pytester, fake):
    pytester.makepyfile(test_g="""
        import pytest

        @pytest.mark.vhw(description={"bmc": {"interfaces": ["kcz"]}})
        def test_bad(vhw_machine):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*vhw marker on test_g.py::test_bad:*kcz*"])


def test_module_machine_boots_once_and_reports_each_test_separately(pytester, fake):
    pytester.makepyfile(test_h="""
        import pytest

        pytestmark = pytest.mark.vhw(description={"bmc": {}})

        def test_one(vhw_shared):
            vhw_shared.run("echo one")
            vhw_shared.faults.bmc.completion_code(0xC0, netfn=6, cmd=1)

        def test_two(vhw_shared):
            vhw_shared.run("echo two")
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert len(fake.started) == 1 and fake.started[0].stopped
    r = results(pytester)
    root = pytester.path / "build" / "vhw-results"
    one = (root / r["test_one"]["artifacts"]["console"]).read_bytes()
    two = (root / r["test_two"]["artifacts"]["console"]).read_bytes()
    assert b"echo one" in one and b"echo two" not in one
    assert b"echo two" in two and b"echo one" not in two


def test_results_can_be_turned_off(pytester, fake):
    pytester.makepyfile(test_i="""
        import pytest

        @pytest.mark.vhw(description={"bmc": {}})
        def test_quiet(vhw_machine):
            pass
    """)
    pytester.runpytest("-p", "no:cacheprovider", "--vhw-results=").assert_outcomes(passed=1)
    assert not (pytester.path / "build").exists()


def test_the_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.vhw(description=None, guest=None, access=None, needs=(), "
                                 "allow_oops=False)*"])


def test_the_device_faces_run_each_call_in_the_loop_thread_and_bridge_tasks():
    """vhw.testing.facade: a test thread's call runs where the devices live (the loop's
    thread); a fault that starts a task (disconnect) hands back a future the test can wait on."""
    loop = facade.LoopThread("devices")
    try:
        seen = []

        class Service:
            servers = {"kcs": object()}

            def now(self):
                return 0.0

            def fault_disconnect(self, names, seconds):
                seen.append(("disconnect", threading.current_thread().name, names, seconds))

                async def later():
                    await asyncio.sleep(0.01)
                    return "listening again"

                return asyncio.get_running_loop().create_task(later())

            def request(self, netfn, cmd, data=b""):
                seen.append(("request", threading.current_thread().name, netfn, cmd, data))
                return "response"

        injector = FaultInjector()
        service = Service()
        injector.bmc.bind(service)
        faults = facade.FaultsFacade(injector, loop)
        done = faults.bmc.disconnect(0.5)
        assert done.result(5) == "listening again"
        assert seen == [("disconnect", "devices", ["kcs"], 0.5)]
        assert faults.fired("bmc.disconnect")[0]["interfaces"] == ["kcs"]
        rule = faults.bmc.completion_code(0xC0, netfn=6, cmd=1, count="always")
        assert loop.run(lambda: injector.bmc.armed)
        rule.cancel()
        assert not loop.run(lambda: injector.bmc.armed)
        assert facade.BmcFacade(service, loop).request(6, 1) == "response"
        assert seen[-1] == ("request", "devices", 6, 1, b"")
    finally:
        loop.close()


def test_a_test_is_skipped_with_the_reason_where_the_guest_lacks_what_it_needs(pytester, fake):
    """needs=[...]: known before boot (agent, os:NAME) skips without booting; a command or a path
    is probed in the running guest.  A test's own marker adds needs to its module's machine."""
    pytester.makepyfile(test_n="""
        import pytest

        pytestmark = pytest.mark.vhw(description={"machine": {"name": "mod"}, "bmc": {}})

        @pytest.mark.vhw(needs=["os:freebsd"])
        def test_bsd_only(vhw_machine):
            pass

        @pytest.mark.vhw(needs="agent")
        def test_agent_only(vhw_machine):
            pass

        @pytest.mark.vhw(needs=["ipmitool", "/dev/ipmi0"])
        def test_tools(vhw_machine):
            pass

        @pytest.mark.vhw(needs=["echo"])
        def test_met(vhw_machine):
            assert vhw_machine.machine.desc.machine.name == "mod"
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--vhw-access", "console")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines_random([
        "*test_bsd_only needs a freebsd guest; linux-x86 is linux*",
        "*test_agent_only needs the vhw agent; linux-x86 is reached over its console here*",
        "*test_tools needs the ipmitool command; linux-x86 has none*"])
    # Two booted: the probed one and the met one; the static skips never booted.
    assert len(fake.started) == 2 and all(m.stopped for m in fake.started)
