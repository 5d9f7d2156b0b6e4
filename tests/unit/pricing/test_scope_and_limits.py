"""Where, when and for whom a coupon applies, member limits and budgets, the
stacking rules, the points offset and rounding off the change (抹零)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from loyalpos.domain.pricing.model import (
    MemberContext,
    Options,
    PointsRequest,
    Remaining,
    Usage,
    WalletCoupon,
)
from loyalpos.domain.pricing.rules import (
    Benefit,
    ChangeRounding,
    Kind,
    MemberLimit,
    PointsOffset,
    RuleSet,
    Scope,
    Stacking,
    TimeWindow,
)
from tests.unit.pricing.builders import (
    TUESDAY_NOON,
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

ANYWHERE = Scope()


def cash(
    amount: int = 1000, scope: Scope = ANYWHERE, tid: str = "v", name: str = "", **kw: object
) -> Benefit:
    return Benefit(tid, name or f"{amount // 100}元券", Kind.CASH, amount=amount, scope=scope, **kw)  # type: ignore[arg-type]


def only_coupon(
    b: Benefit,
    *,
    store: str = "S1",
    at: datetime = TUESDAY_NOON,
    tier: str | None = "normal",
    the_coupon: WalletCoupon | None = None,
    **member_kw: object,
) -> tuple[int, str | None, str, str]:
    """(saving, reason code, zh, en) of a one-coupon wallet on a 100 元 cart."""
    wallet_coupon = the_coupon or coupon("C", b.id)
    q = price(
        rules(b),
        cart(line("a", 10000, category="food"), store=store, at=at),
        member(wallet_coupon, tier=tier, **member_kw),
    )
    if q.applied:
        return q.applied[0].saving, None, "", ""
    why = unusable(q, wallet_coupon.id)
    return 0, why.reason_code, why.message_zh, why.message_en


# Scope: store, tier, time window, validity


@pytest.mark.parametrize(
    ("scope", "store", "says"),
    [
        (Scope(stores=frozenset({"S1"})), "S1", None),
        (
            Scope(stores=frozenset({"S3", "S2"})),
            "S1",
            (
                "本门店不可用，仅限门店 S2、S3 使用",
                "not valid in this store; valid at store(s) S2, S3",
            ),
        ),
        (
            Scope(exclude_stores=frozenset({"S1"})),
            "S1",
            ("本门店（S1）不可使用此券", "not valid at store S1"),
        ),
        (Scope(exclude_stores=frozenset({"S1"})), "S2", None),
    ],
)
def test_a_coupon_is_usable_only_in_the_stores_of_its_scope_and_says_where(
    scope: Scope, store: str, says: tuple[str, str] | None
) -> None:
    saving, code, zh, en = only_coupon(cash(scope=scope), store=store)
    if says is None:
        assert saving == 1000
    else:
        assert (code, (zh, en)) == ("store_not_eligible", says)


def test_a_coupon_valid_in_many_stores_names_a_few_and_lists_all_in_the_detail() -> None:
    stores = frozenset(f"S{n:02d}" for n in range(2, 10))
    b = cash(scope=Scope(stores=stores))
    q = price(rules(b), cart(line("a", 10000)), member(coupon("C", b.id)))
    why = unusable(q, "C")
    assert why.message_zh == "本门店不可用，仅限门店 S02、S03、S04、S05、S06 等 8 项 使用"
    assert why.message_en.endswith("S02, S03, S04, S05, S06 and 3 more")
    assert why.detail["stores"] == sorted(stores)


@pytest.mark.parametrize(("tier", "usable"), [("gold", True), ("normal", False), (None, False)])
def test_a_tier_coupon_is_refused_to_other_tiers_and_to_anonymous_customers(
    tier: str | None, usable: bool
) -> None:
    b = cash(scope=Scope(tiers=frozenset({"gold"})))
    saving, code, zh, en = only_coupon(b, tier=tier)
    if usable:
        assert saving == 1000
    else:
        assert (code, zh, en) == (
            "tier_not_eligible",
            "会员等级不符，仅限 gold 使用",
            "not for this member's tier; for gold members only",
        )


def test_a_tier_coupon_names_the_tiers_it_is_for_by_their_names_in_the_rule_set() -> None:
    b = cash(scope=Scope(tiers=frozenset({"gold", "diamond"})))
    named = RuleSet(benefits=(b,), tier_names={"gold": "金卡", "diamond": "钻石卡"})
    q = price(named, cart(line("a", 10000)), member(coupon("C", b.id), tier="normal"))
    why = unusable(q, "C")
    assert (why.message_zh, why.message_en) == (
        "会员等级不符，仅限 钻石卡、金卡 使用",
        "not for this member's tier; for 钻石卡, 金卡 members only",
    )
    assert why.detail == {"tier": "normal", "tiers": ["diamond", "gold"]}


WEDNESDAY_ONLY = TimeWindow(weekdays=frozenset({3}))
LUNCH = TimeWindow(hours=((time(11, 0), time(14, 0)),))
JUNE_4 = TimeWindow(dates=frozenset({date(2024, 6, 4)}))


WEDNESDAY = ("不在可用时段内，仅限 每周三 使用", "not usable at this day or time; usable on Wed")
AT_LUNCH = (
    "不在可用时段内，仅限 11:00-14:00 使用",
    "not usable at this day or time; usable at 11:00-14:00",
)
ON_JUNE_4 = (
    "不在可用时段内，仅限 2024-06-04 使用",
    "not usable at this day or time; usable on 2024-06-04",
)


@pytest.mark.parametrize(
    ("window", "at", "says"),
    [
        (WEDNESDAY_ONLY, datetime(2024, 6, 5, 9, 0), None),
        (WEDNESDAY_ONLY, datetime(2024, 6, 4, 9, 0), WEDNESDAY),
        (LUNCH, datetime(2024, 6, 4, 11, 0), None),
        (LUNCH, datetime(2024, 6, 4, 13, 59), None),
        (LUNCH, datetime(2024, 6, 4, 14, 0), AT_LUNCH),
        (LUNCH, datetime(2024, 6, 4, 10, 59), AT_LUNCH),
        (JUNE_4, datetime(2024, 6, 4, 23, 0), None),
        (JUNE_4, datetime(2024, 6, 5, 0, 0), ON_JUNE_4),
    ],
)
def test_a_coupon_is_usable_only_in_its_days_and_hours_and_says_which(
    window: TimeWindow, at: datetime, says: tuple[str, str] | None
) -> None:
    saving, code, zh, en = only_coupon(cash(scope=Scope(window=window)), at=at)
    if says is None:
        assert saving == 1000
    else:
        assert (code, (zh, en)) == ("outside_time_window", says)


def test_a_window_of_days_and_hours_names_both() -> None:
    window = TimeWindow(weekdays=frozenset({6, 3}), hours=((time(10, 0), time(14, 0)),))
    saving, code, zh, en = only_coupon(cash(scope=Scope(window=window)))
    assert (code, zh, en) == (
        "outside_time_window",
        "不在可用时段内，仅限 每周三、周六 10:00-14:00 使用",
        "not usable at this day or time; usable on Wed, Sat at 10:00-14:00",
    )


def test_a_coupon_past_its_expiry_is_expired_and_says_when() -> None:
    expired = WalletCoupon("C", "v", expires_at=datetime(2024, 6, 4, 11, 59))
    saving, code, zh, en = only_coupon(cash(), the_coupon=expired)
    assert (saving, code, zh, en) == (
        0,
        "expired",
        "券已于 2024-06-04 11:59 过期",
        "coupon expired on 2024-06-04 11:59",
    )


def test_a_coupon_expires_at_the_instant_of_its_expiry() -> None:
    expired = WalletCoupon("C", "v", expires_at=TUESDAY_NOON)
    assert only_coupon(cash(), the_coupon=expired)[1] == "expired"


def test_a_template_past_its_valid_to_makes_its_coupons_expired() -> None:
    b = cash(valid_to=datetime(2024, 6, 1))
    assert only_coupon(b)[1] == "expired"


def test_a_coupon_before_its_valid_from_is_not_yet_valid() -> None:
    early = WalletCoupon("C", "v", valid_from=datetime(2024, 6, 5))
    saving, code, zh, en = only_coupon(cash(), the_coupon=early)
    assert (saving, code, zh, en) == (
        0,
        "not_yet_valid",
        "券尚未生效，2024-06-05 00:00 起可用",
        "coupon is not valid yet; usable from 2024-06-05 00:00",
    )


def test_a_template_before_its_valid_from_makes_its_coupons_not_yet_valid() -> None:
    assert only_coupon(cash(valid_from=datetime(2024, 7, 1)))[1] == "not_yet_valid"


def test_a_coupon_inside_its_validity_is_usable() -> None:
    ok = WalletCoupon(
        "C", "v", valid_from=datetime(2024, 6, 1), expires_at=datetime(2024, 6, 30, 23, 59)
    )
    assert only_coupon(cash(), the_coupon=ok)[0] == 1000


def test_a_coupon_whose_template_is_unknown_says_so() -> None:
    stray = WalletCoupon("C", "no-such-template")
    q = price(rules(cash()), cart(line("a", 10000)), member(stray))
    why = unusable(q, "C")
    assert (why.reason_code, why.message_zh) == ("unknown_template", "券模板不存在或已停用")


# Scope: categories and skus


def test_a_category_coupon_discounts_only_lines_of_that_category() -> None:
    half = Benefit(
        "p", "饮品5折", Kind.PERCENT, percent=5000, scope=Scope(categories=frozenset({"drinks"}))
    )
    q = price(
        rules(half),
        cart(line("tea", 1000, category="drinks"), line("rice", 1000, category="food")),
        member(coupon("C", "p")),
    )
    assert [x.discount for x in q.lines] == [500, 0]


def test_an_excluded_category_is_not_discounted_even_when_the_rest_is() -> None:
    half = Benefit(
        "p",
        "5折",
        Kind.PERCENT,
        percent=5000,
        scope=Scope(exclude_categories=frozenset({"tobacco"})),
    )
    q = price(
        rules(half),
        cart(line("tea", 1000, category="drinks"), line("cig", 3000, category="tobacco")),
        member(coupon("C", "p")),
    )
    assert [x.discount for x in q.lines] == [500, 0]


def test_skus_included_and_excluded_choose_the_lines() -> None:
    scope = Scope(categories=frozenset({"drinks"}), exclude_skus=frozenset({"wine"}))
    half = Benefit("p", "5折", Kind.PERCENT, percent=5000, scope=scope)
    q = price(
        rules(half),
        cart(
            line("tea", 1000, category="drinks"),
            line("wine", 9000, category="drinks"),
            line("cake", 2000, category="bakery"),
        ),
        member(coupon("C", "p")),
    )
    assert [x.discount for x in q.lines] == [500, 0, 0]
    by_sku = Benefit("q", "5折", Kind.PERCENT, percent=5000, scope=Scope(skus=frozenset({"cake"})))
    q2 = price(rules(by_sku), cart(line("tea", 1000), line("cake", 2000)), member(coupon("C", "q")))
    assert [x.discount for x in q2.lines] == [0, 1000]


def test_the_threshold_counts_only_eligible_lines() -> None:
    mj = Benefit(
        "mj",
        "饮品满100减20",
        Kind.THRESHOLD,
        threshold=10000,
        amount=2000,
        scope=Scope(categories=frozenset({"drinks"})),
    )
    q = price(
        rules(mj),
        cart(line("tea", 6000, category="drinks"), line("rice", 9000, category="food")),
        member(coupon("C", "mj")),
    )
    assert unusable(q, "C").detail["shortfall_fen"] == 4000


def test_a_coupon_for_a_category_not_in_the_cart_has_no_eligible_items_and_names_them() -> None:
    b = cash(scope=Scope(categories=frozenset({"toys"}), skus=frozenset({"lego"})))
    assert only_coupon(b)[1:] == (
        "no_eligible_items",
        "购物车中没有可用此券的商品（适用：toys、lego）",
        "no items in the cart qualify (valid for: toys, lego)",
    )


# Member limits and budgets


@pytest.mark.parametrize(
    ("limit", "usage", "zh", "en"),
    [
        (
            MemberLimit(per_day=1),
            Usage(day=1),
            "每日限用 1 次，明天可再用",
            "1 use(s) per day; usable again tomorrow",
        ),
        (
            MemberLimit(per_week=2),
            Usage(day=0, week=2),
            "每周限用 2 次，下周可再用",
            "2 use(s) per week; usable again next week",
        ),
        (
            MemberLimit(per_month=3),
            Usage(month=5),
            "每月限用 3 次，下月可再用",
            "3 use(s) per month; usable again next month",
        ),
    ],
)
def test_a_member_over_a_template_limit_gets_limit_reached(
    limit: MemberLimit, usage: Usage, zh: str, en: str
) -> None:
    b = cash(member_limit=limit)
    saving, code, message_zh, message_en = only_coupon(b, usage={"v": usage})
    assert (saving, code) == (0, "limit_reached")
    assert message_zh == f"已达使用上限：{zh}"
    assert message_en == f"limit reached: {en}"


def test_a_member_under_the_limit_may_use_the_coupon() -> None:
    b = cash(member_limit=MemberLimit(per_day=2, per_week=5))
    assert only_coupon(b, usage={"v": Usage(day=1, week=4)})[0] == 1000


@pytest.mark.parametrize("budget", [Remaining(uses=0), Remaining(discount=0)])
def test_a_used_up_budget_makes_the_coupon_unusable(budget: Remaining) -> None:
    q = price(
        rules(cash()),
        cart(line("a", 10000)),
        member(coupon("C", "v")),
        Options(budgets={"v": budget}),
    )
    why = unusable(q, "C")
    assert (why.reason_code, why.message_zh) == ("limit_reached", "已达使用上限：活动预算已用完")


def test_a_budget_with_little_discount_left_caps_the_saving() -> None:
    mj = Benefit("mj", "满200减50", Kind.THRESHOLD, threshold=20000, amount=5000)
    q = price(
        rules(mj),
        cart(line("a", 15000), line("b", 10000)),
        member(coupon("C", "mj")),
        Options(budgets={"mj": Remaining(uses=10, discount=1200)}),
    )
    assert applied(q, "C").saving == 1200
    assert [x.discount for x in q.lines] == [720, 480]
    check_sums(q)


def test_a_promotion_with_its_budget_used_up_does_not_apply() -> None:
    promo = cash(promotion=True, tid="promo")
    q = price(
        rules(promo), cart(line("a", 10000)), options=Options(budgets={"promo": Remaining(0)})
    )
    assert q.applied == ()
    (note,) = [n for n in q.explanation if n.code == "promotion_not_in_force"]
    assert note.detail == {"promotion": "promo", "reason_code": "limit_reached"}
    assert note.zh == "促销「10元券」不适用：已达使用上限：活动预算已用完"
    assert (
        note.en == "promotion 10元券 does not apply: limit reached: the campaign budget is used up"
    )


def test_a_budget_of_one_use_allows_only_one_coupon_of_the_template() -> None:
    v = cash(max_per_order=2)
    q = price(
        rules(v, max_coupons=2),
        cart(line("a", 19000)),
        member(coupon("A", "v"), coupon("B", "v")),
        Options(budgets={"v": Remaining(uses=1)}),
    )
    assert q.discount == 1000


def test_a_discount_budget_caps_the_total_of_several_coupons_of_the_template() -> None:
    v = cash(max_per_order=2)
    q = price(
        rules(v, max_coupons=2),
        cart(line("a", 19000)),
        member(coupon("A", "v"), coupon("B", "v")),
        Options(budgets={"v": Remaining(discount=1500)}),
    )
    assert q.discount == 1500
    # The second coupon gets what the first left of the budget.
    assert [(a.coupon_id, a.saving) for a in q.applied] == [("A", 1000), ("B", 500)]


def test_a_coupon_the_budget_has_nothing_left_for_is_not_spent() -> None:
    v = cash(max_per_order=2)
    q = price(
        rules(v, max_coupons=2),
        cart(line("a", 19000)),
        member(coupon("A", "v"), coupon("B", "v")),
        Options(budgets={"v": Remaining(discount=800)}),
    )
    assert q.discount == 800
    assert applied_ids(q) == ["A"]
    assert unusable(q, "B").reason_code == "no_extra_saving"


# Stacking


def test_an_exclusive_coupon_goes_with_nothing_else() -> None:
    big = cash(3000, tid="big", exclusive=True)
    small = cash(1000, tid="small")
    other = cash(500, tid="other")
    q = price(
        rules(big, small, other, max_coupons=3),
        cart(line("a", 10000)),
        member(coupon("B", "big"), coupon("S", "small"), coupon("O", "other")),
    )
    assert applied_ids(q) == ["B"]
    assert unusable(q, "S").reason_code == "conflicts_with_chosen"
    assert unusable(q, "S").detail == {"conflicts_with": "B"}


def test_an_exclusive_coupon_loses_when_the_others_together_save_more() -> None:
    big = cash(3000, tid="big", exclusive=True)
    small = cash(2000, tid="small")
    other = cash(1500, tid="other")
    q = price(
        rules(big, small, other, max_coupons=3),
        cart(line("a", 10000)),
        member(coupon("B", "big"), coupon("S", "small"), coupon("O", "other")),
    )
    assert sorted(applied_ids(q)) == ["O", "S"]
    assert unusable(q, "B").reason_code == "conflicts_with_chosen"


def test_an_exclusive_group_of_kinds_allows_only_one_of_them() -> None:
    mj = Benefit("mj", "满100减30", Kind.THRESHOLD, threshold=10000, amount=3000)
    p = Benefit("p", "9折", Kind.PERCENT, percent=9000)
    v = cash(500)
    group = Stacking(max_coupons=3, exclusive_groups=(frozenset({"threshold", "percent"}),))
    q = price(
        rules(mj, p, v, stacking=group),
        cart(line("a", 20000)),
        member(coupon("M", "mj"), coupon("P", "p"), coupon("V", "v")),
    )
    assert sorted(applied_ids(q)) == ["M", "V"]
    why = unusable(q, "P")
    assert why.reason_code == "conflicts_with_chosen"
    assert why.message_zh == "与已选优惠「满100减30」不可同时使用"
    assert why.message_en == "cannot be combined with the chosen '满100减30'"


def test_a_one_name_exclusive_group_allows_one_benefit_of_that_kind() -> None:
    a, b = cash(1000, tid="a"), cash(900, tid="b")
    one_cash = Stacking(max_coupons=3, exclusive_groups=(frozenset({"cash"}),))
    q = price(
        rules(a, b, stacking=one_cash),
        cart(line("x", 10000)),
        member(coupon("A", "a"), coupon("B", "b")),
    )
    assert applied_ids(q) == ["A"]
    assert unusable(q, "B").reason_code == "conflicts_with_chosen"


def test_a_forbidden_pair_of_templates_is_never_chosen_together() -> None:
    a, b, c = cash(1000, tid="a"), cash(900, tid="b"), cash(100, tid="c")
    forbid = Stacking(max_coupons=3, forbidden_pairs=(("a", "b"),))
    q = price(
        rules(a, b, c, stacking=forbid),
        cart(line("x", 10000)),
        member(coupon("A", "a"), coupon("B", "b"), coupon("C", "c")),
    )
    assert sorted(applied_ids(q)) == ["A", "C"]
    assert unusable(q, "B").detail == {"conflicts_with": "A"}


def test_max_coupons_per_order_keeps_the_best_ones() -> None:
    vs = [cash(amount, tid=f"v{amount}") for amount in (500, 1000, 1500, 2000)]
    q = price(
        rules(*vs, max_coupons=2),
        cart(line("x", 10000)),
        member(*(coupon(f"C{b.amount}", b.id) for b in vs)),
    )
    assert sorted(applied_ids(q)) == ["C1500", "C2000"]
    why = unusable(q, "C1000")
    assert why.reason_code == "limit_reached"
    assert why.message_zh == "已达使用上限：每单最多 2 张券"
    assert why.detail == {"max_coupons": 2}


def test_max_per_order_limits_coupons_of_one_template() -> None:
    v = cash(1000, max_per_order=2)
    q = price(
        rules(v, max_coupons=5),
        cart(line("x", 10000)),
        member(coupon("A", "v"), coupon("B", "v"), coupon("C", "v")),
    )
    assert sorted(applied_ids(q)) == ["A", "B"]
    assert unusable(q, "C").message_zh == "已达使用上限：此券每单限用 2 张"


def test_promotions_do_not_count_towards_max_coupons() -> None:
    promo = cash(700, tid="promo", promotion=True)
    v = cash(1000)
    q = price(rules(promo, v, max_coupons=1), cart(line("x", 10000)), member(coupon("C", "v")))
    assert sorted(applied_ids(q)) == ["C", "promo"]
    assert q.discount == 1700


def test_a_coupon_that_adds_nothing_is_not_spent() -> None:
    free = Benefit("coffee", "咖啡兑换券", Kind.ITEM, sku="coffee")
    v = cash(5000)
    q = price(
        rules(free, v, max_coupons=2),
        cart(line("coffee", 2500)),
        member(coupon("K", "coffee"), coupon("V", "v")),
    )
    assert len(applied_ids(q)) == 1
    assert q.payable == 0
    (left,) = (u for u in q.unusable if u.coupon_id in {"K", "V"})
    assert left.reason_code == "no_extra_saving"


# Points offset


def offset_rules(*benefits: Benefit, **offset: int) -> RuleSet:
    settings = {"enabled": True, "cap_percent": 2000, "step": 100, **offset}
    return rules(*benefits, points_offset=PointsOffset(**settings))  # type: ignore[arg-type]


def with_points(points: int, *coupons: WalletCoupon) -> MemberContext:
    return member(*coupons, points=points)


MAX = Options(points=PointsRequest.MAX)


def test_points_offset_is_capped_at_a_share_of_what_is_left() -> None:
    q = price(offset_rules(), cart(line("a", 30000)), with_points(10000), MAX)
    assert (q.points_redeemed, q.points_offset, q.payable) == (6000, 6000, 24000)
    check_sums(q)


def test_points_offset_is_limited_by_the_balance_and_rounded_down_to_the_step() -> None:
    q = price(offset_rules(step=500), cart(line("a", 30000)), with_points(4321), MAX)
    assert (q.points_redeemed, q.points_offset) == (4000, 4000)


def test_points_offset_below_the_minimum_is_not_used() -> None:
    q = price(offset_rules(min_points=1000), cart(line("a", 30000)), with_points(900), MAX)
    assert (q.points_redeemed, q.payable) == (0, 30000)


def test_a_number_of_points_redeems_at_most_that_many() -> None:
    q = price(offset_rules(), cart(line("a", 30000)), with_points(10000), Options(points=2550))
    assert (q.points_redeemed, q.points_offset) == (2500, 2500)


def test_points_offset_value_follows_points_per_unit() -> None:
    # 50 points = 1 元: 60 元 of cap is 3000 points.
    q = price(offset_rules(points_per_unit=50), cart(line("a", 30000)), with_points(10000), MAX)
    assert (q.points_redeemed, q.points_offset) == (3000, 6000)


def test_no_points_are_used_unless_asked() -> None:
    q = price(offset_rules(), cart(line("a", 30000)), with_points(10000))
    assert q.points_redeemed == 0


def test_disabled_points_offset_redeems_nothing() -> None:
    q = price(offset_rules(enabled=False), cart(line("a", 30000)), with_points(10000), MAX)
    assert q.points_redeemed == 0


def test_points_offset_is_split_over_the_lines() -> None:
    q = price(
        offset_rules(cap_percent=10000, step=1),
        cart(line("a", 1000), line("b", 1000), line("c", 1000)),
        with_points(1000),
        MAX,
    )
    assert [x.points_offset for x in q.lines] == [334, 333, 333]
    check_sums(q)


def test_a_coupon_not_combinable_with_points_blocks_the_offset_when_chosen() -> None:
    v = cash(1000)  # with_points defaults to False
    q = price(
        offset_rules(v, cap_percent=500),
        cart(line("a", 10000)),
        with_points(10000, coupon("C", "v")),
        MAX,
    )
    # coupon 10 元 beats 5 元 of points; with it, no points at all.
    assert applied_ids(q) == ["C"]
    assert q.points_redeemed == 0
    assert "points_offset_not_allowed" in [n.code for n in q.explanation]


def test_points_win_over_a_coupon_that_would_block_them_when_they_save_more() -> None:
    v = cash(1000)
    q = price(offset_rules(v), cart(line("a", 30000)), with_points(10000, coupon("C", "v")), MAX)
    assert applied_ids(q) == []
    assert q.points_offset == 6000
    assert unusable(q, "C").reason_code == "no_extra_saving"


def test_a_coupon_combinable_with_points_leaves_the_offset_on_what_is_left() -> None:
    v = cash(2000, with_points=True)
    q = price(offset_rules(v), cart(line("a", 30000)), with_points(10000, coupon("C", "v")), MAX)
    assert applied_ids(q) == ["C"]
    assert (q.points_redeemed, q.payable) == (5600, 22400)


def test_promotions_do_not_block_the_points_offset() -> None:
    promo = cash(2000, tid="promo", promotion=True)
    q = price(offset_rules(), cart(line("a", 30000)), with_points(10000), MAX)
    q2 = price(offset_rules(promo), cart(line("a", 30000)), with_points(10000), MAX)
    assert q.points_redeemed == 6000
    assert q2.points_redeemed == 5600


# 抹零


@pytest.mark.parametrize(
    ("mode", "rounding"),
    [(ChangeRounding.NONE, 0), (ChangeRounding.FEN, 4), (ChangeRounding.JIAO, 34)],
)
def test_rounding_off_the_change_drops_fen_or_jiao_in_the_customers_favour(
    mode: ChangeRounding, rounding: int
) -> None:
    q = price(rules(change_rounding=mode), cart(line("a", 617), line("b", 617)))
    assert q.rounding == rounding
    assert q.payable == 1234 - rounding
    assert q.discount == rounding
    check_sums(q)


def test_rounding_off_the_change_is_its_own_discount_line_allocated_to_lines() -> None:
    q = price(rules(change_rounding=ChangeRounding.JIAO), cart(line("a", 617), line("b", 617)))
    (line_item,) = q.applied
    assert (line_item.kind, line_item.saving, line_item.per_line) == (
        "change_rounding",
        34,
        (17, 17),
    )
    assert [x.payable for x in q.lines] == [600, 600]


def test_rounding_off_the_change_comes_after_coupons_and_points() -> None:
    v = cash(1001, with_points=True)
    r = rules(
        v,
        change_rounding=ChangeRounding.JIAO,
        points_offset=PointsOffset(enabled=True, cap_percent=1000, step=1),
    )
    q = price(r, cart(line("a", 10000)), with_points(10000, coupon("C", "v")), MAX)
    # 100 − 10.01 = 89.99; 10% of it is 8.99 → 899 points; 81.00 left: nothing to drop.
    assert (q.points_redeemed, q.rounding, q.payable) == (899, 0, 8100)
    q2 = price(r, cart(line("a", 10050)), with_points(10000, coupon("C", "v")), MAX)
    # 100.50 − 10.01 = 90.49; 9.04 in points; 81.45 → 81.00.
    assert (q2.points_redeemed, q2.rounding, q2.payable) == (904, 45, 8100)


def test_a_store_can_override_the_change_rounding() -> None:
    r = rules(
        change_rounding=ChangeRounding.NONE, store_change_rounding={"S2": ChangeRounding.JIAO}
    )
    assert price(r, cart(line("a", 1234), store="S1")).payable == 1234
    assert price(r, cart(line("a", 1234), store="S2")).payable == 1200
    r2 = rules(
        change_rounding=ChangeRounding.FEN, store_change_rounding={"S2": ChangeRounding.NONE}
    )
    assert price(r2, cart(line("a", 1234), store="S1")).payable == 1230
    assert price(r2, cart(line("a", 1234), store="S2")).payable == 1234


def test_a_round_amount_has_no_change_rounding_line() -> None:
    q = price(rules(change_rounding=ChangeRounding.JIAO), cart(line("a", 1200)))
    assert q.applied == ()
    assert q.rounding == 0
