"""Each benefit kind through `quote()`, with hand-built domain objects, and the
order in which kinds apply (item-level before order-level, as data)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from fractions import Fraction

import pytest

from loyalpos.domain.pricing.model import Options, PointsRequest
from loyalpos.domain.pricing.rules import (
    Benefit,
    EarnKind,
    EarnRule,
    Kind,
    MemberPrices,
    PointsOffset,
    PointsRounding,
    Scope,
    Stacking,
    ThresholdBase,
    TimeWindow,
)
from tests.unit.pricing.builders import (
    applied,
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


def stepped(cap: int | None = 5000) -> Benefit:
    """每满 200 减 20, at most 50 元."""
    return Benefit(
        "step", "每满200减20", Kind.THRESHOLD, threshold=20000, step=20000, amount=2000, cap=cap
    )


def percent80(threshold: int = 10000, cap: int | None = 3000) -> Benefit:
    """8折 on spend ≥ 100 元, saving at most 30 元."""
    return Benefit("p80", "8折券", Kind.PERCENT, percent=8000, threshold=threshold, cap=cap)


# 满减, stepped


def test_stepped_threshold_takes_twenty_per_full_200_yuan() -> None:
    q = price(rules(stepped()), cart(line("a", 45000)), member(coupon("C", "step")))
    assert applied(q, "C").saving == 4000
    assert q.payable == 41000
    check_sums(q)


def test_stepped_threshold_saving_stops_at_its_cap() -> None:
    q = price(rules(stepped()), cart(line("a", 65000)), member(coupon("C", "step")))
    assert applied(q, "C").saving == 5000  # three steps would be 60 元


def test_stepped_threshold_without_a_cap_keeps_counting_steps() -> None:
    q = price(rules(stepped(cap=None)), cart(line("a", 65000)), member(coupon("C", "step")))
    assert applied(q, "C").saving == 6000


def test_stepped_threshold_below_the_first_step_says_how_much_is_missing() -> None:
    q = price(rules(stepped()), cart(line("a", 19900)), member(coupon("C", "step")))
    why = unusable(q, "C")
    assert why.reason_code == "below_threshold"
    assert why.detail == {"shortfall_fen": 100, "threshold_fen": 20000}
    assert why.message_zh == "未满 200.00 元，还差 1.00 元"
    assert why.message_en == "spend 1.00 more to reach 200.00"


def test_plain_threshold_coupon_takes_its_amount_once_however_large_the_cart() -> None:
    t = Benefit("mj", "满200减50", Kind.THRESHOLD, threshold=20000, amount=5000)
    q = price(rules(t), cart(line("a", 90000)), member(coupon("C", "mj")))
    assert applied(q, "C").saving == 5000


# 折扣


def test_percent_coupon_pays_the_percentage_of_the_eligible_amount() -> None:
    q = price(rules(percent80()), cart(line("a", 10000)), member(coupon("C", "p80")))
    assert applied(q, "C").saving == 2000
    assert q.payable == 8000


def test_percent_coupon_saving_stops_at_its_cap() -> None:
    q = price(rules(percent80()), cart(line("a", 20000)), member(coupon("C", "p80")))
    assert applied(q, "C").saving == 3000


def test_percent_coupon_with_a_threshold_is_refused_below_it() -> None:
    q = price(rules(percent80()), cart(line("a", 9999)), member(coupon("C", "p80")))
    assert q.applied == ()
    assert unusable(q, "C").detail["shortfall_fen"] == 1


def test_percent_rounds_what_is_paid_half_up_to_the_fen() -> None:
    p = Benefit("p", "88.5折", Kind.PERCENT, percent=8850)
    # 1001 × 88.5% = 885.885 → pays 886, saves 115.
    q = price(rules(p), cart(line("a", 1001)), member(coupon("C", "p")))
    assert q.payable == 886
    assert applied(q, "C").saving == 115


# 代金券


def test_cash_voucher_never_takes_the_cart_below_zero() -> None:
    v = Benefit("v50", "50元代金券", Kind.CASH, amount=5000)
    q = price(rules(v), cart(line("a", 1800), line("b", 1200)), member(coupon("V", "v50")))
    assert applied(q, "V").saving == 3000
    assert q.payable == 0
    assert [x.payable for x in q.lines] == [0, 0]
    check_sums(q)


def test_cash_voucher_has_no_threshold() -> None:
    v = Benefit("v5", "5元代金券", Kind.CASH, amount=500)
    q = price(rules(v), cart(line("a", 600)), member(coupon("V", "v5")))
    assert q.payable == 100


# 兑换券 / 商品券


def test_item_coupon_makes_one_unit_of_its_item_free() -> None:
    free = Benefit("coffee", "咖啡兑换券", Kind.ITEM, sku="coffee", price=0)
    q = price(
        rules(free),
        cart(line("coffee", 2500, qty=2), line("cake", 3000)),
        member(coupon("K", "coffee")),
    )
    assert applied(q, "K").saving == 2500
    assert [x.discount for x in q.lines] == [2500, 0]


def test_item_coupon_can_set_a_price_instead_of_free() -> None:
    deal = Benefit("coffee990", "9.9元咖啡", Kind.ITEM, sku="coffee", price=990)
    q = price(rules(deal), cart(line("coffee", 2500)), member(coupon("K", "coffee990")))
    assert q.payable == 990


def test_item_coupon_without_its_item_in_the_cart_has_no_eligible_items() -> None:
    free = Benefit("coffee", "咖啡兑换券", Kind.ITEM, sku="coffee", price=0)
    q = price(rules(free), cart(line("tea", 1500)), member(coupon("K", "coffee")))
    why = unusable(q, "K")
    assert why.reason_code == "no_eligible_items"
    assert why.message_zh == "购物车中没有 coffee"
    assert why.message_en == "needs coffee in the cart"


def test_item_coupon_dearer_than_the_item_is_not_spent() -> None:
    deal = Benefit("coffee30", "30元咖啡", Kind.ITEM, sku="coffee", price=3000)
    q = price(rules(deal), cart(line("coffee", 2500)), member(coupon("K", "coffee30")))
    assert q.applied == ()
    assert unusable(q, "K").reason_code == "no_extra_saving"


def test_item_coupon_by_category_frees_the_dearest_unit_in_scope() -> None:
    any_drink = Benefit(
        "drink", "任意饮品", Kind.ITEM, scope=Scope(categories=frozenset({"drinks"}))
    )
    q = price(
        rules(any_drink),
        cart(
            line("tea", 1500, category="drinks"),
            line("latte", 3200, category="drinks"),
            line("steak", 9000, category="food"),
        ),
        member(coupon("K", "drink")),
    )
    assert [x.discount for x in q.lines] == [0, 3200, 0]


# 套餐券


def combo() -> Benefit:
    return Benefit(
        "combo", "汉堡套餐", Kind.BUNDLE, bundle=("burger", "fries", "drink"), price=3000
    )


def test_bundle_prices_one_of_each_item_together() -> None:
    q = price(
        rules(combo()),
        cart(line("burger", 2500), line("fries", 1000), line("drink", 1000)),
        member(coupon("B", "combo")),
    )
    assert applied(q, "B").saving == 1500
    assert q.payable == 3000
    assert [x.discount for x in q.lines] == [834, 333, 333]
    check_sums(q)


def test_bundle_discounts_only_one_unit_of_each_line() -> None:
    q = price(
        rules(combo()),
        cart(line("burger", 2500, qty=2), line("fries", 1000), line("drink", 1000)),
        member(coupon("B", "combo")),
    )
    assert q.payable == 3000 + 2500


def test_bundle_missing_an_item_names_it() -> None:
    q = price(
        rules(combo()),
        cart(line("burger", 2500), line("fries", 1000)),
        member(coupon("B", "combo")),
    )
    why = unusable(q, "B")
    assert why.reason_code == "no_eligible_items"
    assert why.detail == {"missing": "drink"}


# 第二件半价 (a promotion)


def second_half_price() -> Benefit:
    return Benefit("2nd", "第二件半价", Kind.NTH_DISCOUNT, promotion=True, nth=2, percent=5000)


def test_second_item_half_price_discounts_every_second_unit_of_a_line() -> None:
    q = price(rules(second_half_price()), cart(line("tee", 6000, qty=4), line("cap", 2000)))
    assert applied(q, "2nd").saving == 6000
    assert applied(q, "2nd").coupon_id is None
    assert [x.discount for x in q.lines] == [6000, 0]


def test_second_item_half_price_needs_two_units_of_the_same_sku() -> None:
    q = price(rules(second_half_price()), cart(line("tee", 6000), line("cap", 6000)))
    assert q.applied == ()
    assert q.payable == 12000
    (note,) = [n for n in q.explanation if n.code == "promotion_not_applicable"]
    assert note.detail == {"promotion": "2nd", "reason_code": "no_eligible_items"}
    assert note.zh == "促销「第二件半价」不适用：适用商品不足 2 件"


def test_second_item_half_price_with_an_odd_count_leaves_the_last_unit_alone() -> None:
    q = price(rules(second_half_price()), cart(line("tee", 6000, qty=3)))
    assert q.discount == 3000


# 买 N 免 1 (a promotion)


def buy_3_free_1() -> Benefit:
    return Benefit("b3f1", "买三免一", Kind.BUY_N_FREE, promotion=True, n=3)


def test_buy_three_frees_the_cheapest_unit_across_lines() -> None:
    q = price(rules(buy_3_free_1()), cart(line("a", 3000), line("b", 1000), line("c", 2000)))
    assert [x.discount for x in q.lines] == [0, 1000, 0]
    assert q.payable == 5000


def test_buy_three_groups_units_dearest_first_for_the_customer() -> None:
    # 60, 50, 40 | 30, 20, 10 → the 40 and the 10 are free.
    prices = [1000, 6000, 3000, 5000, 2000, 4000]
    q = price(rules(buy_3_free_1()), cart(*(line(f"s{p}", p) for p in prices)))
    assert q.discount == 5000
    assert [x.discount for x in q.lines] == [1000, 0, 0, 0, 0, 4000]


def test_buy_three_counts_units_within_one_line() -> None:
    q = price(rules(buy_3_free_1()), cart(line("sock", 1500, qty=7)))
    assert q.discount == 3000


# Order of application


def test_percent_applies_before_cash_by_default() -> None:
    half = Benefit("half", "5折", Kind.PERCENT, percent=5000)
    v10 = Benefit("v10", "10元", Kind.CASH, amount=1000)
    q = price(
        rules(half, v10, max_coupons=2),
        cart(line("a", 10000)),
        member(coupon("P", "half"), coupon("V", "v10")),
    )
    assert [a.coupon_id for a in q.applied] == ["P", "V"]
    assert q.discount == 6000  # 100 → 50 → 40


def test_the_order_of_kinds_is_data() -> None:
    half = Benefit("half", "5折", Kind.PERCENT, percent=5000)
    v10 = Benefit("v10", "10元", Kind.CASH, amount=1000)
    cash_first = Stacking(max_coupons=2, order=(Kind.CASH, Kind.PERCENT))
    q = price(
        rules(half, v10, stacking=cash_first),
        cart(line("a", 10000)),
        member(coupon("P", "half"), coupon("V", "v10")),
    )
    assert [a.coupon_id for a in q.applied] == ["V", "P"]
    assert q.discount == 5500  # 100 → 90 → 45


def test_item_level_benefits_apply_before_order_level_ones() -> None:
    deal = Benefit("coffee10", "10元咖啡", Kind.ITEM, sku="coffee", price=1000)
    half = Benefit("half", "5折", Kind.PERCENT, percent=5000)
    q = price(
        rules(deal, half, max_coupons=2),
        cart(line("coffee", 2500), line("cake", 8000)),
        member(coupon("P", "half"), coupon("K", "coffee10")),
    )
    # coffee 25 → 10 first, then half of (10 + 80): 15 + 45 = 60 saved.
    assert [a.kind for a in q.applied] == ["item", "percent"]
    assert applied(q, "K").saving == 1500
    assert applied(q, "P").saving == 4500
    check_sums(q)


def test_two_stacked_percentages_multiply() -> None:
    p90 = Benefit("p90", "9折", Kind.PERCENT, percent=9000)
    p80 = Benefit("p80", "8折", Kind.PERCENT, percent=8000)
    q = price(
        rules(p90, p80, max_coupons=2),
        cart(line("a", 10000)),
        member(coupon("A", "p90"), coupon("B", "p80")),
    )
    assert q.payable == 7200  # 72%, not 70%


def test_higher_priority_applies_first_within_a_kind() -> None:
    v10 = Benefit("v10", "10元", Kind.CASH, amount=1000)
    v20 = Benefit("v20", "20元", Kind.CASH, amount=2000, priority=5)
    q = price(
        rules(v10, v20, max_coupons=2),
        cart(line("a", 10000)),
        member(coupon("A", "v10"), coupon("B", "v20")),
    )
    assert [a.coupon_id for a in q.applied] == ["B", "A"]


# Threshold measured on the original or the discounted amount


def threshold_and_percent(base: ThresholdBase | None = None) -> tuple[Benefit, Benefit]:
    mj = Benefit(
        "mj", "满200减50", Kind.THRESHOLD, threshold=20000, amount=5000, threshold_base=base
    )
    return mj, Benefit("p90", "9折", Kind.PERCENT, percent=9000)


def test_on_the_discounted_amount_a_percent_coupon_can_push_a_threshold_out_of_reach() -> None:
    mj, p90 = threshold_and_percent()
    q = price(
        rules(mj, p90, max_coupons=2),
        cart(line("a", 21000)),
        member(coupon("M", "mj"), coupon("P", "p90")),
    )
    # 210 × 90% = 189 < 200: they cannot go together; the 满减 alone saves more.
    assert applied_ids(q) == ["M"]
    assert q.discount == 5000


def test_on_the_original_amount_the_threshold_still_counts_after_a_percent() -> None:
    mj, p90 = threshold_and_percent()
    original = Stacking(max_coupons=2, threshold_base=ThresholdBase.ORIGINAL)
    q = price(
        rules(mj, p90, stacking=original),
        cart(line("a", 21000)),
        member(coupon("M", "mj"), coupon("P", "p90")),
    )
    assert sorted(applied_ids(q)) == ["M", "P"]
    assert q.discount == 2100 + 5000


def test_a_benefit_can_override_the_threshold_base_for_itself() -> None:
    mj, p90 = threshold_and_percent(ThresholdBase.ORIGINAL)
    q = price(
        rules(mj, p90, max_coupons=2),
        cart(line("a", 21000)),
        member(coupon("M", "mj"), coupon("P", "p90")),
    )
    assert q.discount == 7100


def test_the_original_amount_is_before_member_prices_too() -> None:
    mj, _ = threshold_and_percent(ThresholdBase.ORIGINAL)
    gold = MemberPrices(tier_percent={"gold": 9000})
    r = rules(mj, member_prices=gold)
    q = price(r, cart(line("a", 21000)), member(coupon("M", "mj"), tier="gold"))
    assert applied(q, "M").saving == 5000
    discounted = rules(replace(mj, threshold_base=None), member_prices=gold)
    q2 = price(discounted, cart(line("a", 21000)), member(coupon("M", "mj"), tier="gold"))
    assert unusable(q2, "M").detail["shortfall_fen"] == 1100


def test_points_multiplier_of_a_chosen_coupon_multiplies_points_earned() -> None:
    double = Benefit(
        "mj2x", "满200减50+双倍积分", Kind.THRESHOLD, threshold=20000, amount=5000,
        points_multiplier=Fraction(2),
    )  # fmt: skip
    base = EarnRule("base", EarnKind.BASE, rate=Fraction(1, 100))
    q = price(rules(double, earn=(base,)), cart(line("a", 25000)), member(coupon("C", "mj2x")))
    assert q.points_earned == 400


# Earning on what is paid

BASE_1_PER_YUAN = EarnRule("base", EarnKind.BASE, rate=Fraction(1, 100))


def test_points_are_earned_on_what_is_paid_after_coupons_and_points() -> None:
    v = Benefit("v", "20元", Kind.CASH, amount=2000, with_points=True)
    r = rules(
        v, earn=(BASE_1_PER_YUAN,), points_offset=PointsOffset(enabled=True, cap_percent=1000)
    )
    q = price(
        r,
        cart(line("a", 30000)),
        member(coupon("C", "v"), points=10000),
        Options(points=PointsRequest.MAX),
    )
    assert (q.points_redeemed, q.payable, q.points_earned) == (2800, 25200, 252)


def test_excluded_items_earn_nothing() -> None:
    gift_cards = EarnRule("x", EarnKind.EXCLUDE, scope=Scope(categories=frozenset({"gift"})))
    q = price(
        rules(earn=(BASE_1_PER_YUAN, gift_cards)),
        cart(line("tea", 5000), line("card", 10000, category="gift")),
    )
    assert [x.points_earned for x in q.lines] == [50, 0]


@pytest.mark.parametrize(
    ("mode", "points"),
    [(PointsRounding.FLOOR, 12), (PointsRounding.ROUND, 13), (PointsRounding.CEIL, 13)],
)
def test_points_round_once_by_the_rule_sets_setting(mode: PointsRounding, points: int) -> None:
    q = price(rules(earn=(BASE_1_PER_YUAN,), points_rounding=mode), cart(line("a", 1250)))
    assert q.points_earned == points


def test_the_best_time_multiplier_applies_not_their_product() -> None:
    weekend = EarnRule(
        "w", EarnKind.TIME_MULTIPLIER, multiplier=Fraction(2),
        scope=Scope(window=TimeWindow(weekdays=frozenset({6, 7}))),
    )  # fmt: skip
    holiday = EarnRule(
        "h", EarnKind.TIME_MULTIPLIER, multiplier=Fraction(3),
        scope=Scope(window=TimeWindow(dates=frozenset({date(2024, 6, 8)}))),
    )  # fmt: skip
    r = rules(earn=(BASE_1_PER_YUAN, weekend, holiday))
    assert price(r, cart(line("a", 10000), at=datetime(2024, 6, 8, 10))).points_earned == 300
    assert price(r, cart(line("a", 10000), at=datetime(2024, 6, 9, 10))).points_earned == 200


def test_a_first_order_bonus_is_added_once_for_a_first_order() -> None:
    bonus = EarnRule("first", EarnKind.FIRST_ORDER_BONUS, points=100)
    r = rules(earn=(BASE_1_PER_YUAN, bonus))
    assert price(r, cart(line("a", 1000)), member(first_order=True)).points_earned == 110
    assert price(r, cart(line("a", 1000)), member(first_order=False)).points_earned == 10


def test_a_bonus_on_a_cart_that_pays_nothing_is_still_split_over_the_lines() -> None:
    bonus = EarnRule("first", EarnKind.FIRST_ORDER_BONUS, points=100)
    v = Benefit("v", "50元", Kind.CASH, amount=5000)
    q = price(
        rules(v, earn=(BASE_1_PER_YUAN, bonus)),
        cart(line("a", 1000), line("b", 2000)),
        member(coupon("C", "v"), first_order=True),
    )
    assert q.payable == 0
    assert q.points_earned == 100
    assert sum(x.points_earned for x in q.lines) == 100


# 会员价 (member prices): item-level, before every coupon


def test_a_fixed_member_price_applies_to_its_tier_only() -> None:
    mp = MemberPrices(item_prices={"tea": {"gold": 800}})
    r = rules(member_prices=mp)
    gold = price(r, cart(line("tea", 1000, qty=3)), member(tier="gold"))
    assert (gold.payable, gold.applied[0].kind, gold.applied[0].saving) == (
        2400,
        "member_price",
        600,
    )
    assert price(r, cart(line("tea", 1000, qty=3)), member(tier="normal")).payable == 3000
    assert price(r, cart(line("tea", 1000, qty=3)), member(tier=None)).payable == 3000


def test_a_member_price_above_the_shelf_price_is_ignored() -> None:
    mp = MemberPrices(item_prices={"tea": {"gold": 1200}})
    assert (
        price(rules(member_prices=mp), cart(line("tea", 1000)), member(tier="gold")).payable == 1000
    )


def test_a_tier_percentage_applies_to_lines_in_its_scope() -> None:
    mp = MemberPrices(
        tier_percent={"gold": 9500}, scope=Scope(exclude_categories=frozenset({"tobacco"}))
    )
    q = price(
        rules(member_prices=mp),
        cart(line("tea", 1000), line("cig", 2000, category="tobacco")),
        member(tier="gold"),
    )
    assert [x.discount for x in q.lines] == [50, 0]
