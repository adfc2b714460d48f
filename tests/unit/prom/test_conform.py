"""The conformance report: guest observations judged against the seed's model.

Seed 004 (openprom(4)): "If no such property is associated with that node,
the value length is set to -1"; "OPIOCNEXTPROP ... The resulting name is
returned in the value field"; "[EBADF] The requested operation requires
permissions not specified at the call to open()"; "[ENAMETOOLONG] The given
name or value field exceeds the maximum allowed length (8191 bytes)".
"""

from __future__ import annotations

import errno

import pytest

from vhw.prom.conform import ReportError, build_report, compare_trees, parse_guest_output
from vhw.prom.tree import PromTree

ROOT, OPTIONS, CPU = 0xFFD0, 0xFFD8, 0xFFE0


def h(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return raw.hex() or "-"


def tree_lines(node_prop=True, options=(("name", b"options\0"), ("my-var", b"initial\0"))):
    out = [f"@@vhw node {ROOT:x} parent=0"]
    props = {ROOT: [("name", b"SUNW,Ultra-5\0")], OPTIONS: list(options),
             CPU: [("name", b"cpu\0"), ("clock", (100).to_bytes(4, "big")), ("idle", b"")]}
    for node, parent in ((OPTIONS, ROOT), (CPU, ROOT)):
        out.append(f"@@vhw node {node:x} parent={parent:x}")
    for node in (ROOT, OPTIONS, CPU):
        items = ([(".node", node.to_bytes(4, "big"))] if node_prop else []) + props[node]
        for name, value in items:
            out.append(f"@@vhw prop {node:x} {h(name)} {len(value)} {h(value)}")
    return out


def op(seq, label, ioctl, *, fd="rw", node=0, name=b"", inlen=0, value=None, rc=0, err=0, outnode=0,
       outlen=0, out=b"", extra=""):
    return (f"@@vhw op {seq} {label} {ioctl} fd={fd} node={node:x} name={h(name)} inlen={inlen} "
            f"value={'-' if value is None else h(value)} rc={rc} errno={err} outnode={outnode:x} "
            f"outlen={outlen} out={h(out)}{extra}")


def firmware_tree(options=(("name", b"options\0"), ("my-var", b"initial\0"))):
    return PromTree.from_nodes([
        (ROOT, 0, {"name": b"SUNW,Ultra-5\0"}), (OPTIONS, ROOT, dict(options)),
        (CPU, ROOT, {"name": b"cpu\0", "clock": (100).to_bytes(4, "big"), "idle": b""})])


def run_text(ops, final=None):
    lines = ["kernel noise", "@@vhw begin arch=sparc64 token=t1", *tree_lines(), *ops]
    for name, value in (final or [("my-var", b"initial\0")]):
        lines.append(f"@@vhw final {OPTIONS:x} {h(name)} {len(value)} {h(value)}")
    lines.append(f"@@vhw end ops={len(ops)}")
    return "\r\n".join(lines)


def report(ops, final=None, fw_options=None, stored=None, arch="sparc64"):
    run = parse_guest_output(run_text(ops, final).replace("arch=sparc64", f"arch={arch}"))
    return build_report(run, machine="sun4u", firmware_tree=firmware_tree(),
                        firmware_options=fw_options or {"my-var": b"initial\0"},
                        stored=stored if stored is not None else {"my-var": "initial"})


def verdicts(rep):
    return [(c["check"], c["verdict"], c.get("finding")) for c in rep["checks"]]


def test_a_guest_that_follows_the_seed_passes():
    ops = [
        op(1, "getoptnode", "OPIOCGETOPTNODE", outnode=OPTIONS),
        op(2, "getnext-zero", "OPIOCGETNEXT", node=0, outnode=ROOT),
        op(3, "getchild-zero", "OPIOCGETCHILD", node=0, rc=-1, err=errno.EINVAL),
        op(4, "get-missing", "OPIOCGET", node=OPTIONS, name=b"nope", inlen=64, outlen=-1),
        op(5, "get-empty", "OPIOCGET", node=CPU, name=b"idle", inlen=64, outlen=0),
        op(6, "nextprop-first", "OPIOCNEXTPROP", node=CPU, name=b"", inlen=64, outlen=5, out=b".node"),
        op(7, "set-readonly-fd", "OPIOCSET", fd="ro", node=OPTIONS, name=b"my-var", value=b"x",
           rc=-1, err=errno.EBADF),
        op(8, "get-name-8192", "OPIOCGET", node=OPTIONS, name=b"a" * 8192, inlen=64, rc=-1, err=errno.ENAMETOOLONG),
        op(9, "set-existing", "OPIOCSET", node=OPTIONS, name=b"my-var", value=b"new"),
        op(10, "get-after-set", "OPIOCGET", node=OPTIONS, name=b"my-var", inlen=64, outlen=4, out=b"new\0"),
    ]
    rep = report(ops, final=[("my-var", b"new\0")], fw_options={"my-var": b"new\0"})
    assert [v for _, v, _ in verdicts(rep)] == ["conforms"] * 10, verdicts(rep)
    assert rep["passed"] and rep["summary"]["differs"] == 0
    assert rep["options"][0] == {"check": "option-injected", "option": "my-var", "stored": "initial",
                                 "guest": h(b"initial\0"), "verdict": "conforms"}
    assert [f["name"] for f in rep["findings"]] == ["synthetic-node-property"]


def test_linux_deviations_are_named_findings_with_evidence():
    ops = [
        op(1, "get-missing", "OPIOCGET", node=OPTIONS, name=b"nope", inlen=64, rc=-1, err=errno.EINVAL),
        # Linux returns the next property's value (the 4-byte .node), op_buflen untouched
        op(2, "nextprop-first", "OPIOCNEXTPROP", node=CPU, name=b"", inlen=8, outlen=8,
           out=CPU.to_bytes(4, "big") + b"\0" * 4),
        op(3, "set-existing", "OPIOCSET", node=OPTIONS, name=b"my-var", value=b"new"),
        op(4, "get-after-set", "OPIOCGET", node=OPTIONS, name=b"my-var", inlen=64, outlen=3, out=b"new"),
        op(5, "set-new-name", "OPIOCSET", node=OPTIONS, name=b"brand-new", value=b"x", rc=-1, err=errno.ENODEV),
        op(6, "get-name-8192", "OPIOCGET", node=OPTIONS, name=b"a" * 1024, inlen=64, rc=-1, err=errno.EINVAL,
           extra=" truncated=1 namelen=8192"),
        op(7, "get-small-buffer", "OPIOCGET", node=OPTIONS, name=b"my-var", inlen=2, rc=-1, err=errno.EINVAL),
    ]
    rep = report(ops, final=[("my-var", b"new")], fw_options={"my-var": b"new"})
    assert verdicts(rep) == [
        ("get-missing", "finding", "get-missing-property"),
        ("nextprop-first", "finding", "nextprop-returns-value"),
        ("set-existing", "conforms", None),
        ("get-after-set", "finding", "set-stores-no-nul"),
        ("set-new-name", "finding", "set-cannot-create"),
        ("get-name-8192", "finding", "no-name-length-limit"),
        ("get-small-buffer", "finding", "get-small-buffer-einval"),
    ]
    assert rep["passed"]
    found = {f["name"]: f for f in rep["findings"]}
    assert found["get-missing-property"]["by"] == "linux-6.1" and found["get-missing-property"]["checks"] == [1]
    assert "openprom.c" in found["get-small-buffer-einval"]["evidence"]


def test_the_sparc32_firmware_refusal_is_openbios_not_linux():
    ops = [op(1, "set-existing", "OPIOCSET", node=OPTIONS, name=b"my-var", value=b"new", rc=-1, err=errno.EINVAL),
           op(2, "get-after-set", "OPIOCGET", node=OPTIONS, name=b"my-var", inlen=64, outlen=8, out=b"initial\0")]
    rep = report(ops, arch="sparc32")
    assert verdicts(rep) == [("set-existing", "finding", "sparc32-setprop-stub"), ("get-after-set", "conforms", None)]
    assert rep["findings"][0]["by"] == "openbios-1.1"
    # the same refusal on sparc64 has no excuse
    assert verdicts(report(ops))[0] == ("set-existing", "differs", None)


def test_unexplained_differences_fail_the_report():
    ops = [op(1, "getnext-zero", "OPIOCGETNEXT", node=0, outnode=CPU),
           op(2, "get-empty", "OPIOCGET", node=CPU, name=b"idle", inlen=64, outlen=1, out=b"\0")]
    rep = report(ops)
    assert [v for _, v, _ in verdicts(rep)] == ["differs", "differs"] and not rep["passed"]
    assert rep["checks"][0]["expected"]["node"] == f"{ROOT:x}"


def test_options_must_match_the_store_and_the_firmware():
    rep = report([], stored={"my-var": "something-else"}, fw_options={"my-var": b"other\0"})
    assert [o["verdict"] for o in rep["options"]] == ["differs", "differs"] and not rep["passed"]


def test_an_unfinished_run_and_a_wrong_count_are_problems():
    text = run_text([op(1, "getoptnode", "OPIOCGETOPTNODE", outnode=OPTIONS)])
    run = parse_guest_output(text.replace("@@vhw end ops=1", "@@vhw fatal open /dev/openprom: errno 2"))
    rep = build_report(run, machine="sun4u", firmware_tree=firmware_tree(), firmware_options={}, stored={})
    assert not rep["passed"] and rep["problems"][0].startswith("the program did not finish")
    run = parse_guest_output(text.replace("ops=1", "ops=3"))
    rep = build_report(run, machine="sun4u", firmware_tree=firmware_tree(), firmware_options={}, stored={})
    assert "printed 1" in rep["problems"][0]


def test_tree_differences_by_node_id():
    guest = parse_guest_output("\n".join(tree_lines())).tree()
    fw = PromTree.from_nodes([(ROOT, 0, {"name": b"SUNW,Ultra-5\0"}), (OPTIONS, ROOT, {}),
                              (CPU, ROOT, {"name": b"cpu\0", "clock": (200).to_bytes(4, "big"), "idle": b""}),
                              (0xFFF0, CPU, {"name": b"extra\0"})])
    kinds = sorted((d["kind"], d.get("property", "")) for d in compare_trees(guest, fw))
    assert ("property", "clock") in kinds and ("missing-in-guest", "") in kinds
    assert kinds.count(("linux-synthetic-property", ".node")) == 2  # options node is compared separately


def test_garbage_lines_are_a_clear_error():
    with pytest.raises(ReportError, match="line 2"):
        parse_guest_output("ok\n@@vhw node zz parent=0\n")
