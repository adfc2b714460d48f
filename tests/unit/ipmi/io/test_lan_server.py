"""The UDP server over loopback: ping/pong, v1.5 sessionless answers, garbage never kills it."""

import asyncio
import socket

from vhw.ipmi.wire import ipmb
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.wire import rmcp, session15
from vhw.ipmi.io.service import BmcService


async def _exchange(sock, addr, data, timeout=2.0):
    loop = asyncio.get_running_loop()
    sock.sendto(data, addr)
    return await asyncio.wait_for(loop.sock_recv(sock, 1024), timeout)


def test_server_ping_auth_caps_and_garbage():
    """ASF presence ping -> pong; Get Channel Auth Capabilities (22.13); garbage is dropped, counted."""
    async def main():
        service = BmcService(BmcConfig.from_dict({"lan": "127.0.0.1:0"}))
        addr = await service.start_lan("127.0.0.1:0")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            for junk in (b"", b"\x06", b"\x06\x00\xff\x07", b"\x06\x00\xff\x07\x00" + bytes(30), bytes(range(256))):
                sock.sendto(junk, addr)
            pong = await _exchange(sock, addr, rmcp.ping(tag=9))
            assert pong[8] == 0x40 and pong[9] == 9
            msg = ipmb.encode_request(6, 0x38, b"\x8e\x04", rq_seq=1)
            out = await _exchange(sock, addr, session15.encode_packet(0, 0, 0, msg))
            header, body = session15.parse_packet(rmcp.parse(out)[1])
            assert body[6] == 0 and body[7] == 1
            lan = service.bmc.parts["lan"]
            assert lan.stats.get("rmcp_malformed", 0) + lan.stats.get("v15_malformed", 0) >= 3
        finally:
            sock.close()
            await service.close()
    asyncio.run(main())


def test_machine_config_lan_key_starts_listener():
    """[bmc] lan = "HOST:PORT": BmcService.listen also serves LAN on the same Bmc."""
    async def main():
        service = BmcService(BmcConfig.from_dict({"lan": "127.0.0.1:0"}))
        await service.listen(None, [])
        try:
            assert service.lan_server is not None and service.lan_server.address[1] != 0
            assert service.bmc.parts["channels"].active_sessions(1) == 0
        finally:
            await service.close()
    asyncio.run(main())


def test_bad_lan_key_is_a_description_error():
    import pytest
    from vhw.errors import DescriptionError
    with pytest.raises(DescriptionError):
        BmcConfig.from_dict({"lan": "nohostport"})
