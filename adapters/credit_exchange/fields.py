"""credit_license / credit_penalty -> the XK_* / CF_* fields of an ExchangeMessage record.

The crosswalk of ``sources/credit-publication/README.md`` reversed, in schema order. Each field
also carries the XSD value type of its element, so that a record whose value would make the whole
message fail the schema (9001) is held back on its own, as a rejection, before sending.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

ID_TYPE_LABELS = {"111": "身份证", "414": "护照号", "516": "港澳居民来往内地通行证",
                  "511": "台湾居民来往大陆通行证", "553": "外国人永久居留身份证"}
_WAN = Decimal(10_000)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
_WAN_TEXT = re.compile(r"\d{1,12}(\.\d{1,6})?")
# Characters XML 1.0 cannot carry (control characters, lone surrogates, U+FFFE/U+FFFF): lxml refuses
# to write them, so one such value would otherwise stop the whole message from being built.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ENUMS = {
    "xdrlb": frozenset({"法人及非法人组织", "自然人", "个体工商户"}),
    "xklb": frozenset({"普通", "特许", "认可", "核准", "登记", "其他"}),
    "xkzt": frozenset({"1", "2"}),
    "zjlx": frozenset({"", *ID_TYPE_LABELS.values()}),
}


class FieldError(ValueError):
    """A value that cannot go into the message: (platform-style code, element, reason)."""

    def __init__(self, code: str, element: str, reason: str) -> None:
        super().__init__(f"{element}: {reason}")
        self.code, self.element, self.reason = code, element, reason


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def _id_type(value: Any) -> str:
    if value is None or value == "":
        return ""
    label = ID_TYPE_LABELS.get(str(value))
    if label is None:
        raise FieldError("1004", "ZJLX", f"证件类型 {value} 在双公示中无对应值 / id type {value} has no 双公示 label")
    return label


def _wan_yuan(value: Any) -> str:
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)) / _WAN
    except InvalidOperation as exc:
        raise FieldError("1002", "NR", f"金额无效 / not an amount: {value!r}") from exc
    return format(amount.normalize(), "f")


def _joined(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return _text(value)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    element: str
    source: str
    value_type: str          # the XSD type family: str, text, date, date_or_empty, uscc, wan, an enum, any
    convert: Callable[[Any], str] = _text

    def render(self, record: Mapping[str, Any]) -> str:
        try:
            text = self.convert(record.get(self.source))
        except FieldError as exc:
            raise FieldError(exc.code, self.element, exc.reason) from exc
        _check(self.element, self.value_type, text)
        return text


def _check(element: str, value_type: str, text: str) -> None:
    if _NOT_XML.search(text):
        raise FieldError("1002", element, "含有报文不允许的控制字符 / contains a character XML cannot carry")
    if (value_type == "str" and len(text) > 200) or (value_type == "text" and len(text) > 4000):
        raise FieldError("1002", element, f"超过长度限制 / too long ({len(text)} characters)")
    checks: dict[str, Callable[[str], bool]] = {
        "date": lambda t: bool(_DATE.fullmatch(t)),
        "date_or_empty": lambda t: t == "" or bool(_DATE.fullmatch(t)),
        "uscc": lambda t: bool(_USCC.fullmatch(t)),
        "wan": lambda t: t == "" or bool(_WAN_TEXT.fullmatch(t)),
    }
    check = checks.get(value_type)
    if check is not None and not check(text):
        code = "1001" if text == "" else "1002"
        raise FieldError(code, element, f"值 {text!r} 不符合报文格式 / {text!r} is not a valid value")
    if value_type in _ENUMS and text not in _ENUMS[value_type]:
        code = "1001" if text == "" else "1004"
        raise FieldError(code, element, f"值 {text!r} 不在字典中 / {text!r} is not an allowed value")


def _party(prefix: str) -> list[FieldSpec]:
    p = prefix
    return [
        FieldSpec(f"{p}_XDR_MC", "counterparty_name", "str"),
        FieldSpec(f"{p}_XDR_LB", "counterparty_category", "xdrlb"),
        FieldSpec(f"{p}_XDR_SHXYM", "uscc", "any"),
        FieldSpec(f"{p}_XDR_GSZC", "business_reg_no", "str"),
        FieldSpec(f"{p}_XDR_ZZJG", "org_code", "str"),
        FieldSpec(f"{p}_XDR_SWDJ", "tax_reg_no", "str"),
        FieldSpec(f"{p}_XDR_SYDW", "public_inst_cert_no", "str"),
        FieldSpec(f"{p}_XDR_SHZZ", "social_org_reg_no", "str"),
        FieldSpec(f"{p}_FRDB", "legal_rep_name", "str"),
        FieldSpec(f"{p}_FR_ZJLX", "legal_rep_id_type", "zjlx", _id_type),
        FieldSpec(f"{p}_FR_ZJHM", "legal_rep_id_no", "str"),
        FieldSpec(f"{p}_XDR_ZJLX", "person_id_type", "zjlx", _id_type),
        FieldSpec(f"{p}_XDR_ZJHM", "person_id_no", "str"),
    ]


XK_FIELDS: tuple[FieldSpec, ...] = (
    *_party("XK"),
    FieldSpec("XK_XKWS", "decision_doc_name", "str"),
    FieldSpec("XK_WSH", "decision_doc_no", "str"),
    FieldSpec("XK_XKLB", "license_category", "xklb"),
    FieldSpec("XK_XKZS", "certificate_name", "str"),
    FieldSpec("XK_XKBH", "license_no", "str"),
    FieldSpec("XK_NR", "license_content", "text"),
    FieldSpec("XK_JDRQ", "decided_on", "date"),
    FieldSpec("XK_YXQZ", "valid_from", "date"),
    FieldSpec("XK_YXQZI", "valid_to", "date"),
    FieldSpec("XK_XKJG", "issuing_org_name", "str"),
    FieldSpec("XK_XKJGDM", "issuing_org_uscc", "uscc"),
    FieldSpec("XK_ZT", "status", "xkzt"),
    FieldSpec("XK_LYDW", "source_org_name", "str"),
    FieldSpec("XK_LYDWDM", "source_org_uscc", "any"),
    FieldSpec("BZ", "remark", "text"),
)

CF_FIELDS: tuple[FieldSpec, ...] = (
    *_party("CF"),
    FieldSpec("CF_WSH", "decision_doc_no", "str"),
    FieldSpec("CF_WFXW", "violation_type", "text"),
    FieldSpec("CF_SY", "illegal_facts", "text"),
    FieldSpec("CF_YJ", "legal_basis", "text"),
    FieldSpec("CF_CFLB", "penalty_categories", "str", _joined),
    FieldSpec("CF_NR", "penalty_content", "text"),
    FieldSpec("CF_NR_FK", "fine_amount_yuan", "wan", _wan_yuan),
    FieldSpec("CF_NR_WFFF", "confiscated_amount_yuan", "wan", _wan_yuan),
    FieldSpec("CF_NR_ZKDX", "suspended_revoked_licence", "str"),
    FieldSpec("CF_JDRQ", "decided_on", "date"),
    FieldSpec("CF_YXQ", "effective_until", "date"),
    FieldSpec("CF_GSJZQ", "publicity_until", "date_or_empty"),
    FieldSpec("CF_CFJG", "penalty_org_name", "str"),
    FieldSpec("CF_CFJGDM", "penalty_org_uscc", "uscc"),
    FieldSpec("CF_SJLY", "source_org_name", "str"),
    FieldSpec("CF_SJLYDM", "source_org_uscc", "any"),
    FieldSpec("BZ", "remark", "text"),
)

# record kind -> (Header/item, Header/flow, fields in schema order)
ITEMS: dict[str, tuple[str, str, tuple[FieldSpec, ...]]] = {
    "credit_license": ("XK", "SGS_XK", XK_FIELDS),
    "credit_penalty": ("CF", "SGS_CF", CF_FIELDS),
}


def render_fields(kind: str, record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(element, text) in schema order; raises FieldError when a value would break the schema."""
    return [(spec.element, spec.render(record)) for spec in ITEMS[kind][2]]
