"""The BMC's user table (IPMI 2.0 sections 6.9 and 22.26-22.30).

User IDs run 1..MAX_USERS.  User 1 is the anonymous user: its name is fixed
to null (Set User Name on it answers CCh), so "anonymous login" means a
session request with a null user name.  Each user has a name (16 bytes), a
password (16 or 20 bytes, as Set User Password stored it), an enable status
("unspecified" until Set User Password enables or disables it) and, per
channel, a privilege limit with the callback-only, link-authentication and
IPMI-messaging flags and a session limit.

Everything here is non-volatile: every change is written to the store at
once (namespace "users", one key per user ID).  Passwords are stored in the
clear in the state file, as a BMC keeps them in its flash: the RMCP+ RAKP
exchange needs the clear key (K_UID) to compute its HMACs, a hash would not
do.  Protect the state directory like a credentials file.

The description seeds the table only when the store has none yet; after that
the store is the truth (as a BMC's flash is after the first boot): delete the
state file to start again from the description.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from collections.abc import Iterable, Mapping

from ...errors import DescriptionError
from ...tables import Table
from ..core.nonvolatile import MemoryStore, NonVolatile

#: User IDs 1..15, as many BMCs (and phosphor-user-manager) have.
MAX_USERS = 15
ANONYMOUS = 1
NAME_BYTES = 16
PASSWORD_16 = 16
PASSWORD_20 = 20
#: Privilege limit meaning "no access" (table 22-33, byte 3 [3:0]).
NO_ACCESS = 0x0F
PRIVILEGES = {"callback": 1, "user": 2, "operator": 3, "administrator": 4, "oem": 5, "no_access": NO_ACCESS}

#: Get User Access byte 2 [7:6]: how Set User Password last left the user.
ENABLE_UNSPECIFIED, ENABLE_ENABLED, ENABLE_DISABLED = 0, 1, 2
_ENABLE_NAMES = {ENABLE_UNSPECIFIED: "unspecified", ENABLE_ENABLED: "enabled", ENABLE_DISABLED: "disabled"}
_ENABLE_CODES = {v: k for k, v in _ENABLE_NAMES.items()}

STORE_NAMESPACE = "users"


# -- configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class ChannelAccessSpec:
    """A user's access on one channel (Set/Get User Access fields)."""

    privilege: int = NO_ACCESS
    callback_only: bool = False
    link_auth: bool = False
    ipmi_messaging: bool = True
    session_limit: int = 0


#: A user's access on a channel nobody configured: none at all.
NO_ACCESS_SPEC = ChannelAccessSpec(NO_ACCESS, ipmi_messaging=False)


@dataclass(frozen=True)
class UserSpec:
    """One ``[[bmc.users]]`` entry."""

    id: int
    name: str = ""
    password: str = ""
    enabled: bool = True
    #: Access for every channel not named in ``channels``.
    access: ChannelAccessSpec = field(default_factory=ChannelAccessSpec)
    #: Per-channel overrides: channel number -> access.
    channels: tuple[tuple[int, ChannelAccessSpec], ...] = ()

    def access_on(self, channel: int) -> ChannelAccessSpec:
        return dict(self.channels).get(channel, self.access)


@dataclass(frozen=True)
class UsersConfig:
    users: tuple[UserSpec, ...] = ()

    @classmethod
    def from_list(cls, items: Any, key: str) -> UsersConfig:
        """Validate the ``[[bmc.users]]`` array of tables; errors name the key."""
        if items is None:
            return cls()
        if not isinstance(items, list):
            raise DescriptionError(key, "must be an array of tables ([[bmc.users]])")
        users: list[UserSpec] = []
        for i, item in enumerate(items):
            users.append(_user_spec(item, f"{key}[{i}]", users))
        return cls(tuple(users))


def _user_spec(data: Any, key: str, earlier: list[UserSpec]) -> UserSpec:
    d = Table(data, key)
    d.expect(("id", "name", "password", "enabled", "privilege", "callback_only", "link_auth",
              "ipmi_messaging", "session_limit"))
    uid = d.raw("id")
    if isinstance(uid, bool) or not isinstance(uid, int) or not 1 <= uid <= MAX_USERS:
        raise DescriptionError(f"{key}.id", f"required: a user ID 1..{MAX_USERS}")
    if any(u.id == uid for u in earlier):
        raise DescriptionError(f"{key}.id", f"user {uid} defined twice")
    name = d.raw("name", "")
    if not isinstance(name, str) or not _valid_name(name.encode("ascii", "replace")):
        raise DescriptionError(f"{key}.name", f"must be printable ASCII, at most {NAME_BYTES} characters")
    if uid == ANONYMOUS and name:
        raise DescriptionError(f"{key}.name", "user 1 is the anonymous user: its name is fixed to null")
    if name and any(u.name == name for u in earlier):
        raise DescriptionError(f"{key}.name", f"name {name!r} already used (user names must be unique)")
    password = d.raw("password", "")
    if not isinstance(password, str) or len(password.encode("utf-8")) > PASSWORD_20:
        raise DescriptionError(f"{key}.password", f"must be a string of at most {PASSWORD_20} bytes")
    enabled = d.raw("enabled", True)
    if not isinstance(enabled, bool):
        raise DescriptionError(f"{key}.enabled", "must be true or false")
    flags = {}
    for flag, default in (("callback_only", False), ("link_auth", False), ("ipmi_messaging", True)):
        v = d.raw(flag, default)
        if not isinstance(v, bool):
            raise DescriptionError(f"{key}.{flag}", "must be true or false")
        flags[flag] = v
    limit = d.raw("session_limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 15:
        raise DescriptionError(f"{key}.session_limit", "must be 0..15 (0 = only the channel's limit)")
    privilege = d.raw("privilege", "administrator" if uid != ANONYMOUS else "no_access")
    default_access = ChannelAccessSpec(NO_ACCESS, session_limit=limit, **flags)
    channels: list[tuple[int, ChannelAccessSpec]] = []
    if isinstance(privilege, str):
        default_access = replace(default_access, privilege=_privilege(privilege, f"{key}.privilege"))
    elif isinstance(privilege, Mapping):
        for ch, level in privilege.items():
            where = f"{key}.privilege.{ch}"
            if not (str(ch).isdigit() and 0 <= int(ch) <= 0x0F and int(ch) not in (0x0C, 0x0D, 0x0E)):
                raise DescriptionError(where, "channel numbers are 0..11 or 15")
            if not isinstance(level, str):
                raise DescriptionError(where, f"must be one of {', '.join(PRIVILEGES)}")
            channels.append((int(ch), replace(default_access, privilege=_privilege(level, where))))
    else:
        raise DescriptionError(f"{key}.privilege",
                               'must be a privilege name, or a table per channel like {1 = "administrator"}')
    return UserSpec(uid, name, password, enabled, default_access, tuple(channels))


def _privilege(name: str, where: str) -> int:
    if name not in PRIVILEGES:
        raise DescriptionError(where, f"must be one of {', '.join(PRIVILEGES)}, not {name!r}")
    return PRIVILEGES[name]


def _valid_name(raw: bytes) -> bool:
    return len(raw) <= NAME_BYTES and all(0x20 <= b < 0x7F for b in raw)


# -- the table ----------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """One slot of the user table, as stored."""

    uid: int
    name: bytes = b""
    #: The password field as Set User Password wrote it: 16 or 20 bytes,
    #: NUL padded; empty when never set (a null password).
    password: bytes = b""
    enable_status: int = ENABLE_UNSPECIFIED
    #: channel number -> access; channels not present have no access.
    access: Mapping[int, ChannelAccessSpec] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name.decode("ascii"),
            "password_hex": self.password.hex(),
            "enable": _ENABLE_NAMES[self.enable_status],
            "access": {str(ch): [a.privilege, a.callback_only, a.link_auth, a.ipmi_messaging, a.session_limit]
                       for ch, a in sorted(self.access.items())},
        }

    @classmethod
    def from_json(cls, uid: int, d: Mapping) -> User:
        access = {int(ch): ChannelAccessSpec(int(v[0]), bool(v[1]), bool(v[2]), bool(v[3]), int(v[4]))
                  for ch, v in d.get("access", {}).items()}
        return cls(uid, d.get("name", "").encode("ascii"), bytes.fromhex(d.get("password_hex", "")),
                   _ENABLE_CODES.get(d.get("enable", ""), ENABLE_UNSPECIFIED), access)


class UserError(ValueError):
    """A change the table refuses; ``reason`` says why (the handler maps it to CCh)."""


class Users:
    """The user table, backed by the store; also the lookup API of the LAN side."""

    def __init__(self, store: NonVolatile, channels: Iterable[int], config: UsersConfig | None = None,
                 max_users: int = MAX_USERS):
        self.store = store
        self.max_users = max_users
        self.channels = tuple(channels)
        stored = store.items(STORE_NAMESPACE)
        if stored:
            self._users = {uid: User.from_json(uid, stored[str(uid)]) if str(uid) in stored else User(uid)
                           for uid in range(1, max_users + 1)}
        else:
            self._users = self._seed(config or UsersConfig())
            with store.transaction():
                for user in self._users.values():
                    self._save(user)

    def _seed(self, config: UsersConfig) -> dict[int, User]:
        users = {uid: User(uid) for uid in range(1, self.max_users + 1)}
        for spec in config.users:
            if spec.id > self.max_users:
                continue
            password = spec.password.encode("utf-8")
            size = PASSWORD_16 if len(password) <= PASSWORD_16 else PASSWORD_20
            users[spec.id] = User(
                spec.id, spec.name.encode("ascii"), password.ljust(size, b"\x00") if password else b"",
                ENABLE_ENABLED if spec.enabled else ENABLE_DISABLED,
                {ch: spec.access_on(ch) for ch in self.channels if spec.access_on(ch).privilege != NO_ACCESS},
            )
        return users

    def _save(self, user: User) -> None:
        self._users[user.uid] = user
        self.store.put(STORE_NAMESPACE, str(user.uid), user.to_json())

    # -- reading ----------------------------------------------------------------
    def user(self, uid: int) -> User:
        if not 1 <= uid <= self.max_users:
            raise UserError(f"user ID {uid} is outside 1..{self.max_users}")
        return self._users[uid]

    def access(self, uid: int, channel: int) -> ChannelAccessSpec:
        return self.user(uid).access.get(channel, NO_ACCESS_SPEC)

    def enabled_count(self) -> int:
        return sum(1 for u in self._users.values() if u.enable_status == ENABLE_ENABLED)

    def fixed_name_count(self) -> int:
        """User IDs whose names cannot be changed: only user 1 (the null name)."""
        return 1

    # -- the lookup API for sessions (RMCP / RMCP+) --------------------------------
    def find_by_name(self, name: str | bytes) -> int | None:
        """The lowest user ID with exactly this name (b"" finds the anonymous user 1)."""
        raw = name.encode("ascii", "replace") if isinstance(name, str) else bytes(name).rstrip(b"\x00")
        for uid in sorted(self._users):
            if self._users[uid].name == raw:
                return uid
        return None

    def password(self, uid: int) -> bytes:
        """The stored password field (16 or 20 bytes, NUL padded; b"" if never set)."""
        return self.user(uid).password

    def privilege_limit(self, uid: int, channel: int) -> int:
        """The user's privilege limit on a channel; 0Fh means no access."""
        return self.access(uid, channel).privilege

    def enabled(self, uid: int) -> bool:
        return self.user(uid).enable_status == ENABLE_ENABLED

    # -- changes (each one a transaction in the store) ----------------------------------
    def set_name(self, uid: int, name: bytes) -> None:
        """Set User Name: names are unique; user 1's null name is fixed."""
        user = self.user(uid)
        raw = bytes(name).split(b"\x00", 1)[0]
        if uid == ANONYMOUS:
            raise UserError("user 1's name is fixed to null")
        if not _valid_name(raw):
            raise UserError(f"name {raw!r} is not printable ASCII")
        if raw and any(u.name == raw and u.uid != uid for u in self._users.values()):
            raise UserError(f"name {raw!r} is already user {self.find_by_name(raw)}'s")
        self._save(replace(user, name=raw))

    def set_password(self, uid: int, password: bytes) -> None:
        """Store the 16- or 20-byte password field as given (its size is remembered)."""
        if len(password) not in (PASSWORD_16, PASSWORD_20):
            raise UserError(f"a password field is 16 or 20 bytes, not {len(password)}")
        self._save(replace(self.user(uid), password=bytes(password)))

    def test_password(self, uid: int, password: bytes) -> str:
        """'ok', 'mismatch' (CC 80h) or 'wrong size' (CC 81h), as section 22.30 says.

        A password never set is a null password stored in the size of the test.
        """
        stored = self.user(uid).password or bytes(len(password))
        if len(stored) != len(password):
            return "wrong size"
        return "ok" if stored == bytes(password) else "mismatch"

    def set_enabled(self, uid: int, enabled: bool) -> None:
        self._save(replace(self.user(uid), enable_status=ENABLE_ENABLED if enabled else ENABLE_DISABLED))

    def set_access(self, uid: int, channel: int, access: ChannelAccessSpec) -> None:
        user = self.user(uid)
        table = dict(user.access)
        table[channel] = access
        self._save(replace(user, access=table))


def create_part(bmc: Any, config: Any) -> Users:
    """The part for ``bmc.parts["users"]``: channels come from the channel table."""
    store = bmc.store if bmc.store is not None else MemoryStore()
    channels_part = bmc.parts.get("channels")
    channels = channels_part.numbers() if channels_part is not None else [0, 1, 0x0F]
    return Users(store, channels, getattr(config, "users", None))
