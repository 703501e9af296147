"""The data centre's verdicts (``ex_feedback``), read since a cursor, as rejections to record.

The data centre writes one ``ex_feedback`` row per checked exchange row (several when a row has
several problems). ``FeedbackPoller.poll(after)`` reads the rows with ``fb_id > after`` in order
(``limit`` per call, the contract's 1000) and returns a ``FeedbackPage``: the rejected cd_ids,
each with all its findings, the provider read back from the exchange row, and ``cursor`` = the
last fb_id read. The poller keeps no state; the caller stores the cursor.

Wired by ``gateway.target_feedback.FeedbackIntake`` (every ``feedback_interval_s``, 5 min in the
contract), which does in effect:

    page = await poller.poll(cursor)
    for r in page.rejections:          # r.record_id is the gateway's record_id (= cd_id)
        accepted = store.records.get(r.record_id)   # department, business key, payload
        store.rejections.add(RejectedRow(kind=r.kind, connector=..., rejected_at=r.checked_at,
            errors=r.findings, department=accepted.department, record_id=r.record_id,
            source_record_id=r.source_record_id, business_key=accepted.business_key,
            raw_payload=accepted.record, target=adapter_id))
    state.save(cursor=page.cursor)     # only after the rejections were written

``rejected_at = checked_at`` gives the contract's due date (5 working days after the check). A row
the gateway no longer knows still carries ``provider_uscc`` for the ops view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from adapters.data_centre.engine import create_target_engine
from adapters.data_centre.tables import ExchangeTables, exchange_tables
from gateway.errors import TargetUnavailable

if TYPE_CHECKING:
    from adapters.data_centre.adapter import DataCentreConfig

FEEDBACK_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class FeedbackRejection:
    record_id: str
    kind: str
    checked_at: datetime
    findings: tuple[dict[str, Any], ...]
    provider_uscc: str | None = None
    source_record_id: str | None = None
    fb_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedbackPage:
    cursor: int
    rejections: list[FeedbackRejection] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)   # cd_ids the data centre accepted

    @property
    def empty(self) -> bool:
        return not self.rejections and not self.accepted


def finding(code: str, field_name: str | None, message: str | None, location: str) -> dict[str, Any]:
    """A finding in the ledger's shape, from one ex_feedback row."""
    return {"code": code, "field": field_name, "severity": "error", "location": location,
            "message_zh": f"数据中心拒收：{message or code}",
            "message_en": f"rejected by the data centre: {code}" + (f" ({field_name})" if field_name else "")}


class FeedbackPoller:
    def __init__(self, config: DataCentreConfig, *, limit: int = FEEDBACK_LIMIT, location: str = "data_centre",
                 engine: Engine | None = None) -> None:
        self.interval_s = config.feedback_interval_s or 0.0
        self._engine = engine or create_target_engine(config.url.get_secret_value())
        self._owns_engine = engine is None
        self._tables: ExchangeTables = exchange_tables(config.db_schema, config.standard_version)
        self._limit = limit
        self._location = location

    async def poll(self, after: int) -> FeedbackPage:
        return await asyncio.to_thread(self.poll_sync, after)

    async def close(self) -> None:
        if self._owns_engine:
            await asyncio.to_thread(self._engine.dispose)

    def poll_sync(self, after: int) -> FeedbackPage:
        fb = self._tables.feedback
        stmt = select(fb).where(fb.c.fb_id > after).order_by(fb.c.fb_id).limit(self._limit)
        try:
            with self._engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(stmt).mappings()]
                origins = self._origins(conn, [r for r in rows if r["status"] == "rejected"])
        except DBAPIError as exc:
            raise TargetUnavailable(f"数据中心反馈表不可读 / cannot read ex_feedback: {exc.orig}") from exc
        if not rows:
            return FeedbackPage(cursor=after)
        return FeedbackPage(cursor=int(rows[-1]["fb_id"]), rejections=self._rejections(rows, origins),
                            accepted=[str(r["cd_id"]) for r in rows if r["status"] == "accepted"])

    def _rejections(self, rows: Sequence[dict[str, Any]],
                    origins: dict[str, tuple[str | None, str | None]]) -> list[FeedbackRejection]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["status"] == "rejected":
                grouped.setdefault(str(row["cd_id"]), []).append(row)
        out = []
        for cd_id, group in grouped.items():
            provider, source_id = origins.get(cd_id, (None, None))
            out.append(FeedbackRejection(
                record_id=cd_id, kind=str(group[0]["table_name"]).removeprefix("ex_"),
                checked_at=max(r["checked_at"] for r in group), provider_uscc=provider, source_record_id=source_id,
                findings=tuple(finding(str(r["error_code"]), r["error_field"], r["error_message"], self._location)
                               for r in group),
                fb_ids=tuple(int(r["fb_id"]) for r in group)))
        return out

    def _origins(self, conn: Any, rows: Sequence[dict[str, Any]]) -> dict[str, tuple[str | None, str | None]]:
        """cd_id -> (provider_uscc, record_unique_identity) read back from the exchange tables."""
        by_table: dict[str, set[str]] = {}
        for row in rows:
            by_table.setdefault(str(row["table_name"]).removeprefix("ex_"), set()).add(str(row["cd_id"]))
        found: dict[str, tuple[str | None, str | None]] = {}
        for kind, ids in by_table.items():
            table = self._tables.kinds.get(kind)
            if table is None:
                continue
            stmt = select(table.c.cd_id, table.c.provider_uscc, table.c.record_unique_identity).where(
                table.c.cd_id.in_(sorted(ids)))
            found.update({cd_id: (provider, source_id) for cd_id, provider, source_id in conn.execute(stmt)})
        return found
