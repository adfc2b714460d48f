"""OpenBIOS's ok prompt, driven over the serial console (asyncio).

:class:`OkPrompt` types lines and waits for the prompt after each; what to
type and how to read the answers is :mod:`vhw.prom.okprompt_codec`
(sans-I/O).  The console has one reader (the machine's logger), which hands
every chunk to :meth:`OkPrompt.feed`; :class:`OkPrompt` writes through the
callable it was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .okprompt_codec import (
    FIRMWARE_DEFAULTS,
    MAX_LINE,
    PRINTENV,
    PRINTENV_DEF,
    TREE_DUMP,
    TREE_RUN,
    ConsoleScreen,
    PromConsoleError,
    command_bytes,
    command_output,
    parse_printenv,
    parse_tree_dump,
    setenv_line,
)
from .tree import PromTree

#: What callers of the driver also use; defined in the codec.
__all__ = ["FIRMWARE_DEFAULTS", "MAX_LINE", "OkPrompt", "PromConsoleError"]


class OkPrompt:
    """Commands at the ok prompt; bytes come in through :meth:`feed`.

    Works at any stack depth (after a Linux halt the prompt reads ``2 >``):
    the lines it types leave the stack and the number base as they were.
    """

    def __init__(self, write: Callable[[bytes], None]):
        self._write = write
        self.screen = ConsoleScreen()
        self._changed = asyncio.Event()
        self._defined: set[tuple[str, ...]] = set()

    def feed(self, data: bytes) -> None:
        self.screen.feed(data)
        self._changed.set()

    def eof(self) -> None:
        """The console closed; a waiting command times out with the console's last words."""
        self._changed.set()

    async def wait_prompt(self, timeout: float) -> int:
        """Wait for the next prompt not yet consumed; returns its stack depth.
        What came before it is consumed."""
        depth, _text = await self._wait(timeout, "the ok prompt")
        return depth

    async def _wait(self, timeout: float, what: str) -> tuple[int, str]:
        async def find() -> tuple[int, str]:
            while (found := self.screen.take_prompt(what)) is None:
                self._changed.clear()
                await self._changed.wait()
            return found

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise PromConsoleError(f"no {what} within {timeout:g} s; the console last said:\n"
                                   f"{self.screen.tail()}") from None

    async def command(self, line: str, timeout: float = 30) -> str:
        """Type one line; return its output: the text between the echo of
        the line and the next prompt, without the final ``ok``.

        Refuses, before sending anything, a line the firmware would cut
        (:func:`~vhw.prom.okprompt_codec.command_bytes`).  Raises
        :class:`PromConsoleError` when no prompt comes within ``timeout``
        seconds, the firmware crashed, or the line did not end with ``ok``
        (:func:`~vhw.prom.okprompt_codec.command_output`).
        """
        data = command_bytes(line)
        self.screen.discard()
        self._write(data)
        _depth, text = await self._wait(timeout, f"prompt after {line[:40]!r}")
        return command_output(line, text)

    async def printenv(self, timeout: float = 30) -> dict[str, bytes]:
        """/options, as :func:`parse_printenv` reads it (string values with their NUL)."""
        return parse_printenv(await self._run(PRINTENV_DEF, PRINTENV, timeout))

    async def setenv(self, name: str, value: str) -> None:
        """``setenv name value`` (:func:`~vhw.prom.okprompt_codec.setenv_line`);
        refused before sending when the line would not fit or the value
        cannot be typed."""
        await self.command(setenv_line(name, value))

    async def dump_tree(self, timeout: float = 60) -> PromTree:
        """The whole device tree; node ids are the firmware's phandles."""
        return parse_tree_dump(await self._run(TREE_DUMP, TREE_RUN, timeout))

    async def _run(self, definitions: tuple[str, ...], word: str, timeout: float) -> str:
        """``word``, defined by ``definitions`` once per :class:`OkPrompt`,
        and again when the firmware no longer knows it (it was reset).
        Redefining is harmless."""
        if definitions not in self._defined:
            await self._define(definitions)
        try:
            return await self.command(word, timeout)
        except PromConsoleError as e:
            if "undefined word" not in str(e):
                raise
        await self._define(definitions)
        return await self.command(word, timeout)

    async def _define(self, definitions: tuple[str, ...]) -> None:
        for line in definitions:
            await self.command(line)
        self._defined.add(definitions)
