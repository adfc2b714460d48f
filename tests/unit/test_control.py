"""The BMC's control socket: sensor changes from another process, bad input answered."""

import asyncio
import json

import pytest

from vhw.control import ControlServer, control_request
from vhw.errors import VhwError
from vhw.ipmi.core.config import BmcConfig
from vhw.ipmi.io.service import BmcService

CONFIG = {"sensors": [{"name": "CPU Temp", "number": 0x10, "type": "temperature", "unit": "degrees_c",
                       "range": [0, 127], "value": 40.0, "thresholds": {"unc": 80.0, "uc": 90.0}}]}


def test_set_sensor_over_the_socket_changes_the_reading_and_raises_an_event(tmp_path):
    async def main():
        service = BmcService(BmcConfig.from_dict(CONFIG))
        server = ControlServer(service)
        path = str(tmp_path / "control.sock")
        await server.start(path)
        try:
            got = await control_request(path, {"op": "get-sensor", "sensor": "CPU Temp"})
            assert got["value"] == pytest.approx(40.0, abs=1.0)
            got = await control_request(path, {"op": "set-sensor", "sensor": "CPU Temp", "value": 95})
            assert got["value"] == pytest.approx(95.0, abs=1.0)
            # Crossing UNC and UC going high (29.7) logs events in the SEL.
            rsp = service.request(0x0A, 0x40)  # Get SEL Info (31.2): byte 2-3 entry count
            assert rsp.cc == 0 and int.from_bytes(rsp.data[1:3], "little") >= 2
            with pytest.raises(VhwError, match="no sensor"):
                await control_request(path, {"op": "set-sensor", "sensor": "Nope", "value": 1})
            with pytest.raises(VhwError, match="unknown op"):
                await control_request(path, {"op": "reboot"})
        finally:
            await server.close()
            await service.close()

    asyncio.run(main())


@pytest.mark.parametrize("line", [b"not json\n", b"[1, 2]\n", b'{"op": "post-event", "record": "00"}\n',
                                  b'{"op": "set-sensor"}\n'])
def test_bad_requests_get_an_error_answer(line):
    async def main():
        server = ControlServer(BmcService(BmcConfig()))
        return server.answer(line)

    answer = asyncio.run(main())
    assert answer["ok"] is False and answer["error"] and "internal" not in answer["error"]
    json.dumps(answer)


def test_an_unreachable_socket_is_a_clear_error(tmp_path):
    with pytest.raises(VhwError, match="cannot reach the control socket"):
        asyncio.run(control_request(str(tmp_path / "none.sock"), {"op": "ping"}))
