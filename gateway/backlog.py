"""What is waiting, read from the stores: outbox depth and oldest age and dead letters per adapter,
open and overdue rejections per department. For the metrics collector and the dashboard.

Every figure is one aggregate query over an indexed column set (no rows brought into Python):
the outbox's ``(adapter, state, ...)`` index, the rejections' ``(status, due_on)`` and
``(department, status, due_on)`` indexes. With a Redis outbox, depth comes from the streams'
consumer groups and the oldest age is not known (left out rather than guessed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, func, select

from gateway.stores.db import translate_errors
from gateway.stores.outbox import DeadLetterFilter, Outbox
from gateway.stores.schema import outbox, rejections
from gateway.stores.sql_outbox import SqlOutbox
from monitoring.metrics import StoreGauges

SHANGHAI = ZoneInfo("Asia/Shanghai")
REDIS_DEAD_LETTER_CAP = 10_000
OPEN_STATES = ("pending", "inflight")


def today_shanghai() -> date:
    return datetime.now(SHANGHAI).date()


class Backlog:
    def __init__(self, engine: Engine, queue: Outbox, adapters: Callable[[], Iterable[str]] = tuple) -> None:
        self._engine = engine
        self._queue = queue
        self._adapters = adapters  # the configured ones, shown at 0 when nothing waits

    def gauges(self, now: datetime | None = None) -> StoreGauges:
        moment = now or datetime.now(UTC)
        depth, oldest, dead = self._outbox_figures(moment)
        open_, overdue = self.rejections(moment.astimezone(SHANGHAI).date())
        return StoreGauges(outbox_depth=depth, outbox_oldest_age_s=oldest, dead_letters=dead,
                           rejections_open=open_, rejections_overdue=overdue)

    def _outbox_figures(self, now: datetime) -> tuple[dict[str, int], dict[str, float], dict[str, int]]:
        if not isinstance(self._queue, SqlOutbox):
            return self._redis_figures()
        t = outbox
        with translate_errors("measuring the outbox"), self._engine.connect() as conn:
            waiting = conn.execute(select(t.c.adapter, func.count(), func.min(t.c.id))
                                   .where(t.c.state.in_(OPEN_STATES)).group_by(t.c.adapter)).all()
            first_ids = [first for _, _, first in waiting]
            enqueued: dict[int, datetime] = {
                int(i): at for i, at in conn.execute(select(t.c.id, t.c.enqueued_at).where(t.c.id.in_(first_ids)))}
            dead_rows = conn.execute(select(t.c.adapter, func.count()).where(t.c.state == "dead")
                                     .group_by(t.c.adapter)).all()
        adapters = list(self._adapters())
        depth = dict.fromkeys(adapters, 0) | {str(a): int(n) for a, n, _ in waiting}
        oldest = dict.fromkeys(adapters, 0.0) | {
            str(a): max(0.0, (now - enqueued[first]).total_seconds()) for a, _, first in waiting if first in enqueued}
        dead = dict.fromkeys(adapters, 0) | {str(a): int(n) for a, n in dead_rows}
        return depth, oldest, dead

    def _redis_figures(self) -> tuple[dict[str, int], dict[str, float], dict[str, int]]:
        adapters = list(self._adapters())
        depth = {a: self._queue.depth(a) for a in adapters}
        dead = {a: len(self._queue.dead_letters(DeadLetterFilter(adapter=a), REDIS_DEAD_LETTER_CAP))
                for a in adapters}
        return depth, {}, dead

    def rejections(self, today: date) -> tuple[dict[str, int], dict[str, int]]:
        """Open and overdue (due before ``today``) rejections per department ("" for none)."""
        r = rejections
        stmt = (select(r.c.department, func.count(), func.sum(case((r.c.due_on < today, 1), else_=0)))
                .where(r.c.status == "open").group_by(r.c.department))
        with translate_errors("counting rejections"), self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        open_ = {str(d or ""): int(n) for d, n, _ in rows}
        overdue = {str(d or ""): int(late or 0) for d, _, late in rows}
        return open_, overdue
