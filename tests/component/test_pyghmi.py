"""pyghmi's IPMI client (``pyghmi.ipmi.command.Command``, RMCP+) against an in-process BMC on 127.0.0.1:0.

The BMC is examples/small-1u.toml's (sensors, FRU, users, DCMI); pyghmi's
answers are compared with that description.  ipmi-anchors.md records that
pyghmi's boot device get/set and FRU inventory failed against ipmi_sim: both
are judged here.

No VM runs in-process.  One fixture gives the BMC a stand-in power port (what
``vhw.ipmi.io.service.MachinePowerPort`` does for a real machine, reduced to the
chassis' power state) so Chassis Control (28.3) has a visible effect; a second
BMC without any port shows what Chassis Control does then: the command is
accepted, the power action is only logged, and the chassis keeps reporting
its true state (power off).
"""

from __future__ import annotations

import asyncio
import threading
import time
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("pyghmi")
from pyghmi.ipmi.command import Command  # noqa: E402

from vhw.ipmi.core.actions import PowerOp  # noqa: E402
from vhw.ipmi.core.assemble import create_bmc  # noqa: E402
from vhw.ipmi.io.lan_server import LanServer  # noqa: E402
from vhw.ipmi.parts.sessions import lan_context  # noqa: E402
from vhw.ipmi.io.runner import BmcRunner  # noqa: E402
from vhw.machine.description import load_description  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "small-1u.toml"
ADMIN = ("admin", "admin")  # examples/small-1u.toml, user 2


class ChassisPowerPort:
    """A VM stand-in: power up/down/cycle/reset land on the chassis as the launcher's hooks would."""

    def __init__(self, bmc, runner):
        self.bmc, self.runner, self.ops = bmc, runner, []

    async def power(self, op: PowerOp, cause: str) -> None:
        self.ops.append(op)
        chassis, now = self.bmc.parts["chassis"], self.runner.now()
        if op in (PowerOp.OFF, PowerOp.SOFT_OFF):
            chassis.vm_powered_off(now)
        elif op in (PowerOp.ON, PowerOp.CYCLE):
            chassis.vm_powered_on(now)
        elif op is PowerOp.RESET:
            chassis.vm_reset(now)


class InProcessBmc:
    """examples/small-1u.toml's BMC serving LAN from its own thread and event loop."""

    def __init__(self, *, with_power: bool):
        self.desc = load_description(EXAMPLE)
        self.bmc = create_bmc(self.desc.bmc.config)
        self.runner = BmcRunner(self.bmc)
        self.power = None
        if with_power:
            self.power = ChassisPowerPort(self.bmc, self.runner)
            self.runner.power_port = self.power
        self.loop = asyncio.new_event_loop()
        self.server = LanServer(lan_context(self.bmc), self.runner)
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self.clients: list[Command] = []

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.port = self.loop.run_until_complete(self.server.start("127.0.0.1:0"))[1]
        if self.power is not None:  # the machine is on when the BMC starts, as a launched VM would be
            self.bmc.parts["chassis"].vm_powered_on(self.loop.time())
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> InProcessBmc:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the BMC's loop (its state belongs to that thread)."""
        async def go():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)

    def client(self, user=ADMIN[0], password=ADMIN[1]) -> Command:
        c = Command(bmc="127.0.0.1", userid=user, password=password, port=self.port)
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            try:
                c.ipmi_session.logout()
            except Exception:
                pass
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def served():
    bmc = InProcessBmc(with_power=True).start()
    yield bmc
    bmc.close()


@pytest.fixture(scope="module")
def ipmi(served):
    return served.client()


def test_power_state_and_chassis_control(served, ipmi):
    """28.2 Get Chassis Status / 28.3 Chassis Control: off, on, and the chassis' state read back."""
    assert ipmi.get_power() == {"powerstate": "on"}
    assert ipmi.set_power("off", wait=True) == {"powerstate": "off"}
    assert ipmi.get_power() == {"powerstate": "off"}
    assert ipmi.set_power("on", wait=True) == {"powerstate": "on"}
    assert ipmi.get_power() == {"powerstate": "on"}
    assert ipmi.set_power("reset") == {"pendingpowerstate": "reset"}  # pyghmi does not wait on reset
    for _ in range(100):  # the runner acts on power off the request path
        if served.power.ops[-1:] == [PowerOp.RESET]:
            break
        time.sleep(0.1)
    assert served.power.ops[-3:] == [PowerOp.OFF, PowerOp.ON, PowerOp.RESET]
    assert served.call(lambda: served.bmc.parts["chassis"].power_on)


def test_chassis_control_without_a_machine():
    """With no power port (no VM, no QEMU link) Chassis Control is accepted (CC 00h) and the
    action only logged: the chassis keeps reporting its real state, power off."""
    bare = InProcessBmc(with_power=False).start()
    try:
        ipmi = bare.client()
        assert ipmi.get_power() == {"powerstate": "off"}
        assert ipmi.set_power("on") == {"pendingpowerstate": "on"}
        assert ipmi.get_power() == {"powerstate": "off"}
    finally:
        bare.close()


def test_boot_device_get_and_set(ipmi):
    """28.12/28.13 Get/Set System Boot Options, parameter 5 (boot flags, table 28-14).

    pyghmi reports a boot-flags parameter without "valid" as {'bootdev': 'default', 'persistent': True}.
    """
    assert ipmi.get_bootdev()["bootdev"] == "default"
    assert ipmi.set_bootdev("network") == {"bootdev": "network"}
    assert ipmi.get_bootdev() == {"bootdev": "network", "persistent": False, "uefimode": False}
    assert ipmi.set_bootdev("hd", persist=True) == {"bootdev": "hd"}
    assert ipmi.get_bootdev() == {"bootdev": "hd", "persistent": True, "uefimode": False}
    assert ipmi.set_bootdev("default") == {"bootdev": "default"}
    assert ipmi.get_bootdev()["bootdev"] == "default"


def test_fru_inventory_matches_the_description(ipmi):
    """34.1 Get FRU Inventory Area Info / 34.2 Read FRU Data, decoded by pyghmi (FRU spec v1.0 ch. 10-12)."""
    fru = tomllib.loads(EXAMPLE.read_text())["bmc"]["fru"]
    inventory = dict(ipmi.get_inventory())
    system = inventory["System"]
    assert system["Chassis type"] == "Rack Mount Chassis"
    assert system["Chassis part number"] == fru["chassis"]["part_number"]
    assert system["Chassis serial number"] == fru["chassis"]["serial_number"]
    assert system["chassis_extra"] == fru["chassis"]["extra"]
    assert system["Board manufacturer"] == fru["board"]["manufacturer"]
    assert system["Board product name"] == fru["board"]["product"]
    assert system["Board serial number"] == fru["board"]["serial_number"]
    assert system["Board model"] == fru["board"]["part_number"]
    assert system["Board manufacture date"] == "2024-02-29T08:15"
    assert system["Manufacturer"] == fru["product"]["manufacturer"]
    assert system["Product name"] == fru["product"]["name"]
    assert system["Model"] == fru["product"]["part_number"]
    assert system["Hardware Version"] == fru["product"]["version"]
    assert system["Serial Number"] == fru["product"]["serial_number"]
    assert system["Asset Number"] == fru["product"]["asset_tag"]


def test_sensor_data_matches_the_description(served, ipmi):
    """35.14 Get Sensor Reading with the SDRs (33.12 Get SDR, 43.1 full records) pyghmi linearises."""
    readings = {r.name: r for r in ipmi.get_sensor_data()}
    for s in served.desc.bmc.config.sensors:
        assert s.name in readings, f"{s.name} missing: {sorted(readings)}"
        if s.threshold:
            r = readings[s.name]
            assert r.value == pytest.approx(s.value, abs=max(r.imprecision or 0, abs(s.value) * 0.01)), s.name
            assert r.health == 0, s.name  # every reading is inside its thresholds
    assert ipmi.get_sensor_reading("CPU Temp").units == "°C"
    assert ipmi.get_health()["health"] == 0


def test_event_log_names_the_sensor(served, ipmi):
    """31.6 Add SEL Entry then pyghmi's SEL reader (31.5 Get SEL Entry) names the sensor from the SDRs."""
    record = bytes([0, 0, 0x02, 0, 0, 0, 0, 0x20, 0x00, 0x04, 0x01, 0x31, 0x01, 0x07, 0xFF, 0xFF])
    rsp = ipmi.raw_command(netfn=0x0A, command=0x44, data=record)
    assert "error" not in rsp, rsp
    events = list(ipmi.get_event_log())
    assert any(e.get("component") == "CPU Temp" for e in events), events


def test_users_list_create_and_log_in(served, ipmi):
    """22.26-22.30 user commands through pyghmi, then RMCP+ login (13.20-13.23) as the new user."""
    users = ipmi.get_users()
    assert users[2]["name"] == "admin" and users[2]["access"]["privilege_level"] == "administrator"
    assert users[3]["name"] == "monitor" and users[3]["access"]["privilege_level"] == "user"
    assert ipmi.set_user_name(6, "pgu") is True
    assert ipmi.get_user_name(6) == "pgu"
    assert ipmi.create_user(7, "pgadmin", "pg-secret-7", channel=1, privilege_level="administrator") is True
    assert ipmi.get_user(7)["access"]["privilege_level"] == "administrator"
    other = served.client("pgadmin", "pg-secret-7")
    assert other.get_power()["powerstate"] in ("on", "off")


def test_net_configuration_and_identity(served, ipmi):
    """23.2 Get LAN Configuration Parameters (IP source 4, address 3, netmask 6, gateway 12, MAC 5)
    and the DCMI / 20.1 identity pyghmi reads."""
    net = ipmi.get_net_configuration()
    assert net["ipv4_configuration"] in ("Static", "DHCP")
    assert "/" in net["ipv4_address"] and len(net["mac_address"].split(":")) == 6
    assert ipmi.get_network_channel() == 1
    assert ipmi.get_mci() == "small-1u-bmc"
    assert ipmi.get_asset_tag() == "SRV-0001"
    assert dict(ipmi.get_firmware())["BMC Version"]["version"] == "2.7"
