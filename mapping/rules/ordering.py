"""Rule factories for "A is not after B" statements, the most common kind of cross-field rule.

Each factory returns a rule closure with its field names and messages bound once, so a call is
two dict lookups and a comparison. Both fields must be present for the comparison to apply
(statements say "when both present", and absent required fields are reported as REQUIRED).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapping.rules.compare import CLOCK_SKEW, date_key, to_datetime
from mapping.rules.facts import field_label
from mapping.rules.violation import HOLDS, Result, RuleFn, Violation, fires_only_with, fires_with

_PLAIN_DATETIME_LENGTH = len("2025-01-01T00:00:00+08:00")
_SHANGHAI_SUFFIX = "+08:00"


def dates_in_order(kind: str, earlier: str, later: str, *, report_on: str | None = None) -> RuleFn:
    """Rule: the calendar date of ``earlier`` <= that of ``later`` (datetimes taken in Asia/Shanghai)."""
    field = report_on or earlier

    def rule(record: Mapping[str, Any]) -> Result:
        first, second = record.get(earlier), record.get(later)
        if not first or not second:
            return HOLDS
        # date_key inlined for the common forms (a date, a +08:00 datetime): it runs for every pair
        first_day = first[:10] if len(first) == 10 or first.endswith(_SHANGHAI_SUFFIX) else date_key(first)
        second_day = second[:10] if len(second) == 10 or second.endswith(_SHANGHAI_SUFFIX) else date_key(second)
        if first_day <= second_day:
            return HOLDS
        return (
            Violation(
                field,
                f"{earlier} ({first_day}) is after {later} ({second_day})",
                f"{field_label(kind, earlier)}（{first_day}）晚于{field_label(kind, later)}（{second_day}）",
            ),
        )

    return fires_only_with(rule, (earlier, later))


def times_in_order(
    kind: str,
    earlier: str,
    later: str,
    *,
    skew: bool = False,
    strict: bool = False,
    report_on: str | None = None,
) -> RuleFn:
    """Rule: ``earlier`` <= ``later`` (+ PT10M when ``skew``; ``earlier`` < ``later`` when ``strict``)."""
    field = report_on or earlier
    allowance = CLOCK_SKEW if skew else None
    relation_en = "not before" if strict else "after"
    relation_zh = "不早于" if strict else "晚于"
    skew_en = " plus 10 minutes" if skew else ""
    skew_zh = "（允许10分钟误差）" if skew else ""

    def rule(record: Mapping[str, Any]) -> Result:
        first, second = record.get(earlier), record.get(later)
        if not first or not second:
            return HOLDS
        # Two validated datetimes without fraction, both +08:00: their text order is their order.
        if (len(first) == len(second) == _PLAIN_DATETIME_LENGTH and first.endswith(_SHANGHAI_SUFFIX)
                and second.endswith(_SHANGHAI_SUFFIX) and (first < second or (first == second and not strict))):
            return HOLDS
        first_at, second_at = to_datetime(first), to_datetime(second)
        if allowance is not None:
            second_at += allowance
        if first_at < second_at or (first_at == second_at and not strict):
            return HOLDS
        return (
            Violation(
                field,
                f"{earlier} ({first}) is {relation_en} {later} ({second}){skew_en}",
                f"{field_label(kind, earlier)}（{first}）{relation_zh}"
                f"{field_label(kind, later)}（{second}）{skew_zh}",
            ),
        )

    return fires_only_with(rule, (earlier, later))


def all_of(*rules: RuleFn) -> RuleFn:
    """One rule whose statement is the conjunction of several orderings."""

    def rule(record: Mapping[str, Any]) -> Result:
        found: Result = HOLDS
        for part in rules:
            result = part(record)
            if result:
                found += tuple(result)
        return found

    declared = [fires_with(part) for part in rules]
    if any(sets is None for sets in declared):
        return rule
    return fires_only_with(rule, *(fields for sets in declared if sets is not None for fields in sets))
