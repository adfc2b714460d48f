"""Terminal Mode (IPMI 2.0 section 14.7), sans-I/O.

A Terminal Mode message is printable ASCII between ``[`` and ``]``: hex-ASCII
byte pairs, upper or lower case, optionally separated by spaces (14.7.3).
A request is

    [NetFn/rsLUN  rqSeq/Bridge  Cmd  Data...]

the first byte NetFn (bits 7:2) and responder LUN (1:0), the second the
requester's sequence number (7:2) and the bridge field (1:0), and the
response carries the same fields back with the response NetFn, then the
completion code (14.7.4, table 14-8/14-9):

    [NetFn/rqLUN  rqSeq/Bridge  Cmd  CC  Data...]

so ``[18 00 01]`` (Get Device ID) is answered ``[1C 00 01 00 ...]``.  Text
commands (14.7.8, table 14-10) are the same brackets holding ``SYS ...``.

Input handling (14.7.6, Terminal Mode Configuration defaults): characters
are echoed; <BS> and <DEL> delete the previous character (echoed as
backspace-space-backspace); <ESC> deletes the whole message; a ``\\``
right before the newline continues a message on the next line; characters
outside brackets are ignored.  The output newline is CR-LF.

``TerminalCodec`` turns bytes into events and echo; ``TerminalMode`` answers
them through a dispatch callable (the one ``Bmc`` dispatcher behind the
runner).  Nothing here raises on bad input: a malformed message is dropped
and counted in ``stats``, a bad text command is answered ``[ERR]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable

from ..core.bmc import CC, Privilege, Response
from ..parts.serial import SerialLogin

START, STOP = ord("["), ord("]")
BS, DEL, ESC, CR, LF = 0x08, 0x7F, 0x1B, 0x0D, 0x0A
CONTINUATION = ord("\\")
NEWLINE = b"\r\n"
#: Longest message body kept: the 40-byte messages every Terminal Mode BMC
#: must take (14.7.3) written with a space between pairs need 119
#: characters; twice that leaves room for sloppy spacing.
MAX_BODY = 256
MIN_REQUEST = 3  # NetFn/LUN, seq/bridge, cmd


@dataclass(frozen=True)
class TerminalRequest:
    """One IPMI request message (table 14-8)."""

    netfn: int
    lun: int
    seq: int
    bridge: int
    cmd: int
    data: bytes = b""

    def to_bytes(self) -> bytes:
        return bytes([(self.netfn << 2) | self.lun, (self.seq << 2) | self.bridge, self.cmd]) + self.data


@dataclass(frozen=True)
class TextCommand:
    """``[SYS ...]``: the words after SYS, as typed (case kept for passwords)."""

    words: tuple[str, ...]


Event = TerminalRequest | TextCommand


def parse_hex(body: str) -> bytes | None:
    """Hex-ASCII pairs, optionally space-separated; None if anything else is there."""
    out = bytearray()
    for token in body.split():
        if len(token) % 2 or not all(c in "0123456789abcdefABCDEF" for c in token):
            return None
        out += bytes.fromhex(token)
    return bytes(out)


def hex_line(raw: bytes, newline: bytes = NEWLINE) -> bytes:
    """``[AA BB ...]`` plus the output newline."""
    return b"[" + " ".join(f"{b:02X}" for b in raw).encode("ascii") + b"]" + newline


def encode_response(req: TerminalRequest, rsp: Response, newline: bytes = NEWLINE) -> bytes:
    """The response message to ``req`` (table 14-9): response NetFn, same LUN/seq/bridge/cmd."""
    head = bytes([((req.netfn | 1) << 2) | req.lun, (req.seq << 2) | req.bridge, req.cmd, rsp.cc & 0xFF])
    return hex_line(head + rsp.data, newline)


def encode_text(text: str, newline: bytes = NEWLINE) -> bytes:
    return b"[" + text.encode("ascii", "replace") + b"]" + newline


class TerminalCodec:
    """Bytes in -> (echo bytes, events).  Never raises; drops are counted in ``stats``."""

    def __init__(self, *, echo: bool = True, max_body: int = MAX_BODY) -> None:
        self.echo = echo
        self.max_body = max_body
        self.stats: dict[str, int] = {}
        self._body = bytearray()
        self._in_message = False
        #: Inside a message that is already lost (too long, bad character):
        #: swallow up to its ']' or the end of the line.
        self._discarding = False
        self._last = 0
        #: The line was just ended by a message's ']': the newline after it is
        #: not echoed again (the answer already started a fresh line).
        self._line_done = False

    def feed(self, data: bytes) -> tuple[bytes, list[Event]]:
        echo = bytearray()
        events: list[Event] = []
        for b in bytes(data):
            self._byte(b, echo, events)
            self._last = b
        return bytes(echo) if self.echo else b"", events

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _reset(self) -> None:
        self._body.clear()
        self._in_message = False
        self._discarding = False

    def _byte(self, b: int, echo: bytearray, events: list[Event]) -> None:
        if b in (CR, LF):
            if b == LF and self._last == CR:
                return  # CR-LF is one newline
            if self._in_message and self._body.endswith(b"\\"):
                del self._body[-1]  # line continuation (14.7.6)
                echo += NEWLINE
                return
            if self._in_message and not self._discarding:
                self._count("dropped_unterminated")
            self._reset()
            if not self._line_done:
                echo += NEWLINE
            self._line_done = False
            return
        self._line_done = False
        if b == ESC:
            if self._in_message:
                self._count("cancelled")
            self._reset()
            echo += NEWLINE
            return
        if b in (BS, DEL):
            if self._in_message and not self._discarding:
                if self._body:
                    self._body.pop()
                else:
                    self._in_message = False  # deleted the '['
                echo += b"\b \b"
            return
        if b >= 0x80 or b < 0x20:
            if self._in_message and not self._discarding:
                self._count("dropped_bad_character")
                self._discarding = True
            return
        echo.append(b)
        if b == START:
            if self._in_message and not self._discarding:
                self._count("dropped_restarted")
            self._body.clear()
            self._in_message = True
            self._discarding = False
            return
        if not self._in_message:
            return  # outside brackets: ignored
        if b == STOP:
            if not self._discarding:
                event = self._message(self._body.decode("ascii"))
                if event is not None:
                    events.append(event)
            self._reset()
            echo += NEWLINE
            self._line_done = True
            return
        if self._discarding:
            return
        if len(self._body) >= self.max_body:
            self._count("dropped_too_long")
            self._discarding = True
            return
        self._body.append(b)

    def _message(self, body: str) -> Event | None:
        words = body.split()
        if words and words[0].upper() == "SYS":
            return TextCommand(tuple(words[1:]))
        raw = parse_hex(body)
        if raw is None:
            self._count("dropped_bad_hex")
            return None
        if len(raw) < MIN_REQUEST:
            self._count("dropped_too_short")
            return None
        return TerminalRequest(raw[0] >> 2, raw[0] & 3, raw[1] >> 2, raw[1] & 3, raw[2], raw[3:])


#: Dispatch one request: (netfn, cmd, data, lun, privilege) -> Response.
Dispatch = Callable[[int, int, bytes, int, Privilege, "int | None"], Response]

_CHASSIS_CONTROL = {("POWER", "OFF"): 0x00, ("POWER", "ON"): 0x01, ("POWER", "CYCLE"): 0x02, ("RESET",): 0x03}


@dataclass
class TerminalMode:
    """The Terminal Mode side of a serial channel: bytes in, bytes out.

    ``dispatch`` answers IPMI requests (the server passes the runner); the
    caller acts on queued BMC actions after writing the output.
    """

    dispatch: Dispatch
    login: SerialLogin = field(default_factory=SerialLogin)
    echo: bool = True
    clock: Callable[[], float] = lambda: 0.0

    def __post_init__(self) -> None:
        self.codec = TerminalCodec(echo=self.echo)
        self.stats = self.codec.stats

    def feed(self, data: bytes) -> bytes:
        echo, events = self.codec.feed(data)
        out = bytearray(echo)
        for event in events:
            if isinstance(event, TextCommand):
                out += encode_text(self._text(event))
            else:
                out += self._request(event)
        return bytes(out)

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _request(self, req: TerminalRequest) -> bytes:
        if not self.login.active:
            self._count("dropped_no_session")  # 14.7.8: SYS PWD first
            return b""
        if req.netfn & 1:
            self._count("dropped_response_netfn")  # a response is not a request: nothing to answer
            return b""
        try:
            rsp = self.dispatch(req.netfn, req.cmd, req.data, req.lun, self.login.privilege, self.login.user_id)
        except Exception:  # the dispatcher promises not to raise; the channel must answer anyway
            rsp = Response(CC.UNSPECIFIED)
        return encode_response(req, rsp)

    # -- text commands (14.7.8, table 14-10) --------------------------------------
    def _text(self, cmd: TextCommand) -> str:
        words = cmd.words
        upper = tuple(w.upper() for w in words)
        if upper[:1] == ("PWD",):
            return self._pwd(words[1:])
        if upper == ("TMODE",):
            return "OK TMODE"
        if not self.login.active:
            self._count("text_no_session")
            return "ERR"
        if upper == ("HEALTH", "QUERY"):
            return self._health()
        if upper == ("IDENTIFY",):
            return self._ok(0x00, 0x04, b"")
        if upper[1:] and upper[0] == "IDENTIFY" and upper[1:] in (("-S",), ("ON",)):
            return self._ok(0x00, 0x04, b"\x00\x01")
        control = _CHASSIS_CONTROL.get(upper)
        if control is not None:
            return self._ok(0x00, 0x02, bytes([control]))
        self._count("text_unknown")
        return "ERR"

    def _pwd(self, args: tuple[str, ...]) -> str:
        flag = args[0].upper() if args else ""
        if flag == "-X" and len(args) == 1:
            self.login.logout()
            return "OK"
        if flag == "-N" and len(args) <= 2:
            ok = self.login.login(None, args[1] if len(args) == 2 else "", self.clock())
        elif flag == "-U" and 2 <= len(args) <= 3:
            ok = self.login.login(args[1], args[2] if len(args) == 3 else "", self.clock())
        else:
            self._count("text_bad_pwd")
            return "ERR"
        return "OK" if ok else "ERR"

    def _ok(self, netfn: int, cmd: int, data: bytes) -> str:
        rsp = self.dispatch(netfn, cmd, data, 0, self.login.privilege, self.login.user_id)
        return "OK" if rsp.cc == CC.OK else "ERR"

    def _health(self) -> str:
        """``PWR:zzz H:xx ...`` (terse); only the power state is known here, the rest ``??``."""
        rsp = self.dispatch(0x00, 0x01, b"", 0, self.login.privilege, self.login.user_id)
        if rsp.cc != CC.OK or not rsp.data:
            return "ERR"
        power = "ON" if rsp.data[0] & 1 else "OFF"
        return f"OK PWR:{power} H:?? T:?? V:?? PS:?? C:?? D:?? S:?? O:??"

