"""The openprom conformance report: a guest's answers against the seed's model.

The in-guest program (guest-images/src/openprom_conform.c) walks the tree and
runs every ioctl of openprom(4) (the 4.4BSD openprom(4) manual)
and the Sun ``OPROM*`` calls, printing what it passed and what came back as
``@@vhw`` lines.  This module parses those lines, replays every call in order
against :mod:`vhw.prom.tree`'s model (built from the tree the guest saw), and
gives each call a verdict:

* ``conforms``: the guest got what the seed says;
* ``finding``: it got something else, and that difference is a named,
  recorded deviation of the OS or the firmware (:data:`DEVIATIONS`, with its
  evidence); the report names it per OS and firmware;
* ``differs``: a difference nobody has explained: a failure.

It also compares the guest's tree with the tree vhw reads from the firmware
at the ok prompt, and the options with the store.  Pure: text in, report out.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

from .tree import (LINUX_DEVIATIONS, O_RDONLY, O_RDWR, OPENBIOS_DEVIATIONS, Deviation, OpenpromDevice, OpromReply,
                   PromTree, SunOpenpromDevice)

PREFIX = "@@vhw "
#: The calls that change the tree (the rest only read it).
WRITES = ("OPIOCSET", "OPROMSETOPT", "OPROMSETOPT2")

# -------------------------------------------------------------- guest output


@dataclass(frozen=True)
class Op:
    """One ioctl as the guest made it and what came back."""

    seq: int
    label: str
    ioctl: str
    fd: str
    node: int
    name: bytes
    inlen: int
    value: bytes | None
    rc: int
    errno: int
    outnode: int
    outlen: int
    out: bytes
    #: Some field was cut to keep the line short (its length is then in
    #: ``namelen``/``valuelen`` when the guest printed them).
    truncated: bool = False
    namelen: int | None = None
    valuelen: int | None = None

    @property
    def bsd(self) -> bool:
        return self.ioctl.startswith("OPIOC")


@dataclass
class GuestRun:
    """Everything one run of the conformance program printed."""

    arch: str = ""
    token: str = ""
    nodes: list[tuple[int, int]] = field(default_factory=list)
    props: dict[int, dict[str, tuple[int, bytes]]] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    final: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    final_node: int = 0
    notes: list[str] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)
    ended: bool = False
    end_ops: int | None = None

    def tree(self) -> PromTree:
        """The tree as the guest saw it (properties with a value)."""
        return PromTree.from_nodes(
            (nid, parent, {n: v for n, (length, v) in self.props.get(nid, {}).items() if length >= 0})
            for nid, parent in self.nodes)


class ReportError(ValueError):
    """The guest's output cannot be read as a conformance run."""


def _hex(text: str) -> bytes:
    return b"" if text == "-" else bytes.fromhex(text)


def _fields(words: Iterable[str]) -> dict[str, str]:
    out = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep:
            out[key] = value
    return out


def parse_guest_output(text: str | bytes) -> GuestRun:
    """Collect the ``@@vhw`` lines out of a console log (other lines are ignored)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    run = GuestRun()
    for number, raw in enumerate(text.replace("\r", "").split("\n"), 1):
        at = raw.find(PREFIX)
        if at < 0:
            continue
        line = raw[at + len(PREFIX):].strip()
        kind, _, rest = line.partition(" ")
        words = rest.split()
        try:
            _parse_line(run, kind, rest, words)
        except (ValueError, IndexError, KeyError) as e:
            raise ReportError(f"console line {number}: cannot read {line[:120]!r}: {e}") from None
    return run


def _parse_line(run: GuestRun, kind: str, rest: str, words: list[str]) -> None:
    if kind == "begin":
        f = _fields(words)
        run.arch, run.token = f["arch"], f.get("token", "")
    elif kind == "node":
        run.nodes.append((int(words[0], 16), int(_fields(words[1:])["parent"], 16)))
    elif kind in ("prop", "final"):
        node, name, length, value = int(words[0], 16), _hex(words[1]).decode("latin-1"), int(words[2]), _hex(words[3])
        if kind == "prop":
            run.props.setdefault(node, {})[name] = (length, value)
        else:
            run.final_node = node
            run.final[name] = (length, value)
    elif kind == "op":
        f = _fields(words[3:])
        shown = f.get("value", "-")
        run.ops.append(Op(
            seq=int(words[0]), label=words[1], ioctl=words[2], fd=f["fd"], node=int(f.get("node", "0"), 16),
            name=_hex(f.get("name", "-")), inlen=int(f.get("inlen", "0")),
            value=None if shown == "-" else _hex(shown), rc=int(f["rc"]), errno=int(f["errno"]),
            outnode=int(f.get("outnode", "0"), 16), outlen=int(f.get("outlen", "0")), out=_hex(f.get("out", "-")),
            truncated=f.get("truncated") == "1",
            namelen=int(f["namelen"]) if "namelen" in f else None,
            valuelen=int(f["valuelen"]) if "valuelen" in f else None))
    elif kind == "note":
        run.notes.append(rest)
    elif kind == "fatal":
        run.fatal.append(rest)
    elif kind == "end":
        run.ended = True
        run.end_ops = int(_fields(words)["ops"])


# ------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Answer:
    """What a call returned, in the terms both sides can be compared in."""

    errno: int
    outnode: int | None = None
    outlen: int | None = None
    out: bytes | None = None

    def describe(self) -> dict:
        d = {"errno": self.errno, "errname": errno.errorcode.get(self.errno, "0") if self.errno else "0"}
        if self.outnode is not None:
            d["node"] = f"{self.outnode:x}"
        if self.outlen is not None:
            d["len"] = self.outlen
        if self.out is not None:
            d["value"] = self.out.hex()
        return d


def _full(field_bytes: bytes, length: int | None) -> bytes:
    """A field the guest printed cut short, padded back to its length (the
    program fills long fields with one repeated byte)."""
    if length is None or length <= len(field_bytes):
        return field_bytes
    pad = field_bytes[-1:] or b"a"
    return field_bytes + pad * (length - len(field_bytes))


class Model:
    """The seed's openprom over the guest's initial tree, one descriptor per mode."""

    def __init__(self, tree: PromTree):
        self.tree = tree
        #: Nodes a successful SET wrote to ("nodes" -> ids).
        self.written: dict[str, set[int]] = {}
        self.bsd = {"rw": OpenpromDevice(tree, O_RDWR), "ro": OpenpromDevice(tree, O_RDONLY)}
        self.sun = {"rw": SunOpenpromDevice(tree, O_RDWR), "ro": SunOpenpromDevice(tree, O_RDONLY)}

    def expect(self, op: Op) -> Answer | None:
        """The seed's answer to ``op``; None for calls the model does not define.

        Asking leaves the tree as it was: a write reaches it through
        :func:`_apply`, as the guest's PROM really took it.
        """
        if op.ioctl not in WRITES:
            return self._expect(op)
        saved = {nid: dict(node.properties) for nid, node in self.tree.nodes.items()}
        try:
            return self._expect(op)
        finally:
            for nid, props in saved.items():
                self.tree.nodes[nid].properties = props

    def _expect(self, op: Op) -> Answer | None:
        name = _full(op.name, op.namelen)
        value = _full(op.value or b"", op.valuelen)
        if op.bsd:
            dev = self.bsd[op.fd]
            if op.ioctl == "OPIOCGETOPTNODE":
                err, options = dev.get_opt_node()
                return Answer(err, outnode=options)
            if op.ioctl in ("OPIOCGETNEXT", "OPIOCGETCHILD"):
                err, node = (dev.get_next if op.ioctl == "OPIOCGETNEXT" else dev.get_child)(op.node)
                return Answer(err, outnode=node if not err else None)
            if op.ioctl in ("OPIOCGET", "OPIOCNEXTPROP"):
                err, res = (dev.get if op.ioctl == "OPIOCGET" else dev.next_prop)(op.node, name, op.inlen)
                return Answer(err) if err or res is None else Answer(0, outlen=res.buflen, out=res.buf)
            if op.ioctl == "OPIOCSET":
                return Answer(dev.set(op.node, name, value)[0])
            return None
        sun = self.sun[op.fd]
        cname = name.rstrip(b"\0")
        calls: dict[str, Callable[[bytes, int], tuple[int, OpromReply | None]]] = {
            "OPROMGETOPT": sun.getopt, "OPROMNXTOPT": sun.nxtopt, "OPROMGETPROP": sun.getprop,
            "OPROMNXTPROP": sun.nxtprop, "OPROMGETPROPLEN": sun.getproplen,
        }
        if op.ioctl in calls:
            err, reply = calls[op.ioctl](cname, op.inlen)
            return Answer(err) if err or reply is None else Answer(0, outlen=reply.size, out=reply.array[:reply.size])
        if op.ioctl in ("OPROMNEXT", "OPROMCHILD", "OPROMSETCUR"):
            target = int.from_bytes(op.name[:4], "big") if len(op.name) >= 4 else op.node
            step = {"OPROMNEXT": sun.next, "OPROMCHILD": sun.child, "OPROMSETCUR": sun.setnodeid}[op.ioctl]
            err, out = step(target, op.inlen)
            if op.ioctl == "OPROMSETCUR" and not err:
                out = target  # the node made current is handed back (Linux's OPROMSETCUR)
            return Answer(err, outnode=out if not err else None)
        if op.ioctl in ("OPROMSETOPT", "OPROMSETOPT2"):
            text, _, val = name.partition(b"\0")
            return Answer((sun.setopt if op.ioctl == "OPROMSETOPT" else sun.setopt2)(text, val)[0])
        return None


def observed(op: Op) -> Answer:
    """The guest's answer, cut to what the model's answer holds."""
    err = op.errno if op.rc < 0 else 0
    if err:
        return Answer(err)
    if op.ioctl in ("OPIOCGETOPTNODE", "OPIOCGETNEXT", "OPIOCGETCHILD", "OPROMNEXT", "OPROMCHILD",
                    "OPROMSETCUR"):
        return Answer(0, outnode=op.outnode)
    if op.ioctl in WRITES:
        return Answer(0)
    return Answer(0, outlen=op.outlen, out=op.out[:max(op.outlen, 0)])


def agrees(expected: Answer, got: Answer, op: Op) -> bool:
    if expected == got:
        return True
    # A value the guest printed cut short agrees when its prefix does.
    return (op.truncated and expected.errno == got.errno and expected.outlen == got.outlen
            and expected.out is not None and got.out is not None and expected.out.startswith(got.out))


# --------------------------------------------------------------- deviations


@dataclass(frozen=True)
class Context:
    """What a deviation rule may look at."""

    op: Op
    expected: Answer
    got: Answer
    model: Model
    arch: str

    @property
    def prop_value(self) -> bytes | None:
        node = self.model.tree.nodes.get(self.op.node)
        return node.properties.get(self.op.name.decode("latin-1")) if node else None


def _linux_get_missing(c: Context) -> bool:
    return (c.op.ioctl == "OPIOCGET" and c.expected == Answer(0, outlen=-1, out=b"")
            and c.got.errno == errno.EINVAL)


def _linux_nextprop_value(c: Context) -> bool:
    """The value of the property whose name the seed returns, op_buflen untouched."""
    if c.op.ioctl != "OPIOCNEXTPROP" or c.expected.errno or c.got.errno:
        return False
    node = c.model.tree.nodes[c.op.node]
    following = (c.expected.out or b"").decode("latin-1")
    value = node.properties.get(following, b"") if following else b""
    want = value[:c.op.inlen]
    got = c.got.out or b""
    return c.got.outlen == c.op.inlen and got[:len(want)] == want and not got[len(want):].strip(b"\0")


def _linux_set_no_nul(c: Context) -> bool:
    """A GET of a value a SET wrote: the seed's value has the NUL, Linux's not."""
    exp, got = c.expected, c.got
    return (c.op.ioctl == "OPIOCGET" and not exp.errno and not got.errno and exp.out is not None
            and exp.out.endswith(b"\0") and got.out == exp.out[:-1]
            and exp.outlen is not None and got.outlen == exp.outlen - 1
            and c.op.node in c.model.written.get("nodes", set()))


def _linux_set_cannot_create(c: Context) -> bool:
    return (c.op.ioctl == "OPIOCSET" and c.expected.errno == 0 and c.got.errno == errno.ENODEV
            and c.prop_value is None)


def _linux_no_length_limit(c: Context) -> bool:
    long = max(len(_full(c.op.name, c.op.namelen)), len(_full(c.op.value or b"", c.op.valuelen)))
    return c.op.bsd and long > 8191 and c.expected.errno == errno.ENAMETOOLONG and c.got.errno != errno.ENAMETOOLONG


def _linux_get_small_buffer(c: Context) -> bool:
    value = c.prop_value
    return (c.op.ioctl == "OPIOCGET" and value is not None and len(value) > c.op.inlen
            and c.expected.errno == 0 and c.got.errno == errno.EINVAL)


def _openbios_sparc32_setprop(c: Context) -> bool:
    return (c.arch == "sparc32" and c.op.ioctl in WRITES
            and c.expected.errno == 0 and c.got.errno == errno.EINVAL)


#: Further Linux 6.1 differences, read in drivers/sbus/char/openprom.c and
#: seen on both machines.
_OPENPROM_C = "Linux 6.1 drivers/sbus/char/openprom.c"

LINUX_EXTRA_DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "get-small-buffer-einval", "OPIOCGET",
        "a value longer than the buffer: the 4.4BSD driver copies op_buflen bytes ('the counts are "
        "updated to reflect the buffer contents'); openprom-sparc.md §9's reference table says ENOMEM",
        "EINVAL",
        _OPENPROM_C + " opiocget(): 'if (!pval || len > op.op_buflen) err = -EINVAL'",
    ),
    Deviation(
        "bad-node-is-end-of-list", "OPIOCGETNEXT/OPIOCGETCHILD",
        "EINVAL: 'The given node number is not zero and does not correspond to any valid node'",
        "success with node 0, as if the walk had ended",
        _OPENPROM_C + " opiocgetnext(): of_find_node_by_phandle() fails, nd stays 0, returns 0",
    ),
    Deviation(
        "nextprop-unknown-name-is-end", "OPIOCNEXTPROP",
        "EINVAL for a previous name the node does not have (the BSD drivers; openprom-sparc.md §9)",
        "success with nothing copied and op_buflen unchanged, as after the last property",
        _OPENPROM_C + " opiocnextprop(): of_find_property() gives NULL, len = 0, returns 0",
    ),
    Deviation(
        "sun-child-zero-einval", "OPROMCHILD",
        "node 0 has no child: success with node 0 (illumos)",
        "EINVAL",
        _OPENPROM_C + " opromnext(): for node 0 'if (cmd != OPROMNEXT) return -EINVAL'",
    ),
    Deviation(
        "empty-property-unreadable", "OPIOCGET",
        "a property with no value: success, length 0 ('If the named property exists but has no value, "
        "the value length is set to 0.')",
        "EINVAL, as for a missing property: the kernel's copy of a zero-length property has no value",
        "drivers/of/pdt.c of_pdt_build_one_prop() leaves value NULL when the length is 0; "
        + _OPENPROM_C + " opiocget(): '!pval' gives -EINVAL",
    ),
    Deviation(
        "sun-no-getproplen", "OPROMGETPROPLEN",
        "the property's length (SunOS/illumos OPROMGETPROPLEN)",
        "EINVAL: Linux implements no OPROMGETPROPLEN",
        _OPENPROM_C + " openprom_sunos_ioctl(): unknown commands give -EINVAL",
    ),
    Deviation(
        "sun-setopt2-unterminated", "OPROMSETOPT2",
        "illumos refuses a value without a NUL (EINVAL)",
        "stores the bytes after the name's NUL as they are, no NUL needed",
        _OPENPROM_C + " opromsetopt(): len = oprom_array + bufsize - value, no check",
    ),
)

def _linux_bad_node(c: Context) -> bool:
    return (c.op.ioctl in ("OPIOCGETNEXT", "OPIOCGETCHILD") and c.op.node not in c.model.tree.nodes
            and c.expected.errno == errno.EINVAL and c.got == Answer(0, outnode=0))


def _linux_nextprop_unknown(c: Context) -> bool:
    return (c.op.ioctl == "OPIOCNEXTPROP" and c.expected.errno == errno.EINVAL and not c.got.errno
            and c.got.outlen == c.op.inlen and not (c.got.out or b"").strip(b"\0"))


def _linux_sun_child_zero(c: Context) -> bool:
    return c.op.ioctl == "OPROMCHILD" and c.op.node == 0 and c.got.errno == errno.EINVAL and not c.expected.errno


def _linux_empty_unreadable(c: Context) -> bool:
    return (c.op.ioctl == "OPIOCGET" and c.prop_value == b"" and c.got.errno == errno.EINVAL
            and not c.expected.errno)


def _linux_no_getproplen(c: Context) -> bool:
    return c.op.ioctl == "OPROMGETPROPLEN" and c.got.errno == errno.EINVAL


def _linux_setopt2_unterminated(c: Context) -> bool:
    value = c.op.name.partition(b"\0")[2]
    return (c.op.ioctl == "OPROMSETOPT2" and b"\0" not in value and c.expected.errno == errno.EINVAL
            and c.got.errno == 0)


_RULES: dict[str, Callable[[Context], bool]] = {
    "bad-node-is-end-of-list": _linux_bad_node,
    "nextprop-unknown-name-is-end": _linux_nextprop_unknown,
    "sun-no-getproplen": _linux_no_getproplen,
    "sun-child-zero-einval": _linux_sun_child_zero,
    "empty-property-unreadable": _linux_empty_unreadable,
    "sun-setopt2-unterminated": _linux_setopt2_unterminated,
    "get-missing-property": _linux_get_missing,
    "nextprop-returns-value": _linux_nextprop_value,
    "set-stores-no-nul": _linux_set_no_nul,
    "set-cannot-create": _linux_set_cannot_create,
    "no-name-length-limit": _linux_no_length_limit,
    "get-small-buffer-einval": _linux_get_small_buffer,
    "sparc32-setprop-stub": _openbios_sparc32_setprop,
}

#: (who, deviation) for every deviation a rule can recognise.
DEVIATIONS: tuple[tuple[str, Deviation], ...] = tuple(
    [("linux-6.1", d) for d in LINUX_DEVIATIONS + LINUX_EXTRA_DEVIATIONS]
    + [("openbios-1.1", d) for d in OPENBIOS_DEVIATIONS])


def classify(c: Context) -> tuple[str, Deviation] | None:
    """The recorded deviation that explains a difference, if any.

    The firmware's rules come first: on sparc32 a SET fails in OpenBIOS
    before Linux's own rules could matter.
    """
    for who, deviation in sorted(DEVIATIONS, key=lambda wd: wd[0] != "openbios-1.1"):
        rule = _RULES.get(deviation.name)
        if rule is not None and rule(c):
            return who, deviation
    return None


# ------------------------------------------------------------------- report


def _apply(model: Model, op: Op, got: Answer) -> None:
    """Carry a successful write into the model as the guest's PROM took it,
    so later reads are judged against the real state."""
    if got.errno or op.ioctl not in WRITES:
        return
    options = model.tree.options
    if options is None:
        return
    if op.ioctl == "OPIOCSET":
        name, value = _full(op.name, op.namelen), _full(op.value or b"", op.valuelen)
        node = model.tree.nodes.get(op.node, options)
    else:
        name, _, value = op.name.partition(b"\0")
        value = value.split(b"\0", 1)[0] + b"\0" if op.ioctl == "OPROMSETOPT" else value
        node = options
    key = name.decode("latin-1")
    if op.ioctl == "OPIOCSET" and key in node.properties:
        node.properties[key] = value + b"\0"  # the seed's semantics; Linux's shows at the next GET
    elif key in node.properties:
        node.properties[key] = value
    model.written.setdefault("nodes", set()).add(node.node_id)


def judge(run: GuestRun) -> list[dict]:
    """Every op with its verdict, in order."""
    model = Model(run.tree())
    verdicts = []
    for op in run.ops:
        expected = model.expect(op)
        got = observed(op)
        entry = {"seq": op.seq, "check": op.label, "ioctl": op.ioctl, "fd": op.fd,
                 "observed": got.describe()}
        if expected is None:
            entry.update(verdict="differs", reason="the model has no such call")
        elif agrees(expected, got, op):
            entry.update(verdict="conforms", expected=expected.describe())
        else:
            entry["expected"] = expected.describe()
            match = classify(Context(op, expected, got, model, run.arch))
            if match is None:
                entry.update(verdict="differs")
            else:
                entry.update(verdict="finding", finding=match[1].name, by=match[0])
                if match[1].name == "set-stores-no-nul" and got.out is not None:
                    model.tree.nodes[op.node].properties[op.name.decode("latin-1")] = got.out
        _apply(model, op, got)
        verdicts.append(entry)
    return verdicts


def compare_trees(guest: PromTree, firmware: PromTree, *, skip_options: bool = True,
                  unreadable: Mapping[int, set[str]] | None = None, by: str = "id") -> list[dict]:
    """Differences between the guest's tree and the firmware's, by node id
    (``by="position"`` for a tree read at another start, whose phandles
    moved: /chosen's boot-time properties are then expected to differ).

    Linux adds a ``.node`` property (the phandle) to every node
    (drivers/of/pdt.c), and cannot read zero-length ones (``unreadable``:
    names the guest listed but could not GET): each is reported as its
    own finding, not a difference.
    """
    unreadable = unreadable or {}
    diffs: list[dict] = []
    options_id = guest.options.node_id if guest.options else None
    by_position = {_position(n): n for n in firmware.walk()} if by == "position" else {}
    for node_id, node in guest.nodes.items():
        fw = firmware.nodes.get(node_id) if by == "id" else by_position.get(_position(node))
        if fw is None:
            diffs.append({"node": f"{node_id:x}", "path": node.path, "kind": "missing-in-firmware"})
            continue
        gparent = node.parent.node_id if node.parent else 0
        fparent = fw.parent.node_id if fw.parent else 0
        if by == "id" and gparent != fparent:
            diffs.append({"node": f"{node_id:x}", "path": node.path, "kind": "parent",
                          "guest": f"{gparent:x}", "firmware": f"{fparent:x}"})
        if skip_options and node_id == options_id:
            continue
        for name in sorted(set(node.properties) | set(fw.properties)):
            g, f = node.properties.get(name), fw.properties.get(name)
            if g == f:
                continue
            if name == ".node" and f is None:
                kind = "linux-synthetic-property"
            elif by == "position" and node.path == "/chosen":
                kind = "set-at-boot"  # the firmware fills /chosen when it boots the kernel
            elif g is None and f == b"" and name in unreadable.get(node_id, ()):
                kind = "linux-empty-property-unreadable"
            else:
                kind = "property"
            diffs.append({"node": f"{node_id:x}", "path": node.path, "kind": kind, "property": name,
                          "guest": None if g is None else g.hex(), "firmware": None if f is None else f.hex()})
    seen = {_position(n) for n in guest.walk()} if by == "position" else guest.nodes.keys()
    for fw in firmware.walk():
        if (_position(fw) if by == "position" else fw.node_id) not in seen:
            diffs.append({"node": f"{fw.node_id:x}", "path": fw.path, "kind": "missing-in-guest"})
    return diffs


def _position(node) -> tuple:
    """Where a node sits: (name, index among its siblings) from the root down."""
    out = []
    while node.parent is not None:
        out.append((node.name, node.parent.children.index(node)))
        node = node.parent
    return tuple(reversed(out))


def build_report(run: GuestRun, *, machine: str, firmware_tree: PromTree | None,
                 firmware_options: Mapping[str, bytes] | None, stored: Mapping[str, str],
                 os_name: str = "linux-6.1", firmware: str = "openbios-1.1", match: str = "id") -> dict:
    """``match="position"`` when ``firmware_tree`` was read at another start
    (see :func:`compare_trees`)."""
    """The machine-readable report of one run (JSON-ready)."""
    checks = judge(run)
    problems: list[str] = []
    if not run.ended:
        problems.append("the program did not finish (no '@@vhw end' line)")
    elif run.end_ops != len(run.ops):
        problems.append(f"the program says it ran {run.end_ops} calls but printed {len(run.ops)}")
    problems += [f"fatal: {f}" for f in run.fatal]
    guest_tree = run.tree() if run.nodes else None
    if guest_tree is None:
        problems.append("the program printed no tree")

    tree_diffs: list[dict] = []
    if guest_tree is not None and firmware_tree is not None:
        unreadable = {nid: {n for n, (length, _) in props.items() if length < 0} for nid, props in run.props.items()}
        tree_diffs = compare_trees(guest_tree, firmware_tree, unreadable=unreadable, by=match)

    # Options: what the guest read first must be what the store injected
    # (NUL-terminated, openprom-sparc.md §5); what it left must be what the
    # firmware shows after the halt.
    option_checks = []
    initial = run.props.get(guest_tree.options.node_id, {}) if guest_tree and guest_tree.options else {}
    for name, value in stored.items():
        got = initial.get(name)
        want = value.encode("utf-8", "surrogateescape") + b"\0"
        option_checks.append({"check": "option-injected", "option": name, "stored": value,
                              "guest": None if got is None else got[1].hex(),
                              "verdict": "conforms" if got is not None and got[1] == want else "differs"})
    if firmware_options is not None:
        for name, (_length, final) in run.final.items():
            if name == ".node":
                continue  # Linux's own (synthetic-node-property)
            fw = firmware_options.get(name)
            option_checks.append({"check": "option-final-matches-firmware", "option": name,
                                  "guest": final.hex(), "firmware": None if fw is None else fw.hex(),
                                  "verdict": "conforms" if fw == final else "differs"})

    findings: dict[str, dict] = {}
    for entry in checks:
        if entry["verdict"] == "finding":
            who, deviation = next((w, d) for w, d in DEVIATIONS if d.name == entry["finding"])
            f = findings.setdefault(deviation.name, {"by": who, **asdict(deviation), "checks": []})
            f["checks"].append(entry["seq"])
    synthetic = [d for d in tree_diffs if d["kind"] == "linux-synthetic-property"]
    if synthetic:
        findings["synthetic-node-property"] = {
            "by": "linux-6.1", "name": "synthetic-node-property", "operation": "tree walk",
            "seed_behaviour": "the properties the PROM has",
            "observed_behaviour": "every node also has '.node', its 4-byte phandle",
            "evidence": f"drivers/of/pdt.c of_pdt_build_prop_list(); seen on {len(synthetic)} nodes",
            "checks": []}
    empty = [d for d in tree_diffs if d["kind"] == "linux-empty-property-unreadable"]
    if empty:
        who, deviation = next((w, d) for w, d in DEVIATIONS if d.name == "empty-property-unreadable")
        f = findings.setdefault(deviation.name, {"by": who, **asdict(deviation), "checks": []})
        f["tree_properties"] = [f"{d['path']}:{d['property']}" for d in empty]
    explained = ("linux-synthetic-property", "linux-empty-property-unreadable", "set-at-boot")
    unexplained = [d for d in tree_diffs if d["kind"] not in explained]
    counts = {v: sum(1 for e in checks + option_checks if e["verdict"] == v)
              for v in ("conforms", "finding", "differs")}
    counts["tree-differences"] = len(unexplained)
    return {
        "machine": machine, "arch": run.arch, "os": os_name, "firmware": firmware, "token": run.token,
        "nodes": len(run.nodes), "calls": len(run.ops),
        "passed": not problems and counts["differs"] == 0 and not unexplained and firmware_tree is not None,
        "problems": problems, "summary": counts, "findings": list(findings.values()),
        "checks": checks, "options": option_checks, "tree_differences": tree_diffs,
        "notes": run.notes,
    }
