"""The closed set of transforms (docs/mapping-spec.md): name -> factory, compiled once at load.

A factory gets the item's argument, the item's other keys (only ``map`` has one: ``else``) and the
field being compiled, checks the argument (raising SpecProblem) and returns a closure
``(value, ctx) -> value``. At run time a closure raises TransformFailure for a value it cannot
convert; the chain then reports the finding, keeps the value it had and stops.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mapping.map_context import MapContext, TransformFailure, as_text, clean
from mapping.spec import SpecProblem, SpecProblems, TransformItem
from mapping.transform_base import (
    CompiledTransform,
    Factory,
    TransformContext,
    TransformFn,
    textwise,
)
from mapping.transform_codes import lookup_factory, map_factory
from mapping.transform_values import VALUE_FACTORIES

if TYPE_CHECKING:
    from mapping.spec import Loc

Chain = Callable[[Any, MapContext], Any]


def _no_arg(name: str, fn: Callable[[str], Any]) -> Factory:
    def factory(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
        if arg is not None:
            raise SpecProblem(f"'{name}' takes no argument")
        return textwise(name, fn)

    return factory


def canonical_identifier(text: str) -> str:
    if text.isascii() and text.isalnum():  # the usual code: NFKC, spaces and hyphens change nothing
        return text.upper()
    return "".join(unicodedata.normalize("NFKC", text).split()).upper().replace("-", "")


def _split(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    if not isinstance(arg, str) or not arg:
        raise SpecProblem("'split' needs the separator characters, e.g. split: \",，、\"")
    pattern = re.compile("[" + re.escape(arg) + "]")

    def apply(value: Any, ctx: MapContext) -> Any:
        parts = value if type(value) is list else [value]
        out: list[str] = []
        for part in parts:
            for piece in pattern.split(as_text(part)):
                piece = piece.strip()
                if piece and piece not in out:
                    out.append(piece)
        return out or None

    return CompiledTransform("split", apply, pure=True)


def _join(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    if not isinstance(arg, str):
        raise SpecProblem("'join' needs the separator text, e.g. join: \"；\"")

    def apply(value: Any, ctx: MapContext) -> Any:
        if type(value) is list:
            return clean(arg.join(as_text(v) for v in value))
        return value

    return CompiledTransform("join", apply, pure=True)


def _regex(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    if not isinstance(arg, str) or not arg:
        raise SpecProblem("'regex' needs a pattern")
    try:
        pattern = re.compile(arg)
    except re.error as exc:
        raise SpecProblem(f"regex {arg!r} does not compile: {exc}") from exc
    group = 1 if pattern.groups else 0

    def find(text: str) -> Any:
        m = pattern.search(text)
        return clean(m.group(group)) if m else None

    return textwise("regex", find)


def _replace(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    if not isinstance(arg, dict) or set(arg) != {"pattern", "with"} or not isinstance(arg["with"], str):
        raise SpecProblem("'replace' takes {pattern: REGEX, with: TEXT} (\\1 refers to a group)")
    try:
        pattern = re.compile(str(arg["pattern"]))
        pattern.sub(arg["with"], "")        # a bad group reference fails here, at load
    except re.error as exc:
        raise SpecProblem(f"'replace': {exc}") from exc
    replacement = arg["with"]
    search = pattern.search

    def replace_text(text: str) -> Any:
        # Most texts do not match (the pattern singles out a malformed value); ``sub`` with a
        # group reference goes through Python code (re._subx) on every call, ``search`` does not.
        if search(text) is None:
            return text.strip() or None
        return pattern.sub(replacement, text).strip() or None

    return textwise("replace", replace_text)


def _slice(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    ok = isinstance(arg, list) and len(arg) == 2
    if not ok or not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in arg):
        raise SpecProblem("'slice' needs [start, end] (integers; end may be null)")
    start, end = arg[0], arg[1]
    return textwise("slice", lambda text: text[start:end].strip() or None)


def _default(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    if clean(arg) is None:
        raise SpecProblem("'default' needs a value that is not absent")
    fallback = arg

    def apply(value: Any, ctx: MapContext) -> Any:
        return fallback if value is None else value

    return CompiledTransform("default", apply, on_absent=True, pure=True)


def _each(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    if not isinstance(arg, list) or not arg:
        raise SpecProblem("'each' needs a list of transforms")
    chain = compile_chain(arg, replace(tctx, element=True))

    def apply(value: Any, ctx: MapContext) -> Any:
        if type(value) is not list:
            return chain(value, ctx)
        return clean([chain(v, ctx) for v in value])

    return CompiledTransform("each", apply)


FACTORIES: dict[str, Factory] = {
    "strip": _no_arg("strip", lambda text: text.strip() or None),
    "upper": _no_arg("upper", str.upper),
    "lower": _no_arg("lower", str.lower),
    "identifier": _no_arg("identifier", lambda text: canonical_identifier(text) or None),
    **VALUE_FACTORIES,
    "split": _split,
    "join": _join,
    "regex": _regex,
    "replace": _replace,
    "slice": _slice,
    "default": _default,
    "map": map_factory,
    "lookup": lookup_factory,
    "each": _each,
}
_OPTIONS: dict[str, frozenset[str]] = {"map": frozenset({"else", "refuse"})}


def compile_transform(item: TransformItem, tctx: TransformContext) -> CompiledTransform:
    """One ``then:`` item: a name, or a one-key mapping ``{name: argument}``."""
    if isinstance(item, str):
        name, arg, extra = item, None, {}
    else:
        names = [k for k in item if k in FACTORIES] if len(item) > 1 else list(item)
        if len(names) != 1:
            raise SpecProblem(f"a transform is a name or a one-key mapping, got keys {sorted(item)}")
        name, arg = names[0], item[names[0]]
        extra = {k: v for k, v in item.items() if k != name}
        unknown = set(extra) - _OPTIONS.get(name, frozenset())
        if unknown:
            raise SpecProblem(f"'{name}' has no option {', '.join(sorted(unknown))}")
    factory = FACTORIES.get(name)
    if factory is None:
        hint = difflib.get_close_matches(name, FACTORIES, n=1)
        raise SpecProblem(f"unknown transform {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return factory(arg, extra, tctx)


def compile_steps(items: list[TransformItem], tctx: TransformContext, problems: SpecProblems | None = None,
                  loc: Loc = ()) -> tuple[CompiledTransform, ...]:
    """Compile a ``then:`` list; with ``problems`` every bad item is recorded, else the first raises."""
    steps: list[CompiledTransform] = []
    for i, item in enumerate(items):
        try:
            steps.append(compile_transform(item, tctx))
        except SpecProblem as exc:
            if problems is None:
                raise SpecProblem(str(exc), (i, *exc.loc)) from exc
            problems.add((*loc, i, *exc.loc), str(exc))
    return tuple(steps)


def compile_chain(items: list[TransformItem], tctx: TransformContext, problems: SpecProblems | None = None,
                  loc: Loc = ()) -> Chain:
    return chain_of(compile_steps(items, tctx, problems, loc))


def chain_of(compiled: tuple[CompiledTransform, ...]) -> Chain:
    """One closure running the steps: absent values skip all but ``default``; a failure is reported,
    the value before it kept and the rest skipped."""
    steps = tuple((s.apply, s.on_absent) for s in compiled)
    if len(steps) == 1 and not steps[0][1]:
        return _single(steps[0][0])
    if len(steps) == 2 and not steps[0][1] and not steps[1][1]:
        return _pair(steps[0][0], steps[1][0])

    def run(value: Any, ctx: MapContext) -> Any:
        for apply, on_absent in steps:
            if value is None and not on_absent:
                continue
            try:
                value = apply(value, ctx)
            except TransformFailure as failure:
                ctx.fail(failure)
                return value
        return value

    return run


def _single(apply: TransformFn) -> Chain:
    def run(value: Any, ctx: MapContext) -> Any:
        if value is None:
            return None
        try:
            return apply(value, ctx)
        except TransformFailure as failure:
            ctx.fail(failure)
            return value

    return run


def _pair(first: TransformFn, second: TransformFn) -> Chain:
    # two steps (a conversion and a slice, a case change and a lookup...): ``run`` unrolled
    def run(value: Any, ctx: MapContext) -> Any:
        if value is None:
            return None
        try:
            value = first(value, ctx)
        except TransformFailure as failure:
            ctx.fail(failure)
            return value
        if value is None:
            return None
        try:
            return second(value, ctx)
        except TransformFailure as failure:
            ctx.fail(failure)
            return value

    return run
