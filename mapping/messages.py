"""Message catalogue: a Chinese and an English template for every finding code.

Departments read the Chinese message in rejection reports; the English one goes to logs and
integrators. Templates are ``str.format`` strings over named parameters; every code documents
the parameters it takes in ``TEMPLATES``. Values are quoted only through ``quote_value``, and
callers pass ``value=None`` for PII fields (``make_finding`` then leaves the value out), so a
message never carries personal information.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mapping.findings import Finding, Severity

MAX_QUOTED_CHARS = 40


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    zh: str
    en: str


TEMPLATES: Mapping[str, MessageTemplate] = MappingProxyType({
    "KIND_UNKNOWN": MessageTemplate(
        "记录类型（record_kind）{value_zh}不是标准 {version} 定义的记录类型",
        "record_kind{value_en} is not a kind of standard {version}",
    ),
    "VERSION_UNSUPPORTED": MessageTemplate(
        "网关不支持标准版本 {version}（支持的版本：{supported}）",
        "standard version {version} is not supported by this gateway (supported: {supported})",
    ),
    "UNKNOWN_FIELD": MessageTemplate(
        "字段 {field} 不是{kind_label_zh}（{kind}）的标准字段，本地字段请放入 ext",
        "{field} is not a field of kind {kind} (local fields belong in ext)",
    ),
    "REQUIRED": MessageTemplate(
        "{label_zh}（{field}）为必填项，未填写{condition_zh}",
        "{field} is required but absent{condition_en}",
    ),
    "TYPE": MessageTemplate(
        "{label_zh}（{field}）类型或格式错误，应为{expected_zh}{value_zh}",
        "{field} has the wrong type or format: expected {expected_en}{value_en}",
    ),
    "MAX_LENGTH": MessageTemplate(
        "{label_zh}（{field}）长度为 {length} 个字符，超过最大长度 {max_length}",
        "{field} is {length} characters long, more than the maximum of {max_length}",
    ),
    "PATTERN": MessageTemplate(
        "{label_zh}（{field}）不符合格式要求 {pattern}{value_zh}",
        "{field} does not match the pattern {pattern}{value_en}",
    ),
    "RANGE": MessageTemplate(
        "{label_zh}（{field}）超出取值范围 {bounds}{value_zh}",
        "{field} is outside the range {bounds}{value_en}",
    ),
    "MIN_ITEMS": MessageTemplate(
        "{label_zh}（{field}）至少需要 {min_items} 项，实际 {count} 项",
        "{field} needs at least {min_items} items but has {count}",
    ),
    "MAX_ITEMS": MessageTemplate(
        "{label_zh}（{field}）最多允许 {max_items} 项，实际 {count} 项",
        "{field} allows at most {max_items} items but has {count}",
    ),
    "CODE_UNKNOWN": MessageTemplate(
        "{label_zh}（{field}）的值{value_zh}不是代码表“{table_label_zh}”（{table}）中的代码",
        "{field}{value_en} is not a code of table {table}",
    ),
    "CODE_AMBIGUOUS": MessageTemplate(
        "{label_zh}（{field}）的旧组合类别{value_zh}无法细分，已保留全部候选代码：{codes}",
        "{field}: the combined label{value_en} could not be narrowed; all candidates kept: {codes}",
    ),
    "IDENTIFIER_FORMAT": MessageTemplate(
        "{label_zh}（{field}）格式错误：{detail_zh}", "{field} has an invalid format: {detail_en}",
    ),
    "IDENTIFIER_CHECKSUM": MessageTemplate(
        "{label_zh}（{field}）校验位错误：{detail_zh}", "{field} has a wrong check character: {detail_en}",
    ),
    "IDENTIFIER_UNKNOWN": MessageTemplate(
        "{label_zh}（{field}）不在参考代码表中：{detail_zh}",
        "{field} is not in the reference table: {detail_en}",
    ),
    "IDENTIFIER_LEGACY": MessageTemplate(
        "{label_zh}（{field}）为旧格式，已接收但未校验：{detail_zh}",
        "{field} has a legacy format, accepted without a check: {detail_en}",
    ),
    "RULE": MessageTemplate("违反规则 {rule_id}：{detail_zh}", "rule {rule_id} failed: {detail_en}"),
})
"""Parameters: every template may use ``field`` and ``label_zh``; ``value_zh``/``value_en`` are
built from ``value`` by ``make_finding``; the others are named in the template itself."""

IDENTIFIER_DETAILS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "IDENTIFIER_FORMAT": ("长度、字符或结构不符合规则", "wrong length, characters or structure"),
    "IDENTIFIER_CHECKSUM": ("校验位与计算结果不符", "the check character does not match"),
    "IDENTIFIER_UNKNOWN": ("代码未在参考表中找到", "the code is not in the reference table"),
    "IDENTIFIER_LEGACY": ("旧格式，未做校验", "older format accepted without a check"),
})
"""Value-free details used for PII fields, whose checker details may quote the number."""


def template_for(code: str) -> MessageTemplate:
    """The template of a finding code; every ``RULE:<id>`` shares the rule template."""
    key = "RULE" if code.startswith("RULE:") else code
    try:
        return TEMPLATES[key]
    except KeyError:
        raise KeyError(f"no message template for finding code {code!r}") from None


def quote_value(value: object) -> str:
    """A value for a message, truncated to ``MAX_QUOTED_CHARS`` characters. Never pass PII here."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = repr(value)
    if len(text) > MAX_QUOTED_CHARS:
        text = text[: MAX_QUOTED_CHARS - 1] + "…"
    return text.replace("\n", " ")


def render(code: str, params: Mapping[str, object]) -> tuple[str, str]:
    """(message_zh, message_en) of a finding; a missing parameter is a ``KeyError`` (a bug)."""
    template = template_for(code)
    return template.zh.format_map(params), template.en.format_map(params)


def make_finding(
    code: str,
    field: str,
    *,
    severity: Severity = "error",
    rule_id: str | None = None,
    value: object = None,
    label_zh: str | None = None,
    **params: object,
) -> Finding:
    """A finding with both messages. ``value`` is quoted when given: pass None for PII fields."""
    quoted = None if value is None else quote_value(value)
    full: dict[str, object] = {
        "field": field,
        "label_zh": label_zh or field,
        "value_zh": f"“{quoted}”" if quoted is not None else "",
        "value_en": f' "{quoted}"' if quoted is not None else "",
        "rule_id": rule_id or "",
        "condition_zh": "",
        "condition_en": "",
        **params,
    }
    message_zh, message_en = render(code, full)
    return Finding(code=code, field=field, message_en=message_en, message_zh=message_zh,
                   severity=severity, rule_id=rule_id)
