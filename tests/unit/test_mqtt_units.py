"""MQTT connector parts without a broker: topic templates, device registry and state, the video
label filter and suppression window, stable read times, and the handling of one batch."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import ConnectorContext, MemoryState, PublishReceipt
from connectors.codecs import decode
from connectors.mqtt.bridge import Incoming
from connectors.mqtt.config import MqttOptions, TopicRoute, compile_route
from connectors.mqtt.connector import MqttConnector
from connectors.mqtt.devices import DeviceBook, load_registry
from connectors.mqtt.readtimes import ReadTimes
from connectors.mqtt.video import EventFilter, gb28181_facts, json_event_facts, load_labels
from gateway.envelope import Envelope
from gateway.errors import StoreUnavailable
from tests.conftest import ROOT, SAMPLES

REF = ROOT / "config" / "reference"


def test_a_template_becomes_a_subscription_and_its_parts_metadata() -> None:
    route = compile_route(TopicRoute(template="iot/v1/{region}/{device_id}/telemetry", codec="json"), "sgw")
    assert route.subscription == "$share/sgw/iot/v1/+/+/telemetry"
    assert route.match("iot/v1/330106/YY3301060000771/telemetry") == {"region": "330106",
                                                                       "device_id": "YY3301060000771"}
    assert route.match("iot/v1/330106/YY3301060000771/status") is None
    assert route.route.effective_variant == "telemetry-json"


@pytest.mark.parametrize("template", ["iot/+/x", "iot/{admin_division_code}/x", "a/{x}/{x}", "a/b{x}/c"])
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(ValidationError):
        TopicRoute(template=template, codec="json")


def test_the_registry_binds_devices_and_the_region_check_finds_mismatches() -> None:
    devices = load_registry(REF / "iot-device-registry.csv")
    assert devices["YY3301060000771"].enterprise_uscc == "91330106MA2H7K3P2R"
    assert devices["YC3301220000298"].active is False
    book = DeviceBook(devices, expected_interval_s=60)
    assert book.region_problem("YY3301060000771", "330106") is None
    assert book.region_problem("YY3301060000771", "330122") == "IOT_REGION_MISMATCH"
    assert book.region_problem("UNKNOWN", "330122") is None  # the mapping rejects unknown devices


def test_status_lwt_and_silence() -> None:
    now = [1000.0]
    book = DeviceBook(load_registry(REF / "iot-device-registry.csv"), expected_interval_s=60,
                      intervals_s={"YC3301220000312": 10}, silence_factor=2, clock=lambda: now[0])
    online = decode("json", (SAMPLES / "iot-mqtt" / "status-online.json").read_bytes())
    book.status_message("YY3301060000771", online, retained=False)
    now[0] += 5
    book.status_message("YY3301060000771", decode("json", (SAMPLES / "iot-mqtt" / "status-offline-lwt.json")
                                                  .read_bytes()), retained=False)
    state = book.snapshot()["YY3301060000771"]
    assert (state["status"], state["reason"], state["since"]) == ("offline", "lwt", 1005.0)  # broker time
    book.status_message("YY3301060000771", online, retained=True)  # an old retained replay loses
    assert book.snapshot()["YY3301060000771"]["status"] == "offline"
    now[0] += 16
    assert book.check_silence() == ["YC3301220000312"]  # 2 x 10 s passed; others have 120 s
    book.seen("YC3301220000312")
    assert book.snapshot()["YC3301220000312"]["status"] == "online"
    assert book.snapshot()["YC3301220000298"]["status"] == "never_seen"


def test_the_label_table_and_the_window_decide() -> None:
    events = EventFilter(load_labels(REF / "video-label-codes.csv"), window_s=600)

    def judge(name: str, received: float = 0.0) -> Any:
        payload = decode("json", (SAMPLES / "video-ai" / name).read_bytes())
        return events.judge(json_event_facts(payload), received)

    assert judge("event-low-confidence.json").reason == "low_confidence"
    assert judge("event-not-supervision.json").reason == "not_supervision"
    first = judge("event-no-chef-hat.json")
    assert first.keep
    events.published(first)
    assert judge("event-no-chef-hat.json").keep  # the same event id again: ingest dedupes it
    again = events.judge(("no_chef_hat", first.camera_id, "AI-other", first.occurred_at + 599, Decimal("0.9")), 0)
    assert again.reason == "suppressed_duplicate"
    later = events.judge(("no_chef_hat", first.camera_id, "AI-later", first.occurred_at + 600, Decimal("0.9")), 0)
    assert later.keep


def test_gb28181_labels() -> None:
    helmet = decode("gb28181", (SAMPLES / "video-ai" / "alarm-notify-no-helmet.xml").read_bytes())
    loss = decode("gb28181", (SAMPLES / "video-ai" / "alarm-notify-video-loss.xml").read_bytes())
    assert gb28181_facts(helmet)[0] == "no_helmet"
    assert gb28181_facts(loss)[0] == "video_loss"
    assert gb28181_facts({**loss, "AlarmMethod": "5", "Info": {"AlarmType": "6"}})[0] == "gb28181:5/6"
    assert gb28181_facts(helmet)[3] == datetime.fromisoformat("2025-06-12T14:05:33+08:00").timestamp()


async def test_read_times_survive_a_restart_through_the_durable_state() -> None:
    state = MemoryState()
    first = ReadTimes(state)
    await first.note(["a", "b"], 12.5)
    second = ReadTimes(state)
    await second.load()
    assert second.first_read("a") == 12.5 and second.first_read("zz") is None


def connector(state: MemoryState) -> MqttConnector:
    options = MqttOptions(client_id="unit", topics=(
        TopicRoute(template="iot/v1/{region}/{device_id}/telemetry", codec="json"),
        TopicRoute(template="hj212/v1/{device_id}/raw", codec="hj212")),
        device_registry=REF / "iot-device-registry.csv", store_retry_s=0.01)
    return MqttConnector("iot", options, ConnectorContext(state=state))


async def test_a_batch_is_acknowledged_only_after_the_write_and_bad_packets_at_once() -> None:
    acked: list[int] = []
    envelopes: list[Envelope] = []
    failures = [StoreUnavailable("db down")]

    async def publish(envelope: Envelope) -> PublishReceipt:
        assert acked == [2], "nothing but the bad packet may be acknowledged before the write"
        if failures:
            raise failures.pop()
        envelopes.append(envelope)
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=2, rejected=0, duplicate=0)

    topic = "iot/v1/330106/YY3301060000771/telemetry"
    body = (SAMPLES / "iot-mqtt" / "telemetry-oil-fume.json").read_bytes()
    batch = [Incoming(topic, body, 1, 1, False, 100.0),
             Incoming(topic, body.replace(b"1.35", b"1.36"), 3, 1, False, 100.1),
             Incoming("hj212/v1/YR330111000001WS0001/raw", (SAMPLES / "iot-mqtt" / "hj212-bad-crc.txt").read_bytes(),
                      2, 1, False, 100.2)]
    c = connector(MemoryState())
    await c.handle(batch, publish, lambda m: acked.append(m.mid))
    assert acked == [2, 1, 3]
    assert c.counters["rejected_CRC"] == 1 and c.counters["store_unavailable"] == 1
    (envelope,) = envelopes
    assert envelope.records_inline and len(envelope.payload) == 2
    assert envelope.meta["topic"] == topic and envelope.meta["region"] == "330106"
    assert envelope.meta["variant"] == "telemetry-json" and envelope.meta["location"] == f"topic {topic}"
    assert "admin_division_code" not in envelope.meta  # the topic segment never overrides the registry
