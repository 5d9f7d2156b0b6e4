"""What every use case needs: the engine, the settings and the clock.

The clock is injected so that tests and the late-booking path can say what
time it is; nothing in the service layer calls `datetime.now()` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from loyalpos.config import Settings
from loyalpos.db.engine import READ_ONLY, make_engine
from loyalpos.db.outage import outage
from loyalpos.domain.errors import DatabaseUnavailable

T = TypeVar("T")

# PostgreSQL's "try again" answers: serialization failure and deadlock.
RETRYABLE_SQLSTATES = {"40001", "40P01"}


class RetryTransaction(Exception):
    """Raised inside a transaction when another one changed the rows it planned on."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    engine: Engine
    settings: Settings
    clock: Callable[[], datetime] = field(default=utc_now)
    # Values derived from immutable rows (published rule sets), per process.
    cache: dict[Any, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        return cls(make_engine(settings.database_url), settings)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def now(self, now: datetime | None = None) -> datetime:
        return now if now is not None else self.clock()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Connection]:
        """One transaction: commits when the block ends, rolls back if it raises.

        `read_only` lets SQLite readers skip the write lock; it does not stop writes.
        """
        with self.engine.connect() as conn:
            if read_only:
                conn = conn.execution_options(**{READ_ONLY: True})
            trans = conn.begin()
            try:
                yield conn
            except BaseException:
                if trans.is_active:
                    trans.rollback()
                raise
            if not trans.is_active:
                return  # the block rolled back itself
            try:
                trans.commit()
            except Exception as exc:
                # Lost while committing, the server may have committed or not:
                # the caller must not be told that sending it again is safe.
                down = outage(exc)
                if down is None:
                    raise
                raise DatabaseUnavailable(down.reason, committing=True) from exc

    def remember(self, key: Any, ttl: float, load: Callable[[], T]) -> T:
        """A value from `load`, kept for `ttl` seconds in this process.

        For rows read on every request that change rarely (API keys, the list of
        published rule versions, stores): a change shows after at most `ttl`.
        """
        now = time.monotonic()
        hit = self.cache.get(("ttl", key))
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        value = load()
        self.cache[("ttl", key)] = (now + ttl, value)
        return value

    def recalls(self, key: Any) -> bool:
        """Whether `remember(key, ...)` would answer from the cache (no `load`)."""
        hit = self.cache.get(("ttl", key))
        return hit is not None and hit[0] > time.monotonic()

    def forget(self, key: Any) -> None:
        self.cache.pop(("ttl", key), None)

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a transaction, retrying when PostgreSQL asks us to."""
        for attempt in range(8):
            try:
                with self.transaction() as conn:
                    return work(conn)
            except RetryTransaction:
                pass
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                    raise
            time.sleep(0.005 * (2**attempt))
        raise RuntimeError("transaction kept conflicting; gave up after 8 attempts")
