"""Repository layout rules that pytest's default import mode depends on."""

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
