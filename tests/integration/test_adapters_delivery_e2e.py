"""End to end: records accepted by the Publisher, delivered by a DeliveryWorker to the fake national
platform over HTTP; the platform's rejection lands in the providing department's rejections."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.national_platform import NationalPlatformAdapter, NationalPlatformConfig
from gateway.delivery import DeliveryWorker, RetryPolicy
from gateway.durable import SqlGatewayStore
from gateway.envelope import Envelope
from gateway.ingest import Ingestor
from gateway.publisher import Publisher
from gateway.stores.db import create_engine_for, init_schema
from mapping.calendar import WorkingCalendar
from mapping.catalog import load_catalog
from tests.conftest import MAPPINGS, SAMPLES
from tests.peers.national_platform_server import APP_ID, APP_SECRET, NationalPlatformServer

pytestmark = pytest.mark.integration
MESSAGE = "关联的检查行为不存在（check_action_no）"


async def test_accepted_records_reach_the_platform_once_and_its_rejection_reaches_the_department(
        tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    store = SqlGatewayStore(engine, WorkingCalendar())
    publisher = Publisher(ingestor=Ingestor(), store=store, routes=lambda kind: ("national",),
                          mappings={"eco-rest": {"default": load_catalog(MAPPINGS)["eco-rest.penalty"]}})
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    result = await publisher.publish(Envelope(connector="eco-rest", payload=page, received_at=datetime.now(UTC),
                                              department="eco-a"))
    accepted = [o.record_id for o in result.outcomes if o.status == "accepted" and o.record_id]
    assert len(accepted) >= 2

    async with NationalPlatformServer() as fake:
        fake.reject(accepted[0], "10010", MESSAGE, "check_action_no")
        fake.lose_answers(1)  # the first answer is lost: the retry must not store anything twice
        adapter = NationalPlatformAdapter(NationalPlatformConfig(base_url=fake.url, app_id=APP_ID,
                                                                 app_secret=APP_SECRET))  # type: ignore[arg-type]
        worker = DeliveryWorker("national", adapter, store, batch_size=100, max_wait_s=0.1,
                                policy=RetryPolicy(first_delay_s=0.0, max_delay_s=0.0))  # retries due at once
        try:
            assert await worker.run_once() == len(accepted)
            assert store.rejections.count() == 0  # a lost answer is a retry, not a rejection
            assert await worker.run_once() == len(accepted)
            assert await worker.run_once() == 0
        finally:
            await adapter.close()

    assert fake.statuses() == [502, 409]
    assert fake.stored == {rid: 1 for rid in accepted[1:]}
    [rejection] = store.rejections.list(status="open")
    assert rejection.record_id == accepted[0] and rejection.department == "eco-a" and rejection.target == "national"
    assert rejection.errors[0]["code"] == "10010"
    assert rejection.errors[0]["field"] == "check_action_no"  # the field the platform named
    assert MESSAGE in rejection.errors[0]["message_zh"]
    engine.dispose()
