"""`vhw report`: one Markdown or HTML page from a run's results (vhw.report)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import VhwError

USAGE = """examples:
  vhw report                              # build/ (junit.xml, vhw-results/, openprom-report-*.json) as Markdown
  vhw report build -o build/report.html   # the same as one self-contained HTML page
  vhw report build/junit.xml build/vhw-results --format md -o report.md
  vhw report build/vhw-results --compare build/vhw-results-console   # exit 1 where the two runs differ
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("report", help="turn a run's results into one Markdown/HTML page",
                       description="Read JUnit XML, the pytest plugin's results JSON and OpenPROM conformance "
                                   "reports and write one page: totals, failures first, tests by guest and "
                                   "device, conformance cases, findings with their evidence.",
                       epilog=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", default=["build"],
                   help="files or directories to read (default: build)")
    p.add_argument("--format", "-f", choices=("md", "html"), help="output format (default: from -o's suffix, else md)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--compare", metavar="PATH", action="append",
                   help="instead of a page: compare with another run of the same tests (files or directories "
                        "as PATH above) and exit 1 if any test or conformance case came out differently")


def output_format(args) -> str:
    if args.format:
        return args.format
    if args.output and Path(args.output).suffix.lower() in (".html", ".htm"):
        return "html"
    return "md"


def main(args) -> int:
    from ..report import input_files, load, render_html, render_markdown

    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise VhwError(f"report: no such file or directory: {', '.join(missing)}")
    if not input_files(paths):
        raise VhwError(f"report: nothing to read in {', '.join(map(str, paths))} (expected JUnit *.xml, "
                       "vhw-results/*.json or openprom-report-*.json; run `make test` first)")
    report = load(paths)
    print(f"[vhw] report: read {len(report.sources)} files, {len(report.tests)} tests", file=sys.stderr)
    if args.compare:
        from ..report import differences

        other_paths = [Path(p) for p in args.compare]
        if not input_files(other_paths):
            raise VhwError(f"report --compare: nothing to read in {', '.join(map(str, other_paths))}")
        other = load(other_paths)
        names = (", ".join(map(str, paths)), ", ".join(map(str, other_paths)))
        diff = differences(report, other, names=names)
        for line in diff:
            print(line)
        print(f"[vhw] report: {len(report.tests)} tests compared; "
              + (f"{len(diff)} differences" if diff else "the same outcomes"), file=sys.stderr)
        return 1 if diff else 0
    page = render_html(report) if output_format(args) == "html" else render_markdown(report)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(page)
        tmp.replace(out)
        print(f"[vhw] report: wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(page)
    return 0
