"""What the IPMI tests share: a fake QEMU for the extern transport, a small BMC
for it, and an RMCP+ remote console written from the spec.

Imported as ``ipmi.helpers`` (tests/unit is on the import path of every test
there), never by a test module's basename.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import struct

from vhw.ipmi.core.actions import Attention, AttentionState, InterruptEnable, Power, PowerOp
from vhw.ipmi.core.bmc import Bmc, CommandTable, NetFn, Privilege
from vhw.ipmi.io.extern_server import ExternServer, parse_address
from vhw.ipmi.wire import crypto
from vhw.ipmi.wire.crypto import CIPHER_SUITES, SessionKeys
from vhw.ipmi.wire.extern import ExternCodec, Response, Role, encode_request

# -- the extern transport: a fake QEMU -----------------------------------------------------
H = bytes.fromhex
GET_DEVICE_ID_BODY = H("00 00 03 09 08 02 9f 91 12 00 02 0f 00 00 00 00")
QEMU_HELLO = H("ff 01 a1 08 3f a1")  # §6: VERSION 1, CAPABILITIES 0x3F
OEM = 0x30
ATTENTION_CMD, POWER_CMD, IRQ_CMD = 0x01, 0x02, 0x03
ATTENTION_BY_BYTE = {0: AttentionState.NONE, 1: AttentionState.ATTN, 2: AttentionState.ATTN_IRQ}
POWER_BY_BYTE = dict(enumerate(PowerOp))


def make_bmc(cls=Bmc) -> Bmc:
    """A Bmc with its own table: Get Device ID, plus OEM commands that emit actions."""
    table = CommandTable()

    @table.command(NetFn.APP, 0x01, privilege=Privilege.USER)
    def get_device_id(bmc, ctx, data):
        return GET_DEVICE_ID_BODY[1:]

    @table.command(OEM, ATTENTION_CMD, privilege=Privilege.USER)
    def set_attention(bmc, ctx, data):
        bmc.emit(Attention(ATTENTION_BY_BYTE[data[0]]))

    @table.command(OEM, POWER_CMD, privilege=Privilege.USER)
    def power(bmc, ctx, data):
        bmc.emit(Power(POWER_BY_BYTE[data[0]], cause="test"))

    @table.command(OEM, IRQ_CMD, privilege=Privilege.USER)
    def irq(bmc, ctx, data):
        bmc.emit(InterruptEnable(bool(data[0])))

    @table.command(OEM, 0x04, privilege=Privilege.USER)
    def interface(bmc, ctx, data):
        return ctx.interface.encode() + bytes((ctx.lun,))

    return cls(table=table)


def run(test):
    """Run an async test in its own loop, bounded so a hang fails instead of blocking."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        async def bounded():
            await asyncio.wait_for(test(*args, **kwargs), 10)

        asyncio.run(bounded())

    return wrapper


class FakeQemu:
    """QEMU's end of the chardev: sends requests, decodes what the BMC sends.

    Like QEMU (can_receive always 1) it reads all the time, in a task of its
    own, and closes its end when the BMC hangs up (char-socket.c tcp_chr_read
    disconnects on a read of 0 bytes).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.codec = ExternCodec(Role.VM)
        self.raw = bytearray()
        self.events: list = []
        self.hung_up = False
        self._arrived = asyncio.Condition()
        self._reading = asyncio.get_running_loop().create_task(self._read_all())

    @classmethod
    async def connect(cls, address: str) -> FakeQemu:
        kind, target = parse_address(address)
        if kind == "unix":
            return cls(*await asyncio.open_unix_connection(target))
        return cls(*await asyncio.open_connection(*target))

    @classmethod
    async def over(cls, sock: socket.socket) -> FakeQemu:
        return cls(*await asyncio.open_connection(sock=sock))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_raw(self, n: int) -> bytes:
        """Exactly the next n raw bytes (the events they make are kept too)."""
        await self._until(lambda: len(self.raw) >= n)
        out, self.raw[:] = bytes(self.raw[:n]), self.raw[n:]
        self.events.clear()  # read raw or as events, not both
        return out

    async def events_(self, n: int) -> list:
        await self._until(lambda: len(self.events) >= n)
        out, self.events[:] = self.events[:n], self.events[n:]
        self.raw.clear()
        return out

    async def request(self, seq: int, netfn: int, cmd: int, data: bytes = b"") -> Response:
        self.send(encode_request(seq, netfn, 0, cmd, data))
        [rsp] = await self.events_(1)
        return rsp

    async def quiet(self, delay: float = 0.05) -> bool:
        """True if nothing is unread and nothing arrives for ``delay`` seconds."""
        if self.events or self.raw:
            return False
        try:
            await asyncio.wait_for(self._until(lambda: bool(self.raw)), delay)
        except TimeoutError:
            return True
        return False

    async def eof(self) -> bool:
        """Whether the BMC hung up with nothing left unread (our end is closed by then)."""
        try:
            await self._until(lambda: False)
        except EOFError:
            pass
        return not self.raw

    async def close(self) -> None:
        self._reading.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass

    async def _until(self, ready) -> None:
        async with self._arrived:
            while not ready():
                if self.hung_up:
                    raise EOFError("BMC closed the connection")
                await self._arrived.wait()

    async def _read_all(self) -> None:
        try:
            while chunk := await self.reader.read(4096):
                async with self._arrived:
                    self.raw += chunk
                    self.events += self.codec.receive_data(chunk)
                    self._arrived.notify_all()
        except ConnectionError:
            pass
        async with self._arrived:
            self.hung_up = True
            self._arrived.notify_all()
        self.writer.close()


async def serve_pair(server: ExternServer) -> tuple[FakeQemu, asyncio.Task]:
    ours, theirs = socket.socketpair()
    task = asyncio.create_task(server.serve_socket(ours))
    return await FakeQemu.over(theirs), task


# -- RMCP+: a remote console from the spec (IPMI 2.0 sections 13.17-13.24) ---------------------
#: The console's address as the sans-I/O RMCP+ layer sees it.
PEER = ("127.0.0.1", 40000)


def pkt(ptype: int, body: bytes, sid: int = 0, seq: int = 0) -> bytes:
    return bytes([6, 0, 0xFF, 7, 6, ptype]) + struct.pack("<IIH", sid, seq, len(body)) + body


def ipmi_req(netfn: int, cmd: int, data: bytes = b"", seq: int = 1) -> bytes:
    head = bytes([0x20, netfn << 2])
    body = bytes([0x81, seq << 2, cmd]) + data
    return head + bytes([(-sum(head)) & 0xFF]) + body + bytes([(-sum(body)) & 0xFF])


class Console:
    """The remote console side of 13.17-13.24, from the spec formulas."""

    def __init__(self, rp, suite_id=3, name=b"admin", password=b"password", role=0x14, priv=0, now=0.0):
        self.rp, self.suite, self.name, self.pw, self.role = rp, CIPHER_SUITES[suite_id], name, password, role
        self.csid, self.now, self.seq = 0x0A0B0C0D, now, 0
        s = self.suite
        body = bytes([1, priv, 0, 0]) + struct.pack("<I", self.csid) + bytes([0, 0, 0, 8, s.auth, 0, 0, 0]) \
            + bytes([1, 0, 0, 8, s.integrity, 0, 0, 0]) + bytes([2, 0, 0, 8, s.confidentiality, 0, 0, 0])
        (rsp,) = rp.handle(pkt(0x10, body), PEER, now)
        self.open_rsp = rsp[16:]

    @property
    def open_status(self):
        return self.open_rsp[1]

    def login(self):
        self.bsid = struct.unpack_from("<I", self.open_rsp, 8)[0]
        self.rm = os.urandom(16)
        body = bytes([2, 0, 0, 0]) + struct.pack("<I", self.bsid) + self.rm + bytes([self.role, 0, 0, len(self.name)]) \
            + self.name
        (rsp,) = self.rp.handle(pkt(0x12, body), PEER, self.now)
        r2 = rsp[16:]
        if r2[1]:
            return ("rakp2", r2[1])
        rc, guid = r2[8:24], r2[24:40]
        a = self.suite.auth
        self.rakp2_ok = r2[40:] == crypto.rakp2_auth_code(a, self.pw, self.csid, self.bsid, self.rm, rc, guid, self.role, self.name)
        code = crypto.rakp3_auth_code(a, self.pw, rc, self.csid, self.role, self.name)
        (rsp,) = self.rp.handle(pkt(0x14, bytes([3, 0, 0, 0]) + struct.pack("<I", self.bsid) + code), PEER, self.now)
        r4 = rsp[16:]
        if r4[1]:
            return ("rakp4", r4[1])
        assert self.rakp2_ok
        self.keys = SessionKeys.derive(self.suite, self.pw, None, self.rm, rc, self.role, self.name)
        assert r4[8:] == crypto.rakp4_icv(a, self.keys.sik, self.rm, self.bsid, guid)
        return ("ok", 0)

    def send(self, netfn, cmd, data=b"", seq=None):
        """One IPMI request in the session; returns (cc, data) or None when unanswered."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        s, k = self.suite, self.keys
        body = ipmi_req(netfn, cmd, data)
        flags = 0
        if s.confidentiality:
            body, flags = k.encrypt(body), flags | 0x80
        if s.integrity:
            flags |= 0x40
        p = bytes([6, flags]) + struct.pack("<IIH", self.bsid, seq, len(body)) + body
        if s.integrity:
            pad = (-(len(p) + 2)) % 4
            p += b"\xff" * pad + bytes([pad, 7])
            p += k.auth_code(p)
        out = self.rp.handle(bytes([6, 0, 0xFF, 7]) + p, PEER, self.now)
        if not out:
            return None
        (rsp,) = out
        assert struct.unpack_from("<I", rsp, 6)[0] == self.csid
        length = struct.unpack_from("<H", rsp, 14)[0]
        payload = rsp[16:16 + length]
        if rsp[5] & 0x40:
            n = crypto.AUTHCODE_LENGTH[s.integrity]
            assert k.verify(rsp[4:-n], rsp[-n:])
        if rsp[5] & 0x80:
            payload = k.decrypt(payload)
        return payload[6], payload[7:-1]
