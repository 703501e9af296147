"""The journey of every record (全过程留痕): received, mapped, queued, each attempt, each receipt.

Append-only. ``detail`` must hold no personal information in clear (it is shown to operators).

Ingest stores an accepted record's "queued" steps inside its "accepted" step (``QUEUED``: the
adapters, in order): one row per record instead of one more per adapter, whose insert and index
entries cost a tenth of the ingest write with one adapter. Every read unfolds them into the
"queued" steps they stand for, as if written one by one (same time, envelope and order; no detail).

Delivery on the SQL outbox writes one "delivered" step per batch and receipt (record_id NULL),
which the delivered outbox rows point to (``outbox.step_id``); reads give it to each of those
records as its own (``delivered_steps``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, RowMapping, select, tuple_

from gateway.stores.bulk import BulkValues, insert_rows
from gateway.stores.db import translate_errors
from gateway.stores.schema import accepted_records, journeys, outbox
from gateway.stores.sql_outbox import outbox_adapters

QUEUED = "queued"
"""Key of an "accepted" step's detail: the adapters the record was queued for, in order."""

JourneyEvent = Literal[
    "received", "mapped", "rejected", "accepted", "duplicate", "queued",
    "attempted", "delivered", "retried", "failed", "remote_rejected", "dead", "redriven",
]


@dataclass(frozen=True, slots=True)
class JourneyRow:
    """One step of a record's journey. ``record_id`` may be None for envelope-level events."""

    record_id: str | None
    event: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    envelope_id: str | None = None
    target: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JourneyEntry:
    id: int
    record_id: str | None
    envelope_id: str | None
    event: str
    target: str | None
    detail: dict[str, Any] | None
    at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> JourneyEntry:
        return cls(id=row["id"], record_id=row["record_id"], envelope_id=row["envelope_id"],
                   event=row["event"], target=row["target"], detail=row["detail"], at=row["at"])

    def unfolded(self) -> list[JourneyEntry]:
        """This step, and the "queued" steps stored inside it (see ``QUEUED``)."""
        targets = queued_targets(self.event, self.detail)
        if not targets:
            return [self]
        detail = {key: value for key, value in (self.detail or {}).items() if key != QUEUED}
        return [replace(self, detail=detail),
                *(replace(self, event="queued", target=target, detail=None) for target in targets)]


def queued_targets(event: str, detail: Any) -> list[str]:
    """The adapters an "accepted" step says its record was queued for (none for any other step)."""
    if event != "accepted" or not isinstance(detail, dict):
        return []
    targets = detail.get(QUEUED)
    return [str(t) for t in targets] if isinstance(targets, list) else []


JOURNEY_COLUMNS = ("record_id", "envelope_id", "event", "target", "detail", "at")


def insert_journeys(conn: Connection, rows: Sequence[JourneyRow], values: BulkValues | None = None) -> None:
    if rows:
        v = values or BulkValues.of(conn, None)
        insert_rows(conn, journeys, JOURNEY_COLUMNS, [
            (r.record_id, r.envelope_id, r.event, r.target, v.json(r.detail), v.ts(r.at)) for r in rows])


def insert_journey_values(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Steps encoded already (``JOURNEY_COLUMNS``, see ``BulkValues``), in the order they happened."""
    insert_rows(conn, journeys, JOURNEY_COLUMNS, rows)


def accepted_steps(conn: Connection, condition: Any) -> list[JourneyEntry]:
    """The "accepted" steps kept in accepted_records rows (``condition`` on that table: a record, an
    envelope), unfolded; ``id`` 0: they have none of their own."""
    a = accepted_records.c
    stmt = select(a.record_id, a.envelope_id, a.location, a.queued, a.accepted_at).where(
        condition, a.envelope_id.is_not(None))
    out: list[JourneyEntry] = []
    for row in conn.execute(stmt):
        detail: dict[str, Any] = {"location": row.location, "errors": []}
        if row.queued:
            detail[QUEUED] = row.queued
        out += JourneyEntry(id=0, record_id=row.record_id, envelope_id=row.envelope_id, event="accepted",
                            target=None, detail=detail, at=row.accepted_at).unfolded()
    return out


def delivered_steps(conn: Connection, record_ids: Collection[str]) -> list[tuple[str, JourneyEntry]]:
    """(record id, step) for every shared "delivered" step (``outbox.step_id``) of the given
    records, looked up on each adapter of the outbox (its (adapter, record_id) index; one on
    record_id alone would cost every ingest one more entry)."""
    if not record_ids:
        return []
    pairs = [(adapter, record_id) for adapter in outbox_adapters(conn) for record_id in record_ids]
    if not pairs:
        return []
    o, j = outbox.c, journeys.c
    stmt = (select(o.record_id, j.id, j.event, j.target, j.detail, j.at)
            .join_from(outbox, journeys, j.id == o.step_id)
            .where(tuple_(o.adapter, o.record_id).in_(pairs)))
    return [(row.record_id, JourneyEntry(id=row.id, record_id=row.record_id, envelope_id=None, event=row.event,
                                         target=row.target, detail=row.detail, at=row.at))
            for row in conn.execute(stmt)]


class JourneyLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, record_id: str | None, event: str, *, envelope_id: str | None = None,
               target: str | None = None, detail: Mapping[str, Any] | None = None,
               at: datetime | None = None) -> None:
        row = JourneyRow(record_id=record_id, event=event, at=at or datetime.now(UTC),
                         envelope_id=envelope_id, target=target, detail=detail)
        self.append_many([row])

    def append_many(self, rows: Sequence[JourneyRow]) -> None:
        with translate_errors("recording journeys"), self._engine.begin() as conn:
            insert_journeys(conn, rows)

    def for_record(self, record_id: str) -> list[JourneyEntry]:
        """The record's steps in the order they happened, with those kept elsewhere (its "accepted"
        step in its accepted_records row, shared "delivered" steps)."""
        with translate_errors("reading journeys"), self._engine.connect() as conn:
            return _in_order(self._rows(conn, journeys.c.record_id == record_id)
                             + accepted_steps(conn, accepted_records.c.record_id == record_id)
                             + [step for _record, step in delivered_steps(conn, [record_id])])

    def for_envelope(self, envelope_id: str) -> list[JourneyEntry]:
        """The envelope's steps (its own and its records' ingest steps) in the order they happened."""
        with translate_errors("reading journeys"), self._engine.connect() as conn:
            return _in_order(self._rows(conn, journeys.c.envelope_id == envelope_id)
                             + accepted_steps(conn, accepted_records.c.envelope_id == envelope_id))

    @staticmethod
    def _rows(conn: Connection, condition: Any) -> list[JourneyEntry]:
        stmt = select(journeys).where(condition)
        return [step for r in conn.execute(stmt).mappings() for step in JourneyEntry.from_row(r).unfolded()]


def _in_order(steps: list[JourneyEntry]) -> list[JourneyEntry]:
    """By time; at one moment, journeys rows in the order written and steps kept elsewhere (id 0)
    first (a stable sort keeps a step's unfolded "queued" ones after it)."""
    return sorted(steps, key=lambda s: (s.at, s.id))
