"""The BMC's serial channel (IPMI 2.0 chapter 14): Terminal Mode and Basic Mode.

Layout, in the style of ``extern``/``extern_server``:

* ``terminal`` -- sans-I/O Terminal Mode codec (section 14.7): printable
  hex-ASCII messages in brackets, ``[SYS ...]`` text commands, echo and
  line editing;
* ``basic`` -- sans-I/O Basic Mode codec (section 14.4): binary IPMB-format
  messages between A0h and A5h, A6h handshake, AAh escapes (table 14-3);
* ``server`` -- the asyncio transport on a pty (or a device via pyserial).

This module holds what both modes share: the ``[bmc.serial]`` configuration
and the channel's login state.

Sessions.  Chapter 14 makes the serial channel a single-session channel:
a Terminal Mode user activates the session with ``[SYS PWD ...]`` (14.7.8,
"SYS PWD ... must be successfully executed before any command or IPMI
messages are accepted"), a Basic Mode user with Activate Session.  The
clients this channel is judged by (``ipmitool -I serial-terminal`` and
``-I serial-basic``) never log in, so vhw's serial channel has two
behaviours, chosen by ``login_required``:

* ``false`` (default): the channel behaves as if the null user had already
  activated the session at ``privilege`` (default ``user`` -- reading, not
  acting: Get Device ID and Get Chassis Status work, Chassis Control answers
  D4h).  ``[SYS PWD -U name password]`` raises the session to that user's
  privilege limit, ``[SYS PWD -X]`` drops it back.
* ``true``: as the spec says, only ``[SYS PWD ...]`` is accepted until a
  login succeeds; IPMI messages before that are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import DescriptionError
from ...tables import Table

from ..core.bmc import Privilege

MODES = ("terminal", "basic")
PRIVILEGES = {"callback": Privilege.CALLBACK, "user": Privilege.USER, "operator": Privilege.OPERATOR,
              "administrator": Privilege.ADMINISTRATOR}
#: Baud rates ipmitool accepts (meaningless on a pty, kept for real devices).
BAUD_RATES = (2400, 9600, 19200, 38400, 57600, 115200, 230400, 460800)
#: The default channel number: 0 and 1 are the IPMB and LAN channels of
#: vhw's default channel table (channels 1..0Bh are implementation-specific,
#: table 6-1).
DEFAULT_CHANNEL = 2
#: Channel medium 04h "Asynch. serial/modem (RS-232)" (table 6-3); protocol
#: 09h "TMode" in Terminal Mode, and in Basic Mode (IPMB-format messages)
#: 01h "IPMB-1.0" (table 6-2).  Get Channel Info does not yet report this
#: channel (channels.py knows IPMB and LAN only): an open point.
MEDIUM_RS232 = 0x04
PROTOCOL = {"terminal": 0x09, "basic": 0x01}
#: Wrong passwords in a row before the channel refuses logins for a while.
MAX_BAD_LOGINS = 3
BAD_LOGIN_LOCKOUT = 5.0


@dataclass(frozen=True)
class SerialConfig:
    """The ``[bmc.serial]`` table."""

    mode: str = "terminal"
    #: "pty" for a new pseudo-terminal (its slave path is printed), else a device path.
    device: str = "pty"
    baud: int = 115200
    channel: int = DEFAULT_CHANNEL
    privilege: Privilege = Privilege.USER
    login_required: bool = False
    #: Terminal Mode echo (Terminal Mode Configuration, byte 1 bit 0: on by default).
    echo: bool = True

    @classmethod
    def from_dict(cls, d: Any, key: str = "bmc.serial") -> SerialConfig:
        Table(d, key).expect(("mode", "device", "baud", "channel", "privilege", "login_required", "echo"))
        mode = d.get("mode", "terminal")
        if mode not in MODES:
            raise DescriptionError(f"{key}.mode", f"must be one of {', '.join(MODES)}, not {mode!r}")
        device = d.get("device", "pty")
        if not isinstance(device, str) or not device:
            raise DescriptionError(f"{key}.device", "must be \"pty\" or a device path like /dev/ttyS1")
        baud = d.get("baud", 115200)
        if isinstance(baud, bool) or baud not in BAUD_RATES:
            raise DescriptionError(f"{key}.baud", f"must be one of {', '.join(map(str, BAUD_RATES))}")
        channel = d.get("channel", DEFAULT_CHANNEL)
        if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 0x0B:
            raise DescriptionError(f"{key}.channel", "must be a channel number 1..0x0B")
        privilege = d.get("privilege", "user")
        if privilege not in PRIVILEGES:
            raise DescriptionError(f"{key}.privilege", f"must be one of {', '.join(PRIVILEGES)}, not {privilege!r}")
        flags = {}
        for name, default in (("login_required", False), ("echo", True)):
            v = d.get(name, default)
            if not isinstance(v, bool):
                raise DescriptionError(f"{key}.{name}", "must be true or false")
            flags[name] = v
        if mode == "basic" and flags["login_required"]:
            raise DescriptionError(f"{key}.login_required", "Basic Mode logs in with Activate Session, which this "
                                   "serial channel does not carry yet; use mode = \"terminal\" ([SYS PWD])")
        return cls(mode, device, baud, channel, PRIVILEGES[privilege], **flags)

    @classmethod
    def from_spec(cls, spec: str, base: SerialConfig | None = None) -> SerialConfig:
        """``MODE:PATH`` as given to ``vhw bmc --serial`` (PATH "pty" for a new pty)."""
        from dataclasses import replace

        mode, sep, path = spec.partition(":")
        if not sep or mode not in MODES or not path:
            raise ValueError(f"--serial wants MODE:PATH with MODE {' or '.join(MODES)} and PATH 'pty' or a "
                             f"device, not {spec!r}")
        config = replace(base or cls(), mode=mode, device=path)
        if config.mode == "basic" and config.login_required:
            raise ValueError("Basic Mode cannot require a login yet ([bmc.serial] login_required): use terminal")
        return config


@dataclass
class SerialLogin:
    """Who is on the serial channel now, and at what privilege (sans-I/O).

    ``users`` is the BMC's ``vhw.ipmi.parts.users.Users`` part (or None: then only
    the anonymous, pre-activated session exists).
    """

    config: SerialConfig = field(default_factory=SerialConfig)
    users: Any = None
    active: bool = False
    privilege: Privilege = Privilege.USER
    user_id: int | None = None
    bad_logins: int = 0
    locked_until: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logout()

    def logout(self) -> None:
        """``[SYS PWD -X]``: back to the channel's state before any login."""
        self.user_id = None
        self.active = not self.config.login_required
        self.privilege = self.config.privilege

    def login(self, name: str | None, password: str, now: float = 0.0) -> bool:
        """``SYS PWD -U name password`` (``name`` None for ``-N``).  Wrong ones log out (14.7.8)."""
        if now < self.locked_until:
            self._count("login_locked")
            return False
        uid = self._check(name, password)
        if uid is None:
            self.logout()
            self.bad_logins += 1
            self._count("login_failed")
            if self.bad_logins >= MAX_BAD_LOGINS:
                self.locked_until = now + BAD_LOGIN_LOCKOUT
                self.bad_logins = 0
            return False
        self.bad_logins = 0
        limit = self._limit(uid)
        self.user_id = uid
        self.active = True
        self.privilege = Privilege(min(limit, Privilege.ADMINISTRATOR))
        self._count("login_ok")
        return True

    def _check(self, name: str | None, password: str) -> int | None:
        users = self.users
        if users is None:
            return None
        try:
            raw = password.encode("ascii")
        except UnicodeEncodeError:
            return None
        if len(raw) > 20:
            return None
        uid = users.find_by_name(b"" if name is None else name)
        if uid is None or not users.enabled(uid):
            return None
        stored = users.password(uid) or bytes(16)
        if len(raw) > len(stored) or stored != raw.ljust(len(stored), b"\x00"):
            return None
        limit = self._limit(uid)
        if not Privilege.CALLBACK <= limit <= Privilege.OEM:
            return None
        return uid

    def _limit(self, uid: int) -> int:
        """The user's privilege limit on this channel.

        The users part keeps per-channel access only for the channels of the
        channel table, which does not list the serial channel yet; until it
        does, the user's LAN (channel 1) limit stands in.
        """
        users = self.users
        channel = self.config.channel
        if channel not in getattr(users, "channels", ()):
            channel = 1
        try:
            return int(users.privilege_limit(uid, channel))
        except Exception:
            return 0x0F

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1
