"""MQTT over the real Mosquitto into the data-centre tables: telemetry, HJ 212, status and LWT,
video events with the label filter and the suppression window, bad packets; and the connector on
its own against the broker: backpressure from a slow store (Receive Maximum), PUBACKs that reach
the persistent session, and instances splitting a shared subscription."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.base import ConnectorContext, PublishReceipt
from connectors.mqtt.config import MqttOptions
from connectors.mqtt.connector import MqttConnector
from gateway.envelope import Envelope
from gateway.runtime import Runtime
from gateway.settings import load_settings
from tests.conftest import MAPPINGS, ROOT, SAMPLES
from tests.peers import mqtt_devices as sim

pytestmark = pytest.mark.integration

REFERENCE = ROOT / "config" / "reference"


def mqtt_options(prefix: str, client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "topics": [
            {"template": prefix + "iot/v1/{region}/{device_id}/telemetry", "codec": "json"},
            {"template": prefix + "iot/v1/{region}/{device_id}/status", "codec": "status"},
            {"template": prefix + "hj212/v1/{device_id}/raw", "codec": "hj212"},
            {"template": prefix + "video/v1/{region}/{camera_id}/events", "codec": "video_event"},
            {"template": prefix + "video/v1/{region}/{camera_id}/gb28181", "codec": "gb28181"},
        ],
        "device_registry": str(REFERENCE / "iot-device-registry.csv"),
        "camera_registry": str(REFERENCE / "video-camera-registry.csv"),
        "label_table": str(REFERENCE / "video-label-codes.csv"),
        "batch_max_wait_s": 0.002,
        **extra,
    }


def gateway_config(tmp_path: Path, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "mappings_dir": str(MAPPINGS),
        "stores": {"database_url": f"sqlite:///{tmp_path / 'gateway.sqlite'}"},
        "connectors": [{
            "id": "iot-mqtt", "type": "mqtt", "meta": {"provider_uscc": "113301000025441678"},
            "mappings": {"telemetry-json": "iot-mqtt.telemetry-json", "hj212": "iot-mqtt.hj212",
                         "video_event": "video-ai.event-json", "gb28181": "video-ai.alarm-gb28181"},
            "options": options,
        }],
        "adapters": [{"id": "data-centre", "type": "data_centre", "max_wait_s": 0.05,
                      "options": {"url": f"sqlite:///{tmp_path / 'dc.sqlite'}", "create_tables": True}}],
        "routing": [{"kinds": ["*"], "adapters": ["data-centre"]}],
    }


def make_runtime(tmp_path: Path, options: dict[str, Any]) -> Runtime:
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(gateway_config(tmp_path, options)), encoding="utf-8")
    return Runtime(load_settings(path, environ={}))


@asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[MqttConnector]:
    await runtime.start()
    connector = runtime.assembly.connectors["iot-mqtt"]
    assert isinstance(connector, MqttConnector)
    try:
        await wait_for(lambda: connector.bridge is not None and connector.bridge.connected.is_set())
        await asyncio.sleep(0.2)  # the SUBACK: subscriptions are sent on connect
        yield connector
    finally:
        await runtime.stop()


async def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def dc_rows(tmp_path: Path, table: str, columns: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dc.sqlite'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(f"SELECT {columns} FROM {table}")).all()]
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


def unique() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"t{tag}/", f"sgw-test-{tag}"


async def test_telemetry_and_hj212_reach_the_data_centre_and_bad_packets_are_rejected(tmp_path: Path) -> None:
    prefix, client_id = unique()
    runtime = make_runtime(tmp_path, mqtt_options(prefix, client_id, clean_start=True))
    async with running(runtime) as connector:
        device = sim.Publisher(client_id + "-dev")
        try:
            device.publish(prefix + "iot/v1/330106/YY3301060000771/telemetry",
                           (SAMPLES / "iot-mqtt" / "telemetry-oil-fume.json").read_bytes())
            device.publish(prefix + "iot/v1/330122/YC3301220000298/telemetry",
                           (SAMPLES / "iot-mqtt" / "telemetry-decommissioned-device.json").read_bytes())
            for name in ("hj212-2051-minute-fluegas.txt", "hj212-bad-crc.txt"):
                mn = "ZY330111000002FQ0001" if "fluegas" in name else "YR330111000001WS0001"
                device.publish(f"{prefix}hj212/v1/{mn}/raw", (SAMPLES / "iot-mqtt" / name).read_bytes())
            # the oil-fume device's reading on the wrong region's topic
            device.publish(prefix + "iot/v1/330122/YY3301060000771/telemetry",
                           sim.telemetry_json("YY3301060000771", sim.BASE_TS_MS))
            device.publish(prefix + "iot/v1/330106/YY3301060000771/telemetry", b'{"deviceId": "YY33010600')
        finally:
            device.close()
        await wait_for(lambda: connector.counters.get("messages", 0) >= 6)
        await wait_for(lambda: runtime.store.totals()["accepted"] >= 2)
        await runtime.drain()
        assert connector.counters["rejected_CRC"] == 1
        assert connector.counters["rejected_IOT_REGION_MISMATCH"] == 1
        assert {r["code"] for r in connector.recent_rejections} == {"CRC", "IOT_REGION_MISMATCH", "MALFORMED"}
        # nothing is lost: every message ends accepted or in the rejections ledger, with what it was
        assert runtime.store.totals() == {"accepted": 2, "rejected": 4, "duplicate": 0}
    rows = dc_rows(tmp_path, "ex_iot_reading", "device_id, command_code")
    assert sorted(rows) == [("YY3301060000771", "2051"), ("ZY330111000002FQ0001", "2051")]
    # the 停用 device's reading, and the three messages refused before mapping, are in the ledger
    open_rows = runtime.store.rejections.list(status="open", limit=10)
    ledger = {r.errors[0]["code"]: r for r in open_rows}
    assert len(open_rows) == 4 and {"CRC", "IOT_REGION_MISMATCH", "MALFORMED"} < set(ledger)
    crc = ledger["CRC"]
    packet = base64.b64decode(crc.raw_payload["data"])
    assert packet.startswith(b"##0256QN=") and b"PW=***;" in packet and b"123456" not in packet
    assert crc.kind == "iot_reading" and crc.location == f"topic {prefix}hj212/v1/YR330111000001WS0001/raw"
    assert "报文无法受理（CRC）" in crc.errors[0]["message_zh"] and crc.errors[0]["field"] == "$"
    malformed = ledger["MALFORMED"]
    assert base64.b64decode(malformed.raw_payload["data"]) == b'{"deviceId": "YY33010600'
    assert malformed.due_on > datetime.now(UTC).date()


async def test_status_and_last_will_are_device_state_and_silence_is_reported(tmp_path: Path) -> None:
    prefix, client_id = unique()
    options = mqtt_options(prefix, client_id, clean_start=True, expected_interval_s=0.2, silence_factor=1.0,
                           silence_check_s=0.1)
    runtime = make_runtime(tmp_path, options)
    status_topic = prefix + "iot/v1/330106/YY3301060000771/status"
    async with running(runtime) as connector:
        device = sim.Publisher(client_id + "-dev",
                               will=(status_topic, sim.status_json("YY3301060000771", "offline", "lwt")))
        device.publish(status_topic, sim.status_json("YY3301060000771", "online", "connect"), retain=True)
        await wait_for(lambda: connector.device_status()["YY3301060000771"]["status"] == "online")
        assert connector.device_status()["YY3301060000771"]["firmware"] == "2.3.1"
        device.crash()
        await wait_for(lambda: connector.device_status()["YY3301060000771"]["reason"] == "lwt")
        assert connector.device_status()["YY3301060000771"]["status"] == "offline"
        # the dust sensor never reports: silent after its interval, counted for the metrics
        await wait_for(lambda: connector.device_status()["YC3301220000312"]["status"] == "silent")
        assert connector.counters["devices_went_silent"] >= 1
        assert connector.device_status()["YC3301220000298"]["status"] == "never_seen"  # 停用: not watched
        cleaner = sim.Publisher(client_id + "-clean")
        cleaner.publish(status_topic, b"", retain=True)  # clear the retained LWT
        cleaner.close()
    assert runtime.store.totals() == {"accepted": 0, "rejected": 0, "duplicate": 0}


async def test_video_events_pass_the_label_table_and_repeats_are_collapsed(tmp_path: Path) -> None:
    prefix, client_id = unique()
    runtime = make_runtime(tmp_path, mqtt_options(prefix, client_id, clean_start=True))
    camera = "33010600001320000007"
    topic = f"{prefix}video/v1/330106/{camera}/events"
    start = datetime(2025, 6, 10, 2, 30, tzinfo=UTC)
    async with running(runtime) as connector:
        platform = sim.Publisher(client_id + "-vsp")
        try:
            first = sim.video_event(camera, "no_chef_hat", 0.91, start, event_id="AI20250610103000000001")
            platform.publish(topic, first)
            platform.publish(topic, first)  # the platform resends the same event: ingest dedupes
            platform.publish(topic, sim.video_event(camera, "no_chef_hat", 0.95, start + timedelta(minutes=3)))
            platform.publish(topic, sim.video_event(camera, "no_chef_hat", 0.93, start + timedelta(minutes=11)))
            platform.publish(topic, sim.video_event(camera, "no_mask", 0.62, start))
            platform.publish(topic, sim.video_event(camera, "person_present", 0.99, start))
            platform.publish(f"{prefix}video/v1/330122/33012200001320000044/gb28181",
                             (SAMPLES / "video-ai" / "alarm-notify-no-helmet.xml").read_bytes())
            platform.publish(f"{prefix}video/v1/330106/33010600001320000012/gb28181",
                             (SAMPLES / "video-ai" / "alarm-notify-video-loss.xml").read_bytes())
            platform.publish(f"{prefix}video/v1/330106/{camera}/gb28181",
                             sim.gb28181_alarm(camera, "5", "6", start, "入侵"))
        finally:
            platform.close()
        await wait_for(lambda: connector.counters.get("messages", 0) >= 9)
        await runtime.drain()
        assert connector.counters["events_dropped_suppressed_duplicate"] == 1
        assert connector.counters["events_dropped_low_confidence"] == 1
        assert connector.counters["events_dropped_not_supervision"] == 2  # person_present, video_loss
        assert connector.counters["events_dropped_unmapped_label"] == 1  # gb28181:5/6
        assert connector.counters["records_duplicate"] == 1
    rows = dc_rows(tmp_path, "ex_iot_event", "device_id, event_type, occurred_at")
    assert sorted((r[0], r[1]) for r in rows) == [
        ("33010600001320000007", "no_chef_hat"), ("33010600001320000007", "no_chef_hat"),
        ("33012200001320000044", "no_helmet")]


def all_published(infos: list[Any]) -> bool:
    for info in infos:
        info.wait_for_publish(10)
    return all(info.is_published() for info in infos)


async def test_a_slow_store_holds_the_broker_back_and_nothing_is_acknowledged_early(tmp_path: Path) -> None:
    """Receive Maximum 5 (MQTT 5): while the store does not answer, the broker sends no more than 5
    messages (one batch of one in the write, the rest waiting in the inbox); once it answers,
    everything arrives, each acknowledged after its write."""
    prefix, client_id = unique()
    options = MqttOptions.model_validate(mqtt_options(prefix, client_id, clean_start=True, max_inflight=5,
                                                      batch_max_messages=1, batch_max_wait_s=0))
    connector = MqttConnector("iot-mqtt", options, ConnectorContext())
    store_answers = asyncio.Event()
    received: list[int] = []

    async def slow_publish(envelope: Envelope) -> PublishReceipt:
        received.extend(int(p["msgId"][1:]) for p in (envelope.payload if envelope.records_inline
                                                       else [envelope.payload]))
        await store_answers.wait()
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=1, rejected=0, duplicate=0)

    run = asyncio.create_task(connector.run(slow_publish))
    device = sim.Publisher(client_id + "-dev")
    try:
        await wait_for(lambda: connector.bridge is not None and connector.bridge.connected.is_set())
        await asyncio.sleep(0.2)  # the SUBACK
        infos = [info for _, info in
                 ((n, device.publish(t, p, wait=False)) for n, (t, p) in enumerate(sim.telemetry_stream(prefix, 30)))]
        bridge = connector.bridge
        assert bridge is not None
        await wait_for(lambda: len(received) + len(bridge.inbox) >= 5)
        await asyncio.sleep(0.5)  # time for the broker to overstep, if it would
        assert len(received) + len(bridge.inbox) == 5 and connector.counters.get("acks", 0) == 0
        store_answers.set()
        await wait_for(lambda: connector.counters.get("acks", 0) == 30)
        assert sorted(received) == list(range(30))
        assert await asyncio.to_thread(all_published, infos)  # the device got every PUBACK
    finally:
        device.close()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def test_acknowledged_messages_are_not_redelivered_to_the_resumed_session(tmp_path: Path) -> None:
    """The batch's PUBACKs (one write for many) reach the broker: a restart resumes the persistent
    session with nothing to redeliver, and only new messages arrive."""
    prefix, client_id = unique()
    options = MqttOptions.model_validate(mqtt_options(prefix, client_id, session_expiry_s=60))
    received: list[str] = []

    async def publish(envelope: Envelope) -> PublishReceipt:
        payloads = envelope.payload if envelope.records_inline else [envelope.payload]
        received.extend(str(p["msgId"]) for p in payloads)
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=len(payloads), rejected=0, duplicate=0)

    async def session(expected: int) -> MqttConnector:
        connector = MqttConnector("iot-mqtt", options, ConnectorContext())
        run = asyncio.create_task(connector.run(publish))
        try:
            await wait_for(lambda: connector.bridge is not None and connector.bridge.connected.is_set())
            await asyncio.sleep(0.2)  # the SUBACK
            stream = sim.telemetry_stream(prefix, expected, start=len(received))
            await asyncio.to_thread(device.publish_at_rate, list(stream), None)
            await wait_for(lambda: connector.counters.get("acks", 0) >= expected)
            await asyncio.sleep(0.3)  # a redelivery, if the broker had one, would come now
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        return connector

    device = sim.Publisher(client_id + "-dev")
    try:
        first = await session(200)
        assert first.counters["acks"] == 200
        second = await session(1)
        assert second.counters["messages"] == 1, "acknowledged messages came again"
        assert received == [f"m{n}" for n in range(201)]
    finally:
        device.close()


async def test_instances_in_one_share_group_split_the_messages(tmp_path: Path) -> None:
    prefix, client_id = unique()
    received: dict[str, list[str]] = {"a": [], "b": []}

    def publisher_for(name: str) -> Callable[[Envelope], Any]:
        async def publish(envelope: Envelope) -> PublishReceipt:
            payloads = envelope.payload if envelope.records_inline else [envelope.payload]
            received[name].extend(str(p["msgId"]) for p in payloads)
            return PublishReceipt(envelope_id=envelope.envelope_id, accepted=len(payloads), rejected=0, duplicate=0)
        return publish

    # one connector's settings, as instances sharing the registry get them: only the instance differs
    options = MqttOptions.model_validate(mqtt_options(prefix, client_id, clean_start=True,
                                                      share_group=f"sgw{client_id[-6:]}"))
    connectors = {name: MqttConnector("iot-mqtt", options, ConnectorContext(instance=name)) for name in received}
    runs = [asyncio.create_task(c.run(publisher_for(name))) for name, c in connectors.items()]
    device = sim.Publisher(client_id + "-dev")
    try:
        await wait_for(lambda: all(c.bridge is not None and c.bridge.connected.is_set()
                                   for c in connectors.values()))
        await asyncio.sleep(0.3)  # the SUBACKs
        await asyncio.to_thread(device.publish_at_rate, list(sim.telemetry_stream(prefix, 400)), 2000)
        await wait_for(lambda: len(received["a"]) + len(received["b"]) >= 400)
        await asyncio.sleep(0.3)  # a copy to both, if the broker sent one, would come now
    finally:
        device.close()
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
    assert received["a"] and received["b"], "one instance got everything"
    assert sorted(received["a"] + received["b"]) == sorted(f"m{n}" for n in range(400))
