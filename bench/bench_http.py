"""The POS API over HTTP: a real uvicorn server with several worker processes, and a
load generator on the same machine, for a fixed time per scenario.

Fixture (built in-process through the service layer, not timed): one brand with a
rule set like the checkout tests' shop plus more (7 earning rules, 9 coupon
templates, a 第二杯半价 promotion, a forbidden pair, points offset up to 50%), 4
stores with one cashier key each, `--members` members (2,000) of whom 2/3 hold
2,000-20,000 points and half hold 3 coupons. Carts have 3-8 lines of a 24-item
catalogue (coffee, tea, food, beans, merchandise), 1-3 units each.

Scenarios (each `--seconds` long after `--warmup` seconds whose requests are not
counted in the figures):

- identify:       POST /v1/identify, half by card number, half by dynamic member code.
- quote:          POST /v1/quotes for a member (wallet, `points: max`), no hold.
- confirm:        POST /v1/orders straight away with no benefits (a pure-confirm
                  figure): half anonymous, half members; the price is the cart's
                  anonymous price, computed once before the run.
- quote+confirm:  what a till does: POST /v1/quotes with `reserve` (coupons and points
                  held), then POST /v1/orders paying exactly the quoted price with the
                  quoted coupons, points and token. Each client task serves its own
                  members (one customer stands at one till). Figures per request kind.

The server is `loyalpos serve --workers N` (on Linux each worker has its own
SO_REUSEPORT socket, see loyalpos.serving). The client holds `--connections` (256)
keep-alive HTTP/1.1 connections, as many tills do; each client task sends its next
request on the connection idle longest when the previous answer arrives (closed
loop), so `--concurrency` is the number of requests in flight. The client is a minimal asyncio (uvloop) HTTP/1.1 client rather
than httpx, to keep its share of the 2 CPUs small (0.1-0.3 ms of CPU per request);
its own CPU time is printed. CPU milliseconds per request of the server's workers, of
the scratch database's PostgreSQL backends (a lower bound: backends that close during
a run are missed) and of the client (from /proc) say what saturates; all three are
measured over the counted window only (before 2026-11-23 16:00 the server and
PostgreSQL figures also took in the warm-up, about 25% too high with `--warmup 2
--seconds 8`).

At the end, per database: the ledger invariant (benchlib.check_ledger) and the number
of booked orders against the number of 201 answers (every 2xx confirm booked once).
With `--profile N`, the service calls are also timed in-process (sequential, no HTTP),
with the SQL statements per call and a cProfile of the confirms.

Usage:
    .venv/bin/python bench/bench_http.py [--db postgresql|sqlite|both] [--workers 2,4]
        [--concurrency 16] [--seconds 15] [--warmup 3] [--members 2000]
        [--history 20000] [--connections 256] [--till-threads 2]
        [--scenarios identify,quote,confirm,quote+confirm] [--profile 300]

PostgreSQL runs in a scratch database made through LOYALPOS_BENCH_PG_URL (see
benchlib; default TCP to 127.0.0.1:5432; on one machine the Unix socket is
`postgresql+psycopg://postgres@/postgres?host=/var/run/postgresql`); SQLite in a
temporary file. Before the server starts, `--history` past orders are written and
the planner's statistics gathered (see seed_history).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import (
    StatementTimer,
    Timings,
    check_ledger,
    dialects,
    ms,
    print_machine,
    print_table,
    scratch_database,
)
from sqlalchemy import func, insert, select, text

from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.tables import order_lines, order_tenders, orders
from loyalpos.domain import member_code
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.domain.ledger import EntryKind
from loyalpos.domain.pricing.model import CartLine, Options, PointsRequest
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.brands import load_brand
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons
from loyalpos.service.loyalty.members import insert_member
from loyalpos.service.loyalty.phones import normalise_phone
from loyalpos.service.loyalty.points import Source, credit
from loyalpos.service.rulebook import rulesets
from loyalpos.service.rulebook.rulesets import rules_at
from loyalpos.service.till import checkout
from loyalpos.service.till.checkout import CartRequest, ConfirmRequest, MemberRef, Tender

SECRET = "bench-http-secret-" + "x" * 32
SCENARIOS = ("identify", "quote", "confirm", "quote+confirm")
STARTUP_TIMEOUT = 60.0

RULES = """
points:
  rounding: floor
  earn:
    - {id: base, kind: base, points_per_yuan: 1}
    - {id: tiers, kind: tier_multiplier, multipliers: {normal: 1, silver: 1.2, gold: 1.5}}
    - {id: beans, kind: category_rate, points_per_yuan: 2, scope: {categories: [beans]}}
    - {id: no-merch, kind: exclude, scope: {categories: [merch]}}
    - {id: member-day, kind: time_multiplier, multiplier: 2, scope: {weekdays: [3]}}
    - id: big-basket
      kind: threshold_bonus
      steps: [{spend_fen: 30000, points: 300}, {spend_fen: 60000, points: 800}]
    - {id: welcome, kind: first_order_bonus, points: 100}
  offset: {points_per_yuan: 100, cap_percent: 50, step: 100}
member_prices:
  tiers: {gold: 95}
coupons:
  - {id: mj100-20, name: 满100减20, kind: threshold, threshold_fen: 10000, amount_fen: 2000,
     with_points: true}
  - {id: mj200-40, name: 每满200减40, kind: threshold, threshold_fen: 20000, amount_fen: 4000,
     step_fen: 20000, cap_fen: 12000}
  - {id: cash5, name: 5元代金券, kind: cash, amount_fen: 500, with_points: true}
  - {id: cash10, name: 10元代金券, kind: cash, amount_fen: 1000, with_points: true}
  - {id: pct88, name: 88折券, kind: percent, percent: 88, cap_fen: 5000}
  - {id: pct85-beans, name: 咖啡豆85折, kind: percent, percent: 85, scope: {categories: [beans]}}
  - {id: free-latte, name: 拿铁兑换券, kind: item, sku: latte, price_fen: 0}
  - {id: tea-set, name: 茶点套餐券, kind: bundle, bundle: [oolong, scone], price_fen: 3000}
  - {id: food-mj50-10, name: 轻食满50减10, kind: threshold, threshold_fen: 5000,
     amount_fen: 1000, scope: {categories: [food]}}
promotions:
  - {id: second-half, name: 第二杯半价, kind: nth_discount, nth: 2, percent: 50,
     scope: {categories: [coffee]}}
stacking:
  max_coupons: 2
  forbidden_pairs: [[threshold, percent]]
tiers:
  - {id: normal, name: 普通会员, min_spent_fen: 0}
  - {id: silver, name: 银卡, min_spent_fen: 100000}
  - {id: gold, name: 金卡, min_spent_fen: 5000000}
"""
TEMPLATES = (
    "mj100-20",
    "mj200-40",
    "cash5",
    "cash10",
    "pct88",
    "pct85-beans",
    "free-latte",
    "tea-set",
    "food-mj50-10",
)
CATALOGUE = [
    ("latte", "coffee", 3200),
    ("americano", "coffee", 2600),
    ("flat-white", "coffee", 3400),
    ("mocha", "coffee", 3600),
    ("cappuccino", "coffee", 3200),
    ("cold-brew", "coffee", 3000),
    ("oolong", "tea", 2400),
    ("jasmine", "tea", 2200),
    ("matcha", "tea", 3000),
    ("scone", "food", 1800),
    ("croissant", "food", 1600),
    ("bagel", "food", 1500),
    ("sandwich", "food", 3800),
    ("salad", "food", 4200),
    ("cake", "food", 3500),
    ("cookie", "food", 900),
    ("beans-yirga", "beans", 9800),
    ("beans-house", "beans", 6800),
    ("beans-decaf", "beans", 7200),
    ("drip-bags", "beans", 5900),
    ("mug", "merch", 8800),
    ("tumbler", "merch", 12800),
    ("tote", "merch", 4900),
    ("filter", "merch", 2900),
]


# --- fixture -------------------------------------------------------------------


@dataclass
class Fixture:
    url: str
    brand_id: int
    stores: list[int]
    keys: list[str]
    members: list[int]
    cards: dict[int, str]
    carts: list[list[dict[str, Any]]]
    prices: list[int]  # anonymous price of each cart


def settings(url: str) -> Settings:
    return Settings(env="test", database_url=url, secret_key=SECRET, member_code_ttl_seconds=600)


def random_cart(rnd: random.Random) -> list[dict[str, Any]]:
    items = rnd.sample(CATALOGUE, rnd.randint(3, 8))
    return [
        {"sku": s, "category": c, "unit_price_fen": p, "qty": rnd.choice((1, 1, 1, 2, 2, 3))}
        for s, c, p in items
    ]


def cart_request(store: int, lines: list[dict[str, Any]], member: int | None) -> CartRequest:
    return CartRequest(
        store,
        tuple(
            CartLine(x["sku"], x["category"], x["unit_price_fen"], x["qty"], x["sku"])
            for x in lines
        ),
        MemberRef(member_id=member) if member is not None else None,
        Options(points=PointsRequest.NONE),
    )


def seed(url: str, n_members: int, n_stores: int, n_history: int) -> Fixture:
    ctx = Context(make_engine(url), settings(url))
    rnd = random.Random(7)
    started = time.perf_counter()
    try:
        brand = brands.create_brand(
            ctx, "bench", "Bench Coffee", policy=ExpiryPolicy(ExpiryMode.FIXED, months=12)
        )
        stores = [
            brands.create_store(ctx, brand.id, f"S{n:02d}", f"Store {n}").id
            for n in range(1, n_stores + 1)
        ]
        keys = [
            apikeys.create_key(ctx, brand.id, Scope.CASHIER, f"till {s}", store_id=s).secret
            for s in stores
        ]
        draft = rulesets.save_draft(ctx, brand.id, RULES)
        rulesets.publish(ctx, brand.id, draft.version, effective_from=ctx.now() - timedelta(days=1))
        member_ids: list[int] = []
        cards: dict[int, str] = {}
        for start in range(0, n_members, 250):
            with ctx.transaction() as conn:
                now = ctx.now()
                b = load_brand(conn, brand.id)
                doc = rules_at(conn, ctx, brand.id, now).document
                for i in range(start, min(n_members, start + 250)):
                    member = insert_member(
                        conn,
                        brand.id,
                        phone=normalise_phone(f"139{i:08d}", "CN"),
                        name=f"会员{i}",
                        now=now,
                        store_id=stores[i % n_stores],
                    )
                    member_ids.append(member.id)
                    cards[member.id] = member.card_no
                    if i % 3 != 2:
                        credit(
                            conn,
                            b,
                            member.id,
                            rnd.randint(2_000, 20_000),
                            EntryKind.EARN,
                            Source("import", f"opening-{i}"),
                            now,
                            pending=False,
                        )
                    if i % 2 == 0:
                        for t in rnd.sample(TEMPLATES, 3):
                            coupons.issue(
                                conn,
                                brand.id,
                                member.id,
                                coupons.template_of(doc, t),
                                now,
                                b.zone,
                                source_type="import",
                            )
        carts = [random_cart(rnd) for _ in range(400)]
        prices = [
            checkout.quote(ctx, brand.id, cart_request(stores[0], c, None)).priced.quote.payable
            for c in carts
        ]
        seed_history(ctx, brand.id, stores, carts, prices, n_history)
    finally:
        ctx.engine.dispose()
    print(
        f"fixture: {n_members} members, {len(stores)} stores, {len(carts)} carts, "
        f"{n_history} past orders, "
        f"seeded in {time.perf_counter() - started:.1f} s"
    )
    return Fixture(url, brand.id, stores, keys, member_ids, cards, carts, prices)


def seed_history(
    ctx: Context,
    brand_id: int,
    stores: list[int],
    carts: list[list[dict[str, Any]]],
    prices: list[int],
    n: int,
) -> None:
    """Past anonymous orders (lines and a tender each, written straight to the
    tables), then planner statistics: a till's database is not empty, and its
    statistics are kept by autovacuum. A scratch database has neither; there the
    planner's guesses for an empty or never-analysed `orders` (the replay lookup,
    the foreign-key checks of every line) turn into scans of the whole table
    that grow with the run, and the figures would measure that instead."""
    at = ctx.now() - timedelta(days=30)
    with ctx.transaction() as conn:
        for start in range(0, n, 2000):
            batch = range(start, min(n, start + 2000))
            rows = [
                {
                    "brand_id": brand_id,
                    "store_id": stores[i % len(stores)],
                    "order_no": f"hist-{i}",
                    "member_id": None,
                    "status": "paid",
                    "request_hash": "0" * 64,
                    "rule_version": 1,
                    "subtotal": prices[i % len(carts)],
                    "discount": 0,
                    "points_redeemed": 0,
                    "points_offset": 0,
                    "rounding": 0,
                    "payable": prices[i % len(carts)],
                    "points_earned": 0,
                    "cashier": "c00",
                    "terminal": "T0",
                    "response": "{}",
                    "ordered_at": at + timedelta(seconds=i),
                    "booked_at": at + timedelta(seconds=i),
                }
                for i in batch
            ]
            ids = conn.execute(
                insert(orders).returning(orders.c.id, sort_by_parameter_order=True), rows
            ).scalars()
            lines: list[dict[str, Any]] = []
            tenders: list[dict[str, Any]] = []
            for i, order_id in zip(batch, ids, strict=True):
                cart = carts[i % len(carts)]
                for no, x in enumerate(cart, 1):
                    sub = x["unit_price_fen"] * x["qty"]
                    lines.append(
                        {
                            "order_id": order_id,
                            "line_no": no,
                            "sku": x["sku"],
                            "category": x["category"],
                            "name": x["sku"],
                            "unit_price": x["unit_price_fen"],
                            "qty": x["qty"],
                            "subtotal": sub,
                            "discount": 0,
                            "points_offset": 0,
                            "payable": sub,
                            "points_earned": 0,
                            "points_redeemed": 0,
                        }
                    )
                tenders.append(
                    {
                        "order_id": order_id,
                        "method": "cash",
                        "amount": prices[i % len(carts)],
                        "reference": None,
                    }
                )
            conn.execute(insert(order_lines), lines)
            conn.execute(insert(order_tenders), tenders)
    with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


# --- server --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            text_ = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            found += [int(x) for x in text_.split()]
    except OSError:
        pass
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def workers(self) -> list[int]:
        return children(self.proc.pid)


@contextmanager
def server(url: str, workers: int, log_dir: Path, till_threads: int) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALPOS_")}
    env.update(
        LOYALPOS_DATABASE_URL=url,
        LOYALPOS_SECRET_KEY=SECRET,
        LOYALPOS_ENV="test",
        LOYALPOS_MEMBER_CODE_TTL_SECONDS="600",
        LOYALPOS_TILL_THREADS=str(till_threads),
    )
    log = log_dir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "loyalpos"),
                "serve",
                "--no-demo",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(port, proc, log, workers)
            yield Server(proc, port, log)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path, workers: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    ok = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited:\n" + log.read_text(errors="replace"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    ok += 1
                    # Every worker has to be up, not just the first.
                    if ok >= 3 * workers and len(children(proc.pid)) >= workers:
                        return
                    continue
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not ready:\n" + log.read_text(errors="replace"))


# --- client --------------------------------------------------------------------


class Http:
    """One keep-alive HTTP/1.1 connection; enough of the protocol for uvicorn's answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: Any, key: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        payload = json.dumps(body).encode()
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            data = await self.reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Kind:
    """Figures of one request kind in one run."""

    timings: Timings = field(default_factory=Timings)
    statuses: Counter[int] = field(default_factory=Counter)
    conflicts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    created: int = 0  # 201 answers, counted in the warm-up too

    def record(self, status: int, body: bytes, started: int, counting: bool) -> None:
        if status == 201:
            self.created += 1
        if not counting:
            return
        self.timings.samples.append(time.perf_counter_ns() - started)
        self.statuses[status] += 1
        if status == 409:
            self.conflicts[json.loads(body)["error"]["code"]] += 1
        elif status >= 300 and len(self.errors) < 3:
            self.errors.append(f"{status} {body[:300]!r}")


@dataclass
class Run:
    kinds: dict[str, Kind]
    seconds: float
    client_cpu: float
    transport_errors: int = 0
    server_cpu: float = 0.0  # in the counted window (see drive)
    pg_cpu: float = 0.0
    # Each worker's share of the server CPU, busiest first: the kernel hands
    # keep-alive connections to whichever worker accepts first, and with few
    # connections one worker can end up with most of them.
    worker_shares: list[float] = field(default_factory=list)


class Load:
    def __init__(self, fx: Fixture, scenario: str, port: int, tag: str, connections: int) -> None:
        self.fx = fx
        # Keep-alive connections, more than requests in flight: a chain has many
        # tills, each with its own connection, and the server's workers each get
        # a share of them (not all of the load on whichever accepted first).
        self.idle: asyncio.Queue[Http] = asyncio.Queue()
        for _ in range(connections):
            self.idle.put_nowait(Http(port))
        self.scenario = scenario
        self.port = port
        self.tag = tag
        self.code_key = member_code.brand_key(SECRET.encode(), fx.brand_id)
        self.counting = False
        self.stop = False
        self.kinds: dict[str, Kind] = {}
        self.transport_errors = 0

    def kind(self, name: str) -> Kind:
        return self.kinds.setdefault(name, Kind())

    async def call(self, name: str, path: str, body: Any, key: str) -> Any:
        """One request on the connection idle longest (tills take turns)."""
        http = await self.idle.get()
        try:
            started = time.perf_counter_ns()
            counting = self.counting
            status, data = await http.post(path, body, key)
            self.kind(name).record(status, data, started, counting)
        finally:
            self.idle.put_nowait(http)
        return status, data

    async def task(self, n: int, concurrency: int) -> None:
        rnd = random.Random(hash((self.tag, n)))
        store_ix = n % len(self.fx.stores)
        store, key = self.fx.stores[store_ix], self.fx.keys[store_ix]
        mine = self.fx.members[n::concurrency]
        seq = 0
        while not self.stop:
            seq += 1
            try:
                await self.one(rnd, store, key, mine, f"{self.tag}-{n}-{seq}")
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                self.transport_errors += 1
                await asyncio.sleep(0.01)

    async def one(
        self,
        rnd: random.Random,
        store: int,
        key: str,
        mine: list[int],
        order_no: str,
    ) -> None:
        fx = self.fx
        member = rnd.choice(fx.members)
        if self.scenario == "identify":
            if rnd.random() < 0.5:
                ref: dict[str, Any] = {"card_no": fx.cards[member]}
            else:
                ref = {"code": member_code.issue(self.code_key, member, int(time.time()))}
            await self.call("identify", "/v1/identify", {"store_id": store, "member": ref}, key)
            return
        c = rnd.randrange(len(fx.carts))
        cart: dict[str, Any] = {"store_id": store, "lines": fx.carts[c]}
        if self.scenario == "quote":
            cart |= {"member": {"member_id": member}, "options": {"points": "max"}}
            await self.call("quote", "/v1/quotes", cart, key)
            return
        if self.scenario == "confirm":
            if rnd.random() < 0.5:
                cart["member"] = {"member_id": member}
            await self.call(
                "confirm", "/v1/orders", confirm_body(cart, order_no, fx.prices[c]), key
            )
            return
        # quote+confirm: this till's own customers
        cart |= {"member": {"member_id": rnd.choice(mine)}, "options": {"points": "max"}}
        status, data = await self.call("quote", "/v1/quotes", {**cart, "reserve": True}, key)
        if status != 200:
            return
        q = json.loads(data)
        body = confirm_body(cart, order_no, q["payable_fen"])
        body |= {
            "coupon_ids": [int(a["coupon_id"]) for a in q["applied"] if a.get("coupon_id")],
            "points": q["points_redeemed"],
            "quote_token": q["quote_token"],
        }
        await self.call("confirm", "/v1/orders", body, key)


def confirm_body(cart: dict[str, Any], order_no: str, paid: int) -> dict[str, Any]:
    return {
        **cart,
        "order_no": order_no,
        "tenders": [{"method": "wechat", "amount_fen": paid, "reference": f"wx-{order_no}"}],
        "cashier": "c01",
        "terminal": "T1",
    }


async def drive(
    load: Load,
    concurrency: int,
    warmup: float,
    seconds: float,
    meter: Callable[[], tuple[dict[int, float], dict[int, float]]] | None = None,
) -> Run:
    """Run the load; `meter` (CPU seconds of the server's workers and of the PostgreSQL
    backends, by pid) is read at both ends of the counted window, so that the CPU per
    request is the window's CPU over the window's requests (warm-up and drain left out)."""
    tasks = [asyncio.create_task(load.task(n, concurrency)) for n in range(concurrency)]
    await asyncio.sleep(warmup)
    before = meter() if meter else ({}, {})
    load.counting = True
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    load.counting = False
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    after = meter() if meter else ({}, {})
    load.stop = True
    await asyncio.gather(*tasks)
    while not load.idle.empty():
        load.idle.get_nowait().close()
    run = Run(load.kinds, elapsed, cpu, load.transport_errors)
    run.server_cpu = cpu_delta(before[0], after[0])
    used = {pid: v - before[0].get(pid, 0.0) for pid, v in after[0].items()}
    if run.server_cpu > 0:
        run.worker_shares = sorted((v / run.server_cpu for v in used.values()), reverse=True)
    run.pg_cpu = cpu_delta(before[1], after[1])
    return run


def run_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def pg_backends(url: str) -> list[int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            )
            return [int(r.pid) for r in rows]
    finally:
        engine.dispose()


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


# --- reporting -----------------------------------------------------------------


@dataclass
class Row:
    db: str
    workers: int
    concurrency: int
    scenario: str
    run: Run
    server_cpu: float
    pg_cpu: float | None


def report(rows: list[Row]) -> None:
    table: list[list[str]] = []
    for r in rows:
        for name, k in r.run.kinds.items():
            n = len(k.timings.samples)
            if n == 0:
                continue
            ok = sum(v for s, v in k.statuses.items() if 200 <= s < 300)
            other = {s: v for s, v in k.statuses.items() if s >= 300 and s != 409}
            total = sum(len(x.timings.samples) for x in r.run.kinds.values())
            per_req = 1000 / total if total else 0.0
            table.append(
                [
                    r.db,
                    str(r.workers),
                    str(r.concurrency),
                    r.scenario,
                    name,
                    f"{n / r.run.seconds:.1f}",
                    f"{ok / r.run.seconds:.1f}",
                    ms(k.timings.percentile_ms(50)),
                    ms(k.timings.percentile_ms(99)),
                    ms(k.timings.percentile_ms(100)),
                    ", ".join(f"{s}:{v}" for s, v in sorted(k.statuses.items())),
                    ", ".join(f"{c}:{v}" for c, v in k.conflicts.items()) or "0",
                    ", ".join(f"{s}:{v}" for s, v in sorted(other.items()))
                    + (f" transport:{r.run.transport_errors}" if r.run.transport_errors else "")
                    or "0",
                    f"{r.server_cpu * per_req:.2f}",
                    "-" if r.pg_cpu is None else f"{r.pg_cpu * per_req:.2f}",
                    f"{r.run.client_cpu * per_req:.2f}",
                    "/".join(f"{100 * x:.0f}" for x in r.run.worker_shares) or "-",
                ]
            )
    print_table(
        [
            "db",
            "workers",
            "conc",
            "scenario",
            "request",
            "req/s",
            "2xx/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "statuses",
            "409s",
            "errors",
            "srv cpu ms/req",
            "pg cpu ms/req",
            "client cpu ms/req",
            "worker cpu %",
        ],
        table,
    )
    for r in rows:
        for name, k in r.run.kinds.items():
            for e in k.errors:
                print(f"  {r.db} w{r.workers} c{r.concurrency} {r.scenario} {name}: {e}")


# --- in-process profile --------------------------------------------------------


def profile(fx: Fixture, n: int, db: str) -> None:
    """The same service calls without HTTP, sequential, with SQL statement counts."""
    ctx = Context(make_engine(fx.url), settings(fx.url))
    timer = StatementTimer(ctx.engine)
    rnd = random.Random(11)
    tag = secrets.token_hex(3)
    store = fx.stores[0]

    def do_quote() -> None:
        c = rnd.randrange(len(fx.carts))
        req = cart_request(store, fx.carts[c], rnd.choice(fx.members))
        req = CartRequest(req.store_id, req.lines, req.member, Options(points=PointsRequest.MAX))
        checkout.quote(ctx, fx.brand_id, req)

    counter = iter(range(10**9))

    def do_confirm() -> None:
        c = rnd.randrange(len(fx.carts))
        member = rnd.choice(fx.members) if rnd.random() < 0.5 else None
        checkout.confirm(
            ctx,
            fx.brand_id,
            ConfirmRequest(
                order_no=f"prof-{tag}-{next(counter)}",
                cart=cart_request(store, fx.carts[c], member),
                tenders=(Tender("wechat", fx.prices[c], "wx"),),
                cashier="c01",
                terminal="T1",
            ),
        )

    def do_identify() -> None:
        checkout.identify(
            ctx, fx.brand_id, store, MemberRef(card_no=fx.cards[rnd.choice(fx.members)])
        )

    rows: list[list[str]] = []
    cases: list[tuple[str, Callable[[], None]]] = [
        ("identify", do_identify),
        ("quote", do_quote),
        ("confirm", do_confirm),
    ]
    for name, work in cases:
        for _ in range(min(50, n)):
            work()
        t = Timings()
        with timer.recording() as records:
            for _ in range(n):
                t.time(work)
        sql_ms = sum(d for _, d in records) / 1e6 / n
        rows.append(
            [
                db,
                name,
                ms(t.percentile_ms(50)),
                ms(t.percentile_ms(99)),
                ms(t.mean_ms),
                f"{len(records) / n:.1f}",
                ms(sql_ms),
                ms(t.mean_ms - sql_ms),
            ]
        )
    print_table(
        [
            "db",
            "in-process call",
            "p50 ms",
            "p99 ms",
            "mean ms",
            "statements",
            "SQL ms",
            "Python ms (mean - SQL)",
        ],
        rows,
    )
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        do_confirm()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(r"loyalpos|sqlalchemy/engine/base|psycopg", 30)
    stats.sort_stats("tottime").print_stats(25)
    print(f"cProfile of {n} in-process confirms on {db} (cumulative, filtered; then own time):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    ctx.engine.dispose()


# --- main ----------------------------------------------------------------------


def bench_db(db: str, args: argparse.Namespace, log_dir: Path) -> list[Row]:
    rows: list[Row] = []
    with scratch_database(db) as url:
        fx = seed(url, args.members, args.stores, args.history)
        created = 0
        for workers in args.workers:
            with server(url, workers, log_dir, args.till_threads) as srv:
                for concurrency in args.concurrency:
                    for scenario in args.scenarios:
                        tag = f"{scenario[:2]}{workers}{concurrency}-{secrets.token_hex(3)}"
                        load = Load(fx, scenario, srv.port, tag, args.connections)
                        pids = srv.workers

                        def meter() -> tuple[dict[int, float], dict[int, float]]:
                            # Backends listed at each end (the pool grows in the
                            # warm-up); one that closes in the window is missed.
                            pg = pg_backends(url) if db == "postgresql" else []  # noqa: B023
                            return cpu_seconds(pids), cpu_seconds(pg)  # noqa: B023

                        run: Run = run_loop(
                            drive(load, concurrency, args.warmup, args.seconds, meter)
                        )
                        server_cpu = run.server_cpu
                        pg_cpu = run.pg_cpu if db == "postgresql" else None
                        created += sum(k.created for k in run.kinds.values())
                        row = Row(db, workers, concurrency, scenario, run, server_cpu, pg_cpu)
                        rows.append(row)
                        report([row])
                        print()
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                booked = conn.execute(
                    select(func.count())
                    .select_from(orders)
                    .where(orders.c.brand_id == fx.brand_id, orders.c.order_no.not_like("hist-%"))
                ).scalar_one()
            print(check_ledger(engine, fx.brand_id))
            verdict = "OK" if booked == created else "MISMATCH"
            print(f"orders booked {verdict}: {booked} orders, {created} answers 201 Created")
        finally:
            engine.dispose()
        if args.profile:
            profile(fx, args.profile, db)
        print()
    return rows


def int_list(value: str) -> list[int]:
    return [int(x) for x in value.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int_list, default=[2, 4])
    parser.add_argument("--concurrency", type=int_list, default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--history", type=int, default=20000, metavar="ORDERS")
    parser.add_argument("--connections", type=int, default=256, help="keep-alive connections")
    parser.add_argument("--till-threads", type=int, default=2, help="LOYALPOS_TILL_THREADS")
    parser.add_argument(
        "--scenarios",
        type=lambda v: [s for s in v.split(",") if s],
        default=list(SCENARIOS),
    )
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")
    dbs = dialects(args.db)
    print_machine("POS API over HTTP (bench_http.py)", postgres="postgresql" in dbs)
    print(f"command: {' '.join(sys.argv)}")
    print(f"started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print()
    import tempfile

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="loyalpos_http_") as tmp:
        for db in dbs:
            rows += bench_db(db, args, Path(tmp))
    print("== all runs ==")
    report(rows)


if __name__ == "__main__":
    main()
