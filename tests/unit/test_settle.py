"""Claiming and settling a batch on the SQL stores (SQLite; PostgreSQL in the integration run):
what each outcome does to its outbox item, its journey step and the department's rejections, and
that a batch is settled all together or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError

from adapters.base import DeliveryResult
from gateway.durable import SqlGatewayStore
from gateway.errors import StoreUnavailable
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.keys import key_hash
from gateway.stores.outbox import DeadLetterFilter, OutboxItem, OutboxRow
from gateway.stores.schema import journeys, outbox
from gateway.stores.sql_outbox import outbox_adapters
from mapping.calendar import WorkingCalendar
from tests.pg import gateway_engine

ENQUEUED = datetime(2025, 9, 26, 2, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
        init_schema(engine)
        yield engine
        engine.dispose()
        return
    with gateway_engine("sgw_settle") as engine:
        yield engine


@pytest.fixture
def store(engine: Engine) -> SqlGatewayStore:
    return SqlGatewayStore(engine, WorkingCalendar())


def queue(store: SqlGatewayStore, *record_ids: str) -> None:
    store.outbox.put_many([OutboxRow(adapter="t", record_id=rid, kind="penalty", enqueued_at=ENQUEUED,
                                     payload={"record_id": rid, "connector": "eco", "name": "杭州样例"},
                                     department="eco-a", business_key=(rid, "X")) for rid in record_ids])


def steps(store: SqlGatewayStore, record_id: str) -> list[tuple[str, str | None, Any]]:
    return [(s.event, s.target, s.detail) for s in store.journeys.for_record(record_id)]


def test_a_claimed_item_reads_back_as_it_was_queued(store: SqlGatewayStore) -> None:
    queue(store, "r-1")
    (item,) = store.claim("t", 10, datetime.now(UTC))
    assert item == OutboxItem(id=item.id, adapter="t", record_id="r-1", kind="penalty",
                              business_key_hash=key_hash("penalty", ("r-1", "X"), None), department="eco-a",
                              payload={"record_id": "r-1", "connector": "eco", "name": "杭州样例"},
                              enqueued_at=ENQUEUED, attempts=1, state="inflight", last_error=None)
    assert item.enqueued_at.tzinfo is UTC


def test_each_outcome_changes_its_item_and_writes_its_step(store: SqlGatewayStore) -> None:
    queue(store, "ok", "refused", "later", "much-later", "poison")
    now = datetime.now(UTC)
    items = store.claim("t", 10, now)
    by_id = {i.record_id: i for i in items}
    results = [DeliveryResult("ok", "delivered", code="0", receipt={"cd_batch": "B1"}),
               DeliveryResult("refused", "rejected", code="E12", message="名称不符", receipt={"field": "name"}),
               DeliveryResult("later", "retry", message="HTTP 503"),
               DeliveryResult("much-later", "retry", message="timeout", retry_after_s=60),
               DeliveryResult("poison", "failed", message="HTTP 400")]
    due = {"later": now + timedelta(seconds=5), "much-later": now + timedelta(seconds=60)}
    store.settle("t", items, results, now, lambda item, _result: due[item.record_id])

    assert steps(store, "ok")[-1] == ("delivered", "t", {"code": "0", "message": None,
                                                         "receipt": {"cd_batch": "B1"}, "attempt": 1})
    assert steps(store, "refused")[-1] == ("remote_rejected", "t", {"code": "E12", "message": "名称不符",
                                                                    "receipt": {"field": "name"}, "attempt": 1})
    assert [s[0] for s in (steps(store, r)[-1] for r in ("later", "much-later", "poison"))] == [
        "retried", "retried", "dead"]
    assert [store.outbox.get(by_id[r].id).state for r in ("ok", "refused")] == ["done", "done"]  # type: ignore[union-attr]
    (rejection,) = store.rejections.list()
    assert (rejection.record_id, rejection.target, rejection.department, rejection.business_key_hash) == (
        "refused", "t", "eco-a", by_id["refused"].business_key_hash)
    assert rejection.errors[0]["field"] == "name" and rejection.errors[0]["code"] == "E12"
    (dead,) = store.outbox.dead_letters(DeadLetterFilter(adapter="t"))
    assert (dead.record_id, dead.last_error) == ("poison", "HTTP 400")
    assert store.claim("t", 10, now + timedelta(seconds=4)) == []
    (again,) = store.claim("t", 10, now + timedelta(seconds=5))  # each retry comes due at its own time
    assert (again.record_id, again.attempts, again.last_error) == ("later", 2, "HTTP 503")
    (last,) = store.claim("t", 10, now + timedelta(seconds=60))
    assert (last.record_id, last.attempts, last.last_error) == ("much-later", 2, "timeout")


def test_a_batch_is_settled_together_or_not_at_all(store: SqlGatewayStore, engine: Engine) -> None:
    queue(store, "a", "b")
    now = datetime.now(UTC)
    items = store.claim("t", 10, now)

    def fail_on_journeys(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO JOURNEYS"):
            raise OperationalError(statement, parameters, Exception("disk I/O error"))

    event.listen(engine, "before_cursor_execute", fail_on_journeys)
    try:
        with pytest.raises(StoreUnavailable):
            store.settle("t", items, [DeliveryResult(i.record_id, "delivered") for i in items], now,
                         lambda _i, _r: now)
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_journeys)
    assert [store.outbox.get(i.id).state for i in items] == ["inflight", "inflight"]  # type: ignore[union-attr]
    assert store.outbox.depth("t") == 2  # the lease runs out and the batch goes again


def test_a_batch_larger_than_one_statement_is_claimed_and_settled_whole(store: SqlGatewayStore,
                                                                        engine: Engine) -> None:
    record_ids = [f"r-{n:04}" for n in range(1200)]
    queue(store, *record_ids)
    now = datetime.now(UTC)
    items = store.claim("t", 2000, now)
    assert [i.record_id for i in items] == record_ids
    store.settle("t", items, [DeliveryResult(i.record_id, "delivered") for i in items], now, lambda _i, _r: now)
    assert store.outbox.depth("t") == 0
    with engine.connect() as conn:  # one step for the batch's receipt, which every item points to
        (shared,) = conn.execute(select(journeys.c.id).where(journeys.c.event == "delivered")).scalars()
        assert conn.execute(select(func.count()).select_from(outbox)
                            .where(outbox.c.step_id == shared)).scalar_one() == 1200
    for record_id in (record_ids[0], record_ids[-1]):
        assert steps(store, record_id) == [("delivered", "t", {"code": None, "message": None, "receipt": None,
                                                               "attempt": 1})]


def test_the_outbox_lists_its_adapters_by_index_probes(store: SqlGatewayStore, engine: Engine) -> None:
    with engine.connect() as conn:
        assert outbox_adapters(conn) == []
    store.outbox.put_many([OutboxRow(adapter=adapter, record_id=f"r-{adapter}-{n}", kind="penalty",
                                     enqueued_at=ENQUEUED, payload={"n": n})
                           for adapter in ("national", "credit", "data-centre") for n in range(3)])
    with engine.connect() as conn:
        assert outbox_adapters(conn) == ["credit", "data-centre", "national"]
