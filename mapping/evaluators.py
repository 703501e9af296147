"""Value specs compiled to evaluators: ``(source, ctx) -> value``, ``None`` meaning absent.

Every source yields a cleaned value (strings trimmed, absent as None); then the ``then:`` chain
runs; ``when:`` guards the whole. Each compiled value knows its static provenance: the source path
it reads, relative to the current source (record or list element).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mapping import concat_slices
from mapping.map_context import Evaluator, MapContext, as_texts, clean, clean_meta
from mapping.memo import MEMO_MAX_ENTRIES, Memo, memoised_value, memoised_with_memo
from mapping.paths import Getter, PathSyntaxError, compile_jmespath, compile_path
from mapping.reference_tables import ReferenceTable, normalise_key
from mapping.source_conditions import Predicate, compile_condition
from mapping.spec import Loc, SpecProblem, SpecProblems, ValueSpec
from mapping.transform_base import TransformContext
from mapping.transforms import Chain, chain_of, compile_steps


@dataclass(frozen=True, slots=True)
class CompiledValue:
    evaluate: Evaluator
    provenance: str | None
    getter: Getter | None = None      # set for `path:` sources, so a chain can be fused with it
    key: str | None = None            # set when that path is one key of the record
    memo: Memo | None = None          # set when ``evaluate`` is this memo's evaluator
    meta_only: bool = False           # the value depends on the envelope's meta alone (meta, const)
    # set for a spec with `when:`: its condition and the value's evaluator without it
    guard: Predicate | None = None
    unguarded: Evaluator | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """What compiling one field's spec needs."""

    tctx: TransformContext
    references: Mapping[str, ReferenceTable | None]   # None: declared but unreadable
    problems: SpecProblems

    def at_field(self, tctx: TransformContext) -> Scope:
        return replace(self, tctx=tctx)


def _absent(src: Any, ctx: MapContext) -> Any:
    return None


def compile_value(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    """Compile a value spec; problems are recorded in ``scope.problems`` (the result then is inert)."""
    source = spec.source_kind
    try:
        base = _SOURCES[source](spec, scope, loc)
    except SpecProblem as exc:
        scope.problems.add((*loc, source, *exc.loc), str(exc))
        base = CompiledValue(_absent, None)
    evaluate = base.evaluate
    memo: Memo | None = None
    meta_only = base.meta_only and spec.when is None
    if spec.then:
        steps = compile_steps(spec.then, scope.tctx, scope.problems, (*loc, "then"))
        chain = chain_of(steps)
        meta_only = meta_only and all(s.pure for s in steps)
        pure = bool(steps) and all(s.pure for s in steps) and _memoisable(scope.tctx)
        if base.getter is None:
            evaluate = memoised_value(evaluate, chain) if pure else _then(evaluate, chain)
        elif pure:
            evaluate, memo = memoised_with_memo(base.getter, base.key, chain)
        else:
            evaluate = _path_then(base.getter, chain)

    if spec.when is not None:
        try:
            holds = compile_condition(spec.when)
        except SpecProblem as exc:
            scope.problems.add((*loc, "when", *exc.loc), str(exc))
            return CompiledValue(_absent, base.provenance)
        unguarded = evaluate

        def evaluate(src: Any, ctx: MapContext) -> Any:
            return unguarded(src, ctx) if holds(src, ctx) else None

        return CompiledValue(evaluate, base.provenance, guard=holds, unguarded=unguarded)

    # `key` tells the compiler the value is that key's cleaned text, so it can read it inline
    return CompiledValue(evaluate, base.provenance, key=base.key if evaluate is base.evaluate else None,
                         memo=memo, meta_only=meta_only)


def _memoisable(tctx: TransformContext) -> bool:
    # Personal information is never kept beyond its record; ext fields have no spec saying it is not.
    return tctx.spec is not None and not tctx.spec.pii


def _then(raw: Evaluator, chain: Chain) -> Evaluator:
    def evaluate(src: Any, ctx: MapContext) -> Any:
        return chain(raw(src, ctx), ctx)

    return evaluate


def _path_then(get: Getter, chain: Chain) -> Evaluator:
    # the commonest spec, `{path: X, then: [...]}`, in one closure: it runs for most fields
    def evaluate(src: Any, ctx: MapContext) -> Any:
        value = get(src)
        if type(value) is str:
            value = value.strip() or None
        elif type(value) is list:
            value = clean(value)
        return chain(value, ctx)

    return evaluate


def _path(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    compiled = _compile_path(spec.path)
    get = compiled.get
    if len(compiled.steps) == 1 and isinstance(compiled.steps[0], str):
        return CompiledValue(_key_value(compiled.steps[0]), compiled.text, get, compiled.steps[0])

    def evaluate(src: Any, ctx: MapContext) -> Any:
        value = get(src)
        if type(value) is str:
            return value.strip() or None
        return clean(value) if type(value) is list else value

    return CompiledValue(evaluate, compiled.text, get)


def _key_value(key: str) -> Evaluator:
    # one key of the record: the commonest source of all, so no nested call
    def evaluate(src: Any, ctx: MapContext) -> Any:
        if type(src) is not dict:
            return None
        value = src.get(key)
        if type(value) is str:
            return value.strip() or None
        return clean(value) if type(value) is list else value

    return evaluate


def _compile_path(text: str | None) -> Any:
    try:
        return compile_path(text or "")
    except PathSyntaxError as exc:
        raise SpecProblem(str(exc)) from exc


def _jmespath(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    try:
        search = compile_jmespath(spec.jmespath or "")
    except PathSyntaxError as exc:
        raise SpecProblem(str(exc)) from exc
    return CompiledValue(lambda src, ctx: clean(search(src)), spec.jmespath)


def _const(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    value = clean(spec.const)
    if value is None:
        raise SpecProblem("a constant must not be absent (null, empty)")
    if isinstance(value, dict):
        raise SpecProblem("a constant is a text, number, boolean or list")
    return CompiledValue(constant(value), None, meta_only=True)


def constant(value: Any) -> Evaluator:
    """An evaluator giving ``value`` to every record; a list is copied for each (records own theirs)."""
    if isinstance(value, list):
        items = tuple(value)
        return lambda src, ctx: list(items)
    return lambda src, ctx: value


def _meta(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    compiled = _compile_path(spec.meta)
    get = compiled.get
    if len(compiled.steps) == 1 and isinstance(compiled.steps[0], str):
        key = compiled.steps[0]

        def one_key(src: Any, ctx: MapContext) -> Any:
            # one meta key, read inline: it runs per record, and is mostly absent (then a default)
            meta = ctx.meta
            value = meta.get(key) if type(meta) is dict else None
            return None if value is None else clean_meta(value)

        return CompiledValue(one_key, None, meta_only=True)
    return CompiledValue(lambda src, ctx: clean_meta(get(ctx.meta)), None, meta_only=True)


def _parts(specs: list[ValueSpec], scope: Scope, loc: Loc, key: str) -> tuple[CompiledValue, ...]:
    if not specs:
        raise SpecProblem(f"'{key}' needs at least one value spec")
    return tuple(compile_value(s, scope, (*loc, key, i)) for i, s in enumerate(specs))


def _concat(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    specs = spec.concat or []
    compiled = _parts(specs, scope, loc, "concat")
    evaluators = [p.evaluate for p in compiled]
    for first, stop in reversed(concat_slices.runs(specs)):  # from the end: indexes stay valid
        fused = concat_slices.fused_run(specs[first:stop], tuple(evaluators[first:stop]), scope,
                                        (*loc, "concat", first), compile_value)
        if fused is not None:
            evaluators[first:stop] = [fused]
    parts = tuple(evaluators)
    sep = spec.sep or ""

    def evaluate(src: Any, ctx: MapContext) -> Any:
        return sep.join(concat_slices.part_texts(parts, src, ctx)) or None

    return CompiledValue(evaluate, next((p.provenance for p in compiled if p.provenance), None))


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _template(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    text = spec.template or ""
    pieces: list[str | Callable[[Any], Any]] = []
    provenance: str | None = None
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        pieces.append(text[pos:m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            pieces.append(token[0])
        elif m.group(1) is None or not m.group(1).strip():
            raise SpecProblem(f"template {text!r}: unbalanced or empty braces at position {m.start()}")
        else:
            compiled = _compile_path(m.group(1).strip())
            provenance = provenance or compiled.text
            pieces.append(compiled.get)
    pieces.append(text[pos:])
    frozen = tuple(p for p in pieces if p != "")

    def evaluate(src: Any, ctx: MapContext) -> Any:
        out: list[str] = []
        for piece in frozen:
            if type(piece) is str:
                out.append(piece)
                continue
            value = clean(piece(src))  # type: ignore[operator]
            if value is None:
                return None
            out.append("、".join(as_texts(value, ctx)))
        return "".join(out).strip() or None

    return CompiledValue(evaluate, provenance)


def _first(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    alternatives = _parts(spec.first or [], scope, loc, "first")
    default_prov = alternatives[0].provenance
    # (condition or None, evaluator without it, the provenance to report when not the default):
    # alternatives are guarded by `when` as a rule (which of two columns applies), tested here
    # without a call through their guarded evaluator
    choices = tuple((a.guard, a.unguarded or a.evaluate, a.provenance if a.provenance != default_prov else None)
                    for a in alternatives)

    def evaluate(src: Any, ctx: MapContext) -> Any:
        for holds, alternative, override in choices:
            if holds is not None and not holds(src, ctx):
                continue
            value = alternative(src, ctx)
            if value is not None:
                if override is not None:
                    ctx.prov_override = override
                return value
        return None

    return CompiledValue(evaluate, default_prov, meta_only=all(a.meta_only for a in alternatives))


def _ref(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    ref = spec.ref
    assert ref is not None  # guaranteed by the source kind
    if ref.table in scope.references and scope.references[ref.table] is None:
        return CompiledValue(_absent, None)     # the table's own problem is already reported
    table = scope.references.get(ref.table)
    if table is None:
        known = ", ".join(scope.references) or "none declared"
        raise SpecProblem(f"unknown reference table {ref.table!r} (declared: {known})", ("table",))
    column = normalise_key(ref.column)
    if column not in table.columns:
        raise SpecProblem(f"table {ref.table!r} has no column {ref.column!r}", ("column",))
    key = compile_value(ref.key, scope, (*loc, "ref", "key"))
    key_of, rows = key.evaluate, table.rows
    # Rows by the source text of their key: a device's readings name it again and again, so its
    # row is found without normalising the text each time. Only keys the table holds are kept
    # (texts of its own keys, not arbitrary source values), bounded like a memo.
    rows_by_text: dict[str, dict[str, str]] = {}

    def evaluate(src: Any, ctx: MapContext) -> Any:
        value = key_of(src, ctx)
        if value is None:
            return None
        if type(value) is str:  # the common key, without a list of its texts
            row = rows_by_text.get(value)
            if row is None:
                row = rows.get(normalise_key(value))
                if row is not None:
                    if len(rows_by_text) >= MEMO_MAX_ENTRIES:
                        rows_by_text.clear()
                    rows_by_text[value] = row
        else:
            texts = as_texts(value, ctx)
            row = rows.get(normalise_key(texts[0])) if len(texts) == 1 else None
        return row.get(column) or None if row is not None else None

    return CompiledValue(evaluate, key.provenance)


def _nested(spec: ValueSpec, scope: Scope, loc: Loc) -> CompiledValue:
    from mapping.list_values import compile_list_source

    return compile_list_source(spec, scope, loc, compile_value)


_SOURCES: dict[str, Callable[[ValueSpec, Scope, Loc], CompiledValue]] = {
    "path": _path,
    "jmespath": _jmespath,
    "const": _const,
    "meta": _meta,
    "concat": _concat,
    "template": _template,
    "first": _first,
    "ref": _ref,
    "each": _nested,
    "entries": _nested,
}
