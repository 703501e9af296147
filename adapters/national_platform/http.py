"""HTTP helper shared by the outbound adapters: a JSON body read defensively (Retry-After is
``gateway.errors.retry_after_s``)."""

from __future__ import annotations

from typing import Any

import orjson


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or {} when it is not one (an error page from a proxy, say)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:  # a ValueError; invalid UTF-8 included
        return {}
    return value if isinstance(value, dict) else {}
