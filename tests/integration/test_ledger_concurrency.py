"""Real concurrent connections racing on one member's points (PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date

import pytest

from loyalpos.domain.errors import InsufficientPoints
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import jobs, points
from loyalpos.service.loyalty.points import Source
from tests.conftest import Clock, make_context
from tests.integration.ledger_helpers import at, invariant, new_brand, new_member

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_ctx(pg_url: str, clock: Clock) -> Context:
    from tests.conftest import _empty_pg

    context = make_context(pg_url, clock)
    _empty_pg(context.engine)
    return context


def race(workers: int, task: Callable[[int], object]) -> list[object]:
    """Start `workers` threads at the same instant; collect results or errors."""
    barrier = threading.Barrier(workers)
    results: list[object] = [None] * workers

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = task(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_racing_spends_never_overdraw(pg_ctx: Context) -> None:
    brand = new_brand(pg_ctx)
    m = new_member(pg_ctx, brand)
    points.earn(pg_ctx, brand.id, m, 1000, Source("order", "seed"))
    results = race(8, lambda i: points.spend(pg_ctx, brand.id, m, 300, Source("order", f"S{i}")))
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 3
    assert all(isinstance(r, InsufficientPoints) for r in lost)
    assert invariant(pg_ctx, m) == 100


def test_many_rounds_of_racing_spends_and_earns_keep_the_ledger_exact(pg_ctx: Context) -> None:
    brand = new_brand(pg_ctx, ExpiryPolicy(ExpiryMode.ROLLING, months=12))
    m = new_member(pg_ctx, brand)
    points.earn(pg_ctx, brand.id, m, 500, Source("order", "seed"))

    def task(i: int) -> object:
        if i % 3 == 0:
            return points.earn(pg_ctx, brand.id, m, 50, Source("order", f"E{i}"))
        return points.spend(pg_ctx, brand.id, m, 70, Source("order", f"S{i}"))

    for _ in range(5):
        race(8, task)
        assert invariant(pg_ctx, m) >= 0


def test_same_idempotency_key_from_many_tills_books_once(pg_ctx: Context) -> None:
    brand = new_brand(pg_ctx)
    m = new_member(pg_ctx, brand)
    src = Source("order", "NO-1", idempotency_key="store1:NO-1")
    results = race(8, lambda i: points.earn(pg_ctx, brand.id, m, 25, src))
    ids = {r.id for r in results if not isinstance(r, Exception)}  # type: ignore[attr-defined]
    assert len(ids) == 1, results
    assert invariant(pg_ctx, m) == 25


def test_expiry_job_racing_spends_stays_consistent(pg_ctx: Context) -> None:
    brand = new_brand(pg_ctx, ExpiryPolicy(ExpiryMode.FIXED, months=1))
    ids = [new_member(pg_ctx, brand, f"1380013{8000 + i:04d}") for i in range(6)]
    for m in ids:
        points.earn(pg_ctx, brand.id, m, 100, Source("order", f"old{m}"), now=at("2024-01-01"))
        points.earn(pg_ctx, brand.id, m, 100, Source("order", f"new{m}"), now=at("2024-01-20"))

    def task(i: int) -> object:
        if i == 0:
            return jobs.expire_points(pg_ctx, date(2024, 2, 1), now=at("2024-02-01", 1))
        return points.spend(
            pg_ctx, brand.id, ids[i % len(ids)], 150, Source("order", f"S{i}"), now=at("2024-01-31")
        )

    race(7, task)
    for m in ids:
        assert invariant(pg_ctx, m) >= 0
    jobs.expire_points(pg_ctx, date(2024, 2, 1), now=at("2024-02-01", 1))
    for m in ids:
        assert invariant(pg_ctx, m) >= 0
