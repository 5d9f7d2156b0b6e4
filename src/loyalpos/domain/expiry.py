"""Points expiry policies (积分有效期).

A lot's `expires_on` is the local date on which its points lapse: they can be
spent up to the end of the day before. Three policies exist per brand:

- `none`: points never lapse.
- `fixed`: each lot lapses on its own, either `months` after the day it was
  earned, or (when `period` is set) at the end of the calendar period that is
  `periods_later` periods after the one it was earned in ("points earned this
  year are valid until the end of next year").
- `rolling`: every earn or spend moves the expiry of *all* remaining points to
  `months` after that day, so an active member never loses points.

The birthday extension adds `birthday_extension_months` to every open lot once
a year in the member's birthday month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from loyalpos.domain.calendar import Period, add_months, first_day_after_period
from loyalpos.domain.errors import InvalidInput


class ExpiryMode(StrEnum):
    NONE = "none"
    FIXED = "fixed"
    ROLLING = "rolling"


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    mode: ExpiryMode = ExpiryMode.NONE
    months: int | None = None
    period: Period | None = None
    periods_later: int = 0
    birthday_extension_months: int = 0

    def __post_init__(self) -> None:
        if self.mode is ExpiryMode.ROLLING and not self.months:
            raise InvalidInput("rolling expiry needs a number of months", field="months")
        if self.mode is ExpiryMode.FIXED and not self.months and self.period is None:
            raise InvalidInput("fixed expiry needs months or a calendar period", field="months")
        if self.months is not None and not 1 <= self.months <= 120:
            raise InvalidInput("expiry months must be between 1 and 120", field="months")
        if self.periods_later < 0 or self.birthday_extension_months < 0:
            raise InvalidInput("expiry offsets cannot be negative", field="periods_later")

    def expiry_for_new_lot(self, earned_on: date) -> date | None:
        """The lapse date of points earned on `earned_on`."""
        if self.mode is ExpiryMode.NONE:
            return None
        if self.mode is ExpiryMode.FIXED and self.period is not None:
            return first_day_after_period(earned_on, self.period, self.periods_later)
        assert self.months is not None
        return add_months(earned_on, self.months)

    def rolling_reset(self, activity_on: date) -> date | None:
        """New lapse date for all open lots after activity, or None if not rolling."""
        if self.mode is not ExpiryMode.ROLLING:
            return None
        assert self.months is not None
        return add_months(activity_on, self.months)
