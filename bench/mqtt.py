"""MQTT telemetry to the data centre: sustained throughput, and p99 end-to-end latency at a steady
2,000 messages/s, over a real Mosquitto into the data-centre tables (SQLite).

Latency = the data-centre adapter's write returned - the simulator's publish call. The simulated
devices publish from a process of their own, as real devices would (sharing the gateway's GIL they
measured themselves). Prints one JSON
object on its last line: messages_per_s, p99_ms, lost (+ details: each phase, how the connector's
durable writes went, and the broker's in-flight window).

    python bench/mqtt.py                   # private Mosquitto (max_inflight_messages 2000), whole gateway
    python bench/mqtt.py --port 1883       # an existing broker (stock Mosquitto: 20 in flight for 3.1.1)
    python bench/mqtt.py --connector-only  # the connector alone: publish returns at once (no store)
    python bench/mqtt.py --redis-outbox --pg-data-centre   # production outbox and data centre
    python bench/mqtt.py --pg-store --redis-outbox --pg-data-centre   # all production stores
    python bench/mqtt.py --redis-outbox --ingest-processes 2   # instances by role: 2 x `sgw run --role
                                           # ingest` (shared subscription), delivery in this process
    python bench/mqtt.py --burst 120000    # hold the max rate for over 20 s (default 30,000 messages)

``--connector-only`` measures what the connector and the broker can carry, so the difference to the
full run is the store's share (ingest, outbox, delivery and the data-centre write). Each phase also
reports the CPU the gateway process spent per message (``messages_per_cpu_s``: what one core
would carry), steadier than wall-clock rates on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402

from adapters.base import DeliveryResult, OutboundRecord  # noqa: E402
from connectors.base import ConnectorContext, PublishReceipt  # noqa: E402
from connectors.mqtt.config import MqttOptions  # noqa: E402
from connectors.mqtt.connector import MqttConnector  # noqa: E402
from gateway.envelope import Envelope  # noqa: E402
from gateway.gc_tuning import tune_for_throughput  # noqa: E402
from gateway.runtime import Runtime  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.test_mqtt_ingest import gateway_config, mqtt_options  # noqa: E402
from tests.peers import mqtt_devices as sim  # noqa: E402
from tests.pg import SERVER as PG_URL  # noqa: E402
from tests.pg import execute as pg_execute  # noqa: E402
from tests.pg import schema_url  # noqa: E402
from tests.redis_keys import REDIS_URL, drop_keys  # noqa: E402

MAX_RATE_COUNT = 30_000
STEADY_RATE = 2_000.0
STEADY_SECONDS = 10
BROKER_INFLIGHT = 2_000
DEVICE_PROCESSES = 2


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Writes:
    """How long the connector's durable writes (``publish``) took, and how many messages each carried."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.messages: list[int] = []

    def wrap(self, connector: MqttConnector) -> None:
        original = connector._publish

        async def timed(group: Any, publish: Any) -> None:
            began = time.perf_counter()
            await original(group, publish)
            self.seconds.append(time.perf_counter() - began)
            self.messages.append(len(group.messages))

        connector._publish = timed  # type: ignore[method-assign]

    def summary(self) -> dict[str, Any]:
        if not self.seconds:
            return {}
        busy = sum(self.seconds)
        return {"writes": len(self.seconds), "messages_per_write": round(sum(self.messages) / len(self.messages), 1),
                "write_ms_mean": round(1000 * busy / len(self.seconds), 1),
                "write_ms_p99": round(1000 * percentile(self.seconds, 0.99), 1),
                "messages_per_write_second": round(sum(self.messages) / busy, 1) if busy else None}


async def phase(port: int, prefix: str, start: int, count: int, rate: float | None,
                delivered: dict[str, float], processes: int = DEVICE_PROCESSES,
                other_pids: Sequence[int] = (), key: Callable[[int], str] = sim.source_record_id) -> dict[str, Any]:
    """Simulated devices publishing ``count`` readings, from processes of their own (the lean
    publisher of tests/peers/mqtt_load.py: a few microseconds of CPU per message where paho spent
    as much as the gateway, so the gateway is what is measured)."""
    ids = [key(n) for n in range(start, start + count)]
    already = len(delivered)  # ids of earlier phases: every message is delivered under its own id
    share = -(-count // processes)
    chunks = [(first, min(share, start + count - first)) for first in range(start, start + count, share)]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(len(chunks), mp_context=multiprocessing.get_context("spawn")) as devices:
        await asyncio.gather(*(loop.run_in_executor(devices, time.sleep, 0.2) for _ in chunks))  # processes up
        began, cpu_began = time.time(), time.process_time() + children_cpu_s(other_pids)
        publishing = [loop.run_in_executor(devices, sim.publish_stream, port, prefix, first, n,
                                           rate / len(chunks) if rate else None, BROKER_INFLIGHT)
                      for first, n in chunks]
        deadline = time.monotonic() + 60 + count / 500
        while time.monotonic() < deadline and len(delivered) - already < count:
            await asyncio.sleep(0.1)
        sent = [at for chunk in await asyncio.gather(*publishing) for at in chunk]
        # the gateway's processes only (this one and any ingest instances): the devices and the broker are others
        cpu_s = time.process_time() + children_cpu_s(other_pids) - cpu_began
    sent_at = dict(zip(ids, sent, strict=True))
    got = [i for i in ids if i in delivered]
    ended = max((delivered[i] for i in got), default=time.time())
    latencies = [(delivered[i] - sent_at[i]) * 1000 for i in got if i in sent_at]
    return {"messages": count, "delivered": len(got), "lost": count - len(got), "device_processes": len(chunks),
            "messages_per_s": round(len(got) / (ended - began), 1),
            # CPU the gateway process spent per message (all its threads): less noisy than wall
            # time on a shared machine; 1 / it is what one fully available core would carry
            "gateway_cpu_ms_per_message": round(1000 * cpu_s / count, 3),
            "messages_per_cpu_s": round(count / cpu_s, 1) if cpu_s else None,
            "p50_ms": round(percentile(latencies, 0.5), 1), "p99_ms": round(percentile(latencies, 0.99), 1)}


async def phases(port: int, prefix: str, delivered: dict[str, float], other_pids: Sequence[int] = (),
                 key: Callable[[int], str] = sim.source_record_id, *,
                 burst_messages: int = MAX_RATE_COUNT) -> tuple[dict[str, Any], dict[str, Any]]:
    """``delivered`` maps ``key(n)`` of message n to the time it was delivered."""
    burst = await phase(port, prefix, 0, burst_messages, None, delivered, other_pids=other_pids, key=key)
    steady = await phase(port, prefix, 1_000_000, int(STEADY_RATE * STEADY_SECONDS), STEADY_RATE, delivered,
                         other_pids=other_pids, key=key)
    return burst, steady


async def wait_connected(connector: MqttConnector) -> None:
    while connector.bridge is None or not connector.bridge.connected.is_set():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the SUBACK


def options(prefix: str, tag: str, port: int) -> dict[str, Any]:
    return mqtt_options(prefix, f"sgw-bench-{tag}", clean_start=True, broker={"port": port},
                        batch_max_messages=1000, batch_max_wait_s=0.02, max_inflight=BROKER_INFLIGHT)


async def whole_gateway(tmp: Path, port: int, redis_outbox: bool, pg_data_centre: bool,
                        ingest_processes: int = 0, burst_messages: int = MAX_RATE_COUNT,
                        pg_store: bool = False) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    prefix = f"b{tag}/"
    config = gateway_config(tmp, options(prefix, tag, port))
    config["adapters"][0]["max_wait_s"] = 0.02
    config["adapters"][0]["batch_size"] = 1000
    if redis_outbox:
        config["stores"].update(redis_url=REDIS_URL, redis_prefix=f"bench-mqtt-{tag}")
    schema = f"bench_mqtt_{tag}"
    store_schema = f"bench_mqtt_store_{tag}"
    if pg_store:  # the gateway's own store on PostgreSQL, in a schema of its own
        pg_execute(f'CREATE SCHEMA "{store_schema}"')
        config["stores"]["database_url"] = schema_url(store_schema)
    if pg_data_centre:
        config["adapters"][0]["options"] = {"url": PG_URL, "db_schema": schema, "create_tables": True}
    try:
        if ingest_processes:
            if ingest_processes > 1:  # one subscription the instances split, every instance seeding it
                config["connectors"][0]["options"]["share_group"] = f"sgw{tag}"
            async with ingest_instances(config, tmp, tag, ingest_processes) as pids:
                config["roles"] = ["delivery"]
                result = await _whole_gateway(config, tmp, port, prefix, pids, burst_messages=burst_messages)
            return {**result, "path": f"{ingest_processes} x `sgw run --role ingest` (mqtt -> connector -> ingest + "
                                      f"outbox) -> this process, as `--role delivery` -> data centre",
                    "ingest_processes": ingest_processes}
        return await _whole_gateway(config, tmp, port, prefix, burst_messages=burst_messages)
    finally:
        if pg_data_centre:
            pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        if pg_store:
            pg_execute(f'DROP SCHEMA IF EXISTS "{store_schema}" CASCADE')
        if redis_outbox:
            drop_keys(f"bench-mqtt-{tag}*")


def ingest_instance(config: dict[str, Any], i: int) -> dict[str, Any]:
    """The config of ingest instance ``i``: an API port and an instance name of its own.

    The connector stays exactly as ``config`` has it: every instance (this process's delivery one
    too) seeds the connector registry they share from its config file, and an instance whose running
    connector differs from the registry's rebuilds it (its registry watch, every 3 s) -- a connector
    of its own made the delivery process's seed restart the ingest connector in the middle of the
    burst, and the messages published meanwhile were lost to it. In a shared subscription the
    instance name makes each instance's MQTT client id its own (``Settings.instance_id``)."""
    instance = copy.deepcopy(config)
    instance["instance_id"] = f"ingest-{i}"
    instance["api"] = {"port": free_port()}
    instance["logging"] = {"level": "WARNING"}
    return instance


@contextlib.asynccontextmanager
async def ingest_instances(config: dict[str, Any], tmp: Path, tag: str, count: int) -> AsyncIterator[list[int]]:
    """``count`` gateway processes running only their connectors (`sgw run --role ingest`), each its own
    MQTT client in one shared subscription; yields their pids once each connector is up."""
    children: list[asyncio.subprocess.Process] = []
    ports = []
    try:
        for i in range(count):
            instance = ingest_instance(config, i)
            path = tmp / f"ingest-{i}.yaml"
            path.write_text(json.dumps(instance), encoding="utf-8")
            ports.append(instance["api"]["port"])
            children.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "run", "--config", str(path), "--role", "ingest", cwd=ROOT))
        async with httpx.AsyncClient(timeout=2) as client:
            for api_port in ports:
                await _connector_up(client, api_port)
        await asyncio.sleep(0.5)  # the SUBACKs
        yield [child.pid for child in children]
    finally:
        for child in children:
            if child.returncode is None:
                child.terminate()
        for child in children:
            await child.wait()


async def _connector_up(client: httpx.AsyncClient, api_port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            text = (await client.get(f"http://127.0.0.1:{api_port}/metrics")).text
        except httpx.HTTPError:
            text = ""
        if 'sgw_connector_up{connector="iot-mqtt"} 1.0' in text:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the ingest instance on port {api_port} did not connect its MQTT connector")


def children_cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) the given processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


async def _whole_gateway(config: dict[str, Any], tmp: Path, port: int, prefix: str,
                         ingest_pids: Sequence[int] = (), *, burst_messages: int) -> dict[str, Any]:
    path = tmp / "gateway.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    runtime = Runtime(load_settings(path, environ={}))
    tune_for_throughput()  # as `sgw run` does
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
    outbox = "redis streams" if config["stores"].get("redis_url") else "sqlite"
    data_centre = "postgresql" if "postgresql" in config["adapters"][0]["options"]["url"] else "sqlite"
    writes = Writes()
    await runtime.start()
    try:
        if not ingest_pids:
            connector = runtime.assembly.connectors["iot-mqtt"]
            writes.wrap(connector)
            await wait_connected(connector)
        burst, steady = await phases(port, prefix, delivered, ingest_pids, burst_messages=burst_messages)
    finally:
        await runtime.stop()
    return {"messages_per_s": burst["messages_per_s"], "p99_ms": steady["p99_ms"],
            "lost": burst["lost"] + steady["lost"], "max_rate": burst, "steady_2000": steady,
            "connector_writes": writes.summary(),
            "path": f"mqtt -> connector -> ingest + outbox ({outbox}) -> delivery -> data centre ({data_centre})"}


def message_id(n: int) -> str:
    """The msgId the simulator gives message ``n`` (tests/peers/mqtt_devices.py)."""
    return f"m{n}"


async def connector_only(port: int, burst_messages: int = MAX_RATE_COUNT) -> dict[str, Any]:
    """The connector with a publish that returns at once: its own and the broker's ceiling."""
    tag = uuid.uuid4().hex[:8]
    prefix = f"c{tag}/"
    delivered: dict[str, float] = {}

    async def publish(envelope: Envelope) -> PublishReceipt:
        await asyncio.sleep(0)
        payloads = envelope.payload if envelope.records_inline else [envelope.payload]
        now = time.time()
        for payload in payloads:  # keyed by the message id: no per-message work of the bench's own
            delivered[payload["msgId"]] = now
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=len(payloads), rejected=0, duplicate=0)

    connector = MqttConnector("iot-mqtt", MqttOptions.model_validate(options(prefix, tag, port)), ConnectorContext())
    writes = Writes()
    writes.wrap(connector)
    run = asyncio.create_task(connector.run(publish))
    try:
        await wait_connected(connector)
        burst, steady = await phases(port, prefix, delivered, key=message_id, burst_messages=burst_messages)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    return {"messages_per_s": burst["messages_per_s"], "p99_ms": steady["p99_ms"],
            "lost": burst["lost"] + steady["lost"], "max_rate": burst, "steady_2000": steady,
            "connector_writes": writes.summary(), "path": "mqtt -> connector -> publish returning at once (no store)"}


async def main(argv: Sequence[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="use this broker instead of a private Mosquitto")
    parser.add_argument("--connector-only", action="store_true", help="no store: the connector's own ceiling")
    parser.add_argument("--redis-outbox", action="store_true", help=f"the outbox on Redis Streams ({REDIS_URL})")
    parser.add_argument("--pg-data-centre", action="store_true", help=f"the data-centre tables in {PG_URL}")
    parser.add_argument("--pg-store", action="store_true", help=(
        f"the gateway's own store (records, journeys, rejections; the outbox unless --redis-outbox) in {PG_URL}"))
    parser.add_argument("--ingest-processes", type=int, default=0, help=(
        "run the connector and ingest in this many `sgw run --role ingest` processes (a shared subscription "
        "when more than one), delivery in this one; 0: the whole gateway in this process"))
    parser.add_argument("--burst", type=int, default=MAX_RATE_COUNT, help=(
        "messages of the max-rate phase (default %(default)s; e.g. 120000 holds the rate for over 20 s)"))
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="sgw-bench-mqtt-"))

    async def measure(port: int) -> dict[str, Any]:
        run: Callable[[], Awaitable[dict[str, Any]]] = (
            (lambda: connector_only(port, args.burst)) if args.connector_only
            else (lambda: whole_gateway(tmp, port, args.redis_outbox, args.pg_data_centre, args.ingest_processes,
                                        args.burst, args.pg_store)))
        return {**await run(), "broker_port": port}

    if args.port:
        return await measure(args.port)
    with sim.private_mosquitto(tmp, free_port(), max_inflight=BROKER_INFLIGHT) as port:
        result = await measure(port)
    return {**result, "broker": f"private mosquitto, max_inflight_messages {BROKER_INFLIGHT}"}


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(main(sys.argv[1:]))).decode())
