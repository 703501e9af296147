"""The source's call limits per account: at most N calls in flight and M call starts a minute."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Sleep = Callable[[float], Awaitable[None]]


class CallGate:
    """Spaces call starts ``60 / max_calls_per_min`` seconds apart and bounds concurrency.

    Even spacing rather than a burst budget: any 60-second span then holds at most the limit, so
    the source never answers errorCode 3001 because of us.
    """

    def __init__(self, *, max_calls_per_min: int, max_concurrency: int,
                 clock: Callable[[], float] | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self._spacing_s = 60.0 / max_calls_per_min
        self._slots = asyncio.Semaphore(max_concurrency)
        self._clock = clock
        self._sleep = sleep
        self._next_start_s: float | None = None
        self._lock = asyncio.Lock()

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        async with self._slots:
            await self._wait_turn()
            yield

    async def _wait_turn(self) -> None:
        async with self._lock:
            now = self._now()
            start = now if self._next_start_s is None else max(now, self._next_start_s)
            self._next_start_s = start + self._spacing_s
        if start > now:
            await self._sleep(start - now)
