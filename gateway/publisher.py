"""Publish: ingest an envelope and write its outcomes durably, before the source is acknowledged.

This is the ``publish`` callable every connector gets. It returns only after accepted records are
in the outbox of every adapter that routes them and rejected ones are in the rejections ledger;
when that write fails it raises ``StoreUnavailable`` and the connector must not acknowledge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from connectors.base import PublishReceipt, ReceiptError, RecordReceipt
from gateway.envelope import Envelope
from gateway.errors import ConfigError, StoreUnavailable
from gateway.hooks import Hooks, NoHooks
from gateway.ingest import Ingestor, Prepared, RecordIndex, RecordOutcome
from gateway.map_pool import MapPool
from gateway.record_view import INSPECTION, BatchView
from mapping.compiler import CompiledMapping
from mapping.findings import Finding

DEFAULT_VARIANT = "default"


class IngestStore(Protocol):
    """The durable side of ingest: one transaction per envelope."""

    @property
    def index(self) -> RecordIndex: ...

    def write(self, envelope: Envelope, outcomes: Sequence[RecordOutcome],
              routes: Callable[[str], tuple[str, ...]]) -> None: ...


@dataclass(frozen=True, slots=True)
class PublishResult:
    receipt: PublishReceipt
    outcomes: list[RecordOutcome]


def _receipt_error(finding: Finding) -> ReceiptError:
    return ReceiptError(code=finding.code, field=finding.field, location=finding.location,
                        message_zh=finding.message_zh, message_en=finding.message_en, severity=finding.severity)


def _record_receipt(outcome: RecordOutcome) -> RecordReceipt:
    source_record_id = outcome.record.get("source_record_id")
    return RecordReceipt(index=outcome.index, status=outcome.status, record_id=outcome.record_id,
                         source_record_id=source_record_id if isinstance(source_record_id, str) else None,
                         errors=tuple(map(_receipt_error, outcome.errors)),
                         warnings=tuple(map(_receipt_error, outcome.warnings)))


class Publisher:
    def __init__(
        self,
        *,
        ingestor: Ingestor,
        mappings: Mapping[str, Mapping[str, CompiledMapping]],
        store: IngestStore,
        routes: Callable[[str], tuple[str, ...]],
        hooks: Hooks | None = None,
        on_written: Callable[[], None] | None = None,
        connector_meta: Mapping[str, Mapping[str, Any]] | None = None,
        map_pool: MapPool | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._map_pool = map_pool
        self._mappings = mappings
        self._store = store
        self._routes = routes
        self._hooks = hooks or NoHooks()
        self._on_written = on_written
        self._connector_meta = connector_meta or {}
        # Envelopes are evaluated one at a time, in arrival order, and written in that order; the
        # write of one overlaps the evaluation of the next (see ``_pipelined``).
        self._lock = asyncio.Lock()
        self._inflight: tuple[list[RecordOutcome], ...] = ()  # evaluated, not yet committed
        self._last_write: asyncio.Future[None] | None = None
        self._failed_writes = 0

    def set_connector(self, connector: str, mappings: Mapping[str, CompiledMapping] | None,
                      meta: Mapping[str, Any] | None = None) -> None:
        """Swap one connector's mappings and meta while running (None: it is gone). Copied, not
        mutated: a publish in flight keeps the tables it read."""
        tables, metas = dict(self._mappings), dict(self._connector_meta)
        tables.pop(connector, None)
        metas.pop(connector, None)
        if mappings is not None:
            tables[connector] = mappings
            if meta:
                metas[connector] = meta
        self._mappings, self._connector_meta = tables, metas

    def variants_of(self, connector: str) -> list[str]:
        """The names of the connector's mappings (its variants), sorted; none for an unknown one."""
        return sorted(self._mappings.get(connector) or ())

    def mapping_for(self, envelope: Envelope) -> CompiledMapping:
        variants = self._mappings.get(envelope.connector)
        if not variants:
            raise ConfigError(f"connector {envelope.connector!r} has no mapping")
        variant = str(envelope.meta.get("variant", DEFAULT_VARIANT))
        found = variants.get(variant) or (variants.get(DEFAULT_VARIANT) if len(variants) == 1 else None)
        if found is None:
            raise ConfigError(f"connector {envelope.connector!r} has no mapping for variant {variant!r}")
        return found

    def _evaluate(self, mapping: CompiledMapping, envelope: Envelope, inflight: tuple[list[RecordOutcome], ...],
                  prepared: list[Prepared] | None) -> list[RecordOutcome]:
        index: RecordIndex = self._store.index
        if inflight:
            index = InflightIndex(index, inflight)
        return self._ingestor.evaluate(mapping, envelope, index, prepared)

    def _evaluate_and_write(self, mapping: CompiledMapping, envelope: Envelope,
                            prepared: list[Prepared] | None) -> list[RecordOutcome]:
        # Off the event loop: mapping a 50,000-row file is CPU work, and the store is blocking I/O.
        outcomes = self._ingestor.evaluate(mapping, envelope, self._store.index, prepared)
        self._store.write(envelope, outcomes, self._routes)
        return outcomes

    def _prepare_elsewhere(self, mapping: CompiledMapping,
                           envelope: Envelope) -> asyncio.Task[list[Prepared] | None] | None:
        """The envelope mapped and checked record by record in the map pool, started now (before
        its turn: it needs no history), when there is a pool and the envelope is worth it."""
        pool = self._map_pool
        if pool is None or envelope.refused:
            return None
        sources = pool.sources_worth_sending(mapping, envelope.payload, envelope.records_inline)
        if sources is None:
            return None
        return asyncio.create_task(pool.prepare(self._ingestor, mapping, envelope.payload,
                                                self._ingestor.meta_for(envelope),
                                                records_inline=envelope.records_inline, sources=sources))

    async def _pipelined(self, mapping: CompiledMapping, envelope: Envelope,
                         preparing: asyncio.Task[list[Prepared] | None] | None) -> list[RecordOutcome]:
        """Evaluate (in turn), then write (in the same turn order) while the next envelope is being
        evaluated: the write spends its time in the database, which releases the GIL.

        The next evaluation must see this envelope's records although they are not committed yet
        (duplicates, cross-record rules): it reads the store's snapshot with the accepted outcomes
        of every envelope still being written laid over it. Nothing is acknowledged before its own
        write commits; when a write fails, every envelope evaluated over it fails as well (with
        ``StoreUnavailable``, unwritten), so that none is acknowledged on a false premise."""
        loop = asyncio.get_running_loop()
        async with self._lock:  # fair: envelopes take their turns in the order they arrived
            failures = self._failed_writes
            prepared = await preparing if preparing is not None else None
            outcomes = await asyncio.to_thread(self._evaluate, mapping, envelope, self._inflight, prepared)
            mine = [o for o in outcomes if o.status == "accepted"]
            self._inflight = (*self._inflight, mine)
            previous, done = self._last_write, loop.create_future()
            self._last_write = done
        try:
            if previous is not None:
                await asyncio.shield(previous)
            if self._failed_writes != failures:
                raise StoreUnavailable("an envelope evaluated before this one was not written; not written")
            await asyncio.to_thread(self._store.write, envelope, outcomes, self._routes)
        except BaseException as exc:
            self._failed_writes += 1
            if isinstance(exc, StoreUnavailable):
                self._hooks.store_write_failed(envelope.connector)
            raise
        finally:
            self._inflight = tuple(batch for batch in self._inflight if batch is not mine)
            if not done.done():
                done.set_result(None)
        return outcomes

    async def __call__(self, envelope: Envelope) -> PublishReceipt:
        return (await self.publish(envelope)).receipt

    async def publish(self, envelope: Envelope) -> PublishResult:
        configured = self._connector_meta.get(envelope.connector)
        if configured:  # configured per connector (e.g. the providing unit); what the source sent wins
            envelope = replace(envelope, meta={**configured, **envelope.meta})
        mapping = self.mapping_for(envelope)
        self._hooks.envelope_received(envelope.connector)
        preparing = self._prepare_elsewhere(mapping, envelope)
        try:
            if getattr(self._store.index, "snapshot", None) is None:
                async with self._lock:  # an index without snapshots: evaluate and write one at a time
                    prepared = await preparing if preparing is not None else None
                    try:
                        outcomes = await asyncio.to_thread(self._evaluate_and_write, mapping, envelope, prepared)
                    except StoreUnavailable:
                        self._hooks.store_write_failed(envelope.connector)
                        raise
            else:
                outcomes = await self._pipelined(mapping, envelope, preparing)
        finally:
            if preparing is not None and not preparing.done():  # cancelled while waiting its turn
                preparing.cancel()
        if self._on_written is not None and any(o.status == "accepted" for o in outcomes):
            self._on_written()
        counts = {"accepted": 0, "rejected": 0, "duplicate": 0}
        # The hooks hear of an envelope's outcomes grouped (a chunk of a file: a call, not a thousand).
        groups: dict[tuple[str, str, tuple[str, ...]], int] = {}
        for outcome in outcomes:
            counts[outcome.status] += 1
            group = (outcome.kind, outcome.status, tuple(e.code for e in outcome.errors) if outcome.errors else ())
            groups[group] = groups.get(group, 0) + 1
        for (kind, status, codes), n in groups.items():
            self._hooks.record_outcome(envelope.connector, kind, status, codes, department=envelope.department, n=n)
        receipt = PublishReceipt(envelope_id=envelope.envelope_id, **counts,
                                 records=tuple(_record_receipt(o) for o in outcomes))
        return PublishResult(receipt=receipt, outcomes=outcomes)


class InflightIndex:
    """The store's index with the accepted outcomes of envelopes still being written laid over it,
    oldest first (they are newer than anything committed)."""

    def __init__(self, index: RecordIndex, inflight: tuple[list[RecordOutcome], ...]) -> None:
        self._index = index
        self._inflight = inflight

    def snapshot(self, record_ids: Collection[str], keys: Collection[tuple[str, tuple[str, ...]]]) -> BatchView:
        view: BatchView = self._index.snapshot(record_ids, keys)  # type: ignore[attr-defined]
        for batch in self._inflight:
            for outcome in batch:
                view.remember(outcome)
        return view

    def is_duplicate(self, record_id: str) -> bool:
        return any(o.record_id == record_id for batch in self._inflight for o in batch) or \
            self._index.is_duplicate(record_id)

    def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool:
        view = self.snapshot((), ((kind, business_key),))
        return view.has_accepted(kind, business_key)

    def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool:
        return self.has_accepted(INSPECTION, (implementing_org_uscc, check_action_no))
