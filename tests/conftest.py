"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL.

PostgreSQL tests use LOYALPOS_TEST_PG_URL (default: the local server with
trust auth). One scratch database is made per session and emptied between
tests. Outside CI an unreachable server skips those tests with the reason
shown; with CI=true it is a failure.

Under pytest-xdist (`-n`, scripts/test's second stage) every worker is a session
of its own, so each gets its own scratch database (named after the worker), its
own temporary directory (pytest's basetemp/popen-gwN) and its own session
fixtures; servers bind ports the kernel picks. Hypothesis' example database
(.hypothesis/examples) is shared safely: its key is the test item (the
parameters included), an item runs on one worker only, and each example is
written by an atomic rename.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.migrate import upgrade
from loyalpos.db.tables import metadata
from loyalpos.service.base.context import Context

PG_URL = os.environ.get(
    "LOYALPOS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TEST_SECRET = "test-secret-" + "x" * 32
# "gw0", "gw1", ... in a pytest-xdist worker; in scratch database names, so that
# one left behind by a killed run says which worker made it.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

# In CI every property test draws the same examples on every run (derandomized,
# seeded by the test's source): a red CI then means the change, not the dice.
# Run without CI=true, they explore new examples each time.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


def _pg_problem() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach the server counts
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


_PG_PROBLEM = _pg_problem()


def pytest_report_header() -> list[str]:
    if _PG_PROBLEM is None:
        return [f"PostgreSQL: {make_url(PG_URL).render_as_string(hide_password=True)} reachable"]
    return [
        f"PostgreSQL: NOT reachable at {PG_URL} ({_PG_PROBLEM}); "
        "PostgreSQL tests will be skipped (set LOYALPOS_TEST_PG_URL to point at a server)"
    ]


def require_pg() -> None:
    if _PG_PROBLEM is None:
        return
    message = f"PostgreSQL not reachable at {PG_URL}: {_PG_PROBLEM}"
    if IN_CI:
        pytest.fail(message + " (CI=true: PostgreSQL tests are mandatory)", pytrace=False)
    pytest.skip(message + "; set LOYALPOS_TEST_PG_URL to run them")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a scratch PostgreSQL database, migrated once for the session."""
    require_pg()
    name = f"loyalpos_test_{WORKER}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_pg(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


class Clock:
    """A settable clock for the service layer."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 1, 1, 4, 0, tzinfo=UTC))


def make_context(url: str, clock: Clock) -> Context:
    # Webhook tests post to a receiver on loopback.
    settings = Settings(
        env="test", database_url=url, secret_key=TEST_SECRET, webhook_private_network=True
    )
    return Context(make_engine(url), settings, clock)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly migrated, empty database: SQLite file, or the PostgreSQL scratch db."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "loyalpos.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url = str(request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    _empty_pg(engine)
    engine.dispose()
    return url


@pytest.fixture
def ctx(db_url: str, clock: Clock) -> Iterator[Context]:
    context = make_context(db_url, clock)
    yield context
    context.engine.dispose()
