"""Rules of supervised_object (SOB-*), officer (OFF-*) and supervision_item (SIT-*)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mapping.rules.compare import present, to_date, to_decimal
from mapping.rules.documents import identifier_errors, impl_code_matches_org, invalid_number, validates_as
from mapping.rules.facts import field_label, id_type_holders
from mapping.rules.ordering import dates_in_order, times_in_order
from mapping.rules.violation import HOLDS, Result, RuleFn, Violation

_OBJECTS = "supervised_object"
_ENTITY_TYPES = frozenset({"法人", "非法人组织", "个体工商户"})
_PERSON_TYPE = "特定自然人"
_CHINA_LON = (Decimal(73), Decimal(136))
_CHINA_LAT = (Decimal(3), Decimal(54))


def _object_id_matches(record: Mapping[str, Any]) -> Violation | None:
    object_id, id_no = record.get("object_id"), record.get("id_no")
    if not object_id or not id_no or object_id == id_no:
        return None
    return Violation(
        "object_id",
        "object_id differs from id_no; for this object_type it is the document number",
        "监管对象标识应与证件号码一致",
    )


def sob_001(record: Mapping[str, Any]) -> Result:
    object_type = record.get("object_type")
    if object_type not in _ENTITY_TYPES:
        return HOLDS
    found: list[Violation] = []
    id_type, id_no = record.get("id_type"), record.get("id_no")
    if id_type and id_type != "001":
        found.append(
            Violation(
                "id_type",
                f"object_type {object_type} needs id_type 001, not {id_type}",
                f"监管对象类型为{object_type}时证件类型应为001（统一社会信用代码），实为{id_type}",
            )
        )
    codes = identifier_errors("uscc", id_no) if id_no else ()
    if codes:
        found.append(invalid_number(_OBJECTS, "id_no", "uscc", codes))
    mismatch = _object_id_matches(record)
    if mismatch:
        found.append(mismatch)
    return tuple(found)


def sob_002(record: Mapping[str, Any]) -> Result:
    if record.get("object_type") != _PERSON_TYPE:
        return HOLDS
    found: list[Violation] = []
    id_type, id_no = record.get("id_type"), record.get("id_no")
    if id_type and id_type_holders().get(id_type) != "natural_person":
        found.append(
            Violation(
                "id_type",
                f"object_type 特定自然人 needs a natural person's id_type, not {id_type}",
                f"监管对象类型为特定自然人时证件类型应为自然人证件，实为{id_type}",
            )
        )
    mismatch = _object_id_matches(record)
    if mismatch:
        found.append(mismatch)
    if validates_as(id_type) == "ric" and id_no:
        codes = identifier_errors("ric", id_no)
        if codes:
            found.append(invalid_number(_OBJECTS, "id_no", "ric", codes))
    return tuple(found)


def both_or_neither(kind: str) -> RuleFn:
    """Rule: lon and lat are both present or both absent (SOB-003, IOR-004)."""

    def rule(record: Mapping[str, Any]) -> Result:
        has_lon, has_lat = present(record.get("lon")), present(record.get("lat"))
        if has_lon == has_lat:
            return HOLDS
        missing = "lat" if has_lon else "lon"
        return (
            Violation(
                missing,
                "lon and lat must be given together",
                f"经纬度应同时填写，缺少{field_label(kind, missing)}",
            ),
        )

    return rule


def sob_004(record: Mapping[str, Any]) -> Result:
    found: list[Violation] = []
    for name, (low, high) in (("lon", _CHINA_LON), ("lat", _CHINA_LAT)):
        value = record.get(name)
        if value and not low <= to_decimal(value) <= high:
            found.append(
                Violation(
                    name,
                    f"{name} is outside China ({low}..{high}); swapped or wrong datum?",
                    f"{field_label(_OBJECTS, name)}超出中国范围（{low}～{high}），是否填反或坐标系有误？",
                )
            )
    return tuple(found)


def off_002(record: Mapping[str, Any]) -> Result:
    valid_until, received_at = record.get("cert_valid_until"), record.get("received_at")
    if record.get("active") is not True or not valid_until or not received_at:
        return HOLDS
    received_on = to_date(received_at).isoformat()
    if valid_until >= received_on:
        return HOLDS
    return (
        Violation(
            "cert_valid_until",
            f"the officer is active but the certificate expired on {valid_until}",
            f"执法人员状态为有效，但执法证已于{valid_until}到期",
        ),
    )


RULES: Mapping[str, RuleFn] = {
    "SOB-001": sob_001,
    "SOB-002": sob_002,
    "SOB-003": both_or_neither(_OBJECTS),
    "SOB-004": sob_004,
    "OFF-001": dates_in_order("officer", "cert_issued_on", "cert_valid_until"),
    "OFF-002": off_002,
    "SIT-001": impl_code_matches_org,
    "SIT-002": dates_in_order("supervision_item", "take_effect_on", "cancel_on"),
    "SIT-003": times_in_order("supervision_item", "version_date", "submitted_at"),
}
