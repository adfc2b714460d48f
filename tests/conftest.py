"""Shared test plumbing: attach guest console logs to failing tests' reports."""

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for machine_dir in getattr(item, "vhw_machine_dirs", []):
            for name in ("console.log", "qemu.stderr", "qemu.argv"):
                f = machine_dir / name
                if f.is_file():
                    text = f.read_bytes()[-20000:].decode(errors="replace")
                    rep.sections.append((f"vhw {machine_dir.name}/{name}", text))
