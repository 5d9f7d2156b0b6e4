"""A bug the brute-force oracle found (pre-existing, pinned until fixed).

An item coupon whose template has 0.01 元 of discount budget left, applied with an
item promotion on the same sku, is evaluated as saving the whole unit: the pair
comes to 2.02 元 on two units of 1.01 元, although the coupon may give only 0.01.
`quote()` itself did not choose the pair here (it priced 2.01 with the two
promotions), but a combination evaluated this way could win elsewhere, and the
oracle test, which compares with `evaluate`, sees the excess.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from loyalpos.domain.pricing import engine
from loyalpos.domain.pricing import model as m
from loyalpos.domain.pricing.rules import Benefit, Kind, RuleSet, Stacking, ThresholdBase

NOW = datetime(2024, 6, 1, 12)


@pytest.mark.xfail(strict=True, reason="known bug: see the module docstring")
def test_a_capped_item_coupon_stays_within_its_budget_next_to_an_item_promotion() -> None:
    coupon = Benefit(id="t3", name="t3", kind=Kind.ITEM, sku="s0", price=0)
    free = Benefit(id="p1", name="p1", kind=Kind.ITEM, sku="s0", price=0, promotion=True)
    rules = RuleSet(
        benefits=(coupon, free),
        stacking=Stacking(max_coupons=1, threshold_base=ThresholdBase.ORIGINAL),
    )
    member = m.MemberContext("normal", 0, False, (m.WalletCoupon("c00", "t3"),))
    cart = m.Cart("S1", NOW, (m.CartLine("s0", "a", 101, 2),))
    options = m.Options(budgets={"t3": m.Remaining(discount=1)})
    amounts, _ = engine._member_prices(rules, member, cart)
    order = {k.value: i for i, k in enumerate(rules.stacking.order)}
    s = engine._Search(rules, member, options, engine.State.start(cart.lines, amounts), order)
    cands, _ = engine._candidates(rules, member, cart, options, [])
    pair = engine.evaluate(s, tuple(cands))
    assert pair.saving <= 1 + 101
