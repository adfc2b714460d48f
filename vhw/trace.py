"""A machine's trace: every message on every transport, with timestamps.

Transports call :meth:`Trace.record` with the bytes exactly as they crossed
the wire (after any injected fault changed them), so a test can assert on
what the guest really saw.  Records go to memory (for assertions in the same
process) and, when paths are given, to a JSON-lines file.  Records are
written from the asyncio loop and from device threads (mpqemu), hence the
lock.

Channels: ``ipmi-kcs``/``ipmi-bt``/``ipmi-ssif`` (ipmi-bmc-extern frames),
``lan`` (RMCP/RMCP+ datagrams), ``mpqemu`` (x-pci-proxy-dev messages),
``console`` (serial console bytes), ``fault`` (an injected fault took
effect), ``prom`` (EEPROM option changes).  Directions: ``in`` (towards vhw),
``out`` (from vhw), ``event`` (neither: something happened).

:meth:`Trace.to_dir` also writes ``trace.pcapng`` (see :class:`PcapngSink`),
which Wireshark and tshark open directly: LAN datagrams as Ethernet/IPv4/UDP
to port 623 (RMCP, ASF, IPMI v1.5, RMCP+), in-band messages as HPM.2 IPMI
trace blocks that tshark's KCS dissector decodes, the rest as user link types.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import threading
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

JSONL_NAME = "trace.jsonl"
PCAPNG_NAME = "trace.pcapng"

CHANNELS = ("ipmi-kcs", "ipmi-bt", "ipmi-ssif", "lan", "mpqemu", "console", "fault", "prom")
DIRECTIONS = ("in", "out", "event")


class Trace:
    """Records of one machine's traffic; thread-safe; cheap when disabled."""

    enabled = True

    def __init__(self, jsonl_path: str | Path | None = None, *, clock: Callable[[], float] = time.time,
                 keep: bool = True) -> None:
        self.path = Path(jsonl_path) if jsonl_path is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._keep = keep
        self._records: list[dict] = []
        self._file = open(self.path, "a", encoding="utf-8") if self.path is not None else None
        #: Set by :meth:`to_dir`: the directory and its pcapng file.
        self.directory: Path | None = None
        self.pcapng_path: Path | None = None
        #: Extra sinks called with each record (e.g. the pcapng writer).
        self.sinks: list[Callable[[dict, bytes], None]] = []

    def now(self) -> float:
        """This trace's clock (what a record's "t" would be now)."""
        return self._clock()

    def record(self, channel: str, direction: str, data: bytes = b"", **fields: Any) -> None:
        """One message (or event) on ``channel``; ``fields`` are JSON-able details."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown trace channel {channel!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown trace direction {direction!r}")
        data = bytes(data)
        rec = {"t": self._clock(), "channel": channel, "dir": direction, "len": len(data), "hex": data.hex()}
        rec.update(fields)
        with self._lock:
            if self._keep:
                self._records.append(rec)
            if self._file is not None and not self._file.closed:
                self._file.write(json.dumps(rec, sort_keys=True) + "\n")
                self._file.flush()
            for sink in self.sinks:
                sink(rec, data)

    @classmethod
    def to_dir(cls, directory: str | Path, *, clock: Callable[[], float] = time.time, keep: bool = True) -> Trace:
        """A trace writing ``DIRECTORY/trace.jsonl`` and ``DIRECTORY/trace.pcapng``.

        The directory is created if needed.  Both files are appended to: a
        second trace into the same directory adds lines to the JSONL file and
        a new section (its own header and interfaces) to the pcapng file,
        which Wireshark reads as one capture.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        trace = cls(directory / JSONL_NAME, clock=clock, keep=keep)
        trace.directory = directory
        trace.pcapng_path = directory / PCAPNG_NAME
        trace.sinks.append(PcapngSink(trace.pcapng_path))
        return trace

    def records(self, channel: str | None = None, direction: str | None = None) -> list[dict]:
        """A copy of the records kept so far, optionally of one channel/direction."""
        with self._lock:
            return [r for r in self._records
                    if (channel is None or r["channel"] == channel) and (direction is None or r["dir"] == direction)]

    def messages(self, channel: str, direction: str, netfn: int, cmd: int, since: float = 0.0) -> list[dict]:
        """The IPMI messages with ``netfn``/``cmd`` on ``channel`` in ``direction`` from time
        ``since`` (a LAN packet matches by any of its frames)."""
        def matches(fields: dict) -> bool:
            return fields.get("netfn") == netfn and fields.get("cmd") == cmd

        return [r for r in self.records(channel, direction)
                if r["t"] >= since and (matches(r) or any(matches(f) for f in r.get("frames", ())))]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            for sink in self.sinks:
                close = getattr(sink, "close", None)
                if close is not None:
                    close()
            self.sinks.clear()


class _NullTrace(Trace):
    """The trace of a machine nobody asked to trace: records nothing."""

    enabled = False

    def __init__(self) -> None:
        super().__init__(None, keep=False)

    def record(self, channel: str, direction: str, data: bytes = b"", **fields: Any) -> None:
        return None


NULL_TRACE: Trace = _NullTrace()


# -- reading a trace back ---------------------------------------------------

#: Keys every JSON-lines record has (what :meth:`Trace.record` writes).
RECORD_KEYS = ("t", "channel", "dir", "hex")


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a ``trace.jsonl``, in file order.

    OSError if the file cannot be read; ValueError naming the line if a line
    is not a JSON object with the keys of a record.  Blank lines are skipped.
    """
    path = Path(path)
    records = []
    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            lines = list(f)
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not a trace (not UTF-8 text: {e.reason})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not a trace record (invalid JSON: {e.msg})") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{number}: not a trace record (a JSON {type(rec).__name__}, not an object)")
        missing = [k for k in RECORD_KEYS if k not in rec]
        if missing:
            raise ValueError(f"{path}:{number}: not a trace record (no {', '.join(missing)})")
        if not isinstance(rec["t"], (int, float)) or not isinstance(rec["hex"], str):
            raise ValueError(f"{path}:{number}: not a trace record (t must be a number, hex a string)")
        try:
            bytes.fromhex(rec["hex"])
        except ValueError:
            raise ValueError(f"{path}:{number}: not a trace record (hex is not hexadecimal)") from None
        records.append(rec)
    return records


def record_bytes(rec: dict) -> bytes:
    """The bytes a record carries."""
    return bytes.fromhex(rec.get("hex", ""))


# -- ipmi-bmc-extern frames (docs/ipmi-extern.md) ----------------
# The trace keeps the bytes as they crossed the socket; these helpers find
# the frames in them again, for the pcapng file and for `vhw trace`.  They
# mirror vhw.ipmi.wire.extern's framing but keep every frame, broken ones included:
# a trace must show what the guest got, not what a good peer would accept.

_EXTERN_MSG_END, _EXTERN_CTRL_END, _EXTERN_ESCAPE = 0xA0, 0xA1, 0xAA
#: A frame longer than this is cut (the BMC's codec drops frames over 512).
_EXTERN_MAX_FRAME = 4096

_CONTROL_NAMES = {0x00: "NOATTN", 0x01: "ATTN", 0x02: "ATTN_IRQ", 0x03: "POWEROFF", 0x04: "RESET",
                  0x05: "ENABLE_IRQ", 0x06: "DISABLE_IRQ", 0x07: "SEND_NMI", 0x08: "CAPABILITIES",
                  0x09: "GRACEFUL_SHUTDOWN", 0x0A: "DISABLE", 0x0B: "ENABLE", 0xFF: "VERSION"}


class ExternFrames:
    """Splits one direction of an extern byte stream into unescaped frames.

    ``feed`` returns ``(frame, terminator)`` pairs: the bytes between two
    terminators with escapes undone (§2), and ``0xA0`` (message) or ``0xA1``
    (control).  A frame may span several ``feed`` calls.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._escaped = False

    @property
    def pending(self) -> bytes:
        """Unescaped bytes of an unfinished frame."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[tuple[bytes, int]]:
        frames = []
        buf = self._buf
        for b in data:
            if b in (_EXTERN_MSG_END, _EXTERN_CTRL_END):
                frames.append((bytes(buf), b))
                buf.clear()
                self._escaped = False
            elif b == _EXTERN_ESCAPE:
                self._escaped = True
            else:
                if self._escaped:
                    b &= ~0x10
                    self._escaped = False
                if len(buf) < _EXTERN_MAX_FRAME:
                    buf.append(b)
        return frames


def describe_extern_frame(frame: bytes, terminator: int) -> dict:
    """What one unescaped frame is: a message (request or response) or a control.

    Message: ``kind`` "request"/"response" by the NetFn's low bit (§4),
    ``seq``, ``netfn``, ``lun``, ``cmd``, ``cc`` (responses), ``data`` (bytes),
    ``checksum_ok``.  Control: ``kind`` "control", ``op`` (name, or hex if
    unknown), ``arg``.  Too short to say: ``kind`` "short".
    """
    if terminator == _EXTERN_CTRL_END:
        if not frame:
            return {"kind": "short", "data": b""}
        return {"kind": "control", "op": _CONTROL_NAMES.get(frame[0], f"0x{frame[0]:02X}"),
                "arg": frame[1] if len(frame) > 1 else None}
    if len(frame) < 4:
        return {"kind": "short", "data": bytes(frame)}
    netfn = frame[1] >> 2
    out: dict[str, object] = {"kind": "response" if netfn & 1 else "request", "seq": frame[0], "netfn": netfn,
           "lun": frame[1] & 3, "cmd": frame[2], "checksum_ok": sum(frame) & 0xFF == 0}
    if netfn & 1:
        if len(frame) < 5:
            return {"kind": "short", "data": bytes(frame)}
        out["cc"] = frame[3]
        out["data"] = bytes(frame[4:-1])
    else:
        out["data"] = bytes(frame[3:-1])
    return out


def extern_fields(data: bytes) -> dict:
    """Trace fields for extern bytes holding whole frames (what the BMC writes).

    One frame: its header fields flat (``seq``, ``netfn``, ``cmd``, ``cc`` or
    ``control``); several: ``frames``, a list of such dicts.
    """
    found = []
    for frame, term in ExternFrames().feed(data):
        d = describe_extern_frame(frame, term)
        if d["kind"] == "control":
            found.append({"control": d["op"]} if d["arg"] is None else {"control": d["op"], "arg": d["arg"]})
        elif d["kind"] == "short":
            found.append({"short": frame.hex()})
        else:
            f = {k: d[k] for k in ("seq", "netfn", "lun", "cmd", "cc") if k in d}
            if not d["checksum_ok"]:
                f["bad_checksum"] = True
            found.append(f)
    if len(found) == 1:
        return found[0]
    return {"frames": found} if found else {}


def lan_fields(datagram: bytes) -> dict:
    """Trace fields of an IPMI-over-LAN datagram, as far as it is readable.

    The IPMI message's ``netfn``, ``cmd`` (and for a response ``cc``) with its
    session's ``session_id``, for IPMI v1.5 packets and RMCP+ IPMI payloads
    not encrypted; RMCP+ others: ``payload`` (the type) and ``session_id``
    (and ``encrypted``); ASF: ``asf`` (the message type).  Malformed: {}.
    """
    from .ipmi.wire.ipmb import IpmbFrameError, IpmbRequest
    from .ipmi.wire import rmcp, session15

    try:
        header, body = rmcp.parse(datagram)
    except rmcp.RmcpError:
        return {}
    if header.cls == rmcp.CLASS_ASF and len(body) >= 5 and not header.ack:
        return {"asf": body[4]}
    if header.cls != rmcp.CLASS_IPMI or header.ack or not body:
        return {}
    fields: dict[str, Any] = {}
    if body[0] & 0x0F == 0x06:  # RMCP+ (IPMI 2.0 section 13.6, table 13-8)
        if len(body) < 12 or body[1] & 0x3F == 0x02:  # short, or OEM explicit
            return {}
        ptype = body[1]
        sid, _seq, length = struct.unpack_from("<IIH", body, 2)
        fields = {"payload": ptype & 0x3F, "session_id": sid}
        if ptype & 0x80:
            fields["encrypted"] = True
            return fields
        if ptype & 0x3F != 0x00:
            return fields
        msg = body[12:12 + length]
    else:
        try:
            session, msg = session15.parse_packet(body)
        except session15.PacketError:
            return {}
        fields = {"session_id": session.session_id}
    try:
        m = IpmbRequest.parse(msg, requests_only=False)
    except IpmbFrameError:
        return fields
    fields.update(netfn=m.netfn, cmd=m.cmd)
    if m.netfn & 1 and m.data:
        fields["cc"] = m.data[0]
    return fields


# -- pcapng -------------------------------------------------------------------

#: Link types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_ETHERNET = 1
LINKTYPE_USER0 = 147  # mpqemu messages
LINKTYPE_USER1 = 148  # console bytes
LINKTYPE_USER3 = 150  # events (faults, prom changes, ...) as JSON text; not USER2 (149):
#                      Wireshark reads 149 as Apple PKTAP
LINKTYPE_IPMI_HPM_2 = 260  # IPMI trace data blocks, PICMG HPM.2 table 3-20

#: HPM.2 trace data block: channel protocol type KCS; system interface channel.
HPM2_PROTO_KCS = 0x05
HPM2_SYSTEM_INTERFACE = 0x0F
HPM2_PACKET_DATA, HPM2_ASCII = 0, 2

#: What the BMC side of a LAN datagram shows as its UDP port: RMCP's
#: well-known port, on which Wireshark decodes RMCP/ASF/IPMI by default.
RMCP_PORT = 623
_BMC_MAC = bytes.fromhex("020000000623")
_PEER_MAC = bytes.fromhex("020000000001")

_DIRECTION_FLAGS = {"in": 1, "out": 2}  # epb_flags: inbound, outbound


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(block_type: int, body: bytes, options: bytes = b"") -> bytes:
    body += b"\0" * (-len(body) % 4)
    if options:
        body += options + struct.pack("<HH", 0, 0)
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


class PcapngWriter:
    """A minimal pcapng writer: one section, interfaces added as needed.

    Hand-written rather than scapy's ``PcapNgWriter`` because the trace needs
    several interfaces of different link types in one file (Ethernet for LAN,
    HPM.2 IPMI trace for in-band, user types for the rest) with names and
    descriptions, and per-packet comments and direction flags.  scapy 2.8's
    writer ties interface 0 to the first packet's link type, reaches
    interfaces only through its private ``_write_packet``, and has no
    interface description; the three block types used here (SHB, IDB, EPB,
    pcapng spec draft-ietf-opsawg-pcapng sections 4.1-4.3) take fifty lines.
    Timestamps are microseconds (the default if_tsresol).
    """

    SNAPLEN = 262144

    def __init__(self, path: str | Path, *, application: str = "vhw") -> None:
        self.path = Path(path)
        self._file = open(self.path, "ab")
        self._interfaces: dict[str, int] = {}
        self._write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1),
                           _option(4, application.encode())))  # shb_userappl

    @property
    def closed(self) -> bool:
        return self._file.closed

    def interface(self, name: str, linktype: int, description: str = "") -> int:
        """The id of interface ``name``, written (IDB) the first time it is asked for."""
        ifid = self._interfaces.get(name)
        if ifid is None:
            ifid = self._interfaces[name] = len(self._interfaces)
            options = _option(2, name.encode())  # if_name
            if description:
                options += _option(3, description.encode())  # if_description
            self._write(_block(1, struct.pack("<HHI", linktype, 0, self.SNAPLEN), options))
        return ifid

    def packet(self, ifid: int, t: float, data: bytes, *, direction: str | None = None,
               comment: str | None = None) -> None:
        """One enhanced packet block on interface ``ifid`` at Unix time ``t``."""
        ts = max(0, round(t * 1_000_000))
        body = struct.pack("<IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + bytes(data)
        options = b""
        if comment:
            options += _option(1, comment.encode())  # opt_comment
        flags = _DIRECTION_FLAGS.get(direction or "")
        if flags is not None:
            options += _option(2, struct.pack("<I", flags))  # epb_flags
        self._write(_block(6, body, options))

    def _write(self, block: bytes) -> None:
        if not self._file.closed:
            self._file.write(block)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def hpm2_block(t: float, payload: bytes, *, to_bmc: bool, block_type: int = HPM2_PACKET_DATA,
               channel: int = HPM2_SYSTEM_INTERFACE, protocol: int = HPM2_PROTO_KCS) -> bytes:
    """An HPM.2 IPMI trace data block (11-byte header, then the message).

    Header: block type (bits 5:4) and IPMI channel (3:0); seconds (u32 LE);
    milliseconds (u16 LE); channel protocol type; protocol data (u16 LE, bit
    7: 1 = to the IPM controller); data length.  Wireshark hands packet data
    of protocol type KCS to its KCS dissector: NetFn/LUN, cmd, [CC,] data.
    """
    secs = int(t)
    ms = min(999, int((t - secs) * 1000))
    header = struct.pack("<BIHBHB", (block_type & 3) << 4 | channel & 0x0F, secs & 0xFFFFFFFF, ms,
                         protocol, 0x80 if to_bmc else 0, min(len(payload), 255))
    return header + bytes(payload)


def _split_hostport(text: str) -> tuple[str, int]:
    host, _, port = str(text).rpartition(":")
    host = host[1:-1] if host.startswith("[") else host
    return host, int(port)


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes, *, ip_id: int = 0,
              src_mac: bytes = _PEER_MAC, dst_mac: bytes = _BMC_MAC) -> bytes:
    """An Ethernet frame carrying ``payload`` in UDP over IPv4 or IPv6, checksums right.

    If the two addresses are of different families, the destination becomes
    the loopback address of the source's family.
    """
    s = ipaddress.ip_address(src[0])
    try:
        d = ipaddress.ip_address(dst[0])
    except ValueError:
        d = None
    if d is None or d.version != s.version:
        d = ipaddress.ip_address("::1" if s.version == 6 else "127.0.0.1")
    length = 8 + len(payload)
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 17, length)
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", length, 17)
    udp = struct.pack("!HHHH", src[1], dst[1], length, 0) + bytes(payload)
    checksum = _inet_checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", checksum) + udp[8:]
    if s.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, ip_id & 0xFFFF, 0x4000, 64, 17, 0, s.packed, d.packed)
        ip = ip[:10] + struct.pack("!H", _inet_checksum(ip)) + ip[12:]
        ethertype = 0x0800
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, length, 17, 64, s.packed, d.packed)
        ethertype = 0x86DD
    return dst_mac + src_mac + struct.pack("!H", ethertype) + ip + udp


class _MpqemuFrames:
    """Splits one direction of an mpqemu stream into messages (16-byte header + size)."""

    HEADER = struct.Struct("<iIQ")

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while len(self._buf) >= 16:
            _cmd, _pad, size = self.HEADER.unpack_from(self._buf)
            if size > 4096:  # not mpqemu framing (QEMU rejects > 192): keep what there is
                out.append(bytes(self._buf))
                self._buf.clear()
                break
            if len(self._buf) < 16 + size:
                break
            out.append(bytes(self._buf[:16 + size]))
            del self._buf[:16 + size]
        return out


_MPQEMU_CMDS = {0: "SYNC_SYSMEM", 1: "RET", 2: "PCI_CFGWRITE", 3: "PCI_CFGREAD", 4: "BAR_WRITE",
                5: "BAR_READ", 6: "SET_IRQFD", 7: "DEVICE_RESET"}


def describe_mpqemu_message(msg: bytes) -> str:
    """One line for an mpqemu message: the command and its main arguments."""
    if len(msg) < 16:
        return f"{len(msg)}-byte fragment"
    cmd, _pad, size = struct.unpack_from("<iIQ", msg)
    name = _MPQEMU_CMDS.get(cmd, f"cmd {cmd}")
    body = msg[16:]
    if name in ("BAR_WRITE", "BAR_READ") and len(body) >= 21:
        addr, val, bsize, memory = struct.unpack_from("<QQI?", body)
        space = "mem" if memory else "io"
        if name == "BAR_WRITE":
            return f"{name} {space} 0x{addr:x} = 0x{val:x} ({bsize} bytes)"
        return f"{name} {space} 0x{addr:x} ({bsize} bytes)"
    if name in ("PCI_CFGWRITE", "PCI_CFGREAD") and len(body) >= 12:
        addr, val, length = struct.unpack_from("<IIi", body)
        if name == "PCI_CFGWRITE":
            return f"{name} 0x{addr:02x} = 0x{val:x} ({length} bytes)"
        return f"{name} 0x{addr:02x} ({length} bytes)"
    if name == "RET" and len(body) >= 8:
        return f"RET 0x{struct.unpack_from('<Q', body)[0]:x}"
    return f"{name} ({size}-byte payload)"


class PcapngSink:
    """A :attr:`Trace.sinks` entry writing every record as pcapng packets.

    * ``lan``: each datagram as Ethernet/IPv4 (or IPv6)/UDP between the real
      peer and the BMC's real address, the BMC's port shown as 623 (RMCP), so
      Wireshark decodes RMCP, ASF, IPMI v1.5 and RMCP+ without "Decode As";
      the real port is in the packet comment when it differs.
    * ``ipmi-kcs``/``ipmi-bt``/``ipmi-ssif``: the extern stream is split into
      frames again; each IPMI message is an HPM.2 IPMI trace data block
      (LINKTYPE_IPMI_HPM_2) of channel protocol type KCS on the system
      interface channel (0Fh), which tshark 4.0's IPMI dissector decodes
      (NetFn, command, completion code, fields, request/response matching).
      KCS is used for BT and SSIF too: past the transport framing QEMU
      removes, their messages are the same NetFn/LUN, cmd, CC, data, and
      Wireshark has no dissector for the BT or SMBus types.  The interface
      name says which interface it really was; the comment gives QEMU's
      sequence number.  Control commands are HPM.2 "embedded ASCII message"
      blocks (e.g. "control ATTN").
    * ``mpqemu``: one packet per message (LINKTYPE_USER0), per device.
    * ``console``: the bytes as read (LINKTYPE_USER1).
    * everything else (``fault``, ``prom``, events): the record as JSON text
      (LINKTYPE_USER3) with a one-line comment.

    Directions are set in each packet's flags (inbound = towards vhw).  A
    failure here is logged and never reaches the transport that recorded.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.writer = PcapngWriter(self.path)
        self._extern: dict[tuple[str, str], ExternFrames] = {}
        self._mpqemu: dict[tuple[str, str], _MpqemuFrames] = {}
        self._ip_id = 0
        self._failed = False

    def __call__(self, rec: dict, data: bytes) -> None:
        try:
            self._write(rec, data)
        except Exception:  # a trace must not break the transport it watches
            if not self._failed:
                self._failed = True
                import logging

                logging.getLogger(__name__).exception("pcapng trace: cannot write a %s record", rec.get("channel"))

    def close(self) -> None:
        self.writer.close()

    def _write(self, rec: dict, data: bytes) -> None:
        channel, direction, t = rec["channel"], rec["dir"], rec["t"]
        if direction == "event" or channel in ("fault", "prom"):
            self._event(rec)
        elif channel.startswith("ipmi-"):
            self._extern_records(rec, data)
        elif channel == "lan":
            self._lan(rec, data)
        elif channel == "mpqemu":
            self._mpqemu_records(rec, data)
        elif channel == "console":
            ifid = self.writer.interface("console", LINKTYPE_USER1, "guest serial console (bytes as read)")
            self.writer.packet(ifid, t, data, direction=direction)
        else:
            self._event(rec)

    def _event(self, rec: dict) -> None:
        w = self.writer
        if rec["channel"] == "mpqemu":  # a (re)connect: a new stream starts
            dev = str(rec.get("dev", "mpqemu"))
            for key in [k for k in self._mpqemu if k[0] == dev]:
                del self._mpqemu[key]
        ifid = w.interface("events", LINKTYPE_USER3, "vhw events (faults, PROM changes, ...) as JSON")
        body = {k: v for k, v in rec.items() if k != "t"}
        summary = " ".join(f"{k}={v}" for k, v in body.items() if k not in ("hex", "len", "channel", "dir"))
        w.packet(ifid, rec["t"], json.dumps(body, sort_keys=True).encode(),
                 direction=rec["dir"], comment=f"{rec['channel']} {rec['dir']}: {summary}"[:1000])

    def _extern_records(self, rec: dict, data: bytes) -> None:
        channel, direction, t = rec["channel"], rec["dir"], rec["t"]
        iface = channel[len("ipmi-"):]
        splitter = self._extern.setdefault((channel, direction), ExternFrames())
        w = self.writer
        ifid = w.interface(channel, LINKTYPE_IPMI_HPM_2,
                           f"in-band {iface}: QEMU ipmi-bmc-extern messages as HPM.2 IPMI trace blocks (KCS format)")
        to_bmc = direction == "in"
        for frame, term in splitter.feed(data):
            d = describe_extern_frame(frame, term)
            if d["kind"] in ("request", "response"):
                comment = f"in-band {iface} {d['kind']} seq 0x{d['seq']:02x}"
                if not d["checksum_ok"]:
                    comment += f"; bad checksum 0x{frame[-1]:02x}"
                w.packet(ifid, t, hpm2_block(t, frame[1:-1], to_bmc=to_bmc), direction=direction, comment=comment)
            else:
                if d["kind"] == "control":
                    text = f"{iface} control {d['op']}" + (f" 0x{d['arg']:02x}" if d["arg"] is not None else "")
                else:
                    text = f"{iface} short frame [{frame.hex(' ')}]"
                w.packet(ifid, t, hpm2_block(t, text.encode()[:255], to_bmc=to_bmc, block_type=HPM2_ASCII),
                         direction=direction, comment=f"in-band {iface} {d['kind']}")

    def _lan(self, rec: dict, data: bytes) -> None:
        peer = _split_hostport(rec.get("peer", "0.0.0.0:0"))
        local_host, local_port = _split_hostport(rec.get("local", "127.0.0.1:623"))
        bmc = (local_host, RMCP_PORT)
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        if rec["dir"] == "out":
            frame = udp_frame(bmc, peer, data, ip_id=self._ip_id, src_mac=_BMC_MAC, dst_mac=_PEER_MAC)
        else:
            frame = udp_frame(peer, bmc, data, ip_id=self._ip_id)
        comment = None if local_port == RMCP_PORT else f"BMC port {local_port} shown as {RMCP_PORT}"
        ifid = self.writer.interface("lan", LINKTYPE_ETHERNET, "IPMI over LAN (RMCP/RMCP+ on UDP)")
        self.writer.packet(ifid, rec["t"], frame, direction=rec["dir"], comment=comment)

    def _mpqemu_records(self, rec: dict, data: bytes) -> None:
        dev = str(rec.get("dev", "mpqemu"))
        direction = rec["dir"]
        splitter = self._mpqemu.setdefault((dev, direction), _MpqemuFrames())
        ifid = self.writer.interface(f"mpqemu {dev}", LINKTYPE_USER0,
                                     f"QEMU x-pci-proxy-dev (mpqemu) messages of {dev}")
        for msg in splitter.feed(data):
            self.writer.packet(ifid, rec["t"], msg, direction=direction, comment=describe_mpqemu_message(msg))


def iter_pcapng_blocks(raw: bytes) -> Iterator[tuple[int, bytes]]:
    """(block type, body) of each block of a little-endian pcapng file (for tests and tools)."""
    offset = 0
    while offset + 12 <= len(raw):
        block_type, length = struct.unpack_from("<II", raw, offset)
        if length < 12 or offset + length > len(raw):
            raise ValueError(f"pcapng: bad block length {length} at offset {offset}")
        yield block_type, raw[offset + 8:offset + length - 4]
        offset += length
    if offset != len(raw):
        raise ValueError(f"pcapng: {len(raw) - offset} trailing bytes")
