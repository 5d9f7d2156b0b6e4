"""The rule-set document: wrong rules are refused naming the field, the
document survives a YAML round trip, and it converts to the domain classes."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.pricing import rules as d
from loyalpos.rules.convert import dump_yaml, load_text, parse_rule_set, rule_set
from loyalpos.rules.simulate import simulate

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def refusal(data: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_rule_set(data)
    assert caught.value.code == "invalid_rules"
    return caught.value


def coupon(**fields: Any) -> dict[str, Any]:
    return {"coupons": [{"id": "c", **fields}]}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (coupon(kind="threshold", threshold_fen=-1, amount_fen=500), "coupons.0.threshold_fen"),
        (coupon(kind="cash", amount_fen=1.5), "coupons.0.amount_fen"),
        (coupon(kind="percent", percent=120), "coupons.0.percent"),
        (coupon(kind="percent", percent="88.555"), "coupons.0.percent"),
        (coupon(kind="bogus"), "coupons.0.kind"),
        (coupon(kind="cash", amount_fen=500, thresold_fen=100), "coupons.0.thresold_fen"),
        (
            coupon(kind="cash", amount_fen=500, scope={"weekdays": [8]}),
            "coupons.0.scope.weekdays.0",
        ),
        (coupon(kind="cash", amount_fen=500, scope={"hours": ["14-10"]}), "coupons.0.scope.hours"),
        ({"coupons": [{"id": "a b", "kind": "cash", "amount_fen": 500}]}, "coupons.0.id"),
        (
            {"points": {"earn": [{"id": "b", "kind": "base", "points_per_yuan": -1}]}},
            "points.earn.0.base.points_per_yuan",
        ),
        ({"points": {"earn": [{"id": "b", "kind": "nope"}]}}, "points.earn.0"),
        ({"points": {"offset": {"cap_percent": 0}}}, "points.offset.cap_percent"),
        ({"stacking": {"max_coupons": -1}}, "stacking.max_coupons"),
        ({"stacking": {"forbidden_pairs": [["a"]]}}, "stacking.forbidden_pairs.0"),
        ({"stacking": {"order": ["cash", "cash"]}}, "stacking.order"),
        ({"change_rounding": {"default": "yuan"}}, "change_rounding.default"),
        ({"member_prices": {"tiers": {"gold": 0}}}, "member_prices.tiers.gold"),
        ({"promotions": [{"id": "p", "kind": "cash"}]}, "promotions.0"),
        ({"version": 2}, "version"),
    ],
)
def test_a_wrong_rule_is_refused_naming_its_field(data: dict[str, Any], field: str) -> None:
    problem = refusal(data)
    assert problem.detail["field"] == field
    assert field in problem.message
    assert problem.detail["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"kind": "threshold", "threshold_fen": 0, "amount_fen": 500}, "threshold_fen"),
        ({"kind": "threshold", "threshold_fen": 100, "amount_fen": 500}, "amount_fen"),
        ({"kind": "percent"}, "percent"),
        ({"kind": "nth_discount"}, "percent"),
        ({"kind": "item"}, "sku"),
        ({"kind": "bundle", "bundle": ["x"], "price_fen": 100}, "bundle"),
        ({"kind": "cash"}, "amount_fen"),
        (
            {"kind": "cash", "amount_fen": 1, "valid_from": "2024-06-02", "valid_to": "2024-06-01"},
            "valid_to",
        ),
    ],
)
def test_a_benefit_missing_what_its_kind_needs_is_refused_saying_what(
    fields: dict[str, Any], words: str
) -> None:
    problem = refusal(coupon(**fields))
    assert problem.detail["field"] == "coupons.0"
    assert words in problem.message


def test_validity_with_and_without_an_offset_is_compared_not_crashed_on() -> None:
    problem = refusal(
        coupon(
            kind="cash",
            amount_fen=1,
            valid_from="2024-06-02T00:00:00+08:00",
            valid_to="2024-06-01T00:00:00",
        )
    )
    assert "valid_to" in problem.message
    ok = parse_rule_set(
        coupon(
            kind="cash",
            amount_fen=1,
            valid_from="2024-06-01T00:00:00+08:00",
            valid_to="2024-06-30T00:00:00",
        )
    )
    assert ok.coupons[0].valid_to is not None


def test_duplicate_benefit_ids_are_refused() -> None:
    twice = {
        "coupons": [{"id": "x", "kind": "cash", "amount_fen": 1}],
        "promotions": [{"id": "x", "kind": "cash", "amount_fen": 1}],
    }
    assert "unique: x" in refusal(twice).message


def test_every_problem_is_listed_not_only_the_first() -> None:
    problem = refusal({"coupons": [{"id": "a", "kind": "cash", "amount_fen": -1, "cap_fen": 0}]})
    fields = {e["field"] for e in problem.detail["errors"]}
    assert fields == {"coupons.0.amount_fen", "coupons.0.cap_fen"}


def test_a_simulation_document_names_the_field_under_its_section() -> None:
    with pytest.raises(InvalidInput) as caught:
        simulate(
            {
                "rules": coupon(kind="threshold", threshold_fen=-5, amount_fen=1),
                "cart": {"store": "S1", "time": "2024-06-04T12:00", "lines": []},
            }
        )
    assert caught.value.code == "invalid_simulation"
    fields = {e["field"] for e in caught.value.detail["errors"]}
    assert {"rules.coupons.0.threshold_fen", "cart.lines"} <= fields


# Conversion to the domain


def test_percentages_rates_and_money_convert_exactly() -> None:
    doc = parse_rule_set(
        {
            "points": {
                "rounding": "ceil",
                "earn": [
                    {"id": "b", "kind": "base", "yuan_per_point": 10},
                    {"id": "t", "kind": "tier_multiplier", "multipliers": {"gold": "1.5"}},
                    {"id": "h", "kind": "category_rate", "points_per_yuan": 2,
                     "scope": {"categories": ["hi"]}},
                ],
                "offset": {"points_per_yuan": 100, "cap_percent": 20, "step": 100},
            },
            "coupons": [
                {"id": "p", "kind": "percent", "percent": "88.5", "cap_fen": 3000},
                {"id": "lunch", "kind": "cash", "amount_fen": 500,
                 "scope": {"hours": ["11:00-14:00"], "weekdays": [3]}},
            ],
            "promotions": [{"id": "2nd", "kind": "nth_discount", "percent": 50}],
            "member_prices": {"tiers": {"gold": 95}, "items": {"tea": {"gold": 800}}},
            "stacking": {"max_coupons": 2, "threshold_base": "original",
                         "forbidden_pairs": [["threshold", "percent"]]},
            "change_rounding": {"default": "fen", "stores": {"S2": "jiao"}},
        }
    )  # fmt: skip
    r = rule_set(doc)
    base, tier, high = r.earn
    assert base.rate == Fraction(1, 1000)  # points per 分
    assert tier.tier_multipliers == {"gold": Fraction(3, 2)}
    assert high.rate == Fraction(2, 100)
    assert r.points_rounding is d.PointsRounding.CEIL
    assert r.points_offset == d.PointsOffset(
        enabled=True, points_per_unit=100, unit_fen=100, cap_percent=2000, min_points=0, step=100
    )
    p, lunch, nth = r.benefits
    assert (p.kind, p.percent, p.cap, p.promotion) == (d.Kind.PERCENT, 8850, 3000, False)
    assert lunch.scope.window.weekdays == frozenset({3})
    assert [(str(a), str(b)) for a, b in lunch.scope.window.hours] == [("11:00:00", "14:00:00")]
    assert (nth.promotion, nth.percent, nth.nth) == (True, 5000, 2)
    assert r.member_prices.tier_percent == {"gold": 9500}
    assert r.member_prices.item_prices == {"tea": {"gold": 800}}
    assert r.stacking.max_coupons == 2
    assert r.stacking.threshold_base is d.ThresholdBase.ORIGINAL
    assert r.stacking.forbidden_pairs == (("threshold", "percent"),)
    assert r.stacking.order == d.Stacking().order
    assert r.change_rounding is d.ChangeRounding.FEN
    assert r.store_change_rounding == {"S2": d.ChangeRounding.JIAO}


def test_without_an_offset_section_points_cannot_pay() -> None:
    assert rule_set(parse_rule_set({})).points_offset.enabled is False


# YAML round trip


def round_trip(data: Any) -> None:
    doc = parse_rule_set(data)
    text = dump_yaml(doc)
    assert parse_rule_set(load_text(text)) == doc
    assert parse_rule_set(yaml.safe_load(text)) == doc


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_rules_of_every_example_survive_a_yaml_round_trip(path: Path) -> None:
    round_trip(yaml.safe_load(path.read_text(encoding="utf-8"))["rules"])


def test_a_document_using_every_section_survives_a_yaml_round_trip() -> None:
    round_trip(
        {
            "points": {
                "rounding": "round",
                "earn": [
                    {"id": "b", "kind": "base", "points_per_yuan": "0.1"},
                    {"id": "t", "kind": "tier_multiplier", "multipliers": {"gold": 1.5}},
                    {"id": "x", "kind": "exclude", "scope": {"skus": ["gift-card"]}},
                    {"id": "h", "kind": "time_multiplier", "multiplier": 2,
                     "scope": {"dates": ["2024-10-01"], "hours": ["10:00-14:00"]}},
                    {"id": "s", "kind": "threshold_bonus",
                     "steps": [{"spend_fen": 50000, "points": 500}]},
                    {"id": "f", "kind": "first_order_bonus", "points": 100},
                ],
                "offset": {"points_per_yuan": 50, "cap_percent": "20.5", "step": 50},
            },
            "member_prices": {"tiers": {"gold": "95.5"}, "items": {"no": {"gold": 100}}},
            "coupons": [
                {"id": "a", "name": "满200减50", "kind": "threshold", "threshold_fen": 20000,
                 "amount_fen": 5000, "step_fen": 20000, "cap_fen": 15000,
                 "valid_from": "2024-06-01T00:00:00+08:00", "valid_to": "2024-06-30T00:00",
                 "points_multiplier": "1.3333", "limits": {"per_member_day": 1}},
                {"id": "k", "kind": "bundle", "bundle": ["null", "1e3"], "price_fen": 100},
            ],
            "promotions": [{"id": "p", "kind": "buy_n_free", "n": 4, "priority": -1}],
            "stacking": {"max_coupons": 3, "order": ["cash", "percent"],
                         "exclusive_groups": [["x", "y"]], "forbidden_pairs": [["a", "k"]]},
            "change_rounding": {"default": "jiao", "stores": {"on": "none"}},
        }
    )  # fmt: skip


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
idents = st.from_regex(r"[A-Za-z0-9_\-.:]{1,12}", fullmatch=True)
percents = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2)


@st.composite
def benefit_docs(draw: st.DrawFn, i: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["threshold", "percent", "cash", "item", "bundle"]))
    doc: dict[str, Any] = {"id": f"b{i}-{draw(idents)}", "kind": kind, "name": draw(texts)}
    if kind == "threshold":
        amount = draw(st.integers(1, 10_000))
        doc |= {"amount_fen": amount, "threshold_fen": draw(st.integers(amount, 100_000))}
    elif kind == "percent":
        doc |= {"percent": draw(percents)}
    elif kind == "cash":
        doc |= {"amount_fen": draw(st.integers(1, 10_000))}
    elif kind == "item":
        doc |= {"sku": draw(texts.filter(bool)), "price_fen": draw(st.integers(0, 999))}
    else:
        doc |= {"bundle": draw(st.lists(texts, min_size=2, max_size=3)), "price_fen": 100}
    doc["scope"] = {
        "categories": draw(st.lists(texts, max_size=2)),
        "weekdays": draw(st.lists(st.integers(1, 7), max_size=3)),
    }
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_rule_documents_survive_a_yaml_round_trip(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 3))
    round_trip(
        {
            "coupons": [data.draw(benefit_docs(i)) for i in range(n)],
            "member_prices": {"tiers": data.draw(st.dictionaries(texts, percents, max_size=2))},
        }
    )


# Coupon return policy (退券规则) and tier names


def test_a_coupon_template_carries_its_return_policy_full_refund_by_default() -> None:
    doc = parse_rule_set(
        {
            "coupons": [
                {"id": "a", "kind": "cash", "amount_fen": 500},
                {"id": "b", "kind": "cash", "amount_fen": 500, "return_policy": "never"},
                {"id": "c", "kind": "threshold", "threshold_fen": 10000, "amount_fen": 500,
                 "return_policy": "threshold_broken"},
            ],
            "tiers": [{"id": "gold", "name": "金卡", "min_spent_fen": 0}, {"id": "vip",
                      "min_spent_fen": 100}],
        }
    )  # fmt: skip
    r = rule_set(doc)
    assert [b.return_policy for b in r.benefits] == [
        d.ReturnPolicy.FULL_REFUND,
        d.ReturnPolicy.NEVER,
        d.ReturnPolicy.THRESHOLD_BROKEN,
    ]
    assert r.tier_names == {"gold": "金卡", "vip": "vip"}
    assert "return_policy" not in dump_yaml(doc).split("id: a")[1].split("id: b")[0]
    round_trip(doc.model_dump(mode="json", exclude_defaults=True))


@pytest.mark.parametrize(
    ("where", "policy", "message"),
    [
        ("coupons", "sometimes", "Input should be 'full_refund', 'threshold_broken' or 'never'"),
        ("promotions", "never", "promotion p: return_policy is for coupons"),
    ],
)
def test_a_wrong_return_policy_is_refused(where: str, policy: str, message: str) -> None:
    benefit = {"id": "p", "kind": "cash", "amount_fen": 500, "return_policy": policy}
    with pytest.raises(InvalidInput) as err:
        parse_rule_set({where: [benefit]})
    assert message in err.value.message
