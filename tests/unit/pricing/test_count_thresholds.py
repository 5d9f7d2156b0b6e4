"""满 N 件: count thresholds (`threshold_items`) on coupons and promotions.

What counts is the units of the cart lines in the benefit's scope with a unit
price above 0, as the cart came in: member prices, a free item or any other
benefit change nothing, a free gift line (price 0) does not count, and lines of
one sku count together however the till cut them. A coupon below its count is
unusable with `below_count_threshold`, saying how many items are missing."""

from __future__ import annotations

from typing import Any

import pytest

from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.pricing.model import Options
from loyalpos.domain.pricing.rules import Benefit, Kind, MemberPrices, NthGroup, Scope
from loyalpos.rules.convert import dump_yaml, load_text, parse_rule_set, rule_set
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


def three_for_80(**kw: Any) -> Benefit:
    """满3件8折."""
    return Benefit("p80", "满3件8折", Kind.PERCENT, percent=8000, threshold_items=3, **kw)


def test_three_items_over_two_lines_get_20_percent_off() -> None:
    q = price(
        rules(three_for_80()),
        cart(line("tee", 5000, qty=2), line("cap", 2000)),
        member(coupon("C", "p80")),
    )
    assert applied(q, "C").saving == 2400  # 20% of 120.00
    assert q.payable == 9600
    check_sums(q)


def test_two_items_are_one_short_of_three() -> None:
    q = price(rules(three_for_80()), cart(line("tee", 5000, qty=2)), member(coupon("C", "p80")))
    assert q.applied == ()
    why = unusable(q, "C")
    assert why.reason_code == "below_count_threshold"
    assert why.detail == {"shortfall_items": 1, "threshold_items": 3}
    assert why.message_zh == "未满 3 件，还差 1 件"
    assert why.message_en == "add 1 more item to reach 3"


def test_one_item_is_two_short_and_says_items() -> None:
    q = price(rules(three_for_80()), cart(line("tee", 5000)), member(coupon("C", "p80")))
    why = unusable(q, "C")
    assert why.detail == {"shortfall_items": 2, "threshold_items": 3}
    assert why.message_en == "add 2 more items to reach 3"


def test_two_items_get_ten_yuan_off() -> None:
    """满2件减10, as a 满减 with a count and no money threshold."""
    two = Benefit("m2", "满2件减10", Kind.THRESHOLD, threshold_items=2, amount=1000)
    q = price(rules(two), cart(line("a", 800), line("b", 700)), member(coupon("C", "m2")))
    assert q.discount == 1000 and q.payable == 500
    one = price(rules(two), cart(line("a", 800)), member(coupon("C", "m2")))
    assert unusable(one, "C").reason_code == "below_count_threshold"


def test_an_order_level_count_counts_every_line_but_free_ones() -> None:
    """At least 5 items in the order: a free bag (price 0) is not an item."""
    five = Benefit("v5", "满5件减5元", Kind.CASH, amount=500, threshold_items=5)
    lines = [line("a", 100, qty=2, category="x"), line("b", 100, qty=2, category="y")]
    bag = line("bag", 0)
    short = price(rules(five), cart(*lines, bag), member(coupon("C", "v5")))
    assert unusable(short, "C").detail == {"shortfall_items": 1, "threshold_items": 5}
    enough = price(rules(five), cart(*lines, bag, line("c", 100)), member(coupon("C", "v5")))
    assert applied(enough, "C").saving == 500


def test_only_lines_in_scope_count() -> None:
    drinks = three_for_80(scope=Scope(categories=frozenset({"drinks"})))
    lines = (line("tea", 1000, qty=2, category="drinks"), line("cake", 1000, category="food"))
    q = price(rules(drinks), cart(*lines), member(coupon("C", "p80")))
    assert unusable(q, "C").detail == {"shortfall_items": 1, "threshold_items": 3}
    no_cake = three_for_80(scope=Scope(exclude_skus=frozenset({"cake"})))
    q = price(rules(no_cake), cart(*lines), member(coupon("C", "p80")))
    assert unusable(q, "C").reason_code == "below_count_threshold"


def test_money_and_count_must_both_hold_count_checked_first() -> None:
    both = three_for_80(threshold=10000)
    two_dear = price(rules(both), cart(line("a", 6000, qty=2)), member(coupon("C", "p80")))
    assert unusable(two_dear, "C").reason_code == "below_count_threshold"
    three_cheap = price(rules(both), cart(line("a", 3000, qty=3)), member(coupon("C", "p80")))
    why = unusable(three_cheap, "C")
    assert why.reason_code == "below_threshold"
    assert why.detail == {"shortfall_fen": 1000, "threshold_fen": 10000}
    three_dear = price(rules(both), cart(line("a", 4000, qty=3)), member(coupon("C", "p80")))
    assert applied(three_dear, "C").saving == 2400


def test_other_benefits_and_member_prices_do_not_change_the_count() -> None:
    """The free coffee still counts as one of the three (as the cart came in); the
    8折 then applies to what is left; a member price changes no count either."""
    free = Benefit("k", "咖啡兑换券", Kind.ITEM, sku="coffee")
    gold = MemberPrices(tier_percent={"gold": 9000})
    q = price(
        rules(free, three_for_80(), max_coupons=2, member_prices=gold),
        cart(line("coffee", 2000), line("cake", 1000, qty=2)),
        member(coupon("K", "k"), coupon("C", "p80"), tier="gold"),
    )
    assert applied_ids(q) == ["K", "C"]
    # 90% member price: 18.00 + 18.00; the coffee free; 8折 on 18.00: 3.60.
    assert applied(q, "C").saving == 360
    check_sums(q)


def test_a_promotion_below_its_count_is_left_out_and_explained() -> None:
    promo = three_for_80(promotion=True)
    q = price(rules(promo), cart(line("a", 1000, qty=2)))
    assert q.applied == ()
    assert any(
        note.code == "promotion_not_in_force"
        and note.detail["promotion"] == "p80"
        and note.detail["reason_code"] == "below_count_threshold"
        and "还差 1 件" in note.zh
        and "add 1 more item" in note.en
        for note in q.explanation
    )
    q = price(rules(promo), cart(line("a", 1000), line("a", 1000), line("a", 1000)))
    assert applied(q, "p80").saving == 600


def test_a_forced_coupon_below_its_count_is_reported_not_used() -> None:
    q = price(
        rules(three_for_80()),
        cart(line("a", 1000, qty=2)),
        member(coupon("C", "p80")),
        Options(force=("C",)),
    )
    assert q.applied == ()
    assert unusable(q, "C").reason_code == "below_count_threshold"


def test_a_unit_level_coupon_may_need_a_count_too() -> None:
    """买满 3 件送一杯咖啡: an item coupon with a count threshold."""
    gift = Benefit("k3", "满3件送咖啡", Kind.ITEM, sku="coffee", threshold_items=3)
    two = price(
        rules(gift), cart(line("coffee", 2000), line("cake", 900)), member(coupon("K", "k3"))
    )
    assert unusable(two, "K").reason_code == "below_count_threshold"
    three = price(
        rules(gift), cart(line("coffee", 2000), line("cake", 900, qty=2)), member(coupon("K", "k3"))
    )
    assert applied(three, "K").saving == 2000


# The rule document


def doc(**fields: Any) -> dict[str, Any]:
    return {"coupons": [{"id": "c", **fields}]}


def test_the_document_takes_count_thresholds_and_the_nth_grouping() -> None:
    r = rule_set(
        parse_rule_set(
            {
                "coupons": [
                    {"id": "m2", "kind": "threshold", "threshold_items": 2, "amount_fen": 1000},
                    {"id": "p", "kind": "percent", "percent": 80, "threshold_items": 3},
                ],
                "promotions": [
                    {"id": "n", "kind": "nth_discount", "percent": 50, "nth_group": "mixed"},
                    {"id": "s", "kind": "nth_discount", "percent": 50},
                ],
            }
        )
    )
    m2, p, n, s = r.benefits
    assert (m2.threshold_items, m2.threshold, m2.amount) == (2, 0, 1000)
    assert (p.threshold_items, p.percent) == (3, 8000)
    assert n.nth_group is NthGroup.MIXED and s.nth_group is NthGroup.SKU
    assert (n.threshold_items, s.threshold_items) == (0, 0)


def test_the_new_fields_survive_a_yaml_round_trip() -> None:
    parsed = parse_rule_set(
        {
            "coupons": [{"id": "m2", "kind": "cash", "threshold_items": 2, "amount_fen": 1}],
            "promotions": [
                {"id": "n", "kind": "nth_discount", "percent": 50, "nth_group": "mixed"}
            ],
        }
    )
    assert parse_rule_set(load_text(dump_yaml(parsed))) == parsed


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (doc(kind="cash", amount_fen=1, threshold_items=-1), "coupons.0.threshold_items"),
        (doc(kind="cash", amount_fen=1, threshold_items=10_001), "coupons.0.threshold_items"),
        (doc(kind="nth_discount", percent=50, nth_group="any"), "coupons.0.nth_group"),
        (doc(kind="threshold", amount_fen=500), "coupons.0"),
    ],
)
def test_wrong_counts_and_groupings_are_refused_naming_the_field(
    data: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule_set(data)
    assert caught.value.detail["field"] == field


def test_a_threshold_with_a_count_may_give_more_than_no_money_threshold() -> None:
    """amount_fen ≤ threshold_fen holds for money thresholds only: 满2件减10 has none."""
    ok = parse_rule_set(doc(kind="threshold", threshold_items=2, amount_fen=1000))
    assert ok.coupons[0].threshold_fen == 0
    with pytest.raises(InvalidInput):
        parse_rule_set(doc(kind="threshold", threshold_items=2, threshold_fen=500, amount_fen=1000))
