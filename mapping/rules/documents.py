"""Identifier checks shared by the rules (CPT-001/002, CRD-004, CMP-008/009, SOB-001/002, INS-006, SIT-001).

Only error findings of ``check_identifier`` break a rule: warnings such as IDENTIFIER_LEGACY
(a 15-digit RIC) or IDENTIFIER_UNKNOWN let the number pass, as the statements require.
Identifier details are never copied into a violation: they may quote parts of a personal number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mapping.identifiers import check_identifier
from mapping.rules.facts import field_label, id_type_validation
from mapping.rules.violation import HOLDS, Result, Violation

_NAMES_EN = {"uscc": "USCC", "ric": "resident ID card number"}
_NAMES_ZH = {"uscc": "统一社会信用代码", "ric": "居民身份证号码"}


def identifier_errors(id_type: str, value: str) -> tuple[str, ...]:
    """The error codes (IDENTIFIER_FORMAT, IDENTIFIER_CHECKSUM) of a value; empty when it passes."""
    found = check_identifier(id_type, value)
    return tuple([f.code for f in found if f.severity == "error"]) if found else ()


_MAX_CACHED_ORGANISATION_NUMBERS = 50_000
_organisation_errors: dict[str, tuple[str, ...]] = {}
"""USCC -> ``identifier_errors("uscc", ...)``, for organisations' numbers only: they are public and
repeat from record to record (the same company in many acts); a person's number is never kept."""


def organisation_uscc_errors(value: str) -> tuple[str, ...]:
    """``identifier_errors("uscc", value)`` for an organisation's number, remembered."""
    found = _organisation_errors.get(value)
    if found is None:
        found = identifier_errors("uscc", value)
        if len(_organisation_errors) >= _MAX_CACHED_ORGANISATION_NUMBERS:
            _organisation_errors.clear()
        _organisation_errors[value] = found
    return found


def validates_as(id_doc_type: Any) -> str | None:
    """The identifier type an id_type code's number must satisfy (uscc, ric), if any."""
    return id_type_validation().get(id_doc_type) if isinstance(id_doc_type, str) else None


def invalid_number(kind: str, field: str, id_type: str, codes: tuple[str, ...]) -> Violation:
    """A violation saying ``field`` is not a valid identifier of ``id_type`` (codes only, no value)."""
    why = "/".join(codes)
    return Violation(
        field,
        f"{field} is not a valid {_NAMES_EN.get(id_type, id_type)} ({why})",
        f"{field_label(kind, field)}不是有效的{_NAMES_ZH.get(id_type, id_type)}（{why}）",
    )


def check_document(
    record: Mapping[str, Any], kind: str, type_field: str, number_field: str, checked_as: frozenset[str],
    *, organisation: bool = False,
) -> Violation | None:
    """Check ``number_field`` when ``type_field`` holds a code validated as one of ``checked_as``
    (``organisation``: the record says the holder is one, so its USCC may be remembered)."""
    id_type = validates_as(record.get(type_field))
    number = record.get(number_field)
    if id_type is None or id_type not in checked_as or not isinstance(number, str) or not number:
        return None
    if organisation and id_type == "uscc":
        codes = organisation_uscc_errors(number)
    else:
        codes = identifier_errors(id_type, number)
    return invalid_number(kind, number_field, id_type, codes) if codes else None


def impl_code_matches_org(record: Mapping[str, Any]) -> Result:
    """Rule INS-006 / SIT-001: check_impl_code positions 1-18 equal implementing_org_uscc."""
    code, org = record.get("check_impl_code"), record.get("implementing_org_uscc")
    if not code or not org or code[:18] == org:
        return HOLDS
    return (
        Violation(
            "check_impl_code",
            "check_impl_code positions 1-18 differ from implementing_org_uscc",
            "检查实施清单编码第1-18位与实施机构统一社会信用代码不一致",
        ),
    )
