from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain.calendar import Period, add_months, first_day_after_period
from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 12, 15), 1) == date(2025, 1, 15)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2200, 1, 1)), st.integers(0, 240))
def test_add_months_moves_exactly_that_many_calendar_months(day: date, months: int) -> None:
    moved = add_months(day, months)
    assert (moved.year * 12 + moved.month) - (day.year * 12 + day.month) == months
    assert moved.day <= day.day


def test_fixed_months_policy_counts_from_the_earning_day() -> None:
    policy = ExpiryPolicy(ExpiryMode.FIXED, months=12)
    assert policy.expiry_for_new_lot(date(2024, 1, 1)) == date(2025, 1, 1)
    assert policy.rolling_reset(date(2024, 5, 1)) is None


def test_end_of_period_policy_lapses_after_the_period() -> None:
    this_year = ExpiryPolicy(ExpiryMode.FIXED, period=Period.YEAR)
    next_year = ExpiryPolicy(ExpiryMode.FIXED, period=Period.YEAR, periods_later=1)
    quarter = ExpiryPolicy(ExpiryMode.FIXED, period=Period.QUARTER)
    assert this_year.expiry_for_new_lot(date(2024, 6, 15)) == date(2025, 1, 1)
    assert next_year.expiry_for_new_lot(date(2024, 6, 15)) == date(2026, 1, 1)
    assert quarter.expiry_for_new_lot(date(2024, 5, 2)) == date(2024, 7, 1)
    assert first_day_after_period(date(2024, 2, 10), Period.MONTH) == date(2024, 3, 1)


def test_rolling_policy_resets_from_the_activity_day() -> None:
    policy = ExpiryPolicy(ExpiryMode.ROLLING, months=12)
    assert policy.expiry_for_new_lot(date(2024, 1, 1)) == date(2025, 1, 1)
    assert policy.rolling_reset(date(2024, 10, 1)) == date(2025, 10, 1)


def test_no_expiry_policy_never_lapses() -> None:
    assert ExpiryPolicy().expiry_for_new_lot(date(2024, 1, 1)) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": ExpiryMode.ROLLING},
        {"mode": ExpiryMode.FIXED},
        {"mode": ExpiryMode.FIXED, "months": 0},
        {"mode": ExpiryMode.FIXED, "months": 500},
        {"mode": ExpiryMode.NONE, "birthday_extension_months": -1},
    ],
)
def test_incomplete_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        ExpiryPolicy(**kwargs)  # type: ignore[arg-type]
