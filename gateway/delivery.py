"""Delivery worker: one per adapter, feeding it batches from its outbox.

A worker claims a batch (up to ``batch_size`` records; when fewer are ready it delivers what there
is and claims again; once a claim finds nothing it waits for news or ``max_wait_s``, lingering
``linger_s`` after news so a burst travels together), calls the adapter and settles each
record's result: delivered; rejected by the target (-> the department's rejections); retry,
rescheduled durably in the outbox with exponential backoff and full jitter
(``tenacity.wait_random_exponential``), never sooner than a Retry-After; failed (-> dead letters),
also when the attempts or the age run out. A per-adapter circuit breaker stops claiming while the
target is down and probes it with one record at a time.

Per-key order is the outbox's: it never hands out a version of a business key while an earlier
one is still on its way. While a full batch is delivered the next one is claimed (two batches in
flight, see ``run_once``). ``stop()`` lets the batch in hand finish; work cut off by the grace
period, and a batch claimed ahead, is returned to the outbox, due at once, for the next worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tenacity import RetryCallState, wait_random_exponential

from adapters.base import Adapter, DeliveryResult, OutboundRecord
from adapters.journal import BatchJournaling
from gateway.circuit import CircuitBreaker
from gateway.errors import PermanentError, StoreUnavailable, TransientError
from gateway.hooks import Hooks, NoHooks

log = logging.getLogger(__name__)


class OutboxItemLike(Protocol):
    @property
    def id(self) -> int | str: ...
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
    """``attempts`` counts every claim of the record, the one being settled included."""

    first_delay_s: float = 1.0
    max_delay_s: float = 300.0
    max_attempts: int = 10
    max_age_s: float | None = None

    def delay_s(self, attempts: int) -> float:
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]  # only attempt_number is read
        state.attempt_number = max(attempts, 1)
        wait = wait_random_exponential(multiplier=self.first_delay_s, max=self.max_delay_s)
        return float(wait(state))

    def next_attempt(self, attempts: int, now: datetime, retry_after_s: float | None) -> datetime:
        delay = self.delay_s(attempts)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return now + timedelta(seconds=delay)

    def exhausted(self, attempts: int, enqueued_at: datetime, now: datetime) -> str | None:
        """Why no further attempt is allowed, or None."""
        if attempts >= self.max_attempts:
            return f"attempts exhausted ({attempts})"
        if self.max_age_s is not None and (now - enqueued_at).total_seconds() >= self.max_age_s:
            return f"too old ({int((now - enqueued_at).total_seconds())} s in the outbox)"
        return None


class DeliveryWorker:
    def __init__(self, adapter_id: str, adapter: Adapter, ledger: DeliveryLedger, *, batch_size: int,
                 max_wait_s: float, policy: RetryPolicy | None = None, hooks: Hooks | None = None,
                 breaker: CircuitBreaker | None = None, linger_s: float = 0.0) -> None:
        self.adapter_id = adapter_id
        self._adapter = adapter
        self._ledger = ledger
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._linger_s = linger_s
        self._policy = policy or RetryPolicy()
        self._hooks = hooks or NoHooks()
        self.breaker = breaker or CircuitBreaker()
        self._wake = asyncio.Event()
        self._stopping = False
        # The next batch, claimed while the current one is delivered (see ``run_once``).
        self._next: asyncio.Task[Sequence[OutboxItemLike]] | None = None

    def notify(self) -> None:
        """New work was written: wake up instead of waiting for the next poll."""
        self._wake.set()

    def request_stop(self) -> None:
        """Finish the batch in hand, then return from ``run``."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._stopping:
                # Claim again at once after any batch: settling it may have made later versions of its
                # keys due, and nobody announces those. Only an empty claim waits for news or the poll.
                if await self.run_once() == 0 and not self._stopping:
                    await self._idle()
        finally:
            await self._return_prefetched()

    async def _idle(self) -> None:
        """Wait for news written since the last claim began (``_claim`` clears the flag then, so
        news that came while a batch was being delivered is not lost: the worker claims again at
        once), or ``max_wait_s`` at most: retries come due by time, and nobody announces them."""
        timeout_s = self._max_wait_s
        if self.breaker.state == "open":
            timeout_s = max(self.breaker.wait_s(), 0.01)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout_s)
            if self._linger_s and not self._stopping:
                await asyncio.sleep(self._linger_s)

    async def run_once(self) -> int:
        """Claim, deliver and settle one batch. After a full batch, the next one is claimed while
        this one is delivered (two batches in flight): the outbox never hands out a later version
        of a key still in flight, so per-key order holds; the next call delivers it."""
        limit = self.breaker.allowance(self._batch_size)
        items = await self._take_prefetched(limit)
        if not items:  # none claimed ahead, or claimed before settling the last batch made later versions due
            if limit == 0:
                return 0
            items = await self._claim(limit)
        if not items:
            return 0
        if len(items) >= self._batch_size and self.breaker.state == "closed" and not self._stopping:
            self._next = asyncio.create_task(self._claim(self._batch_size))
        items = _again_first(items)
        try:
            raw = await self._deliver_claimed(items)
        except asyncio.CancelledError:
            await self._give_back(items)
            await self._return_prefetched()
            raise
        done = datetime.now(UTC)
        results = [self._final(i, r, done) for i, r in zip(items, raw, strict=True)]
        self._update_breaker(raw)
        await asyncio.to_thread(self._ledger.settle, self.adapter_id, items, results, done,
                                self._retry_at_for(items))
        if isinstance(self._adapter, BatchJournaling):
            await self._adapter.settled()
        for item, result in zip(items, results, strict=True):
            latency = (done - item.enqueued_at).total_seconds() if result.status == "delivered" else None
            self._hooks.delivery_result(self.adapter_id, item.kind, result.status, latency, department=item.department)
        return len(items)

    async def _claim(self, limit: int) -> Sequence[OutboxItemLike]:
        """Claim up to ``limit`` due items; news written from now on is news to the next ``_idle``."""
        if not self._stopping:  # a stop request stays set: ``_idle`` must not wait then
            self._wake.clear()
        return await asyncio.to_thread(self._ledger.claim, self.adapter_id, limit, datetime.now(UTC))

    async def _take_prefetched(self, limit: int) -> Sequence[OutboxItemLike] | None:
        """The batch claimed ahead, cut to what the breaker now allows (the rest goes back)."""
        if self._next is None:
            return None
        task, self._next = self._next, None
        items = await task
        if len(items) > limit:
            await self._give_back(items[limit:], "returned: the circuit breaker allows fewer")
            items = items[:limit]
        return items

    async def _return_prefetched(self) -> None:
        if self._next is None:
            return
        task, self._next = self._next, None
        try:
            items = await task
        except StoreUnavailable as exc:  # nothing to return: a lost claim's lease runs out
            log.warning("%s: claiming ahead failed: %s", self.adapter_id, exc)
            return
        await self._give_back(items)

    async def _give_back(self, items: Sequence[OutboxItemLike], reason: str = "returned at shutdown") -> None:
        if not items:
            return
        now = datetime.now(UTC)
        back = [DeliveryResult(record_id=i.record_id, status="retry", message=reason)
                for i in items]
        await asyncio.to_thread(self._ledger.settle, self.adapter_id, items, back, now, lambda _i, _r: now)

    def _update_breaker(self, results: Sequence[DeliveryResult]) -> None:
        if results and all(r.status == "retry" for r in results):
            was = self.breaker.state
            self.breaker.record_failure()
            if self.breaker.state == "open" and was != "open":
                log.warning("%s: circuit open; probing in %.1f s", self.adapter_id, self.breaker.wait_s())
        else:
            self.breaker.record_success()

    def _retry_at_for(self, items: Sequence[OutboxItemLike]) -> Callable[[OutboxItemLike, DeliveryResult], datetime]:
        """One backoff draw for the whole batch: its records come due again together and are
        claimed together, so a target that deduplicates by batch mostly sees the same batch again
        (an adapter that journals its batches, ``adapters.journal``, makes sure of it)."""
        now = datetime.now(UTC)
        attempts = max((i.attempts for i in items), default=1)
        at = self._policy.next_attempt(attempts, now, None)

        def retry_at(_item: OutboxItemLike, result: DeliveryResult) -> datetime:
            if result.retry_after_s is None:
                return at
            return max(at, now + timedelta(seconds=result.retry_after_s))

        return retry_at

    async def _deliver_claimed(self, items: Sequence[OutboxItemLike]) -> list[DeliveryResult]:
        """Records on a further attempt (retried, or reclaimed from a crashed worker) travel apart
        from first attempts, in a call of their own: an adapter that journals its batches sends
        them again in the batches they went in, and a first attempt never waits on that."""
        split = next((n for n, i in enumerate(items) if i.attempts <= 1), len(items))
        parts = [part for part in (items[:split], items[split:]) if part]
        results: list[DeliveryResult] = []
        for part in parts:
            results.extend(await self._deliver([OutboundRecord(i.record_id, i.kind, i.payload, i.department,
                                                               i.attempts) for i in part]))
        return results

    async def _deliver(self, batch: list[OutboundRecord]) -> list[DeliveryResult]:
        """The adapter's result per record. A batch the target refused as a whole for what it holds
        (every record failed with one and the same error, e.g. a schema 400 caused by one record) is
        split in halves and each sent again, down to single records: a poison record ends in dead
        letters alone instead of taking the good ones with it. A target-wide error (an exception:
        unavailable, refused credentials) is not split: every record would fail the same way."""
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
        ordered = [by_id.get(r.record_id) or DeliveryResult(record_id=r.record_id, status="retry",
                                                            message="no result from the adapter")
                   for r in batch]
        if len(batch) > 1 and _refused_as_a_whole(ordered):
            log.warning("%s: a batch of %d refused as a whole (%s); sending it in halves to find the records",
                        self.adapter_id, len(batch), ordered[0].code)
            half = len(batch) // 2
            return [*await self._deliver(batch[:half]), *await self._deliver(batch[half:])]
        return ordered

    def _final(self, item: OutboxItemLike, result: DeliveryResult, now: datetime) -> DeliveryResult:
        """A retry past the last allowed attempt or age is a failure: the record goes to dead letters."""
        if result.status != "retry":
            return result
        reason = self._policy.exhausted(item.attempts, item.enqueued_at, now)
        if reason is None:
            return result
        return DeliveryResult(record_id=result.record_id, status="failed", code=result.code,
                              message=f"{reason}: {result.message}")


def _refused_as_a_whole(results: Sequence[DeliveryResult]) -> bool:
    first = results[0]
    return all(r.status == "failed" and (r.code, r.message) == (first.code, first.message) for r in results)


def _again_first(items: Sequence[OutboxItemLike]) -> Sequence[OutboxItemLike]:
    """Records on a further attempt first, each group in claim order (one version per key per claim,
    so no key's order changes)."""
    again = [i for i in items if i.attempts > 1]
    if not again or len(again) == len(items):
        return items
    return [*again, *(i for i in items if i.attempts <= 1)]
