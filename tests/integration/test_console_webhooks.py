"""The console's webhooks page: subscribing (bad input next to its field, the
secret shown once), stopping, the deliveries by status and replaying a dead
letter; an administrator's only. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from loyalpos.domain.webhooks import RetryPolicy
from loyalpos.service.events import webhooks, worker
from tests.integration.console_helpers import Shop, open_shop


@pytest.fixture
def shop(db_url: str) -> Iterator[Shop]:
    yield from open_shop(db_url)


DEAD_URL = "http://127.0.0.1:9/hook"  # nothing listens on the discard port


def make_dead(s: Shop) -> int:
    """A delivery of an order.paid that failed its one attempt: a dead letter."""
    webhooks.subscribe(s.ctx, s.brand_id, DEAD_URL, ["order.paid"])
    s.book("SH001", "SH-dead")
    worker.dispatch_outbox(s.ctx)
    with httpx.Client(timeout=2) as client:
        worker.deliver_due(s.ctx, None, client, policy=RetryPolicy(max_attempts=1))
    (dead,) = webhooks.list_deliveries(s.ctx, s.brand_id, status="dead")
    return dead.id


def test_subscribe_with_errors_next_to_the_field_then_the_secret_once(shop: Shop) -> None:
    token = shop.sign_in("admin")
    c = shop.client
    bad = c.post("/console/webhooks", data={"csrf": token, "url": "ftp://x", "events": "*"})
    assert bad.status_code == 400 and 'id="url-error"' in bad.text
    none = c.post("/console/webhooks", data={"csrf": token, "url": "https://h.example.com/x"})
    assert none.status_code == 400 and 'id="events-error"' in none.text
    assert webhooks.list_subscriptions(shop.ctx, shop.brand_id) == []
    form = {"csrf": token, "url": "https://h.example.com/x", "events": ["order.paid", "*"]}
    made = c.post("/console/webhooks", data=form)
    assert made.status_code == 200 and "whsec_" in made.text
    (sub,) = webhooks.list_subscriptions(shop.ctx, shop.brand_id)
    assert sub.active and "whsec_" not in c.get("/console/webhooks").text
    stop = c.post(
        f"/console/webhooks/{sub.id}/disable", data={"csrf": token}, follow_redirects=False
    )
    assert stop.status_code == 303
    assert not webhooks.get_subscription(shop.ctx, shop.brand_id, sub.id).active


def test_a_dead_delivery_is_listed_and_replayed(shop: Shop) -> None:
    dead = make_dead(shop)
    token = shop.sign_in("admin")
    c = shop.client
    page = c.get("/console/webhooks?status=dead")
    assert f'data-delivery="{dead}" data-status="dead"' in page.text
    assert 'data-status="delivered"' not in page.text
    done = c.post(
        f"/console/webhooks/deliveries/{dead}/replay", data={"csrf": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert webhooks.get_delivery(shop.ctx, shop.brand_id, dead).status.value == "pending"
    again = c.post(
        f"/console/webhooks/deliveries/{dead}/replay", data={"csrf": token}, follow_redirects=False
    )
    assert again.status_code == 409 and f'id="delivery-{dead}-error"' in again.text
    assert re.search(r'data-status="pending"', c.get("/console/webhooks").text)


def test_only_an_administrator_manages_webhooks(shop: Shop) -> None:
    dead = make_dead(shop)
    for login in ("operator", "analyst", "manager.sh001"):
        token = shop.sign_in(login)
        assert shop.client.get("/console/webhooks").status_code == 403
        answer = shop.client.post(
            f"/console/webhooks/deliveries/{dead}/replay", data={"csrf": token}
        )
        assert answer.status_code == 403 and "没有权限" in answer.text
    token = shop.sign_in("admin")
    answer = shop.client.post(f"/console/webhooks/deliveries/{dead}/replay", data={"csrf": "x"})
    assert answer.status_code == 403
    assert webhooks.get_delivery(shop.ctx, shop.brand_id, dead).status.value == "dead"
