"""The issue's worked examples, each a file under examples/, priced through
`simulate_text` (the code behind `loyalpos simulate FILE`), plus the variants
the issue names, made by changing one field of the loaded document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from loyalpos.rules.simulate import simulate, simulate_text

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def run(name: str) -> dict[str, Any]:
    return simulate_text((EXAMPLES / name).read_text(encoding="utf-8"))


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def set_cart_total(doc: dict[str, Any], total_fen: int) -> None:
    """Make the (single-line) cart cost `total_fen`."""
    (only,) = doc["cart"]["lines"]
    only["qty"] = 1
    only["unit_price_fen"] = total_fen


def applied_coupons(result: dict[str, Any]) -> list[str]:
    return [a["coupon_id"] for a in result["applied"] if a["coupon_id"] is not None]


def unusable_by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["coupon_id"]: u for u in result["unusable"]}


def assert_consistent(result: dict[str, Any]) -> None:
    lines = result["lines"]
    assert sum(x["payable_fen"] for x in lines) == result["payable_fen"]
    assert sum(x["discount_fen"] for x in lines) == result["discount_fen"]
    assert sum(x["points_earned"] for x in lines) == result["points_earned"]
    assert (
        result["subtotal_fen"] - result["discount_fen"] - result["points_offset_fen"]
        == result["payable_fen"]
    )


def test_every_example_file_is_covered_by_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert f'"{path.name}"' in source, path.name


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_prices_with_sums_that_add_up(path: Path) -> None:
    result = simulate_text(path.read_text(encoding="utf-8"))
    assert_consistent(result)
    assert result["explanation"], "every quote explains itself"


# 1. base rate and tier multiplier


def test_one_point_per_ten_yuan_gives_ten_points_on_100_yuan() -> None:
    result = run("01_base_rate.yaml")
    assert result["payable_fen"] == 10000
    assert result["points_earned"] == 10


def test_a_gold_member_earns_fifteen_points_on_the_same_cart() -> None:
    assert run("01b_base_rate_gold.yaml")["points_earned"] == 15


def test_changing_the_member_to_gold_in_example_1_gives_fifteen() -> None:
    doc = load("01_base_rate.yaml")
    doc["member"]["tier"] = "gold"
    assert simulate(doc)["points_earned"] == 15


# 2. category rates


def test_category_rates_give_250_points_for_100_yuan_of_each_margin() -> None:
    result = run("02_category_rates.yaml")
    assert result["points_earned"] == 250
    assert [x["points_earned"] for x in result["lines"]] == [200, 50]


# 3. weekend double


def test_weekend_double_points_give_200_on_a_saturday() -> None:
    assert run("03_weekend_double.yaml")["points_earned"] == 200


def test_the_same_cart_on_a_tuesday_earns_100() -> None:
    doc = load("03_weekend_double.yaml")
    doc["cart"]["time"] = "2024-06-04T15:30"
    assert simulate(doc)["points_earned"] == 100


# 4. threshold bonus


def test_600_yuan_earns_600_plus_the_500_step_bonus() -> None:
    result = run("04_threshold_bonus.yaml")
    assert result["payable_fen"] == 60000
    assert result["points_earned"] == 1100


def test_1200_yuan_earns_1200_plus_only_the_highest_step() -> None:
    doc = load("04_threshold_bonus.yaml")
    set_cart_total(doc, 120000)
    assert simulate(doc)["points_earned"] == 2400


# 5. 满200减50


def test_threshold_coupon_on_250_yuan_pays_200() -> None:
    result = run("05_threshold_coupon.yaml")
    assert result["subtotal_fen"] == 25000
    assert result["discount_fen"] == 5000
    assert result["payable_fen"] == 20000
    assert applied_coupons(result) == ["C1"]
    assert result["applied"][0]["kind"] == "threshold"
    assert result["applied"][0]["saving_fen"] == 5000
    assert result["unusable"] == []


def test_threshold_coupon_on_190_yuan_is_unusable_ten_yuan_short() -> None:
    doc = load("05_threshold_coupon.yaml")
    set_cart_total(doc, 19000)
    result = simulate(doc)
    assert result["applied"] == []
    assert result["payable_fen"] == 19000
    c1 = unusable_by_id(result)["C1"]
    assert c1["reason_code"] == "below_threshold"
    assert c1["detail"]["shortfall_fen"] == 1000
    assert "还差 10.00 元" in c1["message"]
    assert "10.00" in c1["message_en"]


# 6. exclusive choice


def test_on_300_yuan_the_threshold_coupon_beats_the_ninety_percent_coupon() -> None:
    result = run("06_exclusive_choice.yaml")
    assert applied_coupons(result) == ["C1"]
    assert result["discount_fen"] == 5000
    c2 = unusable_by_id(result)["C2"]
    assert c2["reason_code"] == "conflicts_with_chosen"
    assert "满200减50" in c2["message"]


def test_on_600_yuan_the_ninety_percent_coupon_is_chosen() -> None:
    doc = load("06_exclusive_choice.yaml")
    set_cart_total(doc, 60000)
    result = simulate(doc)
    assert applied_coupons(result) == ["C2"]
    assert result["discount_fen"] == 6000
    assert result["payable_fen"] == 54000
    assert unusable_by_id(result)["C1"]["reason_code"] == "conflicts_with_chosen"


# 7. identical coupons, earliest expiry


def test_of_two_identical_coupons_the_one_expiring_first_is_used() -> None:
    result = run("07_earliest_expiry_tie.yaml")
    assert applied_coupons(result) == ["C-EARLY"]
    assert result["payable_fen"] == 20000
    assert "C-LATE" in unusable_by_id(result)


def test_swapping_the_expiry_dates_swaps_the_coupon_used() -> None:
    doc = load("07_earliest_expiry_tie.yaml")
    late, early = doc["member"]["wallet"]
    late["expires_at"], early["expires_at"] = early["expires_at"], late["expires_at"]
    assert applied_coupons(simulate(doc)) == ["C-LATE"]


def test_the_earliest_expiry_strategy_also_uses_the_coupon_expiring_first() -> None:
    doc = load("07_earliest_expiry_tie.yaml")
    doc["options"] = {"strategy": "earliest_expiry"}
    assert applied_coupons(simulate(doc)) == ["C-EARLY"]


# 8. points offset


def test_max_points_on_300_yuan_redeem_6000_points_for_60_yuan() -> None:
    result = run("08_points_offset.yaml")
    assert result["points_redeemed"] == 6000
    assert result["points_offset_fen"] == 6000
    assert result["discount_fen"] == 0
    assert result["payable_fen"] == 24000
    assert result["points_earned"] == 240


# 9. member-day coupon plus points


def test_member_day_coupon_and_max_points_pay_224_yuan() -> None:
    result = run("09_member_day_coupon_with_points.yaml")
    assert applied_coupons(result) == ["MD1"]
    assert result["applied"][0]["saving_fen"] == 2000
    assert result["discount_fen"] == 2000
    assert result["points_redeemed"] == 5600
    assert result["points_offset_fen"] == 5600
    assert result["payable_fen"] == 22400
    assert result["points_earned"] == 224


def test_the_member_day_coupon_is_unusable_on_another_weekday() -> None:
    doc = load("09_member_day_coupon_with_points.yaml")
    doc["cart"]["time"] = "2024-06-04T18:00"
    result = simulate(doc)
    assert unusable_by_id(result)["MD1"]["reason_code"] == "outside_time_window"
    assert result["points_redeemed"] == 6000
    assert result["payable_fen"] == 24000


# 10. allocation


def test_a_ten_yuan_discount_over_three_ten_yuan_lines_is_334_333_333() -> None:
    result = run("10_allocation.yaml")
    assert [x["discount_fen"] for x in result["lines"]] == [334, 333, 333]
    assert [x["payable_fen"] for x in result["lines"]] == [666, 667, 667]
    assert result["discount_fen"] == 1000
    assert result["payable_fen"] == 2000


def test_a_member_price_and_a_percent_coupon_multiply_to_85_5_percent() -> None:
    result = run("10b_percent_stacking.yaml")
    assert result["payable_fen"] == 8550
    assert result["discount_fen"] == 1450
    savings = {a["kind"]: a["saving_fen"] for a in result["applied"]}
    assert savings == {"member_price": 500, "percent": 950}


# 11. item and bundle coupons


def test_free_coffee_line_pays_nothing_and_the_bundle_saves_15_yuan() -> None:
    result = run("11_item_and_bundle.yaml")
    lines = {x["sku"]: x for x in result["lines"]}
    assert lines["coffee"]["payable_fen"] == 0
    savings = {a["coupon_id"]: (a["kind"], a["saving_fen"]) for a in result["applied"]}
    assert savings == {"K1": ("item", 2500), "B1": ("bundle", 1500)}
    bundle_lines = ("burger", "fries", "drink")
    assert sum(lines[s]["payable_fen"] for s in bundle_lines) == 3000
    assert result["payable_fen"] == 3000


# 12-13. 第二件半价 across lines, and 任选两件第二件半价


def line_figures(result: dict[str, Any], key: str) -> list[int]:
    return [x[key] for x in result["lines"]]


def test_second_bun_half_price_with_one_line_per_scan() -> None:
    result = run("12_second_half_per_scan.yaml")
    assert (result["subtotal_fen"], result["discount_fen"], result["payable_fen"]) == (
        5200,
        400,
        4800,
    )
    assert line_figures(result, "discount_fen") == [200, 200, 0, 0]
    assert [(a["benefit"], a["saving_fen"]) for a in result["applied"]] == [
        ("bakery-2nd-half", 400)
    ]


def test_the_same_buns_as_one_line_save_the_same() -> None:
    doc = load("12_second_half_per_scan.yaml")
    buns = doc["cart"]["lines"][:3]
    doc["cart"]["lines"] = [{**buns[0], "qty": 3}, doc["cart"]["lines"][3]]
    assert simulate(doc)["discount_fen"] == 400


def test_any_two_drinks_the_cheaper_at_half_price() -> None:
    result = run("13_any_two_second_half.yaml")
    assert (result["discount_fen"], result["payable_fen"]) == (1400, 7400)
    assert line_figures(result, "discount_fen") == [0, 800, 600, 0]


def test_grouped_per_sku_only_the_two_juices_pair() -> None:
    doc = load("13_any_two_second_half.yaml")
    doc["rules"]["promotions"][0]["nth_group"] = "sku"
    result = simulate(doc)
    assert line_figures(result, "discount_fen") == [0, 0, 600, 0]


# 14-17. Count thresholds (满 N 件)


def test_three_items_pay_80_percent() -> None:
    result = run("14_three_items_20_off.yaml")
    assert applied_coupons(result) == ["C1"]
    assert (result["discount_fen"], result["payable_fen"]) == (2740, 10960)
    assert line_figures(result, "payable_fen") == [9440, 1520, 0]


def test_without_the_socks_the_free_bag_does_not_make_three() -> None:
    doc = load("14_three_items_20_off.yaml")
    del doc["cart"]["lines"][1]
    c1 = unusable_by_id(simulate(doc))["C1"]
    assert c1["reason_code"] == "below_count_threshold"
    assert c1["detail"] == {"shortfall_items": 1, "threshold_items": 3}


def test_two_snacks_scanned_apart_get_ten_yuan_off() -> None:
    result = run("15_two_items_minus_10.yaml")
    assert (result["discount_fen"], result["payable_fen"]) == (1000, 600)
    assert line_figures(result, "payable_fen") == [150, 150, 300]


def test_at_least_five_items_and_fifty_yuan() -> None:
    result = run("16_order_at_least_5_items.yaml")
    assert applied_coupons(result) == ["C1"]
    assert line_figures(result, "discount_fen") == [129, 171, 500, 0]
    assert result["payable_fen"] == 4800


def test_one_pen_fewer_is_an_item_short_and_cheaper_ink_four_yuan_short() -> None:
    doc = load("16_order_at_least_5_items.yaml")
    doc["cart"]["lines"][0]["qty"] = 2
    c1 = unusable_by_id(simulate(doc))["C1"]
    assert c1["reason_code"] == "below_count_threshold"
    assert c1["detail"] == {"shortfall_items": 1, "threshold_items": 5}
    doc = load("16_order_at_least_5_items.yaml")
    doc["cart"]["lines"][2]["unit_price_fen"] = 2500
    c1 = unusable_by_id(simulate(doc))["C1"]
    assert c1["reason_code"] == "below_threshold"
    assert c1["detail"] == {"shortfall_fen": 400, "threshold_fen": 5000}


def test_a_count_threshold_not_met_says_how_many_items_are_missing() -> None:
    result = run("17_count_threshold_not_met.yaml")
    assert applied_coupons(result) == ["C2"]
    assert result["payable_fen"] == 9800
    c1 = unusable_by_id(result)["C1"]
    assert c1["reason_code"] == "below_count_threshold"
    assert c1["message"] == "未满 3 件，还差 1 件"
    assert c1["message_en"] == "add 1 more item to reach 3"
    assert c1["detail"] == {"shortfall_items": 1, "threshold_items": 3}


# The complete example of docs/simulate.md


def test_the_complete_example_in_the_docs_prints_the_documented_output() -> None:
    text = (EXAMPLES.parent / "docs" / "simulate.md").read_text(encoding="utf-8")
    example = text.split("## A complete example", 1)[1]
    document = example.split("```yaml\n", 1)[1].split("```", 1)[0]
    output = example.split("```json\n", 1)[1].split("```", 1)[0]
    expected = json.loads(output)
    result = simulate_text(document)
    # How many combinations the search evaluated depends on its pruning.
    assert set(result.pop("debug")) == set(expected.pop("debug")) == {"combinations_evaluated"}
    assert result == expected
