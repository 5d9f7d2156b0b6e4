"""Instants given by callers: aware, and within years a ledger can mean.

The one check every time from outside passes through, so that a naive time or
one in year 1 or 9999 is refused as bad input instead of overflowing later.
"""

from __future__ import annotations

from datetime import UTC, datetime

from loyalpos.domain.errors import InvalidInput

EARLIEST_YEAR = 1970
LATEST_YEAR = 2200


def check_instant(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(
            "时间需带时区 (times need a timezone, e.g. 2025-01-01T00:00:00+08:00)", field=field
        )
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise InvalidInput(
            f"时间超出范围 (time must be between {EARLIEST_YEAR} and {LATEST_YEAR})", field=field
        )
    return value
