"""Operating delivery: dead letters (list, inspect, redrive, discard), rejections, a record's journey.

Shared by the admin API (``gateway.api.routes.ops``) and the CLI (``sgw dead-letters``...), on
either outbox backend. Every redrive and discard is written to the record's journey with who did
it and why, and to the append-only audit log with the dead letter's state before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from gateway.audit import AuditTrail, NoAudit
from gateway.errors import ConfigError
from gateway.stores.journeys import JourneyEntry, JourneyLog, JourneyRow
from gateway.stores.outbox import DeadLetterFilter, ItemId, Outbox, OutboxItem
from gateway.stores.rejections import Rejection, RejectionsLedger, RejectionStatus

MAX_BULK = 10_000


class OpsStore(Protocol):
    @property
    def outbox(self) -> Outbox: ...
    @property
    def journeys(self) -> JourneyLog: ...
    @property
    def rejections(self) -> RejectionsLedger: ...


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    item: OutboxItem
    journey: list[JourneyEntry]

    def as_dict(self, *, with_record: bool = True) -> dict[str, Any]:
        out = dead_letter_dict(self.item, with_record=with_record)
        out["journey"] = [journey_dict(j) for j in self.journey]
        return out


def dead_letter_dict(item: OutboxItem, *, with_record: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(item.id), "adapter": item.adapter, "record_id": item.record_id,
                           "kind": item.kind, "department": item.department, "attempts": item.attempts,
                           "error": item.last_error, "enqueued_at": item.enqueued_at.isoformat()}
    if with_record:
        out["record"] = item.payload
    return out


def journey_dict(entry: JourneyEntry) -> dict[str, Any]:
    return {"event": entry.event, "target": entry.target, "at": entry.at.isoformat(), "detail": entry.detail,
            "envelope_id": entry.envelope_id}


def rejection_dict(r: Rejection) -> dict[str, Any]:
    return {"id": r.id, "record_id": r.record_id, "kind": r.kind, "department": r.department,
            "connector": r.connector, "target": r.target, "status": r.status,
            "rejected_at": r.rejected_at.isoformat(), "due_on": r.due_on.isoformat(),
            "resolved_by_record_id": r.resolved_by_record_id, "errors": r.errors, "location": r.location}


def audit_state(item: OutboxItem) -> dict[str, Any]:
    """A dead letter as the audit log keeps it (without the record, which may hold personal data)."""
    return {"state": item.state, "adapter": item.adapter, "record_id": item.record_id, "kind": item.kind,
            "department": item.department, "attempts": item.attempts, "error": item.last_error}


class DeadLetterOps:
    def __init__(self, store: OpsStore, *, on_redriven: Callable[[], None] | None = None,
                 audit: AuditTrail | None = None) -> None:
        self._store = store
        self._on_redriven = on_redriven
        self._audit: AuditTrail = audit or NoAudit()

    def find(self, where: DeadLetterFilter, limit: int = 100) -> list[OutboxItem]:
        return self._store.outbox.dead_letters(where, limit)

    def show(self, item_id: ItemId) -> DeadLetterView | None:
        item = self._store.outbox.get(item_id)
        if item is None or item.state != "dead":
            return None
        return DeadLetterView(item, self._store.journeys.for_record(item.record_id))

    def redrive(self, ids: Sequence[ItemId], *, actor: str) -> int:
        """Queue the dead letters again (fresh attempts); returns how many were redriven."""
        items = [i for i in map(self._store.outbox.get, ids) if i is not None and i.state == "dead"]
        return self._redrive(items, actor)

    def redrive_matching(self, where: DeadLetterFilter, *, actor: str) -> int:
        if where == DeadLetterFilter():
            raise ConfigError("a bulk redrive needs a filter (adapter, kind, department, record or error)")
        return self._redrive(self.find(where, MAX_BULK), actor)

    def _redrive(self, items: Sequence[OutboxItem], actor: str) -> int:
        if not items:
            return 0
        now = datetime.now(UTC)
        new_ids = self._store.outbox.redrive([i.id for i in items], now)
        self._store.journeys.append_many([
            JourneyRow(record_id=i.record_id, event="redriven", at=now, target=i.adapter,
                       detail={"by": actor, "dead_letter": str(i.id), "error": i.last_error})
            for i in items])
        for i in items:
            self._audit.record(actor, "deadletter.redrive", f"deadletter:{i.id}", before=audit_state(i),
                               after={"state": "pending", "attempts": 0})
        if self._on_redriven is not None:
            self._on_redriven()
        return len(new_ids)

    def discard(self, ids: Sequence[ItemId], *, reason: str, actor: str) -> int:
        if not reason.strip():
            raise ConfigError("a discard needs a reason")
        items = [i for i in map(self._store.outbox.get, ids) if i is not None and i.state == "dead"]
        count = self._store.outbox.discard([i.id for i in items], reason)
        now = datetime.now(UTC)
        self._store.journeys.append_many([
            JourneyRow(record_id=i.record_id, event="discarded", at=now, target=i.adapter,
                       detail={"by": actor, "reason": reason, "error": i.last_error})
            for i in items])
        for i in items:
            self._audit.record(actor, "deadletter.discard", f"deadletter:{i.id}", before=audit_state(i),
                               after={"state": "discarded", "reason": reason})
        return count

    def rejections(self, department: str | None = None, status: RejectionStatus | None = None,
                   due_before: date | None = None, limit: int = 100) -> list[Rejection]:
        return self._store.rejections.list(department, status, due_before, limit=limit)

    def journey(self, record_id: str) -> list[JourneyEntry]:
        return self._store.journeys.for_record(record_id)
