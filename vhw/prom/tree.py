"""The OpenPROM device tree of a SPARC guest, and what /dev/openprom answers over it.

vhw owns the PROM tree and its ``options`` node (the EEPROM), so host-side
tests need an executable reference to compare a guest's answers with. This
module is that reference, sans I/O:

* :class:`PromNode` / :class:`PromTree`: nodes with ids as the PROM hands
  them out, ordered properties, the options node, path lookup, and the PROM
  primitives (peer, child, nextprop, setprop) both driver families use.
* :class:`OpenpromDevice`: the 4.4BSD openprom(4) ``OPIOC*`` ioctls, exactly
  as the interface document (the 4.4BSD openprom(4) manual) and
  the 4.4BSD driver it documents (``sys/sparc/sparc/openprom.c``) behave.
* :class:`SunOpenpromDevice`: the SunOS/illumos ``OPROM*`` ioctls
  (openprom-sparc.md §10; illumos ``usr/src/uts/common/io/openprom.c``).
* :data:`LINUX_DEVIATIONS`, :data:`OPENBIOS_DEVIATIONS`: what Linux 6.1 and
  OpenBIOS measurably do differently (openprom-sparc.md §9), as data for the
  conformance report. The model itself never deviates.

Every ioctl method returns ``(errno, result)``: errno 0 on success, else one
of the errno values the seed names and ``result`` None. Bad input never
raises out of an ioctl method.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeGuard

# "The given name or value field exceeds the maximum allowed length (8191 bytes)."
MAX_FIELD_LENGTH = 8191
OPTIONS_NODE_NAME = "options"

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# open(2) access modes of the descriptor a guest program opened /dev/openprom
# with: the same numbers on 4.4BSD, SunOS/illumos and Linux.
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_ACCMODE = 3


# ----------------------------------------------------------------- encoding


def encode_string(text: str | bytes) -> bytes:
    """An OpenFirmware string property: the bytes followed by one NUL."""
    raw = text.encode("latin-1") if isinstance(text, str) else bytes(text)
    if b"\0" in raw:
        raise ValueError(f"a string property cannot contain NUL: {raw!r}")
    return raw + b"\0"


def encode_strings(texts: Iterable[str | bytes]) -> bytes:
    """A string-list property (e.g. ``compatible``): each string NUL-terminated."""
    return b"".join(encode_string(t) for t in texts)


def encode_int(value: int) -> bytes:
    """One big-endian 32-bit cell (signed or unsigned input)."""
    return encode_ints([value])


def encode_ints(values: Iterable[int]) -> bytes:
    """An int-array property (``reg``, ``interrupts``): big-endian 32-bit cells."""
    out = bytearray()
    for value in values:
        if not _INT32_MIN <= value <= 0xFFFFFFFF:
            raise ValueError(f"{value} does not fit a 32-bit cell")
        out += (value & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(out)


def decode_string(value: bytes) -> str:
    """The text of a string property (up to its first NUL)."""
    return value.split(b"\0", 1)[0].decode("latin-1")


def decode_strings(value: bytes) -> list[str]:
    """The strings of a string-list property."""
    parts = value.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("latin-1") for p in parts]


def decode_ints(value: bytes) -> list[int]:
    """The unsigned cells of an int-array property."""
    if len(value) % 4:
        raise ValueError(f"{len(value)} bytes are not whole 32-bit cells")
    return [int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value), 4)]


def encode_value(value: object) -> bytes:
    """A description value as property bytes.

    bytes stay as they are; str is a string; int is one cell; a list of ints
    is a cell array; a list of str is a string list; None or True is an empty
    (boolean, present-without-value) property.
    """
    if value is None or value is True:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return encode_string(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return encode_int(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return encode_ints(value)
        if all(isinstance(v, str) for v in value):
            return encode_strings(value)
    raise ValueError(f"cannot encode {value!r} as an OpenPROM property")


# --------------------------------------------------------------------- tree


@dataclass(eq=False)
class PromNode:
    """One device node: its PROM-given id, ordered properties and children.

    The node's name is its ``name`` property (OpenFirmware keeps it there);
    ``unit_address`` is the part after ``@`` in its path component.
    """

    node_id: int
    properties: dict[str, bytes] = field(default_factory=dict)
    unit_address: str = ""
    parent: PromNode | None = field(default=None, repr=False)
    children: list[PromNode] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        raw = self.properties.get("name")
        return decode_string(raw) if raw is not None else ""

    @property
    def component(self) -> str:
        """The node's path component, ``name`` or ``name@unit``."""
        return f"{self.name}@{self.unit_address}" if self.unit_address else self.name

    @property
    def path(self) -> str:
        if self.parent is None:
            return "/"
        parts = []
        node: PromNode | None = self
        while node is not None and node.parent is not None:
            parts.append(node.component)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def next_sibling(self) -> PromNode | None:
        if self.parent is None:
            return None
        siblings = self.parent.children
        index = siblings.index(self)
        return siblings[index + 1] if index + 1 < len(siblings) else None


class PromTree:
    """The whole device tree; node ids are unique, non-zero 32-bit ints.

    Build it with :meth:`from_description`. Ids are handed out in walk order
    from ``ids`` (default 1, 2, 3, ...), so a test can use ids that look like
    a real PROM's (OpenBIOS phandles are addresses).
    """

    def __init__(self, root_properties: Mapping[str, object] | None = None, *, ids: Iterable[int] | None = None):
        self._ids: Iterator[int] = iter(ids) if ids is not None else _counter(1)
        self.nodes: dict[int, PromNode] = {}
        self.root = self._new_node(None, "", root_properties or {})

    @classmethod
    def from_description(cls, description: Mapping[str, object], *, ids: Iterable[int] | None = None) -> PromTree:
        """A tree from a nested mapping describing the root node.

        In each node's mapping, an entry whose value is a mapping is a child
        (its key is the path component, ``name`` or ``name@unit``); every
        other entry is a property, encoded by :func:`encode_value`.
        Example: ``{"name": "SUNW,SPARCstation-5", "options": {"auto-boot?":
        "true"}, "obio": {"eeprom@0,200000": {"model": "mk48t08"}}}``.
        """
        tree = cls({k: v for k, v in description.items() if not isinstance(v, Mapping)}, ids=ids)
        tree._add_children(tree.root, description)
        return tree

    @classmethod
    def from_nodes(cls, nodes: Iterable[tuple[int, int, Mapping[str, bytes]]]) -> PromTree:
        """A tree read from a real PROM: ``(id, parent id, properties)`` in
        walk order (parents first, siblings in PROM order; parent 0 is the
        root), property bytes and order kept exactly as read."""
        tree = cls.__new__(cls)
        tree._ids = iter(())
        tree.nodes = {}
        root: PromNode | None = None
        for node_id, parent_id, properties in nodes:
            if not isinstance(node_id, int) or node_id in (0, -1) or node_id in tree.nodes:
                raise ValueError(f"node id {node_id!r} is 0, -1 or used twice")
            if (parent_id == 0) != (root is None):
                raise ValueError(f"node 0x{node_id:x}: only the first node is the root (parent 0)")
            parent = tree.nodes.get(parent_id) if parent_id else None
            if parent_id and parent is None:
                raise ValueError(f"node 0x{node_id:x}: parent 0x{parent_id:x} comes later or is unknown")
            node = PromNode(node_id, {k: bytes(v) for k, v in properties.items()}, "", parent)
            tree.nodes[node_id] = node
            if parent is None:
                root = node
            else:
                parent.children.append(node)
        if root is None:
            raise ValueError("no nodes")
        tree.root = root
        return tree

    def _add_children(self, parent: PromNode, description: Mapping[str, object]) -> None:
        for key, value in description.items():
            if isinstance(value, Mapping):
                props = {k: v for k, v in value.items() if not isinstance(v, Mapping)}
                child = self.add_node(parent, key, props)
                self._add_children(child, value)

    def add_node(self, parent: PromNode, component: str, properties: Mapping[str, object] | None = None) -> PromNode:
        """A new last child of ``parent``; its ``name`` property comes first."""
        if parent.node_id not in self.nodes or self.nodes[parent.node_id] is not parent:
            raise ValueError("parent is not a node of this tree")
        name, _, unit = component.partition("@")
        if not name or "/" in component:
            raise ValueError(f"bad path component {component!r}")
        props: dict[str, object] = {"name": name}
        props.update(properties or {})
        node = self._new_node(parent, unit, props)
        parent.children.append(node)
        return node

    def _new_node(self, parent: PromNode | None, unit: str, properties: Mapping[str, object]) -> PromNode:
        try:
            node_id = next(self._ids)
        except StopIteration:
            raise ValueError("ran out of node ids") from None
        if not isinstance(node_id, int) or node_id in (0, -1) or not _INT32_MIN <= node_id <= _INT32_MAX:
            raise ValueError(f"node id {node_id!r}: must be a 32-bit int other than 0 and -1")
        if node_id in self.nodes:
            raise ValueError(f"node id {node_id} is used twice")
        for prop in properties:
            if not prop or "\0" in prop:
                raise ValueError(f"bad property name {prop!r}")
        node = PromNode(node_id, {k: encode_value(v) for k, v in properties.items()}, unit, parent)
        self.nodes[node_id] = node
        return node

    # -- navigation

    @property
    def options(self) -> PromNode | None:
        """The distinguished node that holds the EEPROM settings (``/options``)."""
        return next((c for c in self.root.children if c.name == OPTIONS_NODE_NAME), None)

    def walk(self) -> Iterator[PromNode]:
        """Every node, depth first, parents before children, in PROM order."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def find(self, path: str) -> PromNode | None:
        """The node at an absolute path (``/options``, ``/pci@1f,0/ebus@1``).

        A component with ``@`` must match name and unit address; one without
        matches the first child of that name.
        """
        if not path.startswith("/"):
            return None
        node = self.root
        for component in filter(None, path.split("/")):
            child = _child_by_component(node, component)
            if child is None:
                return None
            node = child
        return node

    # -- the PROM primitives the drivers call

    def peer(self, node_id: int) -> int:
        """The following node (0 gives the root; the last sibling gives 0)."""
        if node_id == 0:
            return self.root.node_id
        sibling = self.nodes[node_id].next_sibling()
        return sibling.node_id if sibling else 0

    def child(self, node_id: int) -> int:
        """The first child, or 0 when there is none."""
        children = self.nodes[node_id].children
        return children[0].node_id if children else 0

    def nextprop(self, node_id: int, previous: str) -> str | None:
        """The property name after ``previous`` ('' gives the first; the last gives '').

        None when ``previous`` is neither '' nor a property of the node.
        """
        names = list(self.nodes[node_id].properties)
        if previous == "":
            return names[0] if names else ""
        if previous not in self.nodes[node_id].properties:
            return None
        index = names.index(previous)
        return names[index + 1] if index + 1 < len(names) else ""

    def setprop(self, node_id: int, name: str, value: bytes) -> bool:
        """Store a property, as the PROM would; False when the PROM refuses.

        The model's PROM accepts writes only to the options node, and only
        names an NVRAM ``name=value`` string can hold: not empty, no '=' and
        no NUL. ``name`` is refused too: it names the node, not an option.
        """
        node = self.nodes.get(node_id)
        if node is None or node is not self.options:
            return False
        if not name or name == "name" or "=" in name or "\0" in name:
            return False
        node.properties[name] = bytes(value)
        return True


def _counter(start: int) -> Iterator[int]:
    value = start
    while True:
        yield value
        value += 1


def _child_by_component(node: PromNode, component: str) -> PromNode | None:
    if "@" in component:
        return next((c for c in node.children if c.component == component), None)
    return next((c for c in node.children if c.name == component), None)


# ------------------------------------------------- 4.4BSD openprom(4) ioctls


@dataclass(frozen=True)
class OpioResult:
    """The value-result half of ``struct opiocdesc`` after the call.

    ``buflen`` is what ``op_buflen`` holds on return; ``buf`` the bytes the
    driver copied into ``op_buf``.
    """

    buflen: int
    buf: bytes


def _open_mode(flags: int) -> tuple[bool, bool]:
    access = flags & O_ACCMODE
    return access in (O_RDONLY, O_RDWR), access in (O_WRONLY, O_RDWR)


class OpenpromDevice:
    """One open descriptor of 4.4BSD ``/dev/openprom`` over a :class:`PromTree`.

    Encodes openprom(4) as written (the reference semantics of
    openprom-sparc.md §9), with the 4.4BSD driver's order of checks: the node
    is validated first, then the open mode ("[EBADF] The requested operation
    requires permissions not specified at the call to open()"), then node 0,
    then the lengths of name and value.
    """

    def __init__(self, tree: PromTree, flags: int = O_RDONLY):
        self.tree = tree
        self.readable, self.writable = _open_mode(flags)

    # "OPIOCGETOPTNODE Takes nothing, and fills in the options node number."
    def get_opt_node(self) -> tuple[int, int]:
        options = self.tree.options
        return 0, options.node_id if options else 0

    # "OPIOCGETNEXT Takes a node number and returns the number of the
    # following node. The node following the last node is number 0; the node
    # following number 0 is the first node."
    def get_next(self, node: int) -> tuple[int, int | None]:
        err = self._check_node(node) or self._need(self.readable)
        if err:
            return err, None
        return 0, self.tree.peer(node)

    # "OPIOCGETCHILD Takes a node number and returns the number of the first
    # ``child'' of that node." Node 0 is "zero where zero is not allowed".
    def get_child(self, node: int) -> tuple[int, int | None]:
        err = self._check_node(node) or self._need(self.readable) or _nonzero(node)
        if err:
            return err, None
        return 0, self.tree.child(node)

    # "OPIOCGET ... If no such property is associated with that node, the
    # value length is set to -1. If the named property exists but has no
    # value, the value length is set to 0."
    def get(self, node: int, name: bytes, buflen: int) -> tuple[int, OpioResult | None]:
        """The value, cut to ``buflen`` as the 4.4BSD driver does.

        When the value is longer than the buffer, ``op_buflen`` keeps the
        buffer size and only that many bytes are copied ("on return, the
        counts are updated to reflect the buffer contents").
        """
        err = self._check_node(node) or self._need(self.readable) or _nonzero(node)
        err = err or _check_field(name) or _check_buflen(buflen)
        if err:
            return err, None
        value = self.tree.nodes[node].properties.get(_prop_name(name))
        if value is None:
            return 0, OpioResult(-1, b"")
        return 0, _value_result(value, buflen)

    # "OPIOCSET Writes the given value under the given name. The OPENPROM may
    # refuse this operation; in this case EINVAL is returned."
    def set(self, node: int, name: bytes, value: bytes) -> tuple[int, None]:
        """Store ``value`` NUL-terminated, as the 4.4BSD driver hands
        ``op_buflen + 1`` bytes to the PROM; only the options node accepts."""
        err = self._check_node(node) or self._need(self.writable) or _nonzero(node)
        err = err or _check_field(name) or _check_field(value)
        if err:
            return err, None
        if not self.tree.setprop(node, _prop_name(name), bytes(value) + b"\0"):
            return errno.EINVAL, None
        return 0, None

    # "OPIOCNEXTPROP Finds the property whose name follows the given name in
    # OPENPROM internal order. The resulting name is returned in the value
    # field. If the named property is the last, the ``next'' name is the
    # empty string. As with OPIOCGETNEXT, the next name after the empty
    # string is the first name."
    def next_prop(self, node: int, name: bytes, buflen: int) -> tuple[int, OpioResult | None]:
        err = self._check_node(node) or self._need(self.readable) or _nonzero(node)
        err = err or _check_field(name) or _check_buflen(buflen)
        if err:
            return err, None
        following = self.tree.nextprop(node, _prop_name(name))
        if following is None:  # a previous name the node does not have (§9 reference)
            return errno.EINVAL, None
        return 0, _value_result(following.encode("latin-1"), buflen)

    # "[EINVAL] The given node number is not zero and does not correspond to
    # any valid node, or is zero where zero is not allowed."
    def _check_node(self, node: object) -> int:
        if not _is_int(node) or (node != 0 and node not in self.tree.nodes):
            return errno.EINVAL
        return 0

    @staticmethod
    def _need(permitted: bool) -> int:
        return 0 if permitted else errno.EBADF


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _nonzero(node: int) -> int:
    return errno.EINVAL if node == 0 else 0


def _check_field(raw: object) -> int:
    """EINVAL for what is not bytes; ENAMETOOLONG past 8191 bytes."""
    if not isinstance(raw, (bytes, bytearray)):
        return errno.EINVAL
    return errno.ENAMETOOLONG if len(raw) > MAX_FIELD_LENGTH else 0


def _check_buflen(buflen: object) -> int:
    """A buffer size must be an int >= 0 (the driver leaves this unchecked)."""
    return 0 if _is_int(buflen) and buflen >= 0 else errno.EINVAL


def _prop_name(raw: bytes | bytearray) -> str:
    """Names travel as latin-1, which maps every byte to one character.

    A name with a NUL keeps it, so it matches no property: the seed's names
    are counted strings and no PROM name contains a NUL.
    """
    return bytes(raw).decode("latin-1")


def _value_result(data: bytes, buflen: int) -> OpioResult:
    if len(data) > buflen:
        return OpioResult(buflen, data[:buflen])
    return OpioResult(len(data), data)


# ---------------------------------------------- SunOS / illumos OPROM* ioctls

OPROM_MAX_PARAM = 32768  # illumos OPROMMAXPARAM (Linux's header says 4096)
OBP_MAXPROPNAME = 32  # illumos: a property name with its NUL
OBP_BADNODE = -1


@dataclass(frozen=True)
class OpromReply:
    """``struct openpromio`` after the call: ``oprom_size`` and the bytes of
    ``oprom_array`` the driver copied out."""

    size: int
    array: bytes


class SunOpenpromDevice:
    """One open descriptor of the SunOS-style ``/dev/openprom`` (illumos).

    Unlike ``OPIOC*``, the walk keeps a current node per descriptor:
    OPROMNEXT/OPROMCHILD move it, OPROMGETPROP/OPROMNXTPROP read it.
    ``bufsize`` is the caller's ``oprom_size`` on entry. Checks follow
    illumos ``opromioctl_cb``: open mode (EPERM), buffer size (EINVAL), node,
    then the name.
    """

    def __init__(self, tree: PromTree, flags: int = O_RDONLY):
        self.tree = tree
        self.readable, self.writable = _open_mode(flags)
        self.current = 0  # OBP_NONODE until the first OPROMNEXT/OPROMCHILD

    # -- options

    def getopt(self, name: bytes, bufsize: int = OPROM_MAX_PARAM) -> tuple[int, OpromReply | None]:
        """An option's value; "name" is a property but not an option."""
        options = self.tree.options
        return self._getprop(options.node_id if options else 0, name, bufsize, hide_name=True)

    def nxtopt(self, name: bytes, bufsize: int = OPROM_MAX_PARAM) -> tuple[int, OpromReply | None]:
        options = self.tree.options
        return self._nxtprop(options.node_id if options else 0, name, bufsize, hide_name=True)

    def setopt(self, name: bytes, value: bytes) -> tuple[int, None]:
        """OPROMSETOPT: the value is a C string, stored with its NUL; bytes
        after an embedded NUL are lost (SETOPT uses strlen)."""
        stored = value.split(b"\0", 1)[0] + b"\0" if _is_bytes(value) else None
        return self._setopt(name, value, stored, terminator=1)

    def setopt2(self, name: bytes, value: bytes) -> tuple[int, None]:
        """OPROMSETOPT2: the value is every byte after the name's NUL.

        illumos still requires a NUL inside the value (it checks the
        value's strlen plus its NUL against the buffer): EINVAL otherwise.
        """
        stored = value if _is_bytes(value) and b"\0" in value else None
        return self._setopt(name, value, stored, terminator=0)

    # -- walk

    def next(self, node: int, bufsize: int = 4) -> tuple[int, int | None]:
        """The node after ``node`` (0 gives the root), made current."""
        return self._move(node, bufsize, self.tree.peer)

    def child(self, node: int, bufsize: int = 4) -> tuple[int, int | None]:
        """The first child of ``node``, made current; 0 has no child here."""
        return self._move(node, bufsize, lambda n: self.tree.child(n) if n else 0)

    def setnodeid(self, node: int, bufsize: int = 4) -> tuple[int, None]:
        err, _ = self._move(node, bufsize, lambda n: n)
        return err, None

    # -- properties of the current node

    def getprop(self, name: bytes, bufsize: int = OPROM_MAX_PARAM) -> tuple[int, OpromReply | None]:
        return self._getprop(self.current, name, bufsize, hide_name=False)

    def nxtprop(self, name: bytes, bufsize: int = OPROM_MAX_PARAM) -> tuple[int, OpromReply | None]:
        return self._nxtprop(self.current, name, bufsize, hide_name=False)

    def getproplen(self, name: bytes, bufsize: int = OPROM_MAX_PARAM) -> tuple[int, OpromReply | None]:
        """The length as a big-endian int (SPARC order); -1 when missing."""
        err = self._read_prologue(bufsize) or self._check_current(self.current) or _check_sun_name(name, bufsize)
        if err:
            return err, None
        if bufsize < 4:
            return errno.EINVAL, None
        value = self.tree.nodes[self.current].properties.get(_prop_name(name))
        length = -1 if value is None else len(value)
        return 0, OpromReply(4, length.to_bytes(4, "big", signed=True))

    # -- shared

    def _read_prologue(self, bufsize: object) -> int:
        if not self.readable:
            return errno.EPERM
        return _check_bufsize(bufsize)

    def _check_current(self, node: int) -> int:
        return 0 if node in self.tree.nodes else errno.EINVAL

    def _getprop(self, node: int, name: bytes, bufsize: int, *, hide_name: bool) -> tuple[int, OpromReply | None]:
        """Found and fitting: the value, NUL added if room; else size 0, "".

        illumos: "There is no error code if the buf is too small", and a
        missing or empty property also gives size 0.
        """
        err = self._read_prologue(bufsize) or self._check_current(node) or _check_sun_name(name, bufsize)
        if err:
            return err, None
        prop = _prop_name(name)
        value = None if hide_name and prop == "name" else self.tree.nodes[node].properties.get(prop)
        if not value or len(value) > bufsize:
            return 0, OpromReply(0, b"\0")
        return 0, OpromReply(len(value), value + b"\0" if len(value) < bufsize else value)

    def _nxtprop(self, node: int, name: bytes, bufsize: int, *, hide_name: bool) -> tuple[int, OpromReply | None]:
        """The next name with its NUL (size counts it); at the end size 0.

        A previous name the node lacks ends the walk too: the PROM's
        nextprop gives no name. A name that does not fit also gives size 0.
        """
        err = self._read_prologue(bufsize) or self._check_current(node) or _check_sun_name(name, bufsize)
        if err:
            return err, None
        following = self.tree.nextprop(node, _prop_name(name)) or ""
        if hide_name and following == "name":
            following = self.tree.nextprop(node, "name") or ""
        encoded = following.encode("latin-1") + b"\0"
        if not following or len(encoded) > bufsize:
            return 0, OpromReply(0, b"")
        return 0, OpromReply(len(encoded), encoded)

    def _setopt(self, name: object, value: object, stored: bytes | None, *, terminator: int) -> tuple[int, None]:
        """``stored`` is what reaches the PROM, None when the driver refuses."""
        if not self.writable:
            return errno.EPERM, None
        if not _is_bytes(name) or not _is_bytes(value):
            return errno.EINVAL, None
        err = _check_bufsize(len(name) + 1 + len(value) + terminator)
        if err:
            return err, None
        options = self.tree.options
        if options is None or stored is None or b"\0" in name or name == b"name":
            return errno.EINVAL, None
        if not self.tree.setprop(options.node_id, _prop_name(name), bytes(stored)):
            return errno.EINVAL, None
        return 0, None

    def _move(self, node: object, bufsize: object, step: Callable[[int], int]) -> tuple[int, int | None]:
        err = self._read_prologue(bufsize)
        if err:
            return err, None
        if not _is_int(bufsize) or bufsize < 4 or not _is_int(node) or node == OBP_BADNODE:
            return errno.EINVAL, None
        if node != 0 and node not in self.tree.nodes:
            return errno.EINVAL, None
        self.current = step(node)
        return 0, self.current


def _is_bytes(value: object) -> TypeGuard[bytes | bytearray]:
    return isinstance(value, (bytes, bytearray))


def _check_bufsize(bufsize: object) -> int:
    """illumos: ``userbufsize == 0 || userbufsize > OPROMMAXPARAM`` is EINVAL."""
    return 0 if _is_int(bufsize) and 0 < bufsize <= OPROM_MAX_PARAM else errno.EINVAL


def _check_sun_name(name: object, bufsize: int) -> int:
    """A NUL-terminated name must fit the buffer (else copyinstr's
    ENAMETOOLONG) and OBP_MAXPROPNAME with its NUL (else EINVAL)."""
    if not _is_bytes(name) or b"\0" in name:
        return errno.EINVAL
    if len(name) + 1 > bufsize:
        return errno.ENAMETOOLONG
    return errno.EINVAL if len(name) + 1 > OBP_MAXPROPNAME else 0


# ------------------------------------------------------------- deviations


@dataclass(frozen=True)
class Deviation:
    """A measured difference between a real driver or firmware and the seed.

    ``observed_behaviour`` is what that OS (Linux 6.1 in
    :data:`LINUX_DEVIATIONS`) or firmware does instead of ``seed_behaviour``.
    """

    name: str
    operation: str
    seed_behaviour: str
    observed_behaviour: str
    evidence: str


_LINUX_EVIDENCE = (
    "openprom-sparc.md §9, measured on QEMU 7.2 sun4u/SS-5 with Linux 6.1.192 "
    "drivers/sbus/char/openprom.c"
)

LINUX_DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "get-missing-property", "OPIOCGET",
        "success, op_buflen = -1 ('If no such property is associated with that node, "
        "the value length is set to -1.')",
        "EINVAL",
        _LINUX_EVIDENCE + ": GET no-such-option gave -EINVAL",
    ),
    Deviation(
        "nextprop-returns-value", "OPIOCNEXTPROP",
        "the next property's name ('The resulting name is returned in the value field.')",
        "the next property's value, op_buflen not updated; after '' the value of the "
        "synthetic first property .node (the 4-byte phandle)",
        _LINUX_EVIDENCE + "; drivers/of/pdt.c adds .node",
    ),
    Deviation(
        "set-stores-no-nul", "OPIOCSET",
        "value stored NUL-terminated (the BSD drivers pass op_buflen + 1 bytes to setprop)",
        "exactly op_buflen bytes, no NUL: a later GET is one byte shorter, printenv shows hex",
        _LINUX_EVIDENCE + ": SET my-var then GET gave length 14, 'set-from-guest', no NUL",
    ),
    Deviation(
        "set-cannot-create", "OPIOCSET",
        "any name may be written; the PROM's setprop creates it (IEEE 1275)",
        "only existing properties are replaced; a new name gives ENODEV",
        _LINUX_EVIDENCE + ": SET brand-new-var gave -ENODEV (arch/sparc/kernel/prom_common.c)",
    ),
    Deviation(
        "no-name-length-limit", "OPIOCGET",
        "ENAMETOOLONG for a name or value over 8191 bytes",
        "no length check: an 8192-byte name gives EINVAL",
        _LINUX_EVIDENCE + ": GET with an 8192-byte name gave EINVAL",
    ),
)

OPENBIOS_DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "sparc32-setprop-stub", "OPIOCSET",
        "the options node accepts writes",
        "every SET fails with EINVAL: the romvec setprop ignores its arguments and returns -1",
        "openprom-sparc.md §6, §9: measured on SS-5, SET my-var gave -EINVAL, value unchanged "
        "(OpenBIOS arch/sparc32/romvec.c)",
    ),
    Deviation(
        "no-nvram-write-through", "OPIOCSET",
        "the EEPROM area holds the written setting",
        "only the in-memory /options changes; NVRAM is unchanged and a reset restores it",
        "openprom-sparc.md §6, §9: 0 NVRAM bytes changed after SETs and setenv on both machines",
    ),
)
