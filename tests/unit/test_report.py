"""vhw report (vhw.report, vhw.cli.report): inputs merged into one page."""

import argparse
import json
from html.parser import HTMLParser

import pytest

from vhw.errors import VhwError
from vhw.report import load, parse_conformance_findings, parse_conformance_output, render_html, render_markdown
from vhw.cli.report import add_parser, main

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
 <testcase classname="examples.driver-tests.test_ipmi_si" name="test_eagain" time="4.5"/>
 <testcase classname="examples.driver-tests.test_ipmi_si" name="test_disconnect" time="7.25">
  <failure message="AssertionError: rsp=0xd2 missing">assert 1 == 0 &lt;script&gt;</failure></testcase>
 <testcase classname="tests.unit.test_sel.TestSel" name="test_a|b" time="0.01"/>
 <testcase classname="tests.unit.test_x" name="test_skip" time="0"><skipped message="no tshark"/></testcase>
</testsuite></testsuites>
"""


def results(test, **kw):
    base = {"test": test, "outcome": "passed", "duration": 3.0, "guest": "linux-x86", "machine": "m",
            "devices": ["bmc:kcs"], "cases": [], "findings": [], "artifacts": {}, "faults": []}
    base.update(kw)
    return base


@pytest.fixture
def build(tmp_path):
    (tmp_path / "junit.xml").write_text(JUNIT)
    res = tmp_path / "vhw-results"
    res.mkdir()
    (res / "a.json").write_text(json.dumps(results(
        "examples/driver-tests/test_ipmi_si.py::test_eagain",
        cases=[{"name": "recv_eagain", "outcome": "pass", "detail": "EAGAIN x4"}],
        findings=[{"severity": "warning", "summary": "my_lun: Linux ignores LUN", "evidence": "seed 000 says..."}])))
    (res / "b.json").write_text(json.dumps(results(
        "examples/driver-tests/test_ipmi_si.py::test_disconnect", outcome="failed",
        faults=[{"fault": "bmc.disconnect", "seconds": 2}],
        artifacts={"console": "b/console.log", "pcap": "b/trace.pcapng"})))
    (res / "broken.json").write_text("{not json")
    (tmp_path / "openprom-report-sun4u.json").write_text(json.dumps({
        "machine": "sun4u", "os": "linux-6.1", "firmware": "openbios", "passed": False,
        "summary": {"conforms": 2, "differs": 1},
        "checks": [{"seq": 1, "check": "getoptnode", "ioctl": "OPIOCGETOPTNODE", "verdict": "conforms"},
                   {"seq": 2, "check": "getnext-bad", "ioctl": "OPIOCGETNEXT", "verdict": "differs",
                    "expected": {"errno": 22}, "observed": {"errno": 0}}],
        "findings": [{"by": "linux-6.1", "name": "bad-node-is-end-of-list", "evidence": "openprom.c"}],
        "problems": []}))
    return tmp_path


def test_junit_and_results_merge_into_one_row_per_test(build):
    report = load([build])
    names = [t.test for t in report.ordered()]
    # JUnit's 4 cases; the two with results JSON are the richer rows.
    assert len(report.tests) == 4
    assert names[0] == "examples/driver-tests/test_ipmi_si.py::test_disconnect"   # failures first
    assert names[-1] == "test_x::test_skip"                                         # skips last
    failed = report.ordered()[0]
    assert failed.outcome == "failed" and "rsp=0xd2 missing" in failed.message
    assert failed.duration == 7.25 and failed.artifacts["console"] == str(build / "vhw-results" / "b/console.log")
    assert report.totals() == {"passed": 2, "failed": 1, "skipped": 1}
    assert {t.guest for t in report.tests} == {"linux-x86", "host"}
    assert "test_sel.TestSel::test_a|b" in names


def test_bad_input_becomes_a_finding_not_a_crash(build):
    report = load([build])
    bad = [f for f in report.findings() if "broken.json" in f.summary]
    assert bad and bad[0].severity == "warning" and "JSONDecodeError" in bad[0].evidence


def test_openprom_checks_and_findings_are_read(build):
    (prom,) = load([build]).proms
    assert prom.name == "sun4u" and not prom.passed
    assert [(c.name, c.outcome) for c in prom.checks] == [("1 getoptnode", "pass"), ("2 getnext-bad", "fail")]
    assert 'expected {"errno": 22}, observed {"errno": 0}' in prom.checks[1].detail
    assert prom.findings[0].summary == "sun4u: bad-node-is-end-of-list (by linux-6.1)"


def test_markdown_escapes_table_cells_and_orders_sections(build):
    page = render_markdown(load([build]))
    assert "1 failed" in page and page.index("## Failures") < page.index("## Tests by guest")
    assert "test_a\\|b" in page                           # a | inside a cell is escaped
    assert "| bmc:kcs | 2 | 1 |" in page                  # by device: 2 tests, 1 failed
    assert "bmc.disconnect" in page and "[pcap](" in page
    assert page.index("### warning") < page.index("### info")


class Strict(HTMLParser):
    """Tracks open elements; a stray '<script>' from the input would open one."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_html_is_self_contained_and_escaped(build):
    page = render_html(load([build]))
    parser = Strict()
    parser.feed(page)
    assert "script" not in parser.tags and "&lt;script&gt;" in page
    assert "link" not in parser.tags and "<style>" in page
    assert "rsp=0xd2 missing" in page and "<details" in page


def parse(argv):
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="verb"))
    return p.parse_args(["report", *argv])


def test_cli_infers_html_from_the_suffix_and_writes_the_file(build, capsys):
    out = build / "out" / "report.html"
    assert main(parse([str(build), "-o", str(out)])) == 0
    assert out.read_text().startswith("<!doctype html>")
    assert "wrote" in capsys.readouterr().err
    assert main(parse([str(build), "--format", "md"])) == 0
    assert capsys.readouterr().out.startswith("# vhw test report")


def test_cli_without_inputs_is_a_clear_error(tmp_path):
    with pytest.raises(VhwError, match="nothing to read"):
        main(parse([str(tmp_path)]))
    with pytest.raises(VhwError, match="no such file"):
        main(parse([str(tmp_path / "nope")]))


def test_conformance_output_both_styles():
    cases = parse_conformance_output('PASS open\nFAIL msgtfr: ReqStatus 0xb\n{"case": "c1", "ok": false, '
                                     '"detail": "d"}\nnoise\nSKIP bench: no disk\n')
    assert [(c.name, c.outcome, c.detail) for c in cases] == [
        ("open", "pass", ""), ("msgtfr", "fail", "ReqStatus 0xb"), ("c1", "fail", "d"), ("bench", "skip", "no disk")]


def test_compare_says_where_two_runs_of_the_same_tests_differ(tmp_path, capsys):
    """The driver tests run over the agent and over the console must agree, test by test
    and conformance case by case; --compare prints each difference and exits 1."""
    def run(name, outcome, case_outcome, extra=()):
        d = tmp_path / name / "vhw-results"
        d.mkdir(parents=True)
        tests = [("t.py::test_a", "passed", [{"name": "recv_eagain", "outcome": "pass"}]),
                 ("t.py::test_b", outcome, [{"name": "my_lun", "outcome": case_outcome}]), *extra]
        for i, (test, out, cases) in enumerate(tests):
            (d / f"{i}.json").write_text(json.dumps(results(test, outcome=out, cases=cases)))
        return d

    agent = run("agent", "passed", "pass")
    same = run("same", "passed", "pass")
    assert main(parse([str(agent), "--compare", str(same)])) == 0
    assert capsys.readouterr().out == ""
    other = run("other", "failed", "fail", extra=[("t.py::test_c", "passed", [])])
    assert main(parse([str(agent), "--compare", str(other)])) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"t.py::test_b: passed in {agent}, failed in {other}",
                     f"t.py::test_b case my_lun: pass in {agent}, fail in {other}",
                     f"t.py::test_c: only in {other}"]


def test_conformance_output_gives_cases_and_findings():
    # ipmi_conform prints one JSON line per case; a "finding" is a documented
    # deviation of the OS's driver from seed 000, reported as a warning.
    text = "\n".join([
        '{"case": "my_lun", "ok": true, "detail": "LUN 2 kept", "finding": "Linux ignores SET_MY_LUN"}',
        '{"case": "send_command", "ok": false, "detail": "EIO"}',
        '{"finding": "no case: not a row"}',
        '{"case": "broken", "finding": ',
        "PASS numiops",
        "SKIP msgtfr: no device",
    ])
    cases = parse_conformance_output(text)
    assert [(c.name, c.outcome) for c in cases] == [("my_lun", "pass"), ("send_command", "fail"),
                                                   ("numiops", "pass"), ("msgtfr", "skip")]
    findings = parse_conformance_findings(text)
    assert [(f.severity, f.summary, f.evidence) for f in findings] == [
        ("warning", "my_lun: Linux ignores SET_MY_LUN", "LUN 2 kept")]
