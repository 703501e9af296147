"""Poll leases on Redis: only one gateway instance polls a given connector at a time.

The lease is a key holding this instance's random token with a TTL (``SET NX PX``). Renewal and
release compare the token first (a Lua compare-and-set), so an instance whose lease expired and
was taken over can neither extend nor delete the new holder's lease. When the holder stops
renewing (crash, partition), the key expires and another instance's ``acquire`` takes over.
Redis being unreachable means "not held": polling twice is worse than polling late.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "sgw:lease:"

# Extend only if we still hold it (KEYS[1] = lease key, ARGV[1] = token, ARGV[2] = ttl ms).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Delete only if we still hold it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisPollLease:
    """A PollLease (connectors.base) held in Redis under ``key`` for ``ttl_s`` per acquire/renew."""

    def __init__(self, redis: Redis, key: str, ttl_s: float, *, token: str | None = None,
                 owns_client: bool = False) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.key = key
        self.token = token or secrets.token_hex(16)
        self._redis = redis
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._owns_client = owns_client

    async def acquire(self) -> bool:
        """Take the lease if free, or keep it if already ours; True when this instance holds it."""
        try:
            if await self._redis.set(self.key, self.token, nx=True, px=self._ttl_ms):
                return True
            return bool(await self._eval(_RENEW, str(self._ttl_ms)))
        except RedisError as exc:
            log.warning("lease %s: redis unavailable, treated as not held: %s", self.key, type(exc).__name__)
            return False

    async def renew(self) -> bool:
        """Extend the lease only while this instance still holds it."""
        try:
            return bool(await self._eval(_RENEW, str(self._ttl_ms)))
        except RedisError as exc:
            log.warning("lease %s: redis unavailable on renew, treated as lost: %s", self.key, type(exc).__name__)
            return False

    async def release(self) -> None:
        """Give the lease up if still ours (another instance may take it at once); close an owned client."""
        try:
            await self._eval(_RELEASE)
        except RedisError as exc:
            log.warning("lease %s: not released (it will expire): %s", self.key, type(exc).__name__)
        finally:
            if self._owns_client:
                await self._redis.aclose()

    async def holder(self) -> str | None:
        """The token of the current holder (ops, tests)."""
        value: Any = await self._redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    async def _eval(self, script: str, *args: str) -> Any:
        return await self._redis.eval(script, 1, self.key, self.token, *args)  # type: ignore[misc]


def poll_lease_for(redis_url: str, connector_id: str, ttl_s: float, *,
                   key_prefix: str = DEFAULT_PREFIX) -> RedisPollLease:
    """The poll lease of one connector; the client connects on first use (nothing at construction)."""
    client = Redis.from_url(redis_url)
    return RedisPollLease(client, f"{key_prefix}{connector_id}", ttl_s, owns_client=True)
