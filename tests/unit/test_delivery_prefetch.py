"""A batch claimed ahead (while the one before was delivered) that came back empty says nothing of
what settling the one before made due: a later version of a key that batch carried waits only for
that settle, and nobody announces it. The worker claims again at once instead of waiting out its
poll (``max_wait_s``). Over the SQLite outbox and the Redis one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.base import DeliveryResult, OutboundRecord
from gateway.delivery import DeliveryWorker
from gateway.durable import SqlGatewayStore
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.outbox import OutboxRow
from gateway.stores.redis_outbox import RedisOutbox
from mapping.calendar import WorkingCalendar
from tests.redis_keys import REDIS_URL

LONG_POLL_S = 30.0  # far beyond the test's timeout: a worker that waits for its poll fails the test


@pytest.fixture(params=["sql", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlGatewayStore]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    redis_outbox = None
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        redis_outbox = RedisOutbox.from_url(REDIS_URL, prefix=prefix, consumer="w1")
    yield SqlGatewayStore(engine, WorkingCalendar(), outbox=redis_outbox)
    if redis_outbox is not None:
        redis_outbox.close()
    engine.dispose()


class SlowAdapter:
    """Takes a while per batch, so the batch claimed ahead is claimed before this one is settled."""

    name = "slow"

    def __init__(self, wanted: int) -> None:
        self.delivered: list[str] = []
        self.wanted = wanted
        self.done = asyncio.Event()

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        await asyncio.sleep(0.2)
        self.delivered += [r.record_id for r in batch]
        if len(self.delivered) >= self.wanted:
            self.done.set()
        return [DeliveryResult(r.record_id, "delivered") for r in batch]

    async def close(self) -> None: ...


async def test_an_empty_batch_claimed_ahead_does_not_make_later_versions_wait_for_the_poll(
        store: SqlGatewayStore) -> None:
    now = datetime.now(UTC)
    store.outbox.put_many([OutboxRow(adapter="t", record_id=f"v{n}", kind="penalty", payload={"n": n},
                                     enqueued_at=now, business_key=("one key",)) for n in (1, 2, 3)])
    adapter = SlowAdapter(wanted=3)
    worker = DeliveryWorker("t", adapter, store, batch_size=1, max_wait_s=LONG_POLL_S)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(adapter.done.wait(), 5)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 5)
    assert adapter.delivered == ["v1", "v2", "v3"]
