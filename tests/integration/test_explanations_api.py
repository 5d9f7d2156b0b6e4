"""A quote's explanation over HTTP is for the cashier and the customer (issue
11, item 16): 中文 and English from the rule set's names, a stable code per
step, the search's statistics apart in `debug`; the same on the till's fast
path and through FastAPI, as the OpenAPI document declares."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context
from tests.integration.checkout_helpers import RULES, give_coupon, open_shop

# The shop's rules, with a coupon for gold members only and one for store B only.
NAMED_RULES = RULES.replace(
    "stacking:",
    """  - {id: gold10, name: 金卡专享10元, kind: cash, amount_fen: 1000, scope: {tiers: [gold]}}
  - {id: b-only, name: B店专享5元, kind: cash, amount_fen: 500, scope: {stores: [B]}}
stacking:""",
    1,
)


def test_a_quote_explains_itself_with_names_in_both_languages_on_both_paths(
    ctx: Context,
) -> None:
    shop = open_shop(ctx, rules=NAMED_RULES)
    mj = give_coupon(ctx, shop, "mj100-20")
    gold = give_coupon(ctx, shop, "gold10")
    b_only = give_coupon(ctx, shop, "b-only")
    key = apikeys.create_key(ctx, shop.brand.id, Scope.CASHIER, "till", store_id=shop.store_a)
    body = json.dumps(
        {
            "store_id": shop.store_a,
            "member": {"member_id": shop.member},
            "lines": [{"sku": "tea", "category": "food", "unit_price_fen": 6000, "qty": 2}],
        }
    ).encode()
    headers = {"authorization": f"Bearer {key.secret}", "content-type": "application/json"}
    slow_app = create_app(ctx)
    slow_app.till_routes = {}  # type: ignore[attr-defined]
    answers: list[dict[str, Any]] = []
    with TestClient(create_app(ctx)) as fast, TestClient(slow_app) as slow:
        for client in (fast, slow):
            r = client.post("/v1/quotes", content=body, headers=headers)
            assert r.status_code == 200, r.text
            answers.append(r.json())
        spec = fast.get("/openapi.json").json()
    quoted, through_fastapi = answers
    assert quoted == through_fastapi

    notes = {n["code"]: n for n in quoted["explanation"]}
    assert notes["coupon_applied"] == {
        "code": "coupon_applied",
        "zh": "满100减20 省 20.00 元",
        "en": "满100减20 saves ¥20.00",
        "detail": {
            "benefit": "mj100-20",
            "kind": "threshold",
            "coupon_id": str(mj),
            "saving_fen": 2000,
        },
    }
    assert notes["points_earned"]["zh"] == "实付 100.00 元，得 100 积分"
    assert quoted["debug"]["combinations_evaluated"] > 0
    said = " ".join(n["en"] for n in quoted["explanation"])
    assert "search" not in said and "(threshold)" not in said and f"coupon {mj}" not in said
    assert [(a["name"], a["saving_fen"]) for a in quoted["applied"]] == [("满100减20", 2000)]
    unusable = {u["coupon_id"]: u for u in quoted["unusable"]}
    assert unusable[str(gold)]["name"] == "金卡专享10元"
    assert unusable[str(gold)]["message"] == "会员等级不符，仅限 金卡 使用"
    assert unusable[str(b_only)]["message_en"] == "not valid in this store; valid at store(s) B"
    assert quoted["points_rules"] == [
        {
            "rule": "base",
            "kind": "base",
            "description": "base",
            "factor": "1",
            "points": 100,
            "paid_fen": 10000,
            "zh": "基础积分 每元 1 积分",
            "en": "base rate 1 point(s) per ¥1",
        }
    ]

    schemas = spec["components"]["schemas"]
    quote_out = schemas["QuoteOut"]["properties"]
    assert quote_out["explanation"]["items"]["$ref"].endswith("/ExplanationOut")
    assert quote_out["points_rules"]["items"]["$ref"].endswith("/PointsRuleOut")
    assert "debug" in quote_out
    assert {"code", "zh", "en", "detail"} <= set(schemas["ExplanationOut"]["properties"])
    assert "coupon_returns" in schemas["RefundOut"]["properties"]
    assert "points_rules" in schemas["ReceiptOut"]["properties"]
