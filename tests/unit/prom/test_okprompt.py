"""The ok-prompt driver: parsers on real OpenBIOS captures, and OkPrompt
against a scripted console.

Captures (tests/unit/prom/data/prom_*.txt, raw serial bytes of QEMU 7.2's
OpenBIOS 1.1):

* ``prom_{sun4u,ss5}_pristine.txt``: a firmware started with no -prom-env at
  all (it tries to boot, fails, and prompts), then ``printenv``.
* ``prom_{sun4u,ss5}_forms_tree.txt``: started with ``auto-boot?=false``,
  ``my-var=hello world``, ``empty-var=``, a long name and a value with
  quotes; properties of every printenv value form added to /options from
  the prompt; then ``vhw-env`` (printenv) and the tree dump (definitions and
  ``vhw-dump``).
* ``prom_sun4u_errors.txt``: an undefined word, a stack underflow, an
  abort, a refused setenv, a value containing "Error", and a CPU trap.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from vhw.errors import VhwError
from vhw.prom.okprompt import OkPrompt
from vhw.prom.okprompt_codec import (
    FIRMWARE_DEFAULTS,
    MAX_LINE,
    PRINTENV,
    PRINTENV_DEF,
    TREE_DUMP,
    TREE_RUN,
    ConsoleScreen,
    PromConsoleError,
    command_bytes,
    command_output,
    parse_printenv,
    parse_tree_dump,
)

DATA = Path(__file__).parent / "data"


def capture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def output_of(raw: bytes, line: str) -> bytes:
    """What OkPrompt.command hands on for ``line`` in a capture: the bytes
    between the echo and the next prompt."""
    start = raw.index(b"> " + line.encode() + b" ") + 2 + len(line)
    end = re.compile(rb"\n\d+ > ").search(raw, start).start()
    return raw[start:end]


def nul(text: str) -> bytes:
    return text.encode() + b"\0"


# ------------------------------------------------------------------ printenv


@pytest.mark.parametrize("machine, family", [("sun4u", "sun4u"), ("ss5", "sun4m")])
def test_pristine_printenv_is_the_firmware_defaults(machine, family):
    values = parse_printenv(output_of(capture(f"prom_{machine}_pristine.txt"), "printenv"))
    assert values == {k: nul(v) for k, v in FIRMWARE_DEFAULTS[family].items()}
    assert values["auto-boot?"] == b"true\0"  # the real default: it tried to boot
    assert list(values)[0] == "name" and list(values)[-1] == "auto-boot?"


def test_firmware_defaults_differ_where_the_machines_do():
    u, m = FIRMWARE_DEFAULTS["sun4u"], FIRMWARE_DEFAULTS["sun4m"]
    assert (u["boot-device"], m["boot-device"]) == ("disk:a", "disk:a disk")
    assert (u["screen-#columns"], m["screen-#columns"]) == ("80", "128")
    assert "little-endian?" in u and "little-endian?" not in m
    assert m["ttya-mode"] == "9600,8,n,1,-" and "ttya-mode" not in u
    assert len(u) == 28 and len(m) == 34


@pytest.mark.parametrize("machine", ["sun4u", "ss5"])
def test_printenv_value_forms(machine):
    values = parse_printenv(output_of(capture(f"prom_{machine}_forms_tree.txt"), PRINTENV))
    assert values["auto-boot?"] == b"false\0"
    assert values["my-var"] == b"hello world\0"
    assert values["empty-var"] == b"\0"  # "" is one NUL (§5)
    assert values["a-very-long-option-name-indeed-xyz"] == b"v1\0"  # one space after a long name
    assert values["q"] == b'say "hi", ok\0'
    assert values["nonul"] == b"abc"  # -- 3 : 61 62 63
    assert values["zero"] == b""  # <empty>
    assert values["ctl"] == b"a\x01b\0"  # 4 bytes, not a string: a cell, 61016200
    assert values["slist"] == b"a\0b\0"  # {"a", "b"}
    assert values["intm1"] == b"\xff\xff\xff\xff"  # sun4u ffffffff, SS-5 -1
    assert values["int12"] == bytes([0, 0, 0, 1, 0, 0, 0, 2])
    assert values["z4"] == bytes(4)  # 0
    assert values["s2"] == b"a\0\0"  # {"a", ""}


def test_printenv_shows_the_cell_signed_on_ss5_and_unsigned_on_sun4u():
    assert b"intm1                     -1 \r\n" in capture("prom_ss5_forms_tree.txt")
    assert b"intm1                     ffffffff \r\n" in capture("prom_sun4u_forms_tree.txt")


def test_printenv_value_containing_error_is_a_value():
    values = parse_printenv(output_of(capture("prom_sun4u_errors.txt"), PRINTENV))
    assert values["err-var"] == b"Error here\0"


def test_printenv_long_values_are_one_line():
    text = 'long-var                  "' + "x" * 120 + '"\r\nb20                       -- 14 : ' + \
        " ".join(f"{b:02x}" for b in b"0123456789abcdefghij") + " \r\n ok"
    assert parse_printenv(text) == {"long-var": b"x" * 120 + b"\0", "b20": b"0123456789abcdefghij"}


@pytest.mark.parametrize("line, why", [
    ("b3                        -- 3 : 61 62 ", "2 bytes shown but the length says 3"),
    ("d                         -- 280 : 97 97 97", "3 bytes shown"),  # decimal base: caught
    ("what                      is this", "not a value form"),
    ("lonely", "not 'name value'"),
])
def test_printenv_refuses_what_it_cannot_read(line, why):
    with pytest.raises(PromConsoleError, match=why):
        parse_printenv(f' \r\nname                      "options"\r\n{line}\r\n ok\r\n')


def test_printenv_skips_blank_ok_and_prompt_lines():
    assert parse_printenv('\r\n\r\n0 > vhw-env \r\nx                         "1"\r\n ok\r\n2 > ') == {"x": b"1\0"}


# ----------------------------------------------------------------- tree dump


def test_forth_lines_fit_the_line_editor():
    for line in TREE_DUMP + PRINTENV_DEF + (TREE_RUN, PRINTENV):
        assert len(line) < MAX_LINE, line
        assert line.isascii() and line.isprintable()
    # each definition complete on its line: no half-compiled word is left behind
    for line in TREE_DUMP + PRINTENV_DEF:
        assert line.startswith(": ") and line.endswith(" ;")


@pytest.mark.parametrize("machine, count, root, options, eeprom, eeprom_path", [
    ("sun4u", 31, 0xFFE1C030, 0xFFE1C5E8, 0xFFE30288, "/pci/pci/ebus/eeprom"),
    ("ss5", 37, 0xFFD2C200, 0xFFD2C568, 0xFFD379F0, "/obio/eeprom"),
])
def test_tree_dump_capture(machine, count, root, options, eeprom, eeprom_path):
    raw = capture(f"prom_{machine}_forms_tree.txt")
    tree = parse_tree_dump(output_of(raw, TREE_RUN))
    assert len(tree.nodes) == count
    assert tree.root.node_id == root and tree.root.parent is None
    assert tree.options.node_id == options
    # the options node holds exactly what printenv showed, bytes and order
    printenv = parse_printenv(output_of(raw, PRINTENV))
    assert tree.options.properties == printenv
    assert list(tree.options.properties) == list(printenv)
    node = tree.find(eeprom_path)
    assert node.node_id == eeprom and node.name == "eeprom"
    assert node.properties["name"] == b"eeprom\0"
    assert node.properties["model"] == (b"mk48t59\0" if machine == "sun4u" else b"mk48t08\0")
    assert len(node.properties["address"]) == 4  # a virtual address, one cell on both
    # node ids are the phandles the firmware printed, parents as printed
    assert f"@@fw node {eeprom:x} {node.parent.node_id:x} ".encode() in raw


def test_tree_dump_root_name_and_children_in_firmware_order():
    tree = parse_tree_dump(output_of(capture("prom_sun4u_forms_tree.txt"), TREE_RUN))
    assert tree.root.name == "OpenBiosTeam,OpenBIOS"
    assert [c.name for c in tree.root.children][:5] == ["aliases", "openprom", "options", "chosen", "builtin"]
    assert tree.root.properties["#address-cells"] == b"\0\0\0\x02"


@pytest.mark.parametrize("text, why", [
    ("@@fw node 10 0\n@@fw prop 10 6e616d65 2 61\n@@fw end\n", "length 2 but 1 bytes"),
    ("@@fw node 10 0\n@@fw prop 11 6e616d65 1 61\n@@fw end\n", "unknown or earlier node"),
    ("@@fw node 10 0\n@@fw prop 10 6e616d65 -1 -\n@@fw end\n", "could not read"),
    ("@@fw node 10 0\n@@fw node 11 12\n@@fw end\n", "not a tree"),
    ("@@fw node 10 0\n@@fw prop 10 6e616d65 1 61\n", "did not finish"),
    ("@@fw node 10 zz\n@@fw end\n", "tree dump line"),
])
def test_tree_dump_refuses_broken_output(text, why):
    with pytest.raises(PromConsoleError, match=why):
        parse_tree_dump(text)


def test_tree_dump_empty_values_and_echo_lines():
    text = ('0 > : vhw-p ( a n ph -- ) >r ." @@fw prop " r@ vhw-h  ok\r\n'
            " @@fw node 10 0 \r\n@@fw prop 10 6e616d65 2 6100 \r\n@@fw prop 10 78 0 - \r\n@@fw end\r\n")
    tree = parse_tree_dump(text)
    assert tree.root.properties == {"name": b"a\0", "x": b""}


# ------------------------------------------------------- the screen, no loop


def test_screen_hands_out_prompts_in_order_without_an_event_loop():
    """The codec alone: console bytes in, (depth, text before the prompt) out."""
    screen = ConsoleScreen()
    assert screen.take_prompt("the ok prompt") is None
    screen.feed(b"Welcome to OpenBIOS\r\n0 > dev /options  ok\r\n2 ")
    assert screen.take_prompt("the ok prompt") == (0, "Welcome to OpenBIOS")
    assert screen.take_prompt("the ok prompt") is None          # "2 " is not a prompt yet
    screen.feed(b"> ")
    depth, text = screen.take_prompt("the ok prompt")
    assert (depth, command_output("dev /options", text)) == (2, "")
    screen.feed(b"\r\nUnhandled Exception 0x0000000000000030\r\nPC = 0x00000000ffd24c5c NPC = x\r\n"
                b"Stopping execution\r\n")
    with pytest.raises(PromConsoleError, match="crashed while waiting for the ok prompt"):
        screen.take_prompt("the ok prompt")


def test_command_bytes_and_output_rules():
    assert command_bytes("printenv") == b"printenv\r"
    with pytest.raises(PromConsoleError, match="nothing was sent"):
        command_bytes("y" * MAX_LINE)
    assert command_output(".s", ".s <2> 1 2 \n ok") == "<2> 1 2 \n"
    with pytest.raises(PromConsoleError, match="refused 'foo'"):
        command_output("foo", "foo \nfoo: undefined word.\n")
    with pytest.raises(PromConsoleError, match="compiled"):
        command_output(": x", ": x  compiled")


# ------------------------------------------------------------------ OkPrompt


class FakeConsole:
    """A scripted ok prompt: echoes each line the way OpenBIOS does and
    answers from ``answers`` (line -> bytes after the echo, up to and
    including the next prompt); unknown lines answer ``  ok``."""

    def __init__(self, answers: dict[str, bytes] | None = None, depth: int = 0):
        self.answers = dict(answers or {})
        self.depth = depth
        self.lines: list[str] = []
        self.ok = OkPrompt(self.write)
        self.silent = False

    def write(self, data: bytes) -> None:
        assert data.endswith(b"\r") and data.count(b"\r") == 1
        line = data[:-1].decode()
        self.lines.append(line)
        if self.silent:
            return
        answer = self.answers.get(line, f"  ok\r\n{self.depth} > ".encode())
        if callable(answer):
            answer = answer()
        loop = asyncio.get_running_loop()
        # the firmware answers later, in pieces
        loop.call_soon(self.ok.feed, data[:-1])
        for i in range(0, len(answer), 7):
            loop.call_soon(self.ok.feed, answer[i:i + 7])


def run(coro):
    return asyncio.run(coro)


def test_wait_prompt_returns_the_depth_and_consumes():
    async def go():
        con = FakeConsole()
        con.ok.feed(b"Welcome to OpenBIOS v1.1\r\n  Type 'help' for detailed information\r\n\r\n0 > ")
        assert await con.ok.wait_prompt(1) == 0
        con.ok.feed(b"[    1.0] reboot: System halted\r\n\r\n2 > ")
        assert await con.ok.wait_prompt(1) == 2
        with pytest.raises(PromConsoleError, match="no the ok prompt within 0.1 s"):
            await con.ok.wait_prompt(0.1)  # both consumed

    run(go())


def test_command_returns_the_output_between_echo_and_prompt():
    async def go():
        con = FakeConsole({".s": b" <2> 1 2 \r\n ok\r\n2 > ", '." Error"': b" Error ok\r\n0 > "}, depth=2)
        assert await con.ok.command("dev /options") == ""
        assert await con.ok.command(".s") == "<2> 1 2 \n"
        assert await con.ok.command('." Error"') == "Error"  # a word in the output is not an error
        assert con.lines == ["dev /options", ".s", '." Error"']

    run(go())


def test_command_refuses_long_lines_before_sending():
    async def go():
        con = FakeConsole()
        assert await con.ok.command("x" * (MAX_LINE - 1)) == ""
        with pytest.raises(PromConsoleError, match="80 characters would be cut at 80.*nothing was sent"):
            await con.ok.command("y" * MAX_LINE)
        with pytest.raises(PromConsoleError, match="nothing was sent"):
            await con.ok.command("a\rb")
        with pytest.raises(PromConsoleError, match="nothing was sent"):
            await con.ok.command("caf\u00e9")
        assert con.lines == ["x" * (MAX_LINE - 1)]

    run(go())


def test_command_timeout_names_the_line_and_the_console_text():
    async def go():
        con = FakeConsole({"printenv": b" \r\nname                      \"opt"})
        con.silent = True
        con.ok.feed(b"Trying disk:a...\r\n")
        with pytest.raises(PromConsoleError) as e:
            await con.ok.command("printenv", timeout=0.1)
        assert isinstance(e.value, VhwError)
        assert str(e.value) == ("no prompt after 'printenv' within 0.1 s; the console last said:\n"
                                "Trying disk:a...\n")
        con.silent = False
        with pytest.raises(PromConsoleError) as e:
            await con.ok.command("printenv", timeout=0.1)
        assert str(e.value) == ("no prompt after 'printenv' within 0.1 s; the console last said:\n"
                                'Trying disk:a...\nprintenv \nname                      "opt')

    run(go())


def answer_of(raw: bytes, line: str) -> bytes:
    """What the firmware sent after the echo of ``line``, up to and including the next prompt."""
    out = output_of(raw, line)
    start = raw.index(out)
    return out + re.compile(rb"\n\d+ > ").search(raw, start + len(out) - 1).group()


def answers_from(raw: bytes, lines) -> dict[str, bytes]:
    return {line: answer_of(raw, line) for line in lines}


@pytest.mark.parametrize("line, message", [
    ("foo", "refused 'foo':\nfoo: undefined word."),
    ("drop", "refused 'drop':\nStack Underflow."),
    ("-1 throw", "refused '-1 throw':\nAborted."),
    ("setenv auto-boot? maybe", "Invalid value. Aborted."),
])
def test_command_detects_firmware_errors_from_the_capture(line, message):
    raw = capture("prom_sun4u_errors.txt")
    answer = answer_of(raw, line)

    async def go():
        con = FakeConsole({line: answer})
        with pytest.raises(PromConsoleError) as e:
            await con.ok.command(line)
        assert message in str(e.value)

    run(go())


def test_command_detects_a_crash_at_once():
    raw = capture("prom_sun4u_errors.txt")
    crash = raw[raw.index(b"3 0 /") + 5:]
    assert b"Unhandled Exception" in crash and b"\n0 > " not in crash

    async def go():
        con = FakeConsole({"3 0 /": crash})
        t = asyncio.get_running_loop().time()
        with pytest.raises(PromConsoleError, match="(?s)crashed.*Stopping execution"):
            await con.ok.command("3 0 /", timeout=20)
        assert asyncio.get_running_loop().time() - t < 5

    run(go())


def test_command_refuses_compiled():
    async def go():
        con = FakeConsole({"1 2": b"  compiled\r\n2 > "})
        with pytest.raises(PromConsoleError, match="unfinished colon definition"):
            await con.ok.command("1 2")

    run(go())


def test_printenv_and_dump_tree_from_the_capture_define_once():
    raw = capture("prom_sun4u_forms_tree.txt")
    answers = answers_from(raw, TREE_DUMP + PRINTENV_DEF + (TREE_RUN, PRINTENV))

    async def go():
        con = FakeConsole(answers, depth=2)
        values = await con.ok.printenv()
        assert values["my-var"] == b"hello world\0" and values["empty-var"] == b"\0"
        tree = await con.ok.dump_tree()
        assert tree.options.properties == values
        assert con.lines == list(PRINTENV_DEF) + [PRINTENV] + list(TREE_DUMP) + [TREE_RUN]
        con.lines.clear()
        await con.ok.printenv()
        assert len((await con.ok.dump_tree()).nodes) == 31
        assert con.lines == [PRINTENV, TREE_RUN]  # defined once

    run(go())


def test_dump_tree_redefines_after_a_firmware_reset():
    raw = capture("prom_sun4u_forms_tree.txt")
    answers = answers_from(raw, TREE_DUMP + (TREE_RUN,))
    dump = answers[TREE_RUN]
    state = {"calls": 0}

    def run_answer():
        state["calls"] += 1
        return b"vhw-dump: undefined word.\r\n0 > " if state["calls"] == 2 else dump

    answers[TREE_RUN] = run_answer

    async def go():
        con = FakeConsole(answers)
        await con.ok.dump_tree()
        con.lines.clear()
        assert len((await con.ok.dump_tree()).nodes) == 31
        assert con.lines == [TREE_RUN] + list(TREE_DUMP) + [TREE_RUN]

    run(go())


def test_setenv_lines_and_refusals():
    async def go():
        con = FakeConsole({"setenv auto-boot? maybe": b" Invalid value. Aborted.\r\n0 > "})
        await con.ok.setenv("my-var", "bye now")
        await con.ok.setenv("empty-var", "")  # setenv refuses an empty value; $setenv takes it
        await con.ok.setenv("tw", ' x "q" ')  # the rest of the line after one space, as it is
        assert con.lines == ["setenv my-var bye now", '" " " empty-var" $setenv', 'setenv tw  x "q" ']
        with pytest.raises(PromConsoleError, match="Invalid value"):
            await con.ok.setenv("auto-boot?", "maybe")
        con.lines.clear()
        fits = "v" * (MAX_LINE - 1 - len("setenv n "))
        await con.ok.setenv("n", fits)
        with pytest.raises(PromConsoleError, match=r"80 characters.*-prom-env"):
            await con.ok.setenv("n", fits + "v")
        for name, value in [("a b", "x"), ("", "x"), ("a=b", "x"), ('a"', "x"), ("n", "a\nb"), ("n", "caf\u00e9")]:
            with pytest.raises(PromConsoleError, match="vhw prom set"):
                await con.ok.setenv(name, value)
        assert con.lines == [f"setenv n {fits}"]

    run(go())
