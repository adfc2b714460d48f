"""Real RMCP+ clients (ipmitool lanplus, FreeIPMI LAN_2_0) against an in-process BMC on 127.0.0.1:0.

IPMI 2.0 sections 13.14-13.32 and 22.15, judged by the clients themselves.  ipmitool
asserts on suites 11 and 12 (ipmitool#196): those are judged by FreeIPMI only.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading

import pytest

from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.io.lan_server import LanServer
from vhw.ipmi.io.runner import BmcRunner
from vhw.ipmi.parts.sessions import lan_context

ALL = [0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17]
USERS = [{"id": 2, "name": "admin", "password": "password"},
         {"id": 3, "name": "oper", "password": "operpass", "privilege": "operator"}]


@pytest.fixture(scope="module")
def bmc_port():
    bmc = create_bmc(BmcConfig.from_dict({"users": USERS, "rmcpplus": {"cipher_suites": ALL}}, machine="c"))
    lan = lan_context(bmc)
    loop = asyncio.new_event_loop()
    server = LanServer(lan, BmcRunner(bmc))
    ready = threading.Event()
    holder = {}

    def run():
        asyncio.set_event_loop(loop)
        holder["addr"] = loop.run_until_complete(server.start("127.0.0.1:0"))
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    yield holder["addr"][1], lan
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def ipmitool(port, *args, user="admin", password="password", extra=()):
    return run(["ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", str(port), "-U", user, "-P", password,
                *extra, *args])


needs_ipmitool = pytest.mark.skipif(shutil.which("ipmitool") is None, reason="ipmitool not installed")
needs_freeipmi = pytest.mark.skipif(shutil.which("bmc-info") is None, reason="FreeIPMI not installed")


@needs_ipmitool
@pytest.mark.parametrize("suite", [0, 1, 2, 3, 6, 7, 8, 15, 16, 17])
def test_ipmitool_mc_info_per_suite(bmc_port, suite):
    """`ipmitool -I lanplus -C N mc info` for every suite ipmitool can do (13.17-13.29)."""
    port, _ = bmc_port
    r = ipmitool(port, "mc", "info", extra=("-C", str(suite)))
    assert r.returncode == 0 and "IPMI Version" in r.stdout, r.stderr


@needs_ipmitool
def test_ipmitool_without_c_asks_cipher_suites_sessionless(bmc_port):
    """22.15: ipmitool without -C asks Get Channel Cipher Suites before any session; it must be answered."""
    port, lan = bmc_port
    before = lan.stats.get("rmcpplus_sessionless_54", 0)
    r = ipmitool(port, "mc", "info")
    assert r.returncode == 0 and "IPMI Version" in r.stdout, r.stderr
    assert lan.stats.get("rmcpplus_sessionless_54", 0) > before


@needs_ipmitool
def test_ipmitool_wrong_password_refused(bmc_port):
    """13.23: RAKP 4 status 0Fh for a wrong password; the client gives up."""
    port, lan = bmc_port
    r = ipmitool(port, "mc", "info", password="wrong", extra=("-C", "3"))
    assert r.returncode != 0
    assert "IPMI Version" not in r.stdout


@needs_ipmitool
def test_ipmitool_operator_refused_admin_command(bmc_port):
    """Privilege enforced by the one dispatcher: an OPERATOR session gets D4 for Set Channel Access."""
    port, _ = bmc_port
    ok = ipmitool(port, "chassis", "status", user="oper", password="operpass", extra=("-C", "17", "-L", "OPERATOR"))
    assert ok.returncode == 0, ok.stderr
    r = ipmitool(port, "raw", "0x06", "0x40", "0x01", "0x82", "0x84", user="oper", password="operpass",
                 extra=("-C", "17", "-L", "OPERATOR"))
    assert r.returncode != 0 and "rsp=0xd4" in r.stderr


@needs_freeipmi
@pytest.mark.parametrize("suite", ALL)
def test_freeipmi_bmc_info_per_suite(bmc_port, suite):
    """FreeIPMI bmc-info over LAN_2_0 without workaround flags (-W): Open Session must answer the real
    privilege (table 13-17), and HMAC-MD5-128 / MD5-128 integrity must be right (13.28)."""
    port, _ = bmc_port
    r = run(["bmc-info", "-h", f"127.0.0.1:{port}", "-u", "admin", "-p", "password", "-l", "ADMIN",
             "-I", str(suite), "--driver-type=LAN_2_0"])
    assert r.returncode == 0 and "IPMI Version" in r.stdout, r.stderr
