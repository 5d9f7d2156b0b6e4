"""Bookings per second: one earn + one spend per member booking, sequential, one process.

Each booking is what the till books after payment: `points.earn` of 100 points,
then `points.spend` of 50, both through the service layer (their own
transactions, with a store id and the POS order number as idempotency key) for a
brand with rolling expiry of 12 months (every earn and spend moves the lapse date
of all the member's open lots). Bookings go round-robin over the members, so
each member collects open lots as the run goes on. The first `--warmup` pairs
are not timed. At the end one query checks the ledger invariant for all members.

Usage:
    .venv/bin/python bench/bench_bookings.py [--db sqlite|postgresql|both]
        [--members 1000] [--pairs 2000] [--warmup 200]

Defaults: both databases, 1,000 members, 2,000 timed pairs after 200 untimed.
docs/performance.md was made with `--pairs 10000`. PostgreSQL runs in a scratch
database `loyalpos_bench_<random>` made through LOYALPOS_BENCH_PG_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and dropped afterwards;
SQLite in a temporary file.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from benchlib import (
    Clock,
    LedgerCheck,
    Timings,
    check_ledger,
    dialects,
    make_context,
    ms,
    print_machine,
    print_table,
    scratch_database,
)
from sqlalchemy import insert

from loyalpos.db.tables import members
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import points
from loyalpos.service.loyalty.points import Source

START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
EARN, SPEND = 100, 50


@dataclass(frozen=True, slots=True)
class Result:
    db: str
    pairs: int
    seconds: float
    pair: Timings
    earn: Timings
    spend: Timings
    check: LedgerCheck


def add_members(ctx: Context, brand_id: int, count: int) -> list[int]:
    rows = [
        {
            "brand_id": brand_id,
            "phone": f"139{i:08d}",
            "name": f"bench member {i}",
            "card_no": f"8{i:015d}",
            "points_balance": 0,
            "created_at": START,
        }
        for i in range(count)
    ]
    with ctx.transaction() as conn:
        conn.execute(insert(members), rows)
        ids = conn.execute(members.select().with_only_columns(members.c.id)).scalars()
        return sorted(ids)


def run(db: str, member_count: int, pairs: int, warmup: int) -> Result:
    with scratch_database(db) as url:
        clock = Clock(START)
        ctx = make_context(url, clock)
        try:
            brand = brands.create_brand(
                ctx, "bench", "Bench brand", policy=ExpiryPolicy(ExpiryMode.ROLLING, months=12)
            )
            store = brands.create_store(ctx, brand.id, "S001", "Bench store")
            member_ids = add_members(ctx, brand.id, member_count)

            def booking(i: int, earn: Timings, spend: Timings) -> None:
                member_id = member_ids[i % len(member_ids)]
                clock.advance(timedelta(seconds=30))
                order = f"POS-{i:08d}"
                earn.time(
                    lambda: points.earn(
                        ctx,
                        brand.id,
                        member_id,
                        EARN,
                        Source("order", order, "消费得积分", store.id, idempotency_key=order),
                    )
                )
                key = f"{order}-redeem"
                spend.time(
                    lambda: points.spend(
                        ctx,
                        brand.id,
                        member_id,
                        SPEND,
                        Source("order", order, "积分抵扣", store.id, idempotency_key=key),
                    )
                )

            scratch = Timings(), Timings()
            for i in range(warmup):
                booking(i, *scratch)
            pair, earn, spend = Timings(), Timings(), Timings()
            started = time.perf_counter_ns()
            for i in range(warmup, warmup + pairs):
                pair.time(partial(booking, i, earn, spend))
            seconds = (time.perf_counter_ns() - started) / 1e9
            check = check_ledger(ctx.engine, brand.id)
        finally:
            ctx.engine.dispose()
    return Result(db, pairs, seconds, pair, earn, spend, check)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=2000, help="timed earn+spend pairs")
    parser.add_argument("--warmup", type=int, default=200, help="untimed pairs first")
    args = parser.parse_args()
    kinds = dialects(args.db)
    print_machine("bench_bookings: earn + spend pairs", postgres="postgresql" in kinds)
    print(
        f"{args.members} members, {args.pairs} timed pairs after {args.warmup} warm-up pairs; "
        f"earn {EARN} + spend {SPEND} per booking; rolling expiry 12 months"
    )
    print()
    results = [run(db, args.members, args.pairs, args.warmup) for db in kinds]
    print_table(
        [
            "db",
            "pairs",
            "seconds",
            "pairs/s",
            "pair p50 ms",
            "pair p99 ms",
            "earn p50",
            "earn p99",
            "spend p50",
            "spend p99",
        ],
        [
            [
                r.db,
                str(r.pairs),
                f"{r.seconds:.2f}",
                f"{r.pairs / r.seconds:.1f}",
                ms(r.pair.percentile_ms(50)),
                ms(r.pair.percentile_ms(99)),
                ms(r.earn.percentile_ms(50)),
                ms(r.earn.percentile_ms(99)),
                ms(r.spend.percentile_ms(50)),
                ms(r.spend.percentile_ms(99)),
            ]
            for r in results
        ],
    )
    print()
    for r in results:
        print(f"{r.db}: {r.check}")


if __name__ == "__main__":
    main()
