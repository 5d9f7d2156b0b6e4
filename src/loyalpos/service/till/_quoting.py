"""Quotes (试算), and the hold a quote may place on its coupons and points for a
few minutes so that another till cannot take them (预占); confirm or the time
running out releases it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select, update

from loyalpos.db.engine import write_many
from loyalpos.db.tables import (
    inserted_id,
    reservations,
)
from loyalpos.domain.errors import NotFound
from loyalpos.domain.pricing import model as m
from loyalpos.service.base.brands import cached_brand, store_in_brand
from loyalpos.service.base.context import Context, RetryTransaction
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.rulebook.rulesets import InForce
from loyalpos.service.till._inputs import (
    find_member,
    find_member_with_state,
    once_more_if_dropped,
    price,
    reading_connection,
)
from loyalpos.service.till._model import CartRequest, QuoteResult


def find_hold(
    conn: Connection, brand_id: int, store_id: int, token: str | None
) -> tuple[int, bool] | None:
    """(id, live) of a quote token of this store, or None if it is not one."""
    if token is None:
        return None
    row = conn.execute(
        _RESERVATION_BY_TOKEN, {"token": token, "brand_id": brand_id, "store_id": store_id}
    ).first()
    if row is None:
        raise NotFound("报价已失效 (quote token not found for this store)", code="quote_not_found")
    return int(row.id), row.released_at is None


_RESERVATION_BY_TOKEN = select(reservations.c.id, reservations.c.released_at).where(
    reservations.c.token == bindparam("token"),
    reservations.c.brand_id == bindparam("brand_id"),
    reservations.c.store_id == bindparam("store_id"),
)
_RELEASE = (
    update(reservations)
    .where(reservations.c.id == bindparam("reservation_id"), reservations.c.released_at.is_(None))
    .values(released_at=bindparam("now"))
)
_INSERT_RESERVATION = insert(reservations)


def release_hold(conn: Connection, reservation_id: int, now: datetime) -> None:
    wallet.unlock(conn, reservation_id)
    write_many(conn, _RELEASE, [{"reservation_id": reservation_id, "now": now}])


def quote(
    ctx: Context,
    brand_id: int,
    req: CartRequest,
    *,
    reserve: bool = False,
    replaces: str | None = None,
    now: datetime | None = None,
) -> QuoteResult:
    """Price a cart; with `reserve`, hold its coupons and points for this till for
    `quote_hold_seconds` so another till cannot take them meanwhile. `replaces`
    is this till's previous token (a re-quote gives the old hold back first)."""
    at = ctx.now(now)
    if not reserve or req.member is None:

        def read() -> QuoteResult:
            with reading_connection(ctx) as conn:
                brand = cached_brand(ctx, conn, brand_id)
                member = state = None
                if req.member is not None:
                    member, state = find_member_with_state(conn, ctx, brand, req.member, at)
                priced = price(conn, ctx, brand, req, at, member=member, state=state)
            return QuoteResult(priced, None, None)

        return once_more_if_dropped(read)

    def run(conn: Connection) -> QuoteResult:
        brand = cached_brand(ctx, conn, brand_id)
        assert req.member is not None
        member = find_member(conn, ctx, brand_id, req.member, at, lock=True)
        old = find_hold(conn, brand_id, req.store_id, replaces)
        if old is not None:
            release_hold(conn, old[0], at)
        priced = price(conn, ctx, brand, req, at, member=member)
        until = at + timedelta(seconds=ctx.settings.quote_hold_seconds)
        token = secrets.token_urlsafe(18)
        reservation_id = inserted_id(
            conn.execute(
                _INSERT_RESERVATION,
                {
                    "brand_id": brand_id,
                    "store_id": req.store_id,
                    "member_id": member.id,
                    "token": token,
                    "points": priced.quote.points_redeemed,
                    "created_at": at,
                    "expires_at": until,
                },
            )
        )
        chosen = chosen_coupons(priced.quote)
        if not wallet.lock(conn, chosen, reservation_id, until, at):
            raise RetryTransaction
        return QuoteResult(priced, token, until)

    return ctx.run(run)


def quote_with_rules(
    ctx: Context,
    brand_id: int,
    req: CartRequest,
    rules: InForce,
    *,
    now: datetime | None = None,
) -> QuoteResult:
    """Price a cart as the till does (the store, the member's points, wallet,
    usage and the budgets left), but with `rules` instead of the version in
    force: HQ tries a draft on a cart before publishing it. Nothing is held."""
    at = ctx.now(now)

    def read() -> QuoteResult:
        with reading_connection(ctx) as conn:
            brand = cached_brand(ctx, conn, brand_id)
            member = state = None
            if req.member is not None:
                member, state = find_member_with_state(conn, ctx, brand, req.member, at)
            priced = price(conn, ctx, brand, req, at, member=member, state=state, rules=rules)
        return QuoteResult(priced, None, None)

    return once_more_if_dropped(read)


def release(ctx: Context, brand_id: int, store_id: int, token: str) -> None:
    """The till dropped its quote (cart cleared): give its hold back at once."""
    at = ctx.now()

    def run(conn: Connection) -> None:
        store_in_brand(conn, brand_id, store_id)
        found = find_hold(conn, brand_id, store_id, token)
        assert found is not None
        release_hold(conn, found[0], at)

    ctx.run(run)


def chosen_coupons(q: m.Quote) -> list[int]:
    return [int(a.coupon_id) for a in q.applied if a.coupon_id is not None]
