"""The Redis outbox's storage layout: records beside the stream (never through Lua), entries written
before that layout still delivered, nothing left behind once entries are done.

Against a real Redis under a unique prefix, deleted afterwards (like the contract suite).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
import redis

from adapters.base import JsonRecord
from gateway.stores.outbox import DeadLetterFilter, OutboxRow
from gateway.stores.redis_outbox import HSET_CHUNK, RedisOutbox

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    name = f"sgw-layout-{uuid.uuid4().hex[:10]}"
    yield name
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def box(prefix: str) -> Iterator[RedisOutbox]:
    outbox = RedisOutbox(redis.Redis.from_url(REDIS_URL), prefix=prefix, consumer="w1")
    yield outbox
    outbox.close()


def row(record_id: str, key: str | None = None, payload: dict[str, object] | None = None) -> OutboxRow:
    return OutboxRow(adapter="dc", record_id=record_id, kind="penalty",
                     payload=payload or {"record_id": record_id, "名称": "杭州样例", "amount": 1.5},
                     enqueued_at=datetime(2025, 6, 1, 8, 0, tzinfo=UTC), department="eco",
                     business_key=(key or record_id,))


def now() -> datetime:
    return datetime.now(UTC)


def records_left(client: redis.Redis, box: RedisOutbox) -> int:
    return int(client.hlen(box.key("dc", "records")))  # type: ignore[arg-type]


def test_a_claimed_payload_keeps_the_json_it_was_stored_as(box: RedisOutbox) -> None:
    box.put_many([row("r-1")])
    (item,) = box.claim("dc", 10, now())
    payload = item.payload
    assert isinstance(payload, JsonRecord)
    stored = payload.json
    assert stored == orjson.dumps({"record_id": "r-1", "名称": "杭州样例", "amount": 1.5})
    assert payload == {"record_id": "r-1", "名称": "杭州样例", "amount": 1.5}  # read at this first look
    assert stored == orjson.dumps(payload)
    assert (item.kind, item.department, item.enqueued_at) == ("penalty", "eco", datetime(2025, 6, 1, 8, 0, tzinfo=UTC))


def test_queueing_again_keeps_the_first_copy_and_done_entries_leave_no_record(
        client: redis.Redis, box: RedisOutbox) -> None:
    box.put_many([row("r-1", payload={"v": 1}), row("r-2")])
    box.put_many([row("r-1", payload={"v": 2}), row("r-1", payload={"v": 3})])  # the relay again, twice in a call
    assert records_left(client, box) == 2
    first, second = box.claim("dc", 10, now())
    assert first.payload == {"v": 1}
    box.complete([first.id])
    box.dead([second.id], "HTTP 400")
    assert records_left(client, box) == 0
    (dead,) = box.dead_letters(DeadLetterFilter(adapter="dc"))
    assert dead.payload == second.payload and dead.department == "eco"
    box.redrive([dead.id], now())
    (again,) = box.claim("dc", 10, now())
    assert (again.record_id, again.payload, again.attempts) == ("r-2", second.payload, 1)
    box.complete([again.id])
    assert records_left(client, box) == 0 and box.depth("dc") == 0


def test_a_completion_by_another_instance_drops_the_record_too(client: redis.Redis, box: RedisOutbox,
                                                               prefix: str) -> None:
    other = RedisOutbox(redis.Redis.from_url(REDIS_URL), prefix=prefix, consumer="w2")
    try:
        box.put_many([row("r-1", key="K"), row("r-2", key="K")])
        (first,) = box.claim("dc", 10, now())
        other.complete([first.id])  # knows neither key nor record: both read from the entry
        (second,) = box.claim("dc", 10, now())
        assert second.record_id == "r-2"
        assert records_left(client, box) == 1
    finally:
        other.close()


def test_a_batch_larger_than_one_hset_is_queued_whole_and_in_order(client: redis.Redis, box: RedisOutbox) -> None:
    count = 2 * HSET_CHUNK + 7
    box.put_many([row(f"r-{i:04d}") for i in range(count)])
    claimed = box.claim("dc", count + 10, now())
    assert [i.record_id for i in claimed] == [f"r-{i:04d}" for i in range(count)]
    box.complete([i.id for i in claimed])
    assert records_left(client, box) == 0


def test_a_record_gone_meanwhile_is_not_handed_out(client: redis.Redis, box: RedisOutbox) -> None:
    """The worker it was reclaimed from completed it between the claim and the read of records."""
    box.put_many([row("r-1"), row("r-2")])
    stream = box.key("dc", "stream")
    _, fields = client.xrange(stream)[0]  # type: ignore[index]
    client.hdel(box.key("dc", "records"), fields[b"b"])
    assert [i.record_id for i in box.claim("dc", 10, now())] == ["r-2"]


def inline_entry(client: redis.Redis, box: RedisOutbox, record_id: str, key: str) -> None:
    """An entry as the outbox wrote them before the records hash: every field inline."""
    client.xadd(box.key("dc", "stream"), {
        "r": record_id, "k": key, "n": "penalty", "d": "eco", "t": "2025-06-01T08:00:00+00:00",
        "p": orjson.dumps({"record_id": record_id, "名称": "旧/格式"})})
    client.set(box.key("dc", f"id:{record_id}"), "0-1")


def test_entries_of_the_inline_layout_are_still_delivered_completed_and_dead_lettered(
        client: redis.Redis, box: RedisOutbox) -> None:
    box.depth("dc")  # the group exists before the old entries are added, as it would have
    inline_entry(client, box, "old-1", "K1")
    inline_entry(client, box, "old-2", "")
    inline_entry(client, box, "old-3", "K1")
    box.put_many([row("old-1")])  # queued already: nothing new
    first, second = box.claim("dc", 10, now())  # old-3 waits behind old-1 (same key)
    assert (first.record_id, first.payload, first.department) == ("old-1", {"record_id": "old-1", "名称": "旧/格式"},
                                                                  "eco")
    assert first.enqueued_at == datetime(2025, 6, 1, 8, 0, tzinfo=UTC) and first.attempts == 1
    payload = first.payload
    assert isinstance(payload, JsonRecord) and payload.json == orjson.dumps(payload)
    box.dead([second.id], "HTTP 400")
    box.complete([first.id])
    (third,) = box.claim("dc", 10, now())
    assert third.record_id == "old-3"
    box.complete([third.id])
    (dead,) = box.dead_letters(DeadLetterFilter(adapter="dc"))
    assert (dead.record_id, dead.payload["名称"], dead.attempts) == ("old-2", "旧/格式", 1)
    assert records_left(client, box) == 0
    box.redrive([dead.id], now())
    (again,) = box.claim("dc", 10, now())
    assert (again.record_id, again.payload) == ("old-2", dead.payload)
    box.complete([again.id])
    assert records_left(client, box) == 0 and box.depth("dc") == 0


def test_a_dead_letter_of_the_inline_layout_is_listed_and_redriven(client: redis.Redis, box: RedisOutbox) -> None:
    box.depth("dc")
    client.hset(box.key("dc", "dead"), "1-1", orjson.dumps({
        "r": "old-9", "k": "", "n": "penalty", "d": "", "t": "2025-06-01T08:00:00+00:00",
        "p": '{"record_id":"old-9"}', "a": 3, "e": "HTTP 400", "at": 1}).decode())
    (dead,) = box.dead_letters(DeadLetterFilter(adapter="dc"))
    assert (dead.record_id, dead.payload, dead.department, dead.attempts) == ("old-9", {"record_id": "old-9"}, None, 3)
    box.redrive([dead.id], now())
    (again,) = box.claim("dc", 10, now())
    assert (again.record_id, again.payload, again.attempts) == ("old-9", {"record_id": "old-9"}, 1)


def test_two_versions_of_a_key_completed_in_one_call_leave_the_key_free(client: redis.Redis, box: RedisOutbox) -> None:
    box.put_many([row("v1", key="K"), row("v2", key="K")])
    (v1,) = box.claim("dc", 10, now())
    held = client.xrange(box.key("dc", "stream"))[1][0].decode()  # type: ignore[index]
    box.complete([v1.id, f"dc:{held}"])
    box.put_many([row("v3", key="K")])
    (v3,) = box.claim("dc", 10, now())
    assert v3.record_id == "v3"
    box.complete([v3.id])
    assert box.depth("dc") == 0 and records_left(client, box) == 0


def test_queueing_survives_a_redis_that_lost_its_scripts(client: redis.Redis, box: RedisOutbox) -> None:
    """A restarted Redis (or SCRIPT FLUSH) answers NOSCRIPT: the script is loaded and the call sent again.
    Every user of these scripts recovers the same way, so flushing beside other tests is harmless."""
    box.put_many([row("r-1")])
    client.script_flush()
    box.put_many([row("r-2"), row("r-1")])
    assert [i.record_id for i in box.claim("dc", 10, now())] == ["r-1", "r-2"]
    assert records_left(client, box) == 2


def test_an_entry_completed_elsewhere_meanwhile_is_not_dead_lettered(client: redis.Redis, box: RedisOutbox,
                                                                     prefix: str) -> None:
    """Two workers held it (one reclaimed it from the other); the first delivered it, the second failed."""
    other = RedisOutbox(redis.Redis.from_url(REDIS_URL), prefix=prefix, consumer="w2")
    try:
        box.put_many([row("r-0"), row("r-1")])
        first, item = box.claim("dc", 10, now())
        other.complete([item.id])  # r-0, still on its way, keeps the entry in the stream
        box.dead([item.id], "HTTP 400")
        assert box.dead_letters(DeadLetterFilter(adapter="dc")) == []
        box.complete([first.id])
        assert box.depth("dc") == 0 and records_left(client, box) == 0
    finally:
        other.close()
