"""The SQLite store: atomic changes, and nothing committed is lost to SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from vhw.store import SCHEMA_VERSION, Store, StoreError


def test_key_values_round_trip_as_json(tmp_path):
    s = Store(tmp_path / "state.db")
    s.put("users", "2", {"name": "admin", "enabled": True})
    s.put("users", "3", {"name": "op"})
    assert s.get("users", "2") == {"name": "admin", "enabled": True}
    assert s.get("users", "9", "none") == "none"
    assert list(s.items("users")) == ["2", "3"]
    assert s.delete("users", "3") and not s.delete("users", "3")
    s.close()
    assert Store(tmp_path / "state.db").items("users") == {"2": {"name": "admin", "enabled": True}}


def test_records_get_increasing_ids_and_can_be_replaced_deleted_cleared():
    s = Store(None)
    assert [s.append("sel", b"a"), s.append("sel", b"b")] == [1, 2]
    assert s.append("sel", b"B", record_id=2) == 2
    assert s.records("sel") == [(1, b"a"), (2, b"B")]
    assert s.delete_record("sel", 1) and s.records("sel") == [(2, b"B")]
    assert s.append("sel", b"c") == 3
    s.put("sel", "overflow", True)
    s.clear("sel")
    assert s.records("sel") == [] and s.items("sel") == {}


def test_a_failed_transaction_changes_nothing():
    s = Store(None)
    s.put("chassis", "policy", "always-off")
    with pytest.raises(RuntimeError), s.transaction():
        s.put("chassis", "policy", "always-on")
        s.append("sel", b"x")
        with s.transaction():  # nested: joins the outer one
            s.put("chassis", "boot", "pxe")
        raise RuntimeError("power failed mid-change")
    assert s.get("chassis", "policy") == "always-off"
    assert s.get("chassis", "boot") is None and s.records("sel") == []


def test_newer_schema_and_garbage_files_are_refused(tmp_path):
    newer = tmp_path / "newer.db"
    s = Store(newer)
    s._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    s.close()
    with pytest.raises(StoreError, match="newer than this vhw"):
        Store(newer)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot use state file"):
        Store(junk)


def test_sigkill_loses_nothing_committed(tmp_path):
    """A writer killed with SIGKILL at a random moment: every change it reported
    committed is there, the file passes SQLite's integrity check."""
    db = tmp_path / "state.db"
    writer = textwrap.dedent(f"""
        import sys
        from vhw.store import Store
        s = Store({str(db)!r})
        i = s.get("counters", "last", 0)
        while True:
            i += 1
            with s.transaction():
                s.append("sel", i.to_bytes(4, "big") * 4)
                s.put("counters", "last", i)
            print(i, flush=True)
    """)
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        committed = 0
        for line in proc.stdout:
            committed = int(line)
            if committed >= 40 * (round_ + 1):
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        s = Store(db)
        assert s.check() == "ok"
        last = s.get("counters", "last")
        assert last >= committed  # everything reported committed survived
        values = [int.from_bytes(d[:4], "big") for _, d in s.records("sel")]
        assert values[-1] == last  # the record and the counter changed together
        assert len(values) == len(set(values))
        s.close()

