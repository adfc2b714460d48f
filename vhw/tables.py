"""Reading one TOML table of a description: the one reader every schema uses.

A ``Table`` hands out the values of one table, checked (type, range,
choices), and remembers which keys were read, so ``finish()`` can refuse the
keys nobody asked for: a misspelt option silently ignored is a test that
silently tests the wrong thing.  Every error is a ``DescriptionError`` that
names the exact key ("bmc.satellites[1].address") and, when known, the file.

The machine description (``vhw.machine.description``), the ``[bmc]`` table
and its sub-tables (``vhw.ipmi.core.config`` and the parts' own configurations)
and the ``[[fault]]`` tables (``vhw.faults``) all read through it.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import DescriptionError


class Table:
    """The keys of one table; reading a key takes it out of ``data``."""

    def __init__(self, data: Any, path: str, source: str | None = None) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise DescriptionError(path, f"must be a table, not {type(data).__name__}", source=source)
        #: The keys not read yet.
        self.data: dict[str, Any] = dict(data)
        self.path = path
        self.source = source
        #: The keys this table may have (for "did you mean"); the keys read
        #: so far when not set.
        self.known: tuple[str, ...] = ()
        self._read: list[str] = []

    # -- names and errors ----------------------------------------------------------
    def key(self, name: str) -> str:
        """The full name of ``name`` in this table ("bmc.sel.clock")."""
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, reason: str) -> DescriptionError:
        return DescriptionError(self.key(name), reason, source=self.source)

    def has(self, name: str) -> bool:
        """Whether ``name`` is present and not read yet."""
        return name in self.data

    # -- reading -----------------------------------------------------------------------
    def raw(self, name: str, default: Any = None) -> Any:
        """The value as written (unchecked), or ``default``."""
        self._read.append(name)
        return self.data.pop(name, default)

    def take(self, name: str, default: Any, kind: type | tuple[type, ...]) -> Any:
        """The value, which must be of ``kind`` (a bool is no number); ``default`` when absent."""
        if name not in self.data:
            self._read.append(name)
            return default
        value = self.raw(name)
        numbers = (int, float, (int, float))
        if isinstance(value, bool) and kind in numbers:
            raise self.fail(name, f"must be a number, not {value!r}")
        if not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(name, f"must be a {want}, not {type(value).__name__} {value!r}")
        return value

    def int_range(self, name: str, default: int, lo: int, hi: int, unit: str = "") -> int:
        """An integer ``lo..hi``, said in decimal."""
        value = self.take(name, default, int)
        if not lo <= value <= hi:
            raise self.fail(name, f"must be between {lo} and {hi}{unit}; got {value}")
        return value

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        """An integer ``lo..hi``, said in hex (register-like values)."""
        v = self.raw(name, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(name, f"must be an integer {lo:#x}..{hi:#x}")
        if not lo <= v <= hi:
            raise self.fail(name, f"must be {lo:#x}..{hi:#x}, not {v:#x}")
        return v

    def boolean(self, name: str, default: bool) -> bool:
        v = self.raw(name, default)
        if not isinstance(v, bool):
            raise self.fail(name, "must be true or false")
        return v

    def string(self, name: str, default: str) -> str:
        v = self.raw(name, default)
        if not isinstance(v, str):
            raise self.fail(name, "must be a string")
        return v

    def choice(self, name: str, default: str, choices: Iterable[str]) -> str:
        """One of ``choices`` (a tuple, or the keys of a mapping)."""
        options = tuple(choices)
        value = self.take(name, default, str)
        if value not in options:
            raise self.fail(name, f"must be one of {', '.join(options)}; got {value!r}")
        return value

    def list_of_choices(self, name: str, default: list[str], choices: Iterable[str]) -> list[str]:
        """A list of distinct ``choices``."""
        options = tuple(choices)
        v = self.raw(name, default)
        if not isinstance(v, list):
            raise self.fail(name, "must be a list")
        out: list[str] = []
        for i, item in enumerate(v):
            if item not in options:
                raise self.fail(f"{name}[{i}]", f"must be one of {', '.join(options)}, not {item!r}")
            if item in out:
                raise self.fail(f"{name}[{i}]", f"{item!r} listed twice")
            out.append(item)
        return out

    def str_list(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A list of non-empty strings."""
        value = self.take(name, list(default), list)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{name}[{i}]", f"must be a non-empty string, not {item!r}")
        return tuple(value)

    def table(self, name: str) -> Table:
        """A sub-table (empty when absent)."""
        return Table(self.raw(name, {}), self.key(name), self.source)

    def tables(self, name: str) -> list[Table] | None:
        """An array of tables (``[[name]]``), or None when absent."""
        if name not in self.data:
            self._read.append(name)
            return None
        v = self.raw(name)
        if not isinstance(v, list):
            raise self.fail(name, "must be a list of tables")
        return [Table(item, f"{self.key(name)}[{i}]", self.source) for i, item in enumerate(v)]

    def guid(self, name: str, default: uuid.UUID) -> uuid.UUID:
        if name not in self.data:
            self._read.append(name)
            return default
        v = self.string(name, "")
        try:
            return uuid.UUID(v)
        except ValueError:
            raise self.fail(name, f"must be a UUID like 12345678-1234-5678-9abc-def012345678, not {v!r}") from None

    # -- the end -------------------------------------------------------------------------
    def expect(self, known: Iterable[str]) -> None:
        """Refuse, before reading anything, a key that is not one of ``known``."""
        self.known = tuple(known)
        for name in self.data:
            if name not in self.known:
                raise self.fail(str(name), "unknown key" + self._hint(str(name)))

    def finish(self) -> None:
        """Refuse the first key nobody read (with a "did you mean" when one is close)."""
        if self.data:
            name = sorted(str(k) for k in self.data)[0]
            raise self.fail(name, "unknown key" + self._hint(name))

    def _hint(self, name: str) -> str:
        close = did_you_mean(name, self.known or tuple(dict.fromkeys(self._read)))
        if close or not self.known:
            return close
        return f" (known: {', '.join(sorted(self.known))})"


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
