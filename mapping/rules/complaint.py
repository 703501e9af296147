"""Rules of the complaint kind (CMP-*), for 12345 and 12315 tickets alike."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from mapping.rules.compare import present, to_date
from mapping.rules.documents import check_document, identifier_errors
from mapping.rules.facts import complaint_channels, field_label
from mapping.rules.ordering import dates_in_order, times_in_order
from mapping.rules.violation import HOLDS, Result, RuleFn, Violation
from mapping.rules.working_days import within_working_days

_KIND = "complaint"
_COMPLAINT = "投诉"
_ACCEPT_LIMIT_WORKING_DAYS = 7  # S47: acceptance is decided within 7 working days
_MEDIATION_FIELDS = ("mediation_method", "mediation_result")
_ID_TYPES = frozenset({"uscc", "ric"})
_RIC_LENGTH = 18


def cmp_004(record: Mapping[str, Any]) -> Result:
    if record.get("channel") != "12315" or record.get("request_type") != _COMPLAINT:
        return HOLDS
    decided, registered = record.get("accept_decided_at"), record.get("registered_at")
    if not decided or not registered:
        return HOLDS
    if within_working_days(to_date(registered), date.fromisoformat(decided), _ACCEPT_LIMIT_WORKING_DAYS):
        return HOLDS
    return (
        Violation(
            "accept_decided_at",
            f"accept_decided_at ({decided}) is more than 7 working days after registered_at",
            f"受理决定日期（{decided}）距受理登记超过7个工作日",
        ),
    )


def cmp_005(record: Mapping[str, Any]) -> Result:
    given = [name for name in _MEDIATION_FIELDS if present(record.get(name))]
    if not given or record.get("request_type") == _COMPLAINT:
        return HOLDS
    return (
        Violation(
            given[0],
            f"{' and '.join(given)} present but request_type is not 投诉",
            f"已填写{'、'.join(field_label(_KIND, n) for n in given)}，但诉求类型不是投诉",
        ),
    )


def cmp_006(record: Mapping[str, Any]) -> Result:
    channel = record.get("channel")
    if not channel:
        return HOLDS
    return tuple(
        Violation(
            name,
            f"{name} is meant for channel {'/'.join(sorted(channels))}, not {channel}; "
            "the target may drop it",
            f"{field_label(_KIND, name)}仅适用于{'、'.join(sorted(channels))}渠道，"
            f"本记录渠道为{channel}，目标系统可能不接收",
        )
        for name, channels in complaint_channels().items()
        if channel not in channels and present(record.get(name))
    )


def cmp_007(record: Mapping[str, Any]) -> Result:
    if record.get("accept_decision") != "不予受理":
        return HOLDS
    return tuple(
        Violation(
            name,
            f"{name} must be absent when accept_decision is 不予受理",
            f"不予受理时不应填写{field_label(_KIND, name)}",
        )
        for name in _MEDIATION_FIELDS
        if present(record.get(name))
    )


def cmp_008(record: Mapping[str, Any]) -> Result:
    number = record.get("respondent_id_no")
    if not number or not identifier_errors("uscc", number):
        return HOLDS
    if len(number) == _RIC_LENGTH and not identifier_errors("ric", number):
        return HOLDS
    return (
        Violation(
            "respondent_id_no",
            "respondent_id_no is neither a valid USCC nor a valid 18-digit resident ID card number",
            "被投诉/被举报对象证件号码既不是有效的统一社会信用代码，也不是有效的18位居民身份证号码",
        ),
    )


def cmp_009(record: Mapping[str, Any]) -> Result:
    found = check_document(record, _KIND, "requester_id_type", "requester_id_no", _ID_TYPES)
    return (found,) if found else HOLDS


RULES: Mapping[str, RuleFn] = {
    "CMP-001": times_in_order(_KIND, "registered_at", "submitted_at"),
    "CMP-002": dates_in_order(_KIND, "registered_at", "closed_at", report_on="closed_at"),
    "CMP-003": dates_in_order(_KIND, "registered_at", "accept_decided_at", report_on="accept_decided_at"),
    "CMP-004": cmp_004,
    "CMP-005": cmp_005,
    "CMP-006": cmp_006,
    "CMP-007": cmp_007,
    "CMP-008": cmp_008,
    "CMP-009": cmp_009,
}
