"""Engines for the embedded SQLite default and for PostgreSQL.

SQLite gets WAL, foreign keys, a busy timeout and `BEGIN IMMEDIATE`, so that
two writers queue for the write lock instead of failing half-way through a
booking when one tries to upgrade a read lock.
"""

from __future__ import annotations

import re
import select
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine, Select, Table, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.expression import Insert, Update, UpdateBase

READ_ONLY = "loyalpos_read_only"

# How long a new PostgreSQL connection may take (unless the URL says
# `?connect_timeout=`). Without it, a database host that drops packets (a
# failover, a cut network) holds each request for the system's TCP timeout,
# about two minutes, and the till gives up before the 503 that says "retry".
CONNECT_TIMEOUT_SECONDS = 5


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
    if "connect_timeout" not in parsed.query:
        parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)})
    engine = create_engine(parsed, pool_size=pool_size, max_overflow=pool_size)
    event.listen(engine, "checkout", _check_alive)
    return engine


@contextmanager
def deferred(conn: Connection) -> Iterator[None]:
    """Writes whose results nobody reads, sent together at the end of the block.

    On PostgreSQL every `write_many` in the block is kept and the end of the block
    sends them as one statement (`_Batch`): one message, one round trip, one
    wake-up of the server process, where sending them one by one (even in
    psycopg's pipeline mode, which flushes each) cost a wake-up each; under load
    on 2 vCPUs those context switches were a tenth of a server process's time per
    confirm. A write that fails raises at the end of the block, as a SQLAlchemy
    `DBAPIError` like any other, and the transaction is rolled back by its owner
    as usual. Elsewhere (SQLite: no round trips) the writes run one by one.

    Nothing in the block may read what it wrote, and its rows may not refer to
    each other (they are written side by side, from one snapshot). Statements
    other than `write_many` (`conn.execute`) run at once, before the kept ones.
    A block that raises sends nothing; a block inside another adds to the outer
    one's batch."""
    if conn.dialect.name != "postgresql" or _BATCH in conn.info:
        yield
        return
    batch = _Batch(conn.dialect)
    conn.info[_BATCH] = batch
    try:
        yield
    finally:
        del conn.info[_BATCH]
    batch.send(conn)


_BATCH = "loyalpos.deferred"
_PARAM = re.compile(r"(?<!%)%\((\w+)\)s")


class _Batch:
    """Writes kept for one statement: each INSERT a data-modifying CTE over
    `unnest` of one array per column (so the SQL, and psycopg's prepared
    statement, depends on which writes there are, not on how many rows), each
    UPDATE row a CTE of its own with its parameters renamed apart. The arrays go
    in binary (`%(name)b`): the text form escapes every string element with a
    regular expression, 0.2 ms of Python per confirm.

    All CTEs of a statement see the same snapshot, so a write to a table an
    UPDATE of the batch already touched, or an UPDATE of a table already written,
    would not see the earlier one: the batch is sent first and a new one begun,
    keeping the order of the writes."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.parts: list[str] = []
        self.params: dict[str, Any] = {}
        self.written: set[str] = set()
        self.updated: set[str] = set()

    def add(self, conn: Connection, stmt: Hot, rows: Sequence[Mapping[str, Any]]) -> None:
        table = stmt.table.name  # type: ignore[union-attr]
        is_update = isinstance(stmt, Update)
        if table in self.updated or (is_update and table in self.written):
            self.send(conn)
        self.written.add(table)
        form = _driver_form(stmt, self.dialect, tuple(rows[0]))
        if is_update:
            self.updated.add(table)
            for row in rows:
                self._update(form, row)
        elif isinstance(stmt, Insert):
            self._insert(stmt, form, rows)
        else:
            raise TypeError(f"deferred writes are INSERT or UPDATE, not {type(stmt).__name__}")

    def _insert(self, stmt: Insert, form: _DriverForm, rows: Sequence[Mapping[str, Any]]) -> None:
        prefix = f"w{len(self.parts)}"
        values = [form.params(row) for row in rows]
        into, columns = _unnest_form(stmt, self.dialect, tuple(values[0]))
        arrays = []
        for name, array_type in columns:
            self.params[f"{prefix}_{name}"] = [v[name] for v in values]
            arrays.append(f"%({prefix}_{name})b::{array_type}")
        self.parts.append(f"{prefix} AS ({into} SELECT * FROM unnest({', '.join(arrays)}))")

    def _update(self, form: _DriverForm, row: Mapping[str, Any]) -> None:
        prefix = f"w{len(self.parts)}"
        if "%%" in form.sql:
            raise ValueError("a deferred UPDATE may not hold a literal %")
        for name, value in form.params(row).items():
            self.params[f"{prefix}_{name}"] = value
        sql = _PARAM.sub(lambda m: f"%({prefix}_{m.group(1)})s", form.sql)
        self.parts.append(f"{prefix} AS ({sql})")

    def send(self, conn: Connection) -> None:
        if not self.parts:
            return
        sql = "WITH " + ", ".join(self.parts) + " SELECT 1"
        params, self.params, self.parts = self.params, {}, []
        self.written.clear()
        self.updated.clear()
        with _psycopg(conn, sql) as dbapi_conn, dbapi_conn.cursor() as cursor:
            cursor.execute(sql, params)


@contextmanager
def _psycopg(conn: Connection, sql: str | None = None) -> Iterator[psycopg.Connection[Any]]:
    """The driver's connection under `conn`; psycopg's errors leave the block as
    SQLAlchemy's (IntegrityError for a key, ...), as if SQLAlchemy had run `sql`."""
    dbapi_conn = conn.connection.dbapi_connection
    assert isinstance(dbapi_conn, psycopg.Connection)
    try:
        yield dbapi_conn
    except psycopg.Error as exc:
        if dbapi_conn.broken:
            # What SQLAlchemy does when its own statement loses the connection:
            # the pool drops it, and the transaction's rollback does not try the
            # dead socket (whose "connection is lost" would replace this error,
            # the one that says why: a restart, a network cut).
            conn.invalidate(exc)
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


_unnest_forms: WeakKeyDictionary[
    Insert, dict[tuple[str, ...], tuple[str, list[tuple[str, str]]]]
] = WeakKeyDictionary()


def _unnest_form(
    stmt: Insert, dialect: Dialect, names: tuple[str, ...]
) -> tuple[str, list[tuple[str, str]]]:
    """`INSERT INTO table (columns)` and each column's array type, worked out once."""
    forms = _unnest_forms.setdefault(stmt, {})
    found = forms.get(names)
    if found is None:
        quote = dialect.identifier_preparer
        table = stmt.table
        assert isinstance(table, Table)
        into = (
            f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(n) for n in names)})"
        )
        types = [(n, f"{table.c[n].type.compile(dialect=dialect)}[]") for n in names]
        found = forms[names] = (into, types)
    return found


def write_many(conn: Connection, stmt: Hot, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run `stmt` (an INSERT or UPDATE whose result nobody reads) once per row.

    On PostgreSQL it goes straight to psycopg's cursor with the SQL compiled once:
    SQLAlchemy's execution context (parameter processing, result set-up, events)
    cost about as much Python per statement as psycopg's own work, and a
    booking writes several. Several rows of an INSERT go as one statement over
    arrays (as in `deferred`, which keeps the writes for the end of its block).
    Elsewhere (SQLite) it is a plain `conn.execute`. Statement timers on the
    engine's events do not see these."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(stmt, list(rows))
        return
    batch: _Batch | None = conn.info.get(_BATCH)
    if batch is not None:
        batch.add(conn, stmt, rows)
        return
    if len(rows) > 1 and isinstance(stmt, Insert):
        # Several rows: one statement over arrays, one message (an executemany
        # sends each row).
        alone = _Batch(conn.dialect)
        alone.add(conn, stmt, rows)
        alone.send(conn)
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
