"""OpenBIOS's ok prompt, firmware only (no guest kernel): vhw.prom.okprompt
against the real sun4u and SS-5 firmware of the installed QEMU.

One firmware boot per machine, with ``-prom-env auto-boot?=false``,
``my-var=hello world`` and ``empty-var=``: printenv, setenv, the tree dump
(twice), the 80-character refusal, commands at stack depth 2, and a real
firmware error.  Timings go to build/prom-firmware-<machine>.json.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from pathlib import Path

import pytest

from vhw.prom.okprompt import FIRMWARE_DEFAULTS, MAX_LINE, OkPrompt, PromConsoleError

pytestmark = pytest.mark.e2e

BUILD = Path(__file__).resolve().parents[2] / "build"
MACHINES = {
    # machine: (binary, family, eeprom path, eeprom model)
    "sun4u": ("qemu-system-sparc64", "sun4u", "/pci/pci/ebus/eeprom", b"mk48t59\0"),
    "SS-5": ("qemu-system-sparc", "sun4m", "/obio/eeprom", b"mk48t08\0"),
}
INJECTED = {"auto-boot?": "false", "my-var": "hello world", "empty-var": ""}


class Firmware:
    """QEMU with the firmware only, its console on a socketpair."""

    def __init__(self, machine: str, binary: str, workdir: Path):
        self.argv = [binary, "-M", machine, "-accel", "tcg", "-nodefaults", "-no-user-config", "-display", "none",
                     "-chardev", "socket,id=con,fd={fd}", "-serial", "chardev:con"]
        for name, value in INJECTED.items():
            self.argv += ["-prom-env", f"{name}={value}"]
        self.workdir = workdir
        self.console = bytearray()
        self.sent: list[bytes] = []

    async def __aenter__(self) -> OkPrompt:
        host, guest = socket.socketpair()
        argv = [a.replace("{fd}", str(guest.fileno())) for a in self.argv]
        self.proc = await asyncio.create_subprocess_exec(
            *argv, pass_fds=[guest.fileno()], stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=open(self.workdir / "qemu.stderr", "wb"))
        guest.close()
        self.started = time.monotonic()
        reader, self.writer = await asyncio.open_connection(sock=host)

        def write(data: bytes) -> None:
            self.sent.append(data)
            self.writer.write(data)

        self.ok = OkPrompt(write)

        async def follow():
            while chunk := await reader.read(65536):
                self.console += chunk
                self.ok.feed(chunk)

        self.task = asyncio.get_running_loop().create_task(follow())
        return self.ok

    async def __aexit__(self, *exc) -> None:
        (self.workdir / "console.log").write_bytes(bytes(self.console))
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.writer.close()


@pytest.mark.parametrize("machine", list(MACHINES))
def test_ok_prompt_on_the_real_firmware(machine, tmp_path):
    binary, family, eeprom_path, model = MACHINES[machine]
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (Debian: apt-get install qemu-system-sparc)")
    timings: dict[str, float] = {}

    async def timed(name, coro):
        t = time.monotonic()
        result = await coro
        timings[name] = round(time.monotonic() - t, 2)
        return result

    async def go():
        fw = Firmware(machine, binary, tmp_path)
        async with fw as ok:
            assert await timed("prompt", ok.wait_prompt(90)) == 0

            # printenv: the pristine defaults with the injected values, NUL-terminated (§5)
            expected = {k: v.encode() + b"\0" for k, v in {**FIRMWARE_DEFAULTS[family], **INJECTED}.items()}
            values = await timed("printenv_first", ok.printenv())
            assert values == expected
            assert values["my-var"] == b"hello world\0" and values["empty-var"] == b"\0"
            assert values["auto-boot?"] == b"false\0"
            assert await timed("printenv", ok.printenv()) == expected

            # the tree, by phandle
            tree = await timed("dump_tree_first", ok.dump_tree())
            assert tree.root.parent is None and tree.root.children
            assert tree.root.name == ("OpenBiosTeam,OpenBIOS" if family == "sun4u" else "SUNW,SPARCstation-5")
            assert tree.options is not None and tree.options.path == "/options"
            assert tree.options.properties == expected
            eeprom = tree.find(eeprom_path)
            assert eeprom is not None and eeprom.name == "eeprom" and eeprom.properties["model"] == model
            # the firmware's own phandles: ask it directly
            for node in (tree.root, tree.options, eeprom):
                path = node.path
                out = await ok.command(f'" {path}" find-package drop u.')
                assert int(out, 16) == node.node_id, path
            timings["nodes"] = len(tree.nodes)

            # setenv, then printenv and the tree both show it
            await timed("setenv", ok.setenv("my-var", "bye now"))
            await ok.setenv("new-var", "x y")
            await ok.setenv("my-var2", "")
            await ok.setenv("spaced", ' x "q" ')
            after = await ok.printenv()
            assert after == {**expected, "my-var": b"bye now\0", "new-var": b"x y\0", "my-var2": b"\0",
                             "spaced": b' x "q" \0'}
            with pytest.raises(PromConsoleError, match="Invalid value"):
                await ok.setenv("auto-boot?", "maybe")  # a bool option checks its value
            assert (await ok.printenv())["auto-boot?"] == b"false\0"

            # at stack depth 2 (as after a Linux halt): same answers, stack kept
            assert await ok.command("1 2") == ""
            assert await ok.printenv() == after
            tree2 = await timed("dump_tree", ok.dump_tree())  # words defined once, reused
            assert set(tree2.nodes) == set(tree.nodes)
            assert tree2.options.properties == after
            assert (await ok.command(".s")).split()[:3] == ["<2>", "1", "2"]
            await ok.command("2drop")

            # an 80-character line is refused before anything is sent; 79 go through whole
            sent = len(fw.sent)
            with pytest.raises(PromConsoleError, match="would be cut at 80"):
                await ok.command('." ' + "z" * (MAX_LINE - 4) + '"')
            with pytest.raises(PromConsoleError, match="-prom-env"):
                await ok.setenv("long-var", "v" * (MAX_LINE - len("setenv long-var ")))
            assert len(fw.sent) == sent
            assert await ok.command('." ' + "z" * (MAX_LINE - 5) + '"') == "z" * (MAX_LINE - 5)

            # a real firmware error
            with pytest.raises(PromConsoleError, match="vhw-no-such-word: undefined word"):
                await ok.command("vhw-no-such-word")
            assert (await ok.command(".s")).split() == ["<0>"]

    asyncio.run(go())
    BUILD.mkdir(exist_ok=True)
    (BUILD / f"prom-firmware-{machine}.json").write_text(json.dumps(timings, indent=1) + "\n")
    print(machine, timings)
