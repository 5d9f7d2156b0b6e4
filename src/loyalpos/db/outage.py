"""Which database errors mean "the database is not there right now".

A PostgreSQL restart, a failover, a network cut or a full connection table
surface as many exception types: SQLAlchemy's `OperationalError` around
psycopg's (connection refused, "server closed the connection unexpectedly",
`57P01 terminating connection due to administrator command`), the pool's
`DisconnectionError` and `TimeoutError`, and the same psycopg errors raised
through `db.engine`'s direct paths (`read_first`, `write_many`, `deferred`),
which `_psycopg` turns into SQLAlchemy's. `outage` reads them all as one
typed error, `DatabaseUnavailable`, which the API answers with 503 and
`Retry-After` (api/errors.py), whichever route or thread raised it.

Errors that are the statement's fault (a constraint, bad SQL, SQLite's "no
such table", which is an `OperationalError` too) are not outages: they stay
what they are, bugs answered with 500.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from loyalpos.domain.errors import DatabaseUnavailable

# SQLSTATEs of a server that is unreachable, going away or overloaded: the
# connection exceptions of class 08 (not 08P01, a protocol violation, which is a
# bug), class 53 (too many connections, disk full, out of memory), the
# shutdowns of class 57 (57P01-57P05; not 57014, a cancelled statement, which
# fails again the same way) and 58030, an I/O error.
_PG_OUTAGE_STATES = frozenset(
    {"08000", "08001", "08003", "08004", "08006", "08007"}
    | {"53000", "53100", "53200", "53300", "53400"}
    | {"57P01", "57P02", "57P03", "57P04", "57P05", "58030"}
)

# SQLite's primary result codes of a file that cannot be used now: busy past
# the busy timeout, locked, out of memory, I/O error, disk full, cannot open.
_SQLITE_OUTAGE_CODES = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
}


def outage(exc: BaseException) -> DatabaseUnavailable | None:
    """`exc` as a `DatabaseUnavailable` when it says the database could not be
    reached or dropped the connection (the request may be sent again as is);
    None for any other error. `reason` is the driver's first line, for the log."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    if isinstance(exc, DisconnectionError | PoolTimeout):
        return DatabaseUnavailable(_first_line(exc))
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or _driver_outage(exc.orig):
            return DatabaseUnavailable(_first_line(exc.orig if exc.orig is not None else exc))
        return None
    if _driver_outage(exc):
        return DatabaseUnavailable(_first_line(exc))
    return None


def _driver_outage(exc: BaseException | None) -> bool:
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        # No SQLSTATE: the client library's own failure (refused, reset, EOF).
        return state is None or state in _PG_OUTAGE_STATES
    if isinstance(exc, sqlite3.OperationalError):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_OUTAGE_CODES
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
