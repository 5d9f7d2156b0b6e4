"""Issue 11, items 2 and 6, over HTTP against real servers.

- A PostgreSQL that goes away under a running `loyalpos serve` (a TCP proxy
  between the two, cut by the test): every route answers 503 with
  `Retry-After` and the error shape, on the same keep-alive connection, which
  keeps working when the database is back; the server logs one line per
  failure and never "Exception in ASGI application". A confirm refused with 503
  was not booked (sent again, it books); one whose commit went through before
  the connection was cut is answered by its replay.
- A 500 that still happens (a route made to raise) answers the error shape and
  the next request on the same connection succeeds.
- Two `Authorization` headers are refused on every path of the real server.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from loyalpos.api.app import create_app
from loyalpos.api.till.fastpath import Answer, TillRoute
from loyalpos.api.till.schemas import QuoteIn, QuoteOut
from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.migrate import upgrade
from loyalpos.db.tables import orders
from loyalpos.service.admin.apikeys import KEY_CACHE_SECONDS, Principal
from loyalpos.service.admin.demo import seed
from loyalpos.service.base.context import Context
from tests.conftest import TEST_SECRET
from tests.e2e.live import DEMO_CASHIER_KEY, DEMO_HQ_KEY, Live, live_server, scratch_pg_database
from tests.e2e.test_server import free_port

PHONE = "13800138000"  # a demo member
ASGI_CRASH = "Exception in ASGI application"
OUTAGE_LINE = "database unavailable, answered 503"
# psycopg's commit: a simple-protocol query message (type, length, text).
COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"


class Proxy:
    """A TCP proxy between the server and PostgreSQL, which the test cuts.

    `down()` closes every connection through it and closes each new one at
    once (PostgreSQL gone); `up()` lets connections through again.
    `cut_after_commit(marker)` cuts everything once a connection that sent
    `marker` then sends COMMIT: the commit reaches PostgreSQL, its answer does
    not reach the server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.links: list[socket.socket] = []
        self.is_up = True
        self.muted = False
        self.marker: bytes | None = None
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.is_up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.links += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        armed = False
        try:
            while data := src.recv(65536):
                if not to_server and self.muted:
                    continue
                dst.sendall(data)
                if to_server and self.marker is not None:
                    armed = armed or self.marker in data
                    if armed and COMMIT in data:
                        self.marker = None
                        # PostgreSQL reads the COMMIT and commits; its answer is
                        # dropped, then every connection is cut.
                        self.muted = True
                        time.sleep(0.5)
                        self.down()
                        self.muted = False
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.close()

    def down(self) -> None:
        with self.lock:
            self.is_up = False
            links, self.links = self.links, []
        for s in links:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                s.close()

    def up(self) -> None:
        self.is_up = True

    def cut_after_commit(self, marker: bytes) -> None:
        self.marker = marker

    def close(self) -> None:
        self.closed = True
        self.down()
        self.listener.close()


@dataclass
class CutServer:
    """`loyalpos serve` (demo brand) on PostgreSQL through a `Proxy`."""

    base: str
    db_url: str  # straight to PostgreSQL, for the test's own checks
    log: Path
    proxy: Proxy
    store: int  # SH001
    member: int  # the demo member with PHONE

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


@pytest.fixture(scope="module")
def cut_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CutServer]:
    tmp_path = tmp_path_factory.mktemp("cut")
    with scratch_pg_database() as url:
        pg = make_url(url)
        proxy = Proxy((pg.host or "127.0.0.1", pg.port or 5432))
        via = pg.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        try:
            with live_server(via, tmp_path) as (_proc, base, log):
                engine = create_engine(url)
                with engine.connect() as conn:
                    store = conn.execute(text("SELECT id FROM stores WHERE code = 'SH001'"))
                    store_id = store.scalar_one()
                engine.dispose()
                found = httpx.post(
                    f"{base}/v1/identify",
                    json={"store_id": store_id, "member": {"phone": PHONE}},
                    headers={"Authorization": f"Bearer {DEMO_CASHIER_KEY}"},
                )
                ids = store_id, found.json()["member"]["id"]
                yield CutServer(base, url, log, proxy, *ids)
        finally:
            proxy.close()


def connection_of(response: httpx.Response) -> Any:
    """The client's address of the TCP connection the response came on."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def assert_unavailable(
    response: httpx.Response, what: str, *, may_have_applied: bool = False
) -> None:
    """503 in the error shape; `may_have_applied` when the cut came at the commit,
    so the answer must not promise that sending it again is harmless."""
    assert response.status_code == 503, (what, response.status_code, response.text)
    assert int(response.headers["retry-after"]) > 0, what
    assert response.headers["content-type"] == "application/json", what
    assert "close" not in response.headers.get("connection", ""), what
    error = response.json()["error"]
    assert error["code"] == "database_unavailable", what
    assert error["detail"]["may_have_applied"] is may_have_applied, what
    expected = "本次操作可能已生效" if may_have_applied else "数据库暂时不可用，请稍后重试"
    assert expected in error["message"], what
    assert set(error) == {"code", "message", "detail"}, what


def cart(server: CutServer) -> dict[str, Any]:
    return {
        "store_id": server.store,
        "member": {"phone": PHONE},
        "lines": [{"sku": "latte", "category": "coffee", "unit_price_fen": 3200, "qty": 2}],
    }


def order(server: CutServer, order_no: str, payable: int) -> dict[str, Any]:
    return {
        **cart(server),
        "order_no": order_no,
        "tenders": [{"method": "cash", "amount_fen": payable}],
        "cashier": "c01",
        "terminal": "T1",
    }


def count_orders(server: CutServer, order_no: str) -> int:
    engine = create_engine(server.db_url)
    with engine.connect() as conn:
        found = conn.execute(
            select(func.count()).select_from(orders).where(orders.c.order_no == order_no)
        ).scalar_one()
    engine.dispose()
    return int(found)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_lost_database_answers_503_on_every_route_and_the_connection_lives_on(
    cut_server: CutServer,
) -> None:
    server = cut_server
    log_before = len(server.log_text())
    with server.client(DEMO_CASHIER_KEY) as till, server.client(DEMO_HQ_KEY) as hq:
        # Before: an order to refund later, and the price of the cart.
        payable = till.post("/v1/quotes", json=cart(server)).json()["payable_fen"]
        booked = till.post("/v1/orders", json=order(server, "CUT-BOOKED", payable))
        assert booked.status_code == 201, booked.text
        warm = hq.get(f"/v1/members/{server.member}/points")
        assert warm.status_code == 200
        connections = {"till": connection_of(booked), "hq": connection_of(warm)}
        refund = {"refund_no": "CUT-R1", "cashier": "c01"}
        calls: list[tuple[str, httpx.Client, str, str, Any]] = [
            (
                "identify",
                till,
                "POST",
                "/v1/identify",
                {"store_id": server.store, "member": {"phone": PHONE}},
            ),
            ("quote", till, "POST", "/v1/quotes", cart(server)),
            ("confirm", till, "POST", "/v1/orders", order(server, "CUT-1", payable)),
            (
                "refund",
                till,
                "POST",
                f"/v1/stores/{server.store}/orders/CUT-BOOKED/refunds",
                refund,
            ),
            (
                "coupon issue",
                hq,
                "POST",
                f"/v1/members/{server.member}/coupons",
                {"template": "mj100-15"},
            ),
            ("points", hq, "GET", f"/v1/members/{server.member}/points", None),
            ("wallet", till, "GET", f"/v1/members/{server.member}/coupons", None),
            ("health", till, "GET", "/healthz", None),
        ]

        def each() -> int:
            for name, client, method, url, body in calls:
                answer = client.request(method, url, json=body)
                assert_unavailable(answer, name)
                who = "hq" if client is hq else "till"
                assert connection_of(answer) == connections[who], name
            return len(calls)

        server.proxy.down()
        try:
            # At once: the keys are in the server's cache (the till's calls take
            # the fast path); then once the cache has let them go (FastAPI's
            # path, whose key lookup meets the lost database).
            failures = each()
            time.sleep(KEY_CACHE_SECONDS + 0.5)
            failures += each()
        finally:
            server.proxy.up()
        # Back: the same connections answer, and the refused confirm was not
        # booked (sent again, it books); the refund and the coupon go through.
        again = till.post("/v1/orders", json=order(server, "CUT-1", payable))
        assert again.status_code == 201 and again.json()["replayed"] is False, again.text
        assert count_orders(server, "CUT-1") == 1
        refunded = till.post(f"/v1/stores/{server.store}/orders/CUT-BOOKED/refunds", json=refund)
        assert refunded.status_code == 201, refunded.text
        issued = hq.post(f"/v1/members/{server.member}/coupons", json={"template": "mj100-15"})
        assert issued.status_code == 201, issued.text
        assert connection_of(again) == connections["till"]
        assert connection_of(issued) == connections["hq"]
    log = server.log_text()[log_before:]
    assert ASGI_CRASH not in log, log
    assert "Traceback" not in log, log
    assert log.count(OUTAGE_LINE) == failures, log


@pytest.mark.postgres
@pytest.mark.slow
def test_a_confirm_whose_answer_was_lost_with_the_database_replays_its_booking(
    cut_server: CutServer,
) -> None:
    server = cut_server
    with server.client(DEMO_CASHIER_KEY) as till:
        payable = till.post("/v1/quotes", json=cart(server)).json()["payable_fen"]
        body = order(server, "CUT-ANSWER-LOST", payable)
        server.proxy.cut_after_commit(b"INSERT INTO orders")
        try:
            lost = till.post("/v1/orders", json=body)
            assert_unavailable(lost, "confirm", may_have_applied=True)
            # It was booked: PostgreSQL committed, the server never heard back.
            assert count_orders(server, "CUT-ANSWER-LOST") == 1
        finally:
            server.proxy.up()
        replay = till.post("/v1/orders", json=body)
        assert replay.status_code == 200, replay.text
        receipt = replay.json()
        assert receipt["replayed"] is True and receipt["order_no"] == "CUT-ANSWER-LOST"
        assert receipt["payable_fen"] == payable
        assert count_orders(server, "CUT-ANSWER-LOST") == 1
        assert connection_of(replay) == connection_of(lost)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_authorization_headers_are_refused_on_every_path_of_the_server(
    live_pg_server: Live,
) -> None:
    live = live_pg_server
    two = [
        ("Authorization", f"Bearer {live.cashier_key}"),
        ("Authorization", f"Bearer {live.hq_key}"),
    ]
    with httpx.Client(base_url=live.base, timeout=30) as client:
        body = {"store_id": 1, "member": {"phone": PHONE}}
        # The cashier key alone works (and is now in the server's key cache).
        alone = client.post("/v1/identify", json=body, headers=two[:1])
        assert alone.status_code == 200, alone.text
        for method, url in [
            ("POST", "/v1/identify"),
            ("POST", "/v1/quotes"),
            ("POST", "/v1/orders"),
            ("GET", "/v1/keys"),
            ("GET", "/v1/members/1/points"),
        ]:
            for headers in (two, two[::-1]):
                answer = client.request(method, url, json=body, headers=headers)
                assert answer.status_code == 401, (url, answer.text)
                assert answer.json()["error"]["code"] == "api_key_ambiguous", url


# --- a 500 that still happens ----------------------------------------------------


@contextmanager
def uvicorn_in_thread(app: Any) -> Iterator[str]:
    """`app` served by uvicorn (its defaults: httptools, uvloop when present)
    in a thread; logs go to the root logger (caplog)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def crashing_app(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """The app on a SQLite file, with a route that raises (FastAPI's path, sync
    and async) and a till quote whose work raises (the fast path)."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    ctx = Context(make_engine(url), Settings(env="test", database_url=url, secret_key=TEST_SECRET))
    upgrade(ctx.engine)
    seed(ctx)
    app = create_app(ctx)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.post("/boom-sync")
    def boom_sync() -> None:
        raise KeyError("a bug in a thread")

    async def quote_bug(_ctx: Context, _who: Principal, _body: QuoteIn) -> Answer:
        raise ZeroDivisionError("a bug on the fast path")

    app.till_routes = {**app.till_routes, "/v1/quotes": TillRoute(QuoteIn, QuoteOut, quote_bug)}  # type: ignore[attr-defined]
    yield app, DEMO_CASHIER_KEY
    ctx.engine.dispose()


@pytest.mark.slow
def test_a_500_answers_the_error_shape_and_keeps_the_connection(
    crashing_app: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    app, key = crashing_app
    with caplog.at_level(logging.INFO), uvicorn_in_thread(app) as base:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
            first = client.get("/healthz")
            assert first.status_code == 200
            seen = connection_of(first)
            # The key is cached after this one, so the next quote takes the fast path.
            assert client.get("/v1/members/1/points").status_code == 200
            quote = {"store_id": 1, "lines": [{"sku": "x", "unit_price_fen": 100, "qty": 1}]}
            for method, url, body in [
                ("GET", "/boom", None),
                ("POST", "/boom-sync", None),
                ("POST", "/v1/quotes", quote),
            ]:
                crash = client.request(method, url, json=body)
                assert crash.status_code == 500, (url, crash.text)
                assert crash.headers["content-type"] == "application/json"
                assert crash.json()["error"]["code"] == "internal_error"
                assert set(crash.json()["error"]) == {"code", "message", "detail"}
                # The connection is kept (no `Connection: close`, and the next
                # request on it is answered).
                assert "close" not in crash.headers.get("connection", ""), url
                after = client.get("/healthz")
                assert after.status_code == 200, url
                assert connection_of(crash) == connection_of(after) == seen, url
    messages = [r.getMessage() for r in caplog.records]
    assert not any(ASGI_CRASH in m for m in messages), messages
    bugs = [r for r in caplog.records if "unhandled error" in r.getMessage()]
    assert len(bugs) == 3 and all(r.exc_info for r in bugs), messages
