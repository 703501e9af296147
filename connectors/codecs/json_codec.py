"""JSON (UTF-8, optional BOM) -> the parsed tree, with orjson."""

from __future__ import annotations

import codecs
from typing import Any

import orjson

from gateway.errors import PayloadError

from .limits import DecodeLimits, check_size


def decode_json(data: bytes, *, limits: DecodeLimits) -> Any:
    """Parsed JSON; ``MALFORMED`` with line and column, ``ENCODING`` for invalid UTF-8.

    orjson refuses nesting deeper than 1024 (``MALFORMED``), NaN/Infinity and integers beyond 64 bits.
    """
    check_size(len(data), limits)
    try:
        return orjson.loads(data.removeprefix(codecs.BOM_UTF8))
    except orjson.JSONDecodeError as exc:
        location = f"line {exc.lineno}, column {exc.colno}"
        if "UTF-8" in exc.msg:
            raise PayloadError(
                "ENCODING", f"JSON is not valid UTF-8: {exc.msg}（JSON 须为 UTF-8 编码）", location=location
            ) from exc
        raise PayloadError(
            "MALFORMED", f"invalid JSON: {exc.msg}（JSON 格式错误）", location=location
        ) from exc


def decode(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    if encoding is not None and encoding.lower().replace("_", "-") not in {"utf-8", "utf8", "utf-8-sig"}:
        raise PayloadError("ENCODING", f"JSON is UTF-8; encoding {encoding!r} is not supported")
    return decode_json(data, limits=limits)
