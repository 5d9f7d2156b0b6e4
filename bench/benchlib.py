"""Shared helpers for the benchmark scripts in this folder (not a benchmark itself).

- `scratch_database(kind)`: a freshly migrated database for one run. SQLite: a file
  in a temporary directory. PostgreSQL: `loyalpos_bench_<random>` created through
  the admin URL (`LOYALPOS_BENCH_PG_URL`, default
  postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and dropped at the end,
  also when the run fails, is interrupted (Ctrl-C) or receives SIGTERM.
- `print_machine()`: date, CPUs, CPU model, load, Python, SQLite and PostgreSQL.
- `Timings`: nanosecond samples from `time.perf_counter_ns` and their percentiles.
- `print_table()`: a plain aligned text table.
"""

from __future__ import annotations

import math
import os
import platform
import secrets
import signal
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import psycopg
import sqlalchemy
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.migrate import upgrade
from loyalpos.service.base.context import Context

T = TypeVar("T")

PG_ADMIN_URL_ENV = "LOYALPOS_BENCH_PG_URL"
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DIALECTS = ("sqlite", "postgresql")
PG_SETTINGS = ("shared_buffers", "work_mem", "max_wal_size", "fsync", "synchronous_commit")


def pg_admin_url() -> str:
    return os.environ.get(PG_ADMIN_URL_ENV, DEFAULT_PG_ADMIN_URL)


def dialects(choice: str) -> list[str]:
    """`--db` value to the list of databases to run on ("both" means both)."""
    return list(DIALECTS) if choice == "both" else [choice]


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """URL of a new, migrated database that is removed when the block ends."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="loyalpos_bench_") as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            _migrate(url)
            yield url
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    # A plain `kill` should drop the scratch database too, not only Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"loyalpos_bench_{secrets.token_hex(5)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            rendered = make_url(pg_admin_url()).set(database=name).render_as_string(False)
            _migrate(rendered)
            yield rendered
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
        signal.signal(signal.SIGTERM, previous)


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


class Clock:
    """A settable clock for the service layer (the services never read the wall clock)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def make_context(url: str, clock: Callable[[], datetime] | None = None) -> Context:
    settings = Settings(database_url=url)
    engine = make_engine(url)
    if clock is None:
        return Context(engine, settings)
    return Context(engine, settings, clock)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _postgres_facts() -> list[tuple[str, str]]:
    try:
        engine = create_engine(pg_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar_one())
            settings = ", ".join(
                f"{n}={conn.execute(text(f'SHOW {n}')).scalar_one()}" for n in PG_SETTINGS
            )
        engine.dispose()
    except Exception as exc:  # the machine table should print even without a server
        return [("PostgreSQL", f"not reachable ({type(exc).__name__})")]
    return [("PostgreSQL", version), ("PostgreSQL settings", settings)]


def print_machine(title: str, *, postgres: bool) -> None:
    """What the figures were measured on, printed above them."""
    print(f"== {title} ==")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    facts = [
        ("Date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("nproc", str(cpus)),
        ("CPU", _cpu_model()),
        ("Memory", _memory()),
        ("Load average (1, 5, 15 min)", load),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("SQLAlchemy", sqlalchemy.__version__),
        ("SQLite", sqlite3.sqlite_version),
    ]
    if postgres:
        facts += _postgres_facts()
    print_table(["machine", ""], facts)
    print()


@dataclass
class Timings:
    """Latency samples in nanoseconds."""

    samples: list[int] = field(default_factory=list)

    def time(self, work: Callable[[], T]) -> T:
        start = time.perf_counter_ns()
        result = work()
        self.samples.append(time.perf_counter_ns() - start)
        return result

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile, q in [0, 100]."""
        ordered = sorted(self.samples)
        rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
        return ordered[rank - 1] / 1e6

    @property
    def mean_ms(self) -> float:
        return sum(self.samples) / len(self.samples) / 1e6

    @property
    def total_s(self) -> float:
        return sum(self.samples) / 1e9


INVARIANT_SQL = text(
    """
    SELECT count(*) AS members,
           coalesce(sum(CASE WHEN m.points_balance <> coalesce(e.total, 0)
                              OR m.points_balance <> coalesce(l.total, 0)
                             THEN 1 ELSE 0 END), 0) AS mismatched,
           coalesce(sum(m.points_balance), 0) AS points
    FROM members AS m
    LEFT JOIN (SELECT member_id, sum(points) AS total
               FROM point_entries GROUP BY member_id) AS e ON e.member_id = m.id
    LEFT JOIN (SELECT member_id, sum(remaining) AS total
               FROM point_lots GROUP BY member_id) AS l ON l.member_id = m.id
    WHERE m.brand_id = :brand_id
    """
)


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    members: int
    mismatched: int
    points: int

    def __str__(self) -> str:
        verdict = "OK" if self.mismatched == 0 else "BROKEN"
        return (
            f"ledger invariant {verdict}: {self.members} members, {self.mismatched} where "
            f"balance != sum(entries) or != sum(lots.remaining); {self.points} points held"
        )


def check_ledger(engine: Engine, brand_id: int) -> LedgerCheck:
    """One query: every member's cached balance == sum of entries == sum of lots."""
    with engine.connect() as conn:
        row = conn.execute(INVARIANT_SQL, {"brand_id": brand_id}).one()
    return LedgerCheck(int(row.members), int(row.mismatched), int(row.points))


def ms(value: float) -> str:
    return f"{value:.3f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


class StatementTimer:
    """Wall time of each SQL statement an engine runs, keyed by its first words.

    On PostgreSQL it times psycopg's `Cursor.execute`/`executemany` while recording,
    so that the statements the booking sends straight to the driver
    (`db.engine.write_many`/`read_first`, which SQLAlchemy's events do not see) are
    counted with the rest; elsewhere SQLAlchemy's cursor events. The writes of a
    `db.engine.deferred` block are one statement, timed once at the block's end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.records: list[tuple[str, int]] = []
        self._started: dict[int, int] = {}
        self.enabled = False
        self.driver_level = engine.dialect.name == "postgresql"
        if not self.driver_level:
            event.listen(engine, "before_cursor_execute", self._before)
            event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Connection, *_: object) -> None:
        if self.enabled:
            self._started[id(conn)] = time.perf_counter_ns()

    def _after(self, conn: Connection, _cursor: object, statement: str, *_: object) -> None:
        started = self._started.pop(id(conn), None)
        if started is not None:
            self._record(statement, started)

    def _record(self, statement: object, started: int) -> None:
        words = " ".join(str(statement).split())
        self.records.append((words[:70], time.perf_counter_ns() - started))

    @contextmanager
    def _psycopg_timed(self) -> Iterator[None]:
        cls = psycopg.Cursor
        execute, executemany = cls.execute, cls.executemany

        def timed(original: Any) -> Any:
            def run(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter_ns()
                try:
                    return original(cursor, query, *args, **kwargs)
                finally:
                    self._record(query, started)

            return run

        cls.execute = timed(execute)  # type: ignore[method-assign]
        cls.executemany = timed(executemany)  # type: ignore[method-assign]
        try:
            yield
        finally:
            cls.execute = execute  # type: ignore[method-assign]
            cls.executemany = executemany  # type: ignore[method-assign]

    @contextmanager
    def recording(self) -> Iterator[list[tuple[str, int]]]:
        self.records = []
        self.enabled = True
        try:
            if self.driver_level:
                with self._psycopg_timed():
                    yield self.records
            else:
                yield self.records
        finally:
            self.enabled = False
