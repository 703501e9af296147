"""News of queued records between instances, over the real Redis: a delivery instance whose poll is
far off still delivers what an ingest instance queued at once, woken by the ingest's news."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.outbox_news import OutboxNews
from gateway.runtime import Runtime
from gateway.settings import with_roles
from tests.integration.test_roles import REDIS_URL, penalty_rows, replayed, settings_for, wait_for

pytestmark = pytest.mark.integration

LONG_POLL_S = 60.0  # the delivery worker's poll: never reached within the test's timeout


async def test_an_announcement_reaches_every_listener(redis_prefix: str) -> None:
    sender = OutboxNews.from_url(REDIS_URL, redis_prefix)
    listeners = [OutboxNews.from_url(REDIS_URL, redis_prefix) for _ in range(2)]
    heard = [asyncio.Event() for _ in listeners]
    subscribed = [asyncio.Event() for _ in listeners]

    def on_news(n: int) -> Callable[[], None]:
        def heard_it() -> None:
            if subscribed[n].is_set():
                heard[n].set()
            subscribed[n].set()  # the first call: subscribed (news may have come meanwhile)
        return heard_it

    tasks = [asyncio.create_task(listener.listen(on_news(n))) for n, listener in enumerate(listeners)]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.wait() for s in subscribed)), 5)
        sender.announce()
        await asyncio.wait_for(asyncio.gather(*(h.wait() for h in heard)), 5)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for news in (sender, *listeners):
            await news.close()


async def test_a_delivery_instance_delivers_what_another_instance_queued_without_waiting_for_its_poll(
        tmp_path: Path, redis_prefix: str) -> None:
    settings = settings_for(tmp_path, redis_prefix)
    settings = settings.model_copy(update={"adapters": tuple(
        a.model_copy(update={"max_wait_s": LONG_POLL_S}) for a in settings.adapters)})
    delivery = Runtime(with_roles(settings, ("delivery",)))
    await delivery.start()
    try:
        await wait_for(lambda: delivery.store.depth() == 0)  # its first claims found nothing: idle now
        await asyncio.sleep(0.2)
        ingest = Runtime(with_roles(settings, ("ingest",)))
        await ingest.start()
        try:
            accepted = await replayed(ingest)
            await wait_for(lambda: penalty_rows(tmp_path) == accepted, timeout_s=10)
        finally:
            await ingest.stop()
    finally:
        await delivery.stop()
