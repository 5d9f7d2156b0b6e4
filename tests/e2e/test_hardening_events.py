"""Issue 11, items 3 and 4, over HTTP against the real server on PostgreSQL:
IPv6 forms of private IPv4 addresses are refused as webhook URLs, and a
subscription made while events are queued receives none of them (the worker
runs in-process against the server's database)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.tables import outbox, stores
from loyalpos.service.base.context import Context
from loyalpos.service.events.worker import dispatch_outbox
from tests.conftest import TEST_SECRET
from tests.e2e.live import Live

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def worker_context(live: Live) -> Context:
    """The worker as `loyalpos worker` makes it, on the live server's database."""
    settings = Settings(env="test", database_url=live.db_url, secret_key=TEST_SECRET)
    return Context(make_engine(live.db_url), settings)


def dispatch_all(ctx: Context) -> int:
    events = 0
    while True:
        result = dispatch_outbox(ctx)
        assert result.failed == ()
        events += result.events
        if result.events == 0:
            return events


def sh001(ctx: Context) -> int:
    with ctx.transaction(read_only=True) as conn:
        return int(conn.execute(select(stores.c.id).where(stores.c.code == "SH001")).scalar_one())


def pay(till: httpx.Client, store_id: int, order_no: str) -> dict[str, Any]:
    cart = {
        "store_id": store_id,
        "lines": [{"sku": "e2e-bun", "category": "bakery", "unit_price_fen": 1200, "qty": 1}],
    }
    quote = till.post("/v1/quotes", json=cart)
    assert quote.status_code == 200, quote.text
    paid = quote.json()["payable_fen"]
    body = {
        **cart,
        "order_no": order_no,
        "tenders": [{"method": "cash", "amount_fen": paid}],
        "cashier": "c01",
        "terminal": "T1",
    }
    done = till.post("/v1/orders", json=body)
    assert done.status_code == 201, done.text
    receipt: dict[str, Any] = done.json()
    return receipt


def order_paid_event(ctx: Context, order_id: int) -> int:
    with ctx.transaction(read_only=True) as conn:
        return int(
            conn.execute(
                select(outbox.c.id).where(
                    outbox.c.event_type == "order.paid", outbox.c.subject == f"order:{order_id}"
                )
            ).scalar_one()
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::a00:1]/",  # NAT64 form of 10.0.0.1
        "http://[::127.0.0.1]/",  # IPv4-compatible loopback
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # the metadata service via NAT64
        "http://[2002:a00:1::1]/",  # 6to4 of 10.0.0.1
        "http://[::ffff:0:7f00:1]/",  # IPv4-translated loopback
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    ],
)
def test_embedded_private_addresses_are_refused_over_http(live_pg_server: Live, url: str) -> None:
    with live_pg_server.client(live_pg_server.hq_key) as hq:
        refused = hq.post("/v1/webhooks", json={"url": url, "event_types": ["*"]})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "webhook_url_not_public"
        assert error["detail"]["field"] == "url"
        listed = hq.get("/v1/webhooks").json()["data"]
        assert url not in {w["url"] for w in listed}


def test_a_subscription_made_after_events_are_queued_receives_none_of_them(
    live_pg_server: Live,
) -> None:
    live = live_pg_server
    ctx = worker_context(live)
    try:
        dispatch_all(ctx)  # the seed's events: the worker is up to date
        store_id = sh001(ctx)
        with live.client(live.hq_key) as hq, live.client(live.cashier_key) as till:
            made = hq.post(
                "/v1/webhooks",
                json={"url": "https://old.example.com/", "event_types": ["order.paid"]},
            )
            assert made.status_code == 201, made.text
            old = made.json()
            # The worker is down; 25 orders are paid meanwhile.
            queued = [pay(till, store_id, f"E2E-Q{n}")["order_id"] for n in range(25)]
            made = hq.post(
                "/v1/webhooks",
                json={"url": "https://new.example.com/", "event_types": ["order.paid"]},
            )
            assert made.status_code == 201, made.text
            new = made.json()
            queued_events = [order_paid_event(ctx, o) for o in queued]
            assert new["after_event_id"] >= max(queued_events)
            later = [pay(till, store_id, f"E2E-L{n}")["order_id"] for n in range(2)]
            later_events = [order_paid_event(ctx, o) for o in later]

            assert dispatch_all(ctx) >= 27  # the worker comes back

            def event_ids(sub: dict[str, Any]) -> list[int]:
                r = hq.get(
                    "/v1/webhooks/deliveries", params={"subscription_id": sub["id"], "limit": 500}
                )
                assert r.status_code == 200, r.text
                return sorted(d["event_id"] for d in r.json()["data"])

            assert event_ids(new) == later_events
            assert event_ids(old) == sorted(queued_events + later_events)

            # Older events only when HQ asks for them, once.
            url = f"/v1/webhooks/{new['id']}/backfill"
            first = hq.post(url, json={"after_event_id": 0, "limit": 1000})
            assert first.status_code == 200, first.text
            assert first.json()["created"] == 25 and first.json()["more"] is False
            assert hq.post(url, json={}).json()["created"] == 0
            assert event_ids(new) == sorted(queued_events + later_events)
    finally:
        ctx.engine.dispose()
