"""Data quality and backlog figures over a large store: how long ``GET /admin/quality`` and a metrics
scrape's store gauges take with a million accepted records.

Builds a SQLite store (or PostgreSQL with ``--url``) holding ``--records`` accepted penalties spread
over 60 days and 20 departments, a tenth as many rejections (two findings each), a twentieth as
many duplicate journeys and a backlog in the outbox; then times the quality report over 30 days
(all departments, then one) and the store gauges. Run by hand:

    .venv/bin/python bench/quality.py [--records 1000000] [--url postgresql://...]

Figures print as JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from sqlalchemy import insert  # noqa: E402

from gateway.backlog import Backlog  # noqa: E402
from gateway.quality import Period, QualityReport  # noqa: E402
from gateway.stores import SqlOutbox, create_engine_for, init_schema  # noqa: E402
from gateway.stores.schema import accepted_records, journeys, outbox, rejections  # noqa: E402
from mapping.calendar import WorkingCalendar  # noqa: E402

DEPARTMENTS = [f"dept-{n:02d}" for n in range(20)]
END = datetime(2025, 6, 30, 8, 0, tzinfo=UTC)
CHUNK = 20_000


def rows(n: int, make: Any) -> Any:
    for start in range(0, n, CHUNK):
        yield [make(i) for i in range(start, min(n, start + CHUNK))]


def fill(engine: Any, records: int) -> None:
    def accepted(i: int) -> dict[str, Any]:
        at = END - timedelta(minutes=(i * 86_400) // records)
        decided = (at - timedelta(days=i % 12)).date().isoformat()
        return {"record_id": f"r{i}", "kind": "penalty", "business_key_hash": f"h{i}", "operation": "i",
                "department": DEPARTMENTS[i % 20], "connector": "bench", "accepted_at": at,
                "record": {"record_kind": "penalty", "decided_at": decided, "fine_amount_yuan": "100.00"}}

    def rejected(i: int) -> dict[str, Any]:
        return {"kind": "penalty", "department": DEPARTMENTS[i % 20], "connector": "bench",
                "errors": [{"code": "REQUIRED", "message_zh": "必填"}, {"code": f"RULE:PEN-00{i % 5}",
                                                                        "message_zh": "规则"}],
                "warnings": [], "status": "open" if i % 3 else "resolved",
                "rejected_at": END - timedelta(minutes=(i * 86_400) // max(records // 10, 1)),
                "due_on": date(2025, 6, 1) + timedelta(days=i % 40)}

    def duplicate(i: int) -> dict[str, Any]:
        return {"record_id": f"r{i * 20}", "event": "duplicate", "at": END - timedelta(minutes=i % 86_400)}

    def queued(i: int) -> dict[str, Any]:
        at = END - timedelta(seconds=i)
        return {"adapter": ("national", "data-centre")[i % 2], "record_id": f"q{i}", "kind": "penalty",
                "payload": {}, "enqueued_at": at, "next_attempt_at": at, "attempts": 0,
                "state": "dead" if i % 50 == 0 else "pending"}

    for table, n, make in ((accepted_records, records, accepted), (rejections, records // 10, rejected),
                           (journeys, records // 20, duplicate), (outbox, records // 20, queued)):
        for chunk in rows(n, make):
            with engine.begin() as conn:
                conn.execute(insert(table), chunk)


def timed(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/quality-{uuid.uuid4().hex[:6]}.sqlite"
        engine = create_engine_for(url)
        init_schema(engine)
        started = time.perf_counter()
        fill(engine, args.records)
        fill_s = round(time.perf_counter() - started, 1)
        backlog = Backlog(engine, SqlOutbox(engine), lambda: ["national", "data-centre"])
        report = QualityReport(engine, WorkingCalendar((), ()), backlog)
        period = Period(date(2025, 6, 1), date(2025, 6, 30))
        figures = {
            "records": args.records, "backend": engine.dialect.name, "fill_s": fill_s,
            "quality_all_departments_s": timed(lambda: report.compute(period, DEPARTMENTS)),
            "quality_one_department_s": timed(lambda: report.compute(period, only="dept-07")),
            "store_gauges_s": timed(backlog.gauges),
        }
        engine.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
