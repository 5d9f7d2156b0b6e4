"""A lost database is one typed error (`DatabaseUnavailable`, db/outage.py) that
every route answers with 503, `Retry-After` and the error shape, logged once as
one line: the till's fast path as much as the FastAPI routes (issue 11, item 6).
Over HTTP against a real server whose PostgreSQL is cut: tests/e2e/test_hardening_transport.py.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from loyalpos.api import errors
from loyalpos.api.app import create_app
from loyalpos.db import engine as engine_module
from loyalpos.db.engine import deferred, make_engine, read_first, write_many
from loyalpos.db.outage import outage
from loyalpos.db.tables import brands as brands_table
from loyalpos.domain.errors import DatabaseUnavailable, NotFound
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context
from loyalpos.service.till import checkout
from tests.e2e.test_server import free_port
from tests.integration.checkout_helpers import cart, confirm_request, open_shop
from tests.integration.test_fastpath import Counting
from tests.integration.test_ledger_concurrency import pg_ctx

__all__ = ["pg_ctx"]

LOST = "数据库暂时不可用"


def _raised(work: Any) -> BaseException:
    try:
        work()
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def _kill_backend(ctx: Context, conn: Connection) -> None:
    """Terminate `conn`'s server process from another connection, as a restart does."""
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(ctx.engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


@pytest.mark.postgres
def test_the_drivers_errors_of_a_lost_postgresql_read_as_one_typed_error(pg_ctx: Context) -> None:
    ctx = pg_ctx
    # Nothing listening (a server that is down): refused at connect.
    dead = make_engine(make_url(ctx.engine.url).set(port=free_port()).render_as_string(False))
    refused = _raised(dead.connect)
    dead.dispose()
    assert isinstance(refused, OperationalError)
    assert isinstance(outage(refused), DatabaseUnavailable)

    def killed_under(work: Any) -> BaseException:
        """What a transaction running `work(conn)` raises when the server ended
        its session first (the error of the statement, or of the rollback after it)."""

        def transaction() -> None:
            with ctx.engine.connect() as conn, conn.begin():
                conn.execute(text("SELECT 1"))
                _kill_backend(ctx, conn)
                work(conn)

        return _raised(transaction)

    probe = select(brands_table.c.id).where(brands_table.c.id == 1)
    row = {"code": "x", "name": "x", "timezone": "UTC"}
    lost = {
        "SQLAlchemy execute": killed_under(lambda conn: conn.execute(probe)),
        "db.engine.read_first (psycopg)": killed_under(lambda conn: read_first(conn, probe, {})),
        "db.engine.write_many (psycopg)": killed_under(
            lambda conn: write_many(conn, insert(brands_table), [row])
        ),
    }

    def batch(conn: Connection) -> None:
        with deferred(conn):
            write_many(conn, insert(brands_table), [row, {**row, "code": "y"}])

    lost["db.engine.deferred (psycopg)"] = killed_under(batch)
    for path, exc in lost.items():
        typed = outage(exc)
        assert isinstance(typed, DatabaseUnavailable), (path, repr(exc))
        # The cause, not a "connection is lost" from the rollback after it: the
        # psycopg paths invalidate the connection as SQLAlchemy's own do.
        assert "terminating connection" in typed.reason and "\n" not in typed.reason, path


def test_errors_that_are_not_an_outage_stay_what_they_are(ctx: Context) -> None:
    def duplicate(conn: Connection) -> None:
        conn.execute(insert(brands_table), [{"code": "d", "name": "d", "timezone": "UTC"}] * 2)

    with ctx.engine.connect() as conn:
        clash = _raised(lambda: duplicate(conn))
        conn.rollback()
        bad_sql = _raised(lambda: conn.execute(text("SELECT * FROM no_such_table")))
    assert isinstance(clash, IntegrityError)
    # SQLite says "no such table" with an OperationalError too: a bug, not an outage.
    assert isinstance(bad_sql, OperationalError | ProgrammingError)
    for exc in (clash, bad_sql, ValueError("x"), NotFound("x"), RuntimeError("x")):
        assert outage(exc) is None, repr(exc)


@pytest.mark.postgres
def test_a_cancelled_statement_is_not_an_outage(pg_ctx: Context) -> None:
    """57014 (a statement timeout) would fail again the same way: telling the till to
    retry would hide it. Class 57's shutdowns (57P01, above) are outages."""
    with pg_ctx.engine.connect() as conn, conn.begin():
        conn.execute(text("SET LOCAL statement_timeout = 10"))
        cancelled = _raised(lambda: conn.execute(text("SELECT pg_sleep(1)")))
    assert getattr(getattr(cancelled, "orig", None), "sqlstate", None) == "57014"
    assert outage(cancelled) is None


def test_a_sqlite_file_that_cannot_be_opened_is_an_outage(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    exc = _raised(engine.connect)
    engine.dispose()
    assert isinstance(exc, OperationalError) and isinstance(exc.orig, sqlite3.OperationalError)
    assert isinstance(outage(exc), DatabaseUnavailable)


def _dead_url(ctx: Context, tmp_path: Path) -> str:
    if ctx.dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'gone' / 'loyalpos.db'}"
    return make_url(ctx.engine.url).set(port=free_port()).render_as_string(hide_password=False)


class Outage:
    """Points the running app's context at a database that is not there (a
    refused port, or a SQLite file that cannot be opened), and back."""

    def __init__(self, ctx: Context, dead_url: str) -> None:
        self.ctx = ctx
        self.live = ctx.engine
        self.dead = make_engine(dead_url)

    def lose(self) -> None:
        self.ctx.engine = self.dead

    def restore(self) -> None:
        self.ctx.engine = self.live


@pytest.fixture
def database(ctx: Context, tmp_path: Path) -> Iterator[Outage]:
    outage = Outage(ctx, _dead_url(ctx, tmp_path))
    yield outage
    outage.restore()
    outage.dead.dispose()


def test_a_lost_database_answers_503_on_every_route_fast_path_included(
    ctx: Context,
    database: Outage,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shop = open_shop(ctx)
    sold = cart(shop.store_a, shop.member, ("tea", 3000, 1))
    checkout.confirm(ctx, shop.brand.id, confirm_request("BOOKED-1", sold, 3000))
    cashier = apikeys.create_key(ctx, shop.brand.id, Scope.CASHIER, "till", store_id=shop.store_a)
    hq = apikeys.create_key(ctx, shop.brand.id, Scope.HQ, "hq")
    # Keys stay in the process's cache through the outage: the fast path answers.
    monkeypatch.setattr(apikeys, "KEY_CACHE_SECONDS", 3600.0)
    store, member = shop.store_a, shop.member
    body = {
        "store_id": store,
        "member": {"member_id": member},
        "lines": [{"sku": "tea", "category": "food", "unit_price_fen": 3000, "qty": 1}],
    }
    order = {
        **body,
        "order_no": "DOWN-1",
        "tenders": [{"method": "cash", "amount_fen": 3000}],
        "cashier": "c01",
        "terminal": "T1",
    }
    calls: list[tuple[str, str, Any, str]] = [
        ("POST", "/v1/identify", {"store_id": store, "member": {"member_id": member}}, "till"),
        ("POST", "/v1/quotes", body, "till"),
        ("POST", "/v1/orders", order, "till"),
        (
            "POST",
            f"/v1/stores/{store}/orders/BOOKED-1/refunds",
            {"refund_no": "R1", "cashier": "c"},
            "till",
        ),
        ("POST", f"/v1/members/{member}/coupons", {"template": "cash5"}, "hq"),
        ("GET", f"/v1/members/{member}/coupons", None, "till"),
        ("GET", f"/v1/members/{member}/points", None, "hq"),
        ("GET", "/healthz", None, "till"),
    ]
    keys = {"till": cashier.secret, "hq": hq.secret}
    with TestClient(create_app(ctx)) as client:

        def send(method: str, url: str, json: Any, who: str) -> Any:
            auth = {"authorization": f"Bearer {keys[who]}"}
            return client.request(method, url, json=json, headers=auth)

        assert send("GET", "/v1/keys", None, "hq").status_code == 200
        assert send("POST", "/v1/quotes", body, "till").status_code == 200
        database.lose()
        counting = Counting(monkeypatch)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            answers = [send(*call) for call in calls]
            # The till's calls were the fast path's (FastAPI saw none of them).
            assert counting.seen == [url for _, url, _, _ in calls[3:]]
            # A key that has to be read from the database: FastAPI's path, same answer.
            ctx.forget(("api_key", apikeys.parse_prefix(cashier.secret)))
            answers.append(send(*calls[0]))
        for call, answer in zip([*calls, calls[0]], answers, strict=True):
            assert answer.status_code == 503, (call, answer.text)
            assert answer.headers["retry-after"] == str(errors.RETRY_AFTER_SECONDS)
            assert answer.headers["content-type"] == "application/json"
            error = answer.json()["error"]
            assert error["code"] == "database_unavailable" and LOST in error["message"], call
            assert error["detail"] == {
                "retry_after_seconds": errors.RETRY_AFTER_SECONDS,
                "may_have_applied": False,
            }
        # Logged once per failure, as one line without a traceback.
        lines = [r for r in caplog.records if "database unavailable" in r.getMessage()]
        assert len(lines) == len(answers), [r.getMessage() for r in caplog.records]
        assert all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
        # The database is back: the same connection of the till answers again,
        # and nothing of the refused confirm was booked: sent again, it books.
        database.restore()
        again = send(*calls[2])
        assert again.status_code == 201 and not again.json()["replayed"], again.text
        assert send(*calls[3]).status_code == 201


@pytest.mark.postgres
def test_a_database_host_that_never_answers_is_an_outage_within_the_connect_timeout(
    pg_ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listening socket nobody accepts from: the handshake completes in the
    # kernel, PostgreSQL's answer never comes (a host that drops packets).
    with socket.create_server(("127.0.0.1", 0)) as silent:
        monkeypatch.setattr(engine_module, "CONNECT_TIMEOUT_SECONDS", 1)
        url = make_url(pg_ctx.engine.url).set(port=silent.getsockname()[1])
        engine = make_engine(url.render_as_string(hide_password=False))
        started = time.monotonic()
        exc = _raised(engine.connect)
        waited = time.monotonic() - started
        engine.dispose()
    assert isinstance(outage(exc), DatabaseUnavailable), repr(exc)
    assert waited < 10, waited


@pytest.mark.postgres
def test_a_connection_lost_at_commit_says_the_request_may_have_applied(pg_ctx: Context) -> None:
    """Lost before the commit, nothing took effect and the 503 says so; lost at the
    commit, the server may have committed, and the 503 must not promise a safe resend."""
    ctx = pg_ctx
    with pytest.raises(DatabaseUnavailable) as at_commit:
        with ctx.transaction() as conn:
            conn.execute(text("SELECT 1"))
            _kill_backend(ctx, conn)
    assert at_commit.value.committing
    answer = errors.response_for(at_commit.value)
    assert answer.status_code == 503
    error = json.loads(bytes(answer.body))["error"]
    assert error["detail"]["may_have_applied"] is True
    assert "可能已生效" in error["message"]

    def lost_at_a_statement() -> None:
        with ctx.transaction() as conn:
            conn.execute(text("SELECT 1"))
            _kill_backend(ctx, conn)
            conn.execute(text("SELECT 1"))

    down = outage(_raised(lost_at_a_statement))
    assert down is not None and not down.committing
    error = json.loads(bytes(errors.response_for(down).body))["error"]
    assert error["detail"]["may_have_applied"] is False
    assert error["message"].startswith(LOST)


def test_the_worker_logs_a_lost_database_as_one_line_a_pass(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart used to print a traceback every poll; now one warning line a pass."""
    import threading

    from loyalpos.config import Settings
    from loyalpos.service.events.worker import run_worker

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing_listens"
    ctx = Context(make_engine(url), Settings(env="test", database_url=url, secret_key="s" * 40))

    class StopAfterTwoWaits(threading.Event):
        """The worker waits between passes: let it fail two passes, then stop."""

        waits = 0

        def wait(self, timeout: float | None = None) -> bool:
            self.waits += 1
            if self.waits >= 2:
                self.set()
            return self.is_set()

    stop = StopAfterTwoWaits()
    caplog.set_level(logging.INFO, logger="loyalpos")
    try:
        stats = run_worker(ctx, poll_seconds=0.01, stop=stop)
    finally:
        ctx.engine.dispose()
    assert stats.errors >= 1
    lost = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert lost and all(r.exc_info is None for r in lost)
    assert not any(r.exc_info for r in caplog.records)


def test_too_many_attempts_is_a_429_that_says_when_to_retry() -> None:
    """A throttled sign-in or a locked PIN (domain TooManyAttempts) maps once to 429
    with Retry-After, like the 503 of a lost database says when to come back."""
    from datetime import UTC, datetime, timedelta

    from loyalpos.domain.errors import TooManyAttempts

    now = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    exc = TooManyAttempts(
        "请 15 分钟后再试 (try again later)", until=now + timedelta(seconds=90), now=now
    )
    answer = errors.response_for(exc)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "90"
    body = json.loads(answer.body)
    assert body["error"]["code"] == "too_many_attempts"
    assert body["error"]["detail"]["retry_after_seconds"] == 90


def test_a_lost_database_gives_a_page_to_a_browser_and_the_error_body_to_the_till_script(
    ctx: Context, database: Outage
) -> None:
    """A cashier's browser asking for a page while the database is away gets a page
    that says what to do (503, never a 500 or a JSON body); the till's script gets
    the 503 error body it takes for "offline"."""
    from loyalpos.service.admin import demo

    demo.seed(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        form = client.get("/till/sign-in")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        signed = client.post(
            "/till/sign-in",
            data={"csrf": csrf, "brand": "demo", "store": "SH001", "number": "1001", "pin": "1234"},
            follow_redirects=False,
        )
        assert signed.status_code == 303
        till = client.get("/till")
        token = till.text.split('name="csrf-token" content="')[1].split('"')[0]
        database.lose()
        page = client.get("/till", headers={"Accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "服务器暂时无法连接数据库" in page.text and page.headers["retry-after"]
        english = client.get("/till?lang=en", headers={"Accept": "text/html"})
        assert "cannot reach its database" in english.text
        call = client.post(
            "/till/api/quote",
            json={"lines": [{"sku": "latte", "unit_price_fen": 3200, "qty": 1}]},
            headers={"X-CSRF-Token": token, "Accept": "application/json"},
        )
        assert call.status_code == 503
        assert call.json()["error"]["code"] == "database_unavailable"
        database.restore()
        assert client.get("/till").status_code == 200
