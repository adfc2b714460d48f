"""The downloaded-guest path end to end, offline.

The real FreeBSD, illumos and NetBSD images need the internet, so this test
publishes a stand-in: the linux-x86 guest's kernel and initramfs on a
SYSLINUX disk, gzipped, with a BSD-style checksum file, on a local HTTP
server.  Everything after that is what a real recipe goes through: pin from
the checksum file, download, verify, unpack, boot a qcow2 overlay with the
BMC on KCS, drive the serial console (no agent), run the checks, write the
results file, and reset the VM with a chassis command from the guest.
"""

import asyncio
import gzip
import hashlib
import json
import shutil
import subprocess
from pathlib import Path


from vhw.guests.images import cache_dir
from vhw.guests.guest_test import recipe_description, run_recipe
from vhw.machine.launcher import Machine
from vhw.guests.remote import Check, ConsoleStep, DiskImage, RemoteRecipe, fetch, fetch_pin

SYSLINUX_CFG = """\
SERIAL 0 115200
DEFAULT vhw
PROMPT 0
TIMEOUT 0
LABEL vhw
  KERNEL vmlinuz
  INITRD initrd
  APPEND console=ttyS0 quiet vhw.agent=none vhw.mods=ipmi_si,ipmi_devintf
"""


def _kernel_deb(image, tmp: Path) -> Path:
    k = image.manifest["kernel"]
    deb = cache_dir() / "debs" / f"{k['package']}_{k['version']}_amd64.deb"
    if deb.is_file():
        return deb
    subprocess.run(["apt-get", "download", f"{k['package']}={k['version']}"], cwd=tmp, check=True,
                   capture_output=True)
    return next(tmp.glob(f"{k['package']}_*.deb"))


def build_boot_disk(image, out: Path) -> Path:
    """A FAT disk that SeaBIOS boots through SYSLINUX into the linux-x86 initramfs."""
    work = out.parent
    deb = _kernel_deb(image, work)
    release = image.manifest["kernel"]["release"]
    with open(work / "vmlinuz", "wb") as f:
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-xO", f"./boot/vmlinuz-{release}"], stdin=tar.stdout, stdout=f, check=True)
        tar.wait()
    (work / "syslinux.cfg").write_text(SYSLINUX_CFG)
    subprocess.run(["truncate", "-s", "48M", str(out)], check=True)
    mkfs = shutil.which("mkfs.fat") or "/sbin/mkfs.fat"  # /sbin is not on every user's PATH
    subprocess.run([mkfs, "-n", "VHWBOOT", str(out)], check=True, capture_output=True)
    for src, name in ((work / "vmlinuz", "vmlinuz"), (image.initrd, "initrd"), (work / "syslinux.cfg", "syslinux.cfg")):
        subprocess.run(["mcopy", "-i", str(out), str(src), f"::{name}"], check=True)
    subprocess.run(["syslinux", "--install", str(out)], check=True)
    return out


def test_a_published_image_is_pinned_fetched_booted_on_an_overlay_and_driven_over_its_console(
        tmp_path, linux_image, file_server, monkeypatch):
    disk = build_boot_disk(linux_image, tmp_path / "vhw-linux.img")  # from the real cache's kernel package
    monkeypatch.setenv("VHW_CACHE_DIR", str(tmp_path / "cache"))
    disk_sha = hashlib.sha256(disk.read_bytes()).hexdigest()
    packed = gzip.compress(disk.read_bytes(), 1)
    file_server.files["/pub/vhw-linux.img.gz"] = packed
    file_server.files["/pub/SHA256"] = (
        f"SHA256 (vhw-linux.img.gz) = {hashlib.sha256(packed).hexdigest()}\n").encode()
    recipe = RemoteRecipe(
        "local-linux", "the linux-x86 guest published as a disk image", "linux", "qemu-system-x86_64", "pc",
        url=file_server.url("/pub/vhw-linux.img.gz"), checksum_url=file_server.url("/pub/SHA256"),
        compression="gz", interfaces=("kcs",), memory=512, user=None, boot_timeout=180,
        boot_steps=(ConsoleStep("SYSLINUX", ""),),
        checks=(Check("driver-loaded", "grep -w ipmi_si /proc/modules"),
                Check("device-node", "ls -l /dev/ipmi0"),
                # IPMI 2.0 §20.1: Get Device ID answers completion code 00 and 11+ data bytes.
                Check("get-device-id", "ipmi_raw 06 01 | grep -E '^00( [0-9a-f]{2}){11}'"),
                Check("a-failing-check", "ls /dev/ipmi7")),
    )
    # What `vhw guest pin` does, then the pinned download.
    monkeypatch.setenv(recipe.env_pin, str(fetch_pin(recipe)))
    image = fetch(recipe, progress=lambda m: None)
    assert hashlib.sha256(image.read_bytes()).hexdigest() == disk_sha
    workdir = tmp_path / "machine"

    async def main():
        async with Machine(recipe_description(recipe), image=DiskImage(recipe, image), workdir=workdir) as m:
            assert m.access == "console"
            steps = await run_recipe(m, recipe, results=tmp_path / "results" / "guest-local-linux.json")
            # Chassis Control, hard reset (IPMI 2.0 §28.3, data 03) from the guest: the VM reboots,
            # and the console channel goes through the boot steps again (this boot's SYSLINUX banner).
            since = len(m.events)
            await m.run("(sleep 0.5; ipmi_raw 00 02 03) >/dev/null 2>&1 &")
            await m.wait_event("RESET", 30, since=since)
            await m.wait_rebooted(180)
            r = await m.run("cut -d' ' -f1 /proc/uptime")
            return steps, r.returncode, float(r.stdout)

    steps, status, uptime = asyncio.run(main())
    outcomes = {s.name: s.outcome for s in steps}
    checks = {k: v for k, v in outcomes.items() if ":" not in k}
    assert checks == {"login": "pass", "driver-loaded": "pass", "device-node": "pass", "get-device-id": "pass",
                      "a-failing-check": "fail", "ptosm_conform": "skip"}, steps
    # Seed 000 through the guest's driver, run over the console like a BSD guest's: every case passes.
    conform = {k.split(":", 1)[1]: v for k, v in outcomes.items() if k.startswith("ipmi_conform:")}
    assert len(conform) >= 20 and set(conform.values()) == {"pass"}, conform  # the default cases, no -i
    assert next(s for s in steps if s.name == "ptosm_conform").detail == "no /dev/i2opt in the guest"
    assert status == 0 and uptime < 60  # a fresh boot after the reset
    # The run wrote to its overlay only; the cached image is untouched.
    assert hashlib.sha256(image.read_bytes()).hexdigest() == disk_sha
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(workdir / "disk.qcow2")],
                                     capture_output=True, text=True, check=True).stdout)
    assert Path(info["backing-filename"]) == image.resolve()
    results = json.loads((tmp_path / "results" / "guest-local-linux.json").read_text())
    assert results["test"] == "guest:local-linux" and results["outcome"] == "failed"
    errors = [f for f in results["findings"] if f["severity"] == "error"]
    assert [f["summary"] for f in errors] == ["a-failing-check failed"]
    assert "No such file" in errors[0]["evidence"]
    # Linux's deviations from seed 000 (ipmi(7D)) come back as the OS's findings, as for any guest.
    assert any(f["severity"] == "warning" and f["summary"].startswith("ipmi_conform ") for f in results["findings"])
    transcript = (workdir / "console.log").read_bytes()
    assert b"ipmi_raw 00 02 03" in transcript
    assert transcript.count(b"SYSLINUX") >= 2
