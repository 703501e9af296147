"""Messages the samples do not show, over the real Mosquitto as the video platform sends them:
each is settled (written or refused into the rejections ledger), none stops the connector."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from tests.integration.test_mqtt_ingest import dc_rows, make_runtime, mqtt_options, running, unique, wait_for
from tests.peers import mqtt_devices as sim

pytestmark = pytest.mark.integration


async def test_an_event_with_a_nan_confidence_is_settled_and_the_next_one_still_arrives(tmp_path: Path) -> None:
    prefix, client_id = unique()
    runtime = make_runtime(tmp_path, mqtt_options(prefix, client_id, clean_start=True))
    camera = "33010600001320000007"
    topic = f"{prefix}video/v1/330106/{camera}/events"
    start = datetime(2025, 6, 10, 2, 30, tzinfo=UTC)
    bad = orjson.loads(sim.video_event(camera, "rodent", 0.9, start, event_id="AI20250610103000000101"))
    bad["confidence"] = "NaN"  # orjson refuses a bare NaN; a platform writing it as text gets this far
    async with running(runtime) as connector:
        platform = sim.Publisher(client_id + "-vsp")
        try:
            platform.publish(topic, orjson.dumps(bad))
            platform.publish(topic, sim.video_event(camera, "no_chef_hat", 0.91, start,
                                                    event_id="AI20250610103000000102"))
        finally:
            platform.close()
        await wait_for(lambda: connector.counters.get("messages", 0) >= 2)
        await runtime.drain()
        assert connector.counters["acks"] == 2
        assert connector.counters["records_rejected"] == 1  # the NaN event: in the rejections ledger
    assert runtime.store.rejections.count(status="open") == 1
    rows = dc_rows(tmp_path, "ex_iot_event", "device_id, event_type")
    assert rows == [(camera, "no_chef_hat")]

