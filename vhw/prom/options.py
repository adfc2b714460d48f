"""The EEPROM of a SPARC machine as vhw keeps it: the truth, in the store.

QEMU rebuilds the NVRAM at every start and OpenBIOS never writes it back
(openprom-sparc.md §3, §6), so the options a user or a guest set live here,
in the machine's SQLite store (handed in as an :class:`OptionStore`; this
module does no I/O of its own), and are injected again at every start.  The
structured options are the truth; an NVRAM image is derived from them
(:meth:`PromOptions.image`) and can be imported back into them.

Everything a change touches is one transaction: a crash (even SIGKILL) keeps
either the old options or the new ones, never a mix.  Every edit is checked
first against what QEMU and OpenBIOS can carry (:func:`vhw.prom.nvram.check_option`
and the system partition's capacity), so nothing unusable is ever stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from . import nvram

NAMESPACE = "prom"

#: Options OpenBIOS on sun4m derives at every start from QEMU's ``-boot``
#: and ``-append`` rather than from NVRAM (openprom-sparc.md §5).
SUN4M_ROUTED = ("boot-device", "boot-file")

#: ``-boot`` letters for the boot devices OpenBIOS sun4m knows (§5: OpenBIOS
#: sets ``boot-device`` from ``-boot``; hw/sparc/sun4m.c passes the letter).
SUN4M_BOOT_LETTERS = {"disk": "c", "cdrom": "d", "net": "n", "floppy": "a"}


def family(machine: str) -> str:
    """"sun4u" or "sun4m" for a QEMU ``-M`` name."""
    nvram.machine_type_for(machine)  # refuses unknown machines
    return "sun4u" if machine == "sun4u" else "sun4m"


@dataclass(frozen=True)
class Change:
    """One option that differs between two sets of options."""

    name: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        if self.old is None:
            return f"+ {self.name}={self.new}"
        if self.new is None:
            return f"- {self.name} (was {self.old!r})"
        return f"~ {self.name}: {self.old!r} -> {self.new!r}"


def diff(old: Iterable[tuple[str, str]], new: Iterable[tuple[str, str]]) -> list[Change]:
    """What changed from ``old`` to ``new`` (the last occurrence of a name wins)."""
    before, after = dict(old), dict(new)
    changes = [Change(n, before.get(n), v) for n, v in after.items() if before.get(n) != v]
    changes += [Change(n, v, None) for n, v in before.items() if n not in after]
    return changes


class OptionStore(Protocol):
    """What the options need of the machine's store (:class:`vhw.store.Store` is one)."""

    def get(self, namespace: str, key: str, default: Any = None) -> Any: ...

    def put(self, namespace: str, key: str, value: Any) -> None: ...

    def transaction(self) -> AbstractContextManager[object]:
        """Everything inside commits together, or not at all."""
        ...


class PromOptions:
    """A machine's PROM options and IDPROM identity, persisted in an :class:`OptionStore`.

    ``machine`` is the QEMU machine (``sun4u``, ``SS-5``, ...); ``mac`` the
    MAC the IDPROM carries (QEMU takes it from the NIC, so the launcher
    passes it as ``-nic ...,mac=``).
    """

    def __init__(self, store: OptionStore, machine: str, *, mac: str | None = None,
                 initial: Iterable[tuple[str, str]] = ()):
        """``mac`` and ``initial`` options fill a new store (the description's
        defaults); once the store holds options, it alone is the truth."""
        self.store = store
        self.machine = machine
        self.family = family(machine)
        if mac is not None:
            nvram.parse_mac(mac)
        with self.store.transaction():
            if mac is not None and self.store.get(NAMESPACE, "mac") is None:
                self.store.put(NAMESPACE, "mac", mac.lower())
            if self.store.get(NAMESPACE, "options") is None:
                self.replace(initial)

    # -- reading -------------------------------------------------------------
    def options(self) -> list[tuple[str, str]]:
        """The stored options in injection order."""
        return [(n, v) for n, v in self.store.get(NAMESPACE, "options", [])]

    def get(self, name: str) -> str | None:
        return dict(self.options()).get(name)

    @property
    def mac(self) -> str:
        """The IDPROM MAC; QEMU's default NIC MAC until one is set."""
        return self.store.get(NAMESPACE, "mac", "52:54:00:12:34:56")

    def image(self) -> bytes:
        """The 8 KiB NVRAM QEMU builds from these options (clock zeroed)."""
        return nvram.build_image(self.machine, self.injected_options(), mac=self.mac)

    def injected_options(self) -> list[tuple[str, str]]:
        """The options that reach NVRAM through ``-prom-env`` (on sun4m the
        routed ones go through ``-boot``/``-append`` instead)."""
        if self.family == "sun4m":
            return [(n, v) for n, v in self.options() if n not in SUN4M_ROUTED]
        return self.options()

    # -- editing (each one transaction, validated first) ---------------------
    def set(self, name: str, value: str) -> Change | None:
        """Set one option; None when it already had that value."""
        pairs = self.options()
        old = dict(pairs).get(name)
        if old == value:
            return None
        new = [(n, value if n == name else v) for n, v in pairs]
        if old is None:
            new.append((name, value))
        self.replace(new)
        return Change(name, old, value)

    def unset(self, name: str) -> Change:
        """Remove one option; an option that is not stored is an error."""
        pairs = self.options()
        old = dict(pairs).get(name)
        if old is None:
            raise nvram.NvramError(f"option {name!r} is not set", partition=nvram.SYSTEM_NAME)
        self.replace([(n, v) for n, v in pairs if n != name])
        return Change(name, old, None)

    def replace(self, pairs: Iterable[tuple[str, str]], *, mac: str | None = None) -> list[Change]:
        """Make ``pairs`` the options (and ``mac`` the MAC) in one transaction."""
        pairs = _dedupe(pairs)
        self.check(pairs)
        if mac is not None:
            nvram.parse_mac(mac)
        changes = diff(self.options(), pairs)
        with self.store.transaction():
            self.store.put(NAMESPACE, "options", [list(p) for p in pairs])
            if mac is not None:
                self.store.put(NAMESPACE, "mac", mac.lower())
        return changes

    def check(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Refuse what could not be injected: bad names/values, NVRAM overflow,
        sun4m boot devices ``-boot`` cannot express."""
        pairs = list(pairs)
        for name, value in pairs:
            nvram.check_option(name, value)
        routed = [(n, v) for n, v in pairs if self.family == "sun4m" and n in SUN4M_ROUTED]
        nvram.system_partition([p for p in pairs if p not in routed])  # raises when too big
        for name, value in routed:
            if name == "boot-device":
                sun4m_boot_letter(value)

    # -- images ----------------------------------------------------------------
    def import_image(self, data: bytes) -> list[Change]:
        """Take options and MAC from an NVRAM image (validated; all or nothing)."""
        image = nvram.parse_image(data)
        return self.replace(image.options, mac=image.idprom.mac_text)


def sun4m_boot_letter(device: str) -> str:
    """The ``-boot`` letter for a sun4m ``boot-device`` value."""
    word = device.split()[0].split(":")[0] if device.strip() else ""
    try:
        return SUN4M_BOOT_LETTERS[word]
    except KeyError:
        known = ", ".join(SUN4M_BOOT_LETTERS)
        raise nvram.NvramError(
            f"boot-device {device!r}: on sun4m OpenBIOS takes boot-device from QEMU's -boot, "
            f"which knows only {known}", partition=nvram.SYSTEM_NAME) from None


def _dedupe(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """One entry per name, at its first position, with its last value
    (what OpenBIOS ends up with when a name repeats)."""
    values: dict[str, str] = {}
    for name, value in pairs:
        values[name] = value
    return list(values.items())


def text_value(raw: bytes) -> str | None:
    """An option value as read from the firmware, as the text to store.

    String options carry one trailing NUL when injected; a guest's Linux
    ``OPIOCSET`` stores none (openprom-sparc.md §9).  Both are the same
    option text.  A value with an inner NUL cannot be injected: None.
    """
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    if b"\0" in raw:
        return None
    return raw.decode("utf-8", "surrogateescape")


def captured_changes(stored: Mapping[str, str], firmware: Mapping[str, bytes],
                     defaults: Mapping[str, str], *, family: str,
                     refuse: Callable[[str, str | None, str], bool] | None = None,
                     ) -> tuple[list[tuple[str, str]], list[str]]:
    """The options to store after reading ``/options`` from the firmware.

    A firmware value is kept when it differs from what the store would make
    the firmware show (the stored value, else the firmware default).  Returns
    the new option list and warnings for values that cannot be stored.
    ``refuse(name, old, new)`` (fault injection, vhw.faults) may refuse a
    change: the stored value stays and a warning says so.
    """
    new = dict(stored)
    warnings = []
    for name, raw in firmware.items():
        if family == "sun4m" and name in SUN4M_ROUTED:
            continue  # OpenBIOS rewrites these from -boot/-append at every start
        value = text_value(raw)
        if value is None:
            warnings.append(f"{name}: value {raw!r} has an inner NUL; not stored")
            continue
        expected = stored.get(name, defaults.get(name))
        if value != expected:
            if refuse is not None and refuse(name, stored.get(name), value):
                warnings.append(f"{name}: the guest's write of {value!r} was refused (injected fault)")
                continue
            new[name] = value
    return list(new.items()), warnings
