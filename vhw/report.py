"""One page for a test run: per guest, per device, per conformance case, findings with evidence.

Reads what a run leaves behind (sans-I/O apart from :func:`load`):

- JUnit XML (``pytest --junitxml``, ``make test`` writes ``build/junit.xml``):
  every test, vhw or not, with its outcome, time and failure message;
- the pytest plugin's results JSON (``build/vhw-results/*.json``, schema in
  vhw.testing.pytest_plugin): guest, machine, devices, conformance cases, findings,
  faults injected and artifact paths of each test that booted a machine;
- OpenPROM conformance reports (``build/openprom-report-*.json``, written by
  vhw.prom.conform): each checked call and each named finding.

A results JSON and a JUnit test case for the same test merge into one row.
Unreadable inputs become findings on the page, never a crash.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

SEVERITIES = ("error", "warning", "info")
OUTCOME_ORDER = {"failed": 0, "error": 0, "passed": 1, "skipped": 2}


@dataclass
class Case:
    name: str
    outcome: str  # pass, fail, skip
    detail: str = ""


@dataclass
class Finding:
    severity: str
    summary: str
    evidence: str = ""
    test: str = ""


@dataclass
class TestRow:
    test: str
    outcome: str = "passed"
    duration: float = 0.0
    guest: str = "host"
    machine: str = ""
    devices: list[str] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass
class PromReport:
    name: str
    machine: str
    os: str
    firmware: str
    passed: bool
    summary: dict
    checks: list[Case]
    findings: list[Finding]


@dataclass
class Report:
    tests: list[TestRow] = field(default_factory=list)
    proms: list[PromReport] = field(default_factory=list)
    #: Problems with the inputs themselves (unreadable files).
    input_findings: list[Finding] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        out = {"passed": 0, "failed": 0, "skipped": 0}
        for t in self.tests:
            kind = "failed" if t.outcome in ("failed", "error") else t.outcome
            out[kind] = out.get(kind, 0) + 1
        return out

    def duration(self) -> float:
        return sum(t.duration for t in self.tests)

    def guests(self) -> dict[str, list[TestRow]]:
        by: dict[str, list[TestRow]] = {}
        for t in self.ordered():
            by.setdefault(t.guest, []).append(t)
        return dict(sorted(by.items(), key=lambda kv: (kv[0] == "host", kv[0])))

    def devices(self) -> dict[str, list[TestRow]]:
        by: dict[str, list[TestRow]] = {}
        for t in self.ordered():
            for d in t.devices:
                by.setdefault(d, []).append(t)
        return dict(sorted(by.items()))

    def ordered(self) -> list[TestRow]:
        """Failures first, then passes, then skips; by name within each."""
        return sorted(self.tests, key=lambda t: (OUTCOME_ORDER.get(t.outcome, 3), t.test))

    def findings(self) -> list[Finding]:
        found = list(self.input_findings)
        for t in self.ordered():
            found += t.findings
        for p in self.proms:
            found += p.findings
        return sorted(found, key=lambda f: SEVERITIES.index(f.severity) if f.severity in SEVERITIES else 3)


# -- reading ---------------------------------------------------------------------


def parse_conformance_output(text: str) -> list[Case]:
    """``PASS name`` / ``FAIL name: why`` / ``SKIP name: why`` lines and
    ipmi_conform's JSON lines (``{"case", "ok", "detail"}``) as cases."""
    cases = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "case" in row:
                cases.append(Case(str(row["case"]), "pass" if row.get("ok") else "fail", str(row.get("detail", ""))))
            continue
        m = re.match(r"(PASS|FAIL|SKIP)\s+([^\s:]+):?\s*(.*)$", line)
        if m:
            cases.append(Case(m.group(2), m.group(1).lower(), m.group(3)))
    return cases


def parse_conformance_findings(text: str) -> list[Finding]:
    """ipmi_conform's JSON lines that carry a ``finding`` (a documented deviation of
    the OS's driver from the seed) as warnings."""
    findings = []
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("{") and '"finding"' in line):
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("finding") and "case" in row:
            findings.append(Finding("warning", f"{row['case']}: {row['finding']}", str(row.get("detail", ""))))
    return findings


def _key(test: str) -> tuple[str, str]:
    """A test's identity shared by a pytest node id and a JUnit case: (module[.Class], name)."""
    if "::" in test:
        path, *rest = test.split("::")
        module = Path(path).stem if path.endswith(".py") else path
        return ".".join([module, *rest[:-1]]), rest[-1]
    return "", test


def read_junit(text: str, source: str) -> list[TestRow]:
    root = ET.fromstring(text)
    rows = []
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        parts = classname.split(".")
        # pytest's classname is the dotted path, then any class: keep module[.Class].
        module = next((i for i in range(len(parts) - 1, -1, -1) if parts[i].startswith("test")), len(parts) - 1)
        row = TestRow(test=f"{'.'.join(parts[module:])}::{name}" if classname else name,
                      duration=float(case.get("time", 0) or 0))
        for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            el = case.find(tag)
            if el is not None:
                row.outcome = outcome
                row.message = (el.get("message", "") + "\n" + (el.text or "")).strip()
                break
        rows.append(row)
    return rows


def read_results(data: dict, source: str) -> TestRow:
    if not isinstance(data, dict) or "test" not in data:
        raise ValueError("not a vhw results file (no \"test\" key)")
    row = TestRow(
        test=str(data["test"]),
        outcome=str(data.get("outcome", "passed")),
        duration=float(data.get("duration") or 0.0),
        guest=str(data.get("guest") or "host"),
        machine=str(data.get("machine") or ""),
        devices=[str(d) for d in data.get("devices") or []],
        cases=[Case(str(c.get("name", "?")), str(c.get("outcome", "pass")), str(c.get("detail", "")))
               for c in data.get("cases") or [] if isinstance(c, dict)],
        faults=[f for f in data.get("faults") or [] if isinstance(f, dict)],
        artifacts={str(k): str(v) for k, v in (data.get("artifacts") or {}).items()},
    )
    base = Path(source).parent
    row.artifacts = {k: str(base / v) if not Path(v).is_absolute() else v for k, v in row.artifacts.items()}
    row.findings = [Finding(str(f.get("severity", "info")), str(f.get("summary", "")), str(f.get("evidence", "")),
                            row.test) for f in data.get("findings") or [] if isinstance(f, dict)]
    for f in row.findings:
        if f.summary == "test failed" and not row.message:
            row.message = f.evidence
    return row


def read_prom_report(data: dict, source: str) -> PromReport:
    if not isinstance(data, dict) or "checks" not in data:
        raise ValueError("not an OpenPROM conformance report (no \"checks\" key)")
    name = Path(source).stem.removeprefix("openprom-report-")
    checks = []
    for c in data.get("checks") or []:
        verdict = str(c.get("verdict", ""))
        outcome = {"conforms": "pass", "finding": "pass", "differs": "fail"}.get(verdict, "skip")
        detail = f"{c.get('ioctl', '')} {verdict}".strip()
        if verdict == "differs":
            detail += f": expected {json.dumps(c.get('expected'))}, observed {json.dumps(c.get('observed'))}"
        checks.append(Case(f"{c.get('seq', '')} {c.get('check', '?')}".strip(), outcome, detail))
    findings = []
    for f in data.get("findings") or []:
        evidence = "\n".join(f"{k}: {f[k]}" for k in ("operation", "seed_behaviour", "observed_behaviour", "evidence")
                             if f.get(k))
        findings.append(Finding("info", f"{name}: {f.get('name', '?')} (by {f.get('by', '?')})", evidence,
                                f"openprom {name}"))
    for p in data.get("problems") or []:
        findings.append(Finding("error", f"{name}: {p if isinstance(p, str) else json.dumps(p)}", "",
                                f"openprom {name}"))
    return PromReport(name, str(data.get("machine", "")), str(data.get("os", "")), str(data.get("firmware", "")),
                      bool(data.get("passed")), dict(data.get("summary") or {}), checks, findings)


def input_files(paths: list[Path]) -> list[Path]:
    """The report inputs under each path (a directory is searched one level deep)."""
    found = []
    for p in paths:
        if p.is_dir():
            found += sorted(p.glob("*.xml"))
            found += sorted(p.glob("openprom-report-*.json"))
            found += sorted(p.glob("vhw-results/*.json"))
            found += sorted(q for q in p.glob("*.json") if not q.name.startswith(("openprom-report-", "prom-")))
        elif p.is_file():
            found.append(p)
    seen, out = set(), []
    for f in found:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            out.append(f)
    return out


def load(paths: list[Path]) -> Report:
    """Read every input; merge each test's JUnit case with its results JSON."""
    report = Report()
    junit: list[TestRow] = []
    results: list[TestRow] = []
    for f in input_files(paths):
        try:
            text = f.read_text()
            if f.suffix == ".xml":
                junit += read_junit(text, str(f))
            elif f.name.startswith("openprom-report-"):
                report.proms.append(read_prom_report(json.loads(text), str(f)))
            else:
                results.append(read_results(json.loads(text), str(f)))
            report.sources.append(str(f))
        except (OSError, ValueError, ET.ParseError, TypeError, AttributeError) as e:
            report.input_findings.append(Finding("warning", f"could not read {f}", f"{type(e).__name__}: {e}",
                                                 "inputs"))
    by_key = {_key(r.test): r for r in results}
    for row in junit:
        rich = by_key.pop(_key(row.test), None)
        if rich is None:
            report.tests.append(row)
            continue
        rich.duration = max(rich.duration, row.duration)
        if row.outcome in ("failed", "error"):
            rich.outcome, rich.message = "failed", row.message or rich.message
        report.tests.append(rich)
    report.tests += by_key.values()
    return report


# -- writing ---------------------------------------------------------------------


def differences(a: Report, b: Report, *, names: tuple[str, str] = ("A", "B")) -> list[str]:
    """Where two runs of the same tests disagree: a test's outcome, or one of its conformance cases'.

    The same driver tests over the agent and over the console must come out
    alike; this says, one line each, where they do not."""
    left = {row.test: row for row in a.tests}
    right = {row.test: row for row in b.tests}
    out = []
    for test in sorted(set(left) | set(right)):
        if test not in right or test not in left:
            out.append(f"{test}: only in {names[0] if test in left else names[1]}")
            continue
        x, y = left[test], right[test]
        if x.outcome != y.outcome:
            out.append(f"{test}: {x.outcome} in {names[0]}, {y.outcome} in {names[1]}")
        xc, yc = {c.name: c.outcome for c in x.cases}, {c.name: c.outcome for c in y.cases}
        for case in sorted(set(xc) | set(yc)):
            if xc.get(case) != yc.get(case):
                out.append(f"{test} case {case}: {xc.get(case, 'absent')} in {names[0]}, "
                           f"{yc.get(case, 'absent')} in {names[1]}")
    return out


def _cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text.rstrip()}\n{ticks}"


def _mark(outcome: str) -> str:
    return {"failed": "FAIL", "error": "ERROR", "passed": "pass", "skipped": "skip",
            "pass": "pass", "fail": "FAIL", "skip": "skip"}.get(outcome, outcome)


def _header(report: Report) -> str:
    t = report.totals()
    return (f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped "
            f"in {len(report.tests)} tests; {report.duration():.1f} s of test time")


def render_markdown(report: Report) -> str:
    out = ["# vhw test report", "", _header(report), ""]
    failing = [t for t in report.ordered() if t.outcome in ("failed", "error")]
    if failing:
        out += ["## Failures", ""]
        for t in failing:
            out += [f"### {t.test}", "", f"guest {t.guest}" + (f", devices {', '.join(t.devices)}" if t.devices else ""),
                    ""]
            if t.message:
                out += [_fence(t.message[-3000:]), ""]
            if t.artifacts:
                out += ["artifacts: " + ", ".join(f"[{k}]({v})" for k, v in sorted(t.artifacts.items())), ""]
    out += ["## Tests by guest", ""]
    for guest, rows in report.guests().items():
        out += [f"### {guest}", "", "| test | outcome | s | devices | cases | faults |", "|---|---|---:|---|---|---|"]
        for t in rows:
            cases = f"{sum(c.outcome == 'pass' for c in t.cases)}/{len(t.cases)}" if t.cases else ""
            faults = ", ".join(sorted({str(f.get("fault", "?")) for f in t.faults}))
            out.append(f"| {_cell(t.test)} | {_mark(t.outcome)} | {t.duration:.1f} | {_cell(', '.join(t.devices))} "
                       f"| {cases} | {_cell(faults)} |")
        out.append("")
    devices = report.devices()
    if devices:
        out += ["## By device", "", "| device | tests | failed |", "|---|---:|---:|"]
        for dev, rows in devices.items():
            out.append(f"| {_cell(dev)} | {len(rows)} | {sum(t.outcome in ('failed', 'error') for t in rows)} |")
        out.append("")
    with_cases = [t for t in report.ordered() if t.cases]
    if with_cases or report.proms:
        out += ["## Conformance cases", ""]
        for t in with_cases:
            out += [f"### {t.test}", "", "| case | outcome | detail |", "|---|---|---|"]
            out += [f"| {_cell(c.name)} | {_mark(c.outcome)} | {_cell(c.detail)} |" for c in t.cases]
            out.append("")
        for p in report.proms:
            s = ", ".join(f"{k} {v}" for k, v in p.summary.items())
            out += [f"### OpenPROM {p.name} ({p.machine}, {p.os}, {p.firmware}): "
                    f"{'passed' if p.passed else 'FAILED'}", "", s, ""]
            bad = [c for c in p.checks if c.outcome == "fail"]
            if bad:
                out += ["| check | detail |", "|---|---|"] + [f"| {_cell(c.name)} | {_cell(c.detail)} |" for c in bad]
                out.append("")
    findings = report.findings()
    if findings:
        out += ["## Findings", ""]
        for sev in SEVERITIES:
            group = [f for f in findings if f.severity == sev]
            if not group:
                continue
            out += [f"### {sev} ({len(group)})", ""]
            for f in group:
                out.append(f"- **{_cell(f.summary)}**" + (f" — {_cell(f.test)}" if f.test else ""))
                if f.evidence:
                    out += ["", _fence(f.evidence[-3000:]), ""]
            out.append("")
    out += ["---", "Inputs: " + (", ".join(report.sources) or "none"), ""]
    return "\n".join(out)


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
.FAIL,.ERROR{background:#fdd;font-weight:bold}.pass{color:#060}.skip{color:#777}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:30em}summary{cursor:pointer}
.error{color:#b00}.warning{color:#a60}.info{color:#036}"""


def render_html(report: Report) -> str:
    e = html.escape
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8"><title>vhw test report</title>',
           f"<style>{_CSS}</style></head><body>", "<h1>vhw test report</h1>", f"<p>{e(_header(report))}</p>"]
    failing = [t for t in report.ordered() if t.outcome in ("failed", "error")]
    if failing:
        out.append("<h2>Failures</h2>")
        for t in failing:
            out.append(f"<h3>{e(t.test)}</h3><p>guest {e(t.guest)}"
                       + (f", devices {e(', '.join(t.devices))}" if t.devices else "") + "</p>")
            if t.message:
                out.append(f"<pre>{e(t.message[-3000:])}</pre>")
            if t.artifacts:
                out.append("<p>artifacts: " + ", ".join(f'<a href="{e(v)}">{e(k)}</a>'
                                                        for k, v in sorted(t.artifacts.items())) + "</p>")
    out.append("<h2>Tests by guest</h2>")
    for guest, rows in report.guests().items():
        out.append(f"<h3>{e(guest)}</h3><table><tr><th>test</th><th>outcome</th><th>s</th><th>devices</th>"
                   "<th>cases</th><th>faults</th></tr>")
        for t in rows:
            cases = f"{sum(c.outcome == 'pass' for c in t.cases)}/{len(t.cases)}" if t.cases else ""
            faults = ", ".join(sorted({str(f.get("fault", "?")) for f in t.faults}))
            mark = _mark(t.outcome)
            out.append(f"<tr><td>{e(t.test)}</td><td class=\"{mark}\">{mark}</td><td>{t.duration:.1f}</td>"
                       f"<td>{e(', '.join(t.devices))}</td><td>{cases}</td><td>{e(faults)}</td></tr>")
        out.append("</table>")
    devices = report.devices()
    if devices:
        out.append("<h2>By device</h2><table><tr><th>device</th><th>tests</th><th>failed</th></tr>")
        for dev, rows in devices.items():
            out.append(f"<tr><td>{e(dev)}</td><td>{len(rows)}</td>"
                       f"<td>{sum(t.outcome in ('failed', 'error') for t in rows)}</td></tr>")
        out.append("</table>")
    with_cases = [t for t in report.ordered() if t.cases]
    if with_cases or report.proms:
        out.append("<h2>Conformance cases</h2>")
        for t in with_cases:
            out.append(f"<details{' open' if any(c.outcome == 'fail' for c in t.cases) else ''}>"
                       f"<summary>{e(t.test)}: {sum(c.outcome == 'pass' for c in t.cases)}/{len(t.cases)} pass"
                       "</summary><table><tr><th>case</th><th>outcome</th><th>detail</th></tr>")
            for c in t.cases:
                mark = _mark(c.outcome)
                out.append(f"<tr><td>{e(c.name)}</td><td class=\"{mark}\">{mark}</td><td>{e(c.detail)}</td></tr>")
            out.append("</table></details>")
        for p in report.proms:
            out.append(f"<details{'' if p.passed else ' open'}><summary>OpenPROM {e(p.name)} ({e(p.machine)}, "
                       f"{e(p.os)}, {e(p.firmware)}): {'passed' if p.passed else 'FAILED'} — "
                       f"{e(', '.join(f'{k} {v}' for k, v in p.summary.items()))}</summary><table>"
                       "<tr><th>check</th><th>outcome</th><th>detail</th></tr>")
            for c in p.checks:
                mark = _mark(c.outcome)
                out.append(f"<tr><td>{e(c.name)}</td><td class=\"{mark}\">{mark}</td><td>{e(c.detail)}</td></tr>")
            out.append("</table></details>")
    findings = report.findings()
    if findings:
        out.append("<h2>Findings</h2>")
        for sev in SEVERITIES:
            group = [f for f in findings if f.severity == sev]
            if not group:
                continue
            out.append(f"<h3 class=\"{sev}\">{sev} ({len(group)})</h3>")
            for f in group:
                head = f"<b>{e(f.summary)}</b>" + (f" — {e(f.test)}" if f.test else "")
                if f.evidence:
                    out.append(f"<details><summary>{head}</summary><pre>{e(f.evidence[-3000:])}</pre></details>")
                else:
                    out.append(f"<p>{head}</p>")
    out.append(f"<hr><p>Inputs: {e(', '.join(report.sources) or 'none')}</p></body></html>")
    return "\n".join(out) + "\n"
