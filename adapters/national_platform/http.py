"""HTTP helpers shared by the outbound adapters: Retry-After and a JSON body read defensively."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or {} when it is not one (an error page from a proxy, say)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:  # a ValueError; invalid UTF-8 included
        return {}
    return value if isinstance(value, dict) else {}
