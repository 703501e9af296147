"""Rules of credit_license (CLI-*), credit_penalty (CPE-*) and credit_list (CLS-*).

The counterparty rules shared by the two 双公示 kinds are in ``credit_subject.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mapping.rules.compare import present, to_date, to_decimal
from mapping.rules.ordering import all_of, dates_in_order
from mapping.rules.violation import HOLDS, CrossRecordRuleFn, RecordHistory, Result, RuleFn, Violation

_FINE = "罚款"
_ZERO = Decimal(0)
_ABNORMAL_LIST = "经营异常名录"
_ABNORMAL_MAX_YEARS = 3  # S48: after 3 years on the abnormal list the subject moves to the 严重违法失信名单


def _fine(record: Mapping[str, Any]) -> Decimal | None:
    value = record.get("fine_amount_yuan")
    return to_decimal(value) if value else None


def _has_fine_category(record: Mapping[str, Any]) -> bool:
    return _FINE in (record.get("penalty_categories") or ())


def cpe_004(record: Mapping[str, Any]) -> Result:
    fine = _fine(record)
    if fine is None or fine > _ZERO or not _has_fine_category(record):
        return HOLDS
    return (
        Violation(
            "fine_amount_yuan",
            f"penalty_categories contains 罚款 but fine_amount_yuan is {fine}",
            f"处罚类别含罚款，但罚款金额为{fine}元",
        ),
    )


def cpe_005(record: Mapping[str, Any]) -> Result:
    fine = _fine(record)
    if fine is None or fine <= _ZERO or _has_fine_category(record):
        return HOLDS
    return (
        Violation(
            "penalty_categories",
            f"fine_amount_yuan is {fine} but penalty_categories does not contain 罚款",
            f"罚款金额为{fine}元，但处罚类别不含罚款",
        ),
    )


def cpe_006(record: Mapping[str, Any], history: RecordHistory) -> Result:
    fine, org, doc_no = _fine(record), record.get("penalty_org_uscc"), record.get("decision_doc_no")
    # An optional capability of the history (AcceptedValues); getattr is far cheaper than a
    # runtime Protocol isinstance check.
    lookup = getattr(history, "accepted_value", None)
    if fine is None or not org or not doc_no or lookup is None:
        return HOLDS
    earlier = lookup("penalty", (org, doc_no), "fine_amount_yuan")
    if not present(earlier) or to_decimal(str(earlier)) == fine:
        return HOLDS
    return (
        Violation(
            "fine_amount_yuan",
            f"fine_amount_yuan {fine} differs from the accepted penalty record's {earlier} (万元/元 mix-up?)",
            f"罚款金额{fine}元与已接收的行政处罚记录（{earlier}元）不一致（是否混淆了万元与元？）",
        ),
    )


def cls_003(record: Mapping[str, Any]) -> Result:
    if not present(record.get("listed_reason_code")) or record.get("list_type") == _ABNORMAL_LIST:
        return HOLDS
    return (
        Violation(
            "listed_reason_code",
            "listed_reason_code applies only to list_type 经营异常名录",
            "列入经营异常名录事由仅适用于经营异常名录",
        ),
    )


def cls_004(record: Mapping[str, Any]) -> Result:
    if record.get("list_type") != _ABNORMAL_LIST or present(record.get("removed_on")):
        return HOLDS
    listed_on, received_at = record.get("listed_on"), record.get("received_at")
    if not listed_on or not received_at:
        return HOLDS
    received_on = to_date(received_at)
    try:
        limit = received_on.replace(year=received_on.year - _ABNORMAL_MAX_YEARS)
    except ValueError:  # 29 February: three years earlier has none
        limit = received_on.replace(year=received_on.year - _ABNORMAL_MAX_YEARS, day=28)
    if listed_on >= limit.isoformat():
        return HOLDS
    return (
        Violation(
            "listed_on",
            f"listed on the abnormal-operation list on {listed_on}, more than 3 years ago and not removed; "
            "due for the serious-violation list",
            f"列入经营异常名录（{listed_on}）已满3年仍未移出，应列入严重违法失信名单",
        ),
    )


RULES: Mapping[str, RuleFn] = {
    "CLI-001": dates_in_order("credit_license", "valid_from", "valid_to"),
    "CLI-002": dates_in_order("credit_license", "decided_on", "submitted_at"),
    "CLI-003": dates_in_order("credit_license", "decided_on", "valid_from", report_on="valid_from"),
    "CPE-001": dates_in_order("credit_penalty", "decided_on", "submitted_at"),
    "CPE-002": dates_in_order("credit_penalty", "decided_on", "effective_until", report_on="effective_until"),
    "CPE-003": dates_in_order("credit_penalty", "decided_on", "publicity_until", report_on="publicity_until"),
    "CPE-004": cpe_004,
    "CPE-005": cpe_005,
    "CLS-001": dates_in_order("credit_list", "listed_on", "removed_on", report_on="removed_on"),
    "CLS-002": all_of(
        dates_in_order("credit_list", "listed_on", "submitted_at"),
        dates_in_order("credit_list", "removed_on", "submitted_at"),
    ),
    "CLS-003": cls_003,
    "CLS-004": cls_004,
}

CROSS_RECORD_RULES: Mapping[str, CrossRecordRuleFn] = {"CPE-006": cpe_006}
