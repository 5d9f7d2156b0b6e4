"""Issue 11, items 14 and 15, through checkout and refund: 第二件半价 when the
till sends one line per scan, and 满 N 件 on a coupon, booked and refunded."""

from __future__ import annotations

from loyalpos.service.base.context import Context
from loyalpos.service.till import checkout, refunds
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from tests.integration.checkout_helpers import (
    RULES,
    cart,
    confirm_request,
    give_coupon,
    open_shop,
)

MORE = """promotions:
  - {id: half, name: 第二件半价, kind: nth_discount, nth: 2, percent: 50,
     scope: {skus: [bun]}}
"""
COUNT = RULES.replace(
    "coupons:\n",
    "coupons:\n  - {id: three-80, name: 满3件8折, kind: percent, percent: 80, threshold_items: 3}\n",
)


def test_one_bun_per_line_is_booked_and_refunded_line_by_line(ctx: Context) -> None:
    shop = open_shop(ctx, rules=RULES + MORE)
    c = cart(shop.store_a, shop.member, ("bun", 800, 1), ("bun", 800, 1))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    assert q.payable == 1200
    r = checkout.confirm(ctx, shop.brand.id, confirm_request("O-1", c, q.payable)).receipt
    # The group's 4.00 is shared by its two buns, as within one line of 2.
    assert [x["payable_fen"] for x in r["lines"]] == [600, 600]
    assert r["applied"] == [
        {
            "coupon_id": None,
            "benefit": "half",
            "name": "第二件半价",
            "kind": "nth_discount",
            "saving_fen": 400,
        }
    ]
    # Either bun gives back 6.00, as one bun of a line of 2 does: returning the
    # first scan does not leave the customer a bun for 4.00.
    first = RefundRequest(shop.store_a, "O-1", "R-1", "c01", (RefundLine(1, 1),))
    assert refunds.refund(ctx, shop.brand.id, first).receipt["amount_fen"] == 600
    second = RefundRequest(shop.store_a, "O-1", "R-2", "c01", (RefundLine(2, 1),))
    assert refunds.refund(ctx, shop.brand.id, second).receipt["amount_fen"] == 600


def test_one_line_per_scan_refunds_as_one_line_of_the_same_buns(ctx: Context) -> None:
    """A refund of one bun gives back the same whether the till sent one line of 2
    or one line per scan (review of item 14)."""
    shop = open_shop(ctx, rules=RULES + MORE)
    back = []
    for n, lines in enumerate([[("bun", 800, 2)], [("bun", 800, 1), ("bun", 800, 1)]], start=1):
        c = cart(shop.store_a, shop.member, *lines)
        q = checkout.quote(ctx, shop.brand.id, c).priced.quote
        checkout.confirm(ctx, shop.brand.id, confirm_request(f"S-{n}", c, q.payable))
        one = RefundRequest(shop.store_a, f"S-{n}", f"SR-{n}", "c01", (RefundLine(1, 1),))
        back.append(refunds.refund(ctx, shop.brand.id, one).receipt["amount_fen"])
    assert back == [600, 600]


def test_a_count_threshold_coupon_is_explained_then_used(ctx: Context) -> None:
    shop = open_shop(ctx, rules=COUNT)
    coupon = give_coupon(ctx, shop, "three-80")
    two = cart(shop.store_a, shop.member, ("tee", 5000, 1), ("tee", 5000, 1))
    q = checkout.quote(ctx, shop.brand.id, two).priced.quote
    (why,) = [u for u in q.unusable if u.template == "three-80"]
    assert why.reason_code == "below_count_threshold"
    assert why.detail == {"shortfall_items": 1, "threshold_items": 3}
    three = cart(shop.store_a, shop.member, ("tee", 5000, 2), ("cap", 2000, 1))
    q = checkout.quote(ctx, shop.brand.id, three).priced.quote
    assert q.payable == 9600  # 120.00 at 80%
    r = checkout.confirm(
        ctx, shop.brand.id, confirm_request("O-2", three, q.payable, coupon_ids=(coupon,))
    ).receipt
    assert r["coupons_used"] == [coupon] and r["payable_fen"] == 9600
