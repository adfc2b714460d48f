"""Downloaded guests: pins, resumable downloads, cache, unpacking, overlays,
QEMU argv per OS, and the CLI when the publisher is (un)reachable.

Everything runs against the local FileServer (tests/conftest.py); the real
images are never downloaded here.
"""

import gzip
import hashlib
import lzma
import shutil
import socket
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from vhw.guests import remote
from vhw.cli import main as vhw_main
from vhw.errors import ImageError
from vhw.guests.guest_test import recipe_description
from vhw.machine.qemu import Links, build_argv
from vhw.guests.remote import REMOTE_GUESTS, Digest

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes: several read chunks


def sha256(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VHW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VHW_MIRROR", raising=False)
    for r in REMOTE_GUESTS.values():
        monkeypatch.delenv(r.env_pin, raising=False)
    return tmp_path / "cache"


# -- checksum files and pins ------------------------------------------------------
def test_checksum_files_in_the_three_published_styles():
    h = "ab" * 32
    bsd = f"SHA256 (other.raw.xz) = {'cd' * 32}\nSHA256 (FreeBSD-x.raw.xz) = {h}\n"
    assert remote.parse_checksums(bsd, "FreeBSD-x.raw.xz", "sha256") == Digest("sha256", h)
    gnu = f"{'cd' * 32}  other.img.zst\n{h.upper()} *OI-hipster-cloudimage.img.zst\n"
    assert remote.parse_checksums(gnu, "OI-hipster-cloudimage.img.zst", "sha256") == Digest("sha256", h)
    assert remote.parse_checksums(h + "\n", "omnios.cloud.qcow2", "sha256") == Digest("sha256", h)
    h512 = "ef" * 64
    assert remote.parse_checksums(f"SHA512 (NetBSD-10.1-amd64-live.img.gz) = {h512}\n",
                                  "NetBSD-10.1-amd64-live.img.gz", "sha512") == Digest("sha512", h512)
    with pytest.raises(ImageError, match="no sha256 digest for missing.img"):
        remote.parse_checksums(bsd, "missing.img", "sha256")


def test_an_unpinned_guest_is_refused_with_the_way_to_pin_it(tmp_path):
    recipe = REMOTE_GUESTS["freebsd-14-amd64"]  # pinned in the shipped file, not in this empty table
    with pytest.raises(ImageError) as e:
        remote.pin_for(recipe, pins={})
    assert "vhw guest pin freebsd-14-amd64" in str(e.value)
    assert "VHW_PIN_FREEBSD_14_AMD64" in str(e.value)
    assert recipe.checksum_url in str(e.value)


def test_the_environment_pin_wins_over_the_pins_file(monkeypatch):
    recipe = REMOTE_GUESTS["omnios"]
    file_pin = "sha256:" + "11" * 32
    assert remote.pin_for(recipe, pins={"omnios": file_pin}) == Digest("sha256", "11" * 32)
    monkeypatch.setenv("VHW_PIN_OMNIOS", "sha256:" + "22" * 32)
    assert remote.pin_for(recipe, pins={"omnios": file_pin}) == Digest("sha256", "22" * 32)
    monkeypatch.setenv("VHW_PIN_OMNIOS", "sha256:1234")
    with pytest.raises(ImageError, match="VHW_PIN_OMNIOS: 'sha256:1234' is not a pin"):
        remote.pin_for(recipe, pins={})


def test_write_pin_replaces_the_guest_line_and_keeps_the_rest(tmp_path):
    pins = tmp_path / "pins.toml"
    pins.write_text('# reviewed pins\nomnios = "sha256:' + "11" * 32 + '"\n')
    remote.write_pin("netbsd-10-amd64", Digest("sha512", "ee" * 64), pins)
    remote.write_pin("omnios", Digest("sha256", "33" * 32), pins)
    text = pins.read_text()
    assert text.startswith("# reviewed pins\n")
    assert remote.read_pins(pins) == {"omnios": "sha256:" + "33" * 32, "netbsd-10-amd64": "sha512:" + "ee" * 64}


def test_the_shipped_pins_file_parses_and_pins_only_known_guests():
    pins = remote.read_pins()
    assert set(pins) <= set(REMOTE_GUESTS)
    # qemu.git tests/vm/freebsd pins this digest for FreeBSD-14.3-RELEASE-amd64-BASIC-CI.raw.xz.
    assert pins["freebsd-14-amd64"] == "sha256:ec0f5a4bbe63aa50a725d9fee0f1931f850e9a21cbebdadb991df00f168d6805"
    for name, text in pins.items():
        remote.Digest.parse(text, name)


# -- downloads ----------------------------------------------------------------------
def test_a_download_is_verified_cached_and_not_fetched_again(file_server, tmp_path):
    file_server.files["/img.raw"] = PAYLOAD
    dest = tmp_path / "dl" / "img.raw"
    lines = []
    assert remote.download(file_server.url("/img.raw"), dest, sha256(PAYLOAD), progress=lines.append) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("img.raw.part").exists()
    assert any("100%" in line for line in lines)  # progress output on long work
    remote.download(file_server.url("/img.raw"), dest, sha256(PAYLOAD), progress=lines.append)
    assert file_server.gets("/img.raw") == [None]  # one GET, the second call used the cache


def test_a_broken_download_resumes_where_it_stopped(file_server, tmp_path):
    file_server.files["/img.raw"] = PAYLOAD
    file_server.cut_once["/img.raw"] = 300_000
    dest = tmp_path / "img.raw"
    remote.download(file_server.url("/img.raw"), dest, sha256(PAYLOAD), progress=lambda m: None)
    assert dest.read_bytes() == PAYLOAD
    assert file_server.gets("/img.raw") == [None, "bytes=300000-"]


def test_a_partial_file_from_an_earlier_run_is_resumed(file_server, tmp_path):
    file_server.files["/img.raw"] = PAYLOAD
    dest = tmp_path / "img.raw"
    dest.with_name("img.raw.part").write_bytes(PAYLOAD[:1000])
    remote.download(file_server.url("/img.raw"), dest, sha256(PAYLOAD), progress=lambda m: None)
    assert dest.read_bytes() == PAYLOAD
    assert file_server.gets("/img.raw") == ["bytes=1000-"]


def test_a_server_that_ignores_the_range_makes_the_download_start_over(file_server, tmp_path):
    file_server.files["/img.raw"] = PAYLOAD
    file_server.ignore_range.add("/img.raw")
    dest = tmp_path / "img.raw"
    dest.with_name("img.raw.part").write_bytes(PAYLOAD[:1000])
    remote.download(file_server.url("/img.raw"), dest, sha256(PAYLOAD), progress=lambda m: None)
    assert dest.read_bytes() == PAYLOAD  # not the first 1000 bytes twice
    assert file_server.gets("/img.raw") == ["bytes=1000-"]


def test_a_416_answer_to_a_resume_starts_over(file_server, tmp_path):
    file_server.files["/img.raw"] = PAYLOAD
    file_server.refuse_range.add("/img.raw")
    dest = tmp_path / "img.raw"
    dest.with_name("img.raw.part").write_bytes(b"stale bytes of another file")
    remote.download(file_server.url("/img.raw"), dest, sha256(PAYLOAD), progress=lambda m: None)
    assert dest.read_bytes() == PAYLOAD
    assert file_server.gets("/img.raw") == ["bytes=27-", None]


def test_a_digest_mismatch_is_refused_and_the_download_deleted(file_server, tmp_path):
    file_server.files["/img.raw"] = PAYLOAD
    dest = tmp_path / "img.raw"
    wrong = Digest("sha256", "00" * 32)
    with pytest.raises(ImageError, match="sha256 mismatch: the pin is 0000.*the download is " +
                       hashlib.sha256(PAYLOAD).hexdigest()):
        remote.download(file_server.url("/img.raw"), dest, wrong, progress=lambda m: None)
    assert list(tmp_path.glob("img.raw*")) == [tmp_path / "img.raw.lock"]


def test_a_missing_file_is_a_clear_error(file_server, tmp_path):
    with pytest.raises(ImageError, match=r"downloading .*/nothing failed: HTTP 404 Not Found"):
        remote.download(file_server.url("/nothing"), tmp_path / "x", Digest("sha256", "00" * 32),
                        progress=lambda m: None)


def test_two_runs_at_once_download_once(file_server, tmp_path):
    file_server.files["/img.raw"] = PAYLOAD
    dest = tmp_path / "img.raw"
    errors = []

    def worker():
        try:
            remote.download(file_server.url("/img.raw"), dest, sha256(PAYLOAD), progress=lambda m: None)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert dest.read_bytes() == PAYLOAD
    assert file_server.gets("/img.raw") == [None]


def test_reachable_tells_an_answering_server_from_a_closed_port(file_server):
    assert remote.reachable(file_server.url("/anything")) == (True, "")  # a 404 is an answer
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, why = remote.reachable(f"http://127.0.0.1:{port}/x", timeout=2)
    assert not ok and "refused" in why.lower()


# -- unpacking, overlays, seeds ----------------------------------------------------------
@pytest.mark.parametrize("compression", ["xz", "gz", "zst", None])
def test_unpack_each_compression(tmp_path, compression):
    src = tmp_path / "packed"
    if compression == "xz":
        src.write_bytes(lzma.compress(PAYLOAD))
    elif compression == "gz":
        src.write_bytes(gzip.compress(PAYLOAD))
    elif compression == "zst":
        if shutil.which("zstd") is None:
            pytest.skip("zstd is not installed (make deps installs it)")
        (tmp_path / "raw").write_bytes(PAYLOAD)
        subprocess.run(["zstd", "-q", "-o", str(src), str(tmp_path / "raw")], check=True)
    else:
        src.write_bytes(PAYLOAD)
    out = remote.unpack(src, tmp_path / "disk.img", compression)
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "disk.img.tmp").exists()


def test_a_corrupt_archive_is_a_clear_error_and_leaves_nothing(tmp_path):
    src = tmp_path / "packed.xz"
    src.write_bytes(b"not xz at all")
    with pytest.raises(ImageError, match="cannot unpack"):
        remote.unpack(src, tmp_path / "disk.img", "xz")
    assert not (tmp_path / "disk.img").exists() and not (tmp_path / "disk.img.tmp").exists()


def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (make deps installs it)")


def test_the_overlay_takes_the_writes_and_the_base_image_stays_unchanged(tmp_path):
    _need("qemu-img")
    _need("qemu-io")
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * (1 << 20))
    before = hashlib.sha256(base.read_bytes()).hexdigest()
    overlay = remote.make_overlay(base, tmp_path / "run.qcow2", "raw")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 64k", str(overlay)], check=True,
                   capture_output=True)
    read = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 64k", str(overlay)],
                          capture_output=True, text=True, check=True)
    assert "Pattern verification failed" not in read.stdout + read.stderr
    assert hashlib.sha256(base.read_bytes()).hexdigest() == before
    assert remote.image_format(overlay) == "qcow2" and remote.image_format(base) == "raw"


def test_the_cloud_init_seed_is_an_iso_labelled_cidata(tmp_path):
    if not (shutil.which("genisoimage") or shutil.which("mkisofs") or shutil.which("xorrisofs")):
        pytest.skip("genisoimage is not installed (make deps installs it)")
    iso = remote.cloud_init_seed(tmp_path / "seed.iso", "vhw", "secret")
    data = iso.read_bytes()
    # ISO 9660 primary volume descriptor at sector 16; volume identifier at byte 40 (NoCloud: "cidata").
    assert data[0x8000:0x8006] == b"\x01CD001"
    assert data[0x8000 + 40:0x8000 + 72].rstrip(b" ") == b"cidata"
    assert b"root:secret" in data and b"#cloud-config" in data


# -- QEMU per OS ----------------------------------------------------------------------------
def _argv(name, seed=None, prom_env=()):
    """The machine layer's argv for a downloaded guest booting its overlay (vhw.machine.qemu.build_argv)."""
    recipe = REMOTE_GUESTS[name]
    chardevs = {i: f"path=/tmp/{i}.sock,reconnect=1" for i in recipe.interfaces}
    links = Links(qmp_fd=3, console_fd=4, agent_fd=None, bmc_chardevs=chardevs, disk=("/c/disk.qcow2", "qcow2"),
                  seed=str(seed) if seed else None, prom_env=tuple(prom_env))
    return build_argv(recipe_description(recipe), remote.DiskImage(recipe, Path("/c/image")), links,
                      accel="tcg", qemu="qemu")


def _devices(argv):
    return [argv[i + 1].split(",")[0] for i, a in enumerate(argv) if a == "-device"]


def test_each_os_gets_the_ipmi_devices_its_driver_supports():
    # guest-linux.md §14: illumos KCS only; FreeBSD KCS via ACPI, BT and SSIF via SMBIOS (q35's
    # ichsmb for SSIF); NetBSD KCS and BT via ACPI; sun4u has no IPMI device.
    free = _argv("freebsd-14-amd64")
    assert free[free.index("-M") + 1] == "q35"
    assert _devices(free) == ["ipmi-bmc-extern", "isa-ipmi-kcs", "ipmi-bmc-extern", "isa-ipmi-bt",
                              "ipmi-bmc-extern", "smbus-ipmi"]
    for illumos in ("omnios", "openindiana"):
        assert _devices(_argv(illumos)) == ["ipmi-bmc-extern", "isa-ipmi-kcs"]
    assert _devices(_argv("netbsd-10-amd64")) == ["ipmi-bmc-extern", "isa-ipmi-kcs", "ipmi-bmc-extern",
                                                  "isa-ipmi-bt"]
    sparc = _argv("netbsd-10-sparc64", prom_env=["-prom-env", "auto-boot?=true"])
    assert "ipmi-bmc-extern" not in _devices(sparc)
    assert sparc[sparc.index("-M") + 1] == "sun4u" and sparc[0] == "qemu"
    assert "media=cdrom" in sparc[sparc.index("-drive") + 1] and sparc[sparc.index("-boot") + 1] == "d"
    assert sparc[sparc.index("-prom-env") + 1] == "auto-boot?=true"


def test_each_disk_boots_the_overlay_with_the_console_on_the_given_socket():
    argv = _argv("netbsd-10-amd64")
    assert argv[argv.index("-drive") + 1] == "file=/c/disk.qcow2,format=qcow2,if=ide"
    assert "socket,id=console,fd=4" in argv and "socket,id=qmp,fd=3" in argv
    assert argv[argv.index("-accel") + 1] == "tcg"
    # The BIOS boots the disk: no -kernel, no qboot (it cannot boot disks), no agent port.
    assert "-kernel" not in argv and "-bios" not in argv and "virtserialport" not in " ".join(argv)
    assert argv[argv.index("-m") + 1] == str(REMOTE_GUESTS["netbsd-10-amd64"].memory)
    omni = _argv("omnios", seed=Path("/c/seed.iso"))
    drives = [omni[i + 1] for i, a in enumerate(omni) if a == "-drive"]
    assert drives == ["file=/c/disk.qcow2,format=qcow2,if=virtio", "file=/c/seed.iso,format=raw,media=cdrom,readonly=on"]
    assert omni[omni.index("-cpu") + 1] == "max"


def test_every_recipe_names_a_checksum_file_next_to_its_image():
    for r in REMOTE_GUESTS.values():
        assert r.url.startswith("https://") and r.checksum_url.startswith("https://")
        assert r.algorithm in ("sha256", "sha512")
        assert r.checksum_url.rsplit("/", 1)[0] == r.url.rsplit("/", 1)[0], r.name


# -- the CLI --------------------------------------------------------------------------------
def _mirror(file_server, recipe, data):
    path = "/" + recipe.url.split("://", 1)[1]
    file_server.files[path] = data
    return path


def test_guest_fetch_through_a_mirror_downloads_verifies_and_unpacks(file_server, monkeypatch, cache, capsys):
    recipe = REMOTE_GUESTS["freebsd-14-amd64"]
    packed = lzma.compress(PAYLOAD)
    path = _mirror(file_server, recipe, packed)
    monkeypatch.setenv("VHW_MIRROR", file_server.url(""))
    monkeypatch.setenv(recipe.env_pin, str(sha256(packed)))
    assert vhw_main(["guest", "fetch", recipe.name]) == 0
    out = Path(capsys.readouterr().out.split(" (")[0])
    assert out.read_bytes() == PAYLOAD and out.name == "FreeBSD-14.3-RELEASE-amd64-BASIC-CI.raw"
    assert cache in out.parents
    assert vhw_main(["guest", "fetch", recipe.name]) == 0
    assert file_server.gets(path) == [None]


def test_guest_pin_writes_the_publishers_digest(file_server, monkeypatch, tmp_path, capsys):
    recipe = REMOTE_GUESTS["netbsd-10-amd64"]
    h = "ab" * 64
    file_server.files["/" + recipe.checksum_url.split("://", 1)[1]] = (
        f"SHA512 (NetBSD-10.1-amd64-install.img.gz) = {'cd' * 64}\nSHA512 ({recipe.filename}) = {h}\n").encode()
    monkeypatch.setenv("VHW_MIRROR", file_server.url(""))
    root = tmp_path / "src"
    (root / "guest-images").mkdir(parents=True)
    monkeypatch.setenv("VHW_SOURCE_DIR", str(root))
    assert vhw_main(["guest", "pin", recipe.name]) == 0
    assert remote.read_pins(root / remote.PINS_FILE) == {recipe.name: f"sha512:{h}"}


def test_guest_test_and_run_skip_with_exit_77_when_the_publisher_is_unreachable(monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("VHW_MIRROR", f"http://127.0.0.1:{port}")
    assert vhw_main(["guest", "test", "omnios"]) == remote.EXIT_SKIPPED
    err = capsys.readouterr().err
    assert "skipped omnios" in err and "unreachable" in err and "--image PATH" in err
    assert vhw_main(["run", "--guest", "netbsd-10-amd64", "--", "uname"]) == remote.EXIT_SKIPPED


def test_an_image_that_is_not_there_is_a_clear_error(capsys):
    assert vhw_main(["guest", "test", "freebsd-14-amd64", "--image", "/nonexistent.raw"]) == 2
    assert "--image /nonexistent.raw: no such file" in capsys.readouterr().err


def test_guest_list_shows_the_downloadable_guests(capsys):
    assert vhw_main(["guest", "list"]) == 0
    out = capsys.readouterr().out
    for name in REMOTE_GUESTS:
        assert name in out
    assert "vhw guest pin freebsd-14-amd64" in out or "pinned sha256" in out


def test_a_recipe_copy_with_another_url_keeps_its_pin_name():
    r = replace(REMOTE_GUESTS["omnios"], url="http://x/y.qcow2")
    assert r.filename == "y.qcow2" and r.env_pin == "VHW_PIN_OMNIOS"


def test_a_sparc_guest_refuses_a_command_before_booting(capsys):
    assert vhw_main(["run", "--guest", "linux-sparc64", "--", "uname"]) == 2
    assert "linux-sparc64 runs no commands: its /init is the OpenPROM conformance program" in capsys.readouterr().err


def test_a_downloaded_guest_refuses_an_interface_its_driver_does_not_know(capsys):
    """illumos' ipmi driver is KCS only (guest-linux.md §14): BT is refused before anything boots."""
    assert vhw_main(["run", "--guest", "omnios", "--ipmi", "bt", "--", "uname"]) == 2
    assert "bmc: omnios's IPMI driver knows kcs; this machine needs bt" in capsys.readouterr().err


def test_a_downloaded_guest_gets_the_interfaces_its_driver_knows_and_its_console(monkeypatch):
    import argparse

    from vhw.cli import _load_description

    args = argparse.Namespace(machine=None, guest="freebsd-14-amd64", state=None, access=None, ipmi=None,
                              bmc_backend=None, bmc_address=None, faults=None)
    desc = _load_description(args)
    assert desc.bmc.interfaces == ("kcs", "bt", "ssif") and desc.machine.access == "console"
    assert (desc.machine.type, desc.machine.firmware) == ("q35", "seabios")


def test_a_guest_test_result_is_read_by_vhw_report(tmp_path):
    from vhw import report
    from vhw.guests.guest_test import StepResult, write_results

    steps = [StepResult("login", "pass"), StepResult("device-node", "fail", "exit status 1: ls: /dev/ipmi0: No such file"),
             StepResult("build-ipmi_raw", "skip", "the guest has no C compiler")]
    path = write_results(tmp_path / "vhw-results" / "guest-omnios.json", REMOTE_GUESTS["omnios"], steps, 12.5,
                         tmp_path / "work")
    rep = report.load([tmp_path])
    (row,) = rep.tests
    assert (row.test, row.outcome, row.guest) == ("guest:omnios", "failed", "omnios")
    assert [(c.name, c.outcome) for c in row.cases] == [("login", "pass"), ("device-node", "fail"),
                                                          ("build-ipmi_raw", "skip")]
    assert [f.summary for f in row.findings] == ["device-node failed"]
    assert "guest:omnios" in report.render_markdown(rep) and path.is_file()
