"""MQTT telemetry to the data centre: sustained throughput, and p99 end-to-end latency at a steady
2,000 messages/s, over the real Mosquitto (127.0.0.1:1883) into the data-centre tables (SQLite).

Latency = the data-centre adapter's write returned - the simulator's publish call. Prints one JSON
object on its last line: messages_per_s, p99_ms, lost (+ details).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.base import DeliveryResult, OutboundRecord  # noqa: E402
from gateway.runtime import Runtime  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.test_mqtt_ingest import gateway_config, mqtt_options  # noqa: E402
from tests.peers import mqtt_devices as sim  # noqa: E402

MAX_RATE_COUNT = 20_000
STEADY_RATE = 2_000.0
STEADY_SECONDS = 10


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def phase(runtime: Runtime, port: int, prefix: str, start: int, count: int, rate: float | None,
                delivered: dict[str, float]) -> dict[str, Any]:
    sent_at: dict[str, float] = {}
    ids = [sim.source_record_id(n) for n in range(start, start + count)]

    def stream() -> Any:
        for n, (topic, payload) in enumerate(sim.telemetry_stream(prefix, count, start=start)):
            sent_at[ids[n]] = time.time()
            yield topic, payload

    device = sim.Publisher(f"bench-{uuid.uuid4().hex[:8]}", port=port)
    began = time.time()
    thread = threading.Thread(target=device.publish_at_rate, args=(stream(), rate))
    thread.start()
    deadline = time.monotonic() + 60 + count / 500
    while time.monotonic() < deadline and sum(1 for i in ids if i in delivered) < count:
        await asyncio.sleep(0.1)
    await asyncio.to_thread(thread.join)
    device.close()
    got = [i for i in ids if i in delivered]
    ended = max((delivered[i] for i in got), default=time.time())
    latencies = [(delivered[i] - sent_at[i]) * 1000 for i in got if i in sent_at]
    return {"messages": count, "delivered": len(got), "lost": count - len(got),
            "messages_per_s": round(len(got) / (ended - began), 1),
            "p50_ms": round(percentile(latencies, 0.5), 1), "p99_ms": round(percentile(latencies, 0.99), 1)}


async def main() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sgw-bench-mqtt-"))
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if port:  # an existing broker (e.g. 1883, stock limits)
        return await run(tmp, port)
    with sim.private_mosquitto(tmp, free_port(), max_inflight=1000) as port:
        return await run(tmp, port)


async def run(tmp: Path, port: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    prefix = f"b{tag}/"
    config = gateway_config(tmp, mqtt_options(prefix, f"sgw-bench-{tag}", clean_start=True,
                                              batch_max_messages=500, batch_max_wait_s=0.005,
                                              broker={"port": port}))
    config["adapters"][0]["max_wait_s"] = 0.02
    config["adapters"][0]["batch_size"] = 1000
    path = tmp / "gateway.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    runtime = Runtime(load_settings(path, environ={}))
    delivered: dict[str, float] = {}
    adapter = runtime.assembly.adapters["data-centre"]
    original = adapter.deliver

    async def timed(batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        results: list[DeliveryResult] = await original(batch)
        now = time.time()
        for item, result in zip(batch, results, strict=True):
            if result.status == "delivered":
                delivered[str(item.record.get("source_record_id"))] = now
        return results

    adapter.deliver = timed
    await runtime.start()
    try:
        connector = runtime.assembly.connectors["iot-mqtt"]
        while connector.bridge is None or not connector.bridge.connected.is_set():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        burst = await phase(runtime, port, prefix, 0, MAX_RATE_COUNT, None, delivered)
        steady = await phase(runtime, port, prefix, 1_000_000, int(STEADY_RATE * STEADY_SECONDS), STEADY_RATE,
                             delivered)
    finally:
        await runtime.stop()
    return {"messages_per_s": burst["messages_per_s"], "p99_ms": steady["p99_ms"],
            "lost": burst["lost"] + steady["lost"], "max_rate": burst, "steady_2000": steady,
            "store": "sqlite (gateway) + sqlite (data centre)", "broker_port": port}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
