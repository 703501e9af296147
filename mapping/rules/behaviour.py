"""Rules of the inspection (INS-*), coercion (COE-*) and other_action (OTH-*) kinds.

Penalty rules live in ``penalty.py``; the counterparty rules shared by all four in ``counterparty.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapping.rules.compare import present, repeats
from mapping.rules.documents import impl_code_matches_org
from mapping.rules.facts import field_label
from mapping.rules.ordering import dates_in_order, times_in_order
from mapping.rules.violation import HOLDS, Result, RuleFn, Violation

_PASSING_RESULTS = frozenset({"合格", "未发现问题"})


def ins_001(record: Mapping[str, Any]) -> Result:
    names = record.get("inspector_names")
    if not names:
        return HOLDS
    if len(names) < 2:
        return (
            Violation(
                "inspector_names",
                f"inspector_names has {len(names)} entry; at least 2 inspectors are required",
                f"检查人员仅{len(names)}名，应不少于2名",
            ),
        )
    if len({name.strip() for name in names}) == len(names):
        return HOLDS
    return (
        Violation(
            "inspector_names",
            "inspector_names has entries that are the same after trimming",
            "检查人员中有重复的姓名",
        ),
    )


def ins_003(record: Mapping[str, Any]) -> Result:
    cert_nos = record.get("inspector_cert_nos")
    if not cert_nos:
        return HOLDS
    names = record.get("inspector_names") or ()
    if len(cert_nos) == len(names):
        return HOLDS
    return (
        Violation(
            "inspector_cert_nos",
            f"inspector_cert_nos has {len(cert_nos)} entries but inspector_names has {len(names)}",
            f"执法证号有{len(cert_nos)}个，检查人员有{len(names)}名，数量应一致",
        ),
    )


def ins_004(record: Mapping[str, Any]) -> Result:
    return tuple(
        Violation(f"check_items[{index}].item", f"check item {index} repeats an earlier item",
                  f"第{index + 1}个检查项与前面的检查项重复")
        for index, _ in repeats(record.get("check_items"), "item")
    )


def ins_005(record: Mapping[str, Any]) -> Result:
    result = record.get("check_result")
    if result not in _PASSING_RESULTS:
        return HOLDS
    if not any(entry.get("result") == "不合格" for entry in record.get("check_items") or ()):
        return HOLDS
    return (
        Violation(
            "check_result",
            f"a check item is 不合格 but check_result says {result}",
            f"存在不合格的检查项，检查结果却为“{result}”",
        ),
    )


def _absent_when_kind(kind_value: str, fields: tuple[str, ...]) -> RuleFn:
    """Rule: when compulsion_kind is ``kind_value``, each of ``fields`` is absent."""

    def rule(record: Mapping[str, Any]) -> Result:
        if record.get("compulsion_kind") != kind_value:
            return HOLDS
        return tuple(
            Violation(
                name,
                f"{name} must be absent when compulsion_kind is {kind_value}",
                f"行政强制种类为{kind_value}时不应填写{field_label('coercion', name)}",
            )
            for name in fields
            if present(record.get(name))
        )

    return rule


def _present_when_kind(kind_value: str, name: str) -> RuleFn:
    """Rule: when compulsion_kind is ``kind_value``, ``name`` is present."""

    def rule(record: Mapping[str, Any]) -> Result:
        if record.get("compulsion_kind") != kind_value or present(record.get(name)):
            return HOLDS
        return (
            Violation(
                name,
                f"{name} is expected when compulsion_kind is {kind_value}",
                f"行政强制种类为{kind_value}时应填写{field_label('coercion', name)}",
            ),
        )

    return rule


_MEASURE = "行政强制措施"
_EXECUTION = "行政强制执行"

RULES: Mapping[str, RuleFn] = {
    "INS-001": ins_001,
    "INS-002": times_in_order("inspection", "checked_at", "submitted_at", strict=True),
    "INS-003": ins_003,
    "INS-004": ins_004,
    "INS-005": ins_005,
    "INS-006": impl_code_matches_org,
    "COE-001": _absent_when_kind(_MEASURE, ("execution_type",)),
    "COE-002": _absent_when_kind(
        _EXECUTION, ("measure_type", "measure_start_at", "measure_end_at", "measure_extension")
    ),
    "COE-003": _present_when_kind(_MEASURE, "measure_type"),
    "COE-004": _present_when_kind(_EXECUTION, "execution_type"),
    "COE-005": dates_in_order("coercion", "measure_start_at", "measure_end_at"),
    "COE-006": dates_in_order("coercion", "measure_start_at", "submitted_at"),
    "OTH-001": dates_in_order("other_action", "started_at", "ended_at"),
    "OTH-002": dates_in_order("other_action", "started_at", "submitted_at"),
}
