"""Hostile input through Bmc.handle: never an exception, always a sane answer.

DESIGN.md: "Every external input is hostile until parsed ... never an
exception that kills the process".  Bmc.handle turns a handler exception
into CC FFh, so FFh here means a handler bug, and the test fails on it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vhw.ipmi.core.assemble import command_table, create_bmc
from vhw.ipmi.core.bmc import Context, Privilege, Response
from vhw.ipmi.core.config import BmcConfig

#: Every command the assembled BMC answers: the table is built from the
#: command modules, without a configuration parsed first.
REGISTERED = [(c.netfn, c.cmd) for c in command_table()]
CONFIG = BmcConfig.from_dict({"satellites": [{"address": 0x40}, {"address": 0x72}]})

contexts = st.builds(
    Context,
    channel=st.sampled_from([0x00, 0x01, 0x0F, 0x05]),
    privilege=st.sampled_from(list(Privilege)),
    interface=st.sampled_from(["kcs", "bt", "ssif", "lan", "lanplus", "serial"]),
    lun=st.integers(0, 3),
    session_id=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
)

# Mostly commands that exist (to reach handler code), some that do not.
targets = st.one_of(
    st.sampled_from(REGISTERED),
    st.tuples(st.integers(0, 0x3F).map(lambda n: n & ~1), st.integers(0, 0xFF)),
)

#: Completion codes a BMC may answer (IPMI 2.0 table 5-2): normal, the
#: command-specific range 01h-7Eh/80h-BEh, and the generic C0h-D6h.
def valid_cc(cc: int) -> bool:
    return cc == 0 or 0x01 <= cc <= 0xBE or 0xC0 <= cc <= 0xD6


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=targets, data=st.binary(max_size=40), ctx=contexts)
def test_handle_never_raises_and_answers_a_valid_cc(target, data, ctx):
    bmc = create_bmc(CONFIG)
    netfn, cmd = target
    rsp = bmc.handle(netfn, cmd, data, ctx, 0.0)
    assert isinstance(rsp, Response)
    assert valid_cc(rsp.cc), f"NetFn {netfn:#x} cmd {cmd:#x} data {data.hex()} -> CC {rsp.cc:#x}"
    assert isinstance(rsp.data, bytes) and len(rsp.data) <= 255
    if rsp.cc != 0:
        assert rsp.data == b"", "an error completion code carries no data"


@settings(max_examples=150, deadline=None)
@given(requests=st.lists(st.tuples(targets, st.binary(max_size=24)), min_size=1, max_size=25))
def test_sequences_keep_attention_consistent_with_the_flags(requests):
    """Whatever happened, the attention level matches the message flags."""
    bmc = create_bmc(CONFIG)
    for (netfn, cmd), data in requests:
        assert valid_cc(bmc.handle(netfn, cmd, data, Context(), 0.0).cc)
    flags = bmc.parts["messaging"].flags()
    assert (bmc.attention_state().value == "none") == (flags == 0)


def test_the_fuzzer_draws_from_the_whole_table():
    """The targets are every row of the assembled BMC's table, known before any BMC exists."""
    assert sorted(REGISTERED) == sorted((c.netfn, c.cmd) for c in create_bmc(CONFIG).table)
    assert {(0x06, 0x01), (0x00, 0x02), (0x0A, 0x40), (0x06, 0x3B), (0x2C, 0x01)} <= set(REGISTERED)
