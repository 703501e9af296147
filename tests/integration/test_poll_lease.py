"""The Redis poll lease against the real Redis at 127.0.0.1:6379 (a unique key prefix per test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from connectors.base import ConnectorContext, PublishReceipt
from connectors.rest_poll import RestPollConnector
from gateway.leases import RedisPollLease, poll_lease_for
from tests.peers.eco_rest_server import PATH, EcoRestServer

pytestmark = pytest.mark.integration

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    value = f"sgwtest:{uuid.uuid4().hex}:"
    yield value
    client = Redis.from_url(URL)
    keys = [k async for k in client.scan_iter(match=f"{value}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_of_two_instances_only_one_acquires(prefix: str) -> None:
    a, b = poll_lease_for(URL, "eco", 5, key_prefix=prefix), poll_lease_for(URL, "eco", 5, key_prefix=prefix)
    try:
        assert await a.acquire() is True
        assert await b.acquire() is False
        assert await a.acquire() is True  # re-acquiring one's own lease keeps it
        assert await a.holder() == a.token
    finally:
        await a.release()
        await b.release()


async def test_a_non_holder_can_neither_renew_nor_release(prefix: str) -> None:
    a, b = poll_lease_for(URL, "eco", 5, key_prefix=prefix), poll_lease_for(URL, "eco", 5, key_prefix=prefix)
    try:
        assert await a.acquire()
        assert await b.renew() is False
        await b.release()
        assert await a.holder() == a.token
        assert await a.renew() is True
    finally:
        await a.release()
        await b.release()


async def test_another_instance_takes_over_after_expiry_and_the_old_holder_cannot_renew(prefix: str) -> None:
    client = Redis.from_url(URL)
    a = RedisPollLease(client, f"{prefix}eco", 0.3)
    b = RedisPollLease(client, f"{prefix}eco", 5)
    try:
        assert await a.acquire()
        assert not await b.acquire()
        await asyncio.sleep(0.45)  # a stopped renewing: its lease runs out
        assert await b.acquire()
        assert await a.renew() is False
        await a.release()  # must not delete b's lease
        assert await b.holder() == b.token
    finally:
        await b.release()
        await client.aclose()


async def test_release_lets_the_other_instance_acquire_at_once(prefix: str) -> None:
    a, b = poll_lease_for(URL, "eco", 30, key_prefix=prefix), poll_lease_for(URL, "eco", 30, key_prefix=prefix)
    assert await a.acquire()
    await a.release()
    try:
        assert await b.acquire()
    finally:
        await b.release()


async def test_redis_unreachable_means_not_held() -> None:
    lease = poll_lease_for("redis://127.0.0.1:1/0", "eco", 5)
    assert await lease.acquire() is False
    assert await lease.renew() is False
    await lease.release()


async def test_two_connectors_sharing_a_lease_poll_the_source_once(prefix: str) -> None:
    async with EcoRestServer() as peer:
        peer.add(3)
        options: dict[str, Any] = {"base_url": peer.base_url, "profile": "eco-rest", "client_id": "sgw",
                                   "client_secret": "s3cret", "initial_since": "2025-06-01T00:00:00+08:00",
                                   "poll_interval_s": 0.2}
        config = RestPollConnector.Config.model_validate(options)
        connectors = [RestPollConnector("eco", config, ConnectorContext(
            lease=poll_lease_for(URL, "eco", 5, key_prefix=prefix))) for _ in range(2)]
        published: list[str] = []

        async def publish(envelope: Any) -> Any:
            published.append(envelope.connector)
            return PublishReceipt(envelope_id=envelope.envelope_id, accepted=3, rejected=0, duplicate=0)

        tasks = [asyncio.create_task(c.run(publish)) for c in connectors]
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while sum(c.stats.skipped_cycles for c in connectors) < 2 and loop.time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        polled = [c for c in connectors if c.stats.cycles]
        assert len(polled) == 1
        assert sum(c.stats.skipped_cycles for c in connectors) >= 2
        assert len(published) == 1  # one page, from the holder only
        assert peer.token_requests == 1
        assert len([h for h in peer.hits_on(PATH) if "updatedSince" in h.query]) == 1
