"""What the BMC keeps in its state file survives a restart, and a SIGKILL.

Non-volatile per the spec: the user table with passwords (22.26-22.30),
non-volatile channel access (22.22, "01b = set non-volatile"), the power
restore policy (28.8), the semi-volatile boot options (28.12, table 28-14;
here: kept), system info parameters 1-3 (table 22-16a), and the DCMI asset
tag and ID string.  Volatile channel access comes back as the non-volatile
setting on every start (22.22).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vhw.ipmi.core.assemble import create_bmc
from vhw.ipmi.core.bmc import Context
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.wire.extern import ExternCodec, Response, Role, encode_control, encode_request
from vhw.store import Store

SI = Context()
APP, CHASSIS, DCMI = 0x06, 0x00, 0x2C
PXE_PERSISTENT = [0xC0, 0x04, 0x00, 0x00, 0x00]

#: (netfn, cmd, data) changes, each answered 00h, then what must be read back.
CHANGES = [
    (APP, 0x45, [0x05] + list(b"kilroy".ljust(16, b"\0"))),  # Set User Name
    (APP, 0x47, [0x05, 0x02] + list(b"was-here".ljust(16, b"\0"))),  # Set User Password
    (APP, 0x47, [0x05, 0x01]),  # enable user 5
    (APP, 0x43, [0x91, 0x05, 0x03]),  # Set User Access: operator, messaging, channel 1
    (APP, 0x40, [0x01, 0x40 | 0x01, 0x40 | 0x03]),  # Set Channel Access NV: pre-boot only, operator
    (APP, 0x40, [0x01, 0x80 | 0x00, 0x80 | 0x02]),  # ... volatile: disabled, user
    (CHASSIS, 0x06, [0x02]),  # Set Power Restore Policy: always on
    (CHASSIS, 0x08, [0x05] + PXE_PERSISTENT),  # Set System Boot Options: persistent PXE
    (DCMI, 0x08, [0xDC, 0x00, 0x06] + list(b"TAG-42")),  # DCMI Set Asset Tag
    (APP, 0x58, [0x02, 0x00, 0x00, 0x05] + list(b"node3".ljust(14, b"\0"))),  # system name
]


def check_restored(ask) -> None:
    """``ask(netfn, cmd, data) -> (cc, data)`` against a restarted BMC."""
    assert ask(APP, 0x46, [0x05]) == (0, b"kilroy".ljust(16, b"\0"))
    assert ask(APP, 0x47, [0x05, 0x03] + list(b"was-here".ljust(16, b"\0")))[0] == 0
    assert ask(APP, 0x47, [0x05, 0x03] + list(b"wrong".ljust(16, b"\0")))[0] == 0x80
    assert ask(APP, 0x44, [0x01, 0x05]) == (0, bytes([15, 0x40 | 1, 1, 0x10 | 0x03]))
    assert ask(APP, 0x41, [0x01, 0x40]) == (0, bytes([0x01, 0x03]))  # non-volatile kept
    assert ask(APP, 0x41, [0x01, 0x80]) == (0, bytes([0x01, 0x03]))  # volatile = non-volatile again
    assert (ask(CHASSIS, 0x01, [])[1][0] >> 5) & 3 == 2  # always on
    assert ask(CHASSIS, 0x09, [0x05, 0, 0]) == (0, bytes([0x01, 0x05] + PXE_PERSISTENT))
    assert ask(DCMI, 0x06, [0xDC, 0, 16]) == (0, bytes([0xDC, 6]) + b"TAG-42")
    assert ask(APP, 0x59, [0x00, 0x02, 0x00, 0x00])[1][:8] == bytes([0x11, 0x00, 0x00, 0x05]) + b"node"


def test_a_bmc_rebuilt_on_the_same_file_has_every_change(tmp_path):
    path = tmp_path / "m.db"
    bmc = create_bmc(BmcConfig(), store=Store(path))
    for netfn, cmd, data in CHANGES:
        assert bmc.handle(netfn, cmd, bytes(data), SI, 0.0).cc == 0, (netfn, cmd)
    assert bmc.handle(APP, 0x41, bytes([0x01, 0x80]), SI, 0.0).data == bytes([0x00, 0x02])
    bmc.store.close()

    again = create_bmc(BmcConfig(), store=Store(path))

    def ask(netfn, cmd, data):
        rsp = again.handle(netfn, cmd, bytes(data), SI, 0.0)
        return rsp.cc, rsp.data

    check_restored(ask)


def test_volatile_settings_start_fresh(tmp_path):
    """Boot options set-in-progress and acknowledge, and the OS name (system
    info 4), are volatile: a new BMC does not have them."""
    path = tmp_path / "m.db"
    bmc = create_bmc(BmcConfig(), store=Store(path))
    for netfn, cmd, data in ((CHASSIS, 0x08, [0x00, 0x01]), (CHASSIS, 0x08, [0x04, 0x01, 0x01]),
                             (APP, 0x58, [0x04, 0x00, 0x00, 0x02] + list(b"os".ljust(14, b"\0")))):
        assert bmc.handle(netfn, cmd, bytes(data), SI, 0.0).cc == 0
    bmc.store.close()
    again = create_bmc(BmcConfig(), store=Store(path))
    assert again.handle(CHASSIS, 0x09, bytes([0, 0, 0]), SI, 0.0).data == bytes([0x01, 0x00, 0x00])
    assert again.handle(CHASSIS, 0x09, bytes([4, 0, 0]), SI, 0.0).data == bytes([0x01, 0x04, 0x00, 0x00])
    assert again.handle(APP, 0x59, bytes([0, 4, 0, 0]), SI, 0.0).data[2:4] == b"\0\0"


# -- a real `vhw bmc` process, killed with SIGKILL ---------------------------------------
class FakeQemu:
    """Plays QEMU's side of ipmi-bmc-extern over the BMC's UNIX socket."""

    def __init__(self, path: Path):
        deadline = time.monotonic() + 20
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(10)
        self.codec = ExternCodec(Role.VM)
        self.seq = 0
        self.sock.sendall(encode_control(0xFF, 1) + encode_control(0x08, 0x3F))  # version, capabilities

    def ask(self, netfn, cmd, data):
        self.seq = (self.seq + 1) & 0xFF
        self.sock.sendall(encode_request(self.seq, netfn, 0, cmd, bytes(data)))
        while True:
            for event in self.codec.receive_data(self.sock.recv(4096)):
                if isinstance(event, Response) and event.seq == self.seq:
                    return event.cc, event.data

    def close(self):
        self.sock.close()


def start_bmc(state: Path, sock: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vhw.cli", "bmc", "--state", str(state),
                             "--extern", f"unix:{sock}"], stderr=subprocess.DEVNULL)


def test_sigkill_keeps_every_committed_change(tmp_path):
    """Changes answered 00h over the extern socket are committed: after a
    SIGKILL, a new `vhw bmc --state DIR` on the same directory has them all,
    and the state file (DIR/vhw.db) passes SQLite's integrity check."""
    state = tmp_path / "state"
    sockdir = Path(tempfile.mkdtemp(prefix="vhw-p-"))  # UNIX paths are short
    sock = sockdir / "bmc.sock"
    proc = start_bmc(state, sock)
    try:
        qemu = FakeQemu(sock)
        for netfn, cmd, data in CHANGES:
            assert qemu.ask(netfn, cmd, data)[0] == 0, (netfn, cmd)
        qemu.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sock.unlink(missing_ok=True)
        store = Store(state / "vhw.db")
        assert store.check() == "ok"
        store.close()

        proc = start_bmc(state, sock)
        qemu = FakeQemu(sock)
        check_restored(qemu.ask)
        qemu.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.unlink(missing_ok=True)
        sockdir.rmdir()


# -- where the state file lives ----------------------------------------------------------
def test_machine_state_key_and_cli_flags_name_the_state_directory(tmp_path):
    """One SQLite file per machine: DIR/<machine name>.db; no key = in memory."""
    import pytest

    from vhw.cli import _load_description, build_parser
    from vhw.errors import DescriptionError
    from vhw.ipmi.io.service import state_file
    from vhw.machine.description import parse_description

    assert parse_description({"machine": {"name": "a", "state": "st"}}).machine.state == "st"
    assert parse_description({}).machine.state is None
    with pytest.raises(DescriptionError) as e:
        parse_description({"machine": {"state": ""}})
    assert e.value.key == "machine.state"

    desc_file = tmp_path / "m.toml"
    desc_file.write_text('[machine]\nname = "node7"\n')
    assert state_file(tmp_path / "s", str(desc_file)) == tmp_path / "s" / "node7.db"
    assert state_file(tmp_path / "s", None) == tmp_path / "s" / "vhw.db"
    args = build_parser().parse_args(["run", "--machine", str(desc_file), "--state", "dir", "--ipmi", "kcs",
                                      "--", "true"])
    assert _load_description(args).machine.state == "dir"
    assert build_parser().parse_args(["bmc", "--extern", "unix:/x", "--state", "d"]).state == "d"


def test_bmc_cold_reset_reloads_volatile_channel_access_from_non_volatile():
    """22.22: the volatile setting is what the BMC starts with; a Cold Reset
    (20.2) is a BMC restart."""
    bmc = create_bmc(BmcConfig())
    assert bmc.handle(APP, 0x40, bytes([0x01, 0x80, 0x80 | 0x02]), SI, 0.0).cc == 0
    assert bmc.handle(APP, 0x41, bytes([0x01, 0x80]), SI, 0.0).data == bytes([0x00, 0x02])
    assert bmc.handle(APP, 0x02, b"", SI, 0.0).cc == 0
    bmc.poll(0.1)  # the reset happens after the answer went out
    assert bmc.handle(APP, 0x41, bytes([0x01, 0x80]), SI, 0.2).data == bytes([0x02, 0x04])
