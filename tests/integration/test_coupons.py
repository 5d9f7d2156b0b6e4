"""Coupon life cycle: issue with validity, wallet, expiry job, history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loyalpos.domain.errors import NotFound
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons
from loyalpos.service.till import checkout
from tests.conftest import Clock
from tests.integration.checkout_helpers import cart, confirm_request, open_shop

RULES = """
coupons:
  - {id: week, name: 7天券, kind: cash, amount_fen: 500, valid_days: 7}
  - {id: forever, name: 长期券, kind: cash, amount_fen: 300}
stacking: {max_coupons: 2}
"""


def test_valid_days_expiry_job_and_history(ctx: Context, clock: Clock) -> None:
    shop = open_shop(ctx, rules=RULES)
    week = coupons.issue_to_member(ctx, shop.brand.id, shop.member, "week")
    forever = coupons.issue_to_member(ctx, shop.brand.id, shop.member, "forever")
    assert week.expires_at == clock.now + timedelta(days=7) and forever.expires_at is None
    assert coupons.expire_coupons(ctx) == 0
    clock.now += timedelta(days=7, seconds=1)
    c = cart(shop.store_a, shop.member, ("latte", 3000, 1))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    assert [a.coupon_id for a in q.applied] == [str(forever.id)]
    assert coupons.expire_coupons(ctx) == 1
    assert coupons.expire_coupons(ctx) == 0
    assert [x.id for x in coupons.wallet(ctx, shop.brand.id, shop.member)] == [forever.id]
    assert [e["event"] for e in coupons.history(ctx, shop.brand.id, week.id)] == [
        "issued",
        "expired",
    ]
    checkout.confirm(ctx, shop.brand.id, confirm_request("E-1", c, 2700, coupon_ids=(forever.id,)))
    events = coupons.history(ctx, shop.brand.id, forever.id)
    assert [e["event"] for e in events] == ["issued", "used"]
    assert events[1]["store_id"] == shop.store_a


def test_unknown_template_is_refused(ctx: Context) -> None:
    shop = open_shop(ctx, rules=RULES)
    with pytest.raises(NotFound):
        coupons.issue_to_member(ctx, shop.brand.id, shop.member, "nope")
