"""Rules of every kind: COM-001 (record), COM-005 and COM-006 (cross-record).

COM-002, COM-003 and COM-004 are checked value by value by the field validator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapping.rules.compare import present
from mapping.rules.facts import business_keys
from mapping.rules.ordering import times_in_order
from mapping.rules.violation import HOLDS, CrossRecordRuleFn, RecordHistory, Result, RuleFn, Violation


def business_key_of(record: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """(kind, business key values) of a record; None when the kind is unknown or a key part is absent."""
    kind = record.get("record_kind")
    fields = business_keys().get(kind) if isinstance(kind, str) else None
    if kind is None or fields is None:
        return None
    values: list[str] = []
    for name in fields:
        value = record.get(name)
        if value.__class__ is str:  # the common case, spelt out: COM-005/006 run on every record
            if not value:
                return None
            values.append(value)
        elif not present(value):
            return None
        else:
            values.append(str(value))
    return kind, tuple(values)


def com_005(record: Mapping[str, Any], history: RecordHistory) -> Result:
    if record.get("operation") != "i":
        return HOLDS
    key = business_key_of(record)
    if key is None or not history.has_accepted(*key):
        return HOLDS
    return (
        Violation(
            "operation",
            "operation is i but a record with the same business key was accepted before; processed as u",
            "操作类型为新增（i），但已接收过相同业务主键的记录，按更新（u）处理",
        ),
    )


def com_006(record: Mapping[str, Any], history: RecordHistory) -> Result:
    operation = record.get("operation")
    if operation not in ("u", "d"):
        return HOLDS
    key = business_key_of(record)
    if key is None or history.has_accepted(*key):
        return HOLDS
    if operation == "u":
        en, zh = "processed as an insert", "按新增处理"
    else:
        en, zh = "the deletion is recorded and forwarded", "删除仍予记录并转发"
    return (
        Violation(
            "operation",
            f"operation is {operation} but no record with the same business key was accepted before; {en}",
            f"操作类型为{operation}，但未接收过相同业务主键的记录，{zh}",
        ),
    )


RULES: Mapping[str, RuleFn] = {
    "COM-001": times_in_order("common", "submitted_at", "received_at", skew=True),
}

CROSS_RECORD_RULES: Mapping[str, CrossRecordRuleFn] = {
    "COM-005": com_005,
    "COM-006": com_006,
}

FIELD_LEVEL_RULES = frozenset({"COM-002", "COM-003", "COM-004"})
