"""The SQL stores bound to ingest and delivery: what "written durably" means in the embedded run.

Ingest: one transaction per envelope (accepted records, their outbox rows for every routed
adapter, rejections with raw payloads, journeys). Delivery: claim from the outbox, then settle each
result (delivered, rejected by the target -> the providing department's rejections, retried
later, or dead-lettered) together with its journey.

With a Redis outbox, "durable before acknowledge" still means the SQL transaction: the outbox
rows are committed with the ledger, records and journeys (a transactional outbox), so the source
is acknowledged once that commit returns, whether Redis is up or not. The SQL rows are then
handed on to the Redis streams (``XADD`` guarded by ``SET NX`` on the record id, so a hand-over
repeated after a crash adds nothing) and deleted. ``relay()`` runs after every write, at start and
periodically, always oldest row first, so rows committed but not yet in a stream (Redis down, or
the process killed between the commit and the hand-over) reach it in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, text, update

from adapters.base import DeliveryResult
from gateway.envelope import Envelope
from gateway.errors import StoreUnavailable
from gateway.ingest import RecordOutcome
from gateway.stores.bulk import BulkValues, insert_row_id
from gateway.stores.db import translate_errors
from gateway.stores.journeys import JOURNEY_COLUMNS, QUEUED, JourneyLog, insert_journey_values
from gateway.stores.outbox import DEFAULT_LEASE_S, Outbox, OutboxItem, Settlement
from gateway.stores.records import AcceptedRecords
from gateway.stores.redis_outbox import RedisOutbox
from gateway.stores.rejections import RejectedRow, RejectionsLedger, WorkingDays
from gateway.stores.schema import accepted_records, journeys, outbox, rejections
from gateway.stores.sql_outbox import SqlOutbox, outbox_adapters
from gateway.stores.writer import AcceptedStep, IngestWriter

log = logging.getLogger(__name__)
RELAY_BATCH = 1000


class SqlGatewayStore:
    def __init__(self, engine: Engine, calendar: WorkingDays, *, outbox: Outbox | None = None,
                 lease_s: float = DEFAULT_LEASE_S) -> None:
        self._engine = engine
        self._writer = IngestWriter(engine, calendar)
        self.records = AcceptedRecords(engine)
        self.rejections = RejectionsLedger(engine, calendar)
        self.sql_outbox = SqlOutbox(engine, lease_s=lease_s)
        self.outbox: Outbox = outbox or self.sql_outbox
        self._redis = outbox if isinstance(outbox, RedisOutbox) else None
        self._relay_lock = threading.Lock()
        self.journeys = JourneyLog(engine)

    @property
    def index(self) -> AcceptedRecords:
        return self.records

    # -- ingest ---------------------------------------------------------------------------------

    def write(self, envelope: Envelope, outcomes: Sequence[RecordOutcome],
              routes: Callable[[str], tuple[str, ...]]) -> None:
        now = datetime.now(UTC)
        batch = self._writer.batch()
        envelope_id, connector, department = envelope.envelope_id, envelope.connector, envelope.department
        batch.step(None, "received", envelope.received_at, envelope_id=envelope_id,
                   detail={"connector": connector, "records": len(outcomes)})
        routed: dict[str, list[str]] = {}
        variant = envelope.meta.get("variant")  # kept with a rejection: its resubmission is mapped alike
        for o in outcomes:
            source_record_id = o.record.get("source_record_id")
            adapters: list[str] = []
            if o.status == "rejected":
                batch.reject(RejectedRow(kind=o.kind, connector=connector, rejected_at=now,
                                         errors=o.errors, warnings=o.warnings, business_key=o.business_key,
                                         department=department, source_record_id=source_record_id,
                                         record_id=o.record_id, raw_payload=o.source, location=o.location,
                                         variant=variant if isinstance(variant, str) else None))
            elif o.status == "accepted" and o.record_id is not None:
                known = routed.get(o.kind)
                adapters = routed[o.kind] = list(routes(o.kind)) if known is None else known
                # Its "accepted" step (with the "queued" ones, journeys.QUEUED) goes in its accepted_records
                # row; one with error findings (none: they reject it) would keep a row of its own naming them.
                step = None if o.errors else AcceptedStep(envelope_id, o.location, adapters)
                key_hash = batch.accept(o.record_id, o.kind, o.business_key, o.record, connector=connector,
                                        accepted_at=now, department=department, source_record_id=source_record_id,
                                        step=step)
                for adapter in adapters:
                    batch.queue(adapter, o.record_id, o.kind, o.record, envelope.received_at,
                                department=department, business_key_hash=key_hash)
                if step is not None:
                    continue
            detail: dict[str, Any] = {"location": o.location, "errors": [e.code for e in o.errors]}
            if adapters:
                detail[QUEUED] = adapters
            batch.step(o.record_id, o.status, now, envelope_id=envelope_id, detail=detail)
        self._writer.write_batch(batch)
        if self._redis is not None and batch.outbox:
            try:
                self.relay()
            except StoreUnavailable as exc:  # committed: the periodic relay hands it on later
                log.warning("outbox rows kept for the relay: %s", exc)

    def relay(self) -> int:
        """Hand committed outbox rows on to the Redis outbox, oldest first; returns how many."""
        if self._redis is None:
            return 0
        moved = 0
        with self._relay_lock:
            while rows := self.sql_outbox.pending_rows(RELAY_BATCH):
                self._redis.put_rows(rows)
                self.sql_outbox.forget(rows)
                moved += len(rows)
                if len(rows) < RELAY_BATCH:
                    break
        return moved

    # -- delivery -------------------------------------------------------------------------------

    def claim(self, adapter: str, limit: int, now: datetime) -> list[OutboxItem]:
        return self.outbox.claim(adapter, limit, now)

    def settle(self, adapter: str, items: Sequence[Any], results: Sequence[DeliveryResult], now: datetime,
               retry_at: Callable[[Any, DeliveryResult], datetime]) -> None:
        """Each result with its journey step. On the SQL outbox the outbox changes (one statement per
        kind of outcome) and the steps are one transaction; a target's rejection is written before,
        in its own (it goes to the department's rejections whatever happens to the delivery).
        The steps are encoded here, as ``insert_journey_values`` takes them: a batch's thousand
        ``JourneyRow`` objects cost more than the rest of the settling done in Python. A batch's
        results mostly share their detail (a receipt per table or per POST, the first attempt):
        each detail is encoded once (``_Details``).

        On the SQL outbox the delivered items of one detail share one "delivered" step (record_id
        NULL) that their rows point to (``outbox.step_id``; ``JourneyLog`` reads it as each record's
        own): a row per record cost an entry at a random place of ix_journeys_record, the largest part
        of settling once the store outgrew the page cache. On Redis there is no SQL row to point
        from, so each record keeps its own step there."""
        values = BulkValues(self._engine.dialect.name, None)
        at = values.ts(now)
        details = _Details(values)
        steps: list[tuple[Any, ...]] = []
        settlement = Settlement()
        on_sql = self.outbox is self.sql_outbox
        delivered: dict[str | bytes, list[Any]] = {}  # detail -> items delivered with it (SQL outbox)
        for item, result in zip(items, results, strict=True):
            status = result.status
            detail = details.of(result, item.attempts)
            if status == "delivered":
                if on_sql:
                    delivered.setdefault(detail, []).append(item.id)
                    continue
                settlement.done.append(item.id)
                event = "delivered"
            elif status == "rejected":
                # The target says the data is wrong: the providing department's to fix, not ops'.
                settlement.done.append(item.id)
                self._target_rejection(item, RejectedRow(
                    kind=item.kind, connector=str(item.payload.get("connector", "")), rejected_at=now,
                    errors=[{"code": result.code or "TARGET_REJECTED", "field": _target_field(result),
                             "severity": "error",
                             "location": adapter, "message_zh": f"{adapter} 拒收：{result.message}",
                             "message_en": f"rejected by {adapter}: {result.message}"}],
                    department=item.department, source_record_id=item.payload.get("source_record_id"),
                    record_id=item.record_id, raw_payload=item.payload, target=adapter))
                event = "remote_rejected"
            elif status == "retry":
                settlement.retry(item.id, retry_at(item, result), result.message or "retry")
                event = "retried"
            else:
                settlement.bury(item.id, result.message or "failed")
                event = "dead"
            # JOURNEY_COLUMNS
            steps.append((item.record_id, None, event, adapter, detail, at))
        if not on_sql:  # Redis: its changes first, then the steps
            settlement.apply(self.outbox)
        with translate_errors("settling deliveries"), self._engine.begin() as conn:
            if on_sql:
                self.sql_outbox.settle(conn, settlement)
                for detail, ids in delivered.items():
                    shared = insert_row_id(conn, journeys, JOURNEY_COLUMNS, (None, None, "delivered", adapter,
                                                                             detail, at))
                    self.sql_outbox.delivered(conn, ids, shared, now)
            insert_journey_values(conn, steps)

    def _target_rejection(self, item: Any, row: RejectedRow) -> None:
        rejection_id = self.rejections.add(row)
        key = getattr(item, "business_key_hash", None)
        if key is not None:  # so that the corrected record, once accepted, resolves it
            with translate_errors("keying a rejection"), self._engine.begin() as conn:
                conn.execute(update(rejections).where(rejections.c.id == rejection_id)
                             .values(business_key_hash=key))

    def depth(self) -> int:
        """Undelivered outbox items of every adapter (pending, scheduled, in flight)."""
        with self._engine.connect() as conn:
            adapters = outbox_adapters(conn)
        if self._redis is not None:
            unrelayed = len(self.sql_outbox.pending_rows(1))
            return unrelayed + sum(self.outbox.depth(a) for a in self._redis.adapters())
        return sum(self.outbox.depth(a) for a in adapters)

    # -- ops ------------------------------------------------------------------------------------

    def ping(self) -> bool:
        try:
            with translate_errors("ping"), self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except StoreUnavailable:
            return False
        return True

    def ready_depth(self) -> int:
        """Outbox entries that could be delivered now (pending, due)."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.state == "pending", outbox.c.next_attempt_at <= datetime.now(UTC))).scalar_one())

    def totals(self) -> dict[str, int]:
        """Ingest outcomes so far, from their journey steps (an "accepted" one may be kept in its record's row)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(journeys.c.event, func.count()).where(
                journeys.c.event.in_(("accepted", "rejected", "duplicate"))).group_by(journeys.c.event)).all()
            kept = conn.execute(select(func.count()).select_from(accepted_records).where(
                accepted_records.c.envelope_id.is_not(None))).scalar_one()
        counts = {"accepted": 0, "rejected": 0, "duplicate": 0}
        counts.update({str(event): int(n) for event, n in rows})
        counts["accepted"] += int(kept)
        return counts

    def recent_rejections(self, limit: int) -> list[dict[str, Any]]:
        return [{"connector": r.connector, "due_on": r.due_on, "errors": r.errors}
                for r in self.rejections.list(status="open", limit=limit)]


class _Details:
    """The journey details of one settle call, encoded as the column stores JSON (``BulkValues.json_once``).
    A detail is the result's code, message and receipt with the attempt; adapters make one receipt
    per table or per request, so a batch's results mostly repeat the previous one's detail, which
    is then encoded once (checked by identity: a cache that misses costs nothing)."""

    def __init__(self, values: BulkValues) -> None:
        self._values = values
        self._last: tuple[Any, ...] = (object(),)
        self._encoded: str | bytes = b""

    def of(self, result: DeliveryResult, attempt: int) -> str | bytes:
        last = self._last
        receipt = result.receipt
        if receipt is last[0] and attempt == last[1] and result.code == last[2] and result.message == last[3]:
            return self._encoded
        self._last = (receipt, attempt, result.code, result.message)
        self._encoded = self._values.json_once({"code": result.code, "message": result.message, "receipt": receipt,
                                                "attempt": attempt})
        return self._encoded


def _target_field(result: DeliveryResult) -> str | None:
    """The field a target named in its rejection (receipts carry it as ``field``), if any."""
    field = result.receipt.get("field") if isinstance(result.receipt, Mapping) else None
    return field if isinstance(field, str) and field else None
