"""News of queued records between gateway instances, over Redis pub/sub.

A delivery worker wakes when records are queued (``DeliveryWorker.notify``). In one process the
publisher tells it directly; with the roles split over processes (``sgw run --role ingest`` and
``--role delivery`` on one Redis outbox) nothing did, and a delivery instance found new records only
when its poll (``max_wait_s``, 0.5 s by default) came round: half of it on average, added to every
record's latency. Now an ingest instance publishes on one channel after each write that queued
records, and every delivery instance listens and wakes its workers.

Best effort, never on the write's path: a lost message costs what it cost before, the poll. While a
message is on its way, further news is folded into one more message after it, so a busy ingest
sends at most one message per round trip, not one per write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def news_channel(prefix: str) -> str:
    """The channel of a gateway's Redis keys (``stores.redis_prefix``)."""
    return f"{prefix}:outbox-news"


class OutboxNews:
    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self.channel = channel
        self._sending: asyncio.Task[None] | None = None
        self._again = False

    @classmethod
    def from_url(cls, url: str, prefix: str) -> OutboxNews:
        return cls(Redis.from_url(url), news_channel(prefix))

    def announce(self) -> None:
        """Records were queued (called on the event loop, after the write committed)."""
        if self._sending is not None and not self._sending.done():
            self._again = True
            return
        self._sending = asyncio.create_task(self._send(), name="outbox news")

    async def _send(self) -> None:
        while True:
            self._again = False
            try:
                await self._redis.publish(self.channel, b"queued")
            except RedisError as exc:  # the delivery instances poll meanwhile
                log.warning("outbox news not sent: %s", exc)
                return
            if not self._again:
                return

    async def listen(self, on_news: Callable[[], None]) -> None:
        """Call ``on_news`` for every message, until cancelled (a lost connection raises: the
        supervisor reconnects, and the workers' poll covers the gap)."""
        async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self.channel)
            on_news()  # news may have come while (re)subscribing
            async for _message in pubsub.listen():
                on_news()

    async def close(self) -> None:
        if self._sending is not None:
            self._sending.cancel()
            await asyncio.gather(self._sending, return_exceptions=True)
        await self._redis.aclose()
