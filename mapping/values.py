"""Value conversions used by mapping transforms: dates, datetimes, decimals, booleans, integers.

Conventions of the unified standard (README §Conventions): dates ``YYYY-MM-DD``, datetimes
ISO 8601 with ``+08:00`` (both in :mod:`mapping.dates`, re-exported here); money a Decimal
string in yuan that never passes through float arithmetic; fines read from Chinese text by
:mod:`mapping.amounts`. Every conversion that cannot read its value raises
:class:`ValueFormatError`, whose messages say what was expected and never repeat the value.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache

from gateway.errors import ConfigError
from mapping.amounts import find_fine_amount
from mapping.dates import (
    DATE_FORMATS,
    DATETIME_FORMATS,
    LONG_TERM_DATE,
    SHANGHAI,
    ValueFormatError,
    is_plain_number,
    parse_date,
    parse_datetime,
)

__all__ = [
    "DATETIME_FORMATS",
    "DATE_FORMATS",
    "LONG_TERM_DATE",
    "MONEY_UNITS",
    "SHANGHAI",
    "ValueFormatError",
    "amount_from_text",
    "parse_date",
    "parse_datetime",
    "to_boolean",
    "to_decimal",
    "to_integer",
]

_DECIMAL_CONTEXT = Context(prec=60)   # wide enough that multiplying by 10000 never rounds


# --- numbers and booleans ----------------------------------------------------------------------

_UNIT_FACTORS = {"元": Decimal(1), "yuan": Decimal(1), "万元": Decimal(10_000)}
MONEY_UNITS: frozenset[str] = frozenset(_UNIT_FACTORS)
_BOOLEANS = {"是": True, "否": False, "y": True, "n": False, "1": True, "0": False,
             "true": True, "false": False}


@lru_cache(maxsize=16)
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


_NOT_A_NUMBER = ("expected a plain decimal number (digits, optional sign and point; "
                 "no thousands separators or exponent)", "应为普通十进制数（不含千分位分隔符或科学计数法）")


def _to_exact_decimal(value: str | int | float) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueFormatError(*_NOT_A_NUMBER)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueFormatError("expected a finite number", "应为有限数值")
        return Decimal(repr(value))   # the shortest repr is what the source meant, never float arithmetic
    text = value.strip()
    if not is_plain_number(text):
        raise ValueFormatError(*_NOT_A_NUMBER)
    return Decimal(text)


def _plain(amount: Decimal) -> str:
    if amount.is_zero():
        amount = amount.copy_abs()   # no "-0.00"
    return format(amount, "f")


def to_decimal(value: str | int | float, *, unit: str = "元", places: int | None = None) -> str:
    """A plain decimal string in yuan (or the value's own unit when ``unit`` is 元).

    ``unit="万元"`` multiplies by 10000; ``places`` quantises with ROUND_HALF_UP, otherwise the
    value keeps its own scale.
    """
    factor = _UNIT_FACTORS.get(unit)
    if factor is None:
        raise ConfigError(f"decimal unit {unit!r} is unknown; known: {', '.join(_UNIT_FACTORS)}")
    amount = _DECIMAL_CONTEXT.multiply(_to_exact_decimal(value), factor)
    if places is not None:
        try:
            amount = amount.quantize(_quantum(places), rounding=ROUND_HALF_UP, context=_DECIMAL_CONTEXT)
        except InvalidOperation:
            raise ValueFormatError("number has too many digits", "数值位数过多") from None
    return _plain(amount)


def amount_from_text(text: str) -> str | None:
    """The fine in yuan with 2 places, read from text like 罚款人民币贰仟元; None when none.

    A bare number (``5000``, ``"5000.00"``) is taken as yuan: some sources put the amount alone.
    """
    if not isinstance(text, str) or is_plain_number(text.strip()):
        return to_decimal(text, places=2)
    amount = find_fine_amount(text)
    if amount is None:
        return None
    return _plain(amount.quantize(_quantum(2), rounding=ROUND_HALF_UP, context=_DECIMAL_CONTEXT))


def to_integer(value: str | int | float) -> int:
    """An integer from an int, an integral float or digits (``"12"``, ``"12.0"`` from spreadsheets)."""
    if type(value) is str and value.isdigit() and value.isascii():  # the common form, read at once
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        whole, _, fraction = text.partition(".")
        if is_plain_number(text) and whole.lstrip("+-") and not fraction.strip("0"):
            return int(whole)
    raise ValueFormatError("expected a whole number", "应为整数")


def to_boolean(value: str | int | bool) -> bool:
    """是/否, Y/N, 1/0, true/false (any case) as a bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        text = value.strip()
        found = _BOOLEANS.get(text.lower() if text.isascii() else text)
        if found is not None:
            return found
    raise ValueFormatError("expected 是/否, Y/N, 1/0 or true/false", "应为是/否、Y/N、1/0或true/false")
