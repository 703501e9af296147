"""How the delivery worker cuts and re-forms batches: a batch refused as a whole is halved down to
the records that cause it; retried records come due together and travel apart from first attempts,
so a retry is the same batch again. Over the SQLite outbox, with a recording adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from adapters.base import DeliveryResult, OutboundRecord
from gateway.delivery import DeliveryWorker, RetryPolicy
from gateway.durable import SqlGatewayStore
from gateway.errors import TargetRejected
from gateway.stores.outbox import DeadLetterFilter
from gateway.stores.schema import outbox
from tests.unit.outbox_helpers import queue

Answer = Callable[[Sequence[OutboundRecord]], list[DeliveryResult]]


class RecordingAdapter:
    """Answers with ``answer`` and keeps the record ids of every batch it was given."""

    name = "recording"

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.batches: list[list[str]] = []

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        self.batches.append([r.record_id for r in batch])
        return self.answer(batch)

    async def close(self) -> None: ...


def delivered(batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
    return [DeliveryResult(r.record_id, "delivered") for r in batch]


def worker(store: SqlGatewayStore, adapter: RecordingAdapter, policy: RetryPolicy | None = None) -> DeliveryWorker:
    return DeliveryWorker("t", adapter, store, batch_size=100, max_wait_s=0.1,  # type: ignore[arg-type]
                          policy=policy or RetryPolicy(first_delay_s=0.0, max_delay_s=0.0, max_attempts=5))


def due_times(store: SqlGatewayStore) -> set[datetime]:
    with store.outbox._engine.connect() as conn:  # type: ignore[attr-defined]
        return {t for (t,) in conn.execute(outbox.select().with_only_columns(outbox.c.next_attempt_at)
                                           .where(outbox.c.state == "pending"))}


async def test_a_batch_refused_as_a_whole_is_halved_down_to_the_record_that_causes_it(
        store: SqlGatewayStore) -> None:
    ids = [f"r{i:02d}" for i in range(8)]
    queue(store, *ids)

    def refuse_batches_with_r05(batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        if any(r.record_id == "r05" for r in batch):
            return [DeliveryResult(r.record_id, "failed", code="40000", message="schema") for r in batch]
        return delivered(batch)

    adapter = RecordingAdapter(refuse_batches_with_r05)
    assert await worker(store, adapter).run_once() == 8
    assert adapter.batches == [ids, ids[:4], ids[4:], ids[4:6], ["r04"], ["r05"], ids[6:]]
    assert [d.record_id for d in store.outbox.dead_letters(where=DeadLetterFilter())] == ["r05"]


async def test_a_target_wide_refusal_is_not_split(store: SqlGatewayStore) -> None:
    queue(store, "a", "b", "c", "d")

    def refuse_everything(batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        raise TargetRejected("bad signature", code="40100")

    adapter = RecordingAdapter(refuse_everything)
    assert await worker(store, adapter).run_once() == 4
    assert adapter.batches == [["a", "b", "c", "d"]]  # one request, not seven
    assert len(store.outbox.dead_letters(where=DeadLetterFilter())) == 4


async def test_records_failing_each_for_its_own_reason_are_not_split(store: SqlGatewayStore) -> None:
    queue(store, "a", "b")

    def own_reasons(batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        return [DeliveryResult(r.record_id, "failed", code="41300", message=f"{r.record_id} too large")
                for r in batch]

    adapter = RecordingAdapter(own_reasons)
    await worker(store, adapter).run_once()
    assert adapter.batches == [["a", "b"]]


async def test_a_retried_batch_comes_due_together_and_travels_apart_from_new_records(
        store: SqlGatewayStore) -> None:
    queue(store, "a", "b", "c")
    answers: list[Answer] = [
        lambda batch: [DeliveryResult(r.record_id, "retry", message="answer lost") for r in batch],
    ]
    adapter = RecordingAdapter(lambda batch: answers.pop(0)(batch) if answers else delivered(batch))
    policy = RetryPolicy(first_delay_s=0.02, max_delay_s=0.05, max_attempts=5)
    w = worker(store, adapter, policy)
    assert await w.run_once() == 3
    assert len(due_times(store)) == 1  # one backoff draw for the batch, not one per record
    queue(store, "d", "e")  # news arrive meanwhile
    retry_due = max(due_times(store))
    await asyncio.sleep(max(0.0, (retry_due - datetime.now(UTC)).total_seconds()) + 0.01)  # the backoff
    assert await w.run_once() == 5  # one claim: the retried records and the new ones
    assert adapter.batches[1:] == [["a", "b", "c"], ["d", "e"]]  # the same batch again, the news apart
    assert await w.run_once() == 0
