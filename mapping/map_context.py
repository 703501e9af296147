"""What mapping one source record carries along: findings, provenance, and the value helpers.

Values are "absent" when missing, ``None``, ``""``, ``[]`` or whitespace only; :func:`clean` turns
every absent value into ``None`` and trims strings (``str.strip`` includes U+3000), so the rest of
the engine only tests ``is None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from mapping.findings import Finding, Severity


class TransformFailure(Exception):
    """A transform could not convert a value; becomes a finding on the field being mapped."""

    def __init__(self, code: str, message_en: str, message_zh: str, severity: Severity = "error") -> None:
        super().__init__(message_en)
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh
        self.severity: Severity = severity


class MapContext:
    """Per source record (one for a payload, reset per record by ``CompiledMapping``): the envelope
    meta, the record built so far, findings and provenance."""

    __slots__ = ("field", "findings", "meta", "prov_override", "provenance", "read_record", "record",
                 "src_prefix")

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self.meta = meta
        self.field = ""
        self.findings: list[Finding] = []
        self.provenance: dict[str, str] = {}
        self.record: dict[str, Any] = {}
        self.prov_override: str | None = None
        self.src_prefix = ""
        self.read_record = False
        """Set by a transform whose result this time depended on the record, not the value alone
        (a list lookup narrowed by another field): a memo must not keep it."""

    def report(self, code: str, severity: Severity, message_en: str, message_zh: str) -> None:
        self.findings.append(Finding(code, self.field, message_en, message_zh, severity))

    def fail(self, failure: TransformFailure) -> None:
        self.report(failure.code, failure.severity, failure.message_en, failure.message_zh)


Evaluator = Callable[[Any, MapContext], Any]
"""Computes a value from the current source (record or list element); ``None`` means absent."""


def clean(value: Any) -> Any:
    """Trim strings; absent values become None; list elements cleaned and absent ones dropped."""
    kind = type(value)
    if kind is str:
        return value.strip() or None
    if kind is list:
        items = [c for c in (clean(v) for v in value) if c is not None]
        return items or None
    return value


def clean_meta(value: Any) -> Any:
    """Meta may hold datetimes (``received_at``): give them to transforms as ISO text."""
    if type(value) is str:  # the usual meta value, without the slower isinstance of a union
        return value.strip() or None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return clean(value)


def as_text(value: Any) -> str:
    """Source scalars as text: numbers without float noise, booleans as true/false."""
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    raise TransformFailure(
        "TYPE",
        f"expected a text or number value, got {type(value).__name__}",
        f"应为文本或数字，实际为{_zh_type(value)}",
    )


def as_texts(value: Any, ctx: MapContext) -> list[str]:
    """A value (a scalar or a list of them) as texts; one that is no text reports and gives none."""
    try:
        return [as_text(v) for v in value] if type(value) is list else [as_text(value)]
    except TransformFailure as failure:
        ctx.fail(failure)
        return []


def _zh_type(value: Any) -> str:
    if isinstance(value, list):
        return "列表"
    if isinstance(value, dict):
        return "对象"
    return type(value).__name__


def quote(value: Any, pii: bool) -> str:
    """A value for a message: quoted, or withheld for personal information."""
    if pii:
        return "(value withheld: personal information)"
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "an object"
    text = value if isinstance(value, str) else as_text(value)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def quote_zh(value: Any, pii: bool) -> str:
    if pii:
        return "（个人信息，不显示取值）"
    if isinstance(value, list | dict):
        return _zh_type(value)
    text = value if isinstance(value, str) else as_text(value)
    return "“" + (text if len(text) <= 80 else text[:77] + "...") + "”"
