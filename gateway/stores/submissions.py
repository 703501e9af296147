"""A department's submissions: its records, accepted or rejected, and where each one is now.

Read from the accepted records, the rejections ledger and the journeys; no table of its own.
Records are summarised (kind, ids, outcome, error codes, per-target delivery state), never shown
in full: they may hold personal information.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from gateway.stores.db import translate_errors
from gateway.stores.journeys import accepted_steps, delivered_steps, queued_targets
from gateway.stores.schema import accepted_records, journeys, rejections

DELIVERY_EVENTS = ("queued", "retried", "delivered", "remote_rejected", "dead", "redriven", "discarded")


@dataclass(frozen=True, slots=True)
class Submission:
    record_id: str | None
    kind: str
    connector: str
    source_record_id: str | None
    at: datetime
    outcome: str  # accepted | rejected
    rejection_id: int | None = None
    rejection_status: str | None = None
    error_codes: tuple[str, ...] = ()
    deliveries: dict[str, str] = field(default_factory=dict)  # target -> its last event

    def as_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "kind": self.kind, "connector": self.connector,
                "source_record_id": self.source_record_id, "at": self.at.isoformat(), "outcome": self.outcome,
                "rejection_id": self.rejection_id, "rejection_status": self.rejection_status,
                "error_codes": list(self.error_codes), "deliveries": self.deliveries}


class Submissions:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def recent(self, department: str, *, since: datetime | None = None, limit: int = 50,
               offset: int = 0) -> list[Submission]:
        """Newest first: accepted records and the gateway's rejections of the department."""
        wanted = limit + offset
        a, r = accepted_records.c, rejections.c
        accepted_q = select(a.record_id, a.kind, a.connector, a.source_record_id, a.accepted_at).where(
            a.department == department)
        rejected_q = select(r.id, r.record_id, r.kind, r.connector, r.source_record_id, r.rejected_at, r.status,
                            r.errors).where(r.department == department, r.target.is_(None))
        if since is not None:
            accepted_q = accepted_q.where(a.accepted_at >= since)
            rejected_q = rejected_q.where(r.rejected_at >= since)
        with translate_errors("reading submissions"), self._engine.connect() as conn:
            items = [Submission(record_id=row.record_id, kind=row.kind, connector=row.connector,
                                source_record_id=row.source_record_id, at=row.accepted_at, outcome="accepted")
                     for row in conn.execute(accepted_q.order_by(a.accepted_at.desc()).limit(wanted))]
            items += [Submission(record_id=row.record_id, kind=row.kind, connector=row.connector,
                                 source_record_id=row.source_record_id, at=row.rejected_at, outcome="rejected",
                                 rejection_id=int(row.id), rejection_status=row.status,
                                 error_codes=tuple(str(e.get("code")) for e in row.errors or []))
                      for row in conn.execute(rejected_q.order_by(r.rejected_at.desc(), r.id.desc()).limit(wanted))]
            items.sort(key=lambda s: s.at, reverse=True)
            page = items[offset:offset + limit]
            deliveries = self._deliveries(conn, [s.record_id for s in page if s.outcome == "accepted" and s.record_id])
        return [replace(s, deliveries=deliveries.get(s.record_id or "", {})) for s in page]

    @staticmethod
    def _deliveries(conn: Any, record_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        if not record_ids:
            return {}
        j = journeys.c
        # "accepted" too: ingest stores a record's "queued" steps inside it (journeys.QUEUED)
        stmt = (select(j.record_id, j.target, j.event, j.detail).where(
            j.record_id.in_(list(record_ids)), j.event.in_((*DELIVERY_EVENTS, "accepted"))).order_by(j.at, j.id))
        out: dict[str, dict[str, str]] = {}
        for step in accepted_steps(conn, accepted_records.c.record_id.in_(list(record_ids))):
            if step.event == "queued":  # ingest's steps come first
                out.setdefault(str(step.record_id), {})[str(step.target)] = "queued"
        for record_id, target, event, detail in conn.execute(stmt):
            for queued in queued_targets(event, detail):
                out.setdefault(record_id, {})[queued] = "queued"
            if target is not None and event != "accepted":
                out.setdefault(record_id, {})[target] = event
        for record_id, step in delivered_steps(conn, record_ids):  # delivered is final: after any retry
            out.setdefault(record_id, {})[str(step.target)] = step.event
        return out

    def owner_of(self, record_id: str) -> str | None:
        """The department that provided the record (None: unknown record or no department)."""
        with translate_errors("reading a record's department"), self._engine.connect() as conn:
            owner = conn.execute(select(accepted_records.c.department)
                                 .where(accepted_records.c.record_id == record_id)).scalar()
            if owner is None:
                owner = conn.execute(select(rejections.c.department).where(rejections.c.record_id == record_id)
                                     .limit(1)).scalar()
        return None if owner is None else str(owner)

