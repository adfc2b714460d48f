"""SOL wired to the LAN core: the sender, the exact session, the port, session close.

IPMI 2.0 section 24.1 (Activate Payload: the payload belongs to the activating
session and its answer names the UDP port), 15.9-15.10 (packets the BMC sends
on its own: serial data, retries, the "SOL deactivating" status), 22.19 and
the session timeout (a closed session takes its payload with it).
"""

from __future__ import annotations

import asyncio
import socket
import struct

from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context, Privilege
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.io.lan_server import LanServer
from vhw.ipmi.io.runner import BmcRunner
from vhw.ipmi.parts.sessions import lan_context
from vhw.ipmi.wire.sol_payload import ST_DEACTIVATING

APP = 0x06


def make():
    return create_bmc(BmcConfig.from_dict({"sol": {"port": "ttyS1"}}))


class FakeRmcpPlus:
    """Stands for rmcpplus.RmcpPlusSession: what Sol and the sender use of it."""

    def __init__(self, base):
        self.base = base

    @property
    def session_id(self):
        return self.base.id

    @property
    def peer(self):
        return self.base.peer


def v20_session(lan, peer=("127.0.0.1", 40000)):
    base = lan.sessions.allocate("v20", 2, Privilege.ADMINISTRATOR, peer, now=0.0)
    base.privilege = Privilege.ADMINISTRATOR
    base.attrs["rmcpplus"] = FakeRmcpPlus(base)
    return base


def ctx_of(base):
    return Context(channel=1, privilege=Privilege.ADMINISTRATOR, interface="lan", session_id=base.id, user_id=2)


def activate(bmc, base):
    return bmc.handle(APP, 0x48, bytes([1, 1, 0, 0, 0, 0]), ctx_of(base), 0.0)


def test_activation_finds_the_rmcpplus_session_exactly_and_the_context_has_the_handler():
    bmc = make()
    lan = lan_context(bmc)
    sol = bmc.parts["sol"]
    assert lan.sol_handler == sol.sol_handler
    other = v20_session(lan, ("127.0.0.1", 1))
    mine = v20_session(lan, ("127.0.0.1", 2))
    assert activate(bmc, mine).cc == 0
    assert sol.active.session is mine.attrs["rmcpplus"] and sol.active.session is not other.attrs["rmcpplus"]
    assert lan.rmcpplus_session(mine.id) is mine.attrs["rmcpplus"]


def test_close_session_and_timeout_end_the_payload():
    bmc = make()
    lan = lan_context(bmc)
    sol = bmc.parts["sol"]
    a, b = v20_session(lan), v20_session(lan)
    assert activate(bmc, a).cc == 0
    lan.sessions.close(b.id)  # another session: SOL stays
    assert sol.active is not None
    # Close Session (22.19) of the activating session, through the dispatcher.
    rsp = bmc.handle(APP, 0x3C, struct.pack("<I", a.id), ctx_of(a), 0.0)
    assert rsp.cc == 0 and sol.active is None
    c = v20_session(lan)
    assert activate(bmc, c).cc == 0
    assert lan.sessions.expire(lan.sessions.timeout + 1.0) == [c]
    assert sol.active is None
    # Inactive now: Get Payload Activation Status (24.4) says so.
    d = v20_session(lan)
    assert bmc.handle(APP, 0x4A, b"\x01", ctx_of(d), 0.0).data == bytes([1, 0, 0])


def test_lan_server_gives_sol_a_sender_and_its_port():
    bmc = make()
    sol = bmc.parts["sol"]

    async def main():
        server = LanServer(lan_context(bmc), BmcRunner(bmc), rmcpplus=None)
        host, port = await server.start("127.0.0.1:0")
        console = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        console.bind(("127.0.0.1", 0))
        console.setblocking(False)
        try:
            assert sol.console_sender == server.send_sol and sol.lan_port == port
            lan = lan_context(bmc)
            base = v20_session(lan, console.getsockname())
            sol.encode = lambda session, ptype, data: b"PKT" + bytes([ptype]) + data
            rsp = activate(bmc, base)
            assert rsp.cc == 0
            # Activate Payload's payload UDP port (24.1, response bytes 9-10): the server's.
            assert struct.unpack_from("<H", rsp.data, 8)[0] == port
            # SOL parameter 8, the payload port (26.3), agrees.
            got = bmc.handle(0x0C, 0x22, bytes([1, 8, 0, 0]), ctx_of(base), 0.0)
            assert struct.unpack_from("<H", got.data, 1)[0] == port
            loop = asyncio.get_running_loop()
            # Serial output: sent on its own once the accumulate interval passed (15.10).
            sol.from_serial(b"hello", loop.time())
            pkt = await asyncio.wait_for(loop.sock_recv(console, 1024), 5)
            assert pkt == b"PKT\x01" + bytes([1, 0, 0, 0]) + b"hello"
            # Deactivate Payload (24.2): the last packet says "SOL deactivating".
            assert bmc.handle(APP, 0x49, bytes([1, 1, 0, 0, 0, 0]), ctx_of(base), 0.0).cc == 0
            while True:
                pkt = await asyncio.wait_for(loop.sock_recv(console, 1024), 5)
                if pkt[4] == 0:  # not a retry of the data packet
                    break
            assert pkt[4 + 3] & ST_DEACTIVATING
        finally:
            console.close()
            await server.close()
        assert sol.console_sender is None and sol.lan_port is None

    asyncio.run(main())
