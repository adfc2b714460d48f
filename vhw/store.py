"""Non-volatile state: one SQLite file per machine, every change a transaction.

Whatever a real BMC keeps in flash (SEL, users, non-volatile channel access,
FRU writes, persistent boot options, restore policy, LAN parameters) lives
here.  Two shapes cover it:

- a key/value map per namespace, values as JSON (settings);
- ordered records per namespace, values as bytes with an integer id (SEL
  entries, SDRs).

Each call commits on its own; ``with store.transaction():`` makes several
calls one atomic change.  The database runs in WAL mode with
``synchronous=FULL``: a process killed with SIGKILL at any moment loses
nothing that was committed, and never leaves a half-written change.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from .errors import VhwError

#: Bump with a new entry in _MIGRATIONS when the schema changes.
SCHEMA_VERSION = 1

_MIGRATIONS = {
    1: [
        "CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (namespace, key))",
        "CREATE TABLE records (namespace TEXT NOT NULL, id INTEGER NOT NULL, data BLOB NOT NULL,"
        " PRIMARY KEY (namespace, id))",
    ],
}


class StoreError(VhwError):
    """The state file cannot be opened or is not a vhw store."""


class Store:
    """A machine's non-volatile state.  ``Store(None)`` keeps it in memory."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        target = str(self.path) if self.path is not None else ":memory:"
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot use state file {target}: {e}") from None
        self._lock = threading.RLock()
        self._depth = 0

    # -- schema ------------------------------------------------------------
    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"state file has schema {version}, newer than this vhw ({SCHEMA_VERSION})")
        for v in range(version + 1, SCHEMA_VERSION + 1):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[v]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {v}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- transactions ------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Everything inside commits together, or not at all (nesting joins the outer one)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self.transaction():
            return self._db.execute(sql, args)

    # -- key/value -----------------------------------------------------------
    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE namespace=? AND key=?", (namespace, key)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, namespace: str, key: str, value: Any) -> None:
        text = json.dumps(value, sort_keys=True)
        self._exec("INSERT INTO kv VALUES (?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET value=excluded.value",
                   (namespace, key, text))

    def delete(self, namespace: str, key: str) -> bool:
        return self._exec("DELETE FROM kv WHERE namespace=? AND key=?", (namespace, key)).rowcount > 0

    def items(self, namespace: str) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM kv WHERE namespace=? ORDER BY key", (namespace,)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    # -- ordered records -----------------------------------------------------
    def append(self, namespace: str, data: bytes, record_id: int | None = None) -> int:
        """Store a record; without an id it gets the next one (max + 1, from 1)."""
        with self.transaction():
            if record_id is None:
                row = self._db.execute("SELECT MAX(id) FROM records WHERE namespace=?", (namespace,)).fetchone()
                record_id = (row[0] or 0) + 1
            self._db.execute("INSERT INTO records VALUES (?, ?, ?) ON CONFLICT (namespace, id) "
                             "DO UPDATE SET data=excluded.data", (namespace, record_id, bytes(data)))
        return record_id

    def records(self, namespace: str) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._db.execute("SELECT id, data FROM records WHERE namespace=? ORDER BY id",
                                    (namespace,)).fetchall()
        return [(i, bytes(d)) for i, d in rows]

    def delete_record(self, namespace: str, record_id: int) -> bool:
        return self._exec("DELETE FROM records WHERE namespace=? AND id=?", (namespace, record_id)).rowcount > 0

    def clear(self, namespace: str) -> None:
        """Drop every key and record of a namespace."""
        with self.transaction():
            self._db.execute("DELETE FROM kv WHERE namespace=?", (namespace,))
            self._db.execute("DELETE FROM records WHERE namespace=?", (namespace,))

    # -- health ----------------------------------------------------------------
    def check(self) -> str:
        """SQLite's integrity check: 'ok' for an intact file."""
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
