"""The errors vhw raises to its users.

Every error a user can cause (a bad description, a missing program, a guest
that never comes up) is a VhwError with a message that says what to do; the
CLI prints it without a traceback.
"""

from __future__ import annotations


class VhwError(Exception):
    """Base of every error vhw reports to a user."""


class DescriptionError(VhwError):
    """A machine description (TOML) is invalid: names the key and why."""

    def __init__(self, key: str, reason: str, *, source: str | None = None):
        self.key = key
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {reason}")


class ImageError(VhwError):
    """A guest image cannot be found or built."""


class QemuError(VhwError):
    """QEMU is missing, refused its command line, or died."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None):
        self.stderr = stderr
        self.returncode = returncode
        text = message
        if returncode is not None:
            text += f" (exit status {returncode})"
        if stderr.strip():
            text += "\nQEMU said:\n" + "\n".join("  " + line for line in stderr.strip().splitlines()[-20:])
        super().__init__(text)


class GuestError(VhwError):
    """The guest did not come up, or its agent broke the protocol."""


class GuestMismatch(VhwError):
    """A guest cannot carry what a machine description (or a test) asks for: says what is missing."""


class AgentTimeout(GuestError):
    """The guest agent did not answer in time."""
