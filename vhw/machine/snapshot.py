"""Machine start from a snapshot: a booted guest saved once, restored by later machines.

A snapshot is QEMU's migration stream of a guest that reached READY, plus
the BMC's side of what that guest saw: the journal of every request the BMC
answered while the snapshot's guest booted, with the time of each.  The BMC
is sans-I/O with time as an argument, so a fresh BMC fed the same requests
at the same relative times is in the state the snapshotted one was in
(global enables, SEL, watchdog countdown, event queues), shifted to the
moment of the restore: a restored guest finds the BMC it left.

A snapshot is keyed by everything that shapes it (``snapshot_key``): the
description, QEMU's command line (file descriptor numbers and socket paths
aside), the QEMU binary and its version, the image (its directory is named
by its recipe's hash, its manifest), and ``SNAPSHOT_FORMAT``.  A missing
snapshot is made by the next machine that boots the description; a changed
input is a different key, so a stale snapshot is never used.  Machines whose
devices cannot be saved boot normally (``snapshot_unsupported`` says why;
docs/snapshots.md).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..ipmi.core.bmc import Context, Privilege

#: Bump when what a snapshot holds, or how it is restored, changes.
SNAPSHOT_FORMAT = 1
#: Snapshots kept in the cache (the least recently used beyond this are removed).
KEEP_SNAPSHOTS = 16
#: $VHW_SNAPSHOT: "0"/"off"/"no" makes every machine boot normally.
SNAPSHOT_ENV = "VHW_SNAPSHOT"


def snapshots_enabled(choice: bool | None) -> bool:
    """A machine's choice (True/False), else $VHW_SNAPSHOT (default: on)."""
    if choice is not None:
        return choice
    return os.environ.get(SNAPSHOT_ENV, "1").strip().lower() not in ("0", "off", "no", "false")


def snapshot_unsupported(desc, image, *, access: str, extra_args: Iterable[str] = ()) -> str | None:
    """Why a machine of ``desc`` booting ``image`` cannot start from a snapshot, or None if it can."""
    from ..guests.images import GuestImage

    m = desc.machine
    if not isinstance(image, GuestImage):
        return "a downloaded guest boots its own disk (an overlay per run), which a snapshot does not carry"
    if access != "agent":
        return "a console-driven guest's login state lives in the host's console driver, not in the snapshot"
    if desc.i2o:
        return "x-pci-proxy-dev (the I2O IOP) has no migration support in QEMU 7.2"
    if desc.prom is not None or m.type in ("sun4u", "sun4m", "SS-5"):
        return "SPARC machines boot their PROM, which is not snapshotted"
    if desc.faults:
        return "[[fault]] tables act at times counted from the VM's start"
    if m.state is not None:
        return "[machine] state keeps the BMC's store on disk: another run may have changed it since the snapshot"
    bmc = desc.bmc
    if bmc is not None and bmc.backend == "extern":
        return "an external BMC's state is outside vhw"
    if bmc is not None and getattr(bmc.config, "sol", None) is not None:
        return "[bmc.sol]: the SOL link's host side is not in the snapshot"
    if any(a in ("-incoming", "-loadvm") for a in extra_args):
        return "the extra QEMU arguments already choose an incoming state"
    return None


# -- the key -----------------------------------------------------------------

_FD = re.compile(r"\bfd=\d+")


def argv_for_key(argv: list[str], bmc_links: dict[str, str]) -> list[str]:
    """``argv`` without what differs between runs of one description: fd numbers, the BMC's socket paths."""
    out = []
    for arg in argv:
        for name, chardev in sorted(bmc_links.items()):
            arg = arg.replace(chardev, f"<bmc:{name}>")
        out.append(_FD.sub("fd=<fd>", arg))
    return out


@cache
def _qemu_version_cached(path: str, mtime_ns: int, size: int) -> str:
    done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else f"unknown {done.returncode}"


def qemu_version(path: str) -> str:
    """The first line of ``path --version`` (asked once per binary as it is on disk)."""
    st = os.stat(path)
    return _qemu_version_cached(path, st.st_mtime_ns, st.st_size)


def description_text(desc) -> str:
    """The description as a stable text (where it was read from aside)."""
    return repr(dataclasses.replace(desc, source=""))


def image_text(image) -> str:
    """The image: its directory (named by its recipe's hash) and manifest."""
    manifest = getattr(image, "manifest", {})
    return f"{getattr(image, 'path', image)} {json.dumps(manifest, sort_keys=True, default=str)}"


def snapshot_key(*, desc, image, argv: list[str], bmc_links: dict[str, str], qemu_version: str) -> str:
    """The cache key of a snapshot: a hash of everything that affects what it holds."""
    parts = {
        "format": SNAPSHOT_FORMAT,
        "qemu": qemu_version,
        "argv": argv_for_key(argv, bmc_links),
        "description": description_text(desc),
        "image": image_text(image),
    }
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


# -- the BMC's journal ---------------------------------------------------------


@dataclass
class BmcJournal:
    """Every request one Bmc answered, with its time: replayed, it rebuilds that Bmc's state.

    ``attach`` becomes the Bmc's ``recorder``, called by ``handle`` (the one
    entry every transport's request goes through: extern, LAN sessions, the
    host API), so recording costs one list append per request.
    """

    entries: list[tuple[float, int, int, bytes, Context]] = field(default_factory=list)
    #: The BMC clock when the VM was stopped for the save.
    saved_at: float = 0.0
    _bmc: Any = None

    def attach(self, bmc) -> None:
        bmc.recorder = self.record
        self._bmc = bmc

    def record(self, now: float, netfn: int, cmd: int, data: bytes, ctx: Context) -> None:
        self.entries.append((now, netfn, cmd, data, ctx))

    def detach(self) -> None:
        if self._bmc is not None:
            self._bmc.recorder = None
            self._bmc = None

    def replay(self, bmc, now: float) -> int:
        """Feed the journal to a fresh ``bmc`` so that ``saved_at`` falls on ``now``; returns the count.

        The answers and the actions the requests queued are dropped: the
        snapshotted guest got them already, and the restored QEMU holds the
        result.  What a reconnect announces (attention, interrupt enable)
        the Bmc says itself.
        """
        shift = now - self.saved_at
        for t, netfn, cmd, data, ctx in self.entries:
            bmc.handle(netfn, cmd, data, ctx, t + shift)
        bmc.poll(now)
        bmc.take_actions()
        return len(self.entries)

    # -- on disk ---------------------------------------------------------------
    def to_json(self) -> dict:
        return {"saved_at": self.saved_at,
                "entries": [[t, netfn, cmd, data.hex(), _context_to_json(ctx)]
                            for t, netfn, cmd, data, ctx in self.entries]}

    @classmethod
    def from_json(cls, data: dict) -> BmcJournal:
        entries = [(float(t), int(netfn), int(cmd), bytes.fromhex(hexdata), _context_from_json(ctx))
                   for t, netfn, cmd, hexdata, ctx in data["entries"]]
        return cls(entries=entries, saved_at=float(data["saved_at"]))


def _context_to_json(ctx: Context) -> dict:
    out = dataclasses.asdict(ctx)
    out["privilege"] = int(ctx.privilege)
    if isinstance(ctx.peer, tuple):
        out["peer"] = list(ctx.peer)
    return out


def _context_from_json(data: dict) -> Context:
    data = dict(data)
    data["privilege"] = Privilege(data["privilege"])
    if isinstance(data.get("peer"), list):
        data["peer"] = tuple(data["peer"])
    return Context(**data)


# -- the cache ---------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One snapshot's files in the cache."""

    directory: Path

    @property
    def state(self) -> Path:
        """QEMU's migration stream."""
        return self.directory / "vm.state"

    @property
    def journal_path(self) -> Path:
        return self.directory / "bmc.json"

    @property
    def complete(self) -> bool:
        return (self.directory / "meta.json").is_file() and self.state.is_file() and self.journal_path.is_file()

    def journal(self) -> BmcJournal:
        return BmcJournal.from_json(json.loads(self.journal_path.read_text()))

    def touch(self) -> None:
        try:
            os.utime(self.directory / "meta.json")
        except OSError:
            pass


def snapshots_dir() -> Path:
    from ..guests.images import cache_dir

    return cache_dir() / "snapshots"


def find_snapshot(key: str) -> Snapshot | None:
    """The complete snapshot for ``key``, or None."""
    snap = Snapshot(snapshots_dir() / key)
    return snap if snap.complete else None


@contextmanager
def building(key: str) -> Iterator[Path | None]:
    """A staging directory for ``key``'s snapshot, or None if another process is making it now."""
    root = snapshots_dir()
    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / f".{key}.lock", "w")
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        staging = root / f".{key}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        lock.close()


def publish(staging: Path, key: str, journal: BmcJournal, meta: dict) -> Snapshot:
    """Make a staged snapshot (its vm.state written) the cache's entry for ``key``."""
    (staging / "bmc.json").write_text(json.dumps(journal.to_json()))
    (staging / "meta.json").write_text(json.dumps({**meta, "key": key, "format": SNAPSHOT_FORMAT,
                                                   "created": time.time()}, indent=2, default=str))
    target = snapshots_dir() / key
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staging, target)
    prune(keep=KEEP_SNAPSHOTS)
    return Snapshot(target)


def discard(key: str) -> None:
    """Remove ``key``'s snapshot (it failed to restore)."""
    shutil.rmtree(snapshots_dir() / key, ignore_errors=True)


def _refusal_path(key: str) -> Path:
    return snapshots_dir() / f".{key}.unrestorable"


def mark_unrestorable(key: str, why: str) -> None:
    """Remember that ``key``'s snapshot did not restore (and remove it): its machines boot normally."""
    discard(key)
    path = _refusal_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(why[:2000] + "\n")


def unrestorable(key: str) -> str | None:
    """Why ``key``'s snapshot is not to be tried again, or None."""
    try:
        return _refusal_path(key).read_text().strip() or "unknown"
    except OSError:
        return None


def prune(keep: int) -> None:
    """Keep the ``keep`` most recently used snapshots."""
    root = snapshots_dir()
    snaps = [Snapshot(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    complete = sorted((s for s in snaps if s.complete), key=lambda s: (s.directory / "meta.json").stat().st_mtime,
                      reverse=True)
    for snap in complete[keep:]:
        shutil.rmtree(snap.directory, ignore_errors=True)
