"""End-to-end fixtures: the guest image (built once per run) and machines.

Tests drive asyncio themselves (``asyncio.run`` in the test).  Machines keep
their work directory under the test's tmp_path, so a failing test's report
carries the guest console log, QEMU's stderr and its command line.
"""

import asyncio
from pathlib import Path

import pytest

from vhw.guests.images import ensure_image
from vhw.machine.launcher import Machine
from vhw.trace import Trace


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
    """Factory: ``make_machine(desc, **kw)`` -> an unstarted Machine.

    The machine starts from a snapshot of its description where the devices
    allow (vhw.machine.snapshot); ``snapshot=False``, or a ``cold_boot``
    mark on the test, makes it boot for real (VHW_SNAPSHOT=0: every test)."""
    cold = request.node.get_closest_marker("cold_boot") is not None
    counter = iter(range(1000))
    dirs = request.node.vhw_machine_dirs = []

    def make(desc, **kw):
        workdir = tmp_path / f"machine{next(counter)}"
        dirs.append(workdir)
        kw.setdefault("image", linux_image)
        kw.setdefault("trace", Trace())  # in memory: tests wait on what the BMC saw
        if cold:
            kw.setdefault("snapshot", False)
        return Machine(desc, workdir=workdir, **kw)

    return make


#: The kernel's words for an answer that is not the BMC's answer to the request.
STALE = "BMC returned incorrect response"
#: Attempts per command on SSIF when the kernel saw a stale answer.
SSIF_ATTEMPTS = 3


async def stale_answers(m) -> int:
    """How often the guest kernel has logged a stale IPMI answer (dmesg)."""
    r = await m.run(f"dmesg | grep -c '{STALE}'", timeout=30)
    return int(r.stdout.split()[0]) if r.stdout.split() else 0


async def run_ipmi_command(m, interface: str, command: str, timeout: float = 60, retried=None):
    """``command`` in the guest; on SSIF again when the kernel logged a stale answer to it.

    QEMU 7.2's ``smbus-ipmi`` does not NAK a response read that comes before
    the BMC's answer: it hands the guest stale bytes, which Linux' msghandler
    turns into CC FFh with STALE in dmesg (ipmi-extern.md §10).  ipmi_ssif
    reads 5 ms after its write, so a loaded host can miss that window.  Where a
    NAK would have made ipmi_ssif retry, this retries, and only then.
    ``retried()`` is called for each retry.
    """
    if interface != "ssif":
        return await m.run(command, timeout=timeout)
    seen = await stale_answers(m)
    for _ in range(SSIF_ATTEMPTS):
        r = await m.run(command, timeout=timeout)
        now = await stale_answers(m)
        if now == seen:
            return r
        seen = now
        if retried is not None:
            retried()
    return r


@pytest.fixture(scope="session")
def run_ipmi():
    """``await run_ipmi(m, interface, command[, timeout])``: see run_ipmi_command."""
    return run_ipmi_command


@pytest.fixture(scope="session")
def kernel_stale_answers():
    """``await kernel_stale_answers(m)``: see stale_answers."""
    return stale_answers


@pytest.fixture
def guest_listening():
    """``await guest_listening(m, channel, since)``: until ipmi_conform's event receiver
    (``-e``) has enabled events and announced itself with one Get Device ID (NetFn App,
    cmd 01h) on ``channel`` after ``since`` (``m.trace.now()``), instead of sleeping for a guess."""
    async def wait(m, channel: str, since: float, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not m.trace.messages(channel, "in", 0x06, 0x01, since):
            if loop.time() > deadline:
                raise AssertionError(f"the guest's event receiver did not start within {timeout:g} s")
            await asyncio.sleep(0.05)

    return wait
