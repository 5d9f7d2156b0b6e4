"""Calendar arithmetic on local dates.

Points expire on dates in the brand's local calendar, so all expiry maths works
on `datetime.date`. Month arithmetic clamps to the last day of the month
(2024-01-31 + 1 month = 2024-02-29), the convention every loyalty programme
we know of and `dateutil.relativedelta` use.
"""

from __future__ import annotations

import calendar
from datetime import date
from enum import StrEnum


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def add_months(day: date, months: int) -> date:
    """`day` moved by a whole number of months, clamped to the month's end."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def period_start(day: date, period: Period) -> date:
    """First day of the calendar period that contains `day`."""
    if period is Period.MONTH:
        return day.replace(day=1)
    if period is Period.QUARTER:
        return date(day.year, ((day.month - 1) // 3) * 3 + 1, 1)
    return date(day.year, 1, 1)


def months_in(period: Period) -> int:
    return {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}[period]


def first_day_after_period(day: date, period: Period, periods_later: int = 0) -> date:
    """First day after the end of the period `periods_later` periods after `day`'s.

    Points "valid until the end of next year" lapse on this date.
    """
    start = period_start(day, period)
    return add_months(start, months_in(period) * (periods_later + 1))
