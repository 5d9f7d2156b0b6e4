"""A unit-level benefit held to its discount budget keeps the rest of the unit's
price on the unit it consumes.

Found by the brute-force oracle: an item coupon whose template had 0.01 元 of
budget left, next to an item promotion on the same sku, was booked as taking the
unit at 0.01 off while leaving nothing held by it, so the promotion then saw the
other unit as worth both (2.02 元 saved on two units of 1.01 元).
"""

from __future__ import annotations

from datetime import datetime

from loyalpos.domain.pricing import model as m
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.eligibility import candidates
from loyalpos.domain.pricing.evaluation import evaluate
from loyalpos.domain.pricing.rules import Benefit, Kind, RuleSet, Stacking, ThresholdBase
from loyalpos.domain.pricing.starting import member_prices

NOW = datetime(2024, 6, 1, 12)


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
    amounts, _ = member_prices(rules, member, cart)
    order = {k.value: i for i, k in enumerate(rules.stacking.order)}
    s = SearchContext(rules, member, options, State.start(cart.lines, amounts), order)
    cands, _ = candidates(rules, member, cart, options, [])
    pair = evaluate(s, tuple(cands))
    # The coupon takes 0.01 off one unit (1.00 still held by it), the promotion the other.
    assert pair.saving == 1 + 101
    assert sorted(saved for _, saved in pair.own) == [1, 101]
    assert pair.state.amounts == [202 - 102]
    assert pair.state.held == [100]
