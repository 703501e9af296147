"""Working days by the State Council holiday calendar (adjusted weekends included), for CMP-004.

The calendar comes from ``chinesecalendar``. A year it does not know yet (the State Council
publishes each year's plan in the preceding winter) falls back to Monday-Friday, so a missing
calendar update makes the rule approximate instead of failing.
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

_ONE_DAY = timedelta(days=1)


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def within_working_days(start: date, end: date, limit_days: int) -> bool:
    """True when ``end`` is at most ``limit_days`` working days after ``start`` (or not after it)."""
    if (end - start).days <= limit_days:
        return True  # fewer calendar days than allowed working days: no need to count
    counted = 0
    day = start
    while day < end:
        day += _ONE_DAY
        if is_working_day(day):
            counted += 1
            if counted > limit_days:
                return False
    return True
