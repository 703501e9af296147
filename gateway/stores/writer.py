"""One transaction per ingest batch: accepted records, rejections, journeys and outbox rows together.

"Durable write before acknowledge": when ``write`` returns, everything is committed; when it
raises ``StoreUnavailable``, nothing is, and the connector must not acknowledge its source.
Accepting a record resolves the open rejections of its business key in the same transaction.
Re-writing the same batch (the source re-sent it after a lost acknowledgement) adds no duplicate
accepted record nor outbox row.

``IngestBatch`` is the hot path: the publisher adds an envelope's outcomes to it one by one, and
each becomes the driver's tuple for its table at once, in the order the rows are inserted (outbox
ids give the delivery order, journey ids the order of a record's steps). A record is serialised
and its key hashed once; no row object is built on the way (building one per table and record,
then a tuple from it, cost more than the inserts).

A record accepted in the batch is stored once: its outbox rows carry no payload (NULL), and the
outbox reads the accepted row's record when it hands the item out. Writing the 1 kB record twice
doubled the bytes of every write, and of every claim and settle that rewrites the outbox row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from gateway.stores.bulk import BulkValues
from gateway.stores.db import translate_errors
from gateway.stores.journeys import JourneyRow, insert_journey_values
from gateway.stores.keys import BusinessKey, plain_key
from gateway.stores.outbox import OutboxRow, insert_outbox_values
from gateway.stores.records import AcceptedRow, insert_accepted_values
from gateway.stores.rejections import RejectedRow, WorkingDays, insert_rejections, resolve_hashes


@dataclass(frozen=True, slots=True)
class AcceptedStep:
    """A record's "accepted" journey step, kept in its accepted_records row: the envelope, where in
    it, and the adapters it was queued for (a list shared by the batch's records of one kind: it is
    serialised once)."""

    envelope_id: str
    location: str | None
    queued: list[str]


class IngestBatch:
    """The rows of one ingest write, encoded for one dialect as they are added."""

    def __init__(self, dialect: str, secret: bytes | None = None) -> None:
        self.values = BulkValues(dialect, secret)
        self.accepted: list[tuple[Any, ...]] = []
        self.outbox: list[tuple[Any, ...]] = []
        self.journeys: list[tuple[Any, ...]] = []
        self.rejected: list[RejectedRow] = []
        # (kind, business key hash) -> (record id, accepted at) of the last record accepted for it
        self.resolutions: dict[tuple[str, str], tuple[str, datetime]] = {}
        # record id -> the record accepted for it in this batch (an outbox row of it needs no copy)
        self._records: dict[str, Mapping[str, Any]] = {}
        self._null = self.values.json_once(None)

    def step(self, record_id: str | None, event: str, at: datetime, *, envelope_id: str | None = None,
             target: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        """A journey step; ``detail`` is serialised here, not memoised (each step has its own)."""
        v = self.values
        self.journeys.append((record_id, envelope_id, event, target,
                              self._null if detail is None else v.json_once(detail), v.ts(at)))

    def accept(self, record_id: str, kind: str, business_key: BusinessKey, record: Mapping[str, Any], *,
               connector: str, accepted_at: datetime, department: str | None = None,
               source_record_id: str | None = None, step: AcceptedStep | None = None) -> str:
        """An accepted record; returns its business key hash (for ``queue``). With ``step``, the
        row is also the record's "accepted" journey step (``journeys.accepted_steps``)."""
        v = self.values
        digest = v.key_hash(kind, business_key)
        here = (None, None, None) if step is None else (step.envelope_id, step.location, v.json(step.queued))
        self.accepted.append((record_id, kind, digest, plain_key(kind, business_key),
                              str(record.get("operation", "i")), source_record_id, department, connector,
                              v.json_once(record), v.ts(accepted_at), *here))
        self.resolutions[(kind, digest)] = (record_id, accepted_at)
        self._records[record_id] = record
        return digest

    def queue(self, adapter: str, record_id: str, kind: str, payload: Mapping[str, Any], enqueued_at: datetime, *,
              department: str | None = None, business_key_hash: str | None = None) -> None:
        """An outbox row; without a payload when it is the record accepted for ``record_id`` in this
        batch (the outbox reads that one), else ``payload`` serialised once for every adapter."""
        v = self.values
        at = v.ts(enqueued_at)
        body = None if self._records.get(record_id) is payload else v.json(payload)
        self.outbox.append((adapter, record_id, kind, department, business_key_hash, body,
                            at, at, 0, "pending", at))

    def reject(self, row: RejectedRow) -> None:
        self.rejected.append(row)

    def add_accepted(self, row: AcceptedRow) -> None:
        self.accept(row.record_id, row.kind, row.business_key, row.record, connector=row.connector,
                    accepted_at=row.accepted_at, department=row.department, source_record_id=row.source_record_id)

    def add_queued(self, row: OutboxRow) -> None:
        digest = None if row.business_key is None else self.values.key_hash(row.kind, row.business_key)
        self.queue(row.adapter, row.record_id, row.kind, row.payload, row.enqueued_at, department=row.department,
                   business_key_hash=digest)

    def add_step(self, row: JourneyRow) -> None:
        self.step(row.record_id, row.event, row.at, envelope_id=row.envelope_id, target=row.target,
                  detail=row.detail)


class IngestWriter:
    def __init__(self, engine: Engine, calendar: WorkingDays, *, key_secret: bytes | None = None) -> None:
        self._engine = engine
        self._calendar = calendar
        self._secret = key_secret

    def batch(self) -> IngestBatch:
        """An empty batch for this writer's database, to fill and hand to ``write_batch``."""
        return IngestBatch(self._engine.dialect.name, self._secret)

    def write(self, accepted: Sequence[AcceptedRow], rejected: Sequence[RejectedRow],
              journeys: Sequence[JourneyRow], outbox: Sequence[OutboxRow]) -> None:
        batch = self.batch()
        for row in accepted:
            batch.add_accepted(row)
        for rejection in rejected:
            batch.reject(rejection)
        for step in journeys:
            batch.add_step(step)
        for queued in outbox:
            batch.add_queued(queued)
        self.write_batch(batch)

    def write_batch(self, batch: IngestBatch) -> None:
        """Everything in ``batch``, in one transaction."""
        with translate_errors("writing an ingest batch"), self._engine.begin() as conn:
            insert_accepted_values(conn, batch.accepted)
            resolve_hashes(conn, batch.resolutions)
            insert_rejections(conn, batch.rejected, self._calendar, self._secret, batch.values)
            insert_journey_values(conn, batch.journeys)
            insert_outbox_values(conn, batch.outbox)
