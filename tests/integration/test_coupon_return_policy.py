"""The coupon return policy of a template, applied by refunds (issue 11, item
13), on SQLite and PostgreSQL: partial refunds in steps, then the rest; the
refund's receipt says for each coupon whether it came back and why."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loyalpos.api.app import create_app
from loyalpos.db.tables import coupon_events, coupons
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import checkout, refunds
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from tests.conftest import Clock
from tests.integration.checkout_helpers import (
    RULES,
    Shop,
    cart,
    confirm_request,
    give_coupon,
    open_shop,
)

# 满100减20 three times over, one per policy; the rest of the shop's rules as usual.
POLICY_RULES = RULES.replace(
    "coupons:\n",
    """coupons:
  - {id: mj-full, name: 满100减20 整单退券, kind: threshold, threshold_fen: 10000,
     amount_fen: 2000, valid_days: 30}
  - {id: mj-broken, name: 满100减20 破价退券, kind: threshold, threshold_fen: 10000,
     amount_fen: 2000, valid_days: 30, return_policy: threshold_broken}
  - {id: mj-never, name: 满100减20 不退券, kind: threshold, threshold_fen: 10000,
     amount_fen: 2000, valid_days: 30, return_policy: never}
""",
    1,
)


def _order(ctx: Context, shop: Shop, template: str, order_no: str = "O-1") -> tuple[int, dict]:
    """Four lattes at 30 元 (line 1) and a cake at 40 元 (line 2): 160 元, the
    coupon saves 20."""
    coupon = give_coupon(ctx, shop, template)
    c = cart(shop.store_a, shop.member, ("latte", 3000, 4), ("cake", 4000, 1))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    req = confirm_request(order_no, c, q.payable, coupon_ids=(coupon,))
    receipt = checkout.confirm(ctx, shop.brand.id, req).receipt
    assert receipt["coupons_used"] == [coupon] and receipt["payable_fen"] == 14000
    return coupon, receipt


def _refund(ctx: Context, shop: Shop, no: str, *lines: tuple[int, int]) -> dict[str, Any]:
    req = RefundRequest(shop.store_a, "O-1", no, "c01", tuple(RefundLine(n, q) for n, q in lines))
    return refunds.refund(ctx, shop.brand.id, req).receipt


def _state(ctx: Context, coupon: int) -> str:
    with ctx.transaction() as conn:
        return str(conn.execute(select(coupons.c.state).where(coupons.c.id == coupon)).scalar())


def _said(receipt: dict[str, Any]) -> list[tuple[bool, str]]:
    return [(c["returned"], c["code"]) for c in receipt["coupon_returns"]]


# After R-1 (one latte back) 130 元 are left, the coupon's 100 still met;
# after R-2 (the cake) 90 元, below it; R-3 refunds the rest.
STEPS = {
    "mj-full": [
        (False, "kept_until_full_refund"),
        (False, "kept_until_full_refund"),
        (True, "returned_order_refunded"),
    ],
    "mj-broken": [
        (False, "kept_threshold_met"),
        (True, "returned_threshold_broken"),
        (False, "already_returned"),
    ],
    "mj-never": [
        (False, "kept_never_returned"),
        (False, "kept_never_returned"),
        (False, "kept_never_returned"),
    ],
}
FINAL_STATE = {"mj-full": "issued", "mj-broken": "issued", "mj-never": "used"}


@pytest.mark.parametrize("template", list(STEPS))
def test_each_policy_in_partial_refunds_then_the_rest(ctx: Context, template: str) -> None:
    shop = open_shop(ctx, rules=POLICY_RULES)
    coupon, _ = _order(ctx, shop, template)
    first = _refund(ctx, shop, "R-1", (1, 1))
    second = _refund(ctx, shop, "R-2", (2, 1))
    if template == "mj-broken":
        assert _state(ctx, coupon) == "issued"  # back before the order is fully refunded
    last = _refund(ctx, shop, "R-3")
    assert [_said(r) for r in (first, second, last)] == [[step] for step in STEPS[template]]
    assert [r["coupons_returned"] for r in (first, second, last)] == [
        [coupon] if returned else [] for returned, _ in STEPS[template]
    ]
    assert last["order_status"] == "refunded"
    assert _state(ctx, coupon) == FINAL_STATE[template]
    for r in (first, second, last):
        (said,) = r["coupon_returns"]
        assert said["coupon_id"] == coupon and said["template"] == template
        assert (
            said["policy"]
            == {
                "mj-full": "full_refund",
                "mj-broken": "threshold_broken",
                "mj-never": "never",
            }[template]
        )
        assert said["name"] in said["message"] and said["name"] in said["message_en"]
    with ctx.transaction() as conn:
        returns = conn.execute(
            select(coupon_events.c.refund_id).where(
                coupon_events.c.coupon_id == coupon, coupon_events.c.event == "returned"
            )
        ).all()
    expected = [r["refund_id"] for r in (first, second, last) if r["coupons_returned"]]
    assert [row.refund_id for row in returns] == expected


def test_a_broken_threshold_says_by_how_much_and_replays_the_same(ctx: Context) -> None:
    shop = open_shop(ctx, rules=POLICY_RULES)
    coupon, _ = _order(ctx, shop, "mj-broken")
    broken = _refund(ctx, shop, "R-1", (2, 1), (1, 1))  # 90 元 left
    (said,) = broken["coupon_returns"]
    assert said["message"] == (
        "剩余商品不再满足「满100减20 破价退券」的使用条件（未满 100.00 元，还差 10.00 元），"
        "券已退回券包"
    )
    assert said["detail"] == {
        "reason_code": "below_threshold",
        "shortfall_fen": 1000,
        "threshold_fen": 10000,
    }
    again = refunds.refund(
        ctx,
        shop.brand.id,
        RefundRequest(shop.store_a, "O-1", "R-1", "c01", (RefundLine(2, 1), RefundLine(1, 1))),
    )
    assert again.replayed and again.receipt == broken
    assert _state(ctx, coupon) == "issued"


@pytest.mark.parametrize("template", ["mj-full", "mj-broken"])
def test_an_expired_coupon_stays_used_and_the_receipt_says_so(
    ctx: Context, clock: Clock, template: str
) -> None:
    shop = open_shop(ctx, rules=POLICY_RULES)
    coupon, _ = _order(ctx, shop, template)
    clock.advance(days=31)  # valid_days: 30
    receipt = _refund(ctx, shop, "R-1")
    assert _said(receipt) == [(False, "kept_expired")]
    assert receipt["coupons_returned"] == []
    assert _state(ctx, coupon) == "used"


def test_the_policy_is_the_one_of_the_rules_the_order_was_priced_with(
    ctx: Context, clock: Clock
) -> None:
    shop = open_shop(ctx, rules=POLICY_RULES)
    coupon, _ = _order(ctx, shop, "mj-never")
    changed = POLICY_RULES.replace("return_policy: never", "return_policy: threshold_broken")
    draft = rulesets.save_draft(ctx, shop.brand.id, changed)
    rulesets.publish(ctx, shop.brand.id, draft.version, effective_from=clock.now)
    clock.advance(minutes=1)
    receipt = _refund(ctx, shop, "R-1")
    assert _said(receipt) == [(False, "kept_never_returned")]
    assert _state(ctx, coupon) == "used"


def test_an_order_without_coupons_says_nothing_about_coupons(ctx: Context) -> None:
    shop = open_shop(ctx, rules=POLICY_RULES)
    c = cart(shop.store_a, shop.member, ("latte", 3000, 1))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    checkout.confirm(ctx, shop.brand.id, confirm_request("O-1", c, q.payable))
    receipt = _refund(ctx, shop, "R-1")
    assert receipt["coupon_returns"] == [] and receipt["coupons_returned"] == []


def test_the_refund_answer_over_http_explains_each_coupon(ctx: Context) -> None:
    shop = open_shop(ctx, rules=POLICY_RULES)
    coupon, _ = _order(ctx, shop, "mj-full")
    key = apikeys.create_key(ctx, shop.brand.id, Scope.CASHIER, "till", store_id=shop.store_a)
    with TestClient(create_app(ctx)) as client:
        r = client.post(
            f"/v1/stores/{shop.store_a}/orders/O-1/refunds",
            json={"refund_no": "R-1", "cashier": "c01", "lines": [{"line_no": 2, "qty": 1}]},
            headers={"Authorization": f"Bearer {key.secret}"},
        )
    assert r.status_code == 201, r.text
    assert r.json()["coupon_returns"] == [
        {
            "coupon_id": coupon,
            "template": "mj-full",
            "name": "满100减20 整单退券",
            "policy": "full_refund",
            "returned": False,
            "code": "kept_until_full_refund",
            "message": "「满100减20 整单退券」仅在整单退款时退回",
            "message_en": "满100减20 整单退券 is given back only when the whole order is refunded",
            "detail": {},
        }
    ]


def test_a_coupon_gone_back_with_a_threshold_can_be_used_again(ctx: Context) -> None:
    """The coupon given back when the threshold broke is in the wallet again and
    pays on the next order."""
    shop = open_shop(ctx, rules=POLICY_RULES)
    coupon, _ = _order(ctx, shop, "mj-broken")
    _refund(ctx, shop, "R-1", (2, 1), (1, 1))
    c = cart(shop.store_a, shop.member, ("latte", 3000, 4))
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    assert [a.coupon_id for a in q.applied if a.coupon_id] == [str(coupon)]
