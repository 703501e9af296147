"""Conversion transforms: date, datetime, decimal, amount_from_text, integer, boolean.

The conversions themselves are mapping/values.py; a ValueFormatError becomes a TYPE finding whose
message names the expected form and quotes the value unless the field holds personal information.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    from mapping.dates import compact_datetime_text
    from mapping.values import DATETIME_FORMATS, parse_datetime

    formats = _formats("datetime", arg, DATETIME_FORMATS)
    shown = " or ".join(formats)
    general = _parser("datetime", parse_datetime, formats, f"a date and time ({shown})",
                      f"日期时间（{shown}）", tctx)
    if formats != ("yyyyMMddHHmmss",):
        return general
    slow = general.apply

    def apply(value: Any, ctx: MapContext) -> Any:
        # timestamps rarely repeat, so they are not memoised: convert the common form by slicing
        if type(value) is str:
            fast = compact_datetime_text(value)
            if fast is not None:
                return fast
        return slow(value, ctx)

    return CompiledTransform("datetime", apply, pure=True)


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
    if unit not in ("元", "yuan") or places is None:
        return general
    slow = general.apply

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
