"""Conversion transforms: date, datetime, decimal, amount_from_text, integer, boolean.

The conversions themselves are mapping/values.py; a ValueFormatError becomes a TYPE finding whose
message names the expected form and quotes the value unless the field holds personal information.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache, partial
from typing import Any

from mapping.map_context import MapContext
from mapping.spec import SpecProblem
from mapping.transform_base import CompiledTransform, Factory, TransformContext, type_failure


def _formats(name: str, arg: Any, known: frozenset[str]) -> tuple[str, ...]:
    formats = [arg] if isinstance(arg, str) else arg
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
        raise SpecProblem(f"'{name}' needs a format or a list of formats: {', '.join(sorted(known))}")
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise SpecProblem(f"'{name}': unknown format {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    return tuple(formats)


def _converter(name: str, convert: Callable[[Any], Any], expected_en: str, expected_zh: str,
               tctx: TransformContext) -> CompiledTransform:
    from mapping.values import ValueFormatError

    pii = tctx.pii

    def apply(value: Any, ctx: MapContext) -> Any:
        if isinstance(value, list | dict):
            raise type_failure(expected_en, expected_zh, value, pii)
        try:
            return convert(value)
        except (ValueFormatError, TypeError) as exc:
            raise type_failure(expected_en, expected_zh, value, pii) from exc

    return CompiledTransform(name, apply, pure=True)


def _parser(name: str, parse: Callable[[Any, tuple[str, ...]], Any], formats: tuple[str, ...],
            expected_en: str, expected_zh: str, tctx: TransformContext) -> CompiledTransform:
    from mapping.values import ValueFormatError

    pii = tctx.pii

    def apply(value: Any, ctx: MapContext) -> Any:
        if isinstance(value, list | dict | bool):
            raise type_failure(expected_en, expected_zh, value, pii)
        try:
            return parse(value, formats)
        except (ValueFormatError, TypeError) as exc:
            raise type_failure(expected_en, expected_zh, value, pii) from exc

    return CompiledTransform(name, apply, pure=True)


def _date(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    from mapping.values import DATE_FORMATS, parse_date

    formats = _formats("date", arg, DATE_FORMATS)
    shown = " or ".join(formats)
    return _parser("date", parse_date, formats, f"a date ({shown})", f"日期（{shown}）", tctx)


def _datetime(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    from mapping.dates import compact_datetime_text, epoch_text
    from mapping.values import DATETIME_FORMATS, parse_datetime

    formats = _formats("datetime", arg, DATETIME_FORMATS)
    shown = " or ".join(formats)
    general = _parser("datetime", parse_datetime, formats, f"a date and time ({shown})",
                      f"日期时间（{shown}）", tctx)
    slow = general.apply
    units_per_second = _EPOCH_UNITS.get(formats)
    if units_per_second is not None:
        # device stamps (integers) never repeat: converted by integer arithmetic, not Decimal
        # (what may be personal information, ext fields included, is not kept past its record)
        keeps = tctx.spec is not None and not tctx.pii
        convert = (_recent_epoch_text(units_per_second) if keeps
                   else partial(epoch_text, units_per_second=units_per_second))

        def from_epoch(value: Any, ctx: MapContext) -> Any:
            fast = convert(value)
            return fast if fast is not None else slow(value, ctx)

        return CompiledTransform("datetime", from_epoch, pure=True)
    if formats != ("yyyyMMddHHmmss",):
        return general

    def apply(value: Any, ctx: MapContext) -> Any:
        # timestamps rarely repeat, so they are not memoised: convert the common form by slicing
        if type(value) is str:
            fast = compact_datetime_text(value)
            if fast is not None:
                return fast
        return slow(value, ctx)

    return CompiledTransform("datetime", apply, pure=True)


_EPOCH_UNITS: dict[tuple[str, ...], int] = {("epoch_ms",): 1000, ("epoch_s",): 1}


@cache
def _recent_epoch_text(units_per_second: int) -> Callable[[Any], str | None]:
    """``epoch_text`` keeping its last conversion, shared by every field without personal
    information: one reading's stamp is read by several (observed_at, the parts of an id)."""
    from mapping.dates import epoch_text

    recent: list[tuple[Any, str | None]] = [(None, None)]  # one tuple: swapped whole, thread-safe

    def convert(value: Any) -> str | None:
        last = recent[0]
        if last[0] == value and type(value) is int:
            return last[1]
        text = epoch_text(value, units_per_second)
        if text is not None:
            recent[0] = (value, text)
        return text

    return convert


def _decimal(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
    from mapping.values import MONEY_UNITS, to_decimal

    options = {} if arg is None else arg
    if not isinstance(options, dict) or set(options) - {"unit", "places"}:
        raise SpecProblem("'decimal' takes {unit: 元|万元, places: N} (both optional)")
    unit = options.get("unit", "元")
    places = options.get("places")
    if unit not in MONEY_UNITS:
        raise SpecProblem(f"'decimal': unit must be one of {', '.join(sorted(MONEY_UNITS))}, got {unit!r}")
    if places is not None and (not isinstance(places, int) or isinstance(places, bool) or places < 0):
        raise SpecProblem("'decimal': places must be a non-negative integer")
    general = _converter("decimal", lambda v: to_decimal(v, unit=unit, places=places), "a decimal number",
                         "数值", tctx)
    if unit not in ("元", "yuan"):
        return general
    slow = general.apply
    if places is None:
        def as_is(value: Any, ctx: MapContext) -> Any:
            # readings (numbers in JSON) rarely repeat: one in plain notation is its own text
            fast = plain_number(value)
            return fast if fast is not None else slow(value, ctx)

        return CompiledTransform("decimal", as_is, pure=True)

    def apply(value: Any, ctx: MapContext) -> Any:
        # amounts rarely repeat: the common plain form in yuan is padded, not parsed
        if type(value) is str:
            fast = plain_places(value, places)
            if fast is not None:
                return fast
        return slow(value, ctx)

    return CompiledTransform("decimal", apply, pure=True)


def plain_places(text: str, places: int) -> str | None:
    """``to_decimal(text, places=places)`` for unsigned plain numbers without leading zeros or
    excess places, by padding; None for anything else (the general path converts it)."""
    whole, dot, fraction = text.partition(".")
    if (not whole or len(whole) > 30 or not whole.isdigit() or not whole.isascii()
            or (whole[0] == "0" and len(whole) > 1)):
        return None
    if not dot:
        return whole + "." + "0" * places if places else whole
    if not fraction or len(fraction) > places or not fraction.isdigit() or not fraction.isascii():
        return None
    return text + "0" * (places - len(fraction))


def plain_number(value: Any) -> str | None:
    """``to_decimal(value)`` for an int, a float whose shortest repr has no exponent, or an
    unsigned plain text without leading zeros, which all keep their own text; None for anything
    else (the general path converts it)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        text = repr(value)
        return text if "e" not in text and "n" not in text and text != "-0.0" else None
    if kind is str and len(value) <= 40:  # the context keeps 60 digits: never rounded
        plain: str = value
        whole, dot, fraction = plain.partition(".")
        if (whole.isdigit() and whole.isascii() and (whole[0] != "0" or len(whole) == 1)
                and (not dot or (fraction.isdigit() and fraction.isascii()))):
            return plain
    return None


def _simple(name: str, expected_en: str, expected_zh: str) -> Factory:
    def factory(arg: Any, extra: Mapping[str, Any], tctx: TransformContext) -> CompiledTransform:
        from mapping import values

        if arg is not None:
            raise SpecProblem(f"'{name}' takes no argument")
        convert: Callable[[Any], Any] = getattr(values, _FUNCTIONS[name])
        return _converter(name, convert, expected_en, expected_zh, tctx)

    return factory


_FUNCTIONS = {"integer": "to_integer", "boolean": "to_boolean", "amount_from_text": "amount_from_text"}

VALUE_FACTORIES: dict[str, Factory] = {
    "date": _date,
    "datetime": _datetime,
    "decimal": _decimal,
    "amount_from_text": _simple("amount_from_text", "an amount in yuan", "金额（元）"),
    "integer": _simple("integer", "an integer", "整数"),
    "boolean": _simple("boolean", "a yes/no value (是/否, Y/N, 1/0, true/false)",
                       "是否值（是/否、Y/N、1/0、true/false）"),
}
