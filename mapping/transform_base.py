"""What every transform factory shares: the field it compiles for, the compiled form, messages."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mapping.map_context import MapContext, TransformFailure, as_text, clean, quote, quote_zh

if TYPE_CHECKING:
    from mapping.standard import FieldSpec, Standard

TransformFn = Callable[[Any, MapContext], Any]
Chain = Callable[[Any, MapContext], Any]


@dataclass(frozen=True, slots=True)
class TransformContext:
    """What a factory may know about the field it compiles for."""

    field: str                        # standard field path, or "ext.NAME"
    spec: FieldSpec | None            # None for ext fields
    standard: Standard
    kind: str
    schemes: tuple[str, ...]
    element: bool = False             # inside `each`: the value is one element of a list

    @property
    def pii(self) -> bool:
        return bool(self.spec is not None and self.spec.pii)


@dataclass(frozen=True, slots=True)
class CompiledTransform:
    name: str
    apply: TransformFn
    on_absent: bool = False
    pure: bool = False
    """The output and any failure depend on the input value alone (not on the record or meta),
    or the transform sets ``MapContext.read_record`` whenever they did not, so the engine may
    memoise the chain for a field (see ``mapping.memo``)."""


Factory = Callable[[Any, Mapping[str, Any], TransformContext], CompiledTransform]


def textwise(name: str, fn: Callable[[str], Any]) -> CompiledTransform:
    """A text transform; applied to every element when the value is a list."""

    def apply(value: Any, ctx: MapContext) -> Any:
        if type(value) is str:
            return fn(value)
        if type(value) is list:
            return clean([fn(as_text(v)) for v in value])
        return fn(as_text(value))

    return CompiledTransform(name, apply, pure=True)


def type_failure(expected_en: str, expected_zh: str, value: Any, pii: bool) -> TransformFailure:
    """The TYPE finding of a conversion: what was expected, and the value unless it is PII."""
    return TransformFailure(
        "TYPE",
        f"expected {expected_en}, got {quote(value, pii)}",
        f"应为{expected_zh}，实际为{quote_zh(value, pii)}",
    )
