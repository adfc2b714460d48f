"""End-to-end fixtures: the guest image (built once per run) and machines.

Tests drive asyncio themselves (``asyncio.run`` in the test).  Machines keep
their work directory under the test's tmp_path, so a failing test's report
carries the guest console log, QEMU's stderr and its command line.
"""

from pathlib import Path

import pytest

from vhw.guests.images import ensure_image
from vhw.machine.launcher import Machine


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def linux_image():
    """The linux-x86 image of the current recipe (built under a lock if missing)."""
    return ensure_image("linux-x86")


@pytest.fixture
def make_machine(request, tmp_path, linux_image):
    """Factory: ``make_machine(desc, **kw)`` -> an unstarted Machine."""
    counter = iter(range(1000))
    dirs = request.node.vhw_machine_dirs = []

    def make(desc, **kw):
        workdir = tmp_path / f"machine{next(counter)}"
        dirs.append(workdir)
        kw.setdefault("image", linux_image)
        return Machine(desc, workdir=workdir, **kw)

    return make
