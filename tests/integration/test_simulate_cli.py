"""`loyalpos simulate FILE` as a contract: the JSON keys the issue lists, and
errors as JSON with exit code 1. No database is involved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from loyalpos.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

QUOTE_KEYS = {
    "subtotal_fen",
    "discount_fen",
    "points_redeemed",
    "points_offset_fen",
    "payable_fen",
    "points_earned",
    "applied",
    "unusable",
    "lines",
    "points_rules",
    "explanation",
    "debug",
}
APPLIED_KEYS = {"coupon_id", "name", "kind", "saving_fen"}
UNUSABLE_KEYS = {"coupon_id", "name", "reason_code", "message", "message_en"}
NOTE_KEYS = {"code", "zh", "en", "detail"}
LINE_KEYS = {"sku", "qty", "subtotal_fen", "discount_fen", "payable_fen", "points_earned"}
MONEY_KEYS = ["subtotal_fen", "discount_fen", "points_offset_fen", "payable_fen"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def simulate_ok(runner: CliRunner, path: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 0, (result.output, result.exception)
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def simulate_error(runner: CliRunner, path: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert isinstance(error, dict)
    return error


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_simulate_prints_a_quote_with_every_key_of_the_contract(
    runner: CliRunner, path: Path
) -> None:
    data = simulate_ok(runner, path)
    assert QUOTE_KEYS <= data.keys()
    for key in MONEY_KEYS + ["points_redeemed", "points_earned"]:
        assert isinstance(data[key], int) and not isinstance(data[key], bool), key
    assert all(APPLIED_KEYS <= a.keys() for a in data["applied"])
    assert all(UNUSABLE_KEYS <= u.keys() for u in data["unusable"])
    assert data["lines"] and all(LINE_KEYS <= x.keys() for x in data["lines"])
    notes = data["explanation"]
    assert notes and all(note.keys() == NOTE_KEYS for note in notes)
    assert all(isinstance(note[k], str) and note[k] for note in notes for k in ("code", "zh", "en"))
    assert sum(r["points"] or 0 for r in data["points_rules"]) == data["points_earned"]
    assert isinstance(data["debug"]["combinations_evaluated"], int)


def test_simulate_of_the_threshold_example_shows_the_coupon_and_what_is_paid(
    runner: CliRunner,
) -> None:
    data = simulate_ok(runner, EXAMPLES / "05_threshold_coupon.yaml")
    assert [(a["coupon_id"], a["kind"], a["saving_fen"]) for a in data["applied"]] == [
        ("C1", "threshold", 5000)
    ]
    assert data["payable_fen"] == 20000
    assert data["lines"] == [
        {
            "sku": "shirt",
            "qty": 1,
            "subtotal_fen": 25000,
            "discount_fen": 5000,
            "points_offset_fen": 0,
            "payable_fen": 20000,
            "points_earned": 0,
        }
    ]


def test_simulate_prints_chinese_messages_readably(runner: CliRunner, tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "05_threshold_coupon.yaml").read_text(encoding="utf-8"))
    doc["cart"]["lines"][0]["unit_price_fen"] = 19000
    path = tmp_path / "short.json"
    path.write_text(json.dumps(doc, default=str), encoding="utf-8")
    result = runner.invoke(app, ["simulate", str(path)])
    assert result.exit_code == 0, result.output
    assert "还差 10.00 元" in result.stdout  # not \u-escaped
    (c1,) = json.loads(result.stdout)["unusable"]
    assert (c1["coupon_id"], c1["reason_code"]) == ("C1", "below_threshold")


def test_a_broken_rule_exits_1_with_an_error_naming_the_field(
    runner: CliRunner, tmp_path: Path
) -> None:
    doc = yaml.safe_load((EXAMPLES / "05_threshold_coupon.yaml").read_text(encoding="utf-8"))
    doc["rules"]["coupons"][0]["threshold_fen"] = -100
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    error = simulate_error(runner, path)
    assert error["code"] == "invalid_simulation"
    assert error["detail"]["field"] == "rules.coupons.0.threshold_fen"
    assert "rules.coupons.0.threshold_fen" in error["message"]


def test_a_broken_cart_exits_1_naming_the_line(runner: CliRunner, tmp_path: Path) -> None:
    doc = yaml.safe_load((EXAMPLES / "01_base_rate.yaml").read_text(encoding="utf-8"))
    doc["cart"]["lines"][0]["qty"] = 0
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert simulate_error(runner, path)["detail"]["field"] == "cart.lines.0.qty"


def test_a_yaml_syntax_error_exits_1_with_code_unparseable(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("rules: [\ncart: {store: S1\n", encoding="utf-8")
    error = simulate_error(runner, path)
    assert error["code"] == "unparseable"


def test_a_missing_file_is_refused_without_a_traceback(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0
    assert not isinstance(result.exception, FileNotFoundError)
