"""Scheduled work on the ledger: expiry (积分过期) and the birthday extension."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, extract, or_, select, update

from loyalpos.db import ledger_repo as repo
from loyalpos.db.tables import brands, members, point_lots
from loyalpos.domain.calendar import add_months
from loyalpos.domain.errors import InvalidInput
from loyalpos.service.base.brands import BRAND_COLUMNS, Brand, brand_from_row, load_brand
from loyalpos.service.base.context import Context


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    as_of: date
    lots: int
    points: int
    members: int


EXPIRY_BATCH_MEMBERS = 1000


def expiry_day(brand: Brand, as_of: date | None, now: datetime) -> date:
    """The day an expiry run of the brand goes up to: `as_of`, or today in the
    brand's time zone. A day after today is refused: it would expire points that
    are still valid (a typo of the year expired every lot of a brand). A run
    that must see a later day waits for it, or (in tests) moves the clock."""
    today = brand.local_date(now)
    if as_of is None:
        return today
    if as_of > today:
        raise InvalidInput(
            f"过期日期 {as_of} 晚于今天 {today} ({brand.timezone})，不能提前过期积分 "
            f"(as_of {as_of} is after today, {today} in {brand.timezone}; "
            "points cannot be expired before their date)",
            code="expiry_date_in_future",
            field="as_of",
            as_of=as_of.isoformat(),
            today=today.isoformat(),
            timezone=brand.timezone,
            brand=brand.code,
        )
    return as_of


def expire_points(
    ctx: Context,
    as_of: date | None = None,
    *,
    brand_id: int | None = None,
    now: datetime | None = None,
    batch_members: int = EXPIRY_BATCH_MEMBERS,
) -> ExpiryRun:
    """Expire every lot lapsing on or before `as_of` (default: today in each
    brand's time zone), for one brand or for all, in set-based SQL.

    The day is checked against each brand's today before anything is expired
    (`expiry_day`: the API and the command line both come here). It works through
    the affected members in batches, each its own transaction that first locks
    the batch's member rows (in id order) the way a till's booking does: tills
    wait a moment for one batch instead of making a single huge transaction fail
    and start over. Idempotent for a date: lots it expired hold nothing any more.
    With several brands, `as_of` of the result is the latest day used.
    """
    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        if brand_id is not None:
            targets = [load_brand(conn, brand_id)]
        else:
            rows = conn.execute(select(*BRAND_COLUMNS).order_by(brands.c.id))
            targets = [brand_from_row(r) for r in rows]
    days = [(brand.id, expiry_day(brand, as_of, at)) for brand in targets]
    lots = points = touched = 0
    for bid, day in days:
        with ctx.transaction(read_only=True) as conn:
            member_ids = repo.members_with_due_lots(conn, day, bid)
        for start in range(0, len(member_ids), batch_members):
            batch = member_ids[start : start + batch_members]

            def run(
                conn: Connection, batch: list[int] = batch, bid: int = bid, day: date = day
            ) -> tuple[int, int, int]:
                repo.lock_members(conn, batch)
                return repo.expire_due_lots(conn, day, at, batch[0], batch[-1], bid)

            n_lots, n_points, n_members = ctx.run(run)
            lots, points, touched = lots + n_lots, points + n_points, touched + n_members
    latest = max((day for _, day in days), default=as_of or at.date())
    return ExpiryRun(latest, lots, points, touched)


def extend_birthdays(ctx: Context, as_of: date, *, brand_id: int | None = None) -> int:
    """Add each brand's birthday months to the open lots of members whose
    birthday month it is, once per member per year. Returns members extended."""

    def run(conn: Connection) -> int:
        query = select(brands.c.id, brands.c.birthday_extension_months).where(
            brands.c.birthday_extension_months > 0
        )
        if brand_id is not None:
            query = query.where(brands.c.id == brand_id)
        extended = 0
        for brand_row in conn.execute(query).all():
            due = (
                conn.execute(
                    select(members.c.id)
                    .where(
                        members.c.brand_id == brand_row.id,
                        extract("month", members.c.birthday) == as_of.month,
                        or_(
                            members.c.birthday_extended_year.is_(None),
                            members.c.birthday_extended_year < as_of.year,
                        ),
                    )
                    .order_by(members.c.id)
                    .with_for_update()
                )
                .scalars()
                .all()
            )
            for member_id in due:
                _extend_member(conn, member_id, brand_row.birthday_extension_months)
                conn.execute(
                    update(members)
                    .where(members.c.id == member_id)
                    .values(birthday_extended_year=as_of.year)
                )
                extended += 1
        return extended

    return ctx.run(run)


def _extend_member(conn: Connection, member_id: int, months: int) -> None:
    rows = conn.execute(
        select(point_lots.c.id, point_lots.c.expires_on).where(
            point_lots.c.member_id == member_id,
            point_lots.c.remaining > 0,
            point_lots.c.expires_on.is_not(None),
        )
    ).all()
    for lot_id, expires_on in rows:
        repo.set_lot_expiry(conn, lot_id, add_months(expires_on, months))
