"""``concat`` parts that slice one converted value, converted once.

An id built from a stamp cuts it into pieces: ``{path: ts, then: [{datetime: epoch_ms}, {slice:
[0, 4]}]}``, then ``[5, 7]``... Each part would convert the stamp again (a call chain per part and
record). A run of consecutive parts reading the same path through the same pure steps, each ending
in its own ``slice``, is compiled to one evaluator that converts once and slices the text. It gives
what the parts give: their non-absent texts, in order. When the shared conversion does not end in
a text without findings (a bad stamp, a list), the parts run one by one, as unfused, so their
findings are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mapping.map_context import Evaluator, MapContext, as_texts
from mapping.spec import Loc, SpecProblems, ValueSpec
from mapping.transforms import compile_steps

if TYPE_CHECKING:
    from mapping.evaluators import CompiledValue, Scope

CompileValue = Callable[[ValueSpec, "Scope", Loc], "CompiledValue"]
Bounds = tuple[int | None, int | None]


def slice_bounds(spec: ValueSpec) -> Bounds | None:
    """``(start, end)`` of a part that is a path, then steps ending in a valid ``slice``; else None."""
    if spec.source_kind != "path" or spec.when is not None or not spec.then:
        return None
    last = spec.then[-1]
    if not isinstance(last, dict) or set(last) != {"slice"}:
        return None
    arg = last["slice"]
    if not isinstance(arg, list) or len(arg) != 2 or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in arg):
        return None
    return arg[0], arg[1]


def _prefix_key(spec: ValueSpec) -> Any:
    return spec.path, repr(spec.then[:-1])


def runs(specs: list[ValueSpec]) -> list[tuple[int, int]]:
    """``(first, stop)`` index ranges of runs of two or more consecutive parts that can share."""
    found: list[tuple[int, int]] = []
    i = 0
    while i < len(specs):
        if slice_bounds(specs[i]) is None:
            i += 1
            continue
        key, stop = _prefix_key(specs[i]), i + 1
        while stop < len(specs) and slice_bounds(specs[stop]) is not None and _prefix_key(specs[stop]) == key:
            stop += 1
        if stop - i > 1:
            found.append((i, stop))
        i = stop
    return found


def fused_run(specs: list[ValueSpec], originals: tuple[Evaluator, ...], scope: Scope, loc: Loc,
              compile_value: CompileValue) -> Evaluator | None:
    """One evaluator for a run (see ``runs``), giving a list of its parts' texts or None; None when
    the shared steps are not pure or do not compile (the parts stay as they are)."""
    shared = specs[0].model_copy(update={"then": specs[0].then[:-1]})
    problems = SpecProblems()
    steps = compile_steps(shared.then, scope.tctx, problems)
    if problems or not all(s.pure for s in steps):
        return None
    prefix = compile_value(shared, replace(scope, problems=problems), loc).evaluate
    if problems:
        return None
    bounds = tuple(b for b in (slice_bounds(s) for s in specs) if b is not None)

    def evaluate(src: Any, ctx: MapContext) -> Any:
        findings = ctx.findings
        before = len(findings)
        value = prefix(src, ctx)
        if len(findings) == before:
            if type(value) is str:
                texts = [piece for start, end in bounds if (piece := value[start:end].strip())]
                return texts or None
            if value is None:
                return None
        del findings[before:]  # the parts report it, each as it would
        return part_texts(originals, src, ctx) or None

    return evaluate


def part_texts(parts: tuple[Evaluator, ...], src: Any, ctx: MapContext) -> list[str]:
    """The texts of concat parts in order (a fused run gives a list of its parts' texts)."""
    texts: list[str] = []
    for part in parts:
        value = part(src, ctx)
        if type(value) is str:
            texts.append(value)
        elif value is not None:
            texts.extend(as_texts(value, ctx))
    return texts
