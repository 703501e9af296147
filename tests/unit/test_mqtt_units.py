"""MQTT connector parts without a broker: topic templates, device registry and state, the video
label filter and its durable suppression window, the paho-to-asyncio inbox, the handling of one
batch, and what the connector reports through its telemetry."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import ConnectorContext, MemoryState, PublishReceipt
from connectors.codecs import decode
from connectors.mqtt.bridge import Inbox, Incoming
from connectors.mqtt.config import MqttOptions, TopicRoute, compile_route
from connectors.mqtt.connector import MqttConnector
from connectors.mqtt.devices import MAX_UNREGISTERED, DeviceBook, load_registry
from connectors.mqtt.video import EventFilter, EventWindows, Verdict, gb28181_facts, json_event_facts, load_labels
from gateway.envelope import Envelope, Refusal
from gateway.errors import PayloadError, StoreUnavailable
from tests.conftest import ROOT, SAMPLES
from tests.peers.mqtt_devices import status_json, telemetry_stream, video_event

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


class RecordingTelemetry:
    """What the connector reports, as the runtime's telemetry would receive it."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.gauges: dict[tuple[str, str | None], float] = {}
        self.states: list[tuple[str, str | None]] = []
        self.errors: list[str] = []

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def gauge(self, name: str, value: float, key: str | None = None) -> None:
        self.gauges[(name, key)] = value

    def state(self, state: str, detail: str | None = None) -> None:
        self.states.append((state, detail))

    def error(self, message: str) -> None:
        self.errors.append(message)


def connector(state: MemoryState, telemetry: RecordingTelemetry | None = None, **options: Any) -> MqttConnector:
    config = MqttOptions(client_id="unit", topics=(
        TopicRoute(template="iot/v1/{region}/{device_id}/telemetry", codec="json"),
        TopicRoute(template="hj212/v1/{device_id}/raw", codec="hj212"),
        TopicRoute(template="video/v1/{region}/{camera_id}/events", codec="video_event")),
        device_registry=REF / "iot-device-registry.csv", label_table=REF / "video-label-codes.csv",
        store_retry_s=0.01, **options)
    return MqttConnector("iot", config, ConnectorContext(state=state, telemetry=telemetry or RecordingTelemetry()))


async def test_a_batch_is_acknowledged_only_after_the_write_and_a_bad_packet_after_its_rejection() -> None:
    acked: list[int] = []
    envelopes: list[Envelope] = []
    failures = [StoreUnavailable("db down")]

    async def publish(envelope: Envelope) -> PublishReceipt:
        assert acked == [], "nothing may be acknowledged before it is written (a bad packet as a rejection)"
        if failures:
            raise failures.pop()
        envelopes.append(envelope)
        if envelope.refused:
            return PublishReceipt(envelope_id=envelope.envelope_id, accepted=0, rejected=1, duplicate=0)
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=2, rejected=0, duplicate=0)

    topic = "iot/v1/330106/YY3301060000771/telemetry"
    body = (SAMPLES / "iot-mqtt" / "telemetry-oil-fume.json").read_bytes()
    batch = [Incoming(topic, body, 1, 1, False, 100.0),
             Incoming(topic, body.replace(b"1.35", b"1.36"), 3, 1, False, 100.1),
             Incoming("hj212/v1/YR330111000001WS0001/raw", (SAMPLES / "iot-mqtt" / "hj212-bad-crc.txt").read_bytes(),
                      2, 1, False, 100.2)]
    telemetry = RecordingTelemetry()
    c = connector(MemoryState(), telemetry)
    await c.handle(batch, publish, lambda messages: acked.extend(m.mid for m in messages))
    assert acked == [2, 1, 3]
    assert c.counters["rejected_CRC"] == 1 and c.counters["store_unavailable"] == 1
    assert telemetry.counts == c.counters
    assert telemetry.counts["messages"] == 3 and telemetry.counts["acks"] == 3
    assert telemetry.errors == ["store unavailable: StoreUnavailable"]
    refusal, envelope = envelopes
    ((refused,), payload) = refusal.refused, refusal.payload
    assert refused.code == "CRC" and payload is None and refusal.meta["variant"] == "hj212"
    assert isinstance(refused.raw, bytes) and b"PW=***;" in refused.raw and b"PW=123456" not in refused.raw
    assert refused.location == "topic hj212/v1/YR330111000001WS0001/raw"
    assert envelope.records_inline and len(envelope.payload) == 2
    assert envelope.meta["topic"] == topic and envelope.meta["region"] == "330106"
    assert envelope.meta["variant"] == "telemetry-json" and envelope.meta["location"] == f"topic {topic}"
    assert "admin_division_code" not in envelope.meta  # the topic segment never overrides the registry


async def test_a_batchs_refused_messages_are_written_together_then_acknowledged() -> None:
    # A device fleet sending garbage costs a ledger row a message, not a transaction each.
    acked: list[int] = []
    envelopes: list[Envelope] = []

    async def publish(envelope: Envelope) -> PublishReceipt:
        assert acked == []
        envelopes.append(envelope)
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=0, rejected=len(envelope.refused),
                              duplicate=0)

    topic = "iot/v1/330106/YY3301060000771/telemetry"
    batch = [Incoming(topic, b'{"deviceId": ', mid, 1, False, 100.0 + mid) for mid in range(1, 6)]
    c = connector(MemoryState())
    await c.handle(batch, publish, lambda messages: acked.extend(m.mid for m in messages))
    (envelope,) = envelopes
    expected = ("MALFORMED", b'{"deviceId": ', f"topic {topic} line 1, column 14")  # where in it
    assert [(r.code, r.raw, r.location) for r in envelope.refused] == [expected] * 5
    assert sorted(acked) == [1, 2, 3, 4, 5] and c.counters["records_rejected"] == 5


async def test_the_inbox_hands_a_burst_from_another_thread_over_in_batches() -> None:
    loop = asyncio.get_running_loop()
    inbox = Inbox(loop)
    wakeups = 0
    real_wake = inbox._wake

    def counting_wake() -> None:
        nonlocal wakeups
        wakeups += 1
        real_wake()

    inbox._wake = counting_wake  # type: ignore[method-assign]
    burst = [Incoming("t", b"x", mid, 1, False, 0.0) for mid in range(1, 1001)]
    def paho_thread() -> None:
        for item in burst:
            inbox.put(item)

    thread = threading.Thread(target=paho_thread)
    thread.start()
    await asyncio.to_thread(thread.join)
    got: list[Incoming] = []
    while len(got) < len(burst):
        batch = await inbox.batch(300, 0.5)
        assert 0 < len(batch) <= 300
        got.extend(batch)
    assert [m.mid for m in got] == list(range(1, 1001)) and len(inbox) == 0
    assert wakeups < 20, "one loop wake-up per burst, not one per message"


async def test_a_batch_waits_at_most_its_wait_for_more_messages() -> None:
    inbox = Inbox(asyncio.get_running_loop())
    inbox.put(Incoming("t", b"x", 1, 1, False, 0.0))
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert [m.mid for m in await inbox.batch(10, 0.05)] == [1]
    assert 0.04 <= loop.time() - began < 1.0


def video_message(event: bytes, mid: int) -> Incoming:
    return Incoming("video/v1/330106/33010600001320000007/events", event, mid, 1, False, 100.0)


async def test_a_rejected_event_does_not_suppress_its_corrected_repeat() -> None:
    # E1 is rejected by ingest (its department fixes it): E2, the same incident a minute later, is
    # not a repeat of a record the gateway holds, so it is published; E3 then is E2's repeat.
    state = MemoryState()
    published: list[str] = []

    async def publish(envelope: Envelope) -> PublishReceipt:
        published.append(envelope.payload["eventId"])
        rejected = envelope.payload["eventId"] == "E1"
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=0 if rejected else 1,
                              rejected=1 if rejected else 0, duplicate=0)

    camera, start = "33010600001320000007", datetime.fromisoformat("2025-06-10T10:30:00+08:00")
    c = connector(state, duplicate_window_s=600)
    await c.windows.load()
    events = [video_event(camera, "no_chef_hat", 0.9, start + timedelta(minutes=n), event_id=f"E{n + 1}")
              for n in range(3)]
    await c.handle([video_message(e, n) for n, e in enumerate(events)], publish, lambda messages: None)
    assert published == ["E1", "E2"] and c.counters["events_dropped_suppressed_duplicate"] == 1
    # the durable copy holds E2's window, not E1's
    assert [entry[3] for entry in await state.load(EventWindows.KEY)] == ["E2"]


async def test_the_suppression_window_holds_across_a_restart() -> None:
    state = MemoryState()
    published: list[str] = []

    async def publish(envelope: Envelope) -> PublishReceipt:
        published.append(envelope.payload["eventId"])
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=1, rejected=0, duplicate=0)

    camera, start = "33010600001320000007", datetime.fromisoformat("2025-06-10T10:30:00+08:00")
    first = connector(state, duplicate_window_s=600)
    await first.windows.load()
    await first.handle([video_message(video_event(camera, "no_chef_hat", 0.9, start, event_id="E1"), 1)], publish,
                       lambda messages: None)
    # the gateway restarts: a new connector on the same durable state
    second = connector(state, duplicate_window_s=600)
    await second.windows.load()
    events = [video_event(camera, "no_chef_hat", 0.9, start, event_id="E1"),  # redelivery: passes
              video_event(camera, "no_chef_hat", 0.9, start + timedelta(minutes=9), event_id="E2"),  # suppressed
              video_event(camera, "no_chef_hat", 0.9, start + timedelta(minutes=10), event_id="E3")]  # new window
    acked: list[int] = []
    await second.handle([video_message(e, n) for n, e in enumerate(events, start=2)], publish,
                        lambda messages: acked.extend(m.mid for m in messages))
    assert published == ["E1", "E1", "E3"]
    assert sorted(acked) == [2, 3, 4] and second.counters["events_dropped_suppressed_duplicate"] == 1
    # without the durable copy the repeat would have passed
    amnesiac = connector(MemoryState(), duplicate_window_s=600)
    await amnesiac.handle([video_message(events[1], 9)], publish, lambda messages: None)
    assert published[-1] == "E2"


def test_the_windows_are_bounded_and_closed_ones_are_dropped() -> None:
    events = EventFilter(load_labels(REF / "video-label-codes.csv"), window_s=60, max_windows=3)

    def open_window(camera: str, at: float) -> None:
        events.published(Verdict(True, "supervision", "no_chef_hat", camera, f"E-{camera}-{at}", at))

    for n, camera in enumerate("abcd"):
        open_window(camera, 1000.0 + n)
    assert [w[0] for w in events.export()] == ["b", "c", "d"]  # the oldest went past max_windows
    open_window("e", 1062.5)
    assert [w[0] for w in events.export()] == ["d", "e"]  # b and c closed (60 s), dropped
    restored = EventFilter({}, window_s=60, max_windows=1)
    restored.restore([*events.export(), ["bad"], "junk"])
    assert restored.export() == [["e", "no_chef_hat", 1062.5, "E-e-1062.5"]]


def test_device_levels_are_gauged_per_status_and_region_and_silence_is_counted() -> None:
    now = [1000.0]
    telemetry = RecordingTelemetry()
    c = connector(MemoryState(), telemetry)
    c.devices = DeviceBook(load_registry(REF / "iot-device-registry.csv"), expected_interval_s=60,
                           silence_factor=2, clock=lambda: now[0])
    c.devices.seen("YY3301060000771")
    c.devices.seen("NOT-REGISTERED-1")
    c.report_devices()
    assert telemetry.gauges[("devices_online", "330106")] == 1
    assert telemetry.gauges[("devices_online", "unregistered")] == 1
    assert telemetry.gauges[("devices_never_seen", "330111")] == 3
    assert "devices_went_silent" not in telemetry.counts
    now[0] += 121
    c.devices.seen("NOT-REGISTERED-1")
    c.report_devices()
    assert telemetry.gauges[("devices_silent", "330106")] >= 1
    assert telemetry.gauges[("devices_online", "330106")] == 0  # the emptied level is set back to 0
    assert telemetry.gauges[("devices_silent", "330111")] == 3
    assert telemetry.gauges[("devices_never_seen", "330111")] == 0
    assert telemetry.gauges[("devices_online", "unregistered")] == 1  # not in the registry: never silent
    assert telemetry.counts["devices_went_silent"] == c.counters["devices_went_silent"] == 5
    assert c.device_status()["YY3301060000771"]["status"] == "silent"
    assert all(key is not None and "YY" not in key for _name, key in telemetry.gauges)  # never a device id


@pytest.mark.parametrize("per_topic", [False, True])
async def test_devices_on_their_own_topics_share_an_envelope_unless_asked_otherwise(per_topic: bool) -> None:
    envelopes: list[Envelope] = []

    async def publish(envelope: Envelope) -> PublishReceipt:
        envelopes.append(envelope)
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=1, rejected=0, duplicate=0)

    batch = [Incoming(topic, payload, n, 1, False, 100.0)
             for n, (topic, payload) in enumerate(telemetry_stream("", 4), start=1)]
    c = connector(MemoryState(), envelope_per_topic=per_topic)
    acked: list[int] = []
    await c.handle(batch, publish, lambda messages: acked.extend(m.mid for m in messages))
    assert sorted(acked) == [1, 2, 3, 4]
    if per_topic:
        assert [e.meta["device_id"] for e in envelopes] == ["YY3301060000771", "YC3301220000312"]
        assert all(len(e.payload) == 2 and e.meta["location"] == f"topic {e.meta['topic']}" for e in envelopes)
    else:
        (envelope,) = envelopes
        assert [p["msgId"] for p in envelope.payload] == ["m0", "m1", "m2", "m3"]
        # the two devices differ in region and id: only what they share is envelope metadata
        assert "device_id" not in envelope.meta and "region" not in envelope.meta and "topic" not in envelope.meta
        assert envelope.meta["location"] == "topic iot/v1/+/+/telemetry"
        assert envelope.meta["variant"] == "telemetry-json"


def test_unregistered_devices_cannot_grow_the_state_without_bound() -> None:
    book = DeviceBook(load_registry(REF / "iot-device-registry.csv"), expected_interval_s=60)
    for n in range(MAX_UNREGISTERED + 50):
        book.seen(f"FAKE{n}")  # ids from payloads: anything a client sends
    book.seen("YY3301060000771")  # registered devices are always tracked
    counts = book.counts_by_region()
    assert counts[("online", "unregistered")] == MAX_UNREGISTERED
    assert counts[("online", "330106")] == 1


async def test_a_retained_status_replayed_after_a_device_s_telemetry_in_one_batch_is_older_than_it() -> None:
    async def publish(envelope: Envelope) -> PublishReceipt:
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=1, rejected=0, duplicate=0)

    config = MqttOptions(client_id="unit", device_registry=REF / "iot-device-registry.csv", topics=(
        TopicRoute(template="iot/v1/{region}/{device_id}/telemetry", codec="json"),
        TopicRoute(template="iot/v1/{region}/{device_id}/status", codec="status")))
    c = MqttConnector("iot", config, ConnectorContext(state=MemoryState(), telemetry=RecordingTelemetry()))
    device = "YY3301060000771"
    (topic, body), = telemetry_stream("", 1)
    will = status_json(device, "offline", "lwt", ts_ms=1_000)  # the Last Will the broker kept
    batch = [Incoming(topic, body, 1, 1, False, 100.0),
             Incoming(f"iot/v1/330106/{device}/status", will, 2, 1, True, 100.0)]
    await c.handle(batch, publish, lambda messages: None)
    state = c.device_status()[device]
    assert (state["status"], state["reason"]) == ("online", "telemetry")


@pytest.mark.parametrize("body", [
    b'\xef\xbb\xbf{"deviceId": "YY3301060000771", "v": 1}',  # a BOM
    b'{"deviceId": "YY3301060000771", "v": 1',  # cut short
    b'[{"deviceId": "YY3301060000771"}]',  # not one object
    b'{"v": "\xff"}',  # not UTF-8
    b"",
    b'{"deviceId": "YY3301060000771", "v": 1e400}',
])
async def test_json_payloads_are_read_as_the_codec_reads_them(body: bytes) -> None:
    envelopes: list[Envelope] = []

    async def publish(envelope: Envelope) -> PublishReceipt:
        envelopes.append(envelope)
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=1, rejected=0, duplicate=0)

    c = connector(MemoryState())
    await c.handle([Incoming("iot/v1/330106/YY3301060000771/telemetry", body, 1, 1, False, 100.0)], publish,
                   lambda messages: None)
    try:
        tree = decode("json", body)
    except PayloadError as exc:
        assert c.counters == {**c.counters, f"rejected_{exc.code}": 1}
        assert c.recent_rejections[-1]["message"] == str(exc)
        # kept as a rejection, with the bytes as they came
        topic = "topic iot/v1/330106/YY3301060000771/telemetry"
        assert [(e.refused, e.payload) for e in envelopes] == [
            ((Refusal(exc.code, str(exc), raw=body, location=topic + ("" if exc.location is None
                                                                       else f" {exc.location}")),), None)]
        return
    if not isinstance(tree, dict):
        assert c.counters["rejected_MALFORMED"] == 1
        assert [[(r.code, r.raw) for r in e.refused] for e in envelopes] == [[("MALFORMED", body)]]
    else:
        assert [e.payload for e in envelopes] == [tree]
