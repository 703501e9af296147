"""One outbox test suite, run on every backend: SQLite (embedded), PostgreSQL and a real Redis (Streams).

Each test builds the outbox through its public constructor; Redis keys live under a unique prefix
that is deleted afterwards, so the suite runs beside other engineers' tests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.outbox import DeadLetterFilter, Outbox, OutboxItem, OutboxRow
from gateway.stores.redis_outbox import RedisOutbox
from gateway.stores.sql_outbox import SqlOutbox
from tests.pg import gateway_engine

REDIS_URL = "redis://127.0.0.1:6379/0"
Factory = Callable[..., Outbox]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration),
                        pytest.param("redis", marks=pytest.mark.integration)])
def make_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    if request.param == "sqlite":
        engine = create_engine_for(f"sqlite:///{tmp_path / 'outbox.sqlite'}")
        init_schema(engine)

        def sql(consumer: str = "w1", lease_s: float = 300.0) -> Outbox:
            return SqlOutbox(engine, lease_s=lease_s)

        yield sql
        engine.dispose()
        return
    if request.param == "postgresql":
        with gateway_engine("sgw_outbox") as pg_engine:

            def pg(consumer: str = "w1", lease_s: float = 300.0) -> Outbox:
                return SqlOutbox(pg_engine, lease_s=lease_s)

            yield pg
        return
    prefix = f"sgw-test-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL)
    made: list[RedisOutbox] = []

    def red(consumer: str = "w1", lease_s: float = 300.0) -> Outbox:
        box = RedisOutbox(redis.Redis.from_url(REDIS_URL), prefix=prefix, consumer=consumer, lease_s=lease_s)
        made.append(box)
        return box

    yield red
    for box in made:
        box.close()
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def row(record_id: str, key: str | None = None, adapter: str = "dc") -> OutboxRow:
    return OutboxRow(adapter=adapter, record_id=record_id, kind="penalty", payload={"record_id": record_id, "n": 1},
                     enqueued_at=datetime.now(UTC), department="xihu-scj",
                     business_key=(key or record_id, "91330106MA27XXXX0X"))


def now() -> datetime:
    return datetime.now(UTC)


def ids(items: list[OutboxItem]) -> list[str]:
    return [i.record_id for i in items]


def claim_until(box: Outbox, adapter: str = "dc", limit: int = 10, timeout_s: float = 5.0) -> list[OutboxItem]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = box.claim(adapter, limit, now())
        if got:
            return got
        time.sleep(0.05)
    return []


def test_queued_records_are_claimed_once_oldest_first_and_queueing_is_idempotent(make_outbox: Factory) -> None:
    box = make_outbox()
    box.put_many([row(f"r-{i}") for i in range(5)] + [row("r-x", adapter="other")])
    box.put_many([row("r-0"), row("r-1")])  # re-sent after a lost acknowledgement: nothing new
    assert box.depth("dc") == 5
    first = box.claim("dc", 3, now())
    assert ids(first) == ["r-0", "r-1", "r-2"]
    assert all(i.attempts == 1 and i.adapter == "dc" for i in first)
    assert first[0].payload == {"record_id": "r-0", "n": 1} and first[0].department == "xihu-scj"
    assert ids(box.claim("dc", 10, now())) == ["r-3", "r-4"]
    assert box.claim("dc", 10, now()) == []
    assert ids(box.claim("other", 10, now())) == ["r-x"]


def test_completed_records_leave_the_outbox(make_outbox: Factory) -> None:
    box = make_outbox()
    box.put_many([row(f"r-{i}") for i in range(4)])
    items = box.claim("dc", 10, now())
    box.complete([i.id for i in items[:3]])
    assert box.depth("dc") == 1
    assert box.claim("dc", 10, now()) == []


def test_a_retry_waits_until_due_and_counts_the_attempt(make_outbox: Factory) -> None:
    box = make_outbox()
    box.put_many([row("r-1")])
    (item,) = box.claim("dc", 10, now())
    box.retry([item.id], now() + timedelta(seconds=0.3), "HTTP 503")
    assert box.claim("dc", 10, now()) == []
    assert box.depth("dc") == 1
    (again,) = claim_until(box)
    assert (again.record_id, again.attempts, again.last_error) == ("r-1", 2, "HTTP 503")


def test_a_crashed_workers_records_are_reclaimed_with_their_attempts(make_outbox: Factory) -> None:
    crashed = make_outbox("w-crashed", lease_s=0.3)
    crashed.put_many([row("r-1"), row("r-2")])
    assert ids(crashed.claim("dc", 10, now())) == ["r-1", "r-2"]
    survivor = make_outbox("w-survivor", lease_s=0.3)
    assert survivor.claim("dc", 10, now()) == []  # the lease still runs
    reclaimed = claim_until(survivor)
    assert sorted(ids(reclaimed)) == ["r-1", "r-2"]
    assert all(i.attempts == 2 for i in reclaimed)
    survivor.complete([i.id for i in reclaimed])
    assert survivor.depth("dc") == 0


def test_versions_of_one_business_key_never_travel_together_nor_overtake(make_outbox: Factory) -> None:
    box = make_outbox()
    box.put_many([row("v1", key="K"), row("other", key="L"), row("v2", key="K"), row("v3", key="K")])
    first = box.claim("dc", 10, now())
    assert ids(first) == ["v1", "other"]
    v1 = first[0]
    box.retry([v1.id], now(), "timeout")  # a retry keeps the later versions behind it
    (retried,) = claim_until(box)
    assert retried.record_id == "v1"
    assert box.claim("dc", 10, now()) == []
    box.complete([retried.id])
    (v2,) = claim_until(box)
    assert (v2.record_id, v2.attempts) == ("v2", 1)
    box.dead([v2.id], "HTTP 400")  # a dead letter does not hold the key back
    (v3,) = claim_until(box)
    assert v3.record_id == "v3"


def test_dead_letters_are_listed_redriven_and_discarded(make_outbox: Factory) -> None:
    box = make_outbox()
    box.put_many([row("poison"), row("fine"), row("bad", adapter="other")])
    poison, fine = box.claim("dc", 10, now())
    (bad,) = box.claim("other", 10, now())
    box.dead([poison.id], "HTTP 400: field too long")
    box.dead([bad.id], "misconfigured")
    box.complete([fine.id])
    assert box.depth("dc") == 0
    listed = box.dead_letters(DeadLetterFilter(adapter="dc"))
    assert [(d.record_id, d.attempts, d.last_error, d.state) for d in listed] == [
        ("poison", 1, "HTTP 400: field too long", "dead")]
    assert ids(box.dead_letters(DeadLetterFilter(error_contains="misconfig"))) == ["bad"]
    fetched = box.get(listed[0].id)
    assert fetched is not None and fetched.payload == {"record_id": "poison", "n": 1}
    assert box.redrive([listed[0].id], now())
    assert box.dead_letters(DeadLetterFilter(adapter="dc")) == []
    (again,) = claim_until(box)
    assert (again.record_id, again.attempts) == ("poison", 1)
    assert box.discard([bad.id], "target retired") == 1
    assert box.dead_letters(DeadLetterFilter()) == []
    assert box.discard([bad.id], "twice") == 0
