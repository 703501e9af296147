"""Deleting a test's or a bench run's keys from the local Redis."""

from __future__ import annotations

import redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def drop_keys(pattern: str, url: str = REDIS_URL) -> None:
    """Delete every key matching ``pattern`` (e.g. ``prefix:*``)."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=pattern))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
