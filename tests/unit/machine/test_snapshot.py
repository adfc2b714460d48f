"""Snapshots: what keys one, which machines may use one, and the BMC journal that restores the BMC."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import pytest

from vhw.guests.images import GUESTS, GuestImage
from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import CC, Context, NetFn
from vhw.ipmi.core.config import BmcConfig
from vhw.machine import snapshot as snap
from vhw.machine.description import default_description, parse_description
from vhw.machine.qemu import Links, build_argv

APP, STORAGE = NetFn.APP, NetFn.STORAGE
KCS = Context(interface="kcs")


def image(tmp_path: Path, name: str = "linux-x86-abc123") -> GuestImage:
    path = tmp_path / name
    path.mkdir(exist_ok=True)
    return GuestImage(GUESTS["linux-x86"], path, {"kernel": "vmlinux", "initrd": "initramfs.cpio.lz4"})


def argv_of(desc, img, *, qmp_fd=10, sock="/tmp/vhw-bmc-aaaa/kcs.sock", extra=()):
    chardevs = {name: f"path={sock.replace('kcs', name)},reconnect=1" for name in desc.bmc.interfaces}
    links = Links(qmp_fd, qmp_fd + 1, qmp_fd + 2, chardevs)
    return build_argv(desc, img, links, accel="tcg", qemu="/usr/bin/qemu-system-x86_64", extra=list(extra)), chardevs


def key_of(desc, img, version="QEMU emulator version 7.2.22", **kw):
    argv, chardevs = argv_of(desc, img, **kw)
    return snap.snapshot_key(desc=desc, image=img, argv=argv, bmc_links=chardevs, qemu_version=version)


# -- the key ------------------------------------------------------------------------


def test_argv_for_key_drops_fd_numbers_and_bmc_socket_paths(tmp_path):
    desc = default_description(interfaces=("kcs",))
    a, links_a = argv_of(desc, image(tmp_path), qmp_fd=10, sock="/tmp/vhw-bmc-aaaa/kcs.sock")
    b, links_b = argv_of(desc, image(tmp_path), qmp_fd=23, sock="/tmp/vhw-bmc-zzzz/kcs.sock")
    assert a != b
    assert snap.argv_for_key(a, links_a) == snap.argv_for_key(b, links_b)
    normal = snap.argv_for_key(a, links_a)
    assert "socket,id=qmp,fd=<fd>" in normal
    assert "socket,id=ipmi0,<bmc:kcs>" in normal
    assert not any("/tmp/vhw-bmc-" in arg for arg in normal)


def test_one_description_one_key_across_runs(tmp_path):
    desc = default_description(interfaces=("kcs",))
    assert key_of(desc, image(tmp_path), qmp_fd=10) == key_of(desc, image(tmp_path), qmp_fd=40,
                                                                   sock="/tmp/vhw-bmc-q/kcs.sock")


@pytest.mark.parametrize("change", ["memory", "interfaces", "bmc_config", "qemu_version", "image", "extra_args"])
def test_everything_that_shapes_a_snapshot_changes_its_key(tmp_path, change):
    desc = default_description(interfaces=("kcs",))
    img = image(tmp_path)
    base = key_of(desc, img)
    if change == "memory":
        other = key_of(dataclasses.replace(desc, machine=dataclasses.replace(desc.machine, memory=512)), img)
    elif change == "interfaces":
        other = key_of(default_description(interfaces=("bt",)), img)
    elif change == "bmc_config":  # not on the command line, but the BMC's answers: in the description
        changed = parse_description({"bmc": {"interfaces": ["kcs"], "device_id": 0x21}})
        assert snap.argv_for_key(*argv_of(changed, img)) == snap.argv_for_key(*argv_of(desc, img))
        other = key_of(changed, img)
    elif change == "qemu_version":
        other = key_of(desc, img, version="QEMU emulator version 8.2.0")
    elif change == "image":
        other = key_of(desc, image(tmp_path, "linux-x86-def456"))
    else:
        other = key_of(desc, img, extra=["-rtc", "base=utc"])
    assert other != base


# -- which machines may use one ------------------------------------------------------


def test_the_built_linux_guest_with_vhws_bmc_may_use_a_snapshot(tmp_path):
    desc = default_description(interfaces=("kcs", "bt", "ssif"))
    assert snap.snapshot_unsupported(desc, image(tmp_path), access="agent") is None


@pytest.mark.parametrize("data, access, extra, words", [
    ({"i2o": [{}]}, "agent", (), "x-pci-proxy-dev"),
    ({}, "console", (), "console"),
    ({"machine": {"state": "/tmp/state"}, "bmc": {"interfaces": ["kcs"]}}, "agent", (), "state"),
    ({"bmc": {"backend": "extern", "address": "unix:/tmp/b.sock", "interfaces": ["kcs"]}}, "agent", (), "external"),
    ({}, "agent", ("-incoming", "defer"), "incoming"),
])
def test_machines_whose_state_is_not_in_a_snapshot_boot_normally(tmp_path, data, access, extra, words):
    desc = parse_description(data)
    why = snap.snapshot_unsupported(desc, image(tmp_path), access=access, extra_args=extra)
    assert why is not None and words in why


def test_a_downloaded_guest_boots_normally():
    from vhw.guests.remote import DiskImage

    why = snap.snapshot_unsupported(default_description(), object.__new__(DiskImage), access="agent")
    assert why is not None and "disk" in why


def test_faults_make_a_machine_boot_normally(tmp_path):
    desc = parse_description({"bmc": {"interfaces": ["kcs"]},
                              "fault": [{"device": "bmc", "action": "drop", "netfn": 6, "cmd": 1}]})
    why = snap.snapshot_unsupported(desc, image(tmp_path), access="agent")
    assert why is not None and "fault" in why


def test_vhw_snapshot_env_turns_snapshots_off(monkeypatch):
    monkeypatch.setenv(snap.SNAPSHOT_ENV, "0")
    assert snap.snapshots_enabled(None) is False
    assert snap.snapshots_enabled(True) is True
    monkeypatch.delenv(snap.SNAPSHOT_ENV)
    assert snap.snapshots_enabled(None) is True
    assert snap.snapshots_enabled(False) is False


# -- the BMC journal -----------------------------------------------------------------

SEL_RECORD = bytes.fromhex("0000 02 00000000 2000 04 07 2a 6f 01ffff".replace(" ", ""))


def get_sel_entry(bmc, record_id: int, now: float):
    # IPMI 2.0 section 31.5: reservation (0 for a whole-record read), record ID, offset 0, FFh bytes
    return bmc.handle(STORAGE, 0x43, b"\x00\x00" + struct.pack("<H", record_id) + b"\x00\xff", KCS, now)


def test_a_replayed_journal_rebuilds_what_the_guest_saw():
    """Global enables (IPMI 2.0 section 22.1), a SEL entry (31.6) and a running watchdog (27.6, 27.7)."""
    original = create_bmc(BmcConfig.from_dict({}))
    journal = snap.BmcJournal()
    journal.attach(original)
    assert original.handle(APP, 0x2E, b"\x0d", KCS, 100.0).cc == CC.OK  # Set BMC Global Enables
    added = original.handle(STORAGE, 0x44, SEL_RECORD, KCS, 101.0)  # Add SEL Entry
    assert added.cc == CC.OK
    record_id = struct.unpack("<H", added.data)[0]
    # Set Watchdog Timer: SMS/OS use, no action, 10.0 s (100 x 100 ms); Reset starts it.
    assert original.handle(APP, 0x24, bytes([0x04, 0x00, 0x00, 0x00, 100, 0]), KCS, 102.0).cc == CC.OK
    assert original.handle(APP, 0x22, b"", KCS, 102.0).cc == CC.OK
    journal.saved_at = 105.0
    journal.detach()
    assert original.recorder is None
    assert original.handle(APP, 0x01, b"", KCS, 106.0).cc == CC.OK  # after detach: not recorded
    assert len(journal.entries) == 4

    stored = snap.BmcJournal.from_json(json.loads(json.dumps(journal.to_json())))
    restored = create_bmc(BmcConfig.from_dict({}))
    assert stored.replay(restored, now=5000.0) == 4
    assert restored.handle(APP, 0x2F, b"", KCS, 5000.0).data == original.handle(APP, 0x2F, b"", KCS, 105.0).data
    entry = get_sel_entry(restored, record_id, 5000.0)
    assert entry.cc == CC.OK
    record = entry.data[2:]  # after the next record ID: table 32-1, ID, type, timestamp, the rest as added
    assert struct.unpack("<H", record[0:2])[0] == record_id and record[2] == SEL_RECORD[2]
    assert record[7:] == SEL_RECORD[7:]
    # Added 4 s before the save: stamped 4 s before the restore (the BMC's clock base is 0 here).
    assert struct.unpack("<I", record[3:7])[0] == 4996
    watchdog = restored.handle(APP, 0x25, b"", KCS, 5000.0)  # Get Watchdog Timer, table 27-7
    assert watchdog.cc == CC.OK
    present = struct.unpack("<H", watchdog.data[6:8])[0]
    assert watchdog.data[0] & 0x40  # running
    assert 65 <= present <= 75  # 3 s of 10 ran before the save: 7 s left at the restore, not expired
    assert restored.take_actions() == []


def test_a_journal_of_a_lan_context_survives_json():
    ctx = Context(channel=1, interface="lanplus", session_id=7, peer=("127.0.0.1", 623))
    journal = snap.BmcJournal(entries=[(1.0, 6, 1, b"", ctx)], saved_at=2.0)
    back = snap.BmcJournal.from_json(json.loads(json.dumps(journal.to_json())))
    assert back.entries == journal.entries and back.saved_at == 2.0


# -- the cache -------------------------------------------------------------------------


def test_publish_find_and_refuse(tmp_path, monkeypatch):
    monkeypatch.setenv("VHW_CACHE_DIR", str(tmp_path))
    assert snap.find_snapshot("k1") is None
    with snap.building("k1") as staging:
        assert staging is not None
        with snap.building("k1") as second:
            assert second is None  # another maker holds the lock: boot without saving
        (staging / "vm.state").write_bytes(b"QEVM")
        published = snap.publish(staging, "k1", snap.BmcJournal(saved_at=3.0), {"machine": "m"})
    found = snap.find_snapshot("k1")
    assert found is not None and found.directory == published.directory
    assert found.journal().saved_at == 3.0
    assert json.loads((found.directory / "meta.json").read_text())["format"] == snap.SNAPSHOT_FORMAT
    snap.mark_unrestorable("k1", "QEMU said no")
    assert snap.find_snapshot("k1") is None
    assert snap.unrestorable("k1") == "QEMU said no"


def test_prune_keeps_the_most_recently_used(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("VHW_CACHE_DIR", str(tmp_path))
    for i in range(4):
        with snap.building(f"k{i}") as staging:
            (staging / "vm.state").write_bytes(b"x")
            snap.publish(staging, f"k{i}", snap.BmcJournal(), {})
        os.utime(snap.snapshots_dir() / f"k{i}" / "meta.json", (1000 + i, 1000 + i))
    snap.prune(keep=2)
    assert [k for k in ("k0", "k1", "k2", "k3") if snap.find_snapshot(k)] == ["k2", "k3"]
