"""Nothing is lost: a paid order is booked once even if the server dies mid-request.

`test_sigkill_mid_load_then_retry_books_every_order_once` (PostgreSQL): a real
uvicorn server (2 workers, its own process group) on the session's scratch
database, threads playing tills send confirms (some after a quote, with coupons and
points) and refunds; the whole server is SIGKILLed mid-load and restarted, and
every request whose outcome the till does not know is retried, as a POS would.
Then: every order the till got a 2xx for is booked exactly once and nothing else
is, no order is half-booked, coupons and the ledger are consistent.

`test_every_request_sent_three_times_at_once_books_like_once` (both databases,
in-process): each confirm and refund is sent by three threads at the same moment;
the books end up exactly as when each is sent once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, func, select

from loyalpos.config import Settings
from loyalpos.db import ledger_repo
from loyalpos.db.engine import make_engine
from loyalpos.db.tables import (
    coupon_events,
    coupons,
    members,
    order_benefits,
    order_lines,
    order_tenders,
    orders,
    outbox,
    point_entries,
    point_lots,
    refunds,
)
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.domain.pricing.model import Options, PointsRequest
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.loyalty import members as member_service
from loyalpos.service.loyalty import points as points_service
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import checkout
from loyalpos.service.till import refunds as refund_service
from tests.conftest import TEST_SECRET, Clock
from tests.e2e.test_server import free_port
from tests.integration.checkout_helpers import RULES, cart, confirm_request

pytestmark = pytest.mark.postgres

MENU = [("latte", 3000), ("mocha", 3600), ("bagel", 1500), ("salad", 4200), ("cake", 2800)]
THREADS = 8
MEMBERS_PER_THREAD = 2
OPENING_POINTS = 3000
CYCLES = 3  # kill and restart this many times


# --- the server ------------------------------------------------------------------


@contextmanager
def uvicorn_server(url: str, log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """uvicorn with 2 workers in its own process group; yields (process, base URL)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALPOS_")}
    env.update(
        LOYALPOS_DATABASE_URL=url,
        LOYALPOS_SECRET_KEY=TEST_SECRET,
        LOYALPOS_ENV="test",
        PYTHONUNBUFFERED="1",
    )
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "loyalpos.api.main:app_from_env",
                "--port",
                str(port),
                "--workers",
                "2",
                "--no-access-log",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, log_path)
        yield proc, base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 40
    healthy = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                healthy += 1
                if healthy >= 4:  # both workers answer, most likely
                    return
                continue
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("server did not start:\n" + log_path.read_text(errors="replace"))


def sigkill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the master and every worker at once, as a power cut or the OOM killer would."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


# --- the tills ----------------------------------------------------------------------


@dataclass
class Sent:
    """One state-changing request and what the till knows of its outcome."""

    kind: str  # "confirm" or "refund"
    path: str
    body: dict[str, Any]
    member: int | None = None
    status: int | None = None  # None: unknown (no answer)
    answer: dict[str, Any] = field(default_factory=dict)
    lost: str = ""  # how the answer was lost: "in flight" or "refused"
    retry_status: int | None = None


@dataclass
class Shop:
    brand_id: int
    store_id: int
    key: str
    members: list[int]


def seed(url: str) -> Shop:
    ctx = Context(make_engine(url), Settings(env="test", database_url=url, secret_key=TEST_SECRET))
    try:
        brand = brands.create_brand(
            ctx,
            f"crash-{uuid.uuid4().hex[:8]}",
            "Crash",
            policy=ExpiryPolicy(ExpiryMode.FIXED, months=12),
        )
        store = brands.create_store(ctx, brand.id, "A", "Store A").id
        key = apikeys.create_key(ctx, brand.id, Scope.CASHIER, "till", store_id=store).secret
        draft = rulesets.save_draft(ctx, brand.id, RULES)
        rulesets.publish(ctx, brand.id, draft.version, effective_from=ctx.now() - timedelta(days=1))
        ids = []
        for n in range(THREADS * MEMBERS_PER_THREAD):
            m = member_service.register(ctx, brand.id, phone=f"1390000{n:04d}", name=f"会员{n}")
            points_service.earn(
                ctx, brand.id, m.id, OPENING_POINTS, points_service.Source("import", "opening")
            )
            for template in ("mj100-20", "cash5", "cash5"):
                wallet.issue_to_member(ctx, brand.id, m.id, template)
            ids.append(m.id)
    finally:
        ctx.engine.dispose()
    return Shop(brand.id, store, key, ids)


class Till(threading.Thread):
    """One POS: quote (sometimes), confirm, refund (sometimes), one request at a time."""

    def __init__(
        self, n: int, shop: Shop, base: str, stop: threading.Event, cycle: int, members: list[int]
    ) -> None:
        super().__init__(daemon=True)
        self.n = n
        self.shop = shop
        self.base = base
        self.stop = stop
        self.cycle = cycle
        self.sent: list[Sent] = []
        self.failures: list[str] = []
        self.rnd = random.Random(n * 100 + cycle)
        # A member whose order's outcome is unknown is not served until it is retried:
        # a later order could take the coupons or points it was priced with.
        self.members = members

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.shop.key}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=10) as client:
            seq = 0
            while not self.stop.is_set():
                seq += 1
                try:
                    self.one(client, f"C{self.cycle}-T{self.n}-{seq}")
                except Exception as exc:  # reported by the test, not lost in a thread
                    self.failures.append(repr(exc))
                    return

    def send(self, client: httpx.Client, sent: Sent) -> bool:
        self.sent.append(sent)
        try:
            r = client.post(sent.path, json=sent.body)
        except httpx.ConnectError:
            sent.lost = "refused"
            time.sleep(0.05)
            return False
        except httpx.TransportError:
            sent.lost = "in flight"
            return False
        sent.status = r.status_code
        sent.answer = r.json() if r.content else {}
        if not 200 <= r.status_code < 300:
            self.failures.append(
                f"{sent.kind} {sent.body.get('order_no')}: {r.status_code} {r.text}"
            )
        return 200 <= r.status_code < 300

    def one(self, client: httpx.Client, order_no: str) -> None:
        rnd = self.rnd
        lines: list[dict[str, Any]] = [
            {"sku": sku, "category": "food", "unit_price_fen": price, "qty": rnd.randint(1, 3)}
            for sku, price in rnd.sample(MENU, rnd.randint(2, 4))
        ]
        body: dict[str, Any] = {"store_id": self.shop.store_id, "lines": lines}
        member = rnd.choice(self.members) if self.members and rnd.random() < 0.75 else None
        payable = sum(x["unit_price_fen"] * x["qty"] for x in lines)
        extra: dict[str, Any] = {}
        if member is not None:
            body["member"] = {"member_id": member}
            if rnd.random() < 0.6:
                try:
                    q = client.post("/v1/quotes", json={**body, "options": {"points": "max"}})
                except httpx.TransportError:
                    time.sleep(0.05)
                    return
                assert q.status_code == 200, q.text
                quote = q.json()
                payable = quote["payable_fen"]
                body["options"] = {"points": "max"}
                extra = {
                    "coupon_ids": [int(a["coupon_id"]) for a in quote["applied"] if a["coupon_id"]],
                    "points": quote["points_redeemed"],
                }
        confirm = Sent(
            "confirm",
            "/v1/orders",
            {
                **body,
                **extra,
                "order_no": order_no,
                "tenders": [{"method": "wechat", "amount_fen": payable, "reference": order_no}],
                "cashier": "c01",
                "terminal": f"T{self.n}",
            },
            member,
        )
        if not self.send(client, confirm):
            if member is not None and confirm.status is None:
                self.members.remove(member)
            return
        if rnd.random() < 0.35:
            partial = rnd.random() < 0.5
            refund_lines = [{"line_no": 1, "qty": 1}] if partial else []
            self.send(
                client,
                Sent(
                    "refund",
                    f"/v1/stores/{self.shop.store_id}/orders/{order_no}/refunds",
                    {"refund_no": f"R-{order_no}", "cashier": "c01", "lines": refund_lines},
                ),
            )


# --- the checks -----------------------------------------------------------------------


def check_books(conn: Connection, shop: Shop, sent: list[Sent]) -> None:
    """Every 2xx order booked once and whole; coupons and points consistent."""
    confirmed = {s.body["order_no"]: s for s in sent if s.kind == "confirm"}
    booked = conn.execute(
        select(orders).where(orders.c.brand_id == shop.brand_id).order_by(orders.c.id)
    ).all()
    numbers = Counter(o.order_no for o in booked)
    assert max(numbers.values()) == 1
    assert set(numbers) == set(confirmed), "booked orders differ from the 2xx answers"
    for o in booked:
        s = confirmed[o.order_no]
        answer = s.answer
        assert answer["order_id"] == o.id and answer["payable_fen"] == o.payable
        n_lines = conn.execute(
            select(func.count()).select_from(order_lines).where(order_lines.c.order_id == o.id)
        ).scalar_one()
        assert n_lines == len(s.body["lines"]), o.order_no
        paid = conn.execute(
            select(func.sum(order_tenders.c.amount)).where(order_tenders.c.order_id == o.id)
        ).scalar_one()
        assert paid == o.payable, o.order_no
        events = conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                # This brand's only: the session database keeps what earlier tests
                # left, e.g. webhook tests' hand-made "order:1" events.
                outbox.c.brand_id == shop.brand_id,
                outbox.c.event_type == "order.paid",
                outbox.c.subject == f"order:{o.id}",
            )
        ).scalar_one()
        assert events == 1, o.order_no
        if o.member_id is None:
            assert o.points_earned == o.points_redeemed == 0
            continue
        for entry_id, expected in (
            (o.earn_entry_id, o.points_earned),
            (o.spend_entry_id, -o.points_redeemed),
        ):
            if expected == 0:
                assert entry_id is None
                continue
            entry = conn.execute(select(point_entries).where(point_entries.c.id == entry_id)).one()
            assert (entry.points, entry.member_id, entry.source_ref) == (
                expected,
                o.member_id,
                o.order_no,
            )
        assert o.points_earned > 0  # every member order here earns
    # Refunds: the ones answered 2xx, each once.
    refunded = {s.body["refund_no"]: s for s in sent if s.kind == "refund"}
    rows = conn.execute(
        select(refunds.c.refund_no, refunds.c.id).where(refunds.c.brand_id == shop.brand_id)
    ).all()
    assert Counter(r.refund_no for r in rows) == Counter(set(refunded))
    for r in rows:
        assert refunded[r.refund_no].answer["refund_id"] == r.id
    # Coupons: used exactly by the orders that list them, never twice.
    for c in conn.execute(select(coupons).where(coupons.c.brand_id == shop.brand_id)):
        kinds = Counter(
            e.event
            for e in conn.execute(
                select(coupon_events.c.event).where(coupon_events.c.coupon_id == c.id)
            )
        )
        in_use = kinds["used"] - kinds["returned"]
        assert in_use == (1 if c.state == "used" else 0), (c.id, c.state, kinds)
        assert (c.order_id is not None) == (c.state == "used")
        if c.state == "used":
            listed = conn.execute(
                select(func.count())
                .select_from(order_benefits)
                .where(order_benefits.c.order_id == c.order_id, order_benefits.c.coupon_id == c.id)
            ).scalar_one()
            assert listed == 1, c.id
    # The ledger: balance = sum(entries) = sum(lots.remaining), for every member.
    for member_id in shop.members:
        cached, entries, lots = ledger_repo.sums(conn, member_id)
        assert cached == entries == lots, (member_id, cached, entries, lots)
        count = conn.execute(
            select(func.count()).select_from(orders).where(orders.c.member_id == member_id)
        ).scalar_one()
        assert (
            count
            == conn.execute(
                select(members.c.orders_count).where(members.c.id == member_id)
            ).scalar_one()
        )


def retry_unknown(shop: Shop, base: str, sent: list[Sent], free: list[list[int]]) -> None:
    """What the POS does after an outage: resend each request it got no answer for,
    confirms before refunds; each must replay (200) or book (201)."""
    headers = {"Authorization": f"Bearer {shop.key}"}
    pending = [s for s in sent if s.status is None]
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for s in sorted(pending, key=lambda x: x.kind != "confirm"):
            r = client.post(s.path, json=s.body)
            assert r.status_code in (200, 201), (s.kind, s.body, r.text)
            s.retry_status = s.status = r.status_code
            s.answer = r.json()
            assert s.answer["replayed"] is (r.status_code == 200)
            if s.member is not None:
                free[shop.members.index(s.member) // MEMBERS_PER_THREAD].append(s.member)


# SIGKILLs a loaded server and waits for each restart (40 s at most): run alone,
# not beside other pytest-xdist workers' load.
@pytest.mark.serial
def test_sigkill_mid_load_then_retry_books_every_order_once(pg_url: str, tmp_path: Path) -> None:
    shop = seed(pg_url)
    log_path = tmp_path / "server.log"
    free = [
        shop.members[n * MEMBERS_PER_THREAD : (n + 1) * MEMBERS_PER_THREAD] for n in range(THREADS)
    ]
    sent: list[Sent] = []
    unknown: list[Sent] = []
    for cycle in range(CYCLES + 1):
        with uvicorn_server(pg_url, log_path) as (proc, base):
            retry_unknown(shop, base, sent, free)
            if cycle == CYCLES:
                break
            stop = threading.Event()
            tills = [Till(n, shop, base, stop, cycle, free[n]) for n in range(THREADS)]
            for t in tills:
                t.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                answered = sum(1 for t in tills for s in t.sent if s.status)
                if answered >= 40:
                    break
                time.sleep(0.02)
            sigkill_group(proc)
            time.sleep(0.3)  # the tills keep trying against a dead server
            stop.set()
            for t in tills:
                t.join(timeout=30)
            failures = [f for t in tills for f in t.failures]
            assert not failures, failures
            mine = [s for t in tills for s in t.sent]
            sent += mine
            unknown += [s for s in mine if s.status is None]
            assert sum(1 for s in mine if s.status) >= 40
    assert unknown
    outcomes = Counter((s.kind, s.lost, s.retry_status) for s in unknown)
    print(f"{len(sent)} requests, {len(unknown)} without an answer; retried: {dict(outcomes)}")

    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            check_books(conn, shop, sent)
    finally:
        engine.dispose()


# --- three at once ----------------------------------------------------------------------


def _all_at_once(work: Callable[[], Any], n: int = 3) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _books(ctx: Context, brand_id: int, member_ids: list[int]) -> dict[str, Any]:
    """The brand's books with ids replaced by positions, so two brands compare."""
    with ctx.transaction(read_only=True) as conn:
        view: dict[str, Any] = {
            "orders": [
                (
                    o.order_no,
                    o.member_id and member_ids.index(o.member_id),
                    o.payable,
                    o.discount,
                    o.points_redeemed,
                    o.points_earned,
                    o.refunded,
                    o.status,
                )
                for o in conn.execute(
                    select(orders).where(orders.c.brand_id == brand_id).order_by(orders.c.order_no)
                )
            ],
            "refunds": [
                (r.refund_no, r.amount, r.deduction, r.points_reversed, r.points_returned)
                for r in conn.execute(
                    select(refunds)
                    .where(refunds.c.brand_id == brand_id)
                    .order_by(refunds.c.refund_no)
                )
            ],
        }
        for n, member_id in enumerate(member_ids):
            cached, entries, lots = ledger_repo.sums(conn, member_id)
            assert cached == entries == lots
            view[f"member {n}"] = {
                "balance": cached,
                "entries": sorted(
                    (e.kind, e.points, e.source_ref or "")
                    for e in conn.execute(
                        select(point_entries).where(point_entries.c.member_id == member_id)
                    )
                ),
                "lots": sorted(
                    r.remaining
                    for r in conn.execute(
                        select(point_lots.c.remaining).where(point_lots.c.member_id == member_id)
                    )
                ),
                "coupons": sorted(
                    (c.template, c.state)
                    for c in conn.execute(select(coupons).where(coupons.c.member_id == member_id))
                ),
                "row": tuple(
                    conn.execute(
                        select(members.c.orders_count, members.c.spent_fen, members.c.tier).where(
                            members.c.id == member_id
                        )
                    ).one()
                ),
            }
    return view


def _play(ctx: Context, code: str, copies: int) -> dict[str, Any]:
    """The same day of a shop, each request sent `copies` times at once."""
    brand = brands.create_brand(ctx, code, code, policy=ExpiryPolicy(ExpiryMode.FIXED, months=12))
    store = brands.create_store(ctx, brand.id, "A", "Store A").id
    draft = rulesets.save_draft(ctx, brand.id, RULES)
    rulesets.publish(ctx, brand.id, draft.version, effective_from=ctx.now() - timedelta(days=1))
    ids = []
    for n in range(3):
        m = member_service.register(ctx, brand.id, phone=f"1380000{n:04d}", name=f"会员{n}")
        points_service.earn(ctx, brand.id, m.id, 2000, points_service.Source("import", "open"))
        for template in ("mj100-20", "cash5"):
            wallet.issue_to_member(ctx, brand.id, m.id, template)
        ids.append(m.id)

    def send(work: Callable[[], Any]) -> Any:
        if copies == 1:
            return work()
        results = _all_at_once(work, copies)
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, errors
        assert sorted(r.replayed for r in results) == [False] + [True] * (copies - 1)
        assert all(r.receipt == results[0].receipt for r in results)
        return results[0]

    rnd = random.Random(5)
    for n in range(12):
        member = ids[n % 3] if n % 4 != 3 else None
        lines = [(sku, price, rnd.randint(1, 3)) for sku, price in rnd.sample(MENU, 3)]
        c = cart(store, member, *lines, options=Options(points=PointsRequest.MAX))
        q = checkout.quote(ctx, brand.id, c).priced.quote
        used = tuple(int(a.coupon_id) for a in q.applied if a.coupon_id is not None)
        order_no = f"P-{n}"
        req = confirm_request(
            order_no,
            c,
            q.payable,
            coupon_ids=used if member else (),
            points_used=q.points_redeemed if member else 0,
        )
        if member is None:
            req = confirm_request(order_no, cart(store, None, *lines), q.payable)
        send(partial(checkout.confirm, ctx, brand.id, req))
        if n % 3 == 1:
            refund = refund_service.RefundRequest(
                store, order_no, f"R-{n}", "c01", (refund_service.RefundLine(1, 1),)
            )
            send(partial(refund_service.refund, ctx, brand.id, refund))
        if n % 5 == 2:
            full = refund_service.RefundRequest(store, order_no, f"RF-{n}", "c01", ())
            send(partial(refund_service.refund, ctx, brand.id, full))
    return _books(ctx, brand.id, ids)


def test_every_request_sent_three_times_at_once_books_like_once(ctx: Context, clock: Clock) -> None:
    once = _play(ctx, "once", 1)
    thrice = _play(ctx, "thrice", 3)
    assert thrice == once
    assert len(once["orders"]) == 12 and len(once["refunds"]) == 6
