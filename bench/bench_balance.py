"""Balance look-up for a member with 10,000 ledger entries (target: `points.balance` < 2 ms).

The member is built through the service layer, as a till would: `--entries`
bookings, half `points.earn` of 100 points and half `points.spend` of 60, one
every 30 minutes of simulated time (10,000 entries span about 208 days), for a
brand with fixed expiry of 12 months and `pending_days=7`. The first 400
bookings are earns (nothing is spendable during the first week), the rest
interleave. Spends use the earliest-lapsing lots, so the old lots are closed and
the recent ones open; the last week's earns are still pending. Other members
(`--other-members`, 10 earned lots each, bulk-inserted) share the tables.

Then, after `--warmup` untimed calls of each, `--lookups` timed calls of:
`points.balance` (the till's read), `points.history(limit=50)`, and
`points.expiry_schedule`, plus the two SQL queries behind `balance` run on an
already open connection (what the database itself costs). Prints p50/p99/mean.

Usage:
    .venv/bin/python bench/bench_balance.py [--db sqlite|postgresql|both]
        [--entries 10000] [--lookups 2000] [--warmup 200] [--other-members 1000]

Defaults are the target's sizes; building the member takes 1-2 minutes per
database, `--entries 2000` (the minimum) is quicker. PostgreSQL runs in a scratch database
`loyalpos_bench_<random>` made through LOYALPOS_BENCH_PG_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and dropped afterwards;
SQLite in a temporary file.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
from sqlalchemy import Connection, Engine, insert, select, text

from loyalpos.db import ledger_repo as repo
from loyalpos.db.engine import READ_ONLY
from loyalpos.db.tables import inserted_id, members, point_entries, point_lots
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import points
from loyalpos.service.loyalty.points import Source

START = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)
STEP = timedelta(minutes=30)
EARN, SPEND, FIRST_EARNS = 100, 60, 400


@dataclass(frozen=True, slots=True)
class Built:
    member_id: int
    brand_id: int
    seconds: float
    first_ms: float
    last_ms: float


@dataclass(frozen=True, slots=True)
class Result:
    db: str
    built: Built
    timings: dict[str, Timings]
    shape: dict[str, int]
    answer: str
    check: LedgerCheck


def plan(entries: int) -> list[bool]:
    """True for an earn, False for a spend: `FIRST_EARNS` earns, then evenly mixed."""
    earns = (entries + 1) // 2
    spends = entries - earns
    first = min(FIRST_EARNS, earns)
    ops = [True] * first
    left_e, left_s = earns - first, spends
    done_e = done_s = 0
    while done_e < left_e or done_s < left_s:
        spend = done_s < left_s and (done_e >= left_e or done_s * left_e <= done_e * left_s)
        ops.append(not spend)
        done_s += spend
        done_e += not spend
    return ops


def add_other_members(ctx: Context, brand_id: int, count: int) -> None:
    """`count` members with 10 earned lots each, inserted in bulk."""
    if count == 0:
        return
    with ctx.transaction() as conn:
        conn.execute(
            insert(members),
            [
                {
                    "brand_id": brand_id,
                    "phone": f"137{i:08d}",
                    "name": f"other member {i}",
                    "card_no": f"7{i:015d}",
                    "points_balance": 10 * EARN,
                    "created_at": START,
                }
                for i in range(count)
            ],
        )
        ids = list(conn.execute(select(members.c.id).where(members.c.phone.like("137%"))).scalars())
        lots = [
            {
                "brand_id": brand_id,
                "member_id": member_id,
                "original_points": EARN,
                "remaining": EARN,
                "expires_on": date(2027, 4, 1),
                "available_at": START,
                "created_at": START,
            }
            for member_id in ids
            for _ in range(10)
        ]
        conn.execute(insert(point_lots), lots)
        rows = conn.execute(
            select(point_lots.c.id, point_lots.c.member_id).where(point_lots.c.member_id.in_(ids))
        ).all()
        conn.execute(
            insert(point_entries),
            [
                {
                    "brand_id": brand_id,
                    "member_id": member_id,
                    "kind": "earn",
                    "points": EARN,
                    "lot_id": lot_id,
                    "source_type": "import",
                    "description": "bench",
                    "created_at": START,
                }
                for lot_id, member_id in rows
            ],
        )


def build_member(ctx: Context, clock: Clock, entries: int, other_members: int) -> Built:
    brand = brands.create_brand(
        ctx,
        "bench",
        "Bench brand",
        policy=ExpiryPolicy(ExpiryMode.FIXED, months=12),
        pending_days=7,
    )
    store = brands.create_store(ctx, brand.id, "S001", "Bench store")
    add_other_members(ctx, brand.id, other_members)
    with ctx.transaction() as conn:
        member_id = inserted_id(
            conn.execute(
                insert(members).values(
                    brand_id=brand.id,
                    phone="13900000000",
                    name="busy member",
                    card_no="8000000000000000",
                    points_balance=0,
                    created_at=START,
                )
            )
        )
    ops = plan(entries)
    window = max(1, min(100, len(ops) // 10))
    per_op = Timings()
    started = time.perf_counter_ns()
    for i, is_earn in enumerate(ops):
        clock.advance(STEP)
        source = Source("order", f"POS-{i:06d}", "bench", store.id)
        if is_earn:
            per_op.time(partial(points.earn, ctx, brand.id, member_id, EARN, source))
        else:
            per_op.time(partial(points.spend, ctx, brand.id, member_id, SPEND, source))
        if (i + 1) % 2000 == 0:
            print(f"  built {i + 1}/{len(ops)} entries", flush=True)
    seconds = (time.perf_counter_ns() - started) / 1e9
    first = sum(per_op.samples[:window]) / window / 1e6
    last = sum(per_op.samples[-window:]) / window / 1e6
    return Built(member_id, brand.id, seconds, first, last)


def shape(engine: Engine, member_id: int, now: datetime) -> dict[str, int]:
    """What the busy member's ledger looks like."""
    with engine.connect() as conn:
        lots = conn.execute(
            select(point_lots.c.remaining, point_lots.c.available_at).where(
                point_lots.c.member_id == member_id
            )
        ).all()
        entries = conn.execute(
            select(point_entries.c.id).where(point_entries.c.member_id == member_id)
        ).all()
    return {
        "entries": len(entries),
        "lots": len(lots),
        "open lots": sum(1 for r, _ in lots if r > 0),
        "pending lots": sum(1 for r, a in lots if r > 0 and a > now),
    }


def run(db: str, entries: int, lookups: int, warmup: int, other_members: int) -> Result:
    with scratch_database(db) as url:
        clock = Clock(START)
        ctx = make_context(url, clock)
        try:
            print(f"{db}: building a member with {entries} entries through the service", flush=True)
            built = build_member(ctx, clock, entries, other_members)
            with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE" if db == "postgresql" else "ANALYZE"))
            brand_id, member_id, now = built.brand_id, built.member_id, clock.now

            opened: list[Connection] = []

            def on_open_connection(query: Callable[[Connection], object]) -> Callable[[], object]:
                # Read-only: on SQLite a plain connection would hold the write lock.
                conn = ctx.engine.connect().execution_options(**{READ_ONLY: True})
                opened.append(conn)
                return lambda: query(conn)

            calls: dict[str, Callable[[], object]] = {
                "points.balance": lambda: points.balance(ctx, brand_id, member_id),
                "points.history(limit=50)": lambda: points.history(
                    ctx, brand_id, member_id, limit=50
                ),
                "points.expiry_schedule": lambda: points.expiry_schedule(ctx, brand_id, member_id),
                "  SQL: balance_parts only": on_open_connection(
                    lambda c: repo.balance_parts(c, brand_id, member_id, now, now.date())
                ),
                "  SQL: expiry_schedule only": on_open_connection(
                    lambda c: repo.expiry_schedule(c, member_id)
                ),
            }
            timings: dict[str, Timings] = {}
            for name, call in calls.items():
                for _ in range(warmup):
                    call()
                timings[name] = Timings()
                for _ in range(lookups):
                    timings[name].time(call)
            for conn in opened:
                conn.close()
            answer = points.balance(ctx, brand_id, member_id)
            schedule = points.expiry_schedule(ctx, brand_id, member_id)
            answer_text = (
                f"balance total={answer.total} available={answer.available} "
                f"pending={answer.pending}; {len(schedule)} lapse dates"
            )
            check = check_ledger(ctx.engine, brand_id)
            ledger_shape = shape(ctx.engine, member_id, now)
        finally:
            ctx.engine.dispose()
    return Result(db, built, timings, ledger_shape, answer_text, check)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Balance look-up for a member with a long history."
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--other-members", type=int, default=1000)
    args = parser.parse_args()
    if args.entries < 2000:
        parser.error("--entries must be at least 2000 (the first week's earns are pending)")
    kinds = dialects(args.db)
    print_machine(
        "bench_balance: balance of a member with a long ledger", postgres="postgresql" in kinds
    )
    print(
        f"{args.entries} entries (earn {EARN} / spend {SPEND}, pending_days=7, fixed expiry 12 "
        f"months); {args.lookups} timed calls after {args.warmup} warm-up calls; target: "
        "points.balance < 2 ms"
    )
    print()
    results = [run(db, args.entries, args.lookups, args.warmup, args.other_members) for db in kinds]
    print()
    print_table(
        ["db", "call", "p50 ms", "p99 ms", "mean ms", "max ms"],
        [
            [
                r.db,
                name,
                ms(t.percentile_ms(50)),
                ms(t.percentile_ms(99)),
                ms(t.mean_ms),
                ms(t.percentile_ms(100)),
            ]
            for r in results
            for name, t in r.timings.items()
        ],
    )
    print()
    for r in results:
        b = r.built
        balance = r.timings["points.balance"]
        met = "met" if balance.percentile_ms(99) < 2 else "MISSED"
        print(f"{r.db}: member {r.shape}; {r.answer}")
        print(
            f"{r.db}: built in {b.seconds:.1f} s; one booking took {b.first_ms:.2f} ms (mean of "
            f"the first bookings) and {b.last_ms:.2f} ms (mean of the last)"
        )
        print(f"{r.db}: {r.check}")
        print(f"{r.db}: target points.balance p99 < 2 ms {met}")


if __name__ == "__main__":
    main()
