"""Working days for CMP-004, from the same official calendar as rejection due dates."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from mapping.calendar import WorkingCalendar


@lru_cache(maxsize=1)
def _official() -> WorkingCalendar:
    return WorkingCalendar()


def within_working_days(start: date, end: date, limit_days: int) -> bool:
    """True when ``end`` is at most ``limit_days`` working days after ``start`` (or not after it)."""
    if (end - start).days <= limit_days:
        return True  # fewer calendar days than allowed working days: no need to count
    return end <= _official().add_working_days(start, limit_days)
