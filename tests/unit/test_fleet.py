"""`vhw fleet`: many LAN BMCs in one process, driven over real UDP by the spec console of test_rmcpplus."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from ipmi.helpers import Console  # the RMCP+ console written from the spec

from vhw.cli import build_parser
from vhw.errors import VhwError
from vhw.fleet import Fleet, parse_user


class UdpPeer:
    """What Console calls ``rp``: one datagram out, the answer (if any) back, over a real socket."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.5)

    def handle(self, packet, peer, now):
        self.sock.sendto(packet, self.address)
        try:
            return [self.sock.recv(4096)]
        except TimeoutError:
            return []

    def close(self):
        self.sock.close()


class FleetThread:
    """A Fleet in its own event loop on a background thread, as `vhw fleet` runs it."""

    def __init__(self, count, **kw):
        self.loop = asyncio.new_event_loop()
        self.fleet = Fleet(count, **kw)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.fleet.start())

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self):
        self.call(self.fleet.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def fleet3():
    f = FleetThread(3, user="admin", password="secret", base_port=0)
    peers = []

    def console(i, **kw):
        peer = UdpPeer(f.fleet.members[i].address)
        peers.append(peer)
        c = Console(peer, 3, name=kw.pop("name", b"admin"), password=kw.pop("password", b"secret"), **kw)
        return c

    yield f, console
    for p in peers:
        p.close()
    f.close()


def test_each_member_answers_get_device_id_over_rmcpplus(fleet3):
    f, console = fleet3
    ports = {m.address[1] for m in f.fleet.members}
    assert len(ports) == 3 and 0 not in ports
    guids = set()
    for i in range(3):
        c = console(i)
        assert c.open_status == 0
        assert c.login() == ("ok", 0)
        cc, data = c.send(0x06, 0x01)  # Get Device ID
        assert cc == 0 and data[0] == 0x20
        cc, guid = c.send(0x06, 0x37)  # Get System GUID: the machine name fleet-<i> seeds it
        assert cc == 0
        guids.add(guid)
    assert len(guids) == 3


def test_members_have_independent_state_and_power_is_believable(fleet3):
    f, console = fleet3
    a, b = console(0), console(1)
    assert a.login() == ("ok", 0) and b.login() == ("ok", 0)
    assert a.send(0x06, 0x3B, b"\x04") == (0, b"\x04")  # ADMINISTRATOR for chassis control
    assert a.send(0x00, 0x01)[1][0] & 1 == 1  # Get Chassis Status: on at start
    assert a.send(0x00, 0x02, b"\x00")[0] == 0  # Chassis Control: power down
    deadline = time.monotonic() + 5
    while a.send(0x00, 0x01)[1][0] & 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert a.send(0x00, 0x01)[1][0] & 1 == 0
    assert b.send(0x00, 0x01)[1][0] & 1 == 1  # the neighbour is untouched
    # Set User Name for user 3 on one BMC only.
    assert a.send(0x06, 0x45, b"\x03" + b"alice".ljust(16, b"\0"))[0] == 0
    assert a.send(0x06, 0x46, b"\x03") == (0, b"alice".ljust(16, b"\0"))
    assert b.send(0x06, 0x46, b"\x03") != (0, b"alice".ljust(16, b"\0"))
    assert a.send(0x00, 0x02, b"\x01")[0] == 0  # power up again
    deadline = time.monotonic() + 5
    while not a.send(0x00, 0x01)[1][0] & 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert a.send(0x00, 0x01)[1][0] & 1 == 1


def test_wrong_password_and_unknown_user_refused(fleet3):
    f, console = fleet3
    assert console(2, password=b"wrong").login() == ("rakp4", 0x0F)
    assert console(2, name=b"root", password=b"secret").login() == ("rakp2", 0x0D)
    assert f.fleet.members[2].lan.sessions.count() == 0
    assert console(1).login() == ("ok", 0)  # the others do not care


def test_state_dir_one_file_per_member_and_it_persists(tmp_path):
    f = FleetThread(2, user="admin", password="secret", base_port=0, state_dir=tmp_path)
    try:
        peer = UdpPeer(f.fleet.members[1].address)
        c = Console(peer, 3, name=b"admin", password=b"secret")
        assert c.login() == ("ok", 0)
        assert c.send(0x06, 0x3B, b"\x04")[0] == 0
        assert c.send(0x06, 0x45, b"\x03" + b"bob".ljust(16, b"\0"))[0] == 0
        peer.close()
    finally:
        f.close()
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["fleet-0.db", "fleet-1.db"]
    f = FleetThread(2, user="admin", password="secret", base_port=0, state_dir=tmp_path)
    try:
        users = [m.bmc.parts["users"] for m in f.fleet.members]
        assert users[1].find_by_name("bob") == 3
        assert users[0].find_by_name("bob") is None
    finally:
        f.close()


def test_fixed_base_port_and_busy_port_reported():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        busy = s.getsockname()[1]
        with pytest.raises(VhwError, match=f"fleet-0: cannot listen.*{busy}"):
            FleetThread(2, user="admin", password="x", base_port=busy)


def test_cli_and_user_parsing():
    args = build_parser().parse_args(["fleet", "--count", "5", "--base-port", "9623", "--user", "admin:pa:ss"])
    assert (args.count, args.base_port, args.address) == (5, 9623, "127.0.0.1")
    assert parse_user(args.user) == ("admin", "pa:ss")
    with pytest.raises(VhwError):
        parse_user("nopassword")
    with pytest.raises(VhwError):
        Fleet(0, user="a", password="b")
