"""MQTT over the real Mosquitto into the data-centre tables: telemetry, HJ 212, status and LWT,
video events with the label filter and the suppression window, bad packets."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.mqtt.connector import MqttConnector
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
        finally:
            device.close()
        await wait_for(lambda: connector.counters.get("messages", 0) >= 5)
        await wait_for(lambda: runtime.store.totals()["accepted"] >= 2)
        await runtime.drain()
        assert connector.counters["rejected_CRC"] == 1
        assert connector.counters["rejected_IOT_REGION_MISMATCH"] == 1
        assert {r["code"] for r in connector.recent_rejections} == {"CRC", "IOT_REGION_MISMATCH"}
    rows = dc_rows(tmp_path, "ex_iot_reading", "device_id, command_code")
    assert sorted(rows) == [("YY3301060000771", "2051"), ("ZY330111000002FQ0001", "2051")]
    # the 停用 device's reading is in the rejections ledger, not in the data centre
    assert runtime.store.rejections.count(status="open") == 1


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
