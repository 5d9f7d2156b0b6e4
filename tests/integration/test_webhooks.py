"""Outbox worker and signed webhooks against a real HTTP receiver on loopback,
on SQLite and PostgreSQL: outages and recovery, the backoff schedule, dead
letters and replay, leases, handlers, concurrent workers, the API and the CLI."""

from __future__ import annotations

import gc
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select, update
from typer.testing import CliRunner

from loyalpos.api.app import create_app
from loyalpos.cli import app as cli_app
from loyalpos.config import get_settings
from loyalpos.db.tables import outbox, webhook_deliveries
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.webhooks import (
    DELIVERY_ID_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    RetryPolicy,
    parse_signature_header,
    verify,
)
from loyalpos.service.admin import apikeys
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType, OutboxEvent, emit
from loyalpos.service.events import webhooks, worker
from loyalpos.service.events.handlers import Handler, Handlers
from loyalpos.service.events.webhooks import DeliveryStatus
from loyalpos.service.events.worker import claim_due, deliver_due, dispatch_outbox
from tests.conftest import TEST_SECRET, Clock, make_context

# --------------------------------------------------------------------------- receiver


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def t(self) -> int:
        parsed = parse_signature_header(self.headers[SIGNATURE_HEADER])
        assert parsed is not None
        return parsed.timestamp

    @property
    def delivery_id(self) -> int:
        return int(self.headers[DELIVERY_ID_HEADER])

    @property
    def event_id(self) -> int:
        return int(self.headers[EVENT_ID_HEADER])


class Receiver:
    """An HTTP server in a thread on a fixed loopback port that can be down
    (nothing listening: connection refused), failing (answers `status`) or up."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.status = 200
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    def start(self) -> None:
        assert self.server is None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                status = receiver.status
                with receiver.lock:
                    receiver.requests.append(
                        Request(self.path, dict(self.headers.items()), body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answered(self, status: int = 200) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.answered == status]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    if r.server is not None:
        r.stop()


def for_every_type(handler: Handler) -> Handlers:
    registry = Handlers()
    registry.add(EventType, handler)
    return registry


@pytest.fixture(autouse=True)
def no_registered_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests send synthetic events; hooks other modules register (campaigns)
    are tested with real orders in their own tests."""
    monkeypatch.setattr(worker, "REGISTRY", Handlers())


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as c:
        yield c


# --------------------------------------------------------------------------- helpers

POLICY = RetryPolicy(max_attempts=6, base_seconds=10, cap_seconds=40)

EVENTS: list[tuple[EventType, str, dict[str, Any]]] = [
    (EventType.MEMBER_CREATED, "member:7", {"member_id": 7, "name": "张三"}),
    (EventType.ORDER_PAID, "order:1", {"order_id": 1, "payable": 12345, "note": "满100减20 ✓"}),
    (EventType.POINTS_CHANGED, "member:7", {"member_id": 7, "delta": 123, "balance": 1323}),
    (EventType.ORDER_PAID, "order:2", {"order_id": 2, "payable": 1, "lines": [{"sku": "A"}]}),
    (EventType.COUPON_ISSUED, "coupon:9", {"coupon_id": 9, "template": "满100减20"}),
]


def emit_events(
    ctx: Context, brand_id: int, events: list[tuple[EventType, str, dict[str, Any]]]
) -> list[int]:
    ids = []
    for event_type, subject, payload in events:
        with ctx.transaction() as conn:
            ids.append(emit(conn, brand_id, event_type, subject, payload, ctx.now()))
    return ids


def payload_text(ctx: Context, event_id: int) -> str:
    with ctx.transaction(read_only=True) as conn:
        text: str = conn.execute(
            select(outbox.c.payload).where(outbox.c.id == event_id)
        ).scalar_one()
    return text


def deliveries(ctx: Context, brand_id: int, **kwargs: Any) -> list[webhooks.Delivery]:
    return webhooks.list_deliveries(ctx, brand_id, limit=500, **kwargs)


def count_deliveries(ctx: Context) -> int:
    with ctx.transaction(read_only=True) as conn:
        n: int = conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one()
    return n


def assert_signed(request: Request, secret: str) -> None:
    assert verify(secret, request.body, request.headers[SIGNATURE_HEADER], request.t)


@pytest.fixture
def brand(ctx: Context) -> brands.Brand:
    return brands.create_brand(ctx, "a", "Brand A")


# --------------------------------------------------------------------------- outage and recovery


def test_events_arrive_signed_once_after_an_outage(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    other = brands.create_brand(ctx, "b", "Brand B")
    all_sub = webhooks.subscribe(ctx, brand.id, receiver.url("/all"), ["*"])
    paid_sub = webhooks.subscribe(ctx, brand.id, receiver.url("/paid"), ["order.paid"])
    other_sub = webhooks.subscribe(ctx, other.id, receiver.url("/b"), ["*"])
    secrets = {"/all": all_sub.secret, "/paid": paid_sub.secret, "/b": other_sub.secret}
    assert len(set(secrets.values())) == 3

    ids = emit_events(ctx, brand.id, EVENTS)
    (other_id,) = emit_events(ctx, other.id, [(EventType.ORDER_PAID, "order:1", {"x": 1})])
    receiver.stop()  # the receiver is down: connections are refused
    t0 = clock.now

    d = dispatch_outbox(ctx, clock.now)
    assert (d.events, d.deliveries, d.failed) == (6, 5 + 2 + 1, ())
    assert dispatch_outbox(ctx, clock.now).events == 0

    r = deliver_due(ctx, clock.now, client, policy=POLICY)
    assert (r.claimed, r.delivered, r.retrying, r.dead) == (8, 0, 8, 0)
    for delivery in deliveries(ctx, brand.id) + deliveries(ctx, other.id):
        assert delivery.status is DeliveryStatus.PENDING
        assert delivery.attempts == 1
        assert delivery.next_attempt_at == t0 + timedelta(seconds=10)
        assert delivery.last_status is None
        assert delivery.last_error and "ConnectError" in delivery.last_error

    # Not due yet: nothing is tried.
    clock.advance(seconds=9)
    assert deliver_due(ctx, clock.now, client, policy=POLICY).claimed == 0

    # Back, but failing with 503.
    receiver.status = 503
    receiver.start()
    clock.advance(seconds=1)
    r = deliver_due(ctx, clock.now, client, policy=POLICY)
    assert (r.claimed, r.retrying) == (8, 8)
    assert len(receiver.answered(503)) == 8
    for delivery in deliveries(ctx, brand.id):
        assert (delivery.attempts, delivery.last_status) == (2, 503)
        assert delivery.next_attempt_at == t0 + timedelta(seconds=10 + 20)
        assert delivery.last_error == "HTTP 503: no"

    # Healthy again: one more attempt, 20 s later, delivers everything.
    receiver.status = 200
    clock.advance(seconds=19)
    assert deliver_due(ctx, clock.now, client, policy=POLICY).claimed == 0
    clock.advance(seconds=1)
    r = deliver_due(ctx, clock.now, client, policy=POLICY)
    assert (r.claimed, r.delivered) == (8, 8)
    clock.advance(hours=5)
    assert dispatch_outbox(ctx, clock.now).events == 0
    assert deliver_due(ctx, clock.now, client, policy=POLICY).claimed == 0

    ok = receiver.answered(200)
    assert len(ok) == 8
    got = Counter((q.path, q.event_id) for q in ok)
    expected_paid = [i for i, e in zip(ids, EVENTS, strict=True) if e[0] is EventType.ORDER_PAID]
    assert got == Counter(
        [("/all", i) for i in ids] + [("/paid", i) for i in expected_paid] + [("/b", other_id)]
    )
    by_delivery = {d.id: d for d in deliveries(ctx, brand.id) + deliveries(ctx, other.id)}
    for q in ok:
        # Exactly the stored event, byte for byte, signed with its subscription's secret.
        assert q.body == payload_text(ctx, q.event_id).encode()
        assert_signed(q, secrets[q.path])
        for path, secret in secrets.items():
            if path != q.path:
                assert not verify(secret, q.body, q.headers[SIGNATURE_HEADER], q.t)
        assert q.t == int((t0 + timedelta(seconds=30)).timestamp())
        delivery = by_delivery[q.delivery_id]
        assert delivery.outbox_id == q.event_id
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
        assert delivery.delivered_at == t0 + timedelta(seconds=30)
        assert q.headers[EVENT_TYPE_HEADER] == delivery.event_type
        assert q.headers["Content-Type"] == "application/json; charset=utf-8"
        body = json.loads(q.body)
        assert body["type"] == delivery.event_type and body["subject"] == delivery.subject
    sent = {q.event_id: json.loads(q.body) for q in ok if q.path == "/all"}
    for event_id, (event_type, subject, payload) in zip(ids, EVENTS, strict=True):
        assert sent[event_id] == {
            "type": event_type.value,
            "subject": subject,
            "at": t0.isoformat(),
            **payload,
        }
    # The 503 attempts were signed too, at their own time.
    for q in receiver.answered(503):
        assert_signed(q, secrets[q.path])
        assert q.t == int((t0 + timedelta(seconds=10)).timestamp())


def test_dead_after_max_attempts_then_replay(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    policy = RetryPolicy(max_attempts=4, base_seconds=5, cap_seconds=15)
    sub = webhooks.subscribe(ctx, brand.id, receiver.url("/hook"), ["order.paid"])
    (event_id,) = emit_events(ctx, brand.id, [EVENTS[1]])
    receiver.status = 500
    dispatch_outbox(ctx, clock.now)
    (delivery,) = deliveries(ctx, brand.id)

    outcomes = []
    for _ in range(10):
        r = deliver_due(ctx, clock.now, client, policy=policy)
        outcomes += [o.status for o in r.outcomes]
        current = webhooks.get_delivery(ctx, brand.id, delivery.id)
        if current.status is DeliveryStatus.DEAD:
            break
        clock.now = current.next_attempt_at
    assert outcomes == [DeliveryStatus.PENDING] * 3 + [DeliveryStatus.DEAD]
    tries = receiver.answered(500)
    assert len(tries) == 4
    assert [b.t - a.t for a, b in zip(tries, tries[1:], strict=False)] == [5, 10, 15]  # capped
    for q in tries:
        assert_signed(q, sub.secret)

    (dead,) = deliveries(ctx, brand.id, status="dead")
    assert (dead.id, dead.attempts, dead.last_status) == (delivery.id, 4, 500)
    assert deliveries(ctx, brand.id, status="pending") == []
    clock.advance(days=1)
    assert deliver_due(ctx, clock.now, client, policy=policy).claimed == 0
    assert len(receiver.requests) == 4

    # Replay: pending, due now, attempts reset; the receiver is healthy again.
    receiver.status = 200
    replayed = webhooks.replay(ctx, brand.id, delivery.id)
    assert (replayed.status, replayed.attempts, replayed.next_attempt_at) == (
        DeliveryStatus.PENDING,
        0,
        clock.now,
    )
    with pytest.raises(Conflict) as pending:
        webhooks.replay(ctx, brand.id, delivery.id)
    assert pending.value.code == "delivery_pending"
    r = deliver_due(ctx, clock.now, client, policy=policy)
    assert r.delivered == 1
    (first,) = receiver.answered(200)
    assert first.event_id == event_id and first.delivery_id == delivery.id
    assert first.body == payload_text(ctx, event_id).encode()
    assert_signed(first, sub.secret)
    done = webhooks.get_delivery(ctx, brand.id, delivery.id)
    assert (done.status, done.attempts, done.delivered_at) == (
        DeliveryStatus.DELIVERED,
        1,
        clock.now,
    )

    # A delivered one can be sent again too: same event id, same body, new time.
    clock.advance(minutes=1)
    webhooks.replay(ctx, brand.id, delivery.id)
    assert deliver_due(ctx, clock.now, client, policy=policy).delivered == 1
    again = receiver.answered(200)[1]
    assert (again.event_id, again.body) == (first.event_id, first.body)
    assert again.t == first.t + 60
    assert_signed(again, sub.secret)


def test_default_policy_gives_up_after_eight_attempts(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    webhooks.subscribe(ctx, brand.id, receiver.url("/x"), ["*"])
    emit_events(ctx, brand.id, [EVENTS[0]])
    receiver.stop()
    dispatch_outbox(ctx, clock.now)
    start = clock.now
    attempts_at = []
    for _ in range(20):
        r = deliver_due(ctx, clock.now, client)
        if r.claimed:
            attempts_at.append((clock.now - start).total_seconds())
        (d,) = deliveries(ctx, brand.id)
        if d.status is DeliveryStatus.DEAD:
            break
        clock.now = d.next_attempt_at
    assert attempts_at == [0, 30, 90, 210, 450, 930, 1890, 3810]
    assert d.attempts == 8 and "ConnectError" in (d.last_error or "")


# --------------------------------------------------------------------------- leases


def test_a_claimed_delivery_is_not_sent_twice_until_its_lease_ends(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    sub = webhooks.subscribe(ctx, brand.id, receiver.url("/x"), ["*"])
    emit_events(ctx, brand.id, [EVENTS[0]])
    dispatch_outbox(ctx, clock.now)
    # A worker claims it and dies before sending.
    (lost,) = claim_due(ctx, clock.now, 10, timedelta(seconds=60))
    assert lost.attempt == 1 and lost.lease_until == clock.now + timedelta(seconds=60)
    clock.advance(seconds=59)
    assert deliver_due(ctx, clock.now, client).claimed == 0
    assert receiver.requests == []
    clock.advance(seconds=1)
    r = deliver_due(ctx, clock.now, client)
    assert r.delivered == 1 and r.outcomes[0].attempt == 2
    (q,) = receiver.requests
    assert_signed(q, sub.secret)
    # The first worker comes back late: its outcome is not recorded over the newer one.
    late = worker.record(ctx, lost, worker.Attempt(None, "ReadTimeout"), clock.now, POLICY)
    assert late.status is None
    (d,) = deliveries(ctx, brand.id)
    assert (d.status, d.attempts, d.last_error) == (DeliveryStatus.DELIVERED, 2, None)


# --------------------------------------------------------------------------- dispatch and handlers


def test_dispatch_never_doubles_deliveries(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver
) -> None:
    webhooks.subscribe(ctx, brand.id, receiver.url("/1"), ["*"])
    webhooks.subscribe(ctx, brand.id, receiver.url("/2"), ["points.changed", "order.paid"])
    ids = emit_events(ctx, brand.id, EVENTS)
    assert dispatch_outbox(ctx, clock.now, batch=2).events == 2
    assert dispatch_outbox(ctx, clock.now, batch=2).events == 2
    assert dispatch_outbox(ctx, clock.now, batch=2).events == 1
    assert count_deliveries(ctx) == 5 + 3
    # As if the worker had died after creating deliveries but before marking:
    with ctx.transaction() as conn:
        conn.execute(update(outbox).values(processed_at=None))
    again = dispatch_outbox(ctx, clock.now)
    assert (again.events, again.deliveries) == (5, 0)
    assert count_deliveries(ctx) == 8
    with ctx.transaction(read_only=True) as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.processed_at.is_(None))
            ).scalar_one()
            == 0
        )
    assert sorted({d.outbox_id for d in deliveries(ctx, brand.id)}) == ids


def test_inactive_and_unmatched_subscriptions_get_nothing(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    keep = webhooks.subscribe(ctx, brand.id, receiver.url("/keep"), ["coupon.issued"])
    gone = webhooks.subscribe(ctx, brand.id, receiver.url("/gone"), ["*"])
    receiver.stop()
    emit_events(ctx, brand.id, EVENTS[:2])
    dispatch_outbox(ctx, clock.now)
    assert deliver_due(ctx, clock.now, client).retrying == 2
    assert len(deliveries(ctx, brand.id, status="pending")) == 2

    stopped = webhooks.deactivate(ctx, brand.id, gone.subscription.id)
    assert not stopped.active
    assert webhooks.deactivate(ctx, brand.id, gone.subscription.id) == stopped  # idempotent
    dead = deliveries(ctx, brand.id, status="dead")
    assert len(dead) == 2
    assert {d.last_error for d in dead} == {webhooks.DEACTIVATED_ERROR}
    with pytest.raises(Conflict) as refused:
        webhooks.replay(ctx, brand.id, dead[0].id)
    assert refused.value.code == "webhook_inactive"

    receiver.start()
    emit_events(ctx, brand.id, EVENTS)
    assert dispatch_outbox(ctx, clock.now).deliveries == 1  # only coupon.issued to /keep
    clock.advance(hours=1)
    assert deliver_due(ctx, clock.now, client).delivered == 1
    (q,) = receiver.requests
    assert q.path == "/keep" and q.headers[EVENT_TYPE_HEADER] == "coupon.issued"
    assert_signed(q, keep.secret)
    assert [s.active for s in webhooks.list_subscriptions(ctx, brand.id)] == [True, False]
    assert webhooks.list_subscriptions(ctx, brand.id, include_inactive=False) == [keep.subscription]


def test_handlers_run_once_per_event_in_the_marking_transaction(
    ctx: Context, clock: Clock, brand: brands.Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhooks.subscribe(ctx, brand.id, "https://example.invalid/hook", ["*"])
    seen: list[tuple[int, str]] = []

    def campaign(_: Context, conn: Connection, event: OutboxEvent, now: datetime) -> None:
        seen.append((event.id, event.event_type))
        assert event.body == payload_text_in(conn, event.id)
        assert event.payload["subject"] == event.subject and now == clock.now
        if event.event_type == EventType.ORDER_PAID:
            # A triggered campaign: its own event, in the same transaction.
            emit(conn, event.brand_id, EventType.TIER_CHANGED, event.subject, {"tier": "gold"}, now)
            if event.payload["order_id"] == 2:
                raise RuntimeError("campaign bug")

    monkeypatch.setattr(worker, "REGISTRY", for_every_type(campaign))
    ids = emit_events(ctx, brand.id, EVENTS)
    first = dispatch_outbox(ctx, clock.now)
    bad = ids[3]
    assert (first.events, first.failed) == (4, (bad,))
    assert [e for e, _ in seen] == ids
    # The failed event's handler effects and deliveries were rolled back with it.
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(select(outbox).order_by(outbox.c.id)).all()
    assert [(r.event_type, r.processed_at is None) for r in rows] == [
        *[(e.value, i == bad) for i, (e, _, _) in zip(ids, EVENTS, strict=True)],
        ("tier.changed", True),
    ]
    assert bad not in {d.outbox_id for d in deliveries(ctx, brand.id)}

    # The campaign is fixed: the failed event goes through; the others never run again.
    seen.clear()
    monkeypatch.setattr(
        worker, "REGISTRY", for_every_type(lambda x, c, e, n: seen.append((e.id, e.event_type)))
    )
    second = dispatch_outbox(ctx, clock.now)
    assert second.events == 2 and second.failed == ()
    assert [t for _, t in seen] == ["order.paid", "tier.changed"]
    assert seen[0][0] == bad
    assert dispatch_outbox(ctx, clock.now).events == 0
    assert len(deliveries(ctx, brand.id)) == 6


def payload_text_in(conn: Connection, event_id: int) -> str:
    text: str = conn.execute(select(outbox.c.payload).where(outbox.c.id == event_id)).scalar_one()
    return text


# --------------------------------------------------------------------------- concurrency


def test_two_workers_never_double_deliver(
    db_url: str, ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver
) -> None:
    """On PostgreSQL the claims use FOR UPDATE SKIP LOCKED; on SQLite the writer
    lock serialises them. Either way each delivery is sent once."""
    subs = [webhooks.subscribe(ctx, brand.id, receiver.url(f"/{i}"), ["*"]) for i in range(2)]
    events = [(EventType.POINTS_CHANGED, f"member:{i}", {"delta": i}) for i in range(40)]
    emit_events(ctx, brand.id, events)
    receiver.delay = 0.002
    handled: list[int] = []
    lock = threading.Lock()

    def handler(_: Context, conn: Connection, event: OutboxEvent, now: datetime) -> None:
        with lock:
            handled.append(event.id)

    def run(step: Any) -> None:
        own = make_context(db_url, clock)
        try:
            with httpx.Client(trust_env=False) as http:
                start.wait()
                while step(own, http):
                    pass
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            own.engine.dispose()

    def dispatch_step(own: Context, http: httpx.Client) -> bool:
        return dispatch_outbox(own, clock.now, batch=3, handlers=[handler]).events > 0

    def deliver_step(own: Context, http: httpx.Client) -> bool:
        return deliver_due(own, clock.now, http, batch=4, concurrency=2).claimed > 0

    for step in (dispatch_step, deliver_step):
        errors: list[BaseException] = []
        start = threading.Barrier(3)
        threads = [threading.Thread(target=run, args=(step,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
    assert sorted(handled) == sorted(set(handled)) and len(handled) == 40
    assert count_deliveries(ctx) == 80
    got = Counter(q.delivery_id for q in receiver.requests)
    assert len(got) == 80 and set(got.values()) == {1}
    secrets = {s.subscription.id: s.secret for s in subs}
    by_id = {d.id: d for d in deliveries(ctx, brand.id)}
    for q in receiver.requests:
        d = by_id[q.delivery_id]
        assert_signed(q, secrets[d.subscription_id])
        assert (d.status, d.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_run_worker_once_drains_and_a_loop_stops_when_asked(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    webhooks.subscribe(ctx, brand.id, receiver.url("/x"), ["*"])
    emit_events(ctx, brand.id, EVENTS * 3)
    stats = worker.run_worker(ctx, once=True, client=client, dispatch_batch=4, deliver_batch=4)
    assert (stats.events, stats.deliveries_created, stats.delivered) == (15, 15, 15)
    assert len(receiver.requests) == 15

    stop = threading.Event()
    emit_events(ctx, brand.id, EVENTS[:1])
    done: list[worker.WorkerStats] = []
    loop = threading.Thread(
        target=lambda: done.append(
            worker.run_worker(ctx, poll_seconds=0.05, client=client, stop=stop)
        )
    )
    loop.start()
    for _ in range(200):
        if len(receiver.requests) == 16:
            break
        threading.Event().wait(0.05)
    stop.set()
    loop.join(timeout=10)
    assert done and done[0].delivered == 1 and done[0].passes >= 1


# --------------------------------------------------------------------------- service validation


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "example.com/hook",
        "http:///nohost",
        "http://user:pw@example.com/",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "http://example.com/\x00",
        "https://example.com/" + "a" * 500,
    ],
)
def test_bad_urls_are_refused(ctx: Context, brand: brands.Brand, url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        webhooks.subscribe(ctx, brand.id, url, ["*"])
    assert refused.value.code == "invalid_webhook_url"


def test_event_types_are_checked_and_normalised(ctx: Context, brand: brands.Brand) -> None:
    for bad in ([], ["order.paid", "order.shipped"], ["ORDER.PAID"]):
        with pytest.raises(InvalidInput) as refused:
            webhooks.subscribe(ctx, brand.id, "https://example.com/h", bad)
        assert refused.value.code == "invalid_event_types"
    made = webhooks.subscribe(
        ctx, brand.id, " https://example.com/h ", ["order.paid", "member.created", "order.paid"]
    )
    assert made.subscription.event_types == ("member.created", "order.paid")
    assert made.subscription.url == "https://example.com/h"
    assert made.secret.startswith("whsec_") and len(made.secret) > 40
    star = webhooks.subscribe(ctx, brand.id, "http://example.com:8080/h", ["order.paid", "*"])
    assert star.subscription.event_types == ("*",)
    with pytest.raises(InvalidInput):
        webhooks.list_deliveries(ctx, brand.id, status="failed")
    with pytest.raises(NotFound):
        webhooks.subscribe(ctx, 999, "https://example.com/h", ["*"])


def test_other_brands_see_nothing(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver
) -> None:
    other = brands.create_brand(ctx, "b", "Brand B")
    sub = webhooks.subscribe(ctx, brand.id, receiver.url("/a"), ["*"])
    emit_events(ctx, brand.id, EVENTS[:1])
    dispatch_outbox(ctx, clock.now)
    (d,) = deliveries(ctx, brand.id)
    assert deliveries(ctx, other.id) == []
    assert webhooks.list_subscriptions(ctx, other.id) == []
    for call in (
        lambda: webhooks.replay(ctx, other.id, d.id),
        lambda: webhooks.get_delivery(ctx, other.id, d.id),
        lambda: webhooks.deactivate(ctx, other.id, sub.subscription.id),
    ):
        with pytest.raises(NotFound):
            call()


# --------------------------------------------------------------------------- API


def test_api(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver, client: httpx.Client
) -> None:
    store = brands.create_store(ctx, brand.id, "s1", "Store 1")
    hq = apikeys.create_key(ctx, brand.id, apikeys.Scope.HQ, "hq").secret
    till = apikeys.create_key(ctx, brand.id, apikeys.Scope.CASHIER, "till", store_id=store.id)
    other = brands.create_brand(ctx, "b", "Brand B")
    other_hq = apikeys.create_key(ctx, other.id, apikeys.Scope.HQ, "hq").secret
    api = TestClient(create_app(ctx))

    def call(method: str, url: str, key: str | None = hq, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = api.request(method, url, headers=headers, **kw)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "detail"}
        return response

    assert call("GET", "/v1/webhooks", key=None).status_code == 401
    assert call("GET", "/v1/webhooks", key=till.secret).status_code == 403
    made = call("POST", "/v1/webhooks", json={"url": receiver.url("/api"), "event_types": ["*"]})
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["secret"].startswith("whsec_") and created["active"] is True
    listed = call("GET", "/v1/webhooks").json()
    assert listed["count"] == 1 and "secret" not in listed["data"][0]
    assert call("GET", "/v1/webhooks", key=other_hq).json()["count"] == 0
    default = call("POST", "/v1/webhooks", json={"url": "https://example.com/all"}).json()
    assert default["event_types"] == ["*"]

    for body, code in [
        ({"url": "ftp://x/y", "event_types": ["*"]}, "invalid_webhook_url"),
        ({"url": "https://x/y", "event_types": ["nope"]}, "invalid_event_types"),
        ({"url": "https://x/\u0000", "event_types": ["*"]}, "validation_error"),
        ({"url": "https://x/y", "event_types": []}, "validation_error"),
        ({"url": "https://x/y", "extra": 1}, "validation_error"),
    ]:
        response = call("POST", "/v1/webhooks", json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == code, body

    receiver.status = 503
    emit_events(ctx, brand.id, EVENTS[:1])
    dispatch_outbox(ctx, clock.now)
    policy = RetryPolicy(max_attempts=1)
    deliver_due(ctx, clock.now, client, policy=policy)  # also fails /all: example.com not served
    dead = call("GET", "/v1/webhooks/deliveries", params={"status": "dead"}).json()
    api_dead = [d for d in dead["data"] if d["subscription_id"] == created["id"]]
    assert len(api_dead) == 1
    d = api_dead[0]
    assert (d["status"], d["attempts"], d["last_status"], d["event_type"]) == (
        "dead",
        1,
        503,
        "member.created",
    )
    assert call("GET", "/v1/webhooks/deliveries", params={"status": "sent"}).status_code == 422
    assert call("GET", "/v1/webhooks/deliveries", params={"limit": 0}).status_code == 422
    assert (
        call("GET", "/v1/webhooks/deliveries", params={"status": "dead"}, key=other_hq).json()[
            "count"
        ]
        == 0
    )
    paged = call("GET", "/v1/webhooks/deliveries", params={"after_id": d["id"]}).json()
    assert all(x["id"] > d["id"] for x in paged["data"])

    receiver.status = 200
    replay_url = f"/v1/webhooks/deliveries/{d['id']}/replay"
    assert call("POST", replay_url, key=other_hq).status_code == 404
    replayed = call("POST", replay_url)
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
    again = call("POST", replay_url)
    assert again.status_code == 409 and again.json()["error"]["code"] == "delivery_pending"
    deliver_due(ctx, clock.now, client, policy=policy)
    (q,) = receiver.answered(200)
    assert_signed(q, created["secret"])
    assert call("POST", "/v1/webhooks/deliveries/999999/replay").status_code == 404
    assert call("POST", "/v1/webhooks/deliveries/0/replay").status_code == 422
    assert call("POST", f"/v1/webhooks/deliveries/{2**63}/replay").status_code == 422

    url = f"/v1/webhooks/{created['id']}/deactivate"
    assert call("POST", url, key=other_hq).status_code == 404
    assert call("POST", url).json()["active"] is False
    assert call("POST", url).json()["active"] is False
    assert call("POST", "/v1/webhooks/424242/deactivate").status_code == 404
    assert call("POST", replay_url).status_code == 409


# --------------------------------------------------------------------------- CLI


def test_cli(
    db_url: str, ctx: Context, brand: brands.Brand, receiver: Receiver, clock: Clock
) -> None:
    get_settings.cache_clear()
    runner = CliRunner(
        env={
            "LOYALPOS_DATABASE_URL": db_url,
            "LOYALPOS_ENV": "test",
            "LOYALPOS_SECRET_KEY": TEST_SECRET,
            # the receiver is on loopback, as an on-premise ERP would be on 10.x
            "LOYALPOS_WEBHOOK_PRIVATE_NETWORK": "true",
            "NO_PROXY": "127.0.0.1",
        }
    )

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(cli_app, list(args))
        assert result.exit_code == code, (args, result.output, result.exception)
        return json.loads(result.stdout) if code == 0 else json.loads(result.stderr)

    try:
        made = run("webhook", "subscribe", "-b", "a", receiver.url("/cli"), "-e", "order.paid")
        assert made["event_types"] == ["order.paid"] and made["secret"].startswith("whsec_")
        refused = run("webhook", "subscribe", "-b", "a", "mailto:x@y", code=1)
        assert refused["error"]["code"] == "invalid_webhook_url"
        assert [s["id"] for s in run("webhook", "list", "-b", "a")] == [made["id"]]

        receiver.stop()
        emit_events(ctx, brand.id, EVENTS[1:2])
        stats = run("worker", "--once")
        assert (stats["events"], stats["retrying"], stats["delivered"]) == (1, 1, 0)
        (pending,) = run("webhook", "deliveries", "-b", "a", "--status", "pending")
        assert run("webhook", "replay", "-b", "a", str(pending["id"]), code=1)["error"]["code"] == (
            "delivery_pending"
        )
        assert run("webhook", "deliveries", "-b", "a", "--status", "x", code=1)["error"][
            "code"
        ] == ("invalid_delivery_status")

        # Kill it (as an operator would after a long outage), then replay it.
        run("webhook", "deactivate", "-b", "a", str(made["id"]))
        (dead,) = run("webhook", "deliveries", "-b", "a", "--status", "dead")
        assert dead["id"] == pending["id"]
        with ctx.transaction() as conn:  # re-enable to show replay end to end
            from loyalpos.db.tables import webhook_subscriptions

            conn.execute(update(webhook_subscriptions).values(active=True))
        receiver.start()
        assert run("webhook", "replay", "-b", "a", str(dead["id"]))["status"] == "pending"
        assert run("webhook", "replay", "-b", "a", "999", code=1)["error"]["code"] == (
            "delivery_not_found"
        )
        assert run("worker", "--once")["delivered"] == 1
        (q,) = receiver.requests
        assert_signed(q, made["secret"])
    finally:
        get_settings.cache_clear()
        gc.collect()


# --------------------------------------------------------------------------- public addresses only


def public_only(ctx: Context) -> Context:
    """`ctx` as a production server has it: webhooks to public addresses only."""
    settings = ctx.settings.model_copy(update={"webhook_private_network": False})
    return replace(ctx, settings=settings, cache={})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://api.localhost./hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.10:8080/erp",
        "http://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/",
        "http://0.0.0.0/",
    ],
)
def test_subscribing_a_private_or_loopback_address_is_refused(
    ctx: Context, brand: brands.Brand, url: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        webhooks.subscribe(public_only(ctx), brand.id, url, ["*"])
    assert refused.value.code == "webhook_url_not_public"
    assert "LOYALPOS_WEBHOOK_PRIVATE_NETWORK" in refused.value.message
    # where the operator allows the private network, it is taken
    assert webhooks.subscribe(ctx, brand.id, url, ["*"]).subscription.url == url


def test_the_api_refuses_a_private_webhook_url_with_the_error_shape(
    ctx: Context, brand: brands.Brand
) -> None:
    strict = public_only(ctx)
    hq = apikeys.create_key(strict, brand.id, apikeys.Scope.HQ, "hq").secret
    with TestClient(create_app(strict)) as api:
        refused = api.post(
            "/v1/webhooks",
            json={"url": "http://169.254.169.254/latest/meta-data", "event_types": ["*"]},
            headers={"Authorization": f"Bearer {hq}"},
        )
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert set(error) == {"code", "message", "detail"}
        assert error["code"] == "webhook_url_not_public" and error["detail"]["field"] == "url"
        taken = api.post(
            "/v1/webhooks",
            json={"url": "https://hooks.example.com/x", "event_types": ["*"]},
            headers={"Authorization": f"Bearer {hq}"},
        )
        assert taken.status_code == 201, taken.text


def due_by_name(
    ctx: Context, clock: Clock, brand: brands.Brand, receiver: Receiver
) -> tuple[Context, webhooks.NewSubscription]:
    """A public-only context, and an `order.paid` delivery due to a host *name* on
    the receiver's port: a name passes at subscribe (not resolved then); each
    delivery resolves it."""
    strict = public_only(ctx)
    url = f"http://hooks.example.test:{receiver.port}/hook"
    sub = webhooks.subscribe(strict, brand.id, url, ["order.paid"])
    emit_events(ctx, brand.id, [EVENTS[1]])
    dispatch_outbox(ctx, clock.now)
    return strict, sub


def test_a_name_that_resolves_to_a_private_address_is_not_delivered_to(
    ctx: Context,
    clock: Clock,
    brand: brands.Brand,
    receiver: Receiver,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strict, _ = due_by_name(ctx, clock, brand, receiver)
    monkeypatch.setattr(worker, "resolve", lambda host, port: ["127.0.0.1"])
    result = deliver_due(strict, clock.now, client)
    assert (result.delivered, result.retrying) == (0, 1)
    (delivery,) = deliveries(ctx, brand.id)
    assert delivery.last_error is not None and "not a public address" in delivery.last_error
    assert receiver.requests == []


def test_a_delivery_goes_to_the_address_that_was_checked_with_the_name_as_host(
    ctx: Context,
    clock: Clock,
    brand: brands.Brand,
    receiver: Receiver,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The receiver on loopback stands for a public server: the worker connects to
    # the address it resolved and checked (not to a second lookup of the name)
    # and sends the name in Host.
    strict, sub = due_by_name(ctx, clock, brand, receiver)
    looked_up: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        looked_up.append((host, port))
        return ["10.9.9.9", "127.0.0.1"]

    monkeypatch.setattr(worker, "resolve", resolve)
    monkeypatch.setattr(worker, "public_address", lambda address: address == "127.0.0.1")
    assert deliver_due(strict, clock.now, client).delivered == 1
    (request,) = receiver.answered()
    assert looked_up == [("hooks.example.test", receiver.port)]
    assert request.path == "/hook"
    assert request.headers["Host"] == f"hooks.example.test:{receiver.port}"
    assert_signed(request, sub.secret)
