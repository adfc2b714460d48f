"""Repository layout rules that pytest's default import mode depends on."""

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_test_module_basenames_are_unique_across_suites():
    # pytest's default "prepend" import mode imports a test file without an
    # __init__.py by its basename, so two test_x.py in tests/ and
    # examples/driver-tests/ collected in one run ("make test") fail with
    # "import file mismatch".
    files = [
        p
        for top in ("tests", "examples")
        for p in (ROOT / top).rglob("test_*.py")
        if "__pycache__" not in p.parts
    ]
    counts = Counter(p.name for p in files)
    clashes = sorted(
        str(p.relative_to(ROOT)) for p in files if counts[p.name] > 1
    )
    assert files
    assert clashes == []


def _imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module or ""


def test_no_test_imports_another_test_module():
    """Shared test code lives in a package's helpers.py (ipmi.helpers, i2o.helpers), never in a test module."""
    files = sorted(p for top in ("tests", "examples") for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)
    bad = [f"{p.relative_to(ROOT)}: imports {name}" for p in files for name in _imported_modules(p)
           if name.split(".")[-1].startswith("test_")]
    assert len(files) > 80
    assert bad == []


#: Unit tests of top-level modules (vhw/<name>.py), which stay flat in tests/unit.
FLAT_OK = {"test_compiled.py", "test_control.py", "test_faults.py", "test_fleet.py", "test_layers.py", "test_layout.py",
           "test_report.py", "test_store.py", "test_tables.py", "test_trace.py"}


def test_unit_tests_mirror_the_package():
    """tests/unit/<pkg>[/<layer>] for each of vhw's packages, and only top-level modules tested flat."""
    packages = {p.name for p in (ROOT / "vhw").iterdir() if (p / "__init__.py").exists()}
    tested = {p.name for p in (ROOT / "tests/unit").iterdir() if (p / "__init__.py").exists()}
    assert tested <= packages, tested - packages
    assert tested == packages, f"vhw packages without a test package: {sorted(packages - tested)}"
    layers = {p.name for p in (ROOT / "vhw/ipmi").iterdir() if (p / "__init__.py").exists()}
    ipmi_tested = {p.name for p in (ROOT / "tests/unit/ipmi").iterdir() if (p / "__init__.py").exists()}
    assert layers == ipmi_tested == {"core", "parts", "commands", "wire", "io"}
    flat = {p.name for p in (ROOT / "tests/unit").glob("test_*.py")}
    assert flat == FLAT_OK
    for name in FLAT_OK - {"test_layers.py", "test_layout.py"}:
        assert (ROOT / "vhw" / name.removeprefix("test_")).exists(), name
