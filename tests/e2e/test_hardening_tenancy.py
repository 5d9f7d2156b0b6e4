"""Issue 11 over HTTP, on the real server and PostgreSQL: tenancy (item 1), control
characters in paths and queries (5), order numbers with `/` (7), the expiry job's
date (9), and the OpenAPI document's statuses (11).

Item 1 is one parametrised walk: every operation that takes an id (in its path,
its query or its body) is sent with the other brand's ids, with an HQ key and with
a cashier key, in both directions, and must answer 404 (or 403 where a cashier
key names a store that is not its own, which says nothing about the store) with
the error shape and change nothing in the database: every table's row count and
content digest are compared before and after, directly in PostgreSQL. The list
of operations is checked against the app's routes, so a new route with an id in
its path cannot be left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from loyalpos.api.app import create_app
from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.tables import metadata
from loyalpos.service.base.context import Context
from loyalpos.service.events import worker
from tests.conftest import TEST_SECRET
from tests.e2e.live import Live

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LINES = [{"sku": "latte", "category": "coffee", "unit_price_fen": 3200, "qty": 1}]


# --- the two brands' ids ---------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One brand's keys and one id of every kind it owns."""

    name: str
    hq: str
    cashier: str
    store_id: int
    member_id: int
    entry_id: int
    order_no: str
    claim_token: str
    coupon_id: int
    template: str  # a coupon template only this brand's rules have
    quote_token: str
    hold_id: int
    webhook_id: int
    delivery_id: int
    key_id: int
    rule_version: int | None  # a version number only this brand has, if any


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else None


def _order(client: httpx.Client, store_id: int, order_no: str) -> dict[str, Any]:
    """An anonymous order: quote, then confirm at the quoted price."""
    cart = {"store_id": store_id, "lines": LINES}
    payable = _ok(client.post("/v1/quotes", json=cart))["payable_fen"]
    receipt: dict[str, Any] = _ok(
        client.post(
            "/v1/orders",
            json={
                **cart,
                "order_no": order_no,
                "tenders": [{"method": "wechat", "amount_fen": payable, "reference": "wx1"}],
                "cashier": "c01",
                "terminal": "T1",
            },
        ),
        201,
    )
    return receipt


def _populate(
    live: Live, name: str, hq: str, cashier: str, store_id: int, member_id: int, template: str
) -> dict[str, Any]:
    """Give a brand one of everything (over HTTP, with its own keys)."""
    with live.client(hq) as c:
        entry = _ok(
            c.post(f"/v1/members/{member_id}/points/earn", json={"points": 500}),
            201,
        )
        webhook = _ok(
            c.post(
                "/v1/webhooks",
                json={"url": f"https://hooks.example.com/{name}", "event_types": ["*"]},
            ),
            201,
        )
        receipt = _order(c, store_id, f"{name.upper()}-0001")
        coupon = _ok(c.post(f"/v1/members/{member_id}/coupons", json={"template": template}), 201)
        quote = _ok(
            c.post(
                "/v1/quotes",
                json={
                    "store_id": store_id,
                    "member": {"member_id": member_id},
                    "lines": LINES,
                    "reserve": True,
                },
            )
        )
        hold = _ok(
            c.post(
                f"/v1/stores/{store_id}/holds",
                json={
                    "reason": "call",
                    "cashier": "c01",
                    "terminal": "T1",
                    "member_id": member_id,
                    "cart": {"lines": LINES},
                },
            ),
            201,
        )
        keys = _ok(c.get("/v1/keys"))["data"]
    assert quote["quote_token"], quote
    return {
        "entry_id": entry["id"],
        "webhook_id": webhook["id"],
        "order_no": receipt["order_no"],
        "claim_token": receipt["claim_token"],
        "coupon_id": coupon["id"],
        "quote_token": quote["quote_token"],
        "hold_id": hold["id"],
        "key_id": keys[-1]["id"],
    }


def _dispatch(db_url: str) -> None:
    """Run the outbox once (as `loyalpos worker` would): webhook deliveries."""
    settings = Settings(env="test", database_url=db_url, secret_key=TEST_SECRET)
    ctx = Context(make_engine(db_url), settings)
    try:
        while worker.dispatch_outbox(ctx, handlers=[]).events:
            pass
    finally:
        ctx.engine.dispose()


def _first_delivery(live: Live, hq: str) -> int:
    with live.client(hq) as c:
        found = _ok(c.get("/v1/webhooks/deliveries"))["data"]
    assert found, "no delivery was made"
    return int(found[0]["id"])


@pytest.fixture(scope="module")
def sides(live_pg_server: Live) -> dict[str, Side]:
    """The demo brand and brand "other", each with one id of every kind."""
    live = live_pg_server
    with live.client(live.hq_key) as demo:
        demo_rules = _ok(demo.get("/v1/rules/1"))["document"]
        # A draft: version 2 exists in the demo brand only.
        _ok(demo.post("/v1/rules", json={"document": demo_rules, "comment": "draft"}), 201)
        demo_member = _ok(demo.post("/v1/members/lookup", json={"phone": "13800138000"}))["id"]
    # Brand "other": the demo's rules with its own template instead of `cash10`.
    other_rules = json.loads(json.dumps(demo_rules).replace('"cash10"', '"ot-cash10"'))
    with live.client(live.other_hq_key) as other:
        _ok(other.post("/v1/rules", json={"document": other_rules}), 201)
        since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        _ok(other.post("/v1/rules/1/publish", json={"effective_from": since}))
        other_member = _ok(
            other.post(
                "/v1/members",
                json={"phone": "13600000001", "name": "Other", "store_id": live.other_store_id},
            ),
            201,
        )["id"]
    demo_ids = _populate(
        live, "demo", live.hq_key, live.cashier_key, 1, demo_member, template="cash10"
    )
    other_ids = _populate(
        live,
        "other",
        live.other_hq_key,
        live.other_cashier_key,
        live.other_store_id,
        other_member,
        template="ot-cash10",
    )
    _dispatch(live.db_url)
    return {
        "demo": Side(
            "demo",
            live.hq_key,
            live.cashier_key,
            1,
            demo_member,
            template="cash10",
            delivery_id=_first_delivery(live, live.hq_key),
            rule_version=2,
            **demo_ids,
        ),
        "other": Side(
            "other",
            live.other_hq_key,
            live.other_cashier_key,
            live.other_store_id,
            other_member,
            template="ot-cash10",
            delivery_id=_first_delivery(live, live.other_hq_key),
            rule_version=None,
            **other_ids,
        ),
    }


# --- the probes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, Any] | None = None


@dataclass(frozen=True)
class Probe:
    """An operation sent by `me` naming one of `them`'s ids; `code` is the 404's code."""

    method: str
    route: str  # the OpenAPI path, e.g. /v1/members/{member_id}
    code: str
    make: Callable[[Side, Side], Request | None]  # (me, them); None: nothing to probe
    hq_only: bool = False
    names_store: bool = False  # a cashier key gets 403 wrong_store for another store


def _confirm_body(store_id: int, order_no: str, **extra: Any) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "lines": LINES,
        "order_no": order_no,
        "tenders": [{"method": "wechat", "amount_fen": 3200}],
        "cashier": "c01",
        "terminal": "T1",
        **extra,
    }


def _hold_body(**extra: Any) -> dict[str, Any]:
    return {"reason": "call", "cashier": "c01", "terminal": "T9", "cart": {}, **extra}


DAY = {"date": "2024-01-01", "order_count": 0, "amount_fen": 0}

PROBES: dict[str, Probe] = {
    # members
    "member.get": Probe(
        "GET",
        "/v1/members/{member_id}",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}"),
    ),
    "member.identities": Probe(
        "POST",
        "/v1/members/{member_id}/identities",
        "member_not_found",
        lambda me, them: Request(
            f"/v1/members/{them.member_id}/identities",
            {"provider": "wechat", "kind": "openid", "value": f"probe-{me.name}"},
        ),
    ),
    "member.code": Probe(
        "POST",
        "/v1/members/{member_id}/code",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}/code"),
    ),
    "member.claims": Probe(
        "POST",
        "/v1/members/{member_id}/claims",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}/claims", {"token": me.claim_token}),
    ),
    "member.claims.token": Probe(
        "POST",
        "/v1/members/{member_id}/claims",
        "claim_not_found",
        lambda me, them: Request(f"/v1/members/{me.member_id}/claims", {"token": them.claim_token}),
    ),
    "member.register.store": Probe(
        "POST",
        "/v1/members",
        "store_not_found",
        lambda me, them: Request(
            "/v1/members", {"phone": "13600000099", "name": "Probe", "store_id": them.store_id}
        ),
        names_store=True,
    ),
    "member.register.referrer": Probe(
        "POST",
        "/v1/members",
        "member_not_found",
        lambda me, them: Request(
            "/v1/members",
            {"phone": "13600000098", "name": "Probe", "referrer_id": them.member_id},
        ),
    ),
    "claims.create.store": Probe(
        "POST",
        "/v1/claims",
        "store_not_found",
        lambda me, them: Request(
            "/v1/claims", {"order_ref": "P-1", "points": 10, "store_id": them.store_id}
        ),
        names_store=True,
    ),
    "member.tags": Probe(
        "GET",
        "/v1/members/{member_id}/tags",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}/tags"),
    ),
    # points
    "points.balance": Probe(
        "GET",
        "/v1/members/{member_id}/points",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}/points"),
    ),
    "points.history": Probe(
        "GET",
        "/v1/members/{member_id}/points/history",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}/points/history"),
    ),
    "points.earn": Probe(
        "POST",
        "/v1/members/{member_id}/points/earn",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}/points/earn", {"points": 10}),
        hq_only=True,
    ),
    "points.earn.store": Probe(
        "POST",
        "/v1/members/{member_id}/points/earn",
        "store_not_found",
        lambda me, them: Request(
            f"/v1/members/{me.member_id}/points/earn", {"points": 10, "store_id": them.store_id}
        ),
        hq_only=True,
    ),
    "points.spend": Probe(
        "POST",
        "/v1/members/{member_id}/points/spend",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}/points/spend", {"points": 1}),
        hq_only=True,
    ),
    "points.spend.store": Probe(
        "POST",
        "/v1/members/{member_id}/points/spend",
        "store_not_found",
        lambda me, them: Request(
            f"/v1/members/{me.member_id}/points/spend", {"points": 1, "store_id": them.store_id}
        ),
        hq_only=True,
    ),
    "points.adjust": Probe(
        "POST",
        "/v1/members/{member_id}/points/adjust",
        "member_not_found",
        lambda me, them: Request(
            f"/v1/members/{them.member_id}/points/adjust",
            {"points": 5, "operator": "probe", "reason": "probe"},
        ),
        hq_only=True,
    ),
    "points.adjust.store": Probe(
        "POST",
        "/v1/members/{member_id}/points/adjust",
        "store_not_found",
        lambda me, them: Request(
            f"/v1/members/{me.member_id}/points/adjust",
            {"points": 5, "operator": "probe", "reason": "probe", "store_id": them.store_id},
        ),
        hq_only=True,
    ),
    "points.reverse": Probe(
        "POST",
        "/v1/points/entries/{entry_id}/reverse",
        "entry_not_found",
        lambda me, them: Request(f"/v1/points/entries/{them.entry_id}/reverse", {"points": 1}),
        hq_only=True,
    ),
    "points.reverse.store": Probe(
        "POST",
        "/v1/points/entries/{entry_id}/reverse",
        "store_not_found",
        lambda me, them: Request(
            f"/v1/points/entries/{me.entry_id}/reverse", {"points": 10, "store_id": them.store_id}
        ),
        hq_only=True,
    ),
    # the till
    "identify.store": Probe(
        "POST",
        "/v1/identify",
        "store_not_found",
        lambda me, them: Request(
            "/v1/identify",
            {"store_id": them.store_id, "member": {"member_id": me.member_id}},
        ),
        names_store=True,
    ),
    "identify.member": Probe(
        "POST",
        "/v1/identify",
        "member_not_found",
        lambda me, them: Request(
            "/v1/identify",
            {"store_id": me.store_id, "member": {"member_id": them.member_id}},
        ),
    ),
    "quote.store": Probe(
        "POST",
        "/v1/quotes",
        "store_not_found",
        lambda me, them: Request("/v1/quotes", {"store_id": them.store_id, "lines": LINES}),
        names_store=True,
    ),
    "quote.member": Probe(
        "POST",
        "/v1/quotes",
        "member_not_found",
        lambda me, them: Request(
            "/v1/quotes",
            {
                "store_id": me.store_id,
                "member": {"member_id": them.member_id},
                "lines": LINES,
                "reserve": True,
            },
        ),
    ),
    "quote.replaces": Probe(
        "POST",
        "/v1/quotes",
        "quote_not_found",
        lambda me, them: Request(
            "/v1/quotes",
            {
                "store_id": me.store_id,
                "member": {"member_id": me.member_id},
                "lines": LINES,
                "reserve": True,
                "replaces": them.quote_token,
            },
        ),
    ),
    "quote.release.store": Probe(
        "DELETE",
        "/v1/stores/{store_id}/quotes/{token}",
        "store_not_found",
        lambda me, them: Request(f"/v1/stores/{them.store_id}/quotes/{them.quote_token}"),
        names_store=True,
    ),
    "quote.release.token": Probe(
        "DELETE",
        "/v1/stores/{store_id}/quotes/{token}",
        "quote_not_found",
        lambda me, them: Request(f"/v1/stores/{me.store_id}/quotes/{them.quote_token}"),
    ),
    "confirm.store": Probe(
        "POST",
        "/v1/orders",
        "store_not_found",
        lambda me, them: Request("/v1/orders", _confirm_body(them.store_id, "PROBE-1")),
        names_store=True,
    ),
    "confirm.member": Probe(
        "POST",
        "/v1/orders",
        "member_not_found",
        lambda me, them: Request(
            "/v1/orders",
            _confirm_body(me.store_id, "PROBE-2", member={"member_id": them.member_id}),
        ),
    ),
    "confirm.quote_token": Probe(
        "POST",
        "/v1/orders",
        "quote_not_found",
        lambda me, them: Request(
            "/v1/orders", _confirm_body(me.store_id, "PROBE-3", quote_token=them.quote_token)
        ),
    ),
    "order.get.store": Probe(
        "GET",
        "/v1/stores/{store_id}/orders/{order_no}",
        "store_not_found",
        lambda me, them: Request(f"/v1/stores/{them.store_id}/orders/{them.order_no}"),
        names_store=True,
    ),
    "order.get": Probe(
        "GET",
        "/v1/stores/{store_id}/orders/{order_no}",
        "order_not_found",
        lambda me, them: Request(f"/v1/stores/{me.store_id}/orders/{them.order_no}"),
    ),
    "order.refund.store": Probe(
        "POST",
        "/v1/stores/{store_id}/orders/{order_no}/refunds",
        "store_not_found",
        lambda me, them: Request(
            f"/v1/stores/{them.store_id}/orders/{them.order_no}/refunds",
            {"refund_no": "R-PROBE", "cashier": "c01"},
        ),
        names_store=True,
    ),
    "order.refund": Probe(
        "POST",
        "/v1/stores/{store_id}/orders/{order_no}/refunds",
        "order_not_found",
        lambda me, them: Request(
            f"/v1/stores/{me.store_id}/orders/{them.order_no}/refunds",
            {"refund_no": "R-PROBE", "cashier": "c01"},
        ),
    ),
    "order.refund_preview.store": Probe(
        "POST",
        "/v1/stores/{store_id}/orders/{order_no}/refunds/preview",
        "store_not_found",
        lambda me, them: Request(
            f"/v1/stores/{them.store_id}/orders/{them.order_no}/refunds/preview",
            {"cashier": "c01"},
        ),
        names_store=True,
    ),
    "order.refund_preview": Probe(
        "POST",
        "/v1/stores/{store_id}/orders/{order_no}/refunds/preview",
        "order_not_found",
        lambda me, them: Request(
            f"/v1/stores/{me.store_id}/orders/{them.order_no}/refunds/preview",
            {"cashier": "c01"},
        ),
    ),
    # coupons
    "coupons.wallet": Probe(
        "GET",
        "/v1/members/{member_id}/coupons",
        "member_not_found",
        lambda me, them: Request(f"/v1/members/{them.member_id}/coupons"),
    ),
    "coupons.issue": Probe(
        "POST",
        "/v1/members/{member_id}/coupons",
        "member_not_found",
        lambda me, them: Request(
            f"/v1/members/{them.member_id}/coupons", {"template": me.template}
        ),
        hq_only=True,
    ),
    "coupons.issue.template": Probe(
        "POST",
        "/v1/members/{member_id}/coupons",
        "template_not_found",
        lambda me, them: Request(
            f"/v1/members/{me.member_id}/coupons", {"template": them.template}
        ),
        hq_only=True,
    ),
    "coupons.history": Probe(
        "GET",
        "/v1/coupons/{coupon_id}/history",
        "coupon_not_found",
        lambda me, them: Request(f"/v1/coupons/{them.coupon_id}/history"),
    ),
    # holds
    "holds.create.store": Probe(
        "POST",
        "/v1/stores/{store_id}/holds",
        "store_not_found",
        lambda me, them: Request(f"/v1/stores/{them.store_id}/holds", _hold_body()),
        names_store=True,
    ),
    "holds.create.member": Probe(
        "POST",
        "/v1/stores/{store_id}/holds",
        "member_not_found",
        lambda me, them: Request(
            f"/v1/stores/{me.store_id}/holds", _hold_body(member_id=them.member_id)
        ),
    ),
    "holds.list": Probe(
        "GET",
        "/v1/stores/{store_id}/holds",
        "store_not_found",
        lambda me, them: Request(f"/v1/stores/{them.store_id}/holds"),
        names_store=True,
    ),
    "holds.report.store": Probe(
        "GET",
        "/v1/holds/report",
        "store_not_found",
        lambda me, them: Request(
            "/v1/holds/report",
            query={"from": "2024-01-01", "to": "2024-01-02", "store_id": them.store_id},
        ),
        hq_only=True,
    ),
    "holds.get": Probe(
        "GET",
        "/v1/holds/{hold_id}",
        "hold_not_found",
        lambda me, them: Request(f"/v1/holds/{them.hold_id}"),
    ),
    "holds.resume": Probe(
        "POST",
        "/v1/holds/{hold_id}/resume",
        "hold_not_found",
        lambda me, them: Request(f"/v1/holds/{them.hold_id}/resume"),
    ),
    "holds.cancel": Probe(
        "POST",
        "/v1/holds/{hold_id}/cancel",
        "hold_not_found",
        lambda me, them: Request(f"/v1/holds/{them.hold_id}/cancel"),
    ),
    # till events
    "till_events.record": Probe(
        "POST",
        "/v1/stores/{store_id}/till-events",
        "store_not_found",
        lambda me, them: Request(
            f"/v1/stores/{them.store_id}/till-events",
            {"kind": "benefits_declined", "staff_number": "c01", "terminal": "T9"},
        ),
        names_store=True,
    ),
    "till_events.report.store": Probe(
        "GET",
        "/v1/till-events/report",
        "store_not_found",
        lambda me, them: Request(
            "/v1/till-events/report",
            query={"date_from": "2024-01-01", "date_to": "2024-01-02", "store_id": them.store_id},
        ),
        hq_only=True,
    ),
    # reconciliation
    "reconcile.store": Probe(
        "POST",
        "/v1/stores/{store_id}/reconciliation",
        "store_not_found",
        lambda me, them: Request(f"/v1/stores/{them.store_id}/reconciliation", DAY),
        names_store=True,
    ),
    # rules
    "rules.get": Probe(
        "GET",
        "/v1/rules/{version}",
        "rule_set_not_found",
        lambda me, them: (
            None if them.rule_version is None else Request(f"/v1/rules/{them.rule_version}")
        ),
        hq_only=True,
    ),
    "rules.publish": Probe(
        "POST",
        "/v1/rules/{version}/publish",
        "rule_set_not_found",
        lambda me, them: (
            None
            if them.rule_version is None
            else Request(f"/v1/rules/{them.rule_version}/publish", {})
        ),
        hq_only=True,
    ),
    # campaigns
    "campaigns.firings.member": Probe(
        "GET",
        "/v1/campaigns/firings",
        "member_not_found",
        lambda me, them: Request("/v1/campaigns/firings", query={"member_id": them.member_id}),
        hq_only=True,
    ),
    # webhooks
    "webhooks.deactivate": Probe(
        "POST",
        "/v1/webhooks/{webhook_id}/deactivate",
        "webhook_not_found",
        lambda me, them: Request(f"/v1/webhooks/{them.webhook_id}/deactivate"),
        hq_only=True,
    ),
    "webhooks.deliveries.subscription": Probe(
        "GET",
        "/v1/webhooks/deliveries",
        "webhook_not_found",
        lambda me, them: Request(
            "/v1/webhooks/deliveries", query={"subscription_id": them.webhook_id}
        ),
        hq_only=True,
    ),
    "webhooks.backfill": Probe(
        "POST",
        "/v1/webhooks/{webhook_id}/backfill",
        "webhook_not_found",
        lambda me, them: Request(f"/v1/webhooks/{them.webhook_id}/backfill", {}),
        hq_only=True,
    ),
    "webhooks.replay": Probe(
        "POST",
        "/v1/webhooks/deliveries/{delivery_id}/replay",
        "delivery_not_found",
        lambda me, them: Request(f"/v1/webhooks/deliveries/{them.delivery_id}/replay"),
        hq_only=True,
    ),
    # keys
    "keys.revoke": Probe(
        "POST",
        "/v1/keys/{key_id}/revoke",
        "key_not_found",
        lambda me, them: Request(f"/v1/keys/{them.key_id}/revoke"),
        hq_only=True,
    ),
    "keys.create.store": Probe(
        "POST",
        "/v1/keys",
        "store_not_found",
        lambda me, them: Request(
            "/v1/keys", {"scope": "cashier", "name": "probe", "store_id": them.store_id}
        ),
        hq_only=True,
    ),
}

# Operations with an id in a query or body only, probed above; late orders answer
# each order in the batch's results (checked in the walk too).
LATE = Probe(
    "POST",
    "/v1/late-orders",
    "store_not_found",
    lambda me, them: Request(
        "/v1/late-orders",
        {
            "orders": [
                _confirm_body(them.store_id, "PROBE-L", ordered_at="2024-01-01T10:00:00+08:00")
            ]
        },
    ),
    names_store=True,
)
PROBES["late_orders.store"] = LATE


def test_every_route_with_an_id_in_its_path_is_probed() -> None:
    """A new route with a path parameter must get a probe above."""
    settings = Settings(env="test", database_url="sqlite://", secret_key=TEST_SECRET)
    doc = create_app(Context(make_engine("sqlite://"), settings)).openapi()
    with_ids = {
        (method.upper(), path)
        for path, operations in doc["paths"].items()
        for method, op in operations.items()
        if any(p["in"] == "path" for p in op.get("parameters", []))
    }
    probed = {(p.method, p.route) for p in PROBES.values()}
    assert with_ids - probed == set(), "routes with ids that no probe covers"
    assert probed - {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops} == set()


# --- the walk ----------------------------------------------------------------------------


def _tables_state(db_url: str) -> dict[str, tuple[int, str]]:
    """Row count and a digest of the content of every table."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                t.name: tuple(  # type: ignore[misc]
                    conn.execute(
                        text(
                            f"SELECT count(*), md5(coalesce(string_agg(md5(x::text), ',' "
                            f"ORDER BY md5(x::text)), '')) FROM \"{t.name}\" x"
                        )
                    ).one()
                )
                for t in metadata.sorted_tables
            }
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def db_state(live_pg_server: Live) -> Iterator[Callable[[], dict[str, tuple[int, str]]]]:
    yield lambda: _tables_state(live_pg_server.db_url)


@pytest.mark.parametrize("scope", ["hq", "cashier"])
@pytest.mark.parametrize("direction", ["other->demo", "demo->other"])
@pytest.mark.parametrize("probe_name", sorted(PROBES))
def test_another_brands_ids_answer_404_and_write_nothing(
    live_pg_server: Live,
    sides: dict[str, Side],
    db_state: Callable[[], dict[str, tuple[int, str]]],
    probe_name: str,
    direction: str,
    scope: str,
) -> None:
    probe = PROBES[probe_name]
    me, them = (sides[n] for n in direction.split("->"))
    request = probe.make(me, them)
    if request is None:
        pytest.skip(f"{them.name} has no id of this kind that {me.name} lacks")
    key = me.hq if scope == "hq" else me.cashier
    before = db_state()
    with live_pg_server.client(key) as client:
        response = client.request(
            probe.method, request.path, json=request.body, params=request.query
        )
    after = db_state()
    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == [], f"{probe.method} {request.path} wrote to {changed}: {response.text}"
    if probe.route == "/v1/late-orders" and response.status_code == 200:
        (result,) = response.json()["results"]
        assert result["outcome"] == "rejected", result
        error = result["error"]
        status = 404
    else:
        status = response.status_code
        error = response.json()["error"]
        assert set(error) == {"code", "message", "detail"}, response.text
    if scope == "cashier" and probe.hq_only:
        assert (status, error["code"]) == (403, "hq_key_required"), response.text
    elif scope == "cashier" and probe.names_store:
        assert (status, error["code"]) == (403, "wrong_store"), response.text
    else:
        assert (status, error["code"]) == (404, probe.code), response.text


# --- items 5, 7, 9, 11 over HTTP ---------------------------------------------------------


def _server_errors(live: Live) -> list[str]:
    """Lines of the server's log that tell of an unhandled error."""
    lines = live.log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if "Traceback" in line or "unhandled error" in line]


@pytest.mark.parametrize("char", ["%00", "%01", "%1F", "%7F", "%C2%85", "%0A"])
def test_control_characters_in_paths_and_queries_answer_422_not_500(
    live_pg_server: Live, db_state: Callable[[], dict[str, tuple[int, str]]], char: str
) -> None:
    # Issue 11 item 5: NUL answered 500 (psycopg DataError) at these five routes.
    live = live_pg_server
    bad = f"A{char}B"
    requests = [
        ("GET", f"/v1/stores/1/orders/{bad}", None, "path.order_no"),
        (
            "POST",
            f"/v1/stores/1/orders/{bad}/refunds",
            {"refund_no": "R1", "cashier": "c"},
            "path.order_no",
        ),
        ("DELETE", f"/v1/stores/1/quotes/{bad}", None, "path.token"),
        ("GET", f"/v1/campaigns/firings?campaign={bad}", None, "query.campaign"),
        ("GET", f"/v1/stores/1/holds?terminal={bad}", None, "query.terminal"),
        ("GET", f"/v1/members/1/points/history?until={bad}", None, "query.until"),
    ]
    before = db_state()
    with live.client(live.hq_key) as client:
        for method, url, body, field in requests:
            response = client.request(method, url, json=body)
            assert response.status_code == 422, (url, response.text)
            error = response.json()["error"]
            assert error["code"] == "validation_error"
            assert field in [p["field"] for p in error["detail"]["errors"]], (url, error)
    assert db_state() == before
    assert _server_errors(live) == []


def test_an_order_number_with_a_slash_is_refused_and_a_good_one_round_trips(
    live_pg_server: Live, db_state: Callable[[], dict[str, tuple[int, str]]]
) -> None:
    # Issue 11 item 7: `SH001/2026/1` was booked (201) but `GET .../SH001%2F2026%2F1` was 404.
    live = live_pg_server
    body = _confirm_body(1, "SH001/2026/1")
    before = db_state()
    with live.client(live.cashier_key) as client:
        refused = client.post("/v1/orders", json=body)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["detail"]["errors"][0]["field"] == "order_no"
        assert "letters A-Z a-z, digits 0-9 and - _ ." in error["message"]
        late = {**body, "ordered_at": "2024-01-01T10:00:00+08:00"}
        assert client.post("/v1/late-orders", json={"orders": [late]}).status_code == 422
        assert db_state() == before
        # The POS's own list may hold such a number: it is missing here, not refused.
        day = {**DAY, "orders": [{"order_no": "SH001/2026/1", "amount_fen": 1}]}
        reconciled = client.post("/v1/stores/1/reconciliation", json=day)
        assert reconciled.status_code == 200, reconciled.text
        missing = reconciled.json()["orders"]["missing_here"]
        assert missing == [{"order_no": "SH001/2026/1", "amount_fen": 1}]
        receipt = _order(client, 1, "SH001-2026.1_x")
        found = client.get(f"/v1/stores/1/orders/{receipt['order_no']}")
        assert found.status_code == 200, found.text
        refund = client.post(
            f"/v1/stores/1/orders/{receipt['order_no']}/refunds",
            json={"refund_no": "R-SLASH", "cashier": "c01"},
        )
        assert refund.status_code == 201, refund.text


def test_the_expiry_job_refuses_a_future_day_over_http(
    live_pg_server: Live, db_state: Callable[[], dict[str, tuple[int, str]]]
) -> None:
    # Issue 11 item 9: `as_of=2099-01-01` expired every lot of the brand.
    live = live_pg_server
    before = db_state()
    with live.client(live.hq_key) as client:
        response = client.post("/v1/jobs/expire", params={"as_of": "2099-01-01"})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "expiry_date_in_future"
        assert error["detail"]["timezone"] == "Asia/Shanghai"
        for number in ("0.0", "20990101.5"):
            assert client.post("/v1/jobs/expire", params={"as_of": number}).status_code == 422
    assert db_state() == before


def test_the_answers_of_the_real_server_are_the_ones_its_openapi_document_declares(
    live_pg_server: Live,
) -> None:
    # Issue 11 item 11: 401, 403, 404, 409, 422 and the 200 of a replay were
    # answered by operations whose OpenAPI document did not declare them.
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    live = live_pg_server
    schema = schemathesis.openapi.from_url(f"{live.base}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        response_schema_conformance,
        content_type_conformance,
    ]
    order = _confirm_body(1, "OPENAPI-1")
    with live.client(live.hq_key) as client:
        order["tenders"][0]["amount_fen"] = client.post(
            "/v1/quotes", json={"store_id": 1, "lines": LINES}
        ).json()["payable_fen"]
    refund = {"refund_no": "R-OPENAPI", "cashier": "c01"}
    sent: list[tuple[str, str, dict[str, Any], str | None, int]] = [
        # (method, path, {path_parameters, query, body}, key, expected status)
        ("GET", "/v1/members/{member_id}", {"path_parameters": {"member_id": 1}}, None, 401),
        ("GET", "/v1/members/{member_id}", {"path_parameters": {"member_id": 1}}, "hq", 200),
        ("GET", "/v1/members/{member_id}", {"path_parameters": {"member_id": 987654}}, "hq", 404),
        ("POST", "/v1/jobs/expire", {}, "cashier", 403),
        ("POST", "/v1/jobs/expire", {"query": {"as_of": "2099-01-01"}}, "hq", 422),
        (
            "GET",
            "/v1/stores/{store_id}/holds",
            {"path_parameters": {"store_id": 2}},
            "cashier",
            403,
        ),
        ("POST", "/v1/orders", {"body": order}, "cashier", 201),
        ("POST", "/v1/orders", {"body": order}, "cashier", 200),
        ("POST", "/v1/orders", {"body": {**order, "terminal": "T2"}}, "cashier", 409),
        (
            "POST",
            "/v1/stores/{store_id}/orders/{order_no}/refunds",
            {"path_parameters": {"store_id": 1, "order_no": "OPENAPI-1"}, "body": refund},
            "cashier",
            201,
        ),
        (
            "POST",
            "/v1/stores/{store_id}/orders/{order_no}/refunds",
            {"path_parameters": {"store_id": 1, "order_no": "OPENAPI-1"}, "body": refund},
            "cashier",
            200,
        ),
        (
            "GET",
            "/v1/members/{member_id}/points/history",
            {"path_parameters": {"member_id": 1}, "query": {"until": "0.5"}},
            "hq",
            422,
        ),
        (
            "DELETE",
            "/v1/stores/{store_id}/quotes/{token}",
            {"path_parameters": {"store_id": 1, "token": "nope"}},
            "hq",
            404,
        ),
        ("POST", "/v1/holds/{hold_id}/resume", {"path_parameters": {"hold_id": 987654}}, "hq", 404),
    ]
    keys = {"hq": live.hq_key, "cashier": live.cashier_key}
    for method, path, parts, key, status in sent:
        case = schema[path][method].Case(**parts)
        headers = {"Authorization": f"Bearer {keys[key]}"} if key else {}
        response = case.call(base_url=live.base, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        case.validate_response(response, checks=checks)
