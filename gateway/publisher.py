"""Publish: ingest an envelope and write its outcomes durably, before the source is acknowledged.

This is the ``publish`` callable every connector gets. It returns only after accepted records are
in the outbox of every adapter that routes them and rejected ones are in the rejections ledger;
when that write fails it raises ``StoreUnavailable`` and the connector must not acknowledge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from connectors.base import PublishReceipt, ReceiptError, RecordReceipt
from gateway.envelope import Envelope
from gateway.errors import ConfigError, StoreUnavailable
from gateway.hooks import Hooks, NoHooks
from gateway.ingest import Ingestor, RecordIndex, RecordOutcome
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
    ) -> None:
        self._ingestor = ingestor
        self._mappings = mappings
        self._store = store
        self._routes = routes
        self._hooks = hooks or NoHooks()
        self._on_written = on_written
        self._connector_meta = connector_meta or {}
        # One writer at a time: duplicate detection reads what the previous envelope wrote.
        self._lock = asyncio.Lock()

    def mapping_for(self, envelope: Envelope) -> CompiledMapping:
        variants = self._mappings.get(envelope.connector)
        if not variants:
            raise ConfigError(f"connector {envelope.connector!r} has no mapping")
        variant = str(envelope.meta.get("variant", DEFAULT_VARIANT))
        found = variants.get(variant) or (variants.get(DEFAULT_VARIANT) if len(variants) == 1 else None)
        if found is None:
            raise ConfigError(f"connector {envelope.connector!r} has no mapping for variant {variant!r}")
        return found

    def _evaluate_and_write(self, mapping: CompiledMapping, envelope: Envelope) -> list[RecordOutcome]:
        # Off the event loop: mapping a 50,000-row file is CPU work, and the store is blocking I/O.
        outcomes = self._ingestor.evaluate(mapping, envelope, self._store.index)
        self._store.write(envelope, outcomes, self._routes)
        return outcomes

    async def __call__(self, envelope: Envelope) -> PublishReceipt:
        return (await self.publish(envelope)).receipt

    async def publish(self, envelope: Envelope) -> PublishResult:
        configured = self._connector_meta.get(envelope.connector)
        if configured:  # configured per connector (e.g. the providing unit); what the source sent wins
            envelope = replace(envelope, meta={**configured, **envelope.meta})
        mapping = self.mapping_for(envelope)
        self._hooks.envelope_received(envelope.connector)
        async with self._lock:
            try:
                outcomes = await asyncio.to_thread(self._evaluate_and_write, mapping, envelope)
            except StoreUnavailable:
                self._hooks.store_write_failed(envelope.connector)
                raise
        if self._on_written is not None and any(o.status == "accepted" for o in outcomes):
            self._on_written()
        counts = {"accepted": 0, "rejected": 0, "duplicate": 0}
        for outcome in outcomes:
            counts[outcome.status] += 1
            self._hooks.record_outcome(envelope.connector, outcome.kind, outcome.status,
                                       [e.code for e in outcome.errors])
        receipt = PublishReceipt(envelope_id=envelope.envelope_id, **counts,
                                 records=tuple(_record_receipt(o) for o in outcomes))
        return PublishResult(receipt=receipt, outcomes=outcomes)
