"""The working-day calendar behind rejection due dates (5 working days to correct and re-send).

Working days follow the State Council holiday plan, adjusted weekend workdays included, as
published in the ``chinesecalendar`` package. The plan of a year is published in the preceding
winter, so the package lags: for a year it does not cover, the calendar falls back to Monday to
Friday. ``covers()`` says which answer a date gets, so callers can log and count the fallback.
Configured extra holidays and workdays (e.g. a provincial holiday) apply on top of both.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

from gateway.errors import ConfigError

_SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=1)
def _official_calendar() -> tuple[frozenset[date], frozenset[date], range]:
    """Official holidays, adjusted workdays and the years they cover, read once."""
    import chinese_calendar  # imported on first use: nothing happens at import time

    holidays = frozenset(chinese_calendar.holidays)
    workdays = frozenset(chinese_calendar.workdays)
    years = range(min(holidays).year, max(holidays).year + 1)
    return holidays, workdays, years


class WorkingCalendar:
    """Official Chinese working days, plus configured extra holidays and workdays."""

    def __init__(self, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> None:
        self._extra_holidays = frozenset(extra_holidays)
        self._extra_workdays = frozenset(extra_workdays)
        both = sorted(self._extra_holidays & self._extra_workdays)
        if both:
            raise ConfigError([f"calendar: {day.isoformat()} is both an extra holiday and an extra workday"
                               for day in both])

    def covers(self, day: date) -> bool:
        """True when the official calendar knows ``day``'s year; False means Monday-Friday fallback."""
        return day.year in _official_calendar()[2]

    def is_workday(self, day: date) -> bool:
        if day in self._extra_holidays:
            return False
        if day in self._extra_workdays:
            return True
        holidays, workdays, years = _official_calendar()
        if day.year in years:
            return day in workdays or (day.weekday() < 5 and day not in holidays)
        return day.weekday() < 5

    def add_working_days(self, start: date | datetime, days: int) -> date:
        """The ``days``-th working day after ``start`` (whose own day does not count).

        An aware datetime counts from its Asia/Shanghai date; a naive one from its own date.
        Check ``covers()`` on the result to know whether the fallback was used (coverage is by
        whole years, so the start and the result bound it).
        """
        if days < 0:
            raise ValueError("days must not be negative")
        day = _local_date(start)
        remaining = days
        while remaining:
            day += _ONE_DAY
            if self.is_workday(day):
                remaining -= 1
        return day


def _local_date(moment: date | datetime) -> date:
    if isinstance(moment, datetime):
        return (moment.astimezone(_SHANGHAI) if moment.tzinfo is not None else moment).date()
    return moment
