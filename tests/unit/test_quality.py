"""Data quality per department and the backlog figures, on SQLite; tests/integration/
test_quality_postgres.py runs the same on PostgreSQL (the JSON and time-zone SQL differ)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from gateway.backlog import Backlog
from gateway.quality import Period, QualityReport
from gateway.stores import (
    AcceptedRecords,
    AcceptedRow,
    JourneyLog,
    JourneyRow,
    OutboxRow,
    RejectedRow,
    RejectionsLedger,
    SqlOutbox,
    create_engine_for,
    init_schema,
)
from gateway.stores.schema import outbox
from mapping.calendar import WorkingCalendar
from mapping.findings import Finding

# Monday 2025-06-16, 10:00 in Shanghai. Penalties decided on 2025-06-05 (Thursday) are due by the
# 7th working day after it: 2025-06-16 (Dragon Boat holiday 2025-05-31..06-02 is before).
NOW = datetime(2025, 6, 16, 2, 0, tzinfo=UTC)
PERIOD = Period(date(2025, 6, 1), date(2025, 6, 30))
CALENDAR = WorkingCalendar((), ())
REQUIRED = Finding("REQUIRED", "decided_at", "decided_at is required", "作出处罚决定日期必填")
CPT = Finding("RULE:CPT-001", "counterparty_id_no", "bad USCC", "统一社会信用代码校验错误")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path}/gateway.db")
    init_schema(engine)
    yield engine
    engine.dispose()


def penalty(n: int, department: str, decided: str, *, at: datetime = NOW, kind: str = "penalty",
            operation: str = "i") -> AcceptedRow:
    field = "decided_at" if kind == "penalty" else "decided_on"
    record = {"record_kind": kind, "record_id": f"r{n}", "operation": operation, field: decided}
    return AcceptedRow(record_id=f"r{n}", kind=kind, business_key=(department, str(n)), record=record,
                       connector="eco-push", accepted_at=at, department=department)


def rejection(n: int, department: str, errors: list[Finding], *, at: datetime = NOW,
              target: str | None = None) -> RejectedRow:
    return RejectedRow(kind="penalty", connector="eco-push", rejected_at=at, errors=errors,
                       business_key=(department, f"bad{n}"), department=department, record_id=f"bad{n}",
                       target=target)


def fill(engine: Engine) -> None:
    records = AcceptedRecords(engine)
    records.add([
        penalty(1, "eco", "2025-06-05"),                                   # 7th working day: timely
        penalty(2, "eco", "2025-06-04"),                                   # 8th working day: late
        penalty(3, "eco", "2025-06-13", kind="credit_penalty"),            # timely
        penalty(4, "eco", "2025-06-01", operation="u"),                    # an update: not a first report
        penalty(5, "eco", "2025-05-01", at=NOW - timedelta(days=40)),      # before the period
        penalty(6, "market", "2025-06-16"),
    ])
    ledger = RejectionsLedger(engine, CALENDAR)
    ledger.add(rejection(1, "eco", [REQUIRED, CPT]))
    ledger.add(rejection(2, "eco", [REQUIRED]))
    ledger.add(rejection(3, "eco", [REQUIRED], target="national"))        # the target said no
    ledger.add(rejection(4, "market", [CPT], at=NOW - timedelta(days=10)))  # due 06-13: overdue
    JourneyLog(engine).append_many([
        JourneyRow(record_id="r1", event="duplicate", at=NOW),
        JourneyRow(record_id="r1", event="duplicate", at=NOW),
        JourneyRow(record_id="r6", event="duplicate", at=NOW - timedelta(days=60)),  # before the period
    ])


def test_quality_figures_per_department(engine: Engine) -> None:
    fill(engine)
    report = QualityReport(engine, CALENDAR, Backlog(engine, SqlOutbox(engine)))
    found = {q.department: q for q in report.compute(PERIOD, ["eco", "market", "tax"], today=NOW.date())}
    assert set(found) == {"eco", "market", "tax"}
    eco = found["eco"]
    assert (eco.accepted, eco.rejected, eco.remote_rejected, eco.duplicates) == (4, 2, 1, 2)
    assert eco.validity_rate == round(4 / 6, 4)
    assert (eco.timely, eco.late) == (2, 1)
    assert [(r.code, r.count) for r in eco.reasons] == [("REQUIRED", 3), ("RULE:CPT-001", 1)]
    assert eco.reasons[0].label_zh == "必填项为空"
    assert eco.reasons[1].label_zh == "统一社会信用代码校验错误"  # a rule: the findings' own message
    assert (eco.open_rejections, eco.overdue_rejections) == (3, 0)
    market = found["market"]
    assert (market.accepted, market.rejected, market.duplicates, market.timely) == (1, 1, 0, 1)
    assert (market.open_rejections, market.overdue_rejections) == (1, 1)
    tax = found["tax"].as_dict()
    assert tax["validity_rate"] is None and tax["timeliness"]["rate"] is None and tax["accepted"] == 0


def test_quality_of_one_department_only(engine: Engine) -> None:
    fill(engine)
    report = QualityReport(engine, CALENDAR, Backlog(engine, SqlOutbox(engine)))
    found = report.compute(PERIOD, ["eco", "market"], only="market", today=NOW.date())
    assert [q.department for q in found] == ["market"]
    assert found[0].accepted == 1 and found[0].open_rejections == 1


def test_backlog_per_adapter_and_department(engine: Engine) -> None:
    fill(engine)
    queue = SqlOutbox(engine)
    queue.put_many([OutboxRow(adapter="national", record_id=f"r{n}", kind="penalty", payload={},
                              enqueued_at=NOW - timedelta(minutes=n)) for n in (3, 2, 1)])  # oldest first
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.record_id == "r3").values(state="dead"))
    gauges = Backlog(engine, queue, lambda: ["national", "data-centre"]).gauges(NOW)
    assert gauges.outbox_depth == {"national": 2, "data-centre": 0}
    assert gauges.outbox_oldest_age_s == {"national": 120.0, "data-centre": 0.0}
    assert gauges.dead_letters == {"national": 1, "data-centre": 0}
    assert gauges.rejections_open == {"eco": 3, "market": 1}
    assert gauges.rejections_overdue == {"eco": 0, "market": 1}
