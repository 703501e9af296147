"""The sgw bench SUT end to end: the config bench/sut/sgw/gen_config.py generates, over the real
Mosquitto, through mapping, validation and the outbox, to an HTTP sink on a real socket through the
http_post adapter; a bad USCC ends in the rejections ledger, never at the sink."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web

from connectors.mqtt.connector import MqttConnector
from gateway.runtime import Runtime
from gateway.settings import load_settings
from tests.conftest import ROOT, free_port
from tests.peers import mqtt_devices as sim

pytestmark = pytest.mark.integration

GOOD_USCC = "91310115714167048K"
BAD_USCC = "91310115714167048A"  # wrong check character


def gen_config() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sgw_bench_gen_config", ROOT / "bench/sut/sgw/gen_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def message(seq: int) -> dict[str, Any]:
    minute, second = divmod(seq, 60)
    return {"dev": f"ENV-{seq % 7 + 1:04d}", "ts": f"2026-11-22T10:{minute:02d}:{second:02d}+08:00",
            "pm25": round(5.0 + seq / 10, 1), "noise_db": 35.5 + seq,
            "ent_uscc": BAD_USCC if seq % 10 == 3 else GOOD_USCC, "seq": seq, "t_pub": 1795352013073296 + seq}


def expected(seq: int) -> dict[str, Any]:
    m = message(seq)
    minute, second = divmod(seq, 60)
    return {"device_id": m["dev"], "observed_at": f"2026-11-22T02:{minute:02d}:{second:02d}Z",
            "metrics": {"pm25": m["pm25"], "noise_db": m["noise_db"]}, "subject_uscc": GOOD_USCC, "seq": seq,
            "t_pub": m["t_pub"]}


@pytest.fixture
async def sink() -> AsyncIterator[tuple[str, list[list[dict[str, Any]]]]]:
    bodies: list[list[dict[str, Any]]] = []

    async def ingest(request: web.Request) -> web.Response:
        bodies.append(json.loads(await request.read()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/ingest", ingest)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/ingest", bodies
    finally:
        await runner.cleanup()


async def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_bench_messages_reach_the_sink_in_its_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          sink: tuple[str, list[list[dict[str, Any]]]]) -> None:
    url, bodies = sink
    tag = uuid.uuid4().hex[:10]
    for name, value in {"BENCH_RUN_DIR": str(tmp_path), "BENCH_TOPIC_FILTER": f"t{tag}/devices/+/telemetry",
                        "BENCH_SINK_URL": url, "BENCH_CLIENT_ID": f"sgw-test-{tag}", "BENCH_MQTT_PORT": "1883",
                        "SGWBENCH_CLIENTS": "2", "SGWBENCH_DELIVERY_WAIT_S": "0.02"}.items():
        monkeypatch.setenv(name, value)
    config = gen_config().config(tmp_path)
    (tmp_path / "gateway.yaml").write_text(json.dumps(config), encoding="utf-8")
    runtime = Runtime(load_settings(tmp_path / "gateway.yaml", environ={}))
    connectors = [runtime.assembly.connectors[f"bench-mqtt-{n}"] for n in (1, 2)]
    assert all(isinstance(c, MqttConnector) for c in connectors)
    await runtime.start()
    try:
        await wait_for(lambda: all(c.bridge is not None and c.bridge.connected.is_set() for c in connectors))
        await asyncio.sleep(0.3)  # the SUBACKs
        device = sim.Publisher(f"sgw-test-{tag}-dev")
        try:
            for seq in range(60):
                device.publish(f"t{tag}/devices/{message(seq)['dev']}/telemetry", json.dumps(message(seq)).encode())
        finally:
            device.close()
        valid = [seq for seq in range(60) if seq % 10 != 3]
        await wait_for(lambda: sum(len(b) for b in bodies) >= len(valid))
        await wait_for(lambda: runtime.store.rejections.count(status="open") == 6)
        await asyncio.sleep(0.2)  # nothing more arrives
    finally:
        await runtime.stop()
    received = [record for body in bodies for record in body]
    assert sorted(received, key=lambda r: r["seq"]) == [expected(seq) for seq in valid]
    # the two clients of the shared subscription split the load
    assert all(c.counters.get("messages", 0) > 0 for c in connectors)
