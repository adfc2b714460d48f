"""`vhw trace`: pretty-print a machine's trace (``trace.jsonl``, docs/trace.md).

    vhw trace FILE|DIR [--channel C[,C...]] [--dir in|out|event] [--since S] [--until S]
                       [--grep REGEX] [--absolute] [--hex]

One line per record: the time (seconds since the first record of the file,
or the wall clock with ``--absolute``), the channel, the direction, and what
the bytes say: NetFn, command and completion code of in-band IPMI messages;
RMCP class, session, sequence and payload of LAN datagrams; command, BAR and
value of mpqemu messages; the text of console output; what a fault did.
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
import time
from functools import cache
from pathlib import Path

from ..errors import VhwError
from ..trace import (
    JSONL_NAME,
    ExternFrames,
    describe_extern_frame,
    describe_mpqemu_message,
    read_jsonl,
    record_bytes,
)

USAGE = __doc__.split("\n\n")[1]

NETFN_NAMES = {0x00: "Chassis", 0x02: "Bridge", 0x04: "S/E", 0x06: "App", 0x08: "Firmware", 0x0A: "Storage",
               0x0C: "Transport", 0x2C: "Group", 0x2E: "OEM/Group"}

#: IPMI 2.0 table 5-2.
CC_NAMES = {0x00: "OK", 0xC0: "node busy", 0xC1: "invalid command", 0xC2: "invalid for LUN", 0xC3: "timeout",
            0xC4: "out of space", 0xC5: "reservation cancelled", 0xC6: "request data truncated",
            0xC7: "request data length invalid", 0xC8: "request data field length limit exceeded",
            0xC9: "parameter out of range", 0xCA: "cannot return requested bytes", 0xCB: "not present",
            0xCC: "invalid data field", 0xCD: "illegal for sensor or record", 0xCE: "response could not be provided",
            0xCF: "duplicated request", 0xD0: "SDR repository in update mode", 0xD1: "firmware update mode",
            0xD2: "BMC initialization in progress", 0xD3: "destination unavailable",
            0xD4: "insufficient privilege", 0xD5: "not supported in present state",
            0xD6: "subfunction disabled", 0xFF: "unspecified error"}

AUTH_TYPES = {0: "none", 1: "MD2", 2: "MD5", 4: "password", 5: "OEM", 6: "RMCP+"}
PAYLOAD_TYPES = {0x00: "IPMI", 0x01: "SOL", 0x02: "OEM", 0x10: "Open Session Request", 0x11: "Open Session Response",
                 0x12: "RAKP 1", 0x13: "RAKP 2", 0x14: "RAKP 3", 0x15: "RAKP 4"}
RMCP_CLASSES = {0x06: "ASF", 0x07: "IPMI", 0x08: "OEM"}
ASF_TYPES = {0x80: "Presence Ping", 0x40: "Presence Pong"}


def add_parser(sub) -> None:
    p = sub.add_parser("trace", help="pretty-print a machine's trace (trace.jsonl)",
                       description="Print a trace.jsonl (or the one in a directory), one line per record.",
                       epilog=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="a trace.jsonl, or a directory holding one")
    p.add_argument("--channel", "-c", action="append", metavar="C",
                   help="only these channels (repeat or comma-separate: ipmi-kcs,lan,mpqemu,console,fault,...)")
    p.add_argument("--dir", dest="direction", choices=("in", "out", "event"), help="only this direction")
    p.add_argument("--since", type=float, metavar="S", help="only records at least S seconds after the first")
    p.add_argument("--until", type=float, metavar="S", help="only records at most S seconds after the first")
    p.add_argument("--grep", "-g", metavar="REGEX", help="only lines matching REGEX (case-insensitive)")
    p.add_argument("--absolute", action="store_true", help="print wall-clock times instead of relative ones")
    p.add_argument("--hex", action="store_true", help="also print each record's bytes in hex")


def main(args) -> int:
    path = Path(args.file)
    if path.is_dir():
        path = path / JSONL_NAME
    try:
        records = read_jsonl(path)
    except OSError as e:
        raise VhwError(f"cannot read trace {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise VhwError(str(e)) from None
    pattern = None
    if args.grep:
        try:
            pattern = re.compile(args.grep, re.I)
        except re.error as e:
            raise VhwError(f"--grep {args.grep!r}: {e}") from None
    channels = None
    if args.channel:
        channels = {c.strip() for arg in args.channel for c in arg.split(",") if c.strip()}
    try:
        for line in format_records(records, channels=channels, direction=args.direction, since=args.since,
                                   until=args.until, absolute=args.absolute, show_hex=args.hex):
            if pattern is None or pattern.search(line):
                print(line)
        sys.stdout.flush()
    except BrokenPipeError:  # `vhw trace ... | head`
        sys.stdout = None
    return 0


def format_records(records: list[dict], *, channels: set[str] | None = None, direction: str | None = None,
                   since: float | None = None, until: float | None = None, absolute: bool = False,
                   show_hex: bool = False):
    """The printed lines of ``records`` (an iterator), filtered.

    Every record is decoded, filtered or not: an extern frame or an mpqemu
    message may span records, so decoding keeps per-stream state.
    """
    if not records:
        return
    start = records[0]["t"]
    decoder = Decoder()
    for rec in records:
        summary = decoder.summary(rec)
        rel = rec["t"] - start
        if channels is not None and rec["channel"] not in channels:
            continue
        if direction is not None and rec["dir"] != direction:
            continue
        if (since is not None and rel < since) or (until is not None and rel > until):
            continue
        if absolute:
            when = time.strftime("%H:%M:%S", time.localtime(rec["t"])) + f"{rec['t'] % 1:.6f}"[1:]
        else:
            when = f"{rel:12.6f}"
        line = f"{when}  {rec['channel']:<9} {rec['dir']:<5} {summary}"
        if show_hex and rec.get("hex"):
            line += f"  [{rec['hex']}]"
        yield line


class Decoder:
    """Record -> one-line summary; keeps the partial frames of each stream."""

    def __init__(self) -> None:
        self._extern: dict[tuple[str, str], ExternFrames] = {}
        self._mpqemu: dict[tuple[str, str], bytearray] = {}

    def summary(self, rec: dict) -> str:
        channel, direction = rec["channel"], rec["dir"]
        try:
            data = record_bytes(rec)
            if direction == "event" or channel in ("fault", "prom"):
                return _fields_text(rec) or "(event)"
            if channel.startswith("ipmi-"):
                return self._extern_summary(rec, data)
            if channel == "lan":
                text = lan_summary(data)
                peer = rec.get("peer")
                return f"{text}  ({'from' if direction == 'in' else 'to'} {peer})" if peer else text
            if channel == "mpqemu":
                return self._mpqemu_summary(rec, data)
            if channel == "console":
                return _text(data)
        except Exception as e:  # a strange record still gets its line
            return f"undecodable ({type(e).__name__}: {e}) {_fields_text(rec)}".rstrip()
        return _fields_text(rec) or f"{len(data)} bytes"

    def _extern_summary(self, rec: dict, data: bytes) -> str:
        splitter = self._extern.setdefault((rec["channel"], rec["dir"]), ExternFrames())
        parts = [ipmi_frame_summary(describe_extern_frame(frame, term)) for frame, term in splitter.feed(data)]
        if splitter.pending:
            parts.append(f"(partial frame, {len(splitter.pending)} bytes so far)")
        return "; ".join(parts) if parts else f"{len(data)} bytes"

    def _mpqemu_summary(self, rec: dict, data: bytes) -> str:
        key = (str(rec.get("dev", "mpqemu")), rec["dir"])
        buf = self._mpqemu.setdefault(key, bytearray())
        buf += data
        parts = []
        while len(buf) >= 16:
            size = struct.unpack_from("<Q", buf, 8)[0]
            if size > 4096:
                parts.append(f"not mpqemu framing: {bytes(buf[:32]).hex()}")
                buf.clear()
                break
            if len(buf) < 16 + size:
                break
            parts.append(describe_mpqemu_message(bytes(buf[:16 + size])))
            del buf[:16 + size]
        if buf:
            parts.append(f"(partial message, {len(buf)} bytes so far)")
        text = "; ".join(parts) if parts else f"{len(data)} bytes"
        if "bar" in rec and "offset" in rec:
            text += f"  [BAR{rec['bar']}+0x{rec['offset']:x}]"
        dev = rec.get("dev")
        return f"{dev}: {text}" if dev else text


def _fields_text(rec: dict) -> str:
    skip = {"t", "channel", "dir", "len", "hex"}
    parts = [f"{k}={v}" for k, v in rec.items() if k not in skip]
    if rec.get("hex"):
        parts.append(f"data={rec['hex']}")
    return " ".join(parts)


def _text(data: bytes) -> str:
    return repr(data.decode("utf-8", errors="replace"))


@cache
def command_name(netfn: int, cmd: int) -> str:
    """A command's name from python-ipmi's message registry, else its numbers."""
    try:
        from pyipmi.msgs.registry import DEFAULT_REGISTRY
    except ImportError:  # pragma: no cover - a dependency of vhw
        DEFAULT_REGISTRY = None
    cls = None
    if DEFAULT_REGISTRY is not None:
        cls = DEFAULT_REGISTRY.registry.get((netfn & ~1, cmd, None))
    if cls is None:
        return f"cmd 0x{cmd:02X}"
    name = cls.__name__
    for suffix in ("Req", "Rsp"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)


def netfn_name(netfn: int) -> str:
    base = netfn & ~1
    if 0x30 <= base <= 0x3E:
        return "OEM"
    return NETFN_NAMES.get(base, f"NetFn 0x{base:02X}")


def cc_text(cc: int) -> str:
    name = CC_NAMES.get(cc)
    if name is None:
        name = "command-specific" if 0x80 <= cc <= 0xBE else "OEM" if 0x01 <= cc <= 0x7E else "reserved"
    return f"CC 0x{cc:02X} ({name})"


def ipmi_message_summary(netfn: int, cmd: int, cc: int | None, data: bytes) -> str:
    kind = "rsp" if netfn & 1 else "req"
    text = f"{netfn_name(netfn)} {command_name(netfn, cmd)} {kind} (NetFn 0x{netfn:02X} cmd 0x{cmd:02X})"
    if cc is not None:
        text += f" {cc_text(cc)}"
    if data:
        shown = data[:24].hex(" ") + (" ..." if len(data) > 24 else "")
        text += f" [{shown}]"
    return text


def ipmi_frame_summary(d: dict) -> str:
    """One extern frame (vhw.trace.describe_extern_frame) as text."""
    if d["kind"] == "control":
        return f"control {d['op']}" + (f" 0x{d['arg']:02X}" if d["arg"] is not None else "")
    if d["kind"] == "short":
        return f"short frame [{d['data'].hex(' ')}]"
    text = f"seq 0x{d['seq']:02x} " + ipmi_message_summary(d["netfn"], d["cmd"], d.get("cc"), d["data"])
    if d["lun"]:
        text += f" LUN {d['lun']}"
    if not d["checksum_ok"]:
        text += " BAD CHECKSUM"
    return text


def _ipmb_summary(msg: bytes) -> str:
    """An IPMB-format message (rsAddr, NetFn/LUN, chk, rqAddr, rqSeq/LUN, cmd, [CC], data, chk)."""
    if len(msg) < 7:
        return f"short IPMI message [{msg.hex(' ')}]"
    netfn, cmd = msg[1] >> 2, msg[5]
    is_rsp = netfn & 1
    cc = msg[6] if is_rsp and len(msg) >= 8 else None
    data = msg[7:-1] if cc is not None else msg[6:-1]
    return f"rqSeq {msg[4] >> 2} " + ipmi_message_summary(netfn, cmd, cc, bytes(data))


def lan_summary(datagram: bytes) -> str:
    """An RMCP datagram: class, session, sequence and payload, as far as it is readable."""
    if len(datagram) < 4 or datagram[0] != 0x06:
        return f"not RMCP ({len(datagram)} bytes)"
    seq, cls = datagram[2], datagram[3]
    body = datagram[4:]
    name = RMCP_CLASSES.get(cls & 0x1F, f"class 0x{cls & 0x1F:02X}")
    if cls & 0x80:
        return f"RMCP ACK {name} seq {seq}"
    if cls & 0x1F == 0x06:
        if len(body) < 8:
            return "RMCP ASF (short)"
        mtype, tag = body[4], body[5]
        return f"RMCP ASF {ASF_TYPES.get(mtype, f'type 0x{mtype:02X}')} tag {tag}"
    if cls & 0x1F != 0x07 or not body:
        return f"RMCP {name} ({len(body)} bytes)"
    auth = body[0] & 0x0F
    if auth == 0x06:
        if len(body) < 12:
            return "RMCP+ (short)"
        ptype = body[1]
        encrypted, authenticated = bool(ptype & 0x80), bool(ptype & 0x40)
        kind = ptype & 0x3F
        offset = 2
        pname = PAYLOAD_TYPES.get(kind, f"payload 0x{kind:02X}")
        if kind == 0x02:  # OEM explicit: IANA (4) + payload ID (2)
            offset += 6
        sid, sseq, length = struct.unpack_from("<IIH", body, offset)
        payload = body[offset + 10:offset + 10 + length]
        flags = ",".join(f for f, on in (("encrypted", encrypted), ("authenticated", authenticated)) if on)
        text = f"RMCP+ {pname} session 0x{sid:08X} seq {sseq}" + (f" ({flags})" if flags else "")
        if kind == 0x00 and not encrypted:
            text += ": " + _ipmb_summary(payload)
        elif kind in (0x11, 0x13, 0x15) and len(payload) >= 2:
            text += f" status 0x{payload[1]:02X}"
        return text
    if len(body) < 10:
        return "IPMI v1.5 (short)"
    sseq, sid = struct.unpack_from("<II", body, 1)
    offset = 9 + (16 if auth else 0)
    if len(body) <= offset:
        return f"IPMI v1.5 auth {AUTH_TYPES.get(auth, auth)} (short)"
    length = body[offset]
    msg = body[offset + 1:offset + 1 + length]
    return (f"IPMI v1.5 auth {AUTH_TYPES.get(auth, hex(auth))} session 0x{sid:08X} seq {sseq}: "
            + _ipmb_summary(msg))
