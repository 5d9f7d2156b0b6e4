"""Which rules produced an order's points (issue 11, item 17), on SQLite and
PostgreSQL: in the quote, in the receipt (answered and stored), with the order
(written by its own INSERT, no statement more), and in the points history next
to the order's earn entry and a refund's reversal of it."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loyalpos.api.app import create_app
from loyalpos.db.tables import orders
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons, points
from loyalpos.service.till import checkout, refunds
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from tests.integration.checkout_helpers import cart, confirm_request, open_shop
from tests.integration.sql_spy import sent_statements

# 2024-01-01 (the test clock's day, a Monday, noon in Shanghai) is a member day.
RULES = """
points:
  earn:
    - {id: base, kind: base, points_per_yuan: 1}
    - {id: member-day, kind: time_multiplier, multiplier: 2, scope: {weekdays: [1]},
       description: 周一会员日}
    - {id: big, kind: threshold_bonus, steps: [{spend_fen: 10000, points: 50}],
       description: 满百送积分}
    - {id: welcome, kind: first_order_bonus, points: 100, description: 首单礼}
coupons:
  - {id: x2, name: 双倍积分券, kind: cash, amount_fen: 1000, points_multiplier: 2}
stacking: {max_coupons: 1}
tiers:
  - {id: normal, name: 普通会员, min_spent_fen: 0}
"""


def test_the_rules_behind_the_points_go_with_the_order_in_its_one_insert(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = open_shop(ctx, rules=RULES)
    coupon = coupons.issue_to_member(ctx, shop.brand.id, shop.member, "x2").id
    c = cart(shop.store_a, shop.member, ("bag", 12000, 1))
    quoted = checkout.quote(ctx, shop.brand.id, c).as_json()
    # 110 元 paid: 110 × 2 (member day) × 2 (the coupon) = 440, + 50 + 100 = 590.
    assert quoted["points_earned"] == 590
    assert [(r["kind"], r["factor"], r["points"]) for r in quoted["points_rules"]] == [
        ("base", "1", 440),
        ("time_multiplier", "2", None),
        ("coupon_multiplier", "2", None),
        ("threshold_bonus", None, 50),
        ("first_order_bonus", None, 100),
    ]
    seen = sent_statements(ctx, monkeypatch)
    req = confirm_request("O-1", c, 11000, coupon_ids=(coupon,))
    receipt = checkout.confirm(ctx, shop.brand.id, req).receipt
    assert receipt["points_earned"] == 590
    assert receipt["points_rules"] == quoted["points_rules"]
    assert receipt["pricing_tier"] == "normal"
    writes = [s for s in seen if s.startswith(("INSERT INTO orders ", "UPDATE orders "))]
    (insert,) = writes  # one statement writes the order, its rules with it
    assert insert.startswith("INSERT INTO orders") and "points_rules" in insert
    assert (
        checkout.get_order(ctx, shop.brand.id, shop.store_a, "O-1")["points_rules"]
        == (receipt["points_rules"])
    )
    with ctx.transaction() as conn:
        stored = conn.execute(select(orders.c.points_rules)).scalar_one()
    assert json.loads(stored) == receipt["points_rules"]


def test_the_history_shows_the_rules_with_the_order_and_its_refund(ctx: Context) -> None:
    shop = open_shop(ctx, rules=RULES)
    c = cart(shop.store_a, shop.member, ("tea", 1200, 3))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    receipt = checkout.confirm(ctx, shop.brand.id, confirm_request("O-1", c, q.payable)).receipt
    assert receipt["points_earned"] == 72 + 100  # 36 元 × 2, and the first order's 100
    refunds.refund(
        ctx, shop.brand.id, RefundRequest(shop.store_a, "O-1", "R-1", "c01", (RefundLine(1, 1),))
    )
    history = points.history(ctx, shop.brand.id, shop.member)
    earned = [e for e in history if e.source_type == "order"]
    opening = [e for e in history if e.source_type == "import"]
    reversal = [e for e in history if e.source_type == "refund"]
    assert len(earned) == len(opening) == len(reversal) == 1
    assert earned[0].points_rules == receipt["points_rules"]
    assert reversal[0].points_rules == receipt["points_rules"]
    assert opening[0].points_rules is None

    key = apikeys.create_key(ctx, shop.brand.id, Scope.CASHIER, "till", store_id=shop.store_a)
    with TestClient(create_app(ctx)) as client:
        r = client.get(
            f"/v1/members/{shop.member}/points/history",
            headers={"Authorization": f"Bearer {key.secret}"},
        )
    assert r.status_code == 200, r.text
    rules_by_source = {e["source_type"]: e["points_rules"] for e in r.json()["data"]}
    assert rules_by_source["import"] is None
    assert rules_by_source["order"] == rules_by_source["refund"] == receipt["points_rules"]
    assert [x["zh"] for x in rules_by_source["order"]] == [
        "基础积分 每元 1 积分",
        "周一会员日 ×2",
        "首单礼 +100 积分",
    ]
    assert sum(x["points"] or 0 for x in rules_by_source["order"]) == 172


def test_a_manual_earn_with_an_order_like_source_gets_no_rules(ctx: Context) -> None:
    """Only the order's own earn entry carries its rules, not an entry an
    operator booked with the same store and reference."""
    shop = open_shop(ctx, rules=RULES)
    c = cart(shop.store_a, shop.member, ("tea", 1200, 1))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    checkout.confirm(ctx, shop.brand.id, confirm_request("O-1", c, q.payable))
    points.earn(
        ctx, shop.brand.id, shop.member, 5, points.Source("order", "O-1", store_id=shop.store_a)
    )
    entries = [e for e in points.history(ctx, shop.brand.id, shop.member) if e.kind == "earn"]
    with_rules = [e.points for e in entries if e.points_rules is not None]
    assert with_rules == [q.points_earned]
