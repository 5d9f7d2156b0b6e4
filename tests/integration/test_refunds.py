"""Refunds: by line and quantity, idempotent, points and coupons back by policy."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from loyalpos.db.tables import coupons, point_entries
from loyalpos.domain.errors import Conflict
from loyalpos.domain.pricing.model import Options
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import points
from loyalpos.service.till import checkout, refunds
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from tests.integration.checkout_helpers import Shop, cart, confirm_request, give_coupon, open_shop
from tests.integration.ledger_helpers import invariant


def _paid_order(ctx: Context, shop: Shop, points_used: int = 0, coupon: int | None = None) -> dict:
    c = cart(
        shop.store_a,
        shop.member,
        ("latte", 3000, 3),
        ("cake", 4000, 1),
        options=Options(points=points_used),
    )
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    req = confirm_request(
        "O-1",
        c,
        q.payable,
        coupon_ids=(coupon,) if coupon else (),
        points_used=q.points_redeemed,
    )
    return checkout.confirm(ctx, shop.brand.id, req).receipt


def _refund(ctx: Context, shop: Shop, no: str, *lines: tuple[int, int]) -> dict:
    req = RefundRequest(shop.store_a, "O-1", no, "c01", tuple(RefundLine(n, q) for n, q in lines))
    return refunds.refund(ctx, shop.brand.id, req).receipt


def test_partial_refunds_in_parts_return_exactly_what_was_paid(ctx: Context) -> None:
    shop = open_shop(ctx)
    coupon = give_coupon(ctx, shop, "mj100-20")
    r = _paid_order(ctx, shop, points_used=500, coupon=coupon)
    assert r["payable_fen"] == 13000 - 2000 - 500 and r["points_earned"] == 105
    balance = points.balance(ctx, shop.brand.id, shop.member).total
    first = _refund(ctx, shop, "R-1", (1, 1))
    second = _refund(ctx, shop, "R-2", (1, 2))
    assert first["order_status"] == "partially_refunded" and first["coupons_returned"] == []
    last = _refund(ctx, shop, "R-3")  # the rest
    assert last["order_status"] == "refunded" and last["coupons_returned"] == [coupon]
    assert first["amount_fen"] + second["amount_fen"] + last["amount_fen"] == r["payable_fen"]
    reversed_ = sum(x["points_reversed"] for x in (first, second, last))
    returned = sum(x["points_returned"] for x in (first, second, last))
    assert (reversed_, returned) == (105, 500)
    after = points.balance(ctx, shop.brand.id, shop.member).total
    assert after == balance - 105 + 500 == 1000
    assert invariant(ctx, shop.member) == 1000
    with ctx.transaction() as conn:
        state = conn.execute(select(coupons.c.state).where(coupons.c.id == coupon)).scalar_one()
        sources = set(
            conn.execute(
                select(point_entries.c.source_ref).where(point_entries.c.kind == "reverse")
            ).scalars()
        )
    assert state == "issued" and sources == {"R-1", "R-2", "R-3"}
    with pytest.raises(Conflict) as err:
        _refund(ctx, shop, "R-4")
    assert err.value.code == "already_refunded"


def test_refund_is_idempotent_and_a_reused_number_is_refused(ctx: Context) -> None:
    shop = open_shop(ctx)
    _paid_order(ctx, shop)
    first = _refund(ctx, shop, "R-1", (2, 1))
    again = refunds.refund(
        ctx, shop.brand.id, RefundRequest(shop.store_a, "O-1", "R-1", "c01", (RefundLine(2, 1),))
    )
    assert again.replayed and again.receipt == first
    with pytest.raises(Conflict) as err:
        _refund(ctx, shop, "R-1", (1, 1))
    assert err.value.code == "refund_no_reused"
    with pytest.raises(Conflict) as err:
        _refund(ctx, shop, "R-2", (2, 1))
    assert err.value.code == "refund_exceeds_order"


@pytest.mark.parametrize("negative", [True, False])
def test_points_already_spent_go_negative_or_are_deducted(ctx: Context, negative: bool) -> None:
    shop = open_shop(ctx, negative=negative)
    r = _paid_order(ctx, shop)
    assert r["points_earned"] == 130
    points.spend(ctx, shop.brand.id, shop.member, 1130, points.Source("order", "X"))
    refund = _refund(ctx, shop, "R-1")
    if negative:
        assert refund["points_reversed"] == 130 and refund["deduction_fen"] == 0
        assert refund["amount_fen"] == 13000
        assert invariant(ctx, shop.member) == -130
    else:
        # 130 points at 100 points = 1 元 are worth 1.30 元, kept from the money.
        assert refund["points_reversed"] == 0 and refund["deduction_fen"] == 130
        assert refund["amount_fen"] == 13000 - 130
        assert invariant(ctx, shop.member) == 0
