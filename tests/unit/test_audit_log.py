"""The audit log store: append-only entries in a hash chain that shows a changed, removed or
reordered row, and stays whole under concurrent writers (SQLite here; PostgreSQL in
tests/integration/test_audit_log_postgres.py, which runs these same tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from gateway.stores.audit import AuditFilter, SqlAuditLog
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.schema import audit_log


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'audit.sqlite'}")
    init_schema(engine)
    yield engine
    engine.dispose()


def filled(engine: Engine, count: int = 5) -> SqlAuditLog:
    log = SqlAuditLog(engine)
    for i in range(count):
        log.record("admin:alice", "department.update", f"department:d{i}",
                   before={"name": f"old {i}", "n": 1.5}, after={"name": f"新 {i}", "list": [1, "二"]})
    return log


def execute(engine: Engine, statement: sa.Executable) -> None:
    """Tamper as someone with the database's owner rights would: the append-only triggers dropped."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS tg_audit_log_append_only ON audit_log")
        else:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS tg_audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS tg_audit_log_no_delete")
        conn.execute(statement)


def test_the_database_refuses_to_change_or_delete_entries(engine: Engine) -> None:
    log = filled(engine, 2)
    for statement in (sa.update(audit_log).values(actor="admin:mallory"), sa.delete(audit_log)):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    assert log.verify().ok and log.verify().entries == 2


def test_entries_are_listed_newest_first_and_filtered(engine: Engine) -> None:
    log = filled(engine, 3)
    log.record("ops:bob", "deadletter.redrive", "deadletter:7", before={"state": "dead"}, after={"state": "pending"})
    entries = log.list()
    assert [e.seq for e in entries] == [4, 3, 2, 1]
    assert entries[1].after == {"name": "新 2", "list": [1, "二"]} and entries[1].before == {"name": "old 2", "n": 1.5}
    assert [e.seq for e in log.list(AuditFilter(actor="ops:bob"))] == [4]
    assert [e.seq for e in log.list(AuditFilter(target="department:d1"))] == [2]
    assert [e.seq for e in log.list(AuditFilter(action="department.update"), limit=2, offset=1)] == [2, 1]
    assert entries[0].prev_hash == entries[1].hash
    assert log.verify().ok and log.verify().entries == 4


def test_an_empty_log_verifies(engine: Engine) -> None:
    assert SqlAuditLog(engine).verify().ok


def test_a_changed_row_is_found_at_its_seq(engine: Engine) -> None:
    log = filled(engine)
    execute(engine, sa.update(audit_log).where(audit_log.c.seq == 3).values(after='{"name":"forged"}'))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3 and result.entries == 2


def test_a_changed_actor_even_with_a_recomputed_hash_breaks_the_next_link(engine: Engine) -> None:
    log = filled(engine)
    from gateway.stores.audit import entry_hash

    row = next(e for e in log.list() if e.seq == 2)
    forged = entry_hash(2, row.at, "admin:mallory", row.action, row.target,
                        '{"n":1.5,"name":"old 1"}', '{"list":[1,"二"],"name":"新 1"}', row.prev_hash)
    execute(engine, sa.update(audit_log).where(audit_log.c.seq == 2).values(actor="admin:mallory", hash=forged))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3  # entry 2 is self-consistent; 3 no longer links to it


def test_a_deleted_row_is_found(engine: Engine) -> None:
    log = filled(engine)
    execute(engine, sa.delete(audit_log).where(audit_log.c.seq == 2))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_rows_deleted_from_the_end_are_found_by_the_head(engine: Engine) -> None:
    log = filled(engine)
    execute(engine, sa.delete(audit_log).where(audit_log.c.seq >= 4))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 4


def test_reordered_rows_are_found(engine: Engine) -> None:
    log = filled(engine)
    execute(engine, sa.update(audit_log).where(audit_log.c.seq == 2).values(seq=100))
    execute(engine, sa.update(audit_log).where(audit_log.c.seq == 3).values(seq=2))
    execute(engine, sa.update(audit_log).where(audit_log.c.seq == 100).values(seq=3))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_concurrent_writers_keep_one_unbroken_chain(engine: Engine) -> None:
    log = SqlAuditLog(engine)
    writers, each = 4, 15

    def write(n: int) -> None:
        for i in range(each):
            log.record(f"ops:w{n}", "key.issue", f"key:{n}-{i}", after={"i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = log.verify()
    assert result.ok, result
    assert result.entries == writers * each
    assert sorted(e.seq for e in log.list(limit=1000)) == list(range(1, writers * each + 1))


def test_redrive_and_discard_of_dead_letters_are_audited_with_their_state(engine: Engine) -> None:
    from gateway.dead_letters import DeadLetterOps
    from gateway.durable import SqlGatewayStore
    from mapping.calendar import WorkingCalendar
    from tests.unit.test_stores import T0, queued

    store = SqlGatewayStore(engine, WorkingCalendar())
    store.outbox.put_many([queued("r-1"), queued("r-2")])
    claimed = store.outbox.claim("data_centre", 10, T0)
    store.outbox.dead([i.id for i in claimed], "HTTP 400")
    log = SqlAuditLog(engine)
    ops = DeadLetterOps(store, audit=log)
    assert ops.redrive([claimed[0].id], actor="ops:li") == 1
    assert ops.discard([claimed[1].id], reason="obsolete", actor="admin:wang") == 1
    redrive, discard = reversed(log.list())
    assert (redrive.actor, redrive.action) == ("ops:li", "deadletter.redrive")
    assert redrive.target == f"deadletter:{claimed[0].id}"
    assert redrive.before["state"] == "dead" and redrive.before["error"] == "HTTP 400"
    assert redrive.before["record_id"] == "r-1" and redrive.after["state"] == "pending"
    assert (discard.action, discard.after) == ("deadletter.discard", {"state": "discarded", "reason": "obsolete"})
    assert log.verify().ok
