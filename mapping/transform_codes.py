"""Code transforms: ``map`` (a table local to the mapping) and ``lookup`` (a standard code table)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mapping.findings import Severity
from mapping.map_context import MapContext, TransformFailure, as_text, clean, quote, quote_zh
from mapping.spec import SpecProblem
from mapping.transform_base import CompiledTransform, TransformContext

if TYPE_CHECKING:
    from mapping.codes import CodeTable


def _text_key(key: Any) -> str:
    if isinstance(key, str | int | float | bool):
        return as_text(key).strip()
    raise SpecProblem(f"keys must be text or numbers, got {key!r}")


def map_factory(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    if not isinstance(arg, dict) or not arg:
        raise SpecProblem("'map' needs a table {source value: output}")
    otherwise = extra.get("else")
    if otherwise not in (None, "keep", "absent"):
        raise SpecProblem("'map': 'else' is 'keep' (pass unmapped values through) or 'absent' (drop them)")
    table = {_text_key(k): v for k, v in arg.items()}
    refusals = _refusals(extra.get("refuse"))
    pii = tctx.pii

    def one(value: Any) -> Any:
        text = as_text(value)
        out = table.get(text, _MISSING)
        if out is not _MISSING:
            return out
        refused = refusals.get(text.strip())
        if refused is not None:
            code, message_zh, message_en = refused
            raise TransformFailure(code, f"{message_en} (value {quote(value, pii)})",
                                   f"{message_zh}（取值{quote_zh(value, pii)}）")
        if otherwise is not None:
            return value if otherwise == "keep" else None
        raise TransformFailure(
            "CODE_UNKNOWN",
            f"value {quote(value, pii)} is not in the mapping's table",
            f"取值{quote_zh(value, pii)}不在映射表中",
        )

    def apply(value: Any, ctx: MapContext) -> Any:
        if type(value) is list:
            return clean([one(v) for v in value])
        return clean(one(value))

    return CompiledTransform("map", apply, pure=True)


_MISSING = object()
_CODE = re.compile(r"[A-Z][A-Z0-9_:-]{1,63}")


def _refusals(arg: Any) -> dict[str, tuple[str, str, str]]:
    """``map``'s ``refuse:``: source values the table leaves out on purpose, each failing with a
    code of its own (a contract's, e.g. IOT_DEVICE_INACTIVE) instead of CODE_UNKNOWN:
    ``{value: CODE}`` or ``{value: {code: CODE, message_zh: ..., message_en: ...}}``."""
    if arg is None:
        return {}
    if not isinstance(arg, dict) or not arg:
        raise SpecProblem("'map': 'refuse' is a table {source value: CODE or {code, message_zh, message_en}}")
    out: dict[str, tuple[str, str, str]] = {}
    for key, how in arg.items():
        spec = {"code": how} if isinstance(how, str) else how
        if not isinstance(spec, dict) or set(spec) - {"code", "message_zh", "message_en"}:
            raise SpecProblem(f"'map': refuse {key!r}: a CODE or {{code, message_zh, message_en}}")
        code = spec.get("code")
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise SpecProblem(f"'map': refuse {key!r}: code {code!r} is not an upper-case code")
        message_zh = str(spec.get("message_zh") or f"取值不予受理（{code}）")
        message_en = str(spec.get("message_en") or f"the value is refused ({code})")
        out[_text_key(key)] = (code, message_zh, message_en)
    return out


def _lookup_options(arg: Any, tctx: TransformContext) -> tuple[str, dict[str, str], tuple[str, ...]]:
    field_table = tctx.spec.code_table if tctx.spec is not None else None
    if arg is None or isinstance(arg, str):
        options: dict[str, Any] = {"table": arg}
    elif isinstance(arg, dict):
        options = dict(arg)
    else:
        raise SpecProblem("'lookup' takes a table name or {table, aliases, scheme}")
    unknown = set(options) - {"table", "aliases", "scheme", "schemes"}
    if unknown:
        raise SpecProblem(f"'lookup' has no option {', '.join(sorted(unknown))}")
    name = options.get("table") or field_table
    if not isinstance(name, str):
        raise SpecProblem("'lookup' needs a table: the field has no code_table")
    aliases = options.get("aliases") or {}
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise SpecProblem("'lookup': aliases map source values to codes (text)")
    scheme = options.get("scheme")
    schemes = options.get("schemes", [scheme] if scheme else list(tctx.schemes))
    if not isinstance(schemes, list) or not all(isinstance(s, str) for s in schemes):
        raise SpecProblem("'lookup': scheme is a name, schemes a list of names")
    return name, {_text_key(k): v for k, v in aliases.items()}, tuple(schemes)


def lookup_factory(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    name, aliases, schemes = _lookup_options(arg, tctx)
    table = tctx.standard.code_tables.get(name)
    if table is None:
        raise SpecProblem(f"unknown code table {name!r}")
    not_codes = sorted(table.unknown_alias_targets(aliases))
    if not_codes:
        raise SpecProblem(f"'lookup': alias targets {', '.join(not_codes)} are not codes of table {name!r}")
    spec = tctx.spec
    severity: Severity = "warning" if spec is not None and spec.code_table_mode == "open" else "error"
    as_list = spec is not None and spec.type == "list[string]" and not tctx.element
    narrow_field = narrow_field_of(table, tctx.kind) if as_list else None
    unknown = _unknown_reporter(table, severity, tctx.pii)
    extra_aliases = aliases or None
    resolve = table.resolver(schemes, extra_aliases)
    resolve_list = table.list_resolver(schemes, extra_aliases, memo=not tctx.pii)

    def one(value: Any) -> str:
        code = resolve(as_text(value).strip())
        if code is None:
            raise unknown([as_text(value)])
        return code

    def apply_scalar(value: Any, ctx: MapContext) -> Any:
        if type(value) is list:
            return [one(v) for v in value]
        return one(value)

    def apply_list(value: Any, ctx: MapContext) -> Any:
        items: str | list[str]
        if type(value) is list:  # split's output: text already, converted only when it is not
            items = [v if type(v) is str else as_text(v) for v in value]
        else:
            items = value if type(value) is str else [as_text(value)]
        narrow = ctx.record.get(narrow_field) if narrow_field else None
        res = resolve_list(items, narrow if isinstance(narrow, str) else None)
        if res.combined and narrow_field:
            ctx.read_record = True  # a combined label, narrowed by the other field: not for a memo
        if res.ambiguous:
            ctx.report("CODE_AMBIGUOUS", "warning",
                       f"a combined value could not be narrowed; kept all of {', '.join(res.codes)}",
                       f"组合取值无法细分，保留全部代码：{'、'.join(res.codes)}")
        if res.unknown:
            ctx.fail(unknown(res.unknown))
            return clean([*res.codes, *res.unknown])
        return res.codes or None

    # A narrowed list lookup reads another field of the record only for combined labels; it says
    # so (``MapContext.read_record``) when it does, so a memo keeps only what the value alone gave.
    return CompiledTransform("lookup", apply_list if as_list else apply_scalar, pure=True)


def narrow_field_of(table: CodeTable, kind: str) -> str | None:
    """The field whose text narrows combined labels of ``table`` in records of ``kind``."""
    return table.narrow_field.get(kind)


def _unknown_reporter(
    table: CodeTable, severity: Severity, pii: bool
) -> Callable[[list[str]], TransformFailure]:
    label = table.label_zh

    def unknown(values: list[str]) -> TransformFailure:
        shown_en = ", ".join(quote(v, pii) for v in values)
        shown_zh = "、".join(quote_zh(v, pii) for v in values)
        return TransformFailure(
            "CODE_UNKNOWN",
            f"{shown_en}: not a code of table {table.name} or one of its aliases",
            f"{shown_zh}不是代码表“{label}”（{table.name}）中的代码或别名",
            severity,
        )

    return unknown
