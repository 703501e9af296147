"""Record validation against the unified standard: every finding, not only the first.

``Validator(standard)`` compiles, once per kind, a dict of small per-field check closures (type,
length, pattern, range, items, code table, identifier, COM-002/COM-003 and the CRD-001 USCC
placeholder), the required and conditional-required lists, and the rule functions of
``mapping.rules``. ``validate(record)`` then walks the record's keys once. A rule is skipped when
one of its fields already has an error (it would judge garbage); on ``operation: d`` only common
and business-key fields are required and only COM-* rules run. Messages never quote PII values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mapping.findings import Finding, Severity
from mapping.identifiers import USCC_PLACEHOLDER, IdFinding, check_identifier
from mapping.messages import IDENTIFIER_DETAILS, make_finding
from mapping.standard import FieldSpec, KindSpec, RuleSpec, Standard

if TYPE_CHECKING:
    from mapping.rules import CrossRecordRuleFn, RecordHistory, RuleFn, Violation

Check = Callable[[Any, Mapping[str, Any], list[Finding], str], None]
"""(value, enclosing object, findings, field path) -> None; only called for present values."""
Condition = Callable[[Mapping[str, Any]], bool]

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?\+08:00"
).fullmatch
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?").fullmatch
_LAST_SENTINEL_DATE = "1900-01-01"  # COM-003: values must be later than this
_PLACEHOLDER_RULE = "CRD-001"
_MAX_CACHED_IDENTIFIERS = 50_000

_EXPECTED: dict[str, tuple[str, str]] = {
    "string": ("不含首尾空白的字符串", "a string without leading or trailing whitespace"),
    "text": ("不含首尾空白的文本", "a text without leading or trailing whitespace"),
    "date": ("日期 YYYY-MM-DD", "a date YYYY-MM-DD"),
    "datetime": ("带时区的日期时间 YYYY-MM-DDTHH:MM:SS+08:00",
                 "a datetime YYYY-MM-DDTHH:MM:SS[.ffffff]+08:00"),
    "decimal": ("普通写法的数字字符串（如 \"5000.00\"）",
                "a decimal string in plain notation (e.g. \"5000.00\")"),
    "integer": ("整数", "an integer"),
    "boolean": ("布尔值 true/false", "a boolean true/false"),
    "enum": ("代码字符串", "a code string"),
    "list[string]": ("非空且去除首尾空白的字符串数组", "a list of non-empty trimmed strings"),
    "list[object]": ("对象数组", "a list of objects"),
    "object": ("JSON 对象", "a JSON object"),
    "calendar": ("真实存在的日期和时间", "a real calendar date and time"),
    "distinct": ("不重复的元素", "distinct elements"),
}


def is_absent(value: Any) -> bool:
    """The standard's "absent": missing, null, "" or []."""
    return value is None or value == "" or value == []


# --- the condition language (`when`, `pii_when`) ------------------------------------------------

def compile_condition(cond: Mapping[str, Any]) -> Condition:
    """A predicate over the enclosing object; absent fields make eq/in/contains* false, ne/not_in true."""
    if "all" in cond or "any" in cond:
        subs = tuple(compile_condition(c) for c in cond.get("all") or cond["any"])
        combine = all if "all" in cond else any
        return lambda obj: combine(s(obj) for s in subs)
    if "not" in cond:
        inner = compile_condition(cond["not"])
        return lambda obj: not inner(obj)
    name = cond["field"]
    if "present" in cond or "absent" in cond:
        want_absent = "absent" in cond
        return lambda obj: is_absent(obj.get(name)) is want_absent
    if "eq" in cond or "ne" in cond:
        target, negate = (cond["eq"], False) if "eq" in cond else (cond["ne"], True)
        return lambda obj: (obj.get(name) == target) is not negate
    if "in" in cond or "not_in" in cond:
        options, negate = (tuple(cond["in"]), False) if "in" in cond else (tuple(cond["not_in"]), True)
        return lambda obj: (_hashless_in(obj.get(name), options)) is not negate
    wanted = (cond["contains"],) if "contains" in cond else tuple(cond["contains_any"])
    return lambda obj: isinstance(v := obj.get(name), list) and any(w in v for w in wanted)


def _hashless_in(value: Any, options: tuple[Any, ...]) -> bool:
    return not is_absent(value) and value in options


def describe_condition_zh(cond: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """A Chinese reading of a condition, for REQUIRED messages."""
    if "all" in cond or "any" in cond:
        glue = "且" if "all" in cond else "或"
        return glue.join(describe_condition_zh(c, labels) for c in cond.get("all") or cond["any"])
    if "not" in cond:
        return f"并非（{describe_condition_zh(cond['not'], labels)}）"
    label = labels.get(cond["field"], cond["field"])
    words = {"eq": "为", "ne": "不为", "in": "为", "not_in": "不为", "contains": "包含",
             "contains_any": "包含"}
    for op, word in words.items():
        if op in cond:
            values = cond[op] if isinstance(cond[op], list) else [cond[op]]
            shown = "或".join(f"“{_zh_value(v)}”" for v in values)
            return f"{label}{word}{shown}"
    return f"{label}{'未填写' if 'absent' in cond else '已填写'}"


def _zh_value(value: Any) -> str:
    return ("是" if value else "否") if isinstance(value, bool) else str(value)


# --- per-field checks ---------------------------------------------------------------------------

@dataclass(slots=True)
class _Env:
    """What field checks share within one Validator: code tables, rule severities, identifier cache."""

    standard: Standard
    rule_severity: Mapping[str, Severity]
    uscc_exceptions: frozenset[str]
    today_fn: Callable[[], date] | None
    id_cache: dict[tuple[str, str, bool], list[IdFinding]]

    def finding(self, spec: FieldSpec, code: str, path: str, value: Any = None,
                severity: Severity = "error", rule_id: str | None = None, **params: object) -> Finding:
        return make_finding(code, path, severity=severity, rule_id=rule_id, label_zh=spec.label_zh,
                            value=None if spec.pii else value, **params)

    def type_error(self, spec: FieldSpec, path: str, value: Any, expected: str) -> Finding:
        zh, en = _EXPECTED[expected]
        return self.finding(spec, "TYPE", path, value, expected_zh=zh, expected_en=en)

    def rule_error(self, spec: FieldSpec, rule_id: str, path: str, zh: str, en: str) -> Finding:
        return self.finding(spec, f"RULE:{rule_id}", path, severity=self.rule_severity.get(rule_id, "error"),
                            rule_id=rule_id, detail_zh=zh, detail_en=en)

    def identifiers(self, spec: FieldSpec, value: str) -> list[IdFinding]:
        id_type = spec.identifier or ""
        if spec.pii or id_type == "ric":  # PII never cached; RIC results depend on today
            today = self.today_fn() if self.today_fn is not None else None
            return check_identifier(id_type, value, allow_township=spec.allow_township,
                                    uscc_exceptions=self.uscc_exceptions, today=today)
        key = (id_type, value, spec.allow_township)
        found = self.id_cache.get(key)
        if found is None:
            found = check_identifier(id_type, value, allow_township=spec.allow_township,
                                     uscc_exceptions=self.uscc_exceptions)
            if len(self.id_cache) >= _MAX_CACHED_IDENTIFIERS:
                self.id_cache.clear()
            self.id_cache[key] = found
        return found


def compile_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    """The closure checking one present value of ``spec``."""
    factory = _FACTORIES[spec.type]
    return factory(spec, env, kind)


def _string_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    max_length, kind_name = spec.max_length, spec.type
    pattern = re.compile(spec.pattern).fullmatch if spec.pattern else None
    ident = _identifier_check(spec, env, kind) if spec.identifier else None

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        if not isinstance(v, str) or v.strip() != v:
            out.append(env.type_error(spec, path, v, kind_name))
            return
        if max_length is not None and len(v) > max_length:
            out.append(env.finding(spec, "MAX_LENGTH", path, length=len(v), max_length=max_length))
        if pattern is not None and pattern(v) is None:
            out.append(env.finding(spec, "PATTERN", path, v, pattern=spec.pattern))
        if ident is not None:
            ident(v, obj, out, path)
    return check


def _identifier_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    # CRD-001: in kinds with that rule, the placeholder is not an identifier; it is acceptable
    # only for a 个体工商户 that has a business_reg_no (reported here so a REQUIRED on
    # business_reg_no cannot hide it).
    placeholder_rule = spec.name == "uscc" and any(r.id == _PLACEHOLDER_RULE for r in kind.rules)

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        if placeholder_rule and v == USCC_PLACEHOLDER:
            if obj.get("counterparty_category") != "个体工商户" or is_absent(obj.get("business_reg_no")):
                out.append(env.rule_error(
                    spec, _PLACEHOLDER_RULE, path,
                    "占位代码 00000000000000000X 仅可用于有工商注册号的个体工商户",
                    "the placeholder 00000000000000000X is accepted only for a 个体工商户 "
                    "with a business_reg_no"))
            return
        for f in env.identifiers(spec, v):
            zh, en = IDENTIFIER_DETAILS[f.code] if spec.pii else (f.detail_zh, f.detail_en)
            out.append(env.finding(spec, f.code, path, severity=f.severity, detail_zh=zh, detail_en=en))
    return check


def _date_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    is_datetime = spec.type == "datetime"
    shape = _DATETIME if is_datetime else _DATE
    parse: Callable[[str], object] = datetime.fromisoformat if is_datetime else date.fromisoformat

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        if not isinstance(v, str) or shape(v) is None:
            out.append(env.type_error(spec, path, v, spec.type))
            return
        try:
            parse(v)
        except ValueError:
            out.append(env.type_error(spec, path, v, "calendar"))
            return
        if v[:10] <= _LAST_SENTINEL_DATE:
            out.append(env.rule_error(spec, "COM-003", path, "日期须晚于 1900-01-01（无日期请留空）",
                                      "dates must be later than 1900-01-01 (leave a missing date absent)"))
    return check


def _decimal_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    low, high, money = spec.min, spec.max, spec.unit == "yuan"
    bounds = f"[{'-∞' if low is None else low}, {'+∞' if high is None else high}]"

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        if not isinstance(v, str) or _DECIMAL(v) is None:
            out.append(env.type_error(spec, path, v, "decimal"))
            return
        if (low is not None and Decimal(v) < low) or (high is not None and Decimal(v) > high):
            out.append(env.finding(spec, "RANGE", path, v, bounds=bounds))
        if money:
            dot = v.find(".")
            if dot < 0 or len(v) - dot != 3 or (v[0] == "-" and Decimal(v) < 0):
                out.append(env.rule_error(spec, "COM-002", path, "金额须不小于 0 且保留 2 位小数",
                                          "money must be >= 0 with exactly 2 decimal places"))
    return check


def _integer_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    low, high = spec.min, spec.max
    bounds = f"[{'-∞' if low is None else low}, {'+∞' if high is None else high}]"

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            out.append(env.type_error(spec, path, v, "integer"))
        elif (low is not None and v < low) or (high is not None and v > high):
            out.append(env.finding(spec, "RANGE", path, v, bounds=bounds))
    return check


def _boolean_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        if v is not True and v is not False:
            out.append(env.type_error(spec, path, v, "boolean"))
    return check


def _code_finding(spec: FieldSpec, env: _Env, path: str, value: Any) -> Finding:
    table = env.standard.code_tables[spec.code_table or ""]
    severity: Severity = "warning" if spec.code_table_mode == "open" else "error"
    return env.finding(spec, "CODE_UNKNOWN", path, value, severity=severity,
                       table=table.name, table_label_zh=table.label_zh)


def _enum_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    codes = env.standard.code_tables[spec.code_table or ""].codes

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        if not isinstance(v, str):
            out.append(env.type_error(spec, path, v, "enum"))
        elif v not in codes:
            out.append(_code_finding(spec, env, path, v))
    return check


def _items_count(spec: FieldSpec, env: _Env, v: list[Any], out: list[Finding], path: str) -> None:
    if spec.min_items is not None and len(v) < spec.min_items:
        out.append(env.finding(spec, "MIN_ITEMS", path, min_items=spec.min_items, count=len(v)))
    if spec.max_items is not None and len(v) > spec.max_items:
        out.append(env.finding(spec, "MAX_ITEMS", path, max_items=spec.max_items, count=len(v)))


def _string_list_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    max_length = spec.item_max_length
    pattern = re.compile(spec.item_pattern).fullmatch if spec.item_pattern else None
    codes = env.standard.code_tables[spec.code_table].codes if spec.code_table else None
    per_item = max_length is not None or pattern is not None or codes is not None

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        trimmed_texts = isinstance(v, list)
        if trimmed_texts:
            for x in v:  # a plain loop: all() over a generator costs twice as much per item
                if not isinstance(x, str) or not x or x.strip() != x:
                    trimmed_texts = False
                    break
        if not trimmed_texts:
            out.append(env.type_error(spec, path, v, "list[string]"))
            return
        if len(set(v)) != len(v):
            out.append(env.type_error(spec, path, None, "distinct"))
        _items_count(spec, env, v, out, path)
        if per_item:
            for i, x in enumerate(v):
                if max_length is not None and len(x) > max_length:
                    out.append(env.finding(spec, "MAX_LENGTH", f"{path}[{i}]", length=len(x),
                                           max_length=max_length))
                if pattern is not None and pattern(x) is None:
                    out.append(env.finding(spec, "PATTERN", f"{path}[{i}]", x, pattern=spec.item_pattern))
                if codes is not None and x not in codes:
                    out.append(_code_finding(spec, env, f"{path}[{i}]", x))
    return check


def _object_list_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    items = _ObjectChecks(spec.item_fields, env, kind)

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        objects = isinstance(v, list)
        if objects:
            for x in v:  # a plain loop: all() over a generator costs twice as much per item
                if not isinstance(x, dict):
                    objects = False
                    break
        if not objects:
            out.append(env.type_error(spec, path, None, "list[object]"))
            return
        _items_count(spec, env, v, out, path)
        for i, item in enumerate(v):
            items.run(item, out, f"{path}[{i}].")
    return check


def _object_check(spec: FieldSpec, env: _Env, kind: KindSpec) -> Check:
    nested = _ObjectChecks(spec.item_fields, env, kind) if spec.item_fields and not spec.free_form else None

    def check(v: Any, obj: Mapping[str, Any], out: list[Finding], path: str) -> None:
        if not isinstance(v, dict):
            out.append(env.type_error(spec, path, None, "object"))
        elif nested is not None:
            nested.run(v, out, f"{path}.")
    return check


_FACTORIES: dict[str, Callable[[FieldSpec, _Env, KindSpec], Check]] = {
    "string": _string_check, "text": _string_check, "date": _date_check, "datetime": _date_check,
    "decimal": _decimal_check, "integer": _integer_check, "boolean": _boolean_check, "enum": _enum_check,
    "list[string]": _string_list_check, "list[object]": _object_list_check, "object": _object_check,
}


class _ObjectChecks:
    """Checks of one object's fields (a list[object] item): unknown, type..., required, conditional."""

    __slots__ = ("conditional", "entries", "kind", "labels", "required")

    def __init__(self, fields: Iterable[FieldSpec], env: _Env, kind: KindSpec) -> None:
        specs = {f.name: f for f in fields}
        self.kind = kind
        self.labels = {name: f.label_zh for name, f in specs.items()}
        self.entries = {f.name: (*_fast_path(f, env, kind), compile_check(f, env, kind)) for f in specs.values()}
        self.required = tuple(f for f in specs.values() if f.required is True)
        self.conditional = tuple((f, compile_condition(f.when), f.when) for f in specs.values()
                                 if f.required == "conditional" and f.when is not None)

    def run(self, obj: Mapping[str, Any], out: list[Finding], prefix: str) -> None:
        _check_present(self.entries, self.kind, obj, out, prefix)
        for spec in self.required:
            value = obj.get(spec.name)
            if value is None or value == "" or value == []:  # is_absent, inline: per item and field
                out.append(make_finding("REQUIRED", prefix + spec.name, label_zh=spec.label_zh))
        for spec, holds, when in self.conditional:
            if is_absent(obj.get(spec.name)) and holds(obj):
                out.append(make_finding(
                    "REQUIRED", prefix + spec.name, label_zh=spec.label_zh,
                    condition_zh=f"（条件：{describe_condition_zh(when, self.labels)}）",
                    condition_en=f" ({spec.required_when})" if spec.required_when else ""))


# --- the validator ------------------------------------------------------------------------------

_RuleEntry = tuple[RuleSpec, Any, frozenset[str]]  # (spec, rule function, fields it reads)


def _root(path: str) -> str:
    """The top-level field of a finding path: ``factors[2].code`` -> ``factors``."""
    return path.split("[", 1)[0].split(".", 1)[0]


_GENERAL, _PLAIN_STRING, _MEMBER, _BOOLEAN, _PATTERN_STRING, _CODE_LIST, _LAST_PATTERN_STRING = range(7)
_NO_LIMIT = 1 << 62
# checks that read the value alone: dates repeat, and so does received_at within an envelope
_VALUE_ONLY_TYPES = frozenset({"date", "datetime", "decimal"})


def _fast_path(spec: FieldSpec, env: _Env, kind: KindSpec) -> tuple[int, Any]:
    """How ``validate`` can accept a valid value without calling the field's check closure.

    Identifier, date and datetime values repeat across records (provider, implementing body,
    division, decision dates, receipt time), so a field whose result depends on the value alone
    memoises its valid values. PII is never memoised, nor RIC (valid depends on today) or CRD-001's ``uscc``.
    """
    if spec.type in ("string", "text") and not spec.identifier:
        limit = _NO_LIMIT if spec.max_length is None else spec.max_length
        if spec.pattern:
            fullmatch = re.compile(spec.pattern).fullmatch
            if spec.pii or spec.pii_when:  # nothing personal is kept past its record
                return _PATTERN_STRING, (limit, fullmatch)
            # codes, versions, connector and device ids repeat: the last valid one is kept
            return _LAST_PATTERN_STRING, [limit, fullmatch, None]
        return _PLAIN_STRING, limit
    if spec.type == "boolean":
        return _BOOLEAN, None
    if spec.type == "list[string]" and spec.code_table:
        codes = env.standard.code_tables[spec.code_table].codes
        pattern = re.compile(spec.item_pattern).fullmatch if spec.item_pattern else None
        # codes the full check accepts as items (non-empty, trimmed, within the item limits)
        valid = frozenset(c for c in codes if c and c.strip() == c
                          and (spec.item_max_length is None or len(c) <= spec.item_max_length)
                          and (pattern is None or pattern(c) is not None))
        return _CODE_LIST, (valid, spec.min_items or 1, _NO_LIMIT if spec.max_items is None else spec.max_items)
    if spec.type == "enum":
        return _MEMBER, env.standard.code_tables[spec.code_table or ""].codes
    placeholder_field = spec.name == "uscc" and any(r.id == _PLACEHOLDER_RULE for r in kind.rules)
    value_only = spec.type in _VALUE_ONLY_TYPES or (spec.identifier not in (None, "ric") and not placeholder_field)
    if value_only and not spec.pii:
        return _MEMBER, set()
    return _GENERAL, None


class _CompiledKind:
    """Everything ``validate`` needs for one kind, built once."""

    __slots__ = ("conditional", "cross_rules", "d_required", "d_rules", "entries", "gateway_fields", "kind",
                 "order", "required", "rules", "rules_by_fields")

    def __init__(self, kind: KindSpec, env: _Env, rules: Mapping[str, Any],
                 cross_rules: Mapping[str, Any]) -> None:
        self.kind = kind
        self.entries = {name: (*_fast_path(spec, env, kind), compile_check(spec, env, kind))
                        for name, spec in kind.fields.items()}
        self.order = {name: i for i, name in enumerate(kind.fields)}
        labels = {name: spec.label_zh for name, spec in kind.fields.items()}
        self.required = {name: make_finding("REQUIRED", name, label_zh=spec.label_zh)
                         for name, spec in kind.fields.items() if spec.required is True}
        self.d_required = {name: finding for name, finding in self.required.items()
                           if name in kind.common_fields or name in kind.business_key}
        self.conditional = tuple(
            (name, compile_condition(spec.when), make_finding(
                "REQUIRED", name, label_zh=spec.label_zh,
                condition_zh=f"（条件：{describe_condition_zh(spec.when, labels)}）",
                condition_en=f" ({spec.required_when})" if spec.required_when else ""))
            for name, spec in kind.fields.items()
            if spec.required == "conditional" and spec.when is not None)
        record_rules = [(r, rules[r.id], frozenset(r.fields)) for r in kind.rules
                        if r.scope == "record" and r.id in rules]
        self.rules: tuple[_RuleEntry, ...] = tuple(record_rules)
        self.d_rules = tuple(e for e in record_rules if e[0].id.startswith("COM-"))
        self.cross_rules: tuple[_RuleEntry, ...] = tuple(
            (r, cross_rules[r.id], frozenset(r.fields)) for r in kind.rules
            if r.scope == "cross_record" and r.id in cross_rules)
        self.gateway_fields = frozenset(name for name, spec in kind.fields.items() if spec.filled_by == "gateway")
        self.rules_by_fields: dict[frozenset[str], tuple[tuple[_RuleEntry, ...], tuple[_RuleEntry, ...]]] = {}

    def rules_for(self, fields: frozenset[str]) -> tuple[tuple[_RuleEntry, ...], tuple[_RuleEntry, ...]]:
        """(rules, rules on ``d``) without those that cannot break on a record of ``fields`` and the
        gateway's (``fires_only_with``); kept per set (one per mapping)."""
        found = self.rules_by_fields.get(fields)
        if found is None:
            present = fields | self.gateway_fields
            if len(self.rules_by_fields) >= _MAX_FIELD_SETS:
                self.rules_by_fields.clear()
            found = self.rules_by_fields[fields] = (_may_break(self.rules, present), _may_break(self.d_rules, present))
        return found


_Entries = dict[str, tuple[int, Any, Check]]
_NO_BLANKS: list[str] = []  # never appended to (see _check_present)
_MAX_FIELD_SETS = 256


def _may_break(entries: tuple[_RuleEntry, ...], present: frozenset[str]) -> tuple[_RuleEntry, ...]:
    from mapping.rules.violation import fires_with  # deferred: the rule modules import the standard

    kept = []
    for entry in entries:
        sets = fires_with(entry[1])
        if sets is None or any(fields <= present for fields in sets):
            kept.append(entry)
    return tuple(kept)


def _check_present(entries: _Entries, kind: KindSpec, obj: Mapping[str, Any], out: list[Finding],
                   prefix: str) -> list[str]:
    """The field checks of one object (a record, or an item of a list of objects, its paths under
    ``prefix``); return the names present but absent-valued."""
    blank: list[str] = _NO_BLANKS  # a list only when there is one: a record seldom has any
    for name, v in obj.items():
        try:  # a subscript, cheaper than .get in this loop: unknown fields are the exception
            fast, param, check = entries[name]
        except KeyError:
            out.append(make_finding("UNKNOWN_FIELD", prefix + str(name)[:64], kind=kind.name,
                                    kind_label_zh=kind.label_zh))
            continue
        # Fast accepts first (literal ints: cheaper than globals in this hot loop); anything
        # they do not accept goes to the full check, which reports the findings.
        if fast == 1:  # _PLAIN_STRING
            if v.__class__ is str and v and len(v) <= param and v.strip() == v:
                continue
        elif fast == 2:  # _MEMBER: enum codes or memoised valid values
            if v.__class__ is str and v in param:
                continue
        elif fast == 3:  # _BOOLEAN
            if v is True or v is False:
                continue
        elif fast == 4:  # _PATTERN_STRING
            if (v.__class__ is str and v and len(v) <= param[0] and param[1](v) is not None
                    and v.strip() == v):
                continue
        elif fast == 6:  # _LAST_PATTERN_STRING: the last valid value, else as _PATTERN_STRING
            if v.__class__ is str:
                if v == param[2]:
                    continue
                if v and len(v) <= param[0] and param[1](v) is not None and v.strip() == v:
                    param[2] = v
                    continue
        elif fast == 5 and v.__class__ is list and param[1] <= len(v) <= param[2]:  # _CODE_LIST
            for x in v:  # texts (hashable), then distinct codes
                if x.__class__ is not str:
                    break
            else:
                if param[0].issuperset(v) and len(set(v)) == len(v):
                    continue
        if v is None or v == "" or v == []:
            if blank is _NO_BLANKS:
                blank = []
            blank.append(name)
            continue
        before = len(out)
        check(v, obj, out, prefix + name)
        if param.__class__ is set and len(out) == before:  # memoise a valid value
            if len(param) >= _MAX_CACHED_IDENTIFIERS:
                param.clear()
            param.add(v)
    return blank


class Validator:
    """Validates mapped records of every kind of one standard version."""

    def __init__(
        self,
        standard: Standard,
        *,
        uscc_exceptions: frozenset[str] = frozenset(),
        today_fn: Callable[[], date] | None = None,
        rules: Mapping[str, RuleFn] | None = None,
        cross_record_rules: Mapping[str, CrossRecordRuleFn] | None = None,
        field_level_rules: frozenset[str] | None = None,
    ) -> None:
        """``rules``/``cross_record_rules``/``field_level_rules`` default to ``mapping.rules``."""
        if rules is None or cross_record_rules is None or field_level_rules is None:
            from mapping import rules as rule_tables  # deferred: the rule modules import the standard

            rules = rule_tables.RULES if rules is None else rules
            if cross_record_rules is None:
                cross_record_rules = rule_tables.CROSS_RECORD_RULES
            if field_level_rules is None:
                field_level_rules = rule_tables.FIELD_LEVEL_RULES
        self.standard = standard
        self._rule_findings: _RuleFindings = {}
        env = _Env(standard, {r.id: r.severity for r in standard.rules.values()},
                   frozenset(uscc_exceptions), today_fn, {})
        self._kinds = {name: _CompiledKind(kind, env, rules, cross_record_rules)
                       for name, kind in standard.kinds.items()}
        implemented = set(rules) | set(cross_record_rules) | set(field_level_rules) | {_PLACEHOLDER_RULE}
        self.unimplemented_rules: frozenset[str] = frozenset(standard.rules) - implemented
        """Rule ids of the standard that nothing checks (should be empty)."""

    def validate(self, record: Mapping[str, Any], history: RecordHistory | None = None) -> list[Finding]:
        """Every finding of ``record``; cross-record rules run only when ``history`` is given.

        Findings are immutable and may be shared between calls (REQUIRED ones are built once);
        their ``location`` is None: use ``Finding.at`` to place them.
        """
        out, broken = self.check_record(record)
        if history is not None:
            self.check_history(record, history, out, broken)
        return out

    def check_record(self, record: Mapping[str, Any], fields: frozenset[str] | None = None
                     ) -> tuple[list[Finding], frozenset[str] | None]:
        """What ``validate`` finds without the history (fields, the record's own rules), and the
        fields with an error before the rules ran, which ``check_history`` is given back: the part
        that needs nothing but the record, so it may run in another process.

        ``fields``: the top-level fields the record may hold besides the gateway's, when known (its
        mapping's ``record_fields``): rules that cannot break without others are not run."""
        compiled = self._compiled(record)
        if compiled is None:
            return [make_finding("KIND_UNKNOWN", "record_kind", value=record.get("record_kind"),
                                 version=self.standard.version)], None
        out: list[Finding] = []
        blank = _check_present(compiled.entries, compiled.kind, record, out, "")
        full = record.get("operation") != "d"
        required = compiled.required if full else compiled.d_required
        if blank or not record.keys() >= required.keys():  # all present: no set built
            missing = required.keys() - record.keys()
            if blank:
                missing.update(name for name in blank if name in required)
            for name in missing:
                out.append(required[name])
        if full:
            for name, holds, finding in compiled.conditional:
                value = record.get(name)
                if (value is None or value == "" or value == []) and holds(record):
                    out.append(finding)
        if len(out) > 1:
            order = compiled.order
            out.sort(key=lambda f: order.get(_root(f.field), len(order)))
        broken = frozenset(_root(f.field) for f in out if f.severity == "error") if out else None
        if fields is None:
            entries = compiled.rules if full else compiled.d_rules
        else:
            entries = compiled.rules_for(fields)[0 if full else 1]
        self._run_rules(entries, record, out, broken)
        return out, broken

    def check_history(self, record: Mapping[str, Any], history: RecordHistory, out: list[Finding],
                      broken: frozenset[str] | None) -> None:
        """The cross-record rules' findings, added to ``out`` and ``broken`` from ``check_record``."""
        compiled = self._compiled(record)
        if compiled is None:
            return
        full = record.get("operation") != "d"
        for spec, rule, fields in compiled.cross_rules:
            if (full or spec.id.startswith("COM-")) and (not broken or fields.isdisjoint(broken)):
                for violation in rule(record, history):
                    _add_violation(spec, violation, out, self._rule_findings)

    def _compiled(self, record: Mapping[str, Any]) -> _CompiledKind | None:
        kind_name = record.get("record_kind")
        return self._kinds.get(kind_name) if isinstance(kind_name, str) else None

    def _run_rules(self, entries: tuple[_RuleEntry, ...], record: Mapping[str, Any], out: list[Finding],
                   broken: frozenset[str] | None) -> None:
        cache = self._rule_findings
        if not broken:  # the common case: no field error, every rule runs (most hold: empty result)
            for spec, rule, _fields in entries:
                found = rule(record)
                if found:
                    for violation in found:
                        _add_violation(spec, violation, out, cache)
        else:
            for spec, rule, fields in entries:
                if fields.isdisjoint(broken):
                    for violation in rule(record):
                        _add_violation(spec, violation, out, cache)


_MAX_CACHED_RULE_FINDINGS = 4096
# (rule id, severity, violation) -> its finding; rule id -> its last (violation, finding)
_RuleFindings = dict[Any, Any]


def _add_violation(spec: RuleSpec, violation: Violation, out: list[Finding], cache: _RuleFindings) -> None:
    field = violation.field
    if out:
        # CRD-001's placeholder part is also checked at field level; report it once.
        code = f"RULE:{spec.id}"
        for f in out:
            if f.field == field and f.code == code:
                return
    # The same violations recur (COM-006 on every update of a key not seen before, BEH-001...):
    # findings are immutable, so one rendered finding serves them all. Violations never quote PII.
    # A rule that returns one violation object every time (BEH-001's) finds it by identity first,
    # without hashing its texts.
    last = cache.get(spec.id)
    if last is not None and last[0] is violation:
        out.append(last[1])
        return
    key = (spec.id, spec.severity, violation)
    found = cache.get(key)
    if found is None:
        found = make_finding(f"RULE:{spec.id}", field, severity=spec.severity, rule_id=spec.id,
                             detail_en=violation.detail_en, detail_zh=violation.detail_zh)
        if len(cache) >= _MAX_CACHED_RULE_FINDINGS:
            cache.clear()
        cache[key] = found
    cache[spec.id] = (violation, found)
    out.append(found)
