"""``each`` and ``entries`` sources (lists of objects), and the final coercion of a field's value.

Inner field specs read the element (for ``entries`` the element is ``{key, value}``); findings and
provenance of inner fields are keyed by the standard path ``factors[2].code`` and located at the
element's source path ``factors[2].Rtd``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from mapping.map_context import Evaluator, MapContext, as_text
from mapping.paths import Getter, PathSyntaxError, compile_path, render_path
from mapping.spec import Loc, SpecProblem, ValueSpec

if TYPE_CHECKING:
    from mapping.evaluators import CompiledValue, Scope
    from mapping.standard import FieldSpec

Finalize = Callable[[Any], Any]
InnerPlan = tuple[str, Callable[[Any, MapContext], Any], str | None, Finalize | None]
CompileValue = Callable[[ValueSpec, "Scope", Loc], "CompiledValue"]

_TEXT_TYPES = frozenset({"string", "text", "enum"})


def _number_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return as_text(value)
    return value


def _decimal_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return format(Decimal(repr(value) if isinstance(value, float) else value), "f")
        except InvalidOperation:
            return value
    return value


def _string_list(value: Any) -> Any:
    if type(value) is list:  # items are usually text already: convert only the others
        return [v if type(v) is str else _number_text(v) for v in value]
    if isinstance(value, dict):
        return value
    return [_number_text(value)]


def finalizer(spec: FieldSpec | None) -> Finalize | None:
    """Lossless coercion of a value that is not text to the field's type: numbers to text for text
    fields, to plain decimal text for decimal fields; everything else is left to validation."""
    if spec is None:
        return None
    if spec.type in _TEXT_TYPES:
        return _number_text
    if spec.type == "decimal":
        return _decimal_text
    return None


def typed(evaluate: Evaluator, spec: FieldSpec | None) -> Evaluator:
    """For list[string] fields, a single value becomes a list of one (XML with one element)."""
    if spec is None or spec.type != "list[string]":
        return evaluate

    def as_list(src: Any, ctx: MapContext) -> Any:
        value = evaluate(src, ctx)
        return None if value is None else _string_list(value)

    return as_list


def compile_list_source(
    spec: ValueSpec, scope: Scope, loc: Loc, compile_value: CompileValue
) -> CompiledValue:
    from mapping.evaluators import CompiledValue

    is_entries = spec.source_kind == "entries"
    text = (spec.entries if is_entries else spec.each) or ""
    try:
        compiled = compile_path(text)
    except PathSyntaxError as exc:
        raise SpecProblem(str(exc)) from exc
    plans = _inner_plans(spec, scope, loc, compile_value)
    get = compiled.get
    run = _run_entries(compiled.text, get, plans) if is_entries else _run_each(compiled.text, get, plans)
    return CompiledValue(run, compiled.text)


def _inner_plans(
    spec: ValueSpec, scope: Scope, loc: Loc, compile_value: CompileValue
) -> tuple[InnerPlan, ...]:
    target = scope.tctx.spec
    if target is not None and target.type != "list[object]":
        raise SpecProblem(f"'{spec.source_kind}' makes a list of objects, but the field is {target.type}")
    known = {f.name: f for f in target.item_fields} if target is not None else None
    plans: list[InnerPlan] = []
    for name, inner in (spec.fields or {}).items():
        item_spec = known.get(name) if known is not None else None
        if known is not None and item_spec is None:
            hint = difflib.get_close_matches(name, known, n=1)
            message = f"unknown item field {name!r} of {scope.tctx.field}" + (
                f" (did you mean {hint[0]!r}?)" if hint else f"; known: {', '.join(known)}")
            scope.problems.add((*loc, "fields", name), message)
            continue
        tctx = replace(scope.tctx, field=f"{scope.tctx.field}[].{name}", spec=item_spec, element=False)
        compiled = compile_value(inner, scope.at_field(tctx), (*loc, "fields", name))
        plans.append((name, typed(compiled.evaluate, item_spec), compiled.provenance, finalizer(item_spec)))
    return tuple(plans)


def _each_suffix(provenance: str | None) -> str:
    return "." + provenance if provenance else ""


def _entry_suffix(provenance: str | None) -> str:
    # `key` and `value` name the entry itself; deeper paths go below it
    if provenance is not None and provenance.startswith(("value.", "value[")):
        return provenance[5:]
    return ""


_Layout = tuple[str, str, tuple[str, ...], tuple[str, ...]]
"""An element's source path, the prefix of paths under it, its fields' standard paths and their
source paths (before any ``first`` alternative overrides one)."""
_MAX_LAYOUTS = 1024


def _layout(field_prefix: str, element: str, names: tuple[str, ...], suffixes: tuple[str, ...]) -> _Layout:
    return (element, element + ".", tuple([field_prefix + name for name in names]),
            tuple([element + suffix for suffix in suffixes]))


def _fill(item: Any, ctx: MapContext, plans: tuple[InnerPlan, ...], layout: _Layout,
          suffix_of: Callable[[str | None], str]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    provenance = ctx.provenance
    element, ctx.src_prefix, fields, sources = layout
    for (name, evaluate, _, finalize), field, source in zip(plans, fields, sources, strict=True):
        ctx.field = field
        value = evaluate(item, ctx)
        if ctx.prov_override is not None:
            source = element + suffix_of(ctx.prov_override)
            ctx.prov_override = None
        provenance[field] = source
        if value is not None:
            obj[name] = finalize(value) if finalize is not None and type(value) is not str else value
    return obj


def _run_each(path: str, get: Getter, plans: tuple[InnerPlan, ...]) -> Evaluator:
    names = tuple(p[0] for p in plans)
    suffixes = tuple(_each_suffix(p[2]) for p in plans)
    # The paths of the n-th element repeat from record to record: built once, not per element.
    layouts: dict[tuple[str, str, int, int], _Layout] = {}

    def run(src: Any, ctx: MapContext) -> Any:
        raw = get(src)
        listed = type(raw) is list
        items = raw if listed else [] if raw is None or isinstance(raw, str) else [raw]
        field, prefix = ctx.field, ctx.src_prefix
        out: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            key = (field, prefix, i if listed else -1, len(out))
            layout = layouts.get(key)
            if layout is None:
                element = f"{prefix}{path}[{i}]" if listed else f"{prefix}{path}"
                if len(layouts) >= _MAX_LAYOUTS:
                    layouts.clear()
                layout = layouts[key] = _layout(f"{field}[{len(out)}].", element, names, suffixes)
            obj = _fill(item, ctx, plans, layout, _each_suffix)
            if obj:
                out.append(obj)
        ctx.field, ctx.src_prefix = field, prefix
        return out or None

    return run


def _run_entries(path: str, get: Getter, plans: tuple[InnerPlan, ...]) -> Evaluator:
    names = tuple(p[0] for p in plans)
    suffixes = tuple(_entry_suffix(p[2]) for p in plans)

    def run(src: Any, ctx: MapContext) -> Any:
        raw = get(src)
        if not isinstance(raw, dict):
            return None
        field, prefix = ctx.field, ctx.src_prefix
        out: list[dict[str, Any]] = []
        for key, value in raw.items():
            layout = _layout(f"{field}[{len(out)}].", f"{prefix}{path}.{render_path((str(key),))}", names,
                             suffixes)
            obj = _fill({"key": key, "value": value}, ctx, plans, layout, _entry_suffix)
            if obj:
                out.append(obj)
        ctx.field, ctx.src_prefix = field, prefix
        return out or None

    return run
