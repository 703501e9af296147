"""The batch journal on each backend: what a retry needs to send a batch again byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.journal import BatchJournal, MemoryJournal, SentBatch
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.sent_batches import RedisBatchJournal, SqlBatchJournal
from tests.redis_keys import REDIS_URL

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
BODY = '{"batch_id":"b-1","records":[{"record_id":"r-1","name":"杭州某某"}]}'.encode()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def journal(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> Iterator[BatchJournal]:
    if request.param == "memory":
        yield MemoryJournal()
    elif request.param == "sqlite":
        engine = create_engine_for(f"sqlite:///{tmp_path / 'gw.sqlite'}")
        init_schema(engine)
        yield SqlBatchJournal(engine, "national")
        engine.dispose()
    else:
        redis_journal = RedisBatchJournal.from_url(REDIS_URL, prefix=redis_prefix, adapter="national")
        yield redis_journal
        redis_journal.close()


def test_a_batch_is_recalled_by_any_of_its_records_with_its_exact_body(journal: BatchJournal) -> None:
    journal.remember(SentBatch("b-1", ("r-1", "r-2", "r-3"), BODY), NOW)
    journal.remember(SentBatch("b-2", ("r-4",), b"{}"), NOW)
    assert journal.recall({"r-2", "r-9"}) == [SentBatch("b-1", ("r-1", "r-2", "r-3"), BODY)]
    assert sorted(b.batch_id for b in journal.recall({"r-3", "r-4"})) == ["b-1", "b-2"]
    assert journal.recall({"r-9"}) == []


def test_forgotten_and_pruned_batches_are_not_recalled(journal: BatchJournal) -> None:
    journal.remember(SentBatch("b-1", ("r-1",), BODY), NOW - timedelta(days=20))
    journal.remember(SentBatch("b-2", ("r-2",), BODY), NOW)
    journal.remember(SentBatch("b-3", ("r-3",), BODY), NOW)
    journal.forget(["b-2"])
    assert journal.prune(NOW - timedelta(days=14)) == 1
    assert [b.batch_id for b in journal.recall({"r-1", "r-2", "r-3"})] == ["b-3"]


def test_a_batch_remembered_again_replaces_the_first_copy(journal: BatchJournal) -> None:
    journal.remember(SentBatch("b-1", ("r-1",), b"old"), NOW)
    journal.remember(SentBatch("b-1", ("r-1", "r-2"), BODY), NOW)
    assert journal.recall({"r-2"}) == [SentBatch("b-1", ("r-1", "r-2"), BODY)]
