"""OpenBIOS's ok prompt, driven over the serial console.

OpenBIOS never writes /options back to NVRAM (openprom-sparc.md §6), so what
a guest changed is read where it lives: at the ok prompt, after the guest
halted (Linux's halt calls the PROM's ``exit``; the prompt then reads
``2 >``).  This module types ``printenv`` and a small Forth program that
dumps the whole device tree by phandle, and parses both.

Facts it relies on (measured on QEMU 7.2's OpenBIOS 1.1, sun4u and SS-5):

* the prompt is ``\\n<stack depth> > `` (§11); a command's output ends with
  `` ok`` before it;
* the line editor keeps only the first 80 characters of a line (§11), so
  every line sent is checked first;
* ``printenv`` prints one ``name  "value"`` line per property of /options,
  or ``name  -- <len hex> : <hex bytes>`` for a value without a trailing
  NUL (such as a value Linux's OPIOCSET stored, §9).

The console has one reader (the machine's logger), which hands every chunk
to :meth:`OkPrompt.feed`; :class:`OkPrompt` writes through the callable it
was given.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from ..errors import VhwError
from .tree import PromTree

#: The line editor's width (OpenBIOS packages/cmdline.c).
MAX_LINE = 80
PROMPT = re.compile(rb"\n(\d+) > ")
#: Words OpenBIOS prints when a command fails.
ERRORS = re.compile(rb"undefined word|Unhandled Exception|Error|Stack Underflow", re.IGNORECASE)
TAIL = 64 * 1024

#: /options of a pristine OpenBIOS 1.1 as printenv shows it (measured with
#: QEMU 7.2 and no -prom-env; boot-file is the kernel command line, which
#: the machine layer accounts for).  A captured value equal to its default
#: is not stored unless the store already holds that option.
_COMMON_DEFAULTS = {
    "name": "options", "boot-from": "disk", "boot-args": "", "use-generic?": "false", "boot-script": "",
    "boot-screen": "", "load-base": "4000", "scroll-lock": "true", "skip-netboot?": "false",
    "default-mac-address": "false", "pci-probe-mask": "-1", "selftest-#megs": "0", "output-device": "ttya",
    "input-device": "ttya", "use-nvramrc?": "false", "oem-logo?": "false", "oem-banner": "",
    "oem-banner?": "false", "nvramrc": "", "fcode-debug?": "false", "diag-switch?": "false", "boot-file": "",
    "boot-command": "boot", "auto-boot?": "true",
}
FIRMWARE_DEFAULTS: dict[str, dict[str, str]] = {
    "sun4u": {**_COMMON_DEFAULTS, "boot-device": "disk:a", "little-endian?": "false", "screen-#rows": "24",
              "screen-#columns": "80"},
    "sun4m": {**_COMMON_DEFAULTS, "boot-device": "disk:a disk", "ttyb-rts-dtr-off": "false",
              "ttyb-ignore-cd": "true", "ttyb-mode": "9600,8,n,1,-", "ttya-rts-dtr-off": "false",
              "ttya-ignore-cd": "true", "ttya-mode": "9600,8,n,1,-", "tpe-link-test?": "true",
              "screen-#rows": "96", "screen-#columns": "128"},
}

#: Forth that prints the whole tree, by phandle, in hex; every line < 80.
#: ``@@fw node <ph> <parent>``, ``@@fw prop <ph> <namehex> <lenhex> <valuehex>``
#: (length -1 when the property cannot be read), ``@@fw end``.
TREE_DUMP = (
    "hex",
    ": vb ( b -- ) 0 <# # # #> type ;",
    ': vhx ( a n -- ) dup 0= if 2drop ." -" exit then bounds do i c@ vb loop ;',
    ": vph ( ph -- ) 0 <# #s #> type ;",
    ': vpr ( a n ph -- ) >r ." @@fw prop " r@ vph space 2dup vhx space',
    '  r> get-package-property if ." -1 -" else dup vph space vhx then cr ;',
    ": vps ( ph -- ) >r 0 0 begin r@ next-property while",
    "  2dup r@ vpr repeat r> drop ;",
    ': vnd ( ph par -- ) ." @@fw node " swap vph space vph cr ;',
    ": vww ( ph par -- ) 2dup vnd drop dup vps dup child",
    "  begin dup while 2dup swap recurse peer repeat 2drop ;",
)
TREE_RUN = '" /" find-package drop 0 vww ." @@fw end" cr'


class PromConsoleError(VhwError):
    """The ok prompt did not answer as expected."""


# ------------------------------------------------------------------ parsing

_PRINTENV_STRING = re.compile(r'^(\S+)\s+"(.*)"\s*$')
_PRINTENV_BYTES = re.compile(r"^(\S+)\s+--\s+([0-9a-fA-F]+)\s+:((?:\s+[0-9a-fA-F]{1,2})*)\s*$")


def parse_printenv(text: str | bytes) -> dict[str, bytes]:
    """``printenv`` output as property values.

    A quoted value is a string option, stored NUL-terminated (§5: an
    injected value reads back with its NUL), so it comes back with one; the
    ``-- len : hex`` form is exactly its bytes.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    values: dict[str, bytes] = {}
    for line in text.replace("\r", "").split("\n"):
        line = line.rstrip()
        m = _PRINTENV_BYTES.match(line)
        if m:
            raw = bytes(int(b, 16) for b in m.group(3).split())
            if len(raw) != int(m.group(2), 16):
                raise PromConsoleError(f"printenv line {line!r}: {len(raw)} bytes shown, length says "
                                       f"{int(m.group(2), 16)}")
            values[m.group(1)] = raw
            continue
        m = _PRINTENV_STRING.match(line)
        if m:
            values[m.group(1)] = m.group(2).encode("latin-1") + b"\0"
    return values


def parse_tree_dump(text: str | bytes) -> PromTree:
    """The tree :data:`TREE_DUMP` printed; node ids are the firmware's phandles."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    nodes: list[tuple[int, int, dict[str, bytes]]] = []
    ended = False
    for line in text.replace("\r", "").split("\n"):
        at = line.find("@@fw ")
        if at < 0:
            continue
        words = line[at:].split()
        try:
            if words[1] == "node":
                nodes.append((int(words[2], 16), int(words[3], 16), {}))
            elif words[1] == "prop":
                node, name, length = int(words[2], 16), bytes.fromhex(words[3]).decode("latin-1"), words[4]
                value = b"" if words[5] == "-" else bytes.fromhex(words[5])
                if length == "-1" or not nodes or nodes[-1][0] != node:
                    raise ValueError("property of an unknown or earlier node, or unreadable")
                if int(length, 16) != len(value):
                    raise ValueError(f"length {length} but {len(value)} bytes")
                nodes[-1][2][name] = value
            elif words[1] == "end":
                ended = True
        except (IndexError, ValueError) as e:
            raise PromConsoleError(f"tree dump line {line[at:at + 120]!r}: {e}") from None
    if not ended:
        raise PromConsoleError("the tree dump did not finish (no '@@fw end')")
    try:
        return PromTree.from_nodes(nodes)
    except ValueError as e:
        raise PromConsoleError(f"the tree dump is not a tree: {e}") from None


# ------------------------------------------------------------------ driving


class OkPrompt:
    """Commands at the ok prompt; bytes come in through :meth:`feed`."""

    def __init__(self, write: Callable[[bytes], None]):
        self._write = write
        self._buf = bytearray()
        self._changed = asyncio.Event()
        self._defined = False

    def feed(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > 4 * TAIL:
            del self._buf[:-TAIL]
        self._changed.set()

    def _tail(self) -> str:
        return bytes(self._buf[-2000:]).decode("latin-1").replace("\r", "")

    async def wait_prompt(self, timeout: float) -> int:
        """Wait for the next prompt; returns its stack depth.  What came
        before it is consumed."""
        m = await self._wait(PROMPT, timeout, "the ok prompt")
        depth = int(m.group(1))
        del self._buf[:m.end()]
        return depth

    async def _wait(self, pattern: re.Pattern, timeout: float, what: str) -> re.Match:
        async def find():
            while True:
                m = pattern.search(self._buf)
                if m:
                    return m
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise PromConsoleError(f"no {what} within {timeout:.0f} s; the console last said:\n"
                                   f"{self._tail()}") from None

    async def command(self, line: str, timeout: float = 30) -> str:
        """Type one line, return its output (the text up to the next prompt)."""
        if len(line) >= MAX_LINE:
            raise PromConsoleError(f"a line of {len(line)} characters would be cut at {MAX_LINE} by the "
                                   f"firmware's line editor: {line[:40]!r}...")
        if "\n" in line or "\r" in line:
            raise PromConsoleError("one line at a time")
        self._buf.clear()
        self._write(line.encode("latin-1") + b"\r")
        m = await self._wait(PROMPT, timeout, f"prompt after {line[:40]!r}")
        out = bytes(self._buf[:m.start()]).decode("latin-1").replace("\r", "")
        del self._buf[:m.end()]
        # The echo of the line; output may follow it on the same line.
        rest = out[len(line):] if out.startswith(line) else out.partition("\n")[2]
        if ERRORS.search(rest.encode("latin-1")):
            raise PromConsoleError(f"the firmware refused {line!r}:\n{rest.strip()}")
        return rest

    async def printenv(self) -> dict[str, bytes]:
        return parse_printenv(await self.command("printenv"))

    async def setenv(self, name: str, value: str) -> None:
        line = f"setenv {name} {value}"
        if len(line) >= MAX_LINE or not name or any(c.isspace() for c in name):
            raise PromConsoleError(
                f"setenv {name!r} cannot be typed at the ok prompt (one line under {MAX_LINE} characters, a "
                "name without spaces); store it with `vhw prom set` instead, which injects it with -prom-env")
        await self.command(line)

    async def dump_tree(self, timeout: float = 60) -> PromTree:
        if not self._defined:
            for line in TREE_DUMP:
                await self.command(line)
            self._defined = True
        return parse_tree_dump(await self.command(TREE_RUN, timeout))
