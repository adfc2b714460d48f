"""Real IPMI v1.5 LAN clients against the in-process BMC (IPMI 2.0 chapter 13, sections 22.13-22.20).

Each test runs its own BmcService + LanServer on 127.0.0.1 port 0 in a
background thread, so the tests are parallel-safe.
"""

import asyncio
import shutil
import subprocess
import threading

import pytest

from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.io.service import BmcService

pytestmark = pytest.mark.component

USERS = [
    {"id": 2, "name": "admin", "password": "password", "privilege": "administrator"},
    {"id": 3, "name": "oper", "password": "operpass", "privilege": "operator"},
]


class Bmc:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.service = BmcService(BmcConfig.from_dict({"users": USERS}))
            self.port = (await self.service.start_lan("127.0.0.1:0"))[1]
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.service.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def bmc():
    with Bmc() as b:
        yield b


def ipmitool(bmc, *args, user="admin", password="password", level="ADMINISTRATOR", auth=None):
    if shutil.which("ipmitool") is None:
        pytest.skip("ipmitool not installed")
    cmd = ["ipmitool", "-I", "lan", "-H", "127.0.0.1", "-p", str(bmc.port), "-U", user, "-P", password,
           "-L", level, "-R", "1", "-N", "2"]
    if auth:
        cmd += ["-A", auth]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)


def test_ipmitool_mc_info(bmc):
    r = ipmitool(bmc, "mc", "info")
    assert r.returncode == 0, r.stderr
    assert "IPMI Version              : 2.0" in r.stdout


@pytest.mark.parametrize("auth", ["MD5", "PASSWORD"])
def test_ipmitool_auth_types_chassis_status(bmc, auth):
    """Section 22.17.1: MD5 and straight password authentication."""
    r = ipmitool(bmc, "chassis", "status", auth=auth)
    assert r.returncode == 0, r.stderr
    assert "System Power" in r.stdout


def test_ipmitool_user_list_and_session_info(bmc):
    r = ipmitool(bmc, "user", "list", "1")
    assert r.returncode == 0 and "admin" in r.stdout and "oper" in r.stdout, r.stderr
    r = ipmitool(bmc, "session", "info", "active")
    assert r.returncode == 0, r.stderr
    assert "IPMIv1.5" in r.stdout and "ADMINISTRATOR" in r.stdout


def test_ipmitool_operator_refused_admin_command(bmc):
    """The one dispatcher: an OPERATOR session gets D4 on Set Channel Access (ADMINISTRATOR)."""
    r = ipmitool(bmc, "raw", "6", "0x40", "1", "0x42", "0x44", user="oper", password="operpass", level="OPERATOR")
    assert r.returncode != 0 and "rsp=0xd4" in r.stderr
    r = ipmitool(bmc, "chassis", "status", user="oper", password="operpass", level="OPERATOR")
    assert r.returncode == 0, r.stderr


def test_ipmitool_operator_cannot_log_in_as_admin(bmc):
    """Section 22.17: maximum privilege above the user's limit: Activate Session 86h."""
    r = ipmitool(bmc, "mc", "info", user="oper", password="operpass", level="ADMINISTRATOR")
    assert r.returncode != 0


def test_ipmitool_wrong_password_refused_fast(bmc):
    r = ipmitool(bmc, "mc", "info", password="wrong")
    assert r.returncode != 0
    assert bmc.service.bmc.parts["lan"].sessions.count() == 0


def test_freeipmi_bmc_info(bmc):
    if shutil.which("bmc-info") is None:
        pytest.skip("FreeIPMI not installed")
    r = subprocess.run(["bmc-info", "-h", f"127.0.0.1:{bmc.port}", "-u", "admin", "-p", "password",
                        "--driver-type=LAN"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "IPMI Version" in r.stdout


def test_python_ipmi_lan(bmc):
    pytest.importorskip("pyipmi")
    import pyipmi.interfaces

    if shutil.which("ipmitool") is None:
        pytest.skip("python-ipmi's ipmitool interface needs ipmitool")
    intf = pyipmi.interfaces.create_interface("ipmitool", interface_type="lan")
    ipmi = pyipmi.create_connection(intf)
    ipmi.session.set_session_type_rmcp("127.0.0.1", port=bmc.port)
    ipmi.session.set_auth_type_user("admin", "password")
    ipmi.target = pyipmi.Target(ipmb_address=0x20)
    ipmi.session.establish()
    try:
        assert ipmi.get_device_id().ipmi_version.major == 2
    finally:
        ipmi.session.close()
