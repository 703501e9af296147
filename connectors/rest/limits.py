"""Pacing of requests: a token-bucket rate limit, Retry-After parsing and exponential backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable


class TokenBucket:
    """At most ``rate_per_s`` requests per second on average, bursts up to ``burst``."""

    def __init__(self, rate_per_s: float, burst: float | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self._rate_per_s = rate_per_s
        self._burst = burst if burst is not None else max(1.0, rate_per_s)
        self._tokens = self._burst
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._last: float | None = None
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        if self._last is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate_per_s)
        self._last = now

    def wait_s(self) -> float:
        """How long until a token is available (0 when one is); takes none."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate_per_s

    async def acquire(self) -> None:
        async with self._lock:
            while (delay_s := self.wait_s()) > 0:
                await asyncio.sleep(delay_s)
            self._tokens -= 1


class Backoff:
    """Delays after consecutive failures: first, 2×first, 4×first … capped, each shortened by up to
    ``jitter`` (a fraction) so that instances restarted together do not retry in lockstep."""

    def __init__(self, first_s: float = 1.0, max_s: float = 300.0, jitter: float = 0.2,
                 rand: Callable[[], float] = random.random) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.jitter = jitter
        self._rand = rand
        self.failures = 0

    def next_delay_s(self) -> float:
        base_s = min(self.max_s, self.first_s * (2 ** min(self.failures, 30)))
        self.failures += 1
        return float(base_s * (1 - self.jitter * self._rand()))

    def reset(self) -> None:
        self.failures = 0

