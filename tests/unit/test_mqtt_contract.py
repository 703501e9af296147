"""The MQTT connector against the iot-mqtt and video-ai contracts, for messages the samples do not
show: whatever a message holds, it is settled (written, dropped or refused) and the next one is read."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from connectors.base import ConnectorContext, MemoryState, PublishReceipt
from connectors.mqtt.bridge import Incoming
from connectors.mqtt.config import MqttOptions, TopicRoute
from connectors.mqtt.connector import MqttConnector
from gateway.envelope import Envelope
from tests.conftest import ROOT, SAMPLES

REF = ROOT / "config" / "reference"
TOPIC = "video/v1/330106/33010600001320000012/events"


def video_connector() -> MqttConnector:
    config = MqttOptions(client_id="unit", label_table=REF / "video-label-codes.csv",
                         camera_registry=REF / "video-camera-registry.csv",
                         topics=(TopicRoute(template="video/v1/{region}/{camera_id}/events", codec="video_event"),))
    return MqttConnector("video", config, ConnectorContext(state=MemoryState()))


@pytest.mark.parametrize("confidence", ["NaN", "sNaN", "-NaN"])
async def test_an_event_whose_confidence_is_no_number_is_settled_and_the_batch_goes_on(confidence: str) -> None:
    published: list[Any] = []

    async def publish(envelope: Envelope) -> PublishReceipt:
        published.append(envelope.payload)
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=1, rejected=0, duplicate=0)

    rodent = orjson.loads((SAMPLES / "video-ai" / "event-rodent.json").read_bytes())
    bad = {**rodent, "confidence": confidence}  # JSON has no NaN literal: a platform writes it as text
    good = {**rodent, "eventId": "AI20250611021744000099", "label": "smoking", "confidence": 0.9}
    acked: list[int] = []
    c = video_connector()
    await c.handle([Incoming(TOPIC, orjson.dumps(bad), 1, 1, False, 100.0),
                    Incoming(TOPIC, orjson.dumps(good), 2, 1, False, 100.1)],
                   publish, lambda messages: acked.extend(m.mid for m in messages))
    assert acked == [1, 2] and c.counters["messages"] == 2
    # no number, so no confidence to compare: the mapping refuses it into the rejections ledger
    assert published == [bad, good]


async def test_a_message_our_code_fails_on_is_refused_and_the_batch_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    # Whatever a bug of ours raises on one message, it is refused (logged in full) and acknowledged:
    # raised, it stopped the connector, and the broker redelivered it to the same end.
    published: list[Any] = []

    async def publish(envelope: Envelope) -> PublishReceipt:
        published.append(envelope.payload)
        return PublishReceipt(envelope_id=envelope.envelope_id, accepted=1, rejected=0, duplicate=0)

    rodent = orjson.loads((SAMPLES / "video-ai" / "event-rodent.json").read_bytes())
    poison = {**rodent, "eventId": "AI-POISON"}
    good = {**rodent, "eventId": "AI20250611021744000099", "label": "smoking", "confidence": 0.9}
    c = video_connector()
    judge = c.events.judge

    def failing(facts: Any, at: float) -> Any:
        if facts[2] == "AI-POISON":  # (label, camera, event id, ...)
            raise ZeroDivisionError("a bug")
        return judge(facts, at)

    monkeypatch.setattr(c.events, "judge", failing)
    acked: list[int] = []
    await c.handle([Incoming(TOPIC, orjson.dumps(poison), 1, 1, False, 100.0),
                    Incoming(TOPIC, orjson.dumps(good), 2, 1, False, 100.1)],
                   publish, lambda messages: acked.extend(m.mid for m in messages))
    assert sorted(acked) == [1, 2] and c.counters["messages"] == 2
    assert c.counters["rejected_UNPROCESSABLE"] == 1 and published == [good, None]  # None: the refusal, kept
    assert c.recent_rejections[-1]["code"] == "UNPROCESSABLE"
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
