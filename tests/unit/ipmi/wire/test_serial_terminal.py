"""Terminal Mode of the serial channel (IPMI 2.0 section 14.7), sans-I/O."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vhw.errors import DescriptionError
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import CC, Context, Privilege, Response
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.parts.serial import SerialConfig, SerialLogin
from vhw.ipmi.wire.serial_terminal import (
    TerminalCodec,
    TerminalMode,
    TerminalRequest,
    TextCommand,
    encode_response,
    parse_hex,
)

USERS = [{"id": 2, "name": "admin", "password": "secret", "privilege": "administrator"},
         {"id": 3, "name": "op", "password": "oppw", "privilege": "operator"}]


def make_mode(**serial) -> tuple[TerminalMode, list[Context]]:
    """A TerminalMode in front of a real Bmc, recording each request's Context (echo off by default)."""
    serial.setdefault("echo", False)
    bmc = create_bmc(BmcConfig.from_dict({"users": USERS}))
    config = SerialConfig.from_dict(serial)
    seen: list[Context] = []

    def dispatch(netfn, cmd, data, lun, privilege, user_id):
        ctx = Context(channel=config.channel, privilege=privilege, interface="serial", lun=lun, user_id=user_id)
        seen.append(ctx)
        return bmc.handle(netfn, cmd, data, ctx, now=0.0)

    return TerminalMode(dispatch, SerialLogin(config, bmc.parts["users"]), echo=config.echo), seen


def answer_lines(out: bytes) -> list[str]:
    """The bracketed lines of the output."""
    return [line for line in out.decode("ascii").split("\r\n") if line.startswith("[")]


# -- the message format (14.7.3, 14.7.4) ------------------------------------------------


def test_request_fields_table_14_8():
    """14.7.4: byte 1 is NetFn (7:2) / rsLUN (1:0), byte 2 rqSeq (7:2) / bridge (1:0), byte 3 the command."""
    _, events = TerminalCodec().feed(b"[18 0D 01 AA bb]\r")
    assert events == [TerminalRequest(netfn=0x06, lun=0, seq=3, bridge=1, cmd=0x01, data=b"\xaa\xbb")]


def test_hex_pairs_may_be_spaced_or_not_upper_or_lower_case():
    """14.7.3: hex-ASCII pairs, upper or lower case, optionally separated by spaces."""
    for text in (b"[180001]", b"[18 00 01]", b"[18  00 01]", b"[1800 01]"):
        _, events = TerminalCodec().feed(text)
        assert events == [TerminalRequest(6, 0, 0, 0, 1)], text
    assert parse_hex("aB cD") == b"\xab\xcd"
    assert parse_hex("1 80") is None  # a pair split by a space is no pair


def test_response_format_table_14_9():
    """14.7.4: the response carries NetFn+1 with the LUN, rqSeq/bridge, the command, then the CC."""
    req = TerminalRequest(netfn=0x06, lun=2, seq=5, bridge=1, cmd=0x01)
    assert encode_response(req, Response(0, b"\x20\x01")) == b"[1E 15 01 00 20 01]\r\n"


def test_get_device_id_through_the_dispatcher():
    """14.7: ``[18 00 01]`` is Get Device ID; the answer starts ``[1C 00 01 00``."""
    mode, seen = make_mode()
    lines = answer_lines(mode.feed(b"[18 00 01]\r\n"))
    assert lines[-1].startswith("[1C 00 01 00 20 ")
    assert seen[0].channel == 2 and seen[0].interface == "serial" and seen[0].privilege == Privilege.USER


def test_error_completion_code_passes_through():
    """14.7.4: the completion code is byte 4 of the response, whatever it is."""
    mode, _ = make_mode()
    assert answer_lines(mode.feed(b"[18 04 FF]\r"))[-1] == "[1C 04 FF C1]"


# -- input handling (14.7.6: echo and line editing) -------------------------------------


def test_echo_and_newline_and_no_double_newline():
    """14.7.6: characters are echoed; the answer starts on a new line (output newline CR-LF)."""
    echo, _ = TerminalCodec().feed(b"[18 00 01]\r\n")
    assert echo == b"[18 00 01]\r\n"
    echo, _ = TerminalCodec(echo=False).feed(b"[18 00 01]\r\n")
    assert echo == b""


def test_backspace_and_delete_edit_the_line():
    """14.7.6 line editing: <BS> and <DEL> delete the previous character (echo BS SP BS)."""
    codec = TerminalCodec()
    echo, events = codec.feed(b"[18 00 02\x08" + b"1\x7f1]")
    assert events == [TerminalRequest(6, 0, 0, 0, 1)]
    assert b"\b \b" in echo


def test_escape_cancels_the_message():
    """14.7.6: <ESC> deletes the message being typed."""
    codec = TerminalCodec()
    _, events = codec.feed(b"[18 00\x1b 01]")
    assert events == []
    assert codec.stats["cancelled"] == 1


def test_line_continuation():
    """14.7.6: a message may go on over several lines with a ``\\`` before the newline."""
    _, events = TerminalCodec().feed(b"[18 00\\\r\n 01]\r\n")
    assert events == [TerminalRequest(6, 0, 0, 0, 1)]


def test_characters_outside_brackets_are_ignored():
    """14.7.3: only what is between ``[`` and ``]`` is a message."""
    _, events = TerminalCodec().feed(b"hello\r\n  x[18 00 01] trailing\r\n")
    assert events == [TerminalRequest(6, 0, 0, 0, 1)]


@pytest.mark.parametrize("text,counter", [
    (b"[18 0G 01]", "dropped_bad_hex"),
    (b"[18 0]", "dropped_bad_hex"),
    (b"[18 00]", "dropped_too_short"),
    (b"[18 00 01\r", "dropped_unterminated"),
    (b"[18 \x01 00 01]", "dropped_bad_character"),
    (b"[18 00 [18 00 01]", "dropped_restarted"),
    (b"[" + b"00" * 200 + b"]", "dropped_too_long"),
])
def test_malformed_messages_are_dropped_and_counted(text, counter):
    """14.7.3: a message that is not hex-ASCII pairs in brackets gets no answer; vhw counts it."""
    codec = TerminalCodec()
    _, events = codec.feed(text)
    assert all(isinstance(e, TerminalRequest) and e.cmd == 1 for e in events)
    assert codec.stats[counter] == 1


def test_a_response_netfn_is_not_answered():
    """14.7.4: requests carry even NetFns; an odd one (a response) gets nothing back."""
    mode, _ = make_mode()
    assert answer_lines(mode.feed(b"[1C 00 01 00]\r")) == []
    assert mode.stats["dropped_response_netfn"] == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_input_never_raises(data):
    """14.7: whatever arrives on the line, the codec answers or drops it -- never raises."""
    mode, _ = make_mode()
    mode.feed(data)
    mode.feed(data + b"\r[18 00 01]\r")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0x3E).map(lambda n: n & ~1), st.integers(0, 3), st.integers(0, 63), st.integers(0, 3),
       st.integers(0, 255), st.binary(max_size=37))
def test_request_round_trip(netfn, lun, seq, bridge, cmd, data):
    """14.7.4: every request written as hex pairs parses back to the same fields."""
    req = TerminalRequest(netfn, lun, seq, bridge, cmd, data)
    line = b"[" + req.to_bytes().hex().encode() + b"]\r"
    assert TerminalCodec().feed(line)[1] == [req]


# -- text commands and the session (14.7.8, table 14-10) ----------------------------------


def test_text_commands_are_recognised_case_insensitively():
    """14.7.8: text commands are ``[SYS ...]``; the words after SYS are kept as typed."""
    assert TerminalCodec().feed(b"[sys pwd -U Admin PassWord]")[1] == [TextCommand(("pwd", "-U", "Admin", "PassWord"))]


def test_sys_tmode():
    """Table 14-10: SYS TMODE is a no-op that confirms Terminal Mode: ``[OK TMODE]``."""
    mode, _ = make_mode()
    assert answer_lines(mode.feed(b"[SYS TMODE]\r"))[-1] == "[OK TMODE]"


def test_default_privilege_is_user_and_sys_pwd_raises_it():
    """14.7.8: SYS PWD -U activates a session at the user's privilege limit; -X logs out.

    Without ``login_required`` the channel starts as if the null user were
    logged in at ``privilege`` (default USER): Chassis Control answers D4h.
    """
    mode, seen = make_mode()
    assert answer_lines(mode.feed(b"[00 00 02 00]\r"))[-1] == "[04 00 02 D4]"
    assert answer_lines(mode.feed(b"[SYS PWD -U admin secret]\r"))[-1] == "[OK]"
    mode.feed(b"[18 00 01]\r")
    assert seen[-1].privilege == Privilege.ADMINISTRATOR and seen[-1].user_id == 2
    assert answer_lines(mode.feed(b"[SYS PWD -X]\r"))[-1] == "[OK]"
    mode.feed(b"[18 00 01]\r")
    assert seen[-1].privilege == Privilege.USER and seen[-1].user_id is None


def test_operator_login_gets_operator():
    mode, seen = make_mode()
    assert answer_lines(mode.feed(b"[SYS PWD -U op oppw]\r"))[-1] == "[OK]"
    mode.feed(b"[18 00 01]\r")
    assert seen[-1].privilege == Privilege.OPERATOR


def test_wrong_password_logs_out_and_is_rate_limited():
    """14.7.8: an invalid password with -U or -N logs out any active session."""
    mode, seen = make_mode()
    assert answer_lines(mode.feed(b"[SYS PWD -U admin secret]\r"))[-1] == "[OK]"
    assert answer_lines(mode.feed(b"[SYS PWD -U admin wrong]\r"))[-1] == "[ERR]"
    mode.feed(b"[18 00 01]\r")
    assert seen[-1].privilege == Privilege.USER
    mode.feed(b"[SYS PWD -U admin wrong]\r[SYS PWD -N x]\r")
    # three failures in a row: even the right password is refused for a while
    assert answer_lines(mode.feed(b"[SYS PWD -U admin secret]\r"))[-1] == "[ERR]"
    assert mode.login.stats["login_locked"] == 1


def test_login_required_refuses_messages_before_sys_pwd():
    """14.7.8: SYS PWD must succeed before any command or IPMI message is accepted."""
    mode, _ = make_mode(login_required=True)
    assert answer_lines(mode.feed(b"[18 00 01]\r")) == []
    assert mode.stats["dropped_no_session"] == 1
    assert answer_lines(mode.feed(b"[SYS HEALTH QUERY]\r"))[-1] == "[ERR]"
    assert answer_lines(mode.feed(b"[SYS PWD -U admin secret]\r"))[-1] == "[OK]"
    assert answer_lines(mode.feed(b"[18 00 01]\r"))[-1].startswith("[1C 00 01 00")


def test_sys_health_query_terse():
    """Table 14-10: SYS HEALTH QUERY answers ``PWR:zzz H:xx ...``; vhw knows the power state."""
    mode, _ = make_mode()
    line = answer_lines(mode.feed(b"[SYS HEALTH QUERY]\r"))[-1]
    assert line.startswith("[OK PWR:OFF H:")


@pytest.mark.parametrize("text", [b"[SYS]", b"[SYS FOO]", b"[SYS PWD]", b"[SYS PWD -Q x]", b"[SYS PWD -U]"])
def test_bad_text_commands_answer_err(text):
    mode, _ = make_mode()
    assert answer_lines(mode.feed(text + b"\r"))[-1] == "[ERR]"


def test_sys_power_needs_operator():
    """Table 14-10: SYS POWER OFF is Chassis Control, privilege-checked by the one dispatcher."""
    mode, _ = make_mode()
    assert answer_lines(mode.feed(b"[SYS POWER OFF]\r"))[-1] == "[ERR]"
    mode.feed(b"[SYS PWD -U admin secret]\r")
    assert answer_lines(mode.feed(b"[SYS POWER OFF]\r"))[-1] == "[OK]"


# -- configuration -----------------------------------------------------------------------


def test_config_defaults_and_errors_name_the_key():
    assert SerialConfig.from_dict({}) == SerialConfig()
    assert BmcConfig.from_dict({"serial": {"mode": "basic", "device": "/dev/ttyS1"}}).serial.mode == "basic"
    assert BmcConfig.from_dict({}).serial is None
    for table, key in (({"mode": "fancy"}, "bmc.serial.mode"), ({"baud": 1234}, "bmc.serial.baud"),
                       ({"channel": 0x0F}, "bmc.serial.channel"), ({"privilege": "root"}, "bmc.serial.privilege"),
                       ({"echo": 1}, "bmc.serial.echo"), ({"devcie": "x"}, "bmc.serial.devcie"),
                       ({"device": ""}, "bmc.serial.device"),
                       ({"mode": "basic", "login_required": True}, "bmc.serial.login_required")):
        with pytest.raises(DescriptionError) as e:
            BmcConfig.from_dict({"serial": table})
        assert e.value.key == key
    with pytest.raises(DescriptionError):
        BmcConfig.from_dict({"serial": "terminal"})


def test_cli_spec():
    assert SerialConfig.from_spec("basic:pty") == SerialConfig(mode="basic")
    assert SerialConfig.from_spec("terminal:/dev/ttyS1", SerialConfig(baud=9600)).baud == 9600
    for bad in ("pty", "fancy:pty", "terminal:"):
        with pytest.raises(ValueError):
            SerialConfig.from_spec(bad)


def test_dispatch_failure_answers_ff():
    def broken(*args):
        raise RuntimeError("boom")

    mode = TerminalMode(broken)
    assert answer_lines(mode.feed(b"[18 00 01]\r"))[-1] == f"[1C 00 01 {CC.UNSPECIFIED:02X}]"
