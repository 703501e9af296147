"""行政相对人 rules shared by the four 监管行为 kinds (CPT-*), and their link to inspections (BEH-001).

Which code of table id_type is a natural person's or an organisation's document, and which
identifier its number must satisfy, comes from the code table (``holder``, ``validates_as``).
Messages name the kind-independent labels, since these fields are labelled alike in all four kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapping.rules.documents import check_document
from mapping.rules.facts import id_type_holders
from mapping.rules.violation import HOLDS, CrossRecordRuleFn, RecordHistory, Result, RuleFn, Violation

_KIND = "penalty"  # for labels: the counterparty fields carry the same labels in every 监管行为 kind
_USCC = frozenset({"uscc"})
_RIC = frozenset({"ric"})
_NATIONAL_TYPES = frozenset({"001", "111", "112"})
_NATURE_ZH = {"1": "公民", "2": "法人", "3": "其他组织"}
_HOLDER_ZH = {"natural_person": "自然人", "organisation": "组织"}


_ORGANISATION_NATURES = frozenset({"2", "3"})  # 法人, 其他组织: the number is no personal information


def cpt_001(record: Mapping[str, Any]) -> Result:
    found = check_document(record, _KIND, "counterparty_id_type", "counterparty_id_no", _USCC,
                           organisation=record.get("counterparty_nature") in _ORGANISATION_NATURES)
    return (found,) if found else HOLDS


def cpt_002(record: Mapping[str, Any]) -> Result:
    found = check_document(record, _KIND, "counterparty_id_type", "counterparty_id_no", _RIC)
    return (found,) if found else HOLDS


def cpt_003(record: Mapping[str, Any]) -> Result:
    id_type = record.get("counterparty_id_type")
    if record.get("counterparty_nature") != "2" or not id_type or id_type == "001":
        return HOLDS
    return (
        Violation(
            "counterparty_id_type",
            f"counterparty_nature is 2 (legal person) but counterparty_id_type is {id_type}, not 001",
            f"行政相对人性质为法人，证件类型应为001（统一社会信用代码），实为{id_type}",
        ),
    )


def _holder_rule(nature: str, holder: str) -> RuleFn:
    def rule(record: Mapping[str, Any]) -> Result:
        id_type = record.get("counterparty_id_type")
        if record.get("counterparty_nature") != nature or not id_type:
            return HOLDS
        if id_type_holders().get(id_type) == holder:
            return HOLDS
        return (
            Violation(
                "counterparty_id_type",
                f"counterparty_nature is {nature} but counterparty_id_type {id_type} "
                f"is not a document of a {holder.replace('_', ' ')}",
                f"行政相对人性质为{_NATURE_ZH[nature]}，证件类型{id_type}不是{_HOLDER_ZH[holder]}的证件",
            ),
        )

    return rule


def cpt_006(record: Mapping[str, Any]) -> Result:
    id_type = record.get("counterparty_id_type")
    if not id_type or id_type in _NATIONAL_TYPES:
        return HOLDS
    return (
        Violation(
            "counterparty_id_type",
            f"counterparty_id_type {id_type} is not 001, 111 or 112; the national platform may refuse it",
            f"证件类型{id_type}不是001、111或112，国家平台可能拒收",
        ),
    )


_NO_INSPECTION: Result = (
    Violation(
        "check_action_no",
        "no inspection with this check_action_no has been accepted from the implementing body "
        "(it may still be to come)",
        "尚未收到该实施机构此检查行为编号的行政检查记录（可能尚未报送）",
    ),
)
"""BEH-001's one violation, made once: follow-up acts often arrive before their inspection."""


def beh_001(record: Mapping[str, Any], history: RecordHistory) -> Result:
    org, check_no = record.get("implementing_org_uscc"), record.get("check_action_no")
    if not org or not check_no or history.has_inspection(org, check_no):
        return HOLDS
    return _NO_INSPECTION


RULES: Mapping[str, RuleFn] = {
    "CPT-001": cpt_001,
    "CPT-002": cpt_002,
    "CPT-003": cpt_003,
    "CPT-004": _holder_rule("1", "natural_person"),
    "CPT-005": _holder_rule("3", "organisation"),
    "CPT-006": cpt_006,
}

CROSS_RECORD_RULES: Mapping[str, CrossRecordRuleFn] = {"BEH-001": beh_001}
