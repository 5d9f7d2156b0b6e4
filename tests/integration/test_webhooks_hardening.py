"""Issue 11, items 3 and 4, on SQLite and PostgreSQL: IPv6 forms of private IPv4
addresses are refused at subscribe and at delivery; a new subscription receives
only events after it (older ones only when HQ asks, with a backfill)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from loyalpos.api.app import create_app
from loyalpos.cli import app as cli_app
from loyalpos.db.migrate import downgrade, upgrade
from loyalpos.db.tables import outbox, webhook_subscriptions
from loyalpos.db.types import UTCDateTime
from loyalpos.domain.errors import Conflict, InvalidInput
from loyalpos.service.admin import apikeys
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType, emit
from loyalpos.service.events import webhooks, worker
from loyalpos.service.events.handlers import Handlers
from loyalpos.service.events.worker import deliver_due, dispatch_outbox
from tests.conftest import Clock
from tests.integration.test_webhooks import (
    EVENTS,
    Receiver,
    deliveries,
    emit_events,
    public_only,
    receiver,
)

__all__ = ["receiver"]  # the fixture, shared with test_webhooks


@pytest.fixture(autouse=True)
def no_registered_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "REGISTRY", Handlers())


@pytest.fixture
def brand(ctx: Context) -> brands.Brand:
    return brands.create_brand(ctx, "a", "Brand A")


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as c:
        yield c


# --------------------------------------------------------------------------- item 3

EMBEDDED_PRIVATE = [
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "http://[::127.0.0.1]/hook",  # IPv4-compatible loopback
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1:0:1::c0a8:101]/",  # local-use NAT64 of 192.168.1.1
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated loopback
    "https://[2002:a00:1::1]:8443/",  # 6to4 of 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
]


@pytest.mark.parametrize("url", EMBEDDED_PRIVATE)
def test_ipv6_forms_of_private_ipv4_are_refused_at_subscribe(
    ctx: Context, brand: brands.Brand, url: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        webhooks.subscribe(public_only(ctx), brand.id, url, ["*"])
    assert refused.value.code == "webhook_url_not_public"


def test_ipv6_forms_of_public_ipv4_are_taken(ctx: Context, brand: brands.Brand) -> None:
    strict = public_only(ctx)
    for url in ("http://[64:ff9b::808:808]/", "http://[2002:808:808::1]/"):
        assert webhooks.subscribe(strict, brand.id, url, ["*"]).subscription.url == url


@pytest.mark.parametrize("answer", ["64:ff9b::7f00:1", "::127.0.0.1", "2002:a9fe:a9fe::1"])
def test_a_name_resolving_to_an_ipv6_form_of_a_private_ipv4_is_not_delivered_to(
    ctx: Context,
    clock: Clock,
    brand: brands.Brand,
    receiver: Receiver,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
) -> None:
    strict = public_only(ctx)
    webhooks.subscribe(strict, brand.id, f"http://hooks.example.test:{receiver.port}/", ["*"])
    emit_events(ctx, brand.id, [EVENTS[1]])
    dispatch_outbox(ctx, clock.now)
    monkeypatch.setattr(worker, "resolve", lambda host, port: [answer])
    result = deliver_due(strict, clock.now, client)
    assert (result.delivered, result.retrying) == (0, 1)
    (delivery,) = deliveries(ctx, brand.id)
    assert delivery.last_error is not None and "not a public address" in delivery.last_error
    assert answer in delivery.last_error
    assert receiver.requests == []


# --------------------------------------------------------------------------- item 4


def test_a_new_subscription_receives_none_of_the_queued_events(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    old = webhooks.subscribe(ctx, brand.id, receiver.url("/old"), ["order.paid"])
    queued = emit_events(ctx, brand.id, [EVENTS[1]] * 40)  # the worker is behind
    new = webhooks.subscribe(ctx, brand.id, receiver.url("/new"), ["order.paid"])
    assert new.subscription.after_event_id == queued[-1]
    later = emit_events(ctx, brand.id, [EVENTS[3], EVENTS[0]])
    assert dispatch_outbox(ctx, clock.now).events == 42
    got = {
        sub: sorted(d.outbox_id for d in deliveries(ctx, brand.id, subscription_id=sub))
        for sub in (old.subscription.id, new.subscription.id)
    }
    assert got == {old.subscription.id: [*queued, later[0]], new.subscription.id: [later[0]]}
    # The decision does not depend on when, or how often, the worker runs.
    with ctx.transaction() as conn:
        conn.execute(update(outbox).values(processed_at=None))
    assert dispatch_outbox(ctx, clock.now).deliveries == 0
    assert deliver_due(ctx, clock.now, client).delivered == 42
    assert [r.event_id for r in receiver.requests if r.path == "/new"] == [later[0]]


def test_an_event_committed_after_the_subscription_is_delivered(
    ctx: Context, clock: Clock, brand: brands.Brand
) -> None:
    """A booking in flight while HQ subscribes: its event counts as after the
    subscription when it commits after it (PostgreSQL: its id is above the
    highest visible one; SQLite: the subscription waits for the writer, so the
    event commits first and counts as before)."""
    started = threading.Event()
    commit = threading.Event()
    ids: list[int] = []

    def booking() -> None:
        with ctx.transaction() as conn:
            ids.append(emit(conn, brand.id, EventType.ORDER_PAID, "order:9", {}, clock.now))
            started.set()
            commit.wait(10)

    thread = threading.Thread(target=booking)
    thread.start()
    assert started.wait(10)
    made: list[webhooks.NewSubscription] = []
    subscriber = threading.Thread(
        target=lambda: made.append(webhooks.subscribe(ctx, brand.id, "http://h.test/", ["*"]))
    )
    subscriber.start()
    if ctx.dialect == "postgresql":
        subscriber.join(10)  # made while the booking is still open
        assert made
    else:
        subscriber.join(0.3)  # waits for the single writer
        assert not made
    commit.set()
    thread.join(10)
    subscriber.join(10)
    (sub,) = made
    dispatch_outbox(ctx, clock.now)
    delivered = [d.outbox_id for d in deliveries(ctx, brand.id)]
    if ctx.dialect == "postgresql":
        assert sub.subscription.after_event_id < ids[0]
        assert delivered == ids
    else:
        assert sub.subscription.after_event_id == ids[0]
        assert delivered == []


def test_backfill_sends_the_older_events_on_request_once(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    other = brands.create_brand(ctx, "b", "Brand B")
    before = emit_events(ctx, brand.id, EVENTS)  # 2 of them order.paid
    emit_events(ctx, other.id, EVENTS)
    dispatch_outbox(ctx, clock.now)  # long processed
    new = webhooks.subscribe(ctx, brand.id, receiver.url("/new"), ["order.paid", "tier.changed"])
    after = emit_events(ctx, brand.id, [EVENTS[1]])
    dispatch_outbox(ctx, clock.now)
    sub_id = new.subscription.id

    first = webhooks.backfill(ctx, brand.id, sub_id, limit=1)
    assert (first.created, first.last_event_id, first.more) == (1, before[1], True)
    rest = webhooks.backfill(ctx, brand.id, sub_id, after_event_id=first.last_event_id or 0)
    assert (rest.created, rest.last_event_id, rest.more) == (1, before[3], False)
    again = webhooks.backfill(ctx, brand.id, sub_id)
    assert (again.created, again.more) == (0, False)  # nothing twice
    assert deliver_due(ctx, clock.now, client).delivered == 3
    assert sorted(r.event_id for r in receiver.requests) == [before[1], before[3], after[0]]

    webhooks.deactivate(ctx, brand.id, sub_id)
    with pytest.raises(Conflict) as refused:
        webhooks.backfill(ctx, brand.id, sub_id)
    assert refused.value.code == "webhook_inactive"
    with pytest.raises(InvalidInput):
        webhooks.backfill(ctx, brand.id, sub_id, limit=0)


def test_the_api_and_cli_show_the_mark_and_backfill(
    runner: CliRunner, ctx: Context, brand: brands.Brand
) -> None:
    before = emit_events(ctx, brand.id, EVENTS)
    hq = apikeys.create_key(ctx, brand.id, apikeys.Scope.HQ, "hq").secret
    other = brands.create_brand(ctx, "b", "Brand B")
    other_hq = apikeys.create_key(ctx, other.id, apikeys.Scope.HQ, "hq").secret
    with TestClient(create_app(ctx)) as api:
        auth = {"Authorization": f"Bearer {hq}"}
        made = api.post("/v1/webhooks", json={"url": "https://h.example.com/"}, headers=auth)
        assert made.status_code == 201, made.text
        hook = made.json()
        assert hook["after_event_id"] == before[-1]
        assert (
            api.get("/v1/webhooks", headers=auth).json()["data"][0]["after_event_id"]
            == (before[-1])
        )
        url = f"/v1/webhooks/{hook['id']}/backfill"
        done = api.post(url, json={"after_event_id": before[0], "limit": 2}, headers=auth)
        assert done.status_code == 200, done.text
        assert done.json() == {
            "subscription_id": hook["id"],
            "created": 2,
            "last_event_id": before[2],
            "more": True,
        }
        bad = api.post(url, json={"limit": 0}, headers=auth)
        assert bad.status_code == 422 and "error" in bad.json()
        foreign = api.post(url, json={}, headers={"Authorization": f"Bearer {other_hq}"})
        assert foreign.status_code == 404
    assert len(deliveries(ctx, brand.id)) == 2

    out = runner.invoke(cli_app, ["webhook", "backfill", "-b", "a", str(hook["id"])])
    listed = runner.invoke(cli_app, ["webhook", "list", "-b", "a"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {
        "subscription_id": hook["id"],
        "created": 3,  # the first event and the 2 after the API's page
        "last_event_id": before[-1],
        "more": False,
    }
    assert json.loads(listed.stdout)[0]["after_event_id"] == before[-1]


def test_the_migration_marks_existing_subscriptions_at_their_backlog(
    ctx: Context, clock: Clock, brand: brands.Brand
) -> None:
    """Upgrading with a backlog: an existing subscription keeps the queued events
    written after it, and gets none written before it."""
    early = emit_events(ctx, brand.id, EVENTS[:2])
    clock.advance(minutes=1)
    sub_at = clock.now
    clock.advance(minutes=1)
    late = emit_events(ctx, brand.id, EVENTS[2:4])
    downgrade(ctx.engine, "0005")
    old_table = sa.table(
        "webhook_subscriptions",
        sa.column("brand_id"),
        sa.column("url"),
        sa.column("event_types"),
        sa.column("secret"),
        sa.column("active", sa.Boolean),
        sa.column("created_at", UTCDateTime),
    )
    with ctx.transaction() as conn:
        conn.execute(
            insert(old_table).values(
                brand_id=brand.id,
                url="https://h.example.com/",
                event_types='["*"]',
                secret="s",
                active=True,
                created_at=sub_at,
            )
        )
    upgrade(ctx.engine)
    with ctx.transaction(read_only=True) as conn:
        mark = conn.execute(select(webhook_subscriptions.c.after_event_id)).scalar_one()
    assert mark == early[-1]
    dispatch_outbox(ctx, clock.now)
    assert sorted(d.outbox_id for d in deliveries(ctx, brand.id)) == late
