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


def _fill(item: Any, ctx: MapContext, plans: tuple[InnerPlan, ...], suffixes: tuple[str, ...],
          field_prefix: str, element: str, suffix_of: Callable[[str | None], str]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    provenance = ctx.provenance
    for (name, evaluate, _, finalize), suffix in zip(plans, suffixes, strict=True):
        field = ctx.field = field_prefix + name
        value = evaluate(item, ctx)
        if ctx.prov_override is not None:
            suffix = suffix_of(ctx.prov_override)
            ctx.prov_override = None
        provenance[field] = element + suffix
        if value is not None:
            obj[name] = finalize(value) if finalize is not None and type(value) is not str else value
    return obj


def _run_each(path: str, get: Getter, plans: tuple[InnerPlan, ...]) -> Evaluator:
    suffixes = tuple(_each_suffix(p[2]) for p in plans)

    def run(src: Any, ctx: MapContext) -> Any:
        raw = get(src)
        items = raw if type(raw) is list else [] if raw is None or isinstance(raw, str) else [raw]
        field, prefix = ctx.field, ctx.src_prefix
        out: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            element = f"{prefix}{path}[{i}]" if type(raw) is list else f"{prefix}{path}"
            ctx.src_prefix = element + "."
            obj = _fill(item, ctx, plans, suffixes, f"{field}[{len(out)}].", element, _each_suffix)
            if obj:
                out.append(obj)
        ctx.field, ctx.src_prefix = field, prefix
        return out or None

    return run


def _run_entries(path: str, get: Getter, plans: tuple[InnerPlan, ...]) -> Evaluator:
    suffixes = tuple(_entry_suffix(p[2]) for p in plans)

    def run(src: Any, ctx: MapContext) -> Any:
        raw = get(src)
        if not isinstance(raw, dict):
            return None
        field, prefix = ctx.field, ctx.src_prefix
        out: list[dict[str, Any]] = []
        for key, value in raw.items():
            element = f"{prefix}{path}.{render_path((str(key),))}"
            ctx.src_prefix = element + "."
            obj = _fill({"key": key, "value": value}, ctx, plans, suffixes, f"{field}[{len(out)}].", element,
                        _entry_suffix)
            if obj:
                out.append(obj)
        ctx.field, ctx.src_prefix = field, prefix
        return out or None

    return run
