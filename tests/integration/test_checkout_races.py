"""Proof on PostgreSQL with real concurrent connections: racing tills never
share a coupon or overdraw points, and replays book once."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from loyalpos.db.tables import coupon_events, orders, refunds
from loyalpos.domain.pricing.model import Options
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons, members
from loyalpos.service.till import checkout
from loyalpos.service.till import refunds as refund_service
from loyalpos.service.till.checkout import Confirmed, PriceChanged
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from tests.integration.checkout_helpers import cart, confirm_request, give_coupon, open_shop
from tests.integration.ledger_helpers import invariant
from tests.integration.test_checkout import BUDGET_RULES
from tests.integration.test_ledger_concurrency import pg_ctx, race

pytestmark = pytest.mark.postgres
__all__ = ["pg_ctx"]


def test_eight_stores_race_for_one_coupon_and_too_many_points(pg_ctx: Context) -> None:
    ctx = pg_ctx
    shop = open_shop(ctx)
    coupon = give_coupon(ctx, shop, "cash5")
    stores = [shop.store_a, shop.store_b] + [
        brands.create_store(ctx, shop.brand.id, f"S{i}", f"Store {i}").id for i in range(6)
    ]
    # Each till wants the coupon and 600 of the member's 1000 points.
    requests = []
    for i, store in enumerate(stores):
        c = cart(store, shop.member, ("latte", 3000, 1), options=Options(points=600))
        q = checkout.quote(ctx, shop.brand.id, c).priced.quote
        assert q.points_redeemed == 600 and q.applied
        requests.append(
            confirm_request(f"R-{i}", c, q.payable, coupon_ids=(coupon,), points_used=600)
        )
    results = race(8, lambda i: checkout.confirm(ctx, shop.brand.id, requests[i]))
    won = [r for r in results if isinstance(r, Confirmed)]
    lost = [r for r in results if not isinstance(r, Confirmed)]
    assert len(won) == 1, results
    assert all(isinstance(r, PriceChanged) for r in lost), lost
    assert invariant(ctx, shop.member) == 1000 - 600 + won[0].receipt["points_earned"]
    with ctx.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1
        used = conn.execute(
            select(func.count()).where(
                coupon_events.c.coupon_id == coupon, coupon_events.c.event == "used"
            )
        ).scalar_one()
    assert used == 1


def test_confirms_and_refunds_sent_three_times_at_once_book_once(pg_ctx: Context) -> None:
    ctx = pg_ctx
    shop = open_shop(ctx)
    c = cart(shop.store_a, shop.member, ("latte", 3000, 2), options=Options(points=400))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    req = confirm_request("ONCE-1", c, q.payable, points_used=400)
    results = race(3, lambda _: checkout.confirm(ctx, shop.brand.id, req))
    assert all(isinstance(r, Confirmed) for r in results), results
    assert sorted(r.replayed for r in results if isinstance(r, Confirmed)) == [False, True, True]
    after_confirm = invariant(ctx, shop.member)
    assert after_confirm == 1000 - 400 + q.points_earned
    refund = RefundRequest(shop.store_a, "ONCE-1", "RF-1", "c01", (RefundLine(1, 1),))
    done = race(3, lambda _: refund_service.refund(ctx, shop.brand.id, refund))
    assert all(isinstance(r, refund_service.Refunded) for r in done), done
    receipts = {str(r.receipt) for r in done if isinstance(r, refund_service.Refunded)}
    assert len(receipts) == 1
    with ctx.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(refunds)).scalar_one() == 1
    # Half the order back: half the points earned reversed, half the points spent returned.
    assert invariant(ctx, shop.member) == after_confirm - q.points_earned // 2 + 200


def test_tills_racing_for_the_last_uses_of_a_budget_never_overrun_it(pg_ctx: Context) -> None:
    ctx = pg_ctx
    shop = open_shop(ctx, rules=BUDGET_RULES)
    stores = [shop.store_a, shop.store_b] + [
        brands.create_store(ctx, shop.brand.id, f"S{i}", f"Store {i}").id for i in range(4)
    ]
    # Six members, each with a coupon of a template only two orders may use.
    requests = []
    for i, store in enumerate(stores):
        member = members.register(ctx, shop.brand.id, phone=f"1390000000{i}", name="m").id
        coupon = coupons.issue_to_member(ctx, shop.brand.id, member, "limited").id
        c = cart(store, member, ("latte", 3000, 1), options=Options(exclude=()))
        requests.append(confirm_request(f"B-{i}", c, 2000, coupon_ids=(coupon,)))
    results = race(6, lambda i: checkout.confirm(ctx, shop.brand.id, requests[i]))
    won = [r for r in results if isinstance(r, Confirmed)]
    assert len(won) == 2, results
    assert all(isinstance(r, PriceChanged) for r in results if not isinstance(r, Confirmed))


def test_a_connection_the_server_dropped_is_replaced_not_a_500(pg_ctx: Context) -> None:
    from sqlalchemy import create_engine, text

    ctx = pg_ctx
    shop = open_shop(ctx)
    c = cart(shop.store_a, shop.member, ("latte", 3000, 1))
    checkout.confirm(ctx, shop.brand.id, confirm_request("D-1", c, 3000))
    # Every pooled connection of this database is killed by the server side.
    admin = create_engine(ctx.engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    assert killed >= 1
    assert checkout.quote(ctx, shop.brand.id, c).priced.quote.payable == 3000
    done = checkout.confirm(ctx, shop.brand.id, confirm_request("D-2", c, 3000))
    assert not done.replayed and done.receipt["payable_fen"] == 3000
