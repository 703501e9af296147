"""``sgw dead-letters list|show|redrive|discard``, ``sgw rejections list`` and ``sgw data-centre
migrate`` over real stores: a SQLite gateway store (and Redis Streams outbox) filled through the
delivery ledger, the command line run in process with typer's CliRunner, JSON lines read back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from typer.testing import CliRunner

from adapters.base import DeliveryResult
from gateway.cli.main import app
from gateway.durable import SqlGatewayStore
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.outbox import OutboxRow
from gateway.stores.redis_outbox import RedisOutbox
from gateway.stores.rejections import RejectedRow
from mapping.calendar import WorkingCalendar

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Setup:
    config: Path
    store: SqlGatewayStore
    dead: dict[str, str]  # record_id -> dead letter id


def sgw(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(app, list(args))
    out = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, out, result.stdout + result.stderr


@pytest.fixture(params=["sqlite", "redis"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    database = f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    stores: dict[str, Any] = {"database_url": database}
    prefix = f"sgw-cli-{uuid.uuid4().hex[:10]}"
    outbox = None
    if request.param == "redis":
        stores.update(redis_url=REDIS_URL, redis_prefix=prefix)
        outbox = RedisOutbox(redis.Redis.from_url(REDIS_URL), prefix=prefix, consumer="worker", lease_s=60)
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"stores": stores}), encoding="utf-8")
    engine = create_engine_for(database)
    init_schema(engine)
    store = SqlGatewayStore(engine, WorkingCalendar(), outbox=outbox)
    yield Setup(config, store, dead_letters(store))
    if outbox is not None:
        outbox.close()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    engine.dispose()


def dead_letters(store: SqlGatewayStore) -> dict[str, str]:
    """Three records through the delivery ledger: two dead at 'national' (one of them for 'eco-b'), one
    delivered; plus a rejection of the data centre for department eco-a."""
    now = datetime.now(UTC)
    rows = [OutboxRow(adapter="national", record_id=f"00000000-0000-4000-8000-00000000000{i}", kind="penalty",
                      payload={"record_id": f"r{i}", "n": i}, enqueued_at=now,
                      department="eco-b" if i == 3 else "eco-a", business_key=(f"key-{i}",))
            for i in (1, 2, 3)]
    store.outbox.put_many(rows)
    items = store.claim("national", 10, now)
    assert len(items) == 3
    results = [DeliveryResult(items[0].record_id, "failed", code="40000", message="报文结构校验失败 HTTP 400"),
               DeliveryResult(items[1].record_id, "delivered"),
               DeliveryResult(items[2].record_id, "failed", code="41300", message="the record alone is too large")]
    store.settle("national", items, results, now, lambda _i, _r: now)
    store.rejections.add(RejectedRow(kind="penalty", connector="eco-push", rejected_at=now, department="eco-a",
                                     record_id=items[1].record_id, target="data-centre", errors=[
                                         {"code": "DC009", "field": "submitted_at", "severity": "error",
                                          "location": "data-centre", "message_zh": "超期报送",
                                          "message_en": "reported late"}]))
    return {items[0].record_id: str(items[0].id), items[2].record_id: str(items[2].id)}


def test_dead_letters_are_listed_filtered_and_shown(setup: Setup) -> None:
    code, listed, _ = sgw("dead-letters", "list", "-c", str(setup.config))
    assert code == 0 and {d["record_id"]: d["id"] for d in listed} == setup.dead
    code, listed, _ = sgw("dead-letters", "list", "-c", str(setup.config), "--department", "eco-b")
    assert [d["error"] for d in listed] == ["the record alone is too large"]
    code, listed, _ = sgw("dead-letters", "list", "-c", str(setup.config), "--error", "HTTP 400")
    assert len(listed) == 1 and "HTTP 400" in listed[0]["error"]

    first = next(iter(setup.dead.values()))
    code, [shown], _ = sgw("dead-letters", "show", first, "-c", str(setup.config))
    assert code == 0 and shown["record"]["record_id"] == "r1" and shown["attempts"] == 1
    assert [step["event"] for step in shown["journey"]] == ["dead"]
    code, _, output = sgw("dead-letters", "show", "no-such-id", "-c", str(setup.config))
    assert code == 1 and "no dead letter" in output


def test_a_redrive_queues_the_dead_letter_again_and_a_discard_needs_a_reason(setup: Setup) -> None:
    (first_rid, first), (second_rid, second) = setup.dead.items()
    code, [answer], _ = sgw("dead-letters", "redrive", first, "-c", str(setup.config))
    assert code == 0 and answer == {"redriven": 1}
    [again] = setup.store.claim("national", 10, datetime.now(UTC))
    assert again.record_id == first_rid and again.attempts == 1  # a fresh count of attempts

    code, _, output = sgw("dead-letters", "discard", second, "-c", str(setup.config))
    assert code == 2 and "reason" in output  # the reason is required
    code, [answer], _ = sgw("dead-letters", "discard", second, "--reason", "superseded", "-c", str(setup.config))
    assert code == 0 and answer == {"discarded": 1}
    code, listed, _ = sgw("dead-letters", "list", "-c", str(setup.config))
    assert listed == []
    events = [e.event for e in setup.store.journeys.for_record(second_rid)]
    assert events[-1] == "discarded"
    code, [answer], _ = sgw("dead-letters", "discard", second, "--reason", "again", "-c", str(setup.config))
    assert code == 1 and answer == {"discarded": 0}


def test_a_bulk_redrive_needs_a_filter_and_redrives_what_matches(setup: Setup) -> None:
    code, _, output = sgw("dead-letters", "redrive", "-c", str(setup.config))
    assert code == 2 and "filter" in output
    code, [answer], _ = sgw("dead-letters", "redrive", "--adapter", "national", "--department", "eco-b",
                            "-c", str(setup.config))
    assert answer == {"redriven": 1}
    code, listed, _ = sgw("dead-letters", "list", "-c", str(setup.config))
    assert [d["department"] for d in listed] == ["eco-a"]


def test_rejections_are_listed_by_department_status_and_due_date(setup: Setup) -> None:
    code, [rejection], _ = sgw("rejections", "list", "-c", str(setup.config), "--department", "eco-a")
    assert code == 0 and rejection["target"] == "data-centre" and rejection["errors"][0]["code"] == "DC009"
    assert rejection["status"] == "open"
    assert sgw("rejections", "list", "-c", str(setup.config), "--department", "eco-b")[1] == []
    assert sgw("rejections", "list", "-c", str(setup.config), "--status", "resolved")[1] == []
    assert sgw("rejections", "list", "-c", str(setup.config), "--due-before", rejection["due_on"])[1] == []
    code, _, output = sgw("rejections", "list", "-c", str(setup.config), "--status", "bogus")
    assert code == 2 and "open, resolved or superseded" in output


def test_data_centre_migrate_creates_the_tables_once_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dc.sqlite'}"
    for _ in range(2):  # a second run finds the head revision and does nothing
        result = CliRunner().invoke(app, ["data-centre", "migrate", "--url", url])
        assert result.exit_code == 0, result.output
        assert "revision 0001" in result.stdout
    engine = sa.create_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {"ex_penalty", "ex_feedback", "cd_batch_sequences", "sgw_dc_alembic_version"} <= tables


def test_data_centre_migrate_on_postgresql_into_a_schema() -> None:
    schema = f"dcmig_{uuid.uuid4().hex[:10]}"
    try:
        result = CliRunner().invoke(app, ["data-centre", "migrate", "--url", PG, "--schema", schema])
        assert result.exit_code == 0, result.output
        engine = sa.create_engine(PG)
        with engine.connect() as conn:
            version = conn.execute(sa.text(f'SELECT version_num FROM "{schema}".sgw_dc_alembic_version')).scalar()
            count = conn.execute(sa.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                                 {"s": schema}).scalar()
        engine.dispose()
        assert version == "0001" and count == 13 + 1 + 1 + 1  # 13 ex_<kind>, ex_feedback, sequences, version
    finally:
        engine = sa.create_engine(PG)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def test_data_centre_migrate_refuses_a_bad_schema_name_and_an_unreachable_database(tmp_path: Path) -> None:
    bad = CliRunner().invoke(app, ["data-centre", "migrate", "--url", "sqlite:///x.db", "--schema", "Bad-Name"])
    assert bad.exit_code == 2 and "db_schema" in bad.output
    down = CliRunner().invoke(app, ["data-centre", "migrate", "--url", "postgresql://nobody@127.0.0.1:1/none"])
    assert down.exit_code == 1 and "migration failed" in down.output
