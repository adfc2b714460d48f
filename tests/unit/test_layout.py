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


#: Test trees that take shared code from a helper module of a package
#: (tests/unit/ipmi/helpers.py), never from another test module.
NO_TEST_IMPORTS = ("tests/unit/ipmi", "tests/unit/test_faults.py", "tests/unit/test_fleet.py")


def test_ipmi_tests_import_no_test_module_by_basename():
    files = []
    for entry in NO_TEST_IMPORTS:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    bad = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [f"{path.relative_to(ROOT)}: imports {n}" for n in names if n.split(".")[-1].startswith("test_")]
    assert len(files) > 30
    assert bad == []


def test_ipmi_tests_mirror_the_package():
    """tests/unit/ipmi/<layer> for each of vhw/ipmi's layers, and no IPMI test left flat in tests/unit."""
    layers = {p.name for p in (ROOT / "vhw/ipmi").iterdir() if (p / "__init__.py").exists()}
    tested = {p.name for p in (ROOT / "tests/unit/ipmi").iterdir() if (p / "__init__.py").exists()}
    assert layers == tested == {"core", "parts", "commands", "wire", "io"}
    def imports_ipmi(path):
        return any(isinstance(n, ast.ImportFrom) and (n.module or "").startswith("vhw.ipmi")
                   for n in ast.walk(ast.parse(path.read_text())))

    flat = [p.name for p in sorted((ROOT / "tests/unit").glob("test_*.py")) if imports_ipmi(p)
            and p.name not in ("test_faults.py", "test_fleet.py", "test_trace.py", "test_control.py")]
    assert flat == []
