"""The BMC's non-volatile port: the machine's SQLite store and the in-memory
store of a bare BMC keep one contract (JSON values, ordered records,
transactions that roll back)."""

from __future__ import annotations

import pytest

from vhw.ipmi.core.nonvolatile import MemoryStore
from vhw.store import Store


@pytest.fixture(params=["sqlite", "memory"])
def nonvolatile(request):
    store = Store(None) if request.param == "sqlite" else MemoryStore()
    yield store
    store.close()


def test_both_stores_keep_json_values_and_ordered_records(nonvolatile):
    s = nonvolatile
    s.put("users", "2", {"name": "admin", "flags": (1, 2)})
    assert s.get("users", "2") == {"name": "admin", "flags": [1, 2]}   # as JSON keeps it
    assert s.get("users", "9", "none") == "none"
    s.put("users", "1", 5)
    assert list(s.items("users")) == ["1", "2"]
    assert s.delete("users", "1") and not s.delete("users", "1")
    assert s.append("sel", b"a") == 1 and s.append("sel", b"b") == 2 and s.append("sel", b"z", 7) == 7
    assert s.records("sel") == [(1, b"a"), (2, b"b"), (7, b"z")]
    assert s.delete_record("sel", 2) and s.records("sel") == [(1, b"a"), (7, b"z")]
    s.clear("sel")
    assert s.records("sel") == [] and s.get("users", "2") is not None


def test_both_stores_roll_a_failed_transaction_back(nonvolatile):
    s = nonvolatile
    s.put("ns", "k", 1)
    with pytest.raises(RuntimeError), s.transaction():
        s.put("ns", "k", 2)
        with s.transaction():                      # nested: joins the outer one
            s.append("rec", b"x")
        raise RuntimeError("boom")
    assert s.get("ns", "k") == 1 and s.records("rec") == []
