"""Each downloaded guest's console steps against a scripted console that
prints what that OS prints at the same point (boot loader menus, prompts,
login) and checks what vhw types.  The texts follow QEMU's tests/vm scripts
and the OS sources (guest-linux.md §14); the real images are not booted here.
"""

import asyncio
import socket
import time

import pytest

from vhw.machine.serial import ConsoleChannel, ConsoleDriver
from vhw.guests.remote import REMOTE_GUESTS

FREEBSD = [
    (b"\r\nConsoles: internal video/keyboard  serial port\r\n  Autoboot in 9 seconds. [Space] to pause\r\n", b"3"),
    (b"\r\nType '?' for a list of commands, 'help' for more detailed help.\r\nOK ", b"set console=comconsole\r"),
    (b"\r\nOK ", b"boot\r"),
    (b"Loading kernel...\r\n...\r\nFreeBSD/amd64 (freebsd) (ttyu0)\r\n\r\nlogin: ", b"root\r"),
    (b"root\r\nFreeBSD 14.3-RELEASE GENERIC\r\nroot@freebsd:~ # ", None),
]
NETBSD = [
    (b"NetBSD/x86 BIOS Boot\r\n 1. Boot normally\r\n 2. Boot single user\r\n 3. Drop to boot prompt\r\n"
     b"Choose an option; RETURN for default; SPACE to stop countdown.\r\nOption 1 will be chosen in 5 seconds.", b" "),
    (b"\r\nOption: [1]:", b"3\r"),
    (b"\r\ntype \"?\" or \"help\" for help.\r\n> ", b"consdev com0\r"),
    (b"\r\n> ", b"boot\r"),
    (b"booting hd0a:netbsd\r\n...\r\nNetBSD/amd64 (localhost) (constty)\r\n\r\nlogin: ", b"root\r"),
    (b"root\r\nlocalhost# ", None),
]
OMNIOS = [
    (b"OmniOS v11 r151056\r\n\r\nomnios console login: ", b"root\r"),
    (b"root\r\nPassword:", b"vhw\r"),
    (b"\r\nOmniOS 5.11 omnios-r151056 2025\r\nroot@omnios:~# ", None),
]
SYSINST = [
    (b"Terminal type (just hit ENTER for 'sun'): ", b"\r"),
    (b"\r\n a: Installation messages in English\r\n b: Installation auf Deutsch\r\n", b"a\r"),
    (b"\r\n a: Install NetBSD to hard disk\r\n ...\r\n x: Exit Install System\r\n", b"x\r"),
    (b"\r\n# ", None),
]
SCRIPTS = {"freebsd-14-amd64": FREEBSD, "netbsd-10-amd64": NETBSD, "omnios": OMNIOS, "openindiana": OMNIOS,
           "netbsd-10-sparc64": SYSINST}


async def scripted(sock, script, typed):
    reader, writer = await asyncio.open_connection(sock=sock)
    for text, expected in script:
        writer.write(text)
        await writer.drain()
        if expected is None:
            break
        got = await reader.readexactly(len(expected))
        typed.append(got)
        if got != expected:
            break
    await asyncio.sleep(0.2)
    writer.close()


def test_every_downloaded_guest_has_a_console_script():
    assert set(SCRIPTS) == set(REMOTE_GUESTS)


@pytest.mark.parametrize("name", sorted(REMOTE_GUESTS))
def test_the_recipe_types_what_its_os_expects_from_boot_loader_to_shell(name, tmp_path):
    recipe = REMOTE_GUESTS[name]
    script = SCRIPTS[name]
    typed: list[bytes] = []

    async def main():
        host, guest = socket.socketpair()
        peer = asyncio.ensure_future(scripted(guest, script, typed))
        reader, writer = await asyncio.open_connection(sock=host)
        channel = ConsoleChannel(ConsoleDriver.over(reader, writer, name=name), recipe.console_login)
        try:
            # Up to the shell prompt (the channel's own tty set-up after it is not scripted).
            await asyncio.wait_for(channel.reach_shell(time.monotonic() + 10), 10)
        finally:
            await peer
            writer.close()

    asyncio.run(main())
    assert typed == [expected for _, expected in script if expected is not None]
