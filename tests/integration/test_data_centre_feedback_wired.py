"""The data centre's verdicts (``ex_feedback`` on the real PostgreSQL 前置库) polled by the running
gateway into the rejections of the department that provided the record, once, across a restart."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gateway.envelope import Envelope
from gateway.runtime import Runtime
from gateway.stores.rejections import Rejection
from tests.conftest import SAMPLES
from tests.peers.gateway_harness import wait_for
from tests.servers import embedded_runtime

pytestmark = pytest.mark.integration

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SHANGHAI = ZoneInfo("Asia/Shanghai")
MESSAGE = "作出处罚决定后超过7个工作日报送"


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"dcfb_{uuid.uuid4().hex[:10]}"
    yield name
    engine = sa.create_engine(PG)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def gateway(tmp_path: Path, schema: str) -> Runtime:
    return embedded_runtime(
        tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco-a"}],
        departments=[{"code": "eco-a", "name": "生态环境甲"}],
        adapters=[{"id": "data-centre", "type": "data_centre",
                   "options": {"url": PG, "db_schema": schema, "create_tables": True, "feedback_interval_s": 0.1}}])


def data_centre_checks(schema: str, *rows: dict[str, object]) -> None:
    """The data centre's side: its ETL inserts its verdicts."""
    engine = sa.create_engine(PG)
    with engine.begin() as conn:
        conn.execute(sa.text(f'INSERT INTO "{schema}".ex_feedback (cd_id, table_name, status, error_code, '
                             "error_field, error_message, checked_at) VALUES (:cd_id, 'ex_penalty', :status, :code, "
                             ":field, :message, :checked_at)"), list(rows))
    engine.dispose()


def verdict(record_id: str, status: str, code: str | None = None, field: str | None = None,
            message: str | None = None) -> dict[str, object]:
    return {"cd_id": record_id, "status": status, "code": code, "field": field, "message": message,
            "checked_at": datetime(2025, 9, 30, 10, 0, tzinfo=SHANGHAI)}


def of(runtime: Runtime, record_id: str) -> list[Rejection]:
    return [r for r in runtime.store.rejections.list(limit=1000) if r.record_id == record_id]


async def test_a_rejection_in_ex_feedback_becomes_the_departments_rejection_once(tmp_path: Path,
                                                                                  schema: str) -> None:
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    runtime = gateway(tmp_path, schema)
    await runtime.start()
    try:
        published = await runtime.publisher.publish(Envelope(connector="eco-push", payload=page,
                                                             received_at=datetime.now(UTC), department="eco-a"))
        first, second = (o.record_id for o in published.outcomes if o.status == "accepted" and o.record_id)
        await runtime.drain()
        data_centre_checks(schema, verdict(second, "accepted"),
                           verdict(first, "rejected", "DC009", "submitted_at", MESSAGE))
        await wait_for(lambda: bool(of(runtime, first)), 20, "the data centre's rejection")
    finally:
        await runtime.stop()

    [rejection] = of(runtime, first)
    assert (rejection.department, rejection.target, rejection.status) == ("eco-a", "data-centre", "open")
    assert [(e["code"], e["field"]) for e in rejection.errors] == [("DC009", "submitted_at")]
    assert MESSAGE in rejection.errors[0]["message_zh"]
    assert str(rejection.due_on) == "2025-10-14"  # 5 working days after 30 Sep, past the National Day holiday
    assert rejection.raw_payload is not None and rejection.raw_payload["record_id"] == first
    assert of(runtime, second) == []  # accepted by the data centre: nothing to fix
    journey = [(s.event, s.target) for s in runtime.store.journeys.for_record(first)]
    assert ("remote_rejected", "data-centre") in journey

    restarted = gateway(tmp_path, schema)  # the same stores: the cursor was kept
    await restarted.start()
    try:
        data_centre_checks(schema, verdict(second, "rejected", "DC003", "penalty_type", "代码值不规范"))
        await wait_for(lambda: bool(of(restarted, second)), 20, "the later rejection after the restart")
    finally:
        await restarted.stop()
    assert len(of(restarted, first)) == 1  # polled once: the restart did not read the first verdict again
    [later] = of(restarted, second)
    assert later.errors[0]["code"] == "DC003" and later.department == "eco-a"
