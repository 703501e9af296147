"""A target's later verdicts on delivered records (the data centre's ``ex_feedback``) as rejections.

Some targets take a record first and check it later: the data centre writes one feedback row per
checked exchange row. An adapter that has such a source offers ``feedback_source()``; the runtime
runs one ``FeedbackIntake`` per such adapter. Each poll reads the verdicts after the stored cursor,
looks every rejected record up among the accepted records, and writes, in one transaction, a
rejection for the department that provided it (due 5 working days after the check), a journey step,
and the new cursor: a crash before the commit re-reads the same page, after it nothing is repeated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select, update

from gateway.errors import TransientError
from gateway.stores.db import translate_errors
from gateway.stores.journeys import JourneyRow, insert_journeys
from gateway.stores.records import StoredRecord, find_accepted, insert_ignoring_conflicts
from gateway.stores.rejections import RejectedRow, WorkingDays, rejection_values
from gateway.stores.schema import connector_state, rejections
from mapping.record_id import business_key
from mapping.standard import load_standard

log = logging.getLogger(__name__)

CURSOR_KEY = "feedback_cursor"


class TargetRejection(Protocol):
    """One record the target rejected after taking it (``adapters.data_centre.feedback``'s shape)."""

    @property
    def record_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def checked_at(self) -> datetime: ...
    @property
    def findings(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def source_record_id(self) -> str | None: ...


class FeedbackPage(Protocol):
    @property
    def cursor(self) -> int: ...
    @property
    def rejections(self) -> Sequence[TargetRejection]: ...


class FeedbackSource(Protocol):
    interval_s: float

    async def poll(self, after: int) -> FeedbackPage: ...


def state_key(adapter_id: str) -> str:
    """Where the cursor lives in ``connector_state`` (one namespace per adapter, apart from connectors)."""
    return f"adapter:{adapter_id}"


class FeedbackIntake:
    def __init__(self, adapter_id: str, source: FeedbackSource, engine: Engine, calendar: WorkingDays) -> None:
        self.adapter_id = adapter_id
        self._source = source
        self._engine = engine
        self._calendar = calendar

    async def run(self) -> None:
        """Poll every ``interval_s``; an unreachable target is logged and polled again next time."""
        while True:
            try:
                await self.poll_once()
            except TransientError as exc:
                log.warning("feedback of %s: %s", self.adapter_id, exc)
            await asyncio.sleep(self._source.interval_s)

    async def poll_once(self) -> int:
        """Read the verdicts after the cursor; returns how many rejections were recorded."""
        cursor = await asyncio.to_thread(self._cursor)
        page = await self._source.poll(cursor)
        if page.cursor == cursor:
            return 0
        return await asyncio.to_thread(self._record, cursor, page)

    def _cursor(self) -> int:
        stmt = select(connector_state.c.value).where(connector_state.c.connector == state_key(self.adapter_id),
                                                     connector_state.c.key == CURSOR_KEY)
        with translate_errors("reading a feedback cursor"), self._engine.connect() as conn:
            value = conn.execute(stmt).scalar_one_or_none()
        return _position(value)

    def _record(self, cursor: int, page: FeedbackPage) -> int:
        accepted = find_accepted(self._engine, [r.record_id for r in page.rejections])
        rows = [self._rejected_row(r, accepted.get(r.record_id)) for r in page.rejections]
        now = datetime.now(UTC)
        steps = [JourneyRow(record_id=r.record_id, event="remote_rejected", at=now, target=self.adapter_id,
                            detail={"codes": [f.get("code") for f in r.findings], "checked_at": r.checked_at})
                 for r in page.rejections]
        with translate_errors("recording a target's feedback"), self._engine.begin() as conn:
            if not self._claim_cursor(conn, cursor, now):
                return 0  # another instance recorded this page first
            values = rejection_values(conn, rows, self._calendar, None)
            for value, rejection in zip(values, page.rejections, strict=True):
                stored = accepted.get(rejection.record_id)
                if stored is not None:  # the accepted store's own hash, so the corrected record resolves it
                    value["business_key_hash"] = stored.business_key_hash
            if values:
                conn.execute(rejections.insert(), values)
            insert_journeys(conn, steps)
            self._save_cursor(conn, page.cursor, now)
        if len(accepted) < len(rows):
            log.warning("feedback of %s: %d rejected records unknown to the gateway", self.adapter_id,
                        len(rows) - len(accepted))
        return len(rows)

    def _rejected_row(self, rejection: TargetRejection, stored: StoredRecord | None) -> RejectedRow:
        return RejectedRow(
            kind=rejection.kind, connector=stored.connector if stored else self.adapter_id,
            rejected_at=rejection.checked_at, errors=list(rejection.findings), business_key=_key(stored),
            department=stored.department if stored else None, record_id=rejection.record_id,
            source_record_id=(stored.source_record_id if stored else None) or rejection.source_record_id,
            raw_payload=dict(stored.record) if stored else None, target=self.adapter_id)

    def _claim_cursor(self, conn: Connection, cursor: int, now: datetime) -> bool:
        """Lock the cursor row (created at 0 when absent) and check it is still ``cursor``: gateways
        sharing the store may poll together, and only one of them records a page."""
        owner = state_key(self.adapter_id)
        conn.execute(insert_ignoring_conflicts(conn, connector_state, ["connector", "key"]).values(
            connector=owner, key=CURSOR_KEY, value={"after": 0}, updated_at=now))
        stored = conn.execute(select(connector_state.c.value).where(
            connector_state.c.connector == owner, connector_state.c.key == CURSOR_KEY).with_for_update()).scalar_one()
        return _position(stored) == cursor

    def _save_cursor(self, conn: Connection, cursor: int, now: datetime) -> None:
        conn.execute(update(connector_state).where(connector_state.c.connector == state_key(self.adapter_id),
                                                   connector_state.c.key == CURSOR_KEY).values(
            value={"after": cursor}, updated_at=now))


def _key(stored: StoredRecord | None) -> tuple[str, ...] | None:
    """The record's business key, so that a later verdict on the same key supersedes this one."""
    if stored is None:
        return None
    spec = load_standard(str(stored.record.get("standard_version") or "1.0")).kinds.get(stored.kind)
    return None if spec is None else business_key(spec, stored.record)


def _position(value: Any) -> int:
    # An object, not a bare number: SQLite's JSON column has numeric affinity and would keep 0 as an integer.
    return int(value["after"]) if isinstance(value, dict) else 0
