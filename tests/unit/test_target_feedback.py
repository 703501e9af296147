"""FeedbackIntake on SQLite: the data centre's verdicts (ex_feedback, read by the adapter's poller)
become the providing department's rejections, keyed so the corrected record resolves them; the
cursor moves in the same transaction, and of two gateways polling together only one records a page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from adapters.base import OutboundRecord
from adapters.data_centre import DataCentreAdapter, DataCentreConfig, exchange_tables
from gateway.durable import SqlGatewayStore
from gateway.envelope import Envelope
from gateway.ingest import Ingestor
from gateway.publisher import Publisher
from gateway.stores.db import create_engine_for, init_schema
from gateway.target_feedback import FeedbackIntake
from mapping.calendar import WorkingCalendar
from mapping.catalog import load_catalog
from tests.conftest import MAPPINGS, SAMPLES

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    yield engine
    engine.dispose()


async def accepted_and_delivered(store: SqlGatewayStore, adapter: DataCentreAdapter) -> list[str]:
    publisher = Publisher(ingestor=Ingestor(), store=store, routes=lambda kind: ("data-centre",),
                          mappings={"eco-rest": {"default": load_catalog(MAPPINGS)["eco-rest.penalty"]}})
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    result = await publisher.publish(Envelope(connector="eco-rest", payload=page, received_at=datetime.now(UTC),
                                              department="eco-a"))
    items = store.claim("data-centre", 100, datetime.now(UTC))
    results = await adapter.deliver([OutboundRecord(i.record_id, i.kind, i.payload) for i in items])
    assert {r.status for r in results} == {"delivered"}
    return [o.record_id for o in result.outcomes if o.status == "accepted" and o.record_id]


def reject(adapter: DataCentreAdapter, record_id: str, code: str) -> None:
    with adapter._engine.begin() as conn:  # the data centre's side
        conn.execute(exchange_tables().feedback.insert(), {
            "cd_id": record_id, "table_name": "ex_penalty", "status": "rejected", "error_code": code,
            "error_field": "submitted_at", "error_message": "超期报送",
            "checked_at": datetime(2025, 6, 20, 9, 0, tzinfo=SHANGHAI)})


async def test_two_intakes_record_a_page_once_and_the_corrected_record_resolves_it(
        tmp_path: Path, engine: Engine) -> None:
    store = SqlGatewayStore(engine, WorkingCalendar())
    adapter = DataCentreAdapter(DataCentreConfig(url=f"sqlite:///{tmp_path / 'dc.sqlite'}",  # type: ignore[arg-type]
                                                 create_tables=True, feedback_interval_s=60))
    try:
        first, _ = await accepted_and_delivered(store, adapter)
        reject(adapter, first, "DC009")
        source = adapter.feedback_source()
        assert source is not None and source.interval_s == 60
        one, other = (FeedbackIntake("data-centre", source, engine, WorkingCalendar()) for _ in range(2))
        cursor = one._cursor()
        page = await source.poll(cursor)  # both read the same page before either records it
        assert one._record(cursor, page) == 1
        assert other._record(cursor, page) == 0
        assert await other.poll_once() == 0  # the cursor moved past it

        [rejection] = store.rejections.list()
        assert (rejection.department, rejection.target, rejection.record_id) == ("eco-a", "data-centre", first)
        assert rejection.business_key_hash is not None
        assert str(rejection.due_on) == "2025-06-27"  # 5 working days after the check
        # the same business key rejected again later: the new rejection supersedes the open one
        reject(adapter, first, "DC005")
        assert await one.poll_once() == 1
        assert [r.status for r in store.rejections.list()] == ["open", "superseded"]
        assert store.rejections.resolve_by_business_key("penalty", rejection.business_key_hash, "corrected") == 1
    finally:
        await adapter.close()


async def test_polling_can_be_switched_off(tmp_path: Path) -> None:
    adapter = DataCentreAdapter(DataCentreConfig(url=f"sqlite:///{tmp_path / 'dc.sqlite'}",  # type: ignore[arg-type]
                                                 create_tables=True, feedback_interval_s=None))
    assert adapter.feedback_source() is None
    await adapter.close()
