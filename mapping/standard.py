"""The unified standard as typed, immutable specs, loaded from the packaged YAML files.

``load_standard("1.0")`` reads ``mapping/standard/v1_0/unified-standard.yaml`` and
``code-tables.yaml`` once (cached), checks that they are consistent (every code table, shared
rule, business-key field and condition field named exists; rule ids are unique; patterns
compile) and raises ``ConfigError`` listing every problem. Nothing is read at import time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

import yaml

from gateway.errors import ConfigError
from mapping.codes import CodeTable

FieldType = Literal[
    "string", "text", "date", "datetime", "decimal", "integer", "boolean", "enum",
    "list[string]", "list[object]", "object",
]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    label_zh: str
    required: bool | Literal["conditional"]
    when: Mapping[str, Any] | None
    max_length: int | None
    pattern: str | None
    code_table: str | None
    code_table_mode: Literal["closed", "open"]
    identifier: str | None
    allow_township: bool
    pii: bool
    """True for ``pii: true`` and ``pii: conditional`` alike: conditional PII is treated as always PII."""
    unit: str | None
    min: Decimal | None
    max: Decimal | None
    min_items: int | None
    max_items: int | None
    item_max_length: int | None
    item_pattern: str | None
    item_fields: tuple[FieldSpec, ...]
    filled_by: Literal["source", "gateway"]
    # Beyond the shared interface: attributes rules and docs need.
    required_when: str | None = None
    pii_when: Mapping[str, Any] | None = None
    channels: tuple[str, ...] = ()
    free_form: bool = False
    source_unit: str | None = None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    severity: Literal["error", "warning"]
    fields: tuple[str, ...]
    statement: str
    scope: Literal["record", "cross_record"]
    field_selector: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, repr=False)
class KindSpec:
    name: str
    label_zh: str
    label_en: str
    business_key: tuple[str, ...]
    fields: Mapping[str, FieldSpec]
    """Common fields first, then the kind's own, in YAML order."""
    rules: tuple[RuleSpec, ...]
    """Common rules with ``applies_to: all``, then the kind's ``shared_rules``, then its own rules."""
    common_fields: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"KindSpec({self.name!r}, {len(self.fields)} fields, {len(self.rules)} rules)"


@dataclass(frozen=True, slots=True, repr=False)
class Standard:
    version: str
    kinds: Mapping[str, KindSpec]
    code_tables: Mapping[str, CodeTable]
    common_fields: Mapping[str, FieldSpec]
    rules: Mapping[str, RuleSpec]
    """Every rule of the standard by id (common and per kind)."""

    def __repr__(self) -> str:
        return f"Standard({self.version!r}, {len(self.kinds)} kinds, {len(self.code_tables)} code tables)"


_DATA_ROOT = Path(__file__).resolve().parent / "standard"
"""Packaged YAML copies, one folder per version (``v1_0``). A path relative to this module, not
``importlib.resources``: the editable install's namespace path breaks ``resources.files``."""


def _version_dir(version: str) -> str:
    return "v" + version.replace(".", "_")


def supported_versions() -> tuple[str, ...]:
    """The standard versions shipped in the package, e.g. ``("1.0",)``."""
    found = []
    for entry in _DATA_ROOT.iterdir():
        m = re.fullmatch(r"v([0-9]+)_([0-9]+)", entry.name)
        if m and entry.joinpath("unified-standard.yaml").is_file():
            found.append((int(m.group(1)), int(m.group(2))))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def load_standard(version: str = "1.0") -> Standard:
    """Load, check and cache one standard version; an unshipped version is a ``ConfigError``."""
    return _load(version)


@lru_cache(maxsize=8)
def _load(version: str) -> Standard:
    if version not in supported_versions():
        raise ConfigError(
            f"VERSION_UNSUPPORTED: standard version {version!r} is not shipped "
            f"(supported: {', '.join(supported_versions())})"
        )
    folder = _DATA_ROOT / _version_dir(version)
    std_doc = _read_yaml(folder.joinpath("unified-standard.yaml").read_text(encoding="utf-8"))
    tables_doc = _read_yaml(folder.joinpath("code-tables.yaml").read_text(encoding="utf-8"))
    problems = check_consistency(std_doc, tables_doc, version)
    if problems:
        raise ConfigError([f"standard {version}: {p}" for p in problems])
    return _build(std_doc, tables_doc, version)


def _read_yaml(text: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(doc, dict):
        raise ConfigError("standard file is not a YAML mapping")
    return doc


def _build(std_doc: Mapping[str, Any], tables_doc: Mapping[str, Any], version: str) -> Standard:
    tables = {name: CodeTable.from_yaml(name, t) for name, t in tables_doc["tables"].items()}
    common = std_doc["common"]
    common_fields = {f["name"]: _field(f, tables) for f in common["fields"]}
    common_rules = {r["id"]: _rule(r) for r in common["rules"]}
    all_rules = dict(common_rules)
    general = [common_rules[r["id"]] for r in common["rules"] if r.get("applies_to") == "all"]
    kinds: dict[str, KindSpec] = {}
    for kname, k in std_doc["kinds"].items():
        own_rules = [_rule(r) for r in k.get("rules", [])]
        all_rules.update((r.id, r) for r in own_rules)
        shared = [common_rules[rid] for rid in k.get("shared_rules", [])]
        fields = dict(common_fields)
        fields.update((f["name"], _field(f, tables)) for f in k["fields"])
        kinds[kname] = KindSpec(
            name=kname,
            label_zh=k["label_zh"],
            label_en=k.get("label_en", kname),
            business_key=tuple(k["business_key"]),
            fields=MappingProxyType(fields),
            rules=tuple(general + shared + own_rules),
            common_fields=frozenset(common_fields),
        )
    return Standard(
        version=version,
        kinds=MappingProxyType(kinds),
        code_tables=MappingProxyType(tables),
        common_fields=MappingProxyType(common_fields),
        rules=MappingProxyType(all_rules),
    )


_TYPES = frozenset(
    {"string", "text", "date", "datetime", "decimal", "integer", "boolean", "enum",
     "list[string]", "list[object]", "object"}
)
_IDENTIFIERS = frozenset(
    {"uscc", "ric", "org_code", "admin_division", "business_reg_no", "supervision_item_code",
     "check_impl_code", "gbt28181_id"}
)
_LEAF_OPS = frozenset({"eq", "ne", "in", "not_in", "contains", "contains_any", "present", "absent"})


def check_consistency(std: Mapping[str, Any], tables_doc: Mapping[str, Any], version: str) -> list[str]:
    """Every problem that would make the standard unusable, each starting with its path."""
    problems: list[str] = []
    for doc, name in ((std, "unified-standard.yaml"), (tables_doc, "code-tables.yaml")):
        if str(doc.get("standard_version")) != version:
            problems.append(f"{name}: standard_version is {doc.get('standard_version')!r}, not {version!r}")
    tables: Mapping[str, Any] = tables_doc.get("tables") or {}
    for tname, table in tables.items():
        codes = {str(c.get("code")) for c in table.get("codes", ())}
        for combined in table.get("combined_aliases", ()):
            for target in combined.get("maps_to", ()):
                if target not in codes:
                    problems.append(f"tables.{tname}.combined_aliases: maps to unknown code {target!r}")
    common = std.get("common") or {}
    common_fields = {f["name"]: f for f in common.get("fields", ())}
    common_rules = {r["id"]: r for r in common.get("rules", ())}
    seen_rules: dict[str, str] = {}
    _check_fields(common.get("fields", ()), "common.fields", common_fields, tables, problems)
    _check_rules(common.get("rules", ()), "common.rules", None, seen_rules, problems)
    for kname, kind in (std.get("kinds") or {}).items():
        where = f"kinds.{kname}"
        scope = dict(common_fields, **{f["name"]: f for f in kind.get("fields", ())})
        _check_fields(kind.get("fields", ()), f"{where}.fields", scope, tables, problems)
        _check_rules(kind.get("rules", ()), f"{where}.rules", scope, seen_rules, problems)
        for key in kind.get("business_key", ()):
            if key not in scope:
                problems.append(f"{where}.business_key: field {key} does not exist")
        for rid in kind.get("shared_rules", ()):
            if rid not in common_rules:
                problems.append(f"{where}.shared_rules: rule {rid} is not a common rule")
    for tname, table in tables.items():
        for kname, fname in (table.get("narrow_field") or {}).items():
            kind_fields = {f["name"] for f in (std.get("kinds") or {}).get(kname, {}).get("fields", ())}
            if fname not in kind_fields:
                problems.append(f"tables.{tname}.narrow_field: {kname}.{fname} does not exist")
    return problems


def _check_fields(
    fields: Sequence[Mapping[str, Any]], where: str, scope: Mapping[str, Any],
    tables: Mapping[str, Any], problems: list[str],
) -> None:
    for f in fields:
        path = f"{where}.{f.get('name')}"
        if f.get("type") not in _TYPES:
            problems.append(f"{path}: type {f.get('type')!r} unknown")
        if f.get("code_table") is not None and f["code_table"] not in tables:
            problems.append(f"{path}: code_table {f['code_table']} does not exist")
        if f.get("type") == "enum" and not f.get("code_table"):
            problems.append(f"{path}: enum without code_table")
        if f.get("identifier") is not None and f["identifier"] not in _IDENTIFIERS:
            problems.append(f"{path}: identifier {f['identifier']} unknown")
        for key in ("pattern", "item_pattern"):
            if key in f:
                try:
                    re.compile(f[key])
                except re.error as exc:
                    problems.append(f"{path}.{key}: does not compile: {exc}")
        if f.get("required") == "conditional" and "when" not in f:
            problems.append(f"{path}: required conditional without when")
        for key in ("when", "pii_when"):
            if key in f:
                _check_condition(f[key], f"{path}.{key}", scope, problems)
        subs = f.get("item_fields") or f.get("fields") or ()
        if f.get("type") == "list[object]" and not subs:
            problems.append(f"{path}: list[object] without item_fields")
        if subs:
            _check_fields(subs, path, {s["name"]: s for s in subs}, tables, problems)


def _check_condition(cond: Any, where: str, scope: Mapping[str, Any], problems: list[str]) -> None:
    if not isinstance(cond, Mapping):
        problems.append(f"{where}: condition is not a mapping")
    elif set(cond) in ({"all"}, {"any"}):
        for sub in cond.get("all") or cond.get("any") or ():
            _check_condition(sub, where, scope, problems)
    elif set(cond) == {"not"}:
        _check_condition(cond["not"], where, scope, problems)
    elif len(set(cond) - {"field"}) != 1 or not set(cond) - {"field"} <= _LEAF_OPS:
        problems.append(f"{where}: leaf needs field and one of {sorted(_LEAF_OPS)}")
    elif cond.get("field") not in scope:
        problems.append(f"{where}: unknown field {cond.get('field')}")


def _check_rules(
    rules: Sequence[Mapping[str, Any]], where: str, scope: Mapping[str, Any] | None,
    seen: dict[str, str], problems: list[str],
) -> None:
    for rule in rules:
        rid = str(rule.get("id"))
        if not re.fullmatch(r"[A-Z]{3}-[0-9]{3}", rid):
            problems.append(f"{where}: bad rule id {rid!r}")
        if rid in seen:
            problems.append(f"{where}.{rid}: duplicate rule id (also in {seen[rid]})")
        seen[rid] = where
        if rule.get("severity") not in ("error", "warning"):
            problems.append(f"{where}.{rid}: severity must be error or warning")
        if rule.get("scope", "record") not in ("record", "cross_record"):
            problems.append(f"{where}.{rid}: scope must be record or cross_record")
        for fname in rule.get("fields") or ():
            if scope is not None and fname not in scope:
                problems.append(f"{where}.{rid}: field {fname} does not exist")


def _opt_int(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return None if value is None else int(value)


def _opt_decimal(raw: Mapping[str, Any], key: str) -> Decimal | None:
    value = raw.get(key)
    return None if value is None else Decimal(str(value))


def _field(raw: Mapping[str, Any], tables: Mapping[str, CodeTable]) -> FieldSpec:
    table = raw.get("code_table")
    mode = raw.get("code_table_mode") or (tables[table].mode if table is not None and table in tables
                                          else "closed")
    subs: Sequence[Mapping[str, Any]] = raw.get("item_fields") or raw.get("fields") or ()
    return FieldSpec(
        name=raw["name"],
        type=cast(FieldType, raw["type"]),
        label_zh=raw["label_zh"],
        required=raw.get("required", False),
        when=raw.get("when"),
        max_length=_opt_int(raw, "max_length"),
        pattern=raw.get("pattern"),
        code_table=table,
        code_table_mode=mode,
        identifier=raw.get("identifier"),
        allow_township=bool(raw.get("allow_township", False)),
        pii=raw.get("pii", False) in (True, "conditional"),
        unit=raw.get("unit"),
        min=_opt_decimal(raw, "min"),
        max=_opt_decimal(raw, "max"),
        min_items=_opt_int(raw, "min_items"),
        max_items=_opt_int(raw, "max_items"),
        item_max_length=_opt_int(raw, "item_max_length"),
        item_pattern=raw.get("item_pattern"),
        item_fields=tuple(_field(s, tables) for s in subs),
        filled_by=raw.get("filled_by", "source"),
        required_when=raw.get("required_when"),
        pii_when=raw.get("pii_when"),
        channels=tuple(str(c) for c in raw.get("channels", ())),
        free_form=bool(raw.get("free_form", False)),
        source_unit=raw.get("source_unit"),
    )


def _rule(raw: Mapping[str, Any]) -> RuleSpec:
    return RuleSpec(
        id=raw["id"],
        severity=raw["severity"],
        fields=tuple(raw.get("fields") or ()),
        statement=raw.get("statement", ""),
        scope=raw.get("scope", "record"),
        field_selector=raw.get("field_selector"),
    )
