"""The working-day calendar: official holidays and adjusted workdays, fallback years, extras."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.errors import ConfigError
from mapping.calendar import WorkingCalendar


@pytest.fixture
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


def test_rejection_before_national_day_2025_is_due_after_the_holiday(calendar: WorkingCalendar) -> None:
    # Sun 09-28 is an adjusted workday; 10-01..10-08 are holidays
    assert calendar.add_working_days(date(2025, 9, 26), 5) == date(2025, 10, 10)


def test_national_day_2025_days(calendar: WorkingCalendar) -> None:
    assert calendar.is_workday(date(2025, 9, 28))          # Sunday, adjusted workday
    assert not calendar.is_workday(date(2025, 9, 27))      # ordinary Saturday
    assert not any(calendar.is_workday(date(2025, 10, d)) for d in range(1, 9))
    assert calendar.is_workday(date(2025, 10, 11))         # Saturday, adjusted workday
    assert calendar.covers(date(2025, 10, 1))


def test_spring_festival_2026_with_adjusted_weekend_workdays(calendar: WorkingCalendar) -> None:
    assert calendar.is_workday(date(2026, 2, 14))          # Saturday before the holiday
    assert not any(calendar.is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert calendar.is_workday(date(2026, 2, 28))          # Saturday after it
    assert calendar.add_working_days(date(2026, 2, 13), 5) == date(2026, 2, 27)
    assert calendar.add_working_days(date(2026, 2, 25), 5) == date(2026, 3, 3)


def test_aware_datetime_counts_from_its_shanghai_date(calendar: WorkingCalendar) -> None:
    late_thursday_utc = datetime(2025, 9, 25, 17, 0, tzinfo=UTC)   # Friday 01:00 in Shanghai
    assert calendar.add_working_days(late_thursday_utc, 5) == date(2025, 10, 10)
    assert calendar.add_working_days(datetime(2025, 9, 25, 17, 0), 5) == date(2025, 10, 9)
    assert calendar.add_working_days(date(2025, 9, 25), 5) == date(2025, 10, 9)


def test_zero_days_is_the_start_day_and_negative_is_refused(calendar: WorkingCalendar) -> None:
    assert calendar.add_working_days(date(2025, 10, 1), 0) == date(2025, 10, 1)
    with pytest.raises(ValueError, match="negative"):
        calendar.add_working_days(date(2025, 10, 1), -1)


def test_year_outside_the_package_falls_back_to_monday_to_friday(calendar: WorkingCalendar) -> None:
    new_year_2027 = date(2027, 1, 1)                        # a Friday; the official plan is not out
    assert not calendar.covers(new_year_2027)
    assert not calendar.covers(date(2003, 6, 2))
    assert calendar.is_workday(new_year_2027)
    assert not calendar.is_workday(date(2027, 1, 2))
    assert calendar.add_working_days(new_year_2027, 5) == date(2027, 1, 8)


def test_rejection_across_the_end_of_coverage(calendar: WorkingCalendar) -> None:
    due = calendar.add_working_days(date(2026, 12, 30), 5)
    assert due == date(2027, 1, 6)                          # Thu 31, then Fri 1 .. Wed 6 by fallback
    assert not calendar.covers(due)


def test_extra_holidays_and_workdays_in_a_fallback_year() -> None:
    spring_2027 = [date(2027, 2, 5) + timedelta(days=i) for i in range(8)]   # Fri 02-05 .. Fri 02-12
    calendar = WorkingCalendar(extra_holidays=spring_2027, extra_workdays=[date(2027, 2, 13)])
    assert not calendar.is_workday(date(2027, 2, 8))
    assert calendar.is_workday(date(2027, 2, 13))           # a Saturday made a workday
    # Thu 02-04 -> Sat 13 (1), Mon 15 (2), Tue 16 (3), Wed 17 (4), Thu 18 (5)
    assert calendar.add_working_days(date(2027, 2, 4), 5) == date(2027, 2, 18)


def test_extra_holiday_applies_on_top_of_the_official_calendar() -> None:
    provincial = WorkingCalendar(extra_holidays=[date(2025, 9, 29)])
    assert not provincial.is_workday(date(2025, 9, 29))
    assert provincial.add_working_days(date(2025, 9, 26), 5) == date(2025, 10, 11)   # adjusted Saturday
    assert WorkingCalendar(extra_workdays=[date(2025, 10, 8)]).is_workday(date(2025, 10, 8))


def test_a_day_both_holiday_and_workday_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="2027-01-01"):
        WorkingCalendar(extra_holidays=[date(2027, 1, 1)], extra_workdays=[date(2027, 1, 1)])
