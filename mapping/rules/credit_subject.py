"""双公示 counterparty rules shared by credit_license and credit_penalty (CRD-*).

The USCC placeholder ``00000000000000000X`` is not an identifier: the field validator skips its
identifier check in these two kinds, and CRD-001 here decides whether it is acceptable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapping.identifiers import USCC_PLACEHOLDER
from mapping.rules.compare import present
from mapping.rules.documents import check_document
from mapping.rules.facts import field_label
from mapping.rules.violation import HOLDS, Result, RuleFn, Violation, violations

_KIND = "credit_penalty"  # for labels: the counterparty fields are labelled alike in both kinds
_INDIVIDUAL = "个体工商户"
_ORGANISATION = "法人及非法人组织"
_PERSON = "自然人"
_ID_TYPES = frozenset({"uscc", "ric"})
_DOCUMENT_PAIRS = (("person_id_type", "person_id_no"), ("legal_rep_id_type", "legal_rep_id_no"))
_PERSON_ABSENT = ("uscc", "business_reg_no", "org_code")
_REG_NO_DIGITS = 15


def _real_uscc(record: Mapping[str, Any]) -> str | None:
    """The record's uscc when present and not the placeholder."""
    uscc = record.get("uscc")
    return uscc if uscc and uscc != USCC_PLACEHOLDER else None


def crd_001(record: Mapping[str, Any]) -> Result:
    if record.get("uscc") != USCC_PLACEHOLDER:
        return HOLDS
    if record.get("counterparty_category") == _INDIVIDUAL and present(record.get("business_reg_no")):
        return HOLDS
    return (
        Violation(
            "uscc",
            "the placeholder USCC 00000000000000000X is accepted only for a 个体工商户 "
            "with a business_reg_no",
            "统一社会信用代码占位符00000000000000000X仅适用于填写了工商注册号的个体工商户",
        ),
    )


def crd_002(record: Mapping[str, Any]) -> Result:
    uscc = _real_uscc(record)
    if uscc is None or record.get("counterparty_category") != _INDIVIDUAL or uscc.startswith("92"):
        return HOLDS
    return (
        Violation(
            "uscc",
            "a 个体工商户's uscc must start with 92",
            "个体工商户的统一社会信用代码应以92开头",
        ),
    )


def crd_003(record: Mapping[str, Any]) -> Result:
    uscc = record.get("uscc")
    if not uscc or record.get("counterparty_category") != _ORGANISATION or not uscc.startswith("92"):
        return HOLDS
    return (
        Violation(
            "uscc",
            "uscc starts with 92 (个体工商户) but counterparty_category is 法人及非法人组织",
            "统一社会信用代码以92开头（个体工商户），但行政相对人类别为法人及非法人组织",
        ),
    )


def crd_004(record: Mapping[str, Any]) -> Result:
    return violations(
        check_document(record, _KIND, type_field, number_field, _ID_TYPES)
        for type_field, number_field in _DOCUMENT_PAIRS
    )


def crd_005(record: Mapping[str, Any]) -> Result:
    if record.get("counterparty_category") != _PERSON:
        return HOLDS
    return tuple(
        Violation(
            name,
            f"{name} should be absent when counterparty_category is 自然人",
            f"行政相对人类别为自然人时不应填写{field_label(_KIND, name)}",
        )
        for name in _PERSON_ABSENT
        if present(record.get(name))
    )


def crd_006(record: Mapping[str, Any]) -> Result:
    uscc, org_code = _real_uscc(record), record.get("org_code")
    if uscc is None or not org_code or org_code == uscc[8:17]:
        return HOLDS
    return (
        Violation(
            "org_code",
            "org_code differs from uscc positions 9-17",
            "组织机构代码与统一社会信用代码第9-17位不一致",
        ),
    )


def crd_007(record: Mapping[str, Any]) -> Result:
    uscc, reg_no = _real_uscc(record), record.get("business_reg_no")
    if uscc is None or not reg_no or len(reg_no) != _REG_NO_DIGITS or not reg_no.isascii():
        return HOLDS
    if not reg_no.isdigit() or reg_no[:6] == uscc[2:8]:
        return HOLDS
    return (
        Violation(
            "business_reg_no",
            "business_reg_no positions 1-6 differ from uscc positions 3-8 (registration authority)",
            "工商注册号第1-6位与统一社会信用代码第3-8位（登记管理机关行政区划码）不一致",
        ),
    )


def crd_008(record: Mapping[str, Any]) -> Result:
    found: list[Violation] = []
    for type_field, number_field in _DOCUMENT_PAIRS:
        has_type, has_number = present(record.get(type_field)), present(record.get(number_field))
        if has_type == has_number:
            continue
        missing, given = (number_field, type_field) if has_type else (type_field, number_field)
        found.append(
            Violation(
                missing,
                f"{given} is present but {missing} is absent; give both or neither",
                f"已填写{field_label(_KIND, given)}，但未填写{field_label(_KIND, missing)}，"
                "两者应同时填写或同时为空",
            )
        )
    return tuple(found)


RULES: Mapping[str, RuleFn] = {
    "CRD-001": crd_001,
    "CRD-002": crd_002,
    "CRD-003": crd_003,
    "CRD-004": crd_004,
    "CRD-005": crd_005,
    "CRD-006": crd_006,
    "CRD-007": crd_007,
    "CRD-008": crd_008,
}
