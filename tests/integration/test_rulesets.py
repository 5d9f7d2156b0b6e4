from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.pricing.rules import Kind
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.brands import Brand
from loyalpos.service.base.context import Context
from loyalpos.service.rulebook import rulesets

EXAMPLES = Path(__file__).parents[2] / "examples"

RULES_V1 = """
points:
  earn: [{id: base, kind: base, points_per_yuan: 1}]
coupons:
  - {id: mj, name: 满200减50, kind: threshold, threshold_fen: 20000, amount_fen: 5000}
"""
RULES_V2 = RULES_V1.replace("amount_fen: 5000", "amount_fen: 6000")


def hq(ctx: Context, brand: Brand) -> dict[str, str]:
    """Headers with a fresh HQ key of `brand`."""
    key = apikeys.create_key(ctx, brand.id, Scope.HQ, "test").secret
    return {"Authorization": f"Bearer {key}"}


def test_orders_are_priced_with_the_version_in_force_at_their_time(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    jan, feb = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    assert rulesets.in_force(ctx, brand.id, jan)[0] == 0
    v1 = rulesets.save_draft(ctx, brand.id, RULES_V1, author="hq", comment="first")
    assert rulesets.in_force(ctx, brand.id, feb)[0] == 0  # a draft governs nothing
    rulesets.publish(ctx, brand.id, v1.version, effective_from=jan, by="hq")
    v2 = rulesets.save_draft(ctx, brand.id, RULES_V2)
    rulesets.publish(ctx, brand.id, v2.version, effective_from=feb)
    number, rules = rulesets.in_force(ctx, brand.id, jan + timedelta(days=3))
    assert number == 1 and rules.benefits[0].amount == 5000
    number, rules = rulesets.in_force(ctx, brand.id, feb + timedelta(seconds=1))
    assert number == 2 and rules.benefits[0].amount == 6000
    assert rules.benefits[0].kind is Kind.THRESHOLD
    assert rulesets.in_force(ctx, brand.id, jan - timedelta(seconds=1))[0] == 0


def test_published_versions_are_immutable_and_numbers_are_per_brand(ctx: Context) -> None:
    a = brands.create_brand(ctx, "a", "A")
    b = brands.create_brand(ctx, "b", "B")
    v = rulesets.save_draft(ctx, a.id, RULES_V1)
    rulesets.publish(ctx, a.id, v.version)
    with pytest.raises(Conflict):
        rulesets.publish(ctx, a.id, v.version)
    assert rulesets.save_draft(ctx, b.id, RULES_V1).version == 1
    with pytest.raises(NotFound):
        rulesets.get(ctx, b.id, 2)
    assert [x.version for x in rulesets.versions(ctx, a.id)] == [1]


def test_a_wrong_rule_is_refused_naming_its_field(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    bad = RULES_V1.replace("threshold_fen: 20000", "threshold_fen: -5")
    with pytest.raises(InvalidInput) as raised:
        rulesets.save_draft(ctx, brand.id, bad)
    assert raised.value.detail["field"] == "coupons.0.threshold_fen"
    assert rulesets.versions(ctx, brand.id) == []


def test_yaml_export_reimports_to_the_same_rules(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    text = (EXAMPLES / "09_member_day_coupon_with_points.yaml").read_text()
    import yaml

    rules_only = yaml.safe_dump(yaml.safe_load(text)["rules"], allow_unicode=True)
    v1 = rulesets.save_draft(ctx, brand.id, rules_only)
    exported = rulesets.export_yaml(ctx, brand.id, v1.version)
    v2 = rulesets.save_draft(ctx, brand.id, exported)
    assert v2.document == v1.document


def test_rules_over_http(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    client = TestClient(create_app(ctx))
    h = hq(ctx, brand)
    import yaml

    doc = yaml.safe_load(RULES_V1)
    r = client.post("/v1/rules", json={"document": doc, "comment": "c"}, headers=h)
    assert r.status_code == 201 and r.json()["status"] == "draft"
    r = client.post("/v1/rules/1/publish", json={}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "published"
    assert client.post("/v1/rules/1/publish", json={}, headers=h).status_code == 409
    assert client.get("/v1/rules/9", headers=h).json()["error"]["code"] == "rule_set_not_found"
    doc["coupons"][0]["kind"] = "nonsense"
    r = client.post("/v1/rules", json={"document": doc}, headers=h)
    assert r.status_code == 422
    assert r.json()["error"]["detail"]["field"].startswith("coupons.0")
    assert client.get("/v1/rules", headers=h).json()["count"] == 1
    other = brands.create_brand(ctx, "other", "O")
    assert client.get("/v1/rules/1", headers=hq(ctx, other)).status_code == 404


def test_simulate_over_http_matches_the_example(ctx: Context) -> None:
    import yaml

    brand = brands.create_brand(ctx, "b", "B")
    client = TestClient(create_app(ctx))
    doc = yaml.safe_load((EXAMPLES / "08_points_offset.yaml").read_text())
    r = client.post("/v1/simulate", json=doc, headers=hq(ctx, brand))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["points_redeemed"], body["payable_fen"], body["points_earned"]) == (
        6000,
        24000,
        240,
    )
    doc["cart"]["lines"][0]["qty"] = -1
    r = client.post("/v1/simulate", json=doc, headers=hq(ctx, brand))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_simulation"
    assert r.json()["error"]["detail"]["field"] == "cart.lines.0.qty"


def test_times_out_of_range_are_refused_not_overflowed(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    client = TestClient(create_app(ctx))
    h = hq(ctx, brand)
    assert client.post("/v1/rules", json={"document": {}}, headers=h).status_code == 201
    for when in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"):
        r = client.post("/v1/rules/1/publish", json={"effective_from": when}, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["detail"]["field"] == "effective_from"
    from loyalpos.service.loyalty import members

    m = members.register(ctx, brand.id, phone="13800138000", name="M")
    r = client.get(
        f"/v1/members/{m.id}/points/history",
        params={"since": "0001-01-01T00:00:00+14:00"},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["error"]["detail"]["field"] == "since"
