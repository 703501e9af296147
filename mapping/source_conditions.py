"""``when:`` conditions over the source record, compiled to predicates.

The standard's condition language (``condition_language`` in unified-standard.yaml) with the
operand named by a source instead of a field: a leaf is ``{path: X, OP: VALUE}`` (or ``jmespath:``
or ``meta:`` instead of ``path:``), OP one of eq, ne, in, not_in, contains, contains_any, present,
absent; combinators ``all``, ``any``, ``not``. Values compare as text after trimming, so ``1``
equals ``"1"``. eq/in/contains/contains_any are false and ne/not_in true when the value is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mapping.map_context import MapContext, TransformFailure, as_text, clean, clean_meta
from mapping.paths import PathSyntaxError, compile_jmespath, compile_path
from mapping.spec import SpecProblem

Predicate = Callable[[Any, MapContext], bool]

_OPERAND_KEYS = ("path", "jmespath", "meta")
_OPS = ("eq", "ne", "in", "not_in", "contains", "contains_any", "present", "absent")


def compile_condition(cond: Any) -> Predicate:
    """Compile one condition; raises SpecProblem with a location relative to ``cond``."""
    if not isinstance(cond, dict):
        raise SpecProblem("a condition is a mapping: {path: X, eq: V} or {all|any: [...]} or {not: ...}")
    for combinator in ("all", "any"):
        if combinator in cond:
            return _combine(combinator, cond)
    if "not" in cond:
        if len(cond) != 1:
            raise SpecProblem("'not' stands alone in its mapping")
        inner = _nested(cond["not"], ("not",))
        return lambda src, ctx: not inner(src, ctx)
    return _leaf(cond)


def _nested(cond: Any, loc: tuple[str | int, ...]) -> Predicate:
    try:
        return compile_condition(cond)
    except SpecProblem as exc:
        raise SpecProblem(str(exc), (*loc, *exc.loc)) from exc


def _combine(name: str, cond: dict[str, Any]) -> Predicate:
    items = cond[name]
    if len(cond) != 1 or not isinstance(items, list) or not items:
        raise SpecProblem(f"'{name}' takes a non-empty list of conditions and stands alone")
    preds = tuple(_nested(c, (name, i)) for i, c in enumerate(items))
    if name == "all":
        return lambda src, ctx: all(p(src, ctx) for p in preds)
    return lambda src, ctx: any(p(src, ctx) for p in preds)


def _operand(cond: dict[str, Any]) -> Callable[[Any, MapContext], Any]:
    keys = [k for k in _OPERAND_KEYS if k in cond]
    if len(keys) != 1 or not isinstance(cond[keys[0]], str):
        raise SpecProblem("a condition leaf names one of path, jmespath, meta (text)")
    key, text = keys[0], cond[keys[0]]
    try:
        if key == "jmespath":
            search = compile_jmespath(text)
            return lambda src, ctx: clean(search(src))
        get = compile_path(text).get
    except PathSyntaxError as exc:
        raise SpecProblem(str(exc), (key,)) from exc
    if key == "meta":
        return lambda src, ctx: clean_meta(get(ctx.meta))

    def operand(src: Any, ctx: MapContext) -> Any:
        value = get(src)
        if type(value) is str:
            return value.strip() or None
        return clean(value)

    return operand


def _texts(value: Any) -> list[str]:
    try:
        return [as_text(v) for v in value] if type(value) is list else [as_text(value)]
    except TransformFailure:
        return []


def _operand_texts(op: str, raw: Any) -> list[str]:
    if op in ("in", "not_in", "contains_any"):
        if not isinstance(raw, list) or not raw:
            raise SpecProblem(f"'{op}' takes a non-empty list", (op,))
        return [as_text(v) for v in raw]
    if isinstance(raw, list | dict) or raw is None:
        raise SpecProblem(f"'{op}' takes one text or number", (op,))
    return [as_text(raw)]


def _leaf(cond: dict[str, Any]) -> Predicate:
    get = _operand(cond)
    ops = [k for k in cond if k not in _OPERAND_KEYS]
    if len(ops) != 1 or ops[0] not in _OPS:
        raise SpecProblem(f"a condition leaf has exactly one operator of {', '.join(_OPS)}; got {ops}")
    op = ops[0]
    if op in ("present", "absent"):
        if cond[op] is not True:
            raise SpecProblem(f"'{op}' takes true", (op,))
        want_present = op == "present"
        return lambda src, ctx: (get(src, ctx) is not None) == want_present
    wanted = _operand_texts(op, cond[op])
    wanted_set = frozenset(wanted)
    single = wanted[0]
    tests: dict[str, Callable[[list[str]], bool]] = {
        "eq": lambda vs: len(vs) == 1 and vs[0] == single,
        "ne": lambda vs: not (len(vs) == 1 and vs[0] == single),
        "in": lambda vs: len(vs) == 1 and vs[0] in wanted_set,
        "not_in": lambda vs: not (len(vs) == 1 and vs[0] in wanted_set),
        "contains": lambda vs: single in vs,
        "contains_any": lambda vs: not wanted_set.isdisjoint(vs),
    }
    test = tests[op]
    # one text, the common operand: the same tests without building a list
    text_tests: dict[str, Callable[[str], bool]] = {
        "eq": lambda v: v == single,
        "ne": lambda v: v != single,
        "in": lambda v: v in wanted_set,
        "not_in": lambda v: v not in wanted_set,
        "contains": lambda v: v == single,
        "contains_any": lambda v: v in wanted_set,
    }
    test_text = text_tests[op]
    negative = op in ("ne", "not_in")

    def predicate(src: Any, ctx: MapContext) -> bool:
        value = get(src, ctx)
        if value is None:
            return negative
        if type(value) is str:
            return test_text(value)
        return test(_texts(value))

    key = _one_key(cond)
    if key is None or op not in ("eq", "ne"):
        return predicate

    def compare_key(src: Any, ctx: MapContext) -> bool:
        # `{path: KEY, eq|ne: V}` (which alternative of a `first` applies, per record): read inline
        value = src.get(key) if type(src) is dict else None
        if type(value) is not str:
            return predicate(src, ctx)
        value = value.strip()
        return negative if not value else (value == single) is not negative

    return compare_key


def _one_key(cond: dict[str, Any]) -> str | None:
    """The key of a ``path:`` operand that is one key of the record, else None."""
    text = cond.get("path")
    if "jmespath" in cond or "meta" in cond or not isinstance(text, str):
        return None
    steps = compile_path(text).steps
    return steps[0] if len(steps) == 1 and isinstance(steps[0], str) else None
