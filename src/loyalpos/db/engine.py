"""Engines for the embedded SQLite default and for PostgreSQL.

SQLite gets WAL, foreign keys, a busy timeout and `BEGIN IMMEDIATE`, so that
two writers queue for the write lock instead of failing half-way through a
booking when one tries to upgrade a read lock.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine, Select, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.expression import UpdateBase

READ_ONLY = "loyalpos_read_only"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_size=pool_size, max_overflow=pool_size)
    event.listen(engine, "checkout", _check_alive)
    return engine


@contextmanager
def deferred(conn: Connection) -> Iterator[None]:
    """Statements whose results nobody reads (INSERT without RETURNING, UPDATE
    whose row count is not looked at), sent without waiting for each answer.

    On PostgreSQL the block runs in psycopg's pipeline mode: every statement goes
    out at once and the end of the block waits for all the answers, one round
    trip instead of one per statement; a statement that fails raises there, as a
    SQLAlchemy `DBAPIError` like any other, and the transaction is rolled back
    by its owner as usual. Elsewhere (SQLite: no round trips) the statements just
    run one by one. Nothing in the block may read a result: with a pipeline it
    is not there yet."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with _psycopg(conn) as dbapi_conn, dbapi_conn.pipeline():
        yield


@contextmanager
def _psycopg(conn: Connection, sql: str | None = None) -> Iterator[psycopg.Connection[Any]]:
    """The driver's connection under `conn`; psycopg's errors leave the block as
    SQLAlchemy's (IntegrityError for a key, ...), as if SQLAlchemy had run `sql`."""
    dbapi_conn = conn.connection.dbapi_connection
    assert isinstance(dbapi_conn, psycopg.Connection)
    try:
        yield dbapi_conn
    except psycopg.Error as exc:
        raise DBAPIError.instance(
            sql, None, exc, psycopg.Error, connection_invalidated=dbapi_conn.broken
        ) from exc


# A statement the till runs often: a write, or a SELECT / a write with RETURNING.
Hot = UpdateBase | Select[Any]


@dataclass(frozen=True, slots=True)
class _DriverForm:
    """A statement as psycopg takes it: its SQL, the type conversions of its
    parameters, and the values of the parameters SQLAlchemy made of literals in
    it (`coalesce(x, 0)`), already converted."""

    sql: str
    processors: dict[str, Callable[[Any], Any]]
    fixed: dict[str, Any]

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values = {**self.fixed, **given}
        for name, convert in self.processors.items():
            if name in given:
                values[name] = convert(given[name])
        return values


_compiled: WeakKeyDictionary[Hot, dict[tuple[str, ...], _DriverForm]] = WeakKeyDictionary()


def _driver_form(stmt: Hot, dialect: Dialect, keys: tuple[str, ...]) -> _DriverForm:
    """The statement for the driver, for parameters named `keys`; worked out once
    (the hot statements are module constants)."""
    forms = _compiled.setdefault(stmt, {})
    found = forms.get(keys)
    if found is None:
        compiled: Compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        binds = compiled.binds.items()  # type: ignore[attr-defined]
        processors = {
            name: proc
            for name, bind in binds
            if (proc := bind.type.bind_processor(dialect)) is not None
        }
        fixed = {name: bind.effective_value for name, bind in binds if not bind.required}
        fixed = {k: (processors[k](v) if k in processors else v) for k, v in fixed.items()}
        found = forms[keys] = _DriverForm(compiled.string, processors, fixed)
    return found


def write_many(conn: Connection, stmt: Hot, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run `stmt` (an INSERT or UPDATE whose result nobody reads) once per row.

    On PostgreSQL it goes straight to psycopg's cursor with the SQL compiled once:
    SQLAlchemy's execution context (parameter processing, result set-up, events)
    cost about as much Python per statement as psycopg's own work, and a
    booking writes several. Elsewhere (SQLite) it is a plain `conn.execute`.
    Statement timers on the engine's events do not see these."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(stmt, list(rows))
        return
    form = _driver_form(stmt, conn.dialect, tuple(rows[0]))
    sql = form.sql
    rows = [form.params(row) for row in rows]
    with _psycopg(conn, sql) as dbapi_conn, dbapi_conn.cursor() as cursor:
        if len(rows) == 1:
            cursor.execute(sql, rows[0])
        else:
            cursor.executemany(sql, rows)


def read_first(conn: Connection, stmt: Hot, params: Mapping[str, Any]) -> Any | None:
    """The first row of `stmt` (a SELECT, or a write with RETURNING), or None.

    On PostgreSQL straight from psycopg's cursor, as `write_many` does for writes:
    a named tuple of the statement's column labels, times in UTC as
    `db.types.UTCDateTime` gives them. Elsewhere SQLAlchemy's Row (the same
    attributes). Statement timers on the engine's events do not see these."""
    if conn.dialect.name != "postgresql":
        return conn.execute(stmt, params).first()
    form = _driver_form(stmt, conn.dialect, tuple(params))
    sql = form.sql
    params = form.params(params)
    with _psycopg(conn, sql) as dbapi_conn, dbapi_conn.cursor(row_factory=_utc_named_row) as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def _utc_named_row(cursor: Any) -> Callable[[Sequence[Any]], Any]:
    make = namedtuple_row(cursor)

    def row(values: Sequence[Any]) -> Any:
        return make([v.astimezone(UTC) if isinstance(v, datetime) else v for v in values])

    return row


def _check_alive(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Instead of `pool_pre_ping` (a `SELECT 1` round trip on every check-out):
    a pooled connection is idle, so the server has nothing to say on it unless
    it closed it (restart, idle timeout, `pg_terminate_backend`): then the socket
    is readable (EOF or a FATAL message). A readable or broken connection is
    discarded and the pool opens a new one (DisconnectionError); the check is one
    `poll` of the socket, no round trip. A connection that dies after this
    check fails its statement, as it would after a ping; the callers that are
    safe to repeat (confirm is idempotent by order number, quotes read) run once
    more on such a failure."""
    if dbapi_conn.closed or dbapi_conn.broken:
        raise DisconnectionError("connection closed")
    try:
        # poll(), not select(): a busy server process has sockets past FD_SETSIZE.
        poller = select.poll()
        poller.register(dbapi_conn.pgconn.socket, select.POLLIN)
        ready = poller.poll(0)
    except (OSError, ValueError) as exc:
        raise DisconnectionError(str(exc)) from exc
    if ready:
        raise DisconnectionError("the server closed the connection")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, open transactions.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers need no write lock: WAL lets them run beside the writer.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
