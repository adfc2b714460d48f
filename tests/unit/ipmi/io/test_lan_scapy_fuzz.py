"""Scapy layers of IPMI over LAN (vhw.testing.scapy_layers) against vhw's own codecs, and a
scapy fuzz of a real LanServer over loopback UDP (issue 5 item 4): no packet, however
malformed, crashes the server or leaves a session allocated."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.packet import Raw, fuzz  # noqa: E402
from scapy.volatile import RandBin, RandByte, RandShort  # noqa: E402

from vhw.ipmi.wire import ipmb
from vhw.ipmi.core.assemble import create_bmc  # noqa: E402
from vhw.ipmi.core.config import BmcConfig  # noqa: E402
from vhw.ipmi.wire import rmcp, rmcpplus, session15  # noqa: E402
from vhw.testing.scapy_layers import (
    ASF,
    RAKP1,
    RAKP2,
    RAKP3,
    RMCP,
    ASFPresencePong,
    IPMIMessage,
    IPMISession15,
    OpenSessionRequest,
    OpenSessionResponse,
    RMCPPlus,
)
from vhw.ipmi.parts.sessions import lan_context  # noqa: E402
from vhw.ipmi.io.service import BmcService  # noqa: E402

USERS = [{"id": 2, "name": "admin", "password": "password"}]
AUTH_CAPS = dict(netfn=6, cmd=0x38, data=b"\x8e\x04")


# -- the layers decode what vhw encodes, and vhw accepts what they build --------------------------


def test_v15_packet_both_ways():
    msg = ipmb.encode_request(6, 0x38, b"\x8e\x04", rq_seq=5)
    for auth_type, sid in ((0, 0), (2, 0x11223344), (4, 0xDEADBEEF)):
        raw = session15.encode_packet(auth_type, 7, sid, msg, b"password".ljust(16, b"\0"))
        p = RMCP(raw)
        assert p.msg_class == 7 and p.seq == 0xFF
        s = p[IPMISession15]
        assert (s.auth_type, s.seq, s.session_id, s.length) == (auth_type, 7, sid, len(msg))
        if auth_type:
            header, _ = session15.parse_packet(raw[4:])
            assert s.auth_code == header.auth_code
        m = p[IPMIMessage]
        assert (m.rs_addr, m.netfn, m.cmd, m.rq_seq, m.data) == (0x20, 6, 0x38, 5, b"\x8e\x04")
        assert bytes(p) == raw
    built = bytes(RMCP() / IPMISession15(seq=7) / IPMIMessage(rq_seq=5, **AUTH_CAPS))
    assert built == session15.encode_packet(0, 7, 0, msg)
    header, body = session15.parse_packet(rmcp.parse(built)[1])
    req = session15.parse_request(body)
    assert (req.netfn, req.cmd, req.rq_seq, req.data) == (6, 0x38, 5, b"\x8e\x04")


def test_v15_legacy_pad_is_padding():
    msg = ipmb.encode_request(6, 0x38, b"\x8e\x04")
    p = RMCP(session15.encode_packet(0, 0, 0, msg) + b"\x00")
    assert p[IPMIMessage].data == b"\x8e\x04" and p[IPMIMessage].checksum2 == msg[-1]


def test_asf_ping_pong_both_ways():
    assert bytes(RMCP() / ASF(tag=9)) == rmcp.ping(tag=9)
    hdr, body = rmcp.parse(bytes(RMCP(seq=3) / ASF(tag=4)))
    assert hdr.cls == rmcp.CLASS_ASF and rmcp.parse_asf(body).tag == 4
    p = RMCP(rmcp.pack(rmcp.CLASS_ASF, rmcp.pong(9)))
    assert p[ASF].msg_type == 0x40 and p[ASF].tag == 9 and p[ASF].length == 16
    assert p[ASFPresencePong].iana == 4542 and p[ASFPresencePong].entities == rmcp.ENTITIES_IPMI


def test_rmcpplus_headers_and_udp_binding():
    body = bytes(range(32))
    raw = bytes([6, 0, 0xFF, 7, 6, 0xC0]) + struct.pack("<IIH", 0x01020304, 9, len(body)) + body + b"\xff\xff\x02\x07"
    p = RMCP(raw)
    h = p[RMCPPlus]
    assert (h.auth_type, h.encrypted, h.authenticated, h.payload_type) == (6, 1, 1, 0)
    assert (h.session_id, h.seq, h.length) == (0x01020304, 9, 32)
    assert p[Raw].load == body
    oem = RMCP(bytes(RMCP() / RMCPPlus(payload_type=2, oem_iana=4542, oem_payload_id=7) / Raw(b"ab")))
    assert oem[RMCPPlus].oem_iana == 4542 and oem[RMCPPlus].oem_payload_id == 7 and oem[Raw].load == b"ab"
    ip = IP(bytes(IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=40000, dport=623) / RMCP() / ASF(tag=1)))
    assert ip[ASF].tag == 1
    ip = IP(bytes(IP() / UDP(sport=623, dport=40000) / RMCP() / RMCPPlus(payload_type=0x14) / RAKP3(auth_code=b"x" * 20)))
    assert ip[RAKP3].auth_code == b"x" * 20


def _open_session_request(tag=1, csid=0x0A0B0C0D, auth=1, integ=1, conf=1):
    return RMCP() / RMCPPlus(payload_type=0x10) / OpenSessionRequest(
        tag=tag, console_session_id=csid, auth_algorithm=auth, integrity_algorithm=integ, conf_algorithm=conf)


def test_rmcpplus_setup_both_ways():
    """Scapy-built Open Session Request and RAKP 1 go through vhw's RmcpPlus; its answers dissect."""
    bmc = create_bmc(BmcConfig.from_dict({"users": USERS}, machine="t"))
    lan = lan_context(bmc)
    rp = rmcpplus.RmcpPlus(lan)
    peer = ("127.0.0.1", 40000)
    (rsp,) = rp.handle(bytes(_open_session_request()), peer, 0.0)
    osr = RMCP(rsp)[OpenSessionResponse]
    assert osr.status == 0 and osr.tag == 1 and osr.console_session_id == 0x0A0B0C0D
    assert (osr.auth_algorithm, osr.integrity_algorithm, osr.conf_algorithm) == (1, 1, 1)
    (rsp,) = rp.handle(bytes(RMCP() / RMCPPlus(payload_type=0x12) / RAKP1(
        tag=2, bmc_session_id=osr.bmc_session_id, console_random=b"r" * 16, privilege=4, username=b"admin")),
        peer, 0.0)
    r2 = RMCP(rsp)[RAKP2]
    assert r2.status == 0 and r2.tag == 2 and len(r2.auth_code) == 20 and r2.console_session_id == 0x0A0B0C0D
    rp.expire(rmcpplus.SETUP_TIMEOUT + 1)
    assert lan.sessions.count() == 0


# -- fuzzing a real server -------------------------------------------------------------------------


def _truncations(packets, rng):
    for p in packets:
        raw = bytes(p)
        yield raw[:rng.randrange(len(raw) + 1)]


def _bit_flips(packets, rng):
    for p in packets:
        raw = bytearray(bytes(p))
        for _ in range(rng.randint(1, 3)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        yield bytes(raw)


def _stacks(rng, n):
    """(name, iterable of datagrams) per layer stack, n packets each (bounded)."""
    ipmi = dict(version=6, msg_class=7)
    valid_v15 = RMCP() / IPMISession15() / IPMIMessage(**AUTH_CAPS)
    valid_open = _open_session_request()
    return [
        ("rmcp/v15/msg", (fuzz(RMCP() / IPMISession15() / IPMIMessage()) for _ in range(n))),
        ("v15/msg", (fuzz(RMCP(**ipmi) / IPMISession15() / IPMIMessage()) for _ in range(n))),
        ("v15 bad lengths+checksums", (fuzz(RMCP(**ipmi) / IPMISession15(length=RandByte()) / IPMIMessage(
            checksum1=RandByte(), checksum2=RandByte())) for _ in range(n))),
        ("v15 sessionless cmds", (RMCP() / IPMISession15(auth_type=rng.choice((0, 1, 2, 4, 5, 7, 15)),
                                                         session_id=rng.choice((0, rng.getrandbits(32))),
                                                         seq=rng.getrandbits(32)) / IPMIMessage(
            netfn=6, cmd=rng.choice((0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x54, 0x01)), data=RandBin(rng.randrange(30)))
            for _ in range(n))),
        ("rmcp/rmcp+/open", (fuzz(RMCP() / RMCPPlus() / OpenSessionRequest()) for _ in range(n))),
        ("rmcp+/open", (fuzz(RMCP(**ipmi) / RMCPPlus(auth_type=6, session_id=0, encrypted=0, authenticated=0,
                                                      payload_type=0x10) / OpenSessionRequest()) for _ in range(n))),
        ("rmcp+/rakp1", (fuzz(RMCP(**ipmi) / RMCPPlus(auth_type=6, payload_type=0x12) / RAKP1()) for _ in range(n))),
        ("rmcp+/rakp3", (fuzz(RMCP(**ipmi) / RMCPPlus(auth_type=6, payload_type=0x14) / RAKP3()) for _ in range(n))),
        ("rmcp+/ipmi", (fuzz(RMCP(**ipmi) / RMCPPlus(auth_type=6, length=RandShort()) / IPMIMessage())
                        for _ in range(n))),
        ("asf", (fuzz(RMCP(version=6, msg_class=6) / ASF()) for _ in range(n))),
        ("truncated", _truncations([valid_v15, valid_open] * (n // 2), rng)),
        ("bit flips", _bit_flips([valid_v15, valid_open] * (n // 2), rng)),
    ]


class _Client:
    def __init__(self, addr):
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(("127.0.0.1", 0))
        self.tag = 0

    async def recv_until(self, pred, timeout=5.0):
        loop = asyncio.get_running_loop()
        while True:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), timeout)
            if pred(data):
                return data

    async def sync(self):
        """A Presence Ping answered: the server has taken every earlier datagram (or the kernel dropped it)."""
        self.tag = (self.tag + 1) & 0xFF
        tag = self.tag
        self.sock.sendto(rmcp.ping(tag=tag), self.addr)
        return await self.recv_until(lambda d: len(d) >= 10 and d[3] == 6 and d[8] == 0x40 and d[9] == tag)

    async def auth_caps(self):
        self.sock.sendto(bytes(RMCP() / IPMISession15() / IPMIMessage(rq_seq=0x2A, **AUTH_CAPS)), self.addr)
        out = await self.recv_until(lambda d: len(d) > 10 and d[3] == 7 and d[4] == 0)
        return RMCP(out)[IPMIMessage]

    async def open_session(self, csid):
        self.sock.sendto(bytes(_open_session_request(tag=0x77, csid=csid)), self.addr)
        out = await self.recv_until(lambda d: len(d) > 16 and d[4] == 6 and d[5] & 0x3F == 0x11 and d[16] == 0x77)
        return RMCP(out)[OpenSessionResponse]

    def close(self):
        self.sock.close()


def test_scapy_fuzz_does_not_crash_or_leak(caplog):
    rng = random.Random()
    seed = rng.getrandbits(32)
    rng.seed(seed)
    per_stack = 500

    async def main():
        service = BmcService(BmcConfig.from_dict({"lan": "127.0.0.1:0", "users": USERS}))
        addr = await service.start_lan("127.0.0.1:0")
        lan = service.bmc.parts["lan"]
        client = _Client(addr)
        sent = 0
        try:
            # A half-open session whose ID the RAKP fuzz aims at, so it gets past the lookup.
            osr = await client.open_session(0x5EED0001)
            assert osr.status == 0
            stacks = _stacks(rng, per_stack)
            stacks.append(("rakp1 on a live id", (fuzz(RMCP() / RMCPPlus(payload_type=0x12) / RAKP1(
                bmc_session_id=osr.bmc_session_id)) for _ in range(per_stack))))
            stacks.append(("rakp3 on a live id", (fuzz(RMCP() / RMCPPlus(payload_type=0x14) / RAKP3(
                bmc_session_id=osr.bmc_session_id)) for _ in range(per_stack))))
            for name, packets in stacks:
                for i, p in enumerate(packets):
                    raw = bytes(p)[:60000]
                    client.sock.sendto(raw, addr)
                    sent += 1
                    if i % 50 == 49:  # let the server catch up (bounded: no sleeps, a ping per batch)
                        await client.sync()
                await client.sync()
                assert lan.stats.get("internal_errors", 0) == 0, (name, seed)
            # Still answering.
            await client.sync()
            m = await client.auth_caps()
            assert m.netfn == 7 and m.cmd == 0x38 and m.rq_seq == 0x2A and m.data[0] == 0
            # No session was completed by random data: nothing active, and the half-open
            # ones (Open Session answered by chance or on purpose) go at the setup timeout.
            rp = service.lan_server.router.rmcpplus
            assert rp is not None
            assert not [s for s in rp.sessions() if s.active]
            assert not [s for s in lan.sessions if s.kind == "v15"]
            rp.expire(service.runner.now() + rmcpplus.SETUP_TIMEOUT + 1)
            assert lan.sessions.count() == 0
            assert lan.stats.get("datagrams", 0) > 0
        finally:
            client.close()
            await service.close()
        return sent

    with caplog.at_level(logging.WARNING, logger="vhw"):
        sent = asyncio.run(main())
    assert sent >= 12 * per_stack
    errors = [r for r in caplog.records if r.name.startswith("vhw") and r.levelno >= logging.ERROR]
    assert not errors, (seed, [r.getMessage() for r in errors[:5]])
