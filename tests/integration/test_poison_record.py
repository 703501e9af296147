"""A poison record: the national platform refuses every batch that holds it (400 40000, the whole
batch, over HTTP); the worker finds it by halving the batch, so it alone ends in dead letters and the
good records of its batch are delivered. After the fix, its redrive delivers it exactly once. On the
SQLite outbox and on the Redis Streams outbox."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from adapters.national_platform import NationalPlatformAdapter, NationalPlatformConfig
from gateway.dead_letters import DeadLetterOps
from gateway.delivery import DeliveryWorker, RetryPolicy
from gateway.durable import SqlGatewayStore
from gateway.envelope import Envelope
from gateway.ingest import Ingestor
from gateway.publisher import Publisher
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.outbox import DeadLetterFilter
from gateway.stores.redis_outbox import RedisOutbox
from mapping.calendar import WorkingCalendar
from mapping.catalog import load_catalog
from tests.conftest import MAPPINGS, SAMPLES
from tests.peers.national_platform_server import APP_ID, APP_SECRET, NationalPlatformServer

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"
GOOD = 23


def items(n: int) -> list[dict[str, Any]]:
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    out = []
    for i in range(n):
        item: dict[str, Any] = copy.deepcopy(page["items"][0])
        item.update(id=f"HJCF-330111-2025-{i:06d}", caseNo=f"富环罚案〔2025〕{i:06d}",
                    decisionNo=f"杭环富罚〔2025〕{i}号")
        out.append(item)
    return out


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlGatewayStore]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    outbox = None
    prefix = f"sgw-poison-{uuid.uuid4().hex[:10]}"
    if request.param == "redis":
        outbox = RedisOutbox(redis.Redis.from_url(REDIS_URL), prefix=prefix, consumer="w1", lease_s=60)
    yield SqlGatewayStore(engine, WorkingCalendar(), outbox=outbox)
    if outbox is not None:
        outbox.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    engine.dispose()


async def test_a_poison_record_is_dead_lettered_alone_and_its_redrive_delivers_it_once(
        store: SqlGatewayStore) -> None:
    publisher = Publisher(ingestor=Ingestor(), store=store, routes=lambda kind: ("national",),
                          mappings={"eco-rest": {"default": load_catalog(MAPPINGS)["eco-rest.penalty"]}})
    result = await publisher.publish(Envelope(connector="eco-rest", payload={"items": items(GOOD + 1)},
                                              received_at=datetime.now(UTC), department="eco-a"))
    accepted = [o.record_id for o in result.outcomes if o.status == "accepted" and o.record_id]
    assert len(accepted) == GOOD + 1
    store.relay()  # with Redis: the committed records handed to the stream
    poison = accepted[GOOD // 2]
    good = [rid for rid in accepted if rid != poison]

    async with NationalPlatformServer() as fake:
        fake.poison(poison)
        adapter = NationalPlatformAdapter(NationalPlatformConfig(base_url=fake.url, app_id=APP_ID,
                                                                 app_secret=APP_SECRET))  # type: ignore[arg-type]
        worker = DeliveryWorker("national", adapter, store, batch_size=100, max_wait_s=0.1,
                                policy=RetryPolicy(first_delay_s=0.0, max_delay_s=0.0, max_attempts=5))
        ops = DeadLetterOps(store)
        try:
            assert await worker.run_once() == len(accepted)  # one claim: the poison record and the good ones
            assert fake.stored == {rid: 1 for rid in good}  # none held back, none sent twice
            [dead] = ops.find(DeadLetterFilter(adapter="national"), 10)
            assert dead.record_id == poison and "40000" in (dead.last_error or "")
            assert 400 in fake.statuses() and fake.statuses().count(200) >= 2
            assert await worker.run_once() == 0  # nothing else is left to deliver

            fake.cure(poison)  # the fix
            assert ops.redrive([dead.id], actor="test") == 1
            assert await worker.run_once() == 1
            assert await worker.run_once() == 0
        finally:
            await adapter.close()

    assert fake.stored == {rid: 1 for rid in accepted}  # the poison record too, exactly once
    assert ops.find(DeadLetterFilter(adapter="national"), 10) == []
    events = [s.event for s in store.journeys.for_record(poison)]
    assert events.index("dead") < events.index("redriven") < events.index("delivered")
