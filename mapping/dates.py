"""Dates and datetimes of source systems, converted to the unified standard's forms.

Dates become ``YYYY-MM-DD``; "no date" sentinels become None and long-term validity
(长期, year 9999) 2099-12-31. Datetimes become ISO 8601 normalised to ``+08:00``; a naive
source time is Asia/Shanghai. Formats are parsed by slicing and ``int()`` on ASCII digits only
(``int()`` also takes full-width digits, underscores and spaces), never ``strptime``.
Messages say what was expected and never repeat the value (it may be personal data).
The public entry points are re-exported by :mod:`mapping.values`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from time import gmtime

from gateway.errors import ConfigError

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China has kept UTC+8 without DST since 1991; the standard normalises every offset to +08:00."""

LONG_TERM_DATE = "2099-12-31"
_SENTINEL_DATES = frozenset({(1, 1, 1), (1899, 12, 30), (1900, 1, 1)})
_LONG_TERM_TEXTS = frozenset({"长期", "长期有效", "永久", "永久有效"})
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2_958_465   # 9999-12-31
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ValueFormatError(ValueError):
    """A value does not have the expected form; the messages say what was expected."""

    def __init__(self, message_en: str, message_zh: str) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh


def is_plain_number(text: str) -> bool:
    """Optional sign, digits, optional fraction: no exponent, NaN, separators or non-ASCII digits."""
    if not text.isascii():
        return False
    body = text[1:] if text[:1] in ("+", "-") else text
    whole, _, fraction = body.partition(".")
    if not (whole or fraction):
        return False
    return (not whole or whole.isdigit()) and (not fraction or fraction.isdigit())


Parts = tuple[int, int, int]
TimeParts = tuple[int, int, int, int, int, int, int, bool]   # y m d H M S microsecond has_fraction


# --- shared scanning helpers ------------------------------------------------------------------

def _number_text(value: str | int | float) -> str:
    """A JSON scalar as text; integral floats lose their ``.0`` (spreadsheet artefact)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueFormatError("expected text or a number", "应为文本或数字")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _digits(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _ymd_split(text: str, sep: str) -> Parts | None:
    parts = text.split(sep)
    if len(parts) != 3 or len(parts[0]) != 4 or not (0 < len(parts[1]) <= 2 and 0 < len(parts[2]) <= 2):
        return None
    y, m, d = _digits(parts[0]), _digits(parts[1]), _digits(parts[2])
    return None if y is None or m is None or d is None else (y, m, d)


def _compact_ymd(text: str) -> Parts | None:
    if len(text) != 8 or _digits(text) is None:
        return None
    return int(text[:4]), int(text[4:6]), int(text[6:8])


def _chinese_ymd(text: str) -> Parts | None:
    year_end, month_end = text.find("年"), text.find("月")
    if year_end != 4 or month_end < 0 or not text.endswith("日"):
        return None
    return _ymd_split(f"{text[:4]}-{text[5:month_end]}-{text[month_end + 1:-1]}", "-")


def _hms(text: str, hour_digits: tuple[int, ...]) -> tuple[int, int, int, int, bool] | None:
    """``H:MM:SS[.ffffff]`` -> hour, minute, second, microsecond, has_fraction."""
    main, dot, fraction = text.partition(".")
    parts = main.split(":")
    if len(parts) != 3 or len(parts[0]) not in hour_digits or len(parts[1]) != 2 or len(parts[2]) != 2:
        return None
    h, mi, s = _digits(parts[0]), _digits(parts[1]), _digits(parts[2])
    if h is None or mi is None or s is None:
        return None
    if not dot:
        return h, mi, s, 0, False
    if not 0 < len(fraction) <= 6 or _digits(fraction) is None:
        return None
    return h, mi, s, int(fraction.ljust(6, "0")), True


# --- dates -------------------------------------------------------------------------------------

def _excel_serial(text: str) -> Parts | None:
    whole, _, fraction = text.partition(".")
    serial = _digits(whole)
    if serial is None or serial > _EXCEL_MAX_SERIAL or (fraction and _digits(fraction) is None):
        return None
    if serial == 60:
        raise ValueFormatError("Excel serial 60 is 1900-02-29, which does not exist",
                               "Excel序列号60对应不存在的1900-02-29")
    if serial == 0:
        return 1899, 12, 30   # Excel's empty date "1900-01-00": the sentinel
    # the 1900 system counts the phantom 1900-02-29, so serials before it are one day off
    day = _EXCEL_EPOCH + timedelta(days=serial if serial > 60 else serial + 1)
    return day.year, day.month, day.day


def _iso_date(text: str) -> Parts | None:
    if len(text) == 10:
        return _ymd_split(text, "-") if text[4] == "-" and text[7] == "-" else None
    parsed = _iso_datetime(text)
    if parsed is None:
        return None
    moment = _aware(parsed)   # a datetime's date is its Asia/Shanghai calendar date
    return moment.year, moment.month, moment.day


DATE_PARSERS: dict[str, Callable[[str], Parts | None]] = {
    "yyyyMMdd": _compact_ymd,
    "yyyy-MM-dd": lambda t: _ymd_split(t, "-"),
    "yyyy/M/d": lambda t: _ymd_split(t, "/"),
    "yyyy/MM/dd": lambda t: _ymd_split(t, "/"),
    "yyyy年M月d日": _chinese_ymd,
    "excel": _excel_serial,
    "iso": _iso_date,
}
DATE_FORMATS: frozenset[str] = frozenset(DATE_PARSERS)


def _date_parser(name: str) -> Callable[[str], Parts | None]:
    try:
        return DATE_PARSERS[name]
    except KeyError:
        known = ", ".join(sorted(DATE_FORMATS))
        raise ConfigError(f"date format {name!r} is unknown; known: {known}") from None


def parse_date(value: str | int | float, formats: Sequence[str]) -> str | None:
    """``YYYY-MM-DD`` from the first of ``formats`` that reads ``value``; None for a "no date" sentinel.

    Long-term validity (长期, year 9999) becomes 2099-12-31.
    """
    text = _number_text(value)
    if text in _LONG_TERM_TEXTS:
        return LONG_TERM_DATE
    for name in formats:
        parts = _date_parser(name)(text)
        if parts is not None:
            return _date_text(parts)
    shown = " or ".join(formats)
    raise ValueFormatError(f"expected a date as {shown}", f"日期格式应为{'或'.join(formats)}")


def _date_text(parts: Parts) -> str | None:
    y, m, d = parts
    if y == 9999:
        return LONG_TERM_DATE
    if parts in _SENTINEL_DATES:
        return None
    try:
        date(y, m, d)
    except ValueError:
        raise ValueFormatError("expected a real calendar date", "日期不存在（应为真实日历日期）") from None
    return f"{y:04d}-{m:02d}-{d:02d}"


# --- datetimes ---------------------------------------------------------------------------------

def _compact_datetime(text: str) -> TimeParts | None:
    if len(text) != 14 or _digits(text) is None:
        return None
    return (int(text[:4]), int(text[4:6]), int(text[6:8]),
            int(text[8:10]), int(text[10:12]), int(text[12:14]), 0, False)


def _separated_datetime(text: str, sep: str, hour_digits: tuple[int, ...]) -> TimeParts | None:
    day_text, space, time_text = text.partition(" ")
    if not space:
        return None
    ymd, hms = _ymd_split(day_text, sep), _hms(time_text, hour_digits)
    return None if ymd is None or hms is None else (*ymd, *hms)


def _iso_datetime(text: str) -> datetime | None:
    # a date alone is no datetime: midnight would be invented
    if len(text) < 13 or text[10] not in "T ":
        return None
    try:
        return datetime.fromisoformat(text) if text.isascii() else None
    except ValueError:
        return None


def _epoch(text: str, units_per_second: int) -> datetime | None:
    if not is_plain_number(text):
        return None
    amount = Decimal(text)
    microseconds = int((amount * 1_000_000 / units_per_second).to_integral_value(ROUND_HALF_UP))
    try:
        return _UNIX_EPOCH + timedelta(microseconds=microseconds)
    except OverflowError:
        return None


DATETIME_PARSERS: dict[str, Callable[[str], TimeParts | datetime | None]] = {
    "yyyyMMddHHmmss": _compact_datetime,
    "yyyy-MM-dd HH:mm:ss": lambda t: _separated_datetime(t, "-", (2,)),
    "yyyy/M/d H:mm:ss": lambda t: _separated_datetime(t, "/", (1, 2)),
    "iso": _iso_datetime,
    "epoch_ms": lambda t: _epoch(t, 1000),
    "epoch_s": lambda t: _epoch(t, 1),
}
DATETIME_FORMATS: frozenset[str] = frozenset(DATETIME_PARSERS)


def _datetime_parser(name: str) -> Callable[[str], TimeParts | datetime | None]:
    try:
        return DATETIME_PARSERS[name]
    except KeyError:
        known = ", ".join(sorted(DATETIME_FORMATS))
        raise ConfigError(f"datetime format {name!r} is unknown; known: {known}") from None


def parse_datetime(value: str | int | float, formats: Sequence[str]) -> str:
    """ISO 8601 with ``+08:00`` from the first of ``formats`` that reads ``value``.

    Fractional seconds appear (as 6 digits) only when the source has them.
    """
    text = _number_text(value)
    for name in formats:
        parsed = _datetime_parser(name)(text)
        if isinstance(parsed, tuple):
            return _naive_text(parsed)
        if parsed is not None:
            return _aware_text(parsed, has_fraction=_has_fraction(name, text, parsed))
    shown = " or ".join(formats)
    raise ValueFormatError(f"expected a datetime as {shown}", f"时间格式应为{'或'.join(formats)}")


def compact_datetime_text(text: str) -> str | None:
    """``parse_datetime(text, ("yyyyMMddHHmmss",))`` for a valid trimmed text, by slicing; None
    for anything else (the general path then converts it or says why not)."""
    if (len(text) != 14 or not text.isdigit() or not text.isascii() or text[8:10] > "23"
            or text[10:12] > "59" or text[12:14] > "59" or not _real_day(text[:8])):
        return None
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}T{text[8:10]}:{text[10:12]}:{text[12:14]}+08:00"


_SHANGHAI_OFFSET_S = 8 * 3600
_LAST_FAST_EPOCH_S = 253_402_271_999  # 9999-12-31T23:59:59+08:00: later ones take the general path
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
_DAY_PREFIXES: dict[int, str] = {}  # days since 1970 (Shanghai) -> "yyyy-MM-ddT"
_MAX_DAY_PREFIXES = 4096


def _day_prefix(day: int) -> str:
    t = gmtime(day * 86_400)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"


def epoch_text(value: object, units_per_second: int) -> str | None:
    """``parse_datetime(value, ("epoch_ms",))`` (or ``epoch_s``) for a whole number of units since
    1970 by integer arithmetic; None for anything else (the general path converts it or says why
    not). Device telemetry stamps every reading so, and the general path goes through Decimal."""
    if type(value) is not int or value < 0:
        return None
    seconds, units = divmod(value, units_per_second)
    if seconds > _LAST_FAST_EPOCH_S:
        return None
    # The day's text repeats for every reading of a day: kept; the time of day is three divmods
    # and two-digit texts from a table (a tenth of a gmtime and a six-field format).
    day, second = divmod(seconds + _SHANGHAI_OFFSET_S, 86_400)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        if len(_DAY_PREFIXES) >= _MAX_DAY_PREFIXES:
            _DAY_PREFIXES.clear()
        prefix = _DAY_PREFIXES[day] = _day_prefix(day)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    text = prefix + _TWO_DIGITS[hour] + ":" + _TWO_DIGITS[minute] + ":" + _TWO_DIGITS[second]
    if units:
        text += f".{units * 1_000_000 // units_per_second:06d}"
    return text + "+08:00"


@lru_cache(maxsize=4096)
def _real_day(yyyymmdd: str) -> bool:
    # days repeat across records (timestamps do not): memoise the calendar check of the day alone
    try:
        date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def _has_fraction(name: str, text: str, parsed: datetime) -> bool:
    if name == "iso":
        return "." in text[19:] or "," in text[19:]
    return parsed.microsecond != 0


def _naive_text(parts: TimeParts) -> str:
    y, m, d, hh, mm, ss, us, has_fraction = parts
    try:
        datetime(y, m, d, hh, mm, ss)
    except ValueError:
        raise ValueFormatError("expected a real date and time of day", "日期或时刻不存在") from None
    fraction = f".{us:06d}" if has_fraction else ""
    return f"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}{fraction}+08:00"


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=SHANGHAI) if moment.tzinfo is None else moment.astimezone(SHANGHAI)


def _aware_text(moment: datetime, *, has_fraction: bool) -> str:
    local = _aware(moment)
    return _naive_text((local.year, local.month, local.day, local.hour, local.minute, local.second,
                        local.microsecond, has_fraction))
