"""Structured JSON logs, with personal information never in clear.

``pii_tag(value)`` gives ``pii:`` + the first 12 hex digits of HMAC-SHA256(log key, value), as the
standard prescribes for correlating a personal value without revealing it. ``PiiMasker`` applies
it to every log line: resident ID numbers and phone numbers wherever they appear in the message,
the extra fields or a traceback, and the whole value of extra fields that name a person
(``complainant_name``...), which no pattern can recognise. The record id being worked on, set
with ``record_context``, goes on every line logged inside it.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}

# 18-digit resident ID (last character may be X), 15-digit legacy ID, mainland mobile numbers
# (optionally +86), landlines with an area code. Digits around a match must not be digits, so
# record ids, USCCs (18 characters with letters) and timestamps are left alone.
PII_PATTERNS = (
    re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
               r"(?![0-9A-Za-z])"),
    re.compile(r"(?<![0-9A-Za-z])[1-9]\d{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}(?![0-9A-Za-z])"),
    re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![0-9])"),
    re.compile(r"(?<![0-9])0\d{2,3}-\d{7,8}(?![0-9])"),
)
# Extra fields whose whole value is personal information.
PII_FIELDS = frozenset({
    "complainant", "complainant_name", "complainant_phone", "complainant_id", "name", "person_name",
    "phone", "mobile", "id_number", "id_card", "officer_id_card", "contact", "contact_name", "contact_phone",
})

_record_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("sgw_record_id", default=None)


@contextmanager
def record_context(record_id: str | None) -> Iterator[None]:
    """Lines logged inside carry ``record_id`` (unless the call gives its own)."""
    token = _record_id.set(record_id)
    try:
        yield
    finally:
        _record_id.reset(token)


class PiiTagger:
    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def __call__(self, value: str) -> str:
        return "pii:" + hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


class PiiMasker:
    """Replaces personal values in text by their tags."""

    def __init__(self, tagger: PiiTagger | None = None) -> None:
        self._tag = tagger or PiiTagger()

    def text(self, value: str) -> str:
        for pattern in PII_PATTERNS:
            value = pattern.sub(lambda m: self._tag(m.group(0)), value)
        return value

    def field(self, name: str, value: Any) -> Any:
        if name.lower() in PII_FIELDS and value is not None:
            return self._tag(str(value))
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.field(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.field(name, v) for v in value]
        return value


class JsonFormatter(logging.Formatter):
    def __init__(self, masker: PiiMasker | None = None) -> None:
        super().__init__()
        self._masker = masker

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (record_id := _record_id.get()) is not None:
            out["record_id"] = record_id
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if self._masker is not None:
            out = {k: v if k in ("ts", "level", "logger", "record_id") else self._masker.field(k, v)
                   for k, v in out.items()}
        return json.dumps(out, ensure_ascii=False, default=str)


class MaskingTextFormatter(logging.Formatter):
    """The plain-text form (``logging.json_format: false``), masked the same way."""

    def __init__(self, masker: PiiMasker) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s")
        self._masker = masker

    def format(self, record: logging.LogRecord) -> str:
        return self._masker.text(super().format(record))


def configure_logging(level: str = "INFO", *, json_format: bool = True, pii_key: bytes | None = None) -> None:
    """The production logging setup: one handler on the root logger, PII masked on every line.
    Without ``pii_key`` the tags are stable within the process only."""
    masker = PiiMasker(PiiTagger(pii_key))
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(masker) if json_format else MaskingTextFormatter(masker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
