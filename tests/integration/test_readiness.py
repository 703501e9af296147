"""/readyz says why: an MQTT connector that cannot reach its broker makes the gateway unready (503),
one connected to the real Mosquitto ready; a target whose circuit opened makes it 'degraded' (still
200: the outbox keeps the records), and /metrics shows the open circuit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import hash_api_key
from tests.conftest import SAMPLES, free_port
from tests.peers.national_platform_server import APP_ID, APP_SECRET, NationalPlatformServer
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

KEY = "sgw_test_key_readiness"
WAIT_S = 20.0


def mqtt_connector(port: int) -> dict[str, Any]:
    prefix = f"sgw-test-{uuid.uuid4().hex[:8]}/"
    return {"id": "iot-mqtt", "type": "mqtt", "meta": {"provider_uscc": "113301000025441678"},
            "mappings": {"telemetry-json": "iot-mqtt.telemetry-json"},
            "options": {"client_id": f"sgw-ready-{uuid.uuid4().hex[:8]}", "broker": {"port": port},
                        "topics": [{"template": prefix + "iot/v1/{region}/{device_id}/telemetry", "codec": "json"}]}}


async def ready_when(client: httpx.AsyncClient, check: Callable[[httpx.Response], bool]) -> httpx.Response:
    """Poll /readyz until ``check`` holds (the broker connection is reported asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        answer = await client.get("/readyz")
        if check(answer) or loop.time() > deadline:
            return answer
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("broker_port", "status", "state"), [(1883, 200, "up"), (None, 503, "down")])
async def test_readiness_follows_the_mqtt_broker_connection(tmp_path: Path, broker_port: int | None,
                                                            status: int, state: str) -> None:
    runtime = embedded_runtime(tmp_path, [mqtt_connector(broker_port or free_port())])
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
        answer = await ready_when(client, lambda r: r.json()["checks"]["broker"]["connectors"].get("iot-mqtt")
                                  == state)
    body = answer.json()
    assert answer.status_code == status, body
    assert body["checks"]["broker"] == {"ok": state == "up", "connectors": {"iot-mqtt": state}}
    assert body["ready"] is (state == "up") and body["checks"]["database"] == {"ok": True}
    assert body["status"] == ("ok" if state == "up" else "unavailable")


async def test_an_open_circuit_makes_the_gateway_degraded_but_ready(tmp_path: Path) -> None:
    async with NationalPlatformServer() as national:
        runtime = embedded_runtime(
            tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}],
            departments=[{"code": "eco", "name": "生态环境", "api_key_hashes": [hash_api_key(KEY)]}],
            delivery={"circuit_failures": 1, "circuit_open_s": 60},
            adapters=[{"id": "national", "type": "national_platform",
                       "options": {"base_url": national.url, "app_id": APP_ID, "app_secret": APP_SECRET}}],
            routing=[{"kinds": ["*"], "adapters": ["national"]}])
        national.fail(1000, 503)
        async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
            page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
            pushed = await client.post("/ingest/eco-push", json=page["items"], headers={"X-API-Key": KEY})
            assert pushed.status_code == 202, pushed.text
            answer = await ready_when(client, lambda r: r.json()["status"] == "degraded")
            metrics = (await client.get("/metrics")).text
    assert answer.status_code == 200
    assert answer.json()["checks"]["targets"] == {"ok": False, "circuits": {"national": "open"}}
    open_ = {s.labels["adapter"]: s.value for f in text_string_to_metric_families(metrics) for s in f.samples
             if s.name == "sgw_adapter_circuit_open"}
    assert open_ == {"national": 1.0}
