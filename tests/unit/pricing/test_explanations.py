"""Explanations a cashier and a customer can read (issue 11, item 16) and the
earning rules behind the points (item 17), as the engine builds them."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

from loyalpos.domain.pricing.model import Options, PointsRequest, PointsRule, Quote
from loyalpos.domain.pricing.rules import (
    Benefit,
    ChangeRounding,
    EarnKind,
    EarnRule,
    Kind,
    MemberPrices,
    PointsOffset,
    RuleSet,
    Scope,
    Stacking,
    TimeWindow,
)
from tests.unit.pricing.builders import cart, coupon, line, member, price

WEDNESDAY = datetime(2024, 6, 5, 12, 0)  # 会员日

P8 = Benefit("p8", "8折券", Kind.PERCENT, percent=8000, points_multiplier=Fraction(2))
MJ = Benefit("mj", "满200减50", Kind.THRESHOLD, threshold=20000, amount=5000)
SECOND_HALF = Benefit(
    "2nd", "饮品第二件半价", Kind.NTH_DISCOUNT, promotion=True, nth=2, percent=5000
)
EARN = (
    EarnRule("base", EarnKind.BASE, rate=Fraction(1, 100)),
    EarnRule("tiers", EarnKind.TIER_MULTIPLIER, tier_multipliers={"gold": Fraction(3, 2)}),
    EarnRule(
        "member-day",
        EarnKind.TIME_MULTIPLIER,
        multiplier=Fraction(2),
        scope=Scope(window=TimeWindow(weekdays=frozenset({3}))),
        description="会员日",
    ),
    EarnRule("big", EarnKind.THRESHOLD_BONUS, steps=((10000, 50), (50000, 300))),
    EarnRule("first", EarnKind.FIRST_ORDER_BONUS, points=100, description="首单礼"),
)
TIERS = {"gold": "金卡", "normal": "普通会员"}


def notes(q: Quote) -> list[tuple[str, str, str]]:
    return [(n.code, n.zh, n.en) for n in q.explanation]


def test_an_applied_coupon_is_named_by_its_template_in_chinese_and_english() -> None:
    q = price(
        RuleSet(benefits=(P8,), stacking=Stacking(max_coupons=1)),
        cart(line("bag", 32000)),
        member(coupon("C9", "p8")),
    )
    (applied,) = [n for n in q.explanation if n.code == "coupon_applied"]
    assert (applied.zh, applied.en) == ("8折券 省 64.00 元", "8折券 saves ¥64.00")
    assert applied.detail == {
        "benefit": "p8",
        "kind": "percent",
        "coupon_id": "C9",
        "saving_fen": 6400,
    }
    assert q.applied[0].name == "8折券"


def test_no_note_names_a_coupon_by_its_id_and_kind_or_counts_combinations() -> None:
    q = price(
        RuleSet(benefits=(P8, MJ, SECOND_HALF), stacking=Stacking(max_coupons=2), earn=EARN),
        cart(line("tea", 1500, qty=2), line("bag", 30000)),
        member(coupon("C1", "p8"), coupon("C2", "mj")),
    )
    text = " ".join(f"{n.zh} {n.en}" for n in q.explanation)
    for developer_words in ("C1", "C2", "(percent)", "(threshold)", "combination", "search"):
        assert developer_words not in text
    assert q.debug["combinations_evaluated"] > 0
    assert all(n.code and n.zh and n.en for n in q.explanation)


def test_member_price_promotion_offset_and_rounding_speak_both_languages() -> None:
    rules = RuleSet(
        benefits=(SECOND_HALF,),
        member_prices=MemberPrices(tier_percent={"gold": 9500}),
        points_offset=PointsOffset(enabled=True, cap_percent=1000),
        change_rounding=ChangeRounding.JIAO,
        tier_names=TIERS,
    )
    q = price(
        rules,
        cart(line("tea", 1234, qty=2)),
        member(tier="gold", points=10000),
        Options(points=PointsRequest.MAX),
    )
    assert notes(q)[:4] == [
        ("member_price", "会员价（金卡）省 1.23 元", "member price (金卡) saves ¥1.23"),
        ("promotion_applied", "饮品第二件半价 省 5.86 元", "饮品第二件半价 saves ¥5.86"),
        ("points_offset", "100 积分抵 1.00 元", "100 points pay ¥1.00"),
        ("change_rounding", "抹零 0.59 元", "rounding off the change: ¥0.59"),
    ]
    assert [a.name for a in q.applied] == ["会员价（金卡）", "饮品第二件半价", "抹零"]


def test_a_gold_member_on_member_day_sees_every_rule_behind_the_points() -> None:
    """Base 1 point/元, 金卡 ×1.5, 会员日 ×2, the coupon's ×2, the 100 元 step's
    +50 and the first-order +100: the rules say where all 774 points came from."""
    rules = RuleSet(earn=EARN, benefits=(P8,), stacking=Stacking(max_coupons=1), tier_names=TIERS)
    q = price(
        rules,
        cart(line("bag", 13000), at=WEDNESDAY),
        member(coupon("C1", "p8"), tier="gold", first_order=True),
    )
    assert q.payable == 10400
    assert q.points_rules == (
        PointsRule("base", "base", "base", "基础积分 每元 1 积分", "base rate 1 point(s) per ¥1",
                   "1", 624, 10400),
        PointsRule("tiers", "tier_multiplier", "金卡", "金卡 ×1.5", "金卡: points ×1.5", "1.5"),
        PointsRule("member-day", "time_multiplier", "会员日", "会员日 ×2", "会员日: points ×2", "2"),
        PointsRule("p8", "coupon_multiplier", "8折券", "8折券 ×2", "8折券: points ×2", "2"),
        PointsRule("big", "threshold_bonus", "big", "满 100.00 元奖励 +50 积分",
                   "bonus for ¥100.00 or more: +50 points", points=50),
        PointsRule("first", "first_order_bonus", "首单礼", "首单礼 +100 积分", "首单礼: +100 points",
                   points=100),
    )  # fmt: skip
    assert q.points_earned == 624 + 50 + 100 == sum(r.points or 0 for r in q.points_rules)
    codes = [n.code for n in q.explanation if n.code.startswith(("earn_", "points_earned"))]
    assert codes == [
        "earn_base",
        "earn_tier_multiplier",
        "earn_time_multiplier",
        "earn_coupon_multiplier",
        "points_earned",
        "earn_threshold_bonus",
        "earn_first_order_bonus",
    ]


def test_points_of_several_rates_are_shared_out_and_add_up_to_the_total() -> None:
    earn = (
        EarnRule("base", EarnKind.BASE, rate=Fraction(1, 300)),  # 1 point per 3 元
        EarnRule(
            "beans",
            EarnKind.CATEGORY_RATE,
            multiplier=Fraction(2),
            scope=Scope(categories=frozenset({"beans"})),
        ),
        EarnRule("cards", EarnKind.EXCLUDE, scope=Scope(categories=frozenset({"card"})), description="礼品卡"),
    )  # fmt: skip
    q = price(
        RuleSet(earn=earn),
        cart(
            line("tea", 1000),
            line("b", 1000, category="beans"),
            line("gift", 5000, category="card"),
        ),
    )
    rates = {r.rule: (r.factor, r.points, r.paid) for r in q.points_rules}
    # 10 元 at 1/3 + 10 元 at 2/3 = 10 points exactly: 3.33... and 6.66... shared out.
    assert rates == {"base": ("1/3", 3, 1000), "beans": ("2/3", 7, 1000), "cards": ("0", 0, 5000)}
    assert sum(p for _, p, _ in rates.values()) == q.points_earned == 10
