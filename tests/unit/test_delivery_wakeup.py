"""News of records queued while a delivery worker was busy delivering is not lost: it claims again
at once instead of waiting out its poll (``max_wait_s``). Over the SQLite outbox, with an adapter
that queues more records while it delivers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from adapters.base import DeliveryResult, OutboundRecord
from gateway.delivery import DeliveryWorker
from gateway.durable import SqlGatewayStore
from tests.unit.outbox_helpers import queue

LONG_POLL_S = 30.0  # far beyond the test's timeout: a worker that waits for its poll fails the test


class QueueingAdapter:
    """Delivers every batch; while delivering the first, more records are queued and announced, as
    ingest does while a worker is busy."""

    name = "queueing"

    def __init__(self, store: SqlGatewayStore) -> None:
        self.store = store
        self.worker: DeliveryWorker | None = None
        self.batches: list[list[str]] = []
        self.second = asyncio.Event()

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        self.batches.append([r.record_id for r in batch])
        if len(self.batches) == 1:
            queue(self.store, "later")
            assert self.worker is not None
            self.worker.notify()
        else:
            self.second.set()
        return [DeliveryResult(r.record_id, "delivered") for r in batch]

    async def close(self) -> None: ...


async def run_until(worker: DeliveryWorker, event: asyncio.Event, timeout_s: float) -> None:
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 5)


async def test_news_that_came_during_a_delivery_wakes_the_worker_at_once(store: SqlGatewayStore) -> None:
    queue(store, "first")
    adapter = QueueingAdapter(store)
    worker = DeliveryWorker("t", adapter, store, batch_size=100, max_wait_s=LONG_POLL_S)
    adapter.worker = worker
    await run_until(worker, adapter.second, timeout_s=5)
    assert adapter.batches == [["first"], ["later"]]

