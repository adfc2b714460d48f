"""The DCMI part (DCMI 1.5): the ``[bmc.dcmi]`` table, the non-volatile strings and the power samples.

``bmc.parts["dcmi"]``; the commands that read and change it are in
``vhw.ipmi.commands.dcmi``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import DescriptionError
from ...tables import Table
from ..core.bmc import CC, IpmiError
from ..core.nonvolatile import MemoryStore, NonVolatile

GROUP_ID = 0xDC
#: DCMI specification conformance 1.5 (major, minor) and parameter revision 02h.
CONFORMANCE = bytes([0x01, 0x05])
PARAMETER_REVISION = 0x02
STORE_NAMESPACE = "dcmi"

CMD_GET_CAPABILITY_INFO = 0x01
CMD_GET_POWER_READING = 0x02
CMD_GET_ASSET_TAG = 0x06
CMD_SET_ASSET_TAG = 0x08
CMD_GET_MC_ID_STRING = 0x09
CMD_SET_MC_ID_STRING = 0x0A
CMD_GET_TEMPERATURE_READINGS = 0x10

CHUNK = 16
ASSET_TAG_MAX = 64
MC_ID_MAX = 63  # 64 bytes with the terminating NUL
UTF8_BOM = b"\xef\xbb\xbf"
#: Get Power Reading modes.
MODE_SYSTEM_POWER_STATISTICS = 0x01
MODE_ENHANCED_STATISTICS = 0x02
POWER_MEASUREMENT_ACTIVE = 0x40
#: Temperature sensors: DCMI entity IDs (DCMI 1.5 table 6-16) -> IPMI entity ID.
TEMPERATURE_ENTITIES = {0x40: 0x37, 0x41: 0x03, 0x42: 0x07, 0x37: 0x37, 0x03: 0x03, 0x07: 0x07}
SENSOR_TYPE_TEMPERATURE = 0x01
SENSOR_TYPE_POWER = 0x08
UNIT_WATTS = 6
READINGS_PER_RESPONSE = 8
#: Seconds between two power samples.
SAMPLE_INTERVAL = 1.0


@dataclass(frozen=True)
class DcmiConfig:
    """The ``[bmc.dcmi]`` table."""

    #: Initial asset tag (later Set Asset Tag writes win).
    asset_tag: str = ""
    #: Initial management controller ID string (from_dict: the machine name).
    mc_id: str | None = None
    #: Power reading when there is no power sensor; None = not measured.
    power_watts: int | None = None
    #: Name of the sensor the power reading comes from; None = the first
    #: power sensor in watts, if any.
    power_sensor: str | None = None

    @classmethod
    def from_dict(cls, d: Any, key: str, *, machine: str = "vhw") -> DcmiConfig:
        """Validate the table; the ID string defaults to the machine name."""
        if d is None:
            return cls(mc_id=machine[:MC_ID_MAX])
        Table(d, key).expect(("asset_tag", "mc_id", "power_watts", "power_sensor"))
        asset_tag = d.get("asset_tag", "")
        if not isinstance(asset_tag, str) or len(encode_text(asset_tag)) > ASSET_TAG_MAX:
            raise DescriptionError(f"{key}.asset_tag", f"must be a string of at most {ASSET_TAG_MAX} bytes")
        mc_id = d.get("mc_id", machine[:MC_ID_MAX])
        if (not isinstance(mc_id, str) or len(mc_id.encode("utf-8")) > MC_ID_MAX):
            raise DescriptionError(f"{key}.mc_id", f"must be a string of at most {MC_ID_MAX} bytes")
        watts = d.get("power_watts")
        if watts is not None and (isinstance(watts, bool) or not isinstance(watts, int) or not 0 <= watts <= 0xFFFF):
            raise DescriptionError(f"{key}.power_watts", "must be 0..65535 watts")
        sensor = d.get("power_sensor")
        if sensor is not None and not isinstance(sensor, str):
            raise DescriptionError(f"{key}.power_sensor", "must be a sensor name")
        return cls(asset_tag, mc_id, watts, sensor)


def encode_text(text: str) -> bytes:
    """ASCII as is; anything else as UTF-8 behind a byte order mark (DCMI asset tag format)."""
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        return UTF8_BOM + text.encode("utf-8")


def decode_text(raw: bytes) -> str:
    return raw[len(UTF8_BOM):].decode("utf-8", "replace") if raw.startswith(UTF8_BOM) else raw.decode("latin-1")


class Dcmi:
    """Asset tag, MC ID string and power statistics of one BMC."""

    def __init__(self, bmc: Any, config: DcmiConfig):
        self.bmc = bmc
        self.config = config
        self.store: NonVolatile = bmc.store if bmc.store is not None else MemoryStore()
        saved = self.store.items(STORE_NAMESPACE)
        self.asset_tag = bytes.fromhex(saved["asset_tag"]) if "asset_tag" in saved else encode_text(config.asset_tag)
        default_id = (config.mc_id if config.mc_id is not None else "vhw").encode("utf-8")[:MC_ID_MAX]
        self.mc_id = bytes.fromhex(saved["mc_id"]) if "mc_id" in saved else default_id
        self._start: float | None = None
        self._last_sample: float | None = None
        self._samples: list[int] = []

    # -- strings -----------------------------------------------------------------
    def write_asset_tag(self, offset: int, chunk: bytes) -> int:
        self.asset_tag = _write(self.asset_tag, offset, chunk, ASSET_TAG_MAX)
        self.store.put(STORE_NAMESPACE, "asset_tag", self.asset_tag.hex())
        return len(self.asset_tag)

    def write_mc_id(self, offset: int, chunk: bytes) -> int:
        """The string ends at the first NUL written (tools send it with the last chunk)."""
        new = _write(self.mc_id, offset, chunk, MC_ID_MAX + 1)
        self.mc_id = new.split(b"\x00", 1)[0]
        self.store.put(STORE_NAMESPACE, "mc_id", self.mc_id.hex())
        return len(self.mc_id)

    # -- power -------------------------------------------------------------------
    def poll(self, now: float) -> None:
        if self._start is None:
            self._start = now
        if self._last_sample is None or now - self._last_sample >= SAMPLE_INTERVAL:
            watts = self.power_now(now)
            self._last_sample = now
            if watts is not None:
                self._samples.append(watts)
                del self._samples[:-3600]  # an hour of samples is plenty

    def power_now(self, now: float) -> int | None:
        sensors = self.bmc.parts.get("sensors")
        sensor = _power_sensor(sensors, self.config.power_sensor) if sensors is not None else None
        if sensor is not None:
            value = sensors.reading(sensor.number, now)
            return None if value is None else max(0, min(0xFFFF, round(value)))
        return self.config.power_watts

    def power_reading(self, now: float) -> tuple[int, int, int, int, int, bool]:
        """(current, minimum, maximum, average, period in ms, measurement active)."""
        self.poll(now)
        current = self.power_now(now)
        if current is None or not self._samples:
            return 0, 0, 0, 0, 0, False
        period_ms = int((now - (self._start or now)) * 1000) & 0xFFFFFFFF
        s = self._samples
        return current, min(s), max(s), round(sum(s) / len(s)), period_ms, True


def _power_sensor(sensors: Any, name: str | None) -> Any:
    if name is not None:
        try:
            return sensors.get(name)
        except KeyError:
            return None
    return next((s for s in sensors.by_type(SENSOR_TYPE_POWER)
                 if s.is_threshold and s.config.unit == UNIT_WATTS), None)


def _write(old: bytes, offset: int, chunk: bytes, limit: int) -> bytes:
    """Write ``chunk`` at ``offset``; the value ends where the write ends."""
    if offset > len(old):
        raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"offset {offset} beyond the {len(old)} bytes written")
    if offset + len(chunk) > limit:
        raise IpmiError(CC.PARAMETER_OUT_OF_RANGE, f"{offset + len(chunk)} bytes exceed {limit}")
    return old[:offset] + bytes(chunk)


def create_part(bmc: Any, config: Any) -> Dcmi:
    """The part for ``bmc.parts["dcmi"]``; the default ID string is the machine name."""
    return Dcmi(bmc, getattr(config, "dcmi", None) or DcmiConfig())
