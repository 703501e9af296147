"""Delivery worker: one per adapter, feeding it batches from its outbox.

This is the embedded seam of durable delivery: claim a batch, call the adapter, record each
record's result (delivered, rejected by the target -> the department's rejections, retry later,
or failed -> dead letter). Backoff policy, circuit breaking and Redis Streams build on this seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from adapters.base import Adapter, DeliveryResult, OutboundRecord
from gateway.errors import PermanentError, TransientError
from gateway.hooks import Hooks, NoHooks

log = logging.getLogger(__name__)


class OutboxItemLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def record_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> Any: ...
    @property
    def attempts(self) -> int: ...
    @property
    def department(self) -> str | None: ...
    @property
    def enqueued_at(self) -> datetime: ...


class DeliveryLedger(Protocol):
    """What a worker records: outbox state changes, journeys and target rejections, in one place."""

    def claim(self, adapter: str, limit: int, now: datetime) -> Sequence[OutboxItemLike]: ...
    def settle(self, adapter: str, items: Sequence[OutboxItemLike], results: Sequence[DeliveryResult],
               now: datetime, retry_at: Callable[[OutboxItemLike, DeliveryResult], datetime]) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 300.0
    max_attempts: int = 10

    def next_attempt(self, attempts: int, now: datetime, retry_after_s: float | None) -> datetime:
        delay = min(self.first_delay_s * 2 ** max(attempts - 1, 0), self.max_delay_s)
        delay *= 0.5 + random.random()
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return now + timedelta(seconds=delay)


class DeliveryWorker:
    def __init__(self, adapter_id: str, adapter: Adapter, ledger: DeliveryLedger, *, batch_size: int,
                 max_wait_s: float, policy: RetryPolicy | None = None, hooks: Hooks | None = None) -> None:
        self.adapter_id = adapter_id
        self._adapter = adapter
        self._ledger = ledger
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._policy = policy or RetryPolicy()
        self._hooks = hooks or NoHooks()
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """New work was written: wake up instead of waiting for the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            delivered = await self.run_once()
            if delivered == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):  # no news: poll again (retries come due by time)
                    await asyncio.wait_for(self._wake.wait(), timeout=self._max_wait_s)

    async def run_once(self) -> int:
        now = datetime.now(UTC)
        items = await asyncio.to_thread(self._ledger.claim, self.adapter_id, self._batch_size, now)
        if not items:
            return 0
        batch = [OutboundRecord(record_id=i.record_id, kind=i.kind, record=i.payload, department=i.department)
                 for i in items]
        results = [self._final(i, r) for i, r in zip(items, await self._deliver(batch), strict=True)]
        done = datetime.now(UTC)
        await asyncio.to_thread(self._ledger.settle, self.adapter_id, items, results, done, self._retry_at)
        for item, result in zip(items, results, strict=True):
            latency = (done - item.enqueued_at).total_seconds() if result.status == "delivered" else None
            self._hooks.delivery_result(self.adapter_id, item.kind, result.status, latency)
        return len(items)

    def _retry_at(self, item: OutboxItemLike, result: DeliveryResult) -> datetime:
        return self._policy.next_attempt(item.attempts + 1, datetime.now(UTC), result.retry_after_s)

    async def _deliver(self, batch: list[OutboundRecord]) -> list[DeliveryResult]:
        try:
            results = list(await self._adapter.deliver(batch))
        except TransientError as exc:
            log.warning("%s: target unavailable: %s", self.adapter_id, exc)
            return [DeliveryResult(record_id=r.record_id, status="retry", message=str(exc),
                                   retry_after_s=exc.retry_after_s) for r in batch]
        except PermanentError as exc:
            log.error("%s: permanent failure: %s", self.adapter_id, exc)
            return [DeliveryResult(record_id=r.record_id, status="failed", message=str(exc)) for r in batch]
        by_id = {r.record_id: r for r in results}
        return [by_id.get(r.record_id) or DeliveryResult(record_id=r.record_id, status="retry",
                                                         message="no result from the adapter")
                for r in batch]

    def _final(self, item: OutboxItemLike, result: DeliveryResult) -> DeliveryResult:
        """A retry past the last allowed attempt is a failure: the record goes to dead letters."""
        if result.status == "retry" and item.attempts + 1 >= self._policy.max_attempts:
            return DeliveryResult(record_id=result.record_id, status="failed",
                                  message=f"attempts exhausted ({item.attempts + 1}): {result.message}")
        return result
