"""Random sequences of confirms and partial refunds keep the books straight."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, or_, select

from loyalpos.db.tables import coupon_events, orders, refunds
from loyalpos.domain.errors import DomainError
from loyalpos.domain.pricing.model import Options
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons
from loyalpos.service.till import checkout
from loyalpos.service.till import refunds as refund_service
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from tests.integration.checkout_helpers import cart, confirm_request, give_coupon, open_shop
from tests.integration.ledger_helpers import invariant

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("buy"),
            st.integers(1, 4),  # qty of line 1
            st.integers(0, 3),  # qty of line 2 (0: no second line)
            st.sampled_from([0, 300, 1000, 5000]),  # points asked
            st.booleans(),  # with the member's first usable coupon
        ),
        st.tuples(st.just("refund"), st.integers(0, 10), st.integers(1, 2), st.integers(1, 4)),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=steps, negative=st.booleans())
def test_confirms_and_refunds_keep_the_ledger_and_orders_consistent(
    ctx: Context, ops: list[tuple[object, ...]], negative: bool
) -> None:
    _reset(ctx)
    shop = open_shop(ctx, negative=negative)
    for _ in range(3):
        give_coupon(ctx, shop, "cash5")
    booked: list[str] = []
    n = 0
    for op in ops:
        n += 1
        if op[0] == "buy":
            _, q1, q2, pts, use_coupon = op
            lines = [("latte", 3000, int(q1))] + ([("cake", 1999, int(q2))] if q2 else [])
            c = cart(shop.store_a, shop.member, *lines, options=Options(points=int(pts)))
            q = checkout.quote(ctx, shop.brand.id, c).priced.quote
            chosen = tuple(int(a.coupon_id) for a in q.applied if a.coupon_id) if use_coupon else ()
            if not use_coupon:
                wallet = tuple(str(x.id) for x in coupons.wallet(ctx, shop.brand.id, shop.member))
                c = cart(
                    shop.store_a,
                    shop.member,
                    *lines,
                    options=Options(points=int(pts), exclude=wallet),
                )
                q = checkout.quote(ctx, shop.brand.id, c).priced.quote
            req = confirm_request(
                f"O-{n}", c, q.payable, coupon_ids=chosen, points_used=q.points_redeemed
            )
            checkout.confirm(ctx, shop.brand.id, req)
            booked.append(f"O-{n}")
        elif booked:
            _, which, line, qty = op
            order_no = booked[int(which) % len(booked)]
            req = RefundRequest(
                shop.store_a, order_no, f"R-{n}", "c01", (RefundLine(int(line), int(qty)),)
            )
            try:
                refund_service.refund(ctx, shop.brand.id, req)
            except DomainError:
                pass  # more than is left, or no such line: refused, nothing booked
        total = invariant(ctx, shop.member)
        if not negative:
            assert total >= 0
    with ctx.transaction() as conn:
        over = conn.execute(
            select(func.count()).where(orders.c.refunded > orders.c.payable)
        ).scalar_one()
        refunded = conn.execute(select(func.coalesce(func.sum(refunds.c.amount), 0))).scalar_one()
        on_orders = conn.execute(select(func.coalesce(func.sum(orders.c.refunded), 0))).scalar_one()
        # A coupon is in at most one unrefunded order: uses minus returns is 0 or 1.
        uses = func.count().filter(coupon_events.c.event == "used")
        returns = func.count().filter(coupon_events.c.event == "returned")
        used_twice = conn.execute(
            select(coupon_events.c.coupon_id)
            .group_by(coupon_events.c.coupon_id)
            .having(or_(uses - returns > 1, uses - returns < 0))
        ).all()
    assert over == 0 and refunded == on_orders and used_twice == []


def _reset(ctx: Context) -> None:
    """Hypothesis reuses the function's database: empty it between examples."""
    from loyalpos.db.tables import metadata
    from tests.conftest import _empty_pg

    if ctx.dialect == "postgresql":
        _empty_pg(ctx.engine)
        return
    with ctx.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    ctx.cache.clear()
