"""What the BMC's parts keep in flash, as a port: ``NonVolatile``.

The parts (SEL, SDR, FRU, users, channels, boot options, LAN and SOL
parameters, DCMI strings) write through this interface; the machine's SQLite
file (:class:`vhw.store.Store`) is what a running BMC is given.  A BMC made
without one keeps the same shapes in memory (:class:`MemoryStore`): values go
through JSON as the file would keep them, and a transaction that raises
leaves nothing behind.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol


class NonVolatile(Protocol):
    """A key/value map (JSON values) and ordered byte records per namespace."""

    def transaction(self) -> AbstractContextManager[Any]: ...

    def get(self, namespace: str, key: str, default: Any = None) -> Any: ...

    def put(self, namespace: str, key: str, value: Any) -> None: ...

    def delete(self, namespace: str, key: str) -> bool: ...

    def items(self, namespace: str) -> dict[str, Any]: ...

    def append(self, namespace: str, data: bytes, record_id: int | None = None) -> int: ...

    def records(self, namespace: str) -> list[tuple[int, bytes]]: ...

    def delete_record(self, namespace: str, record_id: int) -> bool: ...

    def clear(self, namespace: str) -> None: ...


class MemoryStore:
    """``NonVolatile`` in memory: what a BMC without a state file keeps."""

    def __init__(self) -> None:
        self._kv: dict[str, dict[str, str]] = {}
        self._records: dict[str, dict[int, bytes]] = {}
        #: The state before the outermost open transaction, to go back to.
        self._saved: tuple[dict[str, dict[str, str]], dict[str, dict[int, bytes]]] | None = None

    @contextmanager
    def transaction(self) -> Iterator[MemoryStore]:
        """Everything inside happens together, or not at all (nesting joins the outer one)."""
        outer = self._saved is None
        if outer:
            self._saved = copy.deepcopy((self._kv, self._records))
        try:
            yield self
        except BaseException:
            if outer and self._saved is not None:
                self._kv, self._records = self._saved
            raise
        finally:
            if outer:
                self._saved = None

    # -- key/value -------------------------------------------------------------
    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        text = self._kv.get(namespace, {}).get(key)
        return json.loads(text) if text is not None else default

    def put(self, namespace: str, key: str, value: Any) -> None:
        self._kv.setdefault(namespace, {})[key] = json.dumps(value, sort_keys=True)

    def delete(self, namespace: str, key: str) -> bool:
        return self._kv.get(namespace, {}).pop(key, None) is not None

    def items(self, namespace: str) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in sorted(self._kv.get(namespace, {}).items())}

    # -- ordered records ---------------------------------------------------------
    def append(self, namespace: str, data: bytes, record_id: int | None = None) -> int:
        """Store a record; without an id it gets the next one (max + 1, from 1)."""
        records = self._records.setdefault(namespace, {})
        if record_id is None:
            record_id = max(records, default=0) + 1
        records[record_id] = bytes(data)
        return record_id

    def records(self, namespace: str) -> list[tuple[int, bytes]]:
        return sorted(self._records.get(namespace, {}).items())

    def delete_record(self, namespace: str, record_id: int) -> bool:
        return self._records.get(namespace, {}).pop(record_id, None) is not None

    def clear(self, namespace: str) -> None:
        self._kv.pop(namespace, None)
        self._records.pop(namespace, None)

    def close(self) -> None:
        """Nothing to release (a BMC's owner closes its store either way)."""
