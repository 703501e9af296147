"""Reading values of a validated record for comparison.

The validator has already checked types and formats of the fields a rule reads, so these
helpers only convert. Dates are compared as ``YYYY-MM-DD`` strings (their order is the calendar
order), which is cheaper than building ``date`` objects for every record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

SHANGHAI = timezone(timedelta(hours=8))  # China has kept UTC+8 without DST since 1991
CLOCK_SKEW = timedelta(minutes=10)  # PT10M of the standard's comparisons
_SHANGHAI_SUFFIX = "+08:00"


def repeats(entries: Any, key: str) -> Iterator[tuple[int, Any]]:
    """(index, value) of each entry of a list of objects whose ``key`` repeats an earlier entry's
    (rules requiring pairwise different values: INS-004, IOR-002)."""
    seen: set[Any] = set()
    for index, entry in enumerate(entries or ()):
        value = entry.get(key)
        if value in seen:
            yield index, value
        elif value is not None:
            seen.add(value)


def present(value: Any) -> bool:
    """The standard's "present": not missing, None, "" or []."""
    return value is not None and value != "" and value != []


def date_key(value: str) -> str:
    """The Asia/Shanghai calendar date of a date or datetime value, as ``YYYY-MM-DD``."""
    if len(value) == 10 or value.endswith(_SHANGHAI_SUFFIX):
        return value[:10]
    return to_datetime(value).astimezone(SHANGHAI).date().isoformat()


def to_datetime(value: str) -> datetime:
    """An aware datetime; a naive value (not expected after validation) is read as Asia/Shanghai."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def to_date(value: str) -> date:
    return date.fromisoformat(date_key(value))


def to_decimal(value: str) -> Decimal:
    return Decimal(value)


def is_true(value: Any) -> bool:
    return value is True
