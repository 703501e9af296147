"""The SQL rows a relay hands on to Redis are deleted by id and record: two relays (every instance
runs one) may read the same rows, and on SQLite the ids of deleted rows are given again, so the late
relay's delete by id alone removed the next write's rows before anyone handed them on (a batch of
500 MQTT readings never delivered, with two ingest instances on one store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.outbox import OutboxRow
from gateway.stores.sql_outbox import SqlOutbox


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SqlOutbox]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    yield SqlOutbox(engine)
    engine.dispose()


def row(record_id: str) -> OutboxRow:
    return OutboxRow(adapter="dc", record_id=record_id, kind="penalty", payload={"record_id": record_id},
                     enqueued_at=datetime.now(UTC))


def test_a_late_relay_forgets_only_the_rows_it_read(box: SqlOutbox) -> None:
    box.put_many([row("r1"), row("r2")])
    read_by_both = box.pending_rows(10)
    box.forget(read_by_both)  # the first relay handed them on
    box.put_many([row("r3"), row("r4")])  # the next write, into the freed ids
    assert {r.id for r in box.pending_rows(10)} == {r.id for r in read_by_both}  # SQLite reused them

    box.forget(read_by_both)  # the other relay, late

    assert [r.record_id for r in box.pending_rows(10)] == ["r3", "r4"]
