"""Completing entries on the Redis outbox with and without the business key remembered from the claim:
either way the next version of the key, held behind the completed one, is released."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from gateway.stores.outbox import OutboxRow
from gateway.stores.redis_outbox import RedisOutbox

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


def version(record_id: str) -> OutboxRow:
    return OutboxRow(adapter="dc", record_id=record_id, kind="penalty", payload={"record_id": record_id},
                     enqueued_at=datetime.now(UTC), business_key=("same-key",))


@pytest.mark.parametrize("completer", ["claimer", "another instance"])
def test_completing_a_version_releases_the_next_one_of_its_key(redis_prefix: str, completer: str) -> None:
    claimer = RedisOutbox(redis.Redis.from_url(REDIS_URL), prefix=redis_prefix, consumer="w1")
    other = RedisOutbox(redis.Redis.from_url(REDIS_URL), prefix=redis_prefix, consumer="w2")
    try:
        claimer.put_many([version("v1"), version("v2")])
        [first] = claimer.claim("dc", 10, datetime.now(UTC))
        assert first.record_id == "v1"
        assert claimer.claim("dc", 10, datetime.now(UTC)) == []  # v2 waits behind v1
        (claimer if completer == "claimer" else other).complete([first.id])  # the key known, or read back
        [second] = claimer.claim("dc", 10, datetime.now(UTC))
        assert second.record_id == "v2"
        claimer.complete([second.id])
        assert claimer.depth("dc") == 0
    finally:
        claimer.close()
        other.close()
