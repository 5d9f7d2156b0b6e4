"""Confirm payment: books once, replays, refuses changed prices, anonymous claims."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from loyalpos.db.tables import coupons, order_lines, orders, outbox, point_entries
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.pricing.model import Options, PointsRequest
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members, points
from loyalpos.service.loyalty.members import Identity
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import checkout
from loyalpos.service.till.checkout import MemberRef, PriceChanged
from tests.conftest import Clock
from tests.integration.checkout_helpers import (
    RULES,
    cart,
    confirm_request,
    give_coupon,
    open_shop,
)
from tests.integration.ledger_helpers import invariant
from tests.integration.sql_spy import sent_statements


def test_confirm_books_order_lines_points_coupon_and_events_once(ctx: Context) -> None:
    shop = open_shop(ctx)
    coupon = give_coupon(ctx, shop, "mj100-20")
    c = cart(shop.store_a, shop.member, ("latte", 3000, 2), ("cake", 4500, 1))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    assert [a.coupon_id for a in q.applied] == [str(coupon)]
    assert q.payable == 10500 - 2000
    req = confirm_request("A-0001", c, q.payable, coupon_ids=(coupon,))
    first = checkout.confirm(ctx, shop.brand.id, req)
    assert not first.replayed
    r = first.receipt
    assert (r["payable_fen"], r["discount_fen"], r["points_earned"]) == (8500, 2000, 85)
    assert r["coupons_used"] == [coupon]
    again = checkout.confirm(ctx, shop.brand.id, req)
    assert again.replayed and again.receipt == r
    assert points.balance(ctx, shop.brand.id, shop.member).total == 1000 + 85
    assert invariant(ctx, shop.member) == 1085
    with ctx.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1
        lines = conn.execute(
            select(order_lines.c.discount, order_lines.c.payable).order_by(order_lines.c.line_no)
        ).all()
        assert sum(d for d, _ in lines) == 2000 and sum(p for _, p in lines) == 8500
        state = conn.execute(select(coupons.c.state).where(coupons.c.id == coupon)).scalar_one()
        assert state == "used"
        events = sorted(conn.execute(select(outbox.c.event_type)).scalars())
    assert events.count("order.paid") == 1
    assert "coupon.redeemed" in events and "points.changed" in events


def test_same_order_number_with_another_body_is_refused(ctx: Context) -> None:
    shop = open_shop(ctx)
    c = cart(shop.store_a, shop.member, ("latte", 3000, 1))
    checkout.confirm(ctx, shop.brand.id, confirm_request("A-1", c, 3000))
    other = cart(shop.store_a, shop.member, ("latte", 3000, 2))
    with pytest.raises(Conflict) as err:
        checkout.confirm(ctx, shop.brand.id, confirm_request("A-1", other, 6000))
    assert err.value.code == "order_no_reused"
    # The same number at another store is another order.
    checkout.confirm(
        ctx, shop.brand.id, confirm_request("A-1", cart(shop.store_b, None, ("x", 100, 1)), 100)
    )


def test_points_spent_meanwhile_give_409_with_a_fresh_quote_and_book_nothing(ctx: Context) -> None:
    shop = open_shop(ctx)
    c = cart(
        shop.store_a, shop.member, ("latte", 3000, 2), options=Options(points=PointsRequest.MAX)
    )
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    assert q.points_redeemed == 1000 and q.points_offset == 1000
    points.spend(ctx, shop.brand.id, shop.member, 600, points.Source("order", "elsewhere"))
    req = confirm_request("A-2", c, q.payable, points_used=q.points_redeemed)
    with pytest.raises(PriceChanged) as err:
        checkout.confirm(ctx, shop.brand.id, req)
    fresh = err.value.detail["fresh_quote"]
    assert fresh["points_redeemed"] == 400 and fresh["payable_fen"] == 6000 - 400
    with ctx.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 0
    assert invariant(ctx, shop.member) == 400


def test_coupon_used_at_another_store_gives_409(ctx: Context) -> None:
    shop = open_shop(ctx)
    coupon = give_coupon(ctx, shop, "cash5")
    c_a = cart(shop.store_a, shop.member, ("latte", 3000, 1))
    c_b = cart(shop.store_b, shop.member, ("tea", 2000, 1))
    checkout.confirm(ctx, shop.brand.id, confirm_request("B-1", c_b, 1500, coupon_ids=(coupon,)))
    with pytest.raises(PriceChanged) as err:
        checkout.confirm(
            ctx, shop.brand.id, confirm_request("A-3", c_a, 2500, coupon_ids=(coupon,))
        )
    assert err.value.detail["unavailable_coupons"] == [coupon]
    assert err.value.detail["fresh_quote"]["payable_fen"] == 3000


def test_wrong_amount_is_refused(ctx: Context) -> None:
    shop = open_shop(ctx)
    c = cart(shop.store_a, shop.member, ("latte", 3000, 1))
    with pytest.raises(PriceChanged):
        checkout.confirm(ctx, shop.brand.id, confirm_request("A-4", c, 2999))


def test_anonymous_order_gets_a_claim_token_claimable_once(ctx: Context, clock: Clock) -> None:
    shop = open_shop(ctx)
    c = cart(shop.store_a, None, ("latte", 3000, 1))
    r = checkout.confirm(ctx, shop.brand.id, confirm_request("A-5", c, 3000)).receipt
    assert r["member_id"] is None and r["points_earned"] == 0 and r["claim_token"]
    new = members.register(
        ctx, shop.brand.id, phone="13900139000", name="李四", claim_token=r["claim_token"]
    )
    assert points.balance(ctx, shop.brand.id, new.id).total == 30
    with pytest.raises(Conflict):
        members.claim(ctx, shop.brand.id, shop.member, r["claim_token"])


def test_payer_id_books_to_the_bound_member(ctx: Context) -> None:
    shop = open_shop(ctx)
    payer = Identity("wechat", "openid", "o-123")
    members.bind_identity(ctx, shop.brand.id, shop.member, payer)
    c = cart(shop.store_a, None, ("latte", 3000, 1))
    r = checkout.confirm(ctx, shop.brand.id, confirm_request("A-6", c, 3000, payer=payer)).receipt
    assert r["member_id"] == shop.member and r["points_earned"] == 30 and r["claim_token"] is None


def test_reserved_coupon_and_points_are_not_offered_to_another_till(
    ctx: Context, clock: Clock
) -> None:
    shop = open_shop(ctx)
    coupon = give_coupon(ctx, shop, "cash5")
    opts = Options(points=PointsRequest.MAX)
    c_a = cart(shop.store_a, shop.member, ("latte", 3000, 1), options=opts)
    held = checkout.quote(ctx, shop.brand.id, c_a, reserve=True)
    assert held.token and held.priced.quote.points_redeemed == 1000
    c_b = cart(shop.store_b, shop.member, ("tea", 3000, 1), options=opts)
    other = checkout.quote(ctx, shop.brand.id, c_b).priced.quote
    assert other.applied == () and other.points_redeemed == 0
    # The holding till confirms with its token; the other till still cannot have them.
    req = confirm_request(
        "A-7",
        c_a,
        held.priced.quote.payable,
        coupon_ids=(coupon,),
        points_used=1000,
        quote_token=held.token,
    )
    checkout.confirm(ctx, shop.brand.id, req)
    # A hold lapses after quote_hold_seconds: a second hold frees itself.
    give_coupon(ctx, shop, "cash5")
    checkout.quote(ctx, shop.brand.id, c_b, reserve=True)
    clock.now += timedelta(seconds=ctx.settings.quote_hold_seconds + 1)
    freed = checkout.quote(ctx, shop.brand.id, c_a).priced.quote
    assert [a.kind for a in freed.applied] == ["cash"]


def test_a_member_confirm_checks_replay_then_its_quote_token(ctx: Context) -> None:
    # One statement reads the member's state, the replay and the hold (under the
    # lock): the answers must be the ones the separate reads gave.
    shop = open_shop(ctx)
    opts = Options(points=PointsRequest.MAX)
    c_a = cart(shop.store_a, shop.member, ("latte", 3000, 1), options=opts)
    held = checkout.quote(ctx, shop.brand.id, c_a, reserve=True)
    assert held.token and held.priced.quote.points_redeemed == 1000
    # Another store's token is not this store's quote: nothing booked.
    c_b = cart(shop.store_b, shop.member, ("latte", 3000, 1), options=opts)
    wrong = confirm_request(
        "A-9", c_b, held.priced.quote.payable, points_used=1000, quote_token=held.token
    )
    with pytest.raises(NotFound) as err:
        checkout.confirm(ctx, shop.brand.id, wrong)
    assert err.value.code == "quote_not_found"
    req = confirm_request(
        "A-9", c_a, held.priced.quote.payable, points_used=1000, quote_token=held.token
    )
    first = checkout.confirm(ctx, shop.brand.id, req)
    assert not first.replayed
    # The repeat replays (its hold is released by now, and the points are spent).
    again = checkout.confirm(ctx, shop.brand.id, req)
    assert again.replayed and again.receipt == first.receipt
    # The same number with another body is refused before the token is looked at.
    other = replace(req, quote_token="nope", points=0)
    with pytest.raises(Conflict) as reused:
        checkout.confirm(ctx, shop.brand.id, other)
    assert reused.value.code == "order_no_reused"
    with ctx.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1


def test_a_first_anonymous_booking_does_not_look_for_a_replay(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The (store, order number) key finds a repeat; a first booking reads nothing
    # of `orders` before writing it.
    shop = open_shop(ctx)
    c = cart(shop.store_a, None, ("latte", 3000, 1))
    seen = sent_statements(ctx, monkeypatch)
    first = checkout.confirm(ctx, shop.brand.id, confirm_request("N-1", c, 3000))
    assert not first.replayed
    assert [s for s in seen if s.startswith("INSERT INTO orders")], seen  # it does see
    assert not [s for s in seen if s.startswith("SELECT") and "FROM orders" in s]
    again = checkout.confirm(ctx, shop.brand.id, confirm_request("N-1", c, 3000))
    assert again.replayed and again.receipt == first.receipt
    with pytest.raises(Conflict) as err:
        checkout.confirm(ctx, shop.brand.id, confirm_request("N-1", c, 2999))
    assert err.value.code == "order_no_reused"
    with ctx.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1


def test_an_anonymous_repeat_replays_after_the_price_changed(ctx: Context, clock: Clock) -> None:
    # A repeat answers what was booked even though the cart is priced differently
    # now (a promotion started): the price check does not refuse a replay.
    shop = open_shop(ctx)
    c = cart(shop.store_a, None, ("latte", 3000, 2))
    req = confirm_request("N-2", c, 6000)
    first = checkout.confirm(ctx, shop.brand.id, req)
    half = (
        RULES
        + """promotions:
  - {id: half, name: 第二件半价, kind: nth_discount, nth: 2, percent: 50,
     scope: {categories: [food]}}
"""
    )
    draft = rulesets.save_draft(ctx, shop.brand.id, half)
    rulesets.publish(ctx, shop.brand.id, draft.version, effective_from=clock.now)
    clock.now += timedelta(seconds=1)
    assert checkout.quote(ctx, shop.brand.id, c).priced.quote.payable == 4500
    again = checkout.confirm(ctx, shop.brand.id, req)
    assert again.replayed and again.receipt == first.receipt
    # A new order number at the old price is refused with the fresh price.
    with pytest.raises(PriceChanged):
        checkout.confirm(ctx, shop.brand.id, replace(req, order_no="N-3"))
    with ctx.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1


def test_tier_upgrade_and_progress(ctx: Context) -> None:
    shop = open_shop(ctx)
    who = MemberRef(member_id=shop.member)
    before = checkout.identify(ctx, shop.brand.id, shop.store_a, who)
    assert before["tier_progress"]["message"] == "距离金卡还需消费 ¥500.00"
    c = cart(shop.store_a, shop.member, ("box", 60000, 1))
    r = checkout.confirm(ctx, shop.brand.id, confirm_request("A-8", c, 60000)).receipt
    assert r["tier"] == "gold"
    after = checkout.identify(ctx, shop.brand.id, shop.store_a, who)
    assert after["member"]["tier"] == "gold" and after["tier_progress"] is None
    with ctx.transaction() as conn:
        kinds = list(conn.execute(select(outbox.c.event_type).order_by(outbox.c.id)).scalars())
    assert "tier.changed" in kinds


def test_coupons_or_points_without_a_member_are_refused(ctx: Context) -> None:
    shop = open_shop(ctx)
    c = cart(shop.store_a, None, ("latte", 3000, 1))
    with pytest.raises(InvalidInput):
        checkout.confirm(ctx, shop.brand.id, confirm_request("A-9", c, 2000, points_used=1000))


def test_ledger_entries_name_the_order_and_store(ctx: Context) -> None:
    shop = open_shop(ctx)
    c = cart(shop.store_a, shop.member, ("latte", 3000, 1), options=Options(points=500))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    checkout.confirm(ctx, shop.brand.id, confirm_request("A-10", c, q.payable, points_used=500))
    with ctx.transaction() as conn:
        rows = conn.execute(
            select(
                point_entries.c.kind,
                point_entries.c.points,
                point_entries.c.source_ref,
                point_entries.c.store_id,
            )
            .where(point_entries.c.source_type == "order")
            .order_by(point_entries.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("spend", -500, "A-10", shop.store_a),
        ("earn", 25, "A-10", shop.store_a),
    ]


BUDGET_RULES = """
points:
  earn: [{id: base, kind: base, points_per_yuan: 1}]
coupons:
  - {id: limited, name: 限量券, kind: cash, amount_fen: 1000, limits: {total_uses: 2}}
  - {id: capped, name: 限额券, kind: cash, amount_fen: 1000, limits: {total_discount_fen: 1500}}
stacking: {max_coupons: 1}
"""


def test_total_budgets_are_booked_by_orders_and_respected_by_quotes(ctx: Context) -> None:
    shop = open_shop(ctx, rules=BUDGET_RULES)
    limited = [give_coupon(ctx, shop, "limited") for _ in range(3)]
    c = cart(shop.store_a, shop.member, ("latte", 3000, 1))
    for n, coupon in enumerate(limited[:2]):
        req = confirm_request(f"L-{n}", c, 2000, coupon_ids=(coupon,))
        assert checkout.confirm(ctx, shop.brand.id, req).receipt["discount_fen"] == 1000
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    assert q.applied == () and {u.reason_code for u in q.unusable} == {"limit_reached"}
    with pytest.raises(PriceChanged):
        checkout.confirm(
            ctx, shop.brand.id, confirm_request("L-2", c, 2000, coupon_ids=(limited[2],))
        )
    capped = [give_coupon(ctx, shop, "capped") for _ in range(2)]
    only = Options(exclude=tuple(str(x) for x in limited))
    c2 = cart(shop.store_a, shop.member, ("latte", 3000, 1), options=only)
    first = checkout.confirm(
        ctx, shop.brand.id, confirm_request("C-0", c2, 2000, coupon_ids=(capped[0],))
    )
    assert first.receipt["discount_fen"] == 1000
    q2 = checkout.quote(ctx, shop.brand.id, c2).priced.quote
    assert q2.discount == 500  # what is left of the 15.00 元 budget


def test_a_quote_whose_search_stops_at_its_budget_is_logged_once(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The plan stays legal; the operator learns which store and rule version made
    the search run out (a rule set with thousands of interchangeable benefits)."""
    from loyalpos.domain.pricing import search

    shop = open_shop(ctx)
    for template in ("cash5", "cash5", "mj100-20"):
        give_coupon(ctx, shop, template)
    c = cart(shop.store_a, shop.member, ("bag", 12000, 1))
    monkeypatch.setattr(search, "SEARCH_BUDGET", 1)
    monkeypatch.setattr(search, "SEARCH_WORK", 1)
    caplog.set_level(logging.WARNING, logger="loyalpos")
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    assert q.debug.get("search_complete") is False
    (line,) = [r for r in caplog.records if "stopped at its budget" in r.getMessage()]
    assert "store A, rule version 1, 1 lines, 3 coupons" in line.getMessage()
    assert q.payable <= 12000
