"""A real `loyalpos serve` on a fresh PostgreSQL database, for tests that must go
over HTTP to the server a store runs (the hardening proofs of issue 11).

`live_pg_server` (module-scoped fixture) starts the server with the demo brand
on its own scratch database and yields a `Live`: the base URL, the demo keys,
the database URL (to check rows directly) and the server's log. A second brand
("other", with an HQ key and a cashier key of its own) is created before the
server starts, so cross-tenant probes have someone else's ids to try.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.migrate import upgrade
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.admin.demo import seed
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from tests.conftest import PG_URL, TEST_SECRET, WORKER, require_pg
from tests.e2e.test_server import free_port, loyalpos_bin, wait_healthy

DEMO_HQ_KEY = "lp_demohq_publicdemokey"
DEMO_CASHIER_KEY = "lp_demosh001_publicdemokey"


@dataclass(frozen=True)
class Live:
    base: str
    db_url: str
    log: Path
    hq_key: str  # the demo brand's HQ key
    cashier_key: str  # the demo brand's cashier key of SH001
    other_hq_key: str  # brand "other"
    other_cashier_key: str  # brand "other", store OT001
    other_brand_id: int
    other_store_id: int

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def client(self, key: str | None = None, **kw: object) -> httpx.Client:
        headers = self.headers(key) if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


@contextmanager
def scratch_pg_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database; dropped afterwards."""
    require_pg()
    name = f"loyalpos_live_{WORKER}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _other_brand(url: str) -> tuple[int, int, str, str]:
    """Brand "other" with store OT001 and a key of each scope: (brand, store, hq, cashier)."""
    settings = Settings(env="test", database_url=url, secret_key=TEST_SECRET)
    ctx = Context(make_engine(url), settings)
    try:
        seed(ctx)  # the demo brand first, so its ids are the small ones
        other = brands.create_brand(ctx, "other", "Other Brand")
        store = brands.create_store(ctx, other.id, "OT001", "Other store")
        hq = apikeys.create_key(ctx, other.id, Scope.HQ, "other hq")
        cashier = apikeys.create_key(ctx, other.id, Scope.CASHIER, "other till", store_id=store.id)
        return other.id, store.id, hq.secret, cashier.secret
    finally:
        ctx.engine.dispose()


@contextmanager
def live_server(
    url: str,
    tmp_path: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """`loyalpos serve` (demo seeded) on `url`; yields (process, base URL, log path).
    `port` to come back on the port of a server stopped before (a till page that
    lost its server finds it again there)."""
    port = port or free_port()
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALPOS_")}
    run_env.pop("PORT", None)
    run_env.update(
        LOYALPOS_DATABASE_URL=url,
        LOYALPOS_SECRET_KEY=TEST_SECRET,
        LOYALPOS_ENV="test",
        PYTHONUNBUFFERED="1",
        **(env or {}),
    )
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [loyalpos_bin(), "serve", "--port", str(port), "--workers", str(workers)],
            cwd=tmp_path,
            env=run_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, log_path)
        yield proc, base, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture(scope="module")
def live_pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The real server on its own PostgreSQL database, demo brand and brand "other"."""
    tmp_path = tmp_path_factory.mktemp("live")
    with scratch_pg_database() as url:
        other_brand, other_store, other_hq, other_cashier = _other_brand(url)
        with live_server(url, tmp_path) as (_proc, base, log_path):
            yield Live(
                base=base,
                db_url=url,
                log=log_path,
                hq_key=DEMO_HQ_KEY,
                cashier_key=DEMO_CASHIER_KEY,
                other_hq_key=other_hq,
                other_cashier_key=other_cashier,
                other_brand_id=other_brand,
                other_store_id=other_store,
            )
