"""Which coupons a refund gives back (issue 11, item 13): the pure decision
by each template's return policy, and the engine's word on whether what is left
of an order still meets a coupon's condition."""

from __future__ import annotations

from datetime import datetime

import pytest

from loyalpos.domain.checkout import UsedCoupon, coupon_returns, unmet_after_refund
from loyalpos.domain.pricing.model import Cart, CartLine, Unusable
from loyalpos.domain.pricing.rules import (
    Benefit,
    Kind,
    MemberPrices,
    ReturnPolicy,
    RuleSet,
    Scope,
    Stacking,
    ThresholdBase,
)

AT = datetime(2024, 6, 4, 12, 0)
MJ = Benefit("mj", "满200减50", Kind.THRESHOLD, threshold=20000, amount=5000)
FREE_TEA = Benefit("tea", "奶茶兑换券", Kind.ITEM, sku="tea", price=0)
RULES = RuleSet(benefits=(MJ, FREE_TEA), stacking=Stacking(max_coupons=2))


def left(*lines: tuple[str, int, int]) -> Cart:
    return Cart("S1", AT, tuple(CartLine(sku, "food", p, q) for sku, p, q in lines))


def used(
    policy: ReturnPolicy, *, held: bool = True, expired: bool = False, cid: int = 7
) -> UsedCoupon:
    return UsedCoupon(cid, "mj", "满200减50", policy, held, expired)


BROKEN = Unusable(
    "7", "mj", "below_threshold", "未满 200.00 元，还差 20.00 元", "spend 20.00 more to reach 200.00",
    {"shortfall_fen": 2000, "threshold_fen": 20000},
)  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "whole", "unmet", "returned", "code"),
    [
        (ReturnPolicy.FULL_REFUND, False, None, False, "kept_until_full_refund"),
        (ReturnPolicy.FULL_REFUND, False, BROKEN, False, "kept_until_full_refund"),
        (ReturnPolicy.FULL_REFUND, True, BROKEN, True, "returned_order_refunded"),
        (ReturnPolicy.THRESHOLD_BROKEN, False, None, False, "kept_threshold_met"),
        (ReturnPolicy.THRESHOLD_BROKEN, False, BROKEN, True, "returned_threshold_broken"),
        (ReturnPolicy.THRESHOLD_BROKEN, True, BROKEN, True, "returned_order_refunded"),
        (ReturnPolicy.NEVER, False, BROKEN, False, "kept_never_returned"),
        (ReturnPolicy.NEVER, True, BROKEN, False, "kept_never_returned"),
    ],
)
def test_each_policy_decides_on_a_partial_and_on_a_full_refund(
    policy: ReturnPolicy, whole: bool, unmet: Unusable | None, returned: bool, code: str
) -> None:
    (decided,) = coupon_returns([used(policy)], whole, {"7": unmet})
    assert (decided.returned, decided.code, decided.policy) == (returned, code, policy)
    assert decided.zh and decided.en and "满200减50" in decided.zh


def test_a_coupon_given_back_when_its_threshold_broke_says_by_how_much() -> None:
    (decided,) = coupon_returns([used(ReturnPolicy.THRESHOLD_BROKEN)], False, {"7": BROKEN})
    assert decided.zh == (
        "剩余商品不再满足「满200减50」的使用条件（未满 200.00 元，还差 20.00 元），券已退回券包"
    )
    assert decided.en == (
        "what is left of the order no longer meets the condition of 满200减50 "
        "(spend 20.00 more to reach 200.00): back in the wallet"
    )
    assert decided.detail == {
        "reason_code": "below_threshold",
        "shortfall_fen": 2000,
        "threshold_fen": 20000,
    }


@pytest.mark.parametrize("policy", list(ReturnPolicy))
def test_an_expired_coupon_or_one_given_back_before_is_not_given_back(
    policy: ReturnPolicy,
) -> None:
    expired, earlier = coupon_returns(
        [used(policy, expired=True, cid=7), used(policy, held=False, cid=8)],
        True,
        {"7": BROKEN, "8": BROKEN},
    )
    assert not expired.returned and not earlier.returned
    assert earlier.code == "already_returned"
    assert expired.code == (
        "kept_never_returned" if policy is ReturnPolicy.NEVER else "kept_expired"
    )


def test_what_is_left_meets_a_threshold_until_it_drops_below() -> None:
    coupons = [("7", "mj")]
    assert unmet_after_refund(RULES, left(("bag", 10000, 2)), None, coupons) == {"7": None}
    found = unmet_after_refund(RULES, left(("bag", 10000, 1), ("cap", 8000, 1)), None, coupons)
    assert found["7"] is not None
    assert found["7"].reason_code == "below_threshold"
    assert found["7"].detail == {"shortfall_fen": 2000, "threshold_fen": 20000}


def test_nothing_left_meets_no_coupon() -> None:
    found = unmet_after_refund(RULES, left(), None, [("7", "mj"), ("8", "tea")])
    assert {k: v.reason_code if v else None for k, v in found.items()} == {
        "7": "no_eligible_items",
        "8": "no_eligible_items",
    }


def test_an_item_coupon_is_unmet_once_its_item_is_returned() -> None:
    coupons = [("8", "tea")]
    assert unmet_after_refund(RULES, left(("tea", 1500, 1)), None, coupons) == {"8": None}
    found = unmet_after_refund(RULES, left(("bag", 30000, 1)), None, coupons)
    assert found["8"] is not None and found["8"].reason_code == "no_eligible_items"


def test_the_coupons_still_held_are_priced_together_in_the_order_they_applied() -> None:
    """The free tea applies first and lowers what 满200减50 sees (thresholds on
    discounted amounts): 180 + 2 × 15 − 15 is below 200; measured on original
    amounts (`threshold_base: original`) the same lines are 210."""
    coupons = [("8", "tea"), ("7", "mj")]
    rest = left(("bag", 18000, 1), ("tea", 1500, 2))
    found = unmet_after_refund(RULES, rest, None, coupons)
    assert found["8"] is None
    assert found["7"] is not None and found["7"].detail["shortfall_fen"] == 500
    on_original = RuleSet(
        benefits=(MJ, FREE_TEA),
        stacking=Stacking(max_coupons=2, threshold_base=ThresholdBase.ORIGINAL),
    )
    assert unmet_after_refund(on_original, rest, None, coupons) == {"8": None, "7": None}


def test_the_tier_the_order_was_priced_with_counts_member_prices_and_not_a_tier_scope() -> None:
    """A gold member price lowers the amount the threshold sees; a coupon for
    another tier is not "unmet" by the lines (its tier held when it was booked)."""
    gold_only = Benefit("g", "金卡券", Kind.CASH, amount=1000, scope=Scope(tiers=frozenset({"x"})))
    rules = RuleSet(
        benefits=(MJ, gold_only),
        member_prices=MemberPrices(tier_percent={"gold": 9000}),
        stacking=Stacking(max_coupons=2),
    )
    cart = left(("bag", 21000, 1))
    assert unmet_after_refund(rules, cart, None, [("7", "mj")]) == {"7": None}
    priced_gold = unmet_after_refund(rules, cart, "gold", [("7", "mj"), ("9", "g")])
    assert priced_gold["7"] is not None and priced_gold["7"].detail["shortfall_fen"] == 1100
    assert priced_gold["9"] is None


def test_a_count_threshold_breaks_when_a_refund_leaves_too_few_items() -> None:
    """满2件减10 (issue 11 item 15) under `threshold_broken`: the count is the
    engine's own check, so a refund that leaves one item breaks it."""
    two_for_ten = Benefit("n2", "满2件减10", Kind.THRESHOLD, threshold_items=2, amount=1000)
    rules = RuleSet(benefits=(two_for_ten,))
    coupons = [("9", "n2")]
    assert unmet_after_refund(rules, left(("bun", 800, 2)), None, coupons) == {"9": None}
    found = unmet_after_refund(rules, left(("bun", 800, 1)), None, coupons)["9"]
    assert found is not None and found.reason_code == "below_count_threshold"
    assert found.detail == {"shortfall_items": 1, "threshold_items": 2}
    (decided,) = coupon_returns(
        [UsedCoupon(9, "n2", "满2件减10", ReturnPolicy.THRESHOLD_BROKEN, True, False)],
        False,
        {"9": found},
    )
    assert decided.returned and decided.code == "returned_threshold_broken"
    assert "还差 1 件" in decided.zh
