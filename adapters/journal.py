"""The batch journal: batches as an adapter sent them, kept until their records are settled.

A target that deduplicates by batch (the national platform's ``batch_id`` is its idempotency key,
and a replay must carry the same body) only recognises a retry if the retry is the very same
batch. Claims do not guarantee that: after a crash, reclaimed records arrive in batches of another
size, mixed with retries that came due, or split between instances. So an adapter writes each batch
to the journal before sending it, and a record on a further attempt is sent again inside the
journaled batch it went in, byte for byte, whatever else came with it in the claim; the target then
answers a batch it already stored as a replay instead of storing its records twice.

An adapter forgets a batch once the target has answered it for good and the worker has settled
its records (``settled``): a batch the target never answered (timeout, 5xx, 429) stays until a
retry of its records gets the answer. A batch replayed by a worker that held only some of its
records stays for the holders of the rest; ``prune`` drops what is older than any retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol, runtime_checkable

RETAIN = timedelta(days=14)  # longer than any record stays in the outbox before it is a dead letter


class SentBatch(NamedTuple):
    batch_id: str
    record_ids: tuple[str, ...]
    body: bytes


class BatchJournal(Protocol):
    def remember(self, batch: SentBatch, now: datetime) -> None: ...

    def recall(self, record_ids: AbstractSet[str]) -> list[SentBatch]:
        """The journaled batches that hold any of ``record_ids``."""
        ...

    def forget(self, batch_ids: Sequence[str]) -> None: ...

    def prune(self, before: datetime) -> int:
        """Drop batches sent before ``before``; how many went."""
        ...


@runtime_checkable
class BatchJournaling(Protocol):
    """An adapter that keeps a journal: the runtime gives it a durable one (without, it keeps one in
    memory), and the worker tells it when a delivered batch's results are settled."""

    def use_journal(self, journal: BatchJournal) -> None: ...

    async def settled(self) -> None: ...


class MemoryJournal:
    """The journal of one process: retries inside the process keep their batches; a restart forgets."""

    def __init__(self) -> None:
        self._batches: dict[str, tuple[SentBatch, datetime]] = {}

    def remember(self, batch: SentBatch, now: datetime) -> None:
        self._batches[batch.batch_id] = (batch, now)

    def recall(self, record_ids: AbstractSet[str]) -> list[SentBatch]:
        return [batch for batch, _ in self._batches.values() if not record_ids.isdisjoint(batch.record_ids)]

    def forget(self, batch_ids: Sequence[str]) -> None:
        for batch_id in batch_ids:
            self._batches.pop(batch_id, None)

    def prune(self, before: datetime) -> int:
        old = [batch_id for batch_id, (_, at) in self._batches.items() if at < before]
        self.forget(old)
        return len(old)


def prune_horizon(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - RETAIN


class JournalKeeper:
    """An adapter's side of the journal: the one the runtime gave it (in memory until then), the
    batches answered for good since the worker last settled (forgotten then), and a prune of what
    is older than any retry at the first recall. Blocking journal calls run in a worker thread."""

    def __init__(self) -> None:
        self.journal: BatchJournal = MemoryJournal()
        self._answered: list[str] = []
        self._pruned = False

    def use(self, journal: BatchJournal) -> None:
        self.journal = journal

    async def remember(self, batch: SentBatch) -> None:
        """Before the batch is sent."""
        await asyncio.to_thread(self.journal.remember, batch, datetime.now(UTC))

    def answered(self, batch_id: str) -> None:
        """The target answered the batch for good: forgotten at the next ``settled``."""
        self._answered.append(batch_id)

    async def settled(self) -> None:
        answered, self._answered = self._answered, []
        if answered:
            await asyncio.to_thread(self.journal.forget, answered)

    async def recall(self, record_ids: AbstractSet[str]) -> list[SentBatch]:
        """The journaled batches of records on a further attempt."""
        if not self._pruned:
            self._pruned = True
            await asyncio.to_thread(self.journal.prune, prune_horizon())
        return await asyncio.to_thread(self.journal.recall, record_ids)
