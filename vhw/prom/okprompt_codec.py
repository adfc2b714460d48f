"""OpenBIOS's ok prompt as text: what to type and how to read the answers.

OpenBIOS never writes /options back to NVRAM (openprom-sparc.md §6), so what
a guest changed is read where it lives: at the ok prompt, after the guest
halted (Linux's halt calls the PROM's ``exit``; the prompt then reads
``2 >``).  This module types ``printenv`` and a small Forth program that
dumps the whole device tree by phandle, and parses both.

Facts it relies on (measured on QEMU 7.2's OpenBIOS 1.1, sun4u and SS-5;
captures in tests/unit/prom/data/prom_*.txt):

* the prompt is ``\\n<stack depth> > `` (§11); it follows the echo of the
  line and its output.  A line that worked ends with ``ok`` (``compiled``
  inside an unfinished colon definition: the line was compiled, not run,
  and the prompt shows the compiler's depth); a failed one ends with the
  error instead
  (``foo: undefined word.``, ``Stack Underflow.``, ``Aborted.``,
  ``Invalid value.``), and the stack is *not* cleared.  A CPU trap prints
  ``Unhandled Exception ... Stopping execution`` and the prompt never
  comes back;
* the line editor keeps only the first 80 characters of a line (§11), so
  every line sent is checked first;
* ``printenv`` is ``.properties`` of /options: it ignores any argument, and
  prints one ``name  value`` line per property (the name padded to 26
  columns, one space after a longer name; no defaults column, no wrapping
  even for values of hundreds of bytes) with the value in one of five
  forms, chosen from its bytes: ``"text"`` (printable, one trailing NUL),
  ``{"a", "b"}`` (several NUL-terminated strings), ``<empty>`` (no bytes),
  a bare number (exactly 4 bytes that are not a string: one big-endian
  cell; signed on SS-5, ``-1``, unsigned on sun4u, ``ffffffff``), or
  ``-- <len> : <byte> <byte> ...``.  Numbers, lengths and bytes are
  printed in the *current* base, so printenv runs inside a word that sets
  hex and restores the base (:data:`PRINTENV`).

Sans-I/O: the lines to type (:func:`command_bytes`, :func:`setenv_line`),
the console text as it arrives (:class:`ConsoleScreen`: prompts, crashes)
and what the firmware answered (:func:`command_output`, :func:`parse_printenv`,
:func:`parse_tree_dump`).  The asyncio driver that types and waits is
:class:`vhw.prom.okprompt.OkPrompt`.
"""

from __future__ import annotations

import re

from ..errors import VhwError
from .tree import PromTree

#: The line editor's width (OpenBIOS packages/cmdline.c): a line must be shorter.
MAX_LINE = 80
PROMPT = re.compile(rb"\n(\d+) > ")
#: What a line that worked ends with.
_DONE = re.compile(r"(?:^|\s)ok\s*$")
#: What a line ends with when the firmware is inside a colon definition:
#: the line was compiled, not run.
_COMPILED = re.compile(r"(?:^|\s)compiled\s*$")
#: A CPU trap in the firmware: the prompt does not come back.
CRASH = re.compile(rb"Unhandled Exception 0x[0-9a-fA-F]+\r?\nPC = [^\n]*\n(?:[^\n]*\n)?Stopping execution")
TAIL = 64 * 1024

#: /options of a pristine OpenBIOS 1.1 as printenv shows it (measured with
#: QEMU 7.2 and no -prom-env at all, so auto-boot? is the real default;
#: captures tests/unit/prom/data/prom_*_pristine.txt; boot-file is the kernel
#: command line, which the machine layer accounts for).  A captured value equal to its default
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

#: Forth that prints the whole tree, by phandle, in hex; every line < 80
#: characters and one complete definition (a failed line leaves no
#: half-compiled word behind).  The words print in the current base, so
#: ``vhw-dump`` sets hex around them.  Output:
#: ``@@fw node <ph> <parent ph>`` (parent 0 for the root),
#: ``@@fw prop <ph> <name hex> <len> <value hex>`` (value ``-`` when empty;
#: ``-1 -`` if the property could not be read), and ``@@fw end``.
TREE_DUMP: tuple[str, ...] = (
    ": vhw-b ( byte -- ) 0 <# # # #> type ;",
    ': vhw-x ( a n -- ) dup 0= if 2drop ." -" exit then bounds do i c@ vhw-b loop ;',
    ": vhw-h ( u -- ) 0 <# #s #> type space ;",
    ': vhw-v get-package-property if ." -1 -" else dup vhw-h vhw-x then ;',
    ': vhw-p ( a n ph -- ) >r ." @@fw prop " r@ vhw-h 2dup vhw-x space r> vhw-v cr ;',
    ": vhw-s >r 0 0 begin r@ next-property while 2dup r@ vhw-p repeat r> drop ;",
    ': vhw-n ( ph par -- ph ) ." @@fw node " over vhw-h vhw-h cr dup vhw-s ;',
    ": vhw-t vhw-n dup child begin ?dup while 2dup swap recurse peer repeat drop ;",
    ': vhw-dump base @ hex " /" find-package drop 0 vhw-t ." @@fw end" cr base ! ;',
)
#: One word, so that on a firmware that lost the definitions (it was reset)
#: the line fails before it has pushed anything.
TREE_RUN = "vhw-dump"
#: printenv in hex, the base kept.  A word, because printenv takes the rest
#: of its line as an (ignored) argument: ``base @ hex printenv base !``
#: typed as a line would leave the old base on the stack.
PRINTENV_DEF: tuple[str, ...] = (": vhw-env base @ hex printenv base ! ;",)
PRINTENV = "vhw-env"


class PromConsoleError(VhwError):
    """The ok prompt did not answer as expected."""


# ------------------------------------------------------------------ parsing

_PE_LINE = re.compile(r"^(\S+) +(\S.*?) *$")
_PE_BYTES = re.compile(r"^-- ([0-9a-fA-F]+) :((?: [0-9a-fA-F]{2})*)$")
_PE_CELL = re.compile(r"^-?[0-9a-fA-F]{1,8}$")
_PE_SKIP = re.compile(r"^\s*(ok)?\s*$|^\d+ > ")


def parse_printenv(text: str | bytes) -> dict[str, bytes]:
    """``printenv`` output (what follows its echo) as property values.

    A quoted value is a string option, stored NUL-terminated (§5: an
    injected value reads back with its NUL), so it comes back with one; a
    string list with one NUL per string; ``<empty>`` as no bytes; a bare
    number (signed or not) as its 4-byte big-endian cell; the ``-- len : hex`` form as
    exactly its bytes.  Expects hex output (:data:`PRINTENV`).  Blank lines,
    ``ok`` and prompt lines are skipped; any other line it cannot read is
    an error, so no option is silently lost.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    values: dict[str, bytes] = {}
    for line in text.replace("\r", "").split("\n"):
        if _PE_SKIP.match(line):
            continue
        m = _PE_LINE.match(line)
        if not m:
            raise PromConsoleError(f"printenv line {line!r} is not 'name value'")
        name, shown = m.groups()
        values[name] = _printenv_value(name, shown)
    return values


def _printenv_value(name: str, shown: str) -> bytes:
    def fail(why: str) -> PromConsoleError:
        return PromConsoleError(f"printenv value of {name}: {why}: {shown!r}")

    if len(shown) >= 2 and shown[0] == '"' and shown[-1] == '"':
        return shown[1:-1].encode("latin-1") + b"\0"
    if len(shown) >= 4 and shown[:2] == '{"' and shown[-2:] == '"}':
        return b"".join(s.encode("latin-1") + b"\0" for s in shown[2:-2].split('", "'))
    if shown == "<empty>":
        return b""
    if _PE_CELL.match(shown):
        return (int(shown, 16) & 0xFFFFFFFF).to_bytes(4, "big")
    m = _PE_BYTES.match(shown)
    if m:
        raw = bytes(int(b, 16) for b in m.group(2).split())
        if len(raw) != int(m.group(1), 16):
            raise fail(f"{len(raw)} bytes shown but the length says {int(m.group(1), 16)}")
        return raw
    raise fail("not a value form printenv prints (was the base hex?)")


def parse_tree_dump(text: str | bytes) -> PromTree:
    """The tree :data:`TREE_RUN` printed (what follows its echo); node ids
    are the firmware's phandles.  Only lines that start with ``@@fw`` count."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    nodes: list[tuple[int, int, dict[str, bytes]]] = []
    ended = False
    for line in text.replace("\r", "").split("\n"):
        at = len(line) - len(line.lstrip())
        if not line.startswith("@@fw ", at):
            continue
        words = line[at:].split()
        try:
            if words[1] == "node":
                nodes.append((int(words[2], 16), int(words[3], 16), {}))
            elif words[1] == "prop":
                node, name, length = int(words[2], 16), bytes.fromhex(words[3]).decode("latin-1"), words[4]
                if length == "-1":
                    raise ValueError("the firmware could not read it")
                value = b"" if words[5] == "-" else bytes.fromhex(words[5])
                if not nodes or nodes[-1][0] != node:
                    raise ValueError("property of an unknown or earlier node")
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


# ------------------------------------------------------------------ typing and reading


#: Appended to a refusal of a value that cannot be typed at the prompt.
_SETENV_HINT = "; store it with `vhw prom set` instead, which injects it with -prom-env at the next start"


def command_bytes(line: str) -> bytes:
    """What to send for one command line: the line and a carriage return.

    Raises :class:`PromConsoleError` for a line the firmware would cut (80
    characters or more, §11) or that is not one printable ASCII line.
    """
    if len(line) >= MAX_LINE:
        raise PromConsoleError(f"a line of {len(line)} characters would be cut at {MAX_LINE} by the "
                               f"firmware's line editor; nothing was sent: {line[:40]!r}...")
    if not line.isprintable() or not line.isascii():
        raise PromConsoleError(f"one line of printable ASCII at a time; nothing was sent: {line[:40]!r}")
    return line.encode("ascii") + b"\r"


def command_output(line: str, text: str) -> str:
    """The output of ``line``, from ``text`` (the console between sending it
    and the next prompt): after the echo, without the final ``ok``.

    Raises :class:`PromConsoleError` when the line did not end with ``ok``
    (an error such as ``undefined word``, ``Stack Underflow``, ``Aborted``,
    ``Invalid value``; or ``compiled``: the firmware sits in an unfinished
    colon definition).
    """
    # The echo of the line; output follows it on the same line.
    rest = text[len(line):] if text.startswith(line) else text.partition("\n")[2]
    if _COMPILED.search(rest):
        raise PromConsoleError(f"the firmware compiled {line!r} instead of running it: it is inside an "
                               "unfinished colon definition (type ';' to end it)")
    done = _DONE.search(rest)
    if not done:
        raise PromConsoleError(f"the firmware refused {line!r}:\n{rest.strip() or '(no output, no ok)'}")
    return rest[:done.start()].strip(" ")


def setenv_line(name: str, value: str) -> str:
    """The line that sets option ``name`` to ``value``: ``setenv name value``
    (the value is the rest of the line after one space, leading and
    trailing spaces and quotes included, measured); an empty value goes
    through ``$setenv``, as ``setenv`` refuses it.  Raises
    :class:`PromConsoleError` when the value cannot be typed (not printable
    ASCII) or the line would not fit."""
    if not name or not name.isascii() or not name.isprintable() or " " in name or '"' in name or "=" in name:
        raise PromConsoleError(f"option name {name!r} cannot be typed at the ok prompt{_SETENV_HINT}")
    if not value.isascii() or not value.isprintable():
        raise PromConsoleError(f"the value {value!r} of {name} cannot be typed at the ok prompt (printable "
                               f"ASCII only){_SETENV_HINT}")
    line = f"setenv {name} {value}" if value else f'" " " {name}" $setenv'
    if len(line) >= MAX_LINE:
        raise PromConsoleError(f"setenv {name} ... is {len(line)} characters; the firmware's line editor "
                               f"keeps {MAX_LINE}{_SETENV_HINT}")
    return line


class ConsoleScreen:
    """The console text since the last prompt consumed, and its last words.

    Works at any stack depth (after a Linux halt the prompt reads ``2 >``).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._history = bytearray()  # the console's last words, for error messages

    def feed(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > 4 * TAIL:
            del self._buf[:-TAIL]
        self._history += data
        del self._history[:-2000]

    def discard(self) -> None:
        """Forget what came so far (before typing a line: its echo starts anew)."""
        self._buf.clear()

    def tail(self) -> str:
        """The console's last words, for error messages."""
        return bytes(self._history).decode("latin-1").replace("\r", "")

    def take_prompt(self, what: str) -> tuple[int, str] | None:
        """The first prompt not yet consumed: (its stack depth, the text
        before it), both consumed; None while no prompt has come.  Raises
        :class:`PromConsoleError` when the firmware crashed instead (the
        prompt would never come back); ``what`` names what was awaited."""
        m = PROMPT.search(self._buf)
        if m is None:
            if CRASH.search(self._buf):
                raise PromConsoleError(f"the firmware crashed while waiting for {what}; the console last "
                                       f"said:\n{self.tail()}")
            return None
        depth = int(m.group(1))  # before the buffer changes under the match
        text = bytes(self._buf[:m.start()]).decode("latin-1").replace("\r", "")
        del self._buf[:m.end()]
        return depth, text
