"""Rules of the penalty kind (PEN-*)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mapping.rules.compare import present, to_decimal
from mapping.rules.facts import field_label
from mapping.rules.ordering import all_of, dates_in_order
from mapping.rules.violation import HOLDS, Result, RuleFn, Violation, fires_only_with

_KIND = "penalty"
_FINE = "罚款"
_ZERO = Decimal(0)
_SUMMARY_CODES = frozenset({"警告", _FINE})  # the only penalties of the 简易程序 (行政处罚法 Art. 51)
_SUMMARY_LIMITS = {"1": Decimal("200.00"), "2": Decimal("3000.00"), "3": Decimal("3000.00")}


_last_fine: tuple[Any, Decimal | None] = (None, None)
"""The last amount text read and its value: PEN-005, 006 and 009 read the same record's in turn."""


def _fine(record: Mapping[str, Any], name: str = "fine_amount_yuan") -> Decimal | None:
    global _last_fine
    value = record.get(name)
    if not value:
        return None
    last = _last_fine  # one read: a tuple swapped whole is safe across threads
    if last[0] is value:
        return last[1]
    amount = to_decimal(value)
    _last_fine = (value, amount)
    return amount


def _has_fine_type(record: Mapping[str, Any]) -> bool:
    return _FINE in (record.get("penalty_types") or ())


def pen_005(record: Mapping[str, Any]) -> Result:
    if not _has_fine_type(record):
        return HOLDS
    fine = _fine(record)
    if fine is not None and fine > _ZERO:
        return HOLDS
    return (
        Violation(
            "fine_amount_yuan",
            "penalty_types contains 罚款 but fine_amount_yuan is absent or not above 0",
            "处罚种类含罚款，但罚款金额未填写或不大于0",
        ),
    )


def pen_006(record: Mapping[str, Any]) -> Result:
    fine = _fine(record)
    if fine is None or fine <= _ZERO or _has_fine_type(record):
        return HOLDS
    return (
        Violation(
            "penalty_types",
            f"fine_amount_yuan is {fine} but penalty_types does not contain 罚款",
            f"罚款金额为{fine}元，但处罚种类不含罚款",
        ),
    )


def pen_007(record: Mapping[str, Any]) -> Result:
    if record.get("no_penalty") is not True:
        return HOLDS
    found: list[Violation] = []
    if present(record.get("penalty_types")):
        found.append(
            Violation(
                "penalty_types",
                "no_penalty is true but penalty_types is present",
                "不予行政处罚时不应填写处罚种类",
            )
        )
    fine = _fine(record)
    if fine is not None and fine != _ZERO:
        found.append(
            Violation(
                "fine_amount_yuan",
                f"no_penalty is true but fine_amount_yuan is {fine}",
                f"不予行政处罚时罚款金额应为空或0，实为{fine}元",
            )
        )
    return tuple(found)


def pen_008(record: Mapping[str, Any]) -> Result:
    if record.get("procedure_type") != "01" or record.get("hearing_held") is not True:
        return HOLDS
    return (
        Violation(
            "hearing_held",
            "procedure_type is 01 (summary procedure) but hearing_held is true",
            "简易程序案件不应举行听证",
        ),
    )


def pen_009(record: Mapping[str, Any]) -> Result:
    if record.get("procedure_type") != "01":
        return HOLDS
    nature = record.get("counterparty_nature")
    limit = _SUMMARY_LIMITS.get(nature) if isinstance(nature, str) else None
    fine = _fine(record)
    if limit is None or fine is None or fine <= limit:
        return HOLDS
    return (
        Violation(
            "fine_amount_yuan",
            f"fine_amount_yuan {fine} exceeds {limit} for the summary procedure",
            f"简易程序罚款金额{fine}元超过{limit}元",
        ),
    )


def pen_010(record: Mapping[str, Any]) -> Result:
    if record.get("procedure_type") != "01":
        return HOLDS
    return tuple(
        Violation(
            f"penalty_types[{index}]",
            f"penalty type {code} is not 警告 or 罚款, the only types of the summary procedure",
            f"简易程序的处罚种类只能是警告或罚款，不能是{code}",
        )
        for index, code in enumerate(record.get("penalty_types") or ())
        if code not in _SUMMARY_CODES
    )


def _flag_needed(flag: str, details: tuple[str, str]) -> RuleFn:
    """Rule: when any of ``details`` is present, ``flag`` is true."""

    first, second = details

    def rule(record: Mapping[str, Any]) -> Result:
        if record.get(first) is None and record.get(second) is None:
            return HOLDS  # the common case, decided without listing them
        given = [name for name in details if present(record.get(name))]
        if not given or record.get(flag) is True:
            return HOLDS
        return (
            Violation(
                flag,
                f"{' and '.join(given)} present but {flag} is not true",
                f"已填写{'、'.join(field_label(_KIND, n) for n in given)}，{field_label(_KIND, flag)}应为是",
            ),
        )

    return fires_only_with(rule, (first,), (second,))


def pen_013(record: Mapping[str, Any]) -> Result:
    paid = _fine(record, "fine_paid_yuan")
    if paid is None:  # most records say nothing of payment: the fine is not read
        return HOLDS
    fine = _fine(record)
    if fine is None or paid <= fine:
        return HOLDS
    return (
        Violation(
            "fine_paid_yuan",
            f"fine_paid_yuan {paid} exceeds fine_amount_yuan {fine} (加处罚款 included?)",
            f"实缴罚款金额{paid}元大于罚款金额{fine}元（是否含加处罚款？）",
        ),
    )


RULES: Mapping[str, RuleFn] = {
    "PEN-001": dates_in_order(_KIND, "case_filed_at", "closed_at"),
    "PEN-002": dates_in_order(_KIND, "case_filed_at", "decided_at"),
    "PEN-003": dates_in_order(_KIND, "decided_at", "closed_at"),
    "PEN-004": all_of(
        dates_in_order(_KIND, "decided_at", "submitted_at"),
        dates_in_order(_KIND, "closed_at", "submitted_at"),
    ),
    "PEN-005": pen_005,
    "PEN-006": pen_006,
    "PEN-007": pen_007,
    "PEN-008": pen_008,
    "PEN-009": pen_009,
    "PEN-010": pen_010,
    "PEN-011": _flag_needed("legal_review", ("legal_review_date", "legal_review_opinion")),
    "PEN-012": _flag_needed(
        "collective_discussion", ("collective_discussion_date", "collective_discussion_conclusion")
    ),
    "PEN-013": fires_only_with(pen_013, ("fine_paid_yuan", "fine_amount_yuan")),
}
