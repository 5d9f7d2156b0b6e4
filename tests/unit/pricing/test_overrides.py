"""Cashier overrides (force, exclude, skip all), the two strategies, the
tie-breaks and determinism of the choice."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from fractions import Fraction

import pytest

from loyalpos.domain.pricing.model import (
    CartLine,
    MemberContext,
    Options,
    PointsRequest,
    Quote,
    Strategy,
    WalletCoupon,
)
from loyalpos.domain.pricing.rules import (
    Benefit,
    EarnKind,
    EarnRule,
    Kind,
    MemberPrices,
    PointsOffset,
    RuleSet,
    Stacking,
)
from tests.unit.pricing.builders import (
    TUESDAY_NOON,
    applied_ids,
    cart,
    check_sums,
    coupon,
    line,
    member,
    price,
    rules,
    unusable,
)

MJ = Benefit("mj", "满200减50", Kind.THRESHOLD, threshold=20000, amount=5000)
P90 = Benefit("p90", "9折券", Kind.PERCENT, percent=9000)
NOT_TOGETHER = Stacking(max_coupons=2, forbidden_pairs=(("threshold", "percent"),))


def note(q: Quote, code: str) -> tuple[str, str, dict[str, object]]:
    """(中文, English, detail) of the explanation's one note with `code`."""
    (found,) = [n for n in q.explanation if n.code == code]
    return found.zh, found.en, found.detail


def exclusive_choice() -> tuple[RuleSet, MemberContext]:
    return rules(MJ, P90, stacking=NOT_TOGETHER), member(coupon("C1", "mj"), coupon("C2", "p90"))


# Force


def test_a_forced_coupon_is_used_even_when_another_would_save_more() -> None:
    r, m = exclusive_choice()
    best = price(r, cart(line("a", 60000)), m)
    assert applied_ids(best) == ["C2"]
    forced = price(r, cart(line("a", 60000)), m, Options(force=("C1",)))
    assert applied_ids(forced) == ["C1"]
    assert forced.discount == 5000
    assert note(forced, "coupon_forced") == (
        "收银员指定使用「满200减50」",
        "the cashier chose 满200减50",
        {"coupon_id": "C1"},
    )


def test_a_coupon_in_conflict_with_a_forced_one_names_it() -> None:
    r, m = exclusive_choice()
    q = price(r, cart(line("a", 60000)), m, Options(force=("C1",)))
    why = unusable(q, "C2")
    assert why.reason_code == "conflicts_with_chosen"
    assert why.detail == {"conflicts_with": "C1"}
    assert "满200减50" in why.message_zh
    assert "满200减50" in why.message_en


def test_the_search_still_adds_what_goes_with_a_forced_coupon() -> None:
    v = Benefit("v", "5元券", Kind.CASH, amount=500)
    r = rules(
        MJ, P90, v, stacking=Stacking(max_coupons=3, forbidden_pairs=NOT_TOGETHER.forbidden_pairs)
    )
    m = member(coupon("C1", "mj"), coupon("C2", "p90"), coupon("C3", "v"))
    q = price(r, cart(line("a", 60000)), m, Options(force=("C1",)))
    assert sorted(applied_ids(q)) == ["C1", "C3"]


def test_two_forced_coupons_that_conflict_keep_the_first_and_explain_the_second() -> None:
    r, m = exclusive_choice()
    q = price(r, cart(line("a", 60000)), m, Options(force=("C1", "C2")))
    assert applied_ids(q) == ["C1"]
    assert unusable(q, "C2").reason_code == "conflicts_with_chosen"
    assert note(q, "forced_coupon_conflict") == (
        "指定的「9折券」与另一张指定的券不可同时使用：与已选优惠「满200减50」不可同时使用",
        "the chosen 9折券 cannot go with another chosen coupon: "
        "cannot be combined with the chosen '满200减50'",
        {"coupon_id": "C2", "reason_code": "conflicts_with_chosen"},
    )


def test_a_forced_coupon_that_cannot_apply_says_why_and_is_not_used() -> None:
    r, m = exclusive_choice()
    q = price(r, cart(line("a", 19000)), m, Options(force=("C1",)))
    assert "C1" not in applied_ids(q)
    assert [u.reason_code for u in q.unusable if u.coupon_id == "C1"][0] == "below_threshold"
    assert note(q, "forced_coupon_unusable") == (
        "指定的「满200减50」不可用：未满 200.00 元，还差 10.00 元",
        "the chosen 满200减50 cannot be used: spend 10.00 more to reach 200.00",
        {"coupon_id": "C1", "reason_code": "below_threshold"},
    )


def test_a_forced_coupon_that_cannot_apply_is_listed_once() -> None:
    r, m = exclusive_choice()
    q = price(r, cart(line("a", 19000)), m, Options(force=("C1",)))
    assert [u.coupon_id for u in q.unusable].count("C1") == 1


def test_forcing_the_same_coupon_twice_is_the_same_as_forcing_it_once() -> None:
    r, m = exclusive_choice()
    once = price(r, cart(line("a", 60000)), m, Options(force=("C1",)))
    twice = price(r, cart(line("a", 60000)), m, Options(force=("C1", "C1")))
    assert twice.applied == once.applied
    assert twice.unusable == once.unusable


def test_forcing_an_expired_coupon_is_explained_not_obeyed() -> None:
    r = rules(MJ)
    old = WalletCoupon("C1", "mj", expires_at=TUESDAY_NOON - timedelta(days=1))
    q = price(r, cart(line("a", 30000)), member(old), Options(force=("C1",)))
    assert q.applied == ()
    assert unusable(q, "C1").reason_code == "expired"
    assert note(q, "forced_coupon_unusable") == (
        "指定的「满200减50」不可用：券已于 2024-06-03 12:00 过期",
        "the chosen 满200减50 cannot be used: coupon expired on 2024-06-03 12:00",
        {"coupon_id": "C1", "reason_code": "expired"},
    )


def test_forcing_a_coupon_the_member_does_not_hold_says_so() -> None:
    q = price(rules(MJ), cart(line("a", 30000)), member(), Options(force=("C9",)))
    assert q.applied == ()
    assert note(q, "forced_coupon_unusable") == (
        "指定的券 C9 不在会员的券包中",
        "the chosen coupon C9 is not in the member's wallet",
        {"coupon_id": "C9", "reason_code": "not_in_wallet"},
    )


# Exclude and skip all


def test_an_excluded_coupon_is_not_used_and_says_the_cashier_excluded_it() -> None:
    r, m = exclusive_choice()
    q = price(r, cart(line("a", 60000)), m, Options(exclude=("C2",)))
    assert applied_ids(q) == ["C1"]
    why = unusable(q, "C2")
    assert (why.reason_code, why.message_zh, why.message_en) == (
        "excluded_by_cashier",
        "收银员已取消使用此券",
        "excluded by the cashier",
    )


def test_skipping_all_benefits_uses_no_coupon_promotion_member_price_or_points() -> None:
    promo = Benefit("promo", "立减5元", Kind.CASH, amount=500, promotion=True)
    r = RuleSet(
        benefits=(MJ, promo),
        member_prices=MemberPrices(tier_percent={"gold": 9500}),
        points_offset=PointsOffset(enabled=True, cap_percent=2000),
        earn=(EarnRule("base", EarnKind.BASE, rate=Fraction(1, 100)),),
    )
    m = member(coupon("C1", "mj"), tier="gold", points=10000)
    q = price(r, cart(line("a", 30000)), m, Options(points=PointsRequest.MAX, skip_all=True))
    assert (q.discount, q.points_redeemed, q.payable) == (0, 0, 30000)
    assert q.applied == ()
    why = unusable(q, "C1")
    assert (why.reason_code, why.message_zh, why.message_en) == (
        "benefits_skipped",
        "本单暂不使用权益",
        "benefits skipped for this order",
    )
    assert note(q, "benefits_skipped")[:2] == (
        "本单暂不使用权益",
        "benefits skipped for this order",
    )
    assert q.points_earned == 300  # earning is not a benefit the cashier skips


def test_without_skip_all_the_same_order_gets_its_benefits() -> None:
    promo = Benefit("promo", "立减5元", Kind.CASH, amount=500, promotion=True)
    r = RuleSet(benefits=(MJ, promo), member_prices=MemberPrices(tier_percent={"gold": 9500}))
    q = price(r, cart(line("a", 30000)), member(coupon("C1", "mj"), tier="gold"))
    assert q.discount == 1500 + 500 + 5000


# Strategies and tie-breaks

JUNE_10 = datetime(2024, 6, 10)
DECEMBER = datetime(2024, 12, 31)


def two_cash_coupons() -> tuple[RuleSet, MemberContext]:
    soon = Benefit("v10", "10元券", Kind.CASH, amount=1000)
    later = Benefit("v30", "30元券", Kind.CASH, amount=3000)
    m = member(WalletCoupon("SOON", "v10", JUNE_10), WalletCoupon("LATER", "v30", DECEMBER))
    return rules(soon, later), m


def test_max_saving_uses_the_coupon_that_saves_most() -> None:
    r, m = two_cash_coupons()
    q = price(r, cart(line("a", 10000)), m)
    assert applied_ids(q) == ["LATER"]
    assert unusable(q, "SOON").reason_code == "limit_reached"


def test_earliest_expiry_uses_the_coupon_that_expires_soonest() -> None:
    r, m = two_cash_coupons()
    q = price(r, cart(line("a", 10000)), m, Options(strategy=Strategy.EARLIEST_EXPIRY))
    assert applied_ids(q) == ["SOON"]
    assert q.discount == 1000
    assert "strategy_earliest_expiry" in [n.code for n in q.explanation]


def test_earliest_expiry_skips_a_soon_coupon_that_is_not_usable() -> None:
    soon = Benefit("mj", "满200减50", Kind.THRESHOLD, threshold=20000, amount=5000)
    later = Benefit("v30", "30元券", Kind.CASH, amount=3000)
    m = member(WalletCoupon("SOON", "mj", JUNE_10), WalletCoupon("LATER", "v30", DECEMBER))
    q = price(
        rules(soon, later), cart(line("a", 10000)), m, Options(strategy=Strategy.EARLIEST_EXPIRY)
    )
    assert applied_ids(q) == ["LATER"]
    assert unusable(q, "SOON").reason_code == "below_threshold"


def test_equal_savings_prefer_the_coupon_that_expires_first() -> None:
    a = Benefit("a", "甲", Kind.CASH, amount=1000)
    b = Benefit("b", "乙", Kind.CASH, amount=1000)
    m = member(WalletCoupon("A", "a", DECEMBER), WalletCoupon("B", "b", JUNE_10))
    assert applied_ids(price(rules(a, b), cart(line("x", 5000)), m)) == ["B"]


def test_a_coupon_with_no_expiry_counts_as_expiring_last() -> None:
    a = Benefit("a", "甲", Kind.CASH, amount=1000)
    m = member(WalletCoupon("A", "a", None), WalletCoupon("B", "a", DECEMBER))
    assert applied_ids(price(rules(a), cart(line("x", 5000)), m)) == ["B"]


def test_equal_savings_prefer_fewer_coupons() -> None:
    v20 = Benefit("v20", "20元", Kind.CASH, amount=2000)
    v10 = Benefit("v10", "10元", Kind.CASH, amount=1000)
    m = member(
        WalletCoupon("BIG", "v20", DECEMBER),
        WalletCoupon("S1", "v10", DECEMBER),
        WalletCoupon("S2", "v10", DECEMBER),
    )
    r = rules(v20, replace(v10, max_per_order=2), max_coupons=3)
    # 20 元 of cart: one 20 元 coupon or two 10 元 coupons save the same.
    assert applied_ids(price(r, cart(line("x", 2000)), m)) == ["BIG"]


def test_equal_savings_and_expiry_fall_back_to_the_coupon_id() -> None:
    a = Benefit("a", "甲", Kind.CASH, amount=1000)
    m = member(WalletCoupon("Z9", "a", DECEMBER), WalletCoupon("A1", "a", DECEMBER))
    assert applied_ids(price(rules(a), cart(line("x", 5000)), m)) == ["A1"]


def test_a_percent_coupon_that_would_break_a_chosen_threshold_is_not_called_below_threshold() -> (
    None
):
    q = price(
        rules(MJ, P90, max_coupons=2),
        cart(line("a", 21000)),
        member(coupon("M", "mj"), coupon("P", "p90")),
    )
    assert applied_ids(q) == ["M"]
    assert unusable(q, "P").reason_code != "below_threshold"


# Determinism


def rich_case() -> tuple[RuleSet, MemberContext, Options]:
    benefits = (
        MJ,
        P90,
        Benefit("v10", "10元", Kind.CASH, amount=1000, with_points=True, max_per_order=2),
        Benefit("free", "兑换券", Kind.ITEM, sku="coffee"),
        Benefit("2nd", "第二件半价", Kind.NTH_DISCOUNT, promotion=True, percent=5000),
    )
    r = RuleSet(
        benefits=benefits,
        stacking=Stacking(max_coupons=3, forbidden_pairs=(("threshold", "percent"),)),
        points_offset=PointsOffset(enabled=True, cap_percent=2000),
        earn=(EarnRule("base", EarnKind.BASE, rate=Fraction(1, 100)),),
    )
    wallet = [
        WalletCoupon(f"C{i}", template, DECEMBER - timedelta(days=i % 3))
        for i, template in enumerate(["mj", "p90", "v10", "v10", "free", "mj", "p90", "v10"])
    ]
    return r, member(*wallet, points=5000), Options(points=PointsRequest.MAX)


def rich_cart() -> tuple[CartLine, ...]:
    return (line("coffee", 2800, 2), line("tee", 9900, 3), line("cap", 4500))


def test_the_same_input_gives_the_same_quote() -> None:
    r, m, o = rich_case()
    first = price(r, cart(*rich_cart()), m, o)
    second = price(r, cart(*rich_cart()), m, o)
    assert first == second
    check_sums(first)


@pytest.mark.parametrize("seed", range(5))
def test_the_order_of_the_wallet_does_not_change_the_choice(seed: int) -> None:
    r, m, o = rich_case()
    reference = price(r, cart(*rich_cart()), m, o)
    shuffled = list(m.wallet)
    random.Random(seed).shuffle(shuffled)
    q = price(r, cart(*rich_cart()), member(*shuffled, points=m.points), o)
    assert q.applied == reference.applied
    assert q.unusable == reference.unusable
    assert q.payable == reference.payable
