"""Expiry of many lots in one run of `jobs.expire_points` (target: 1,000,000 lots < 10 s on
PostgreSQL).

The fixture is bulk-loaded with set-based SQL (no Python loop over rows):
`--lots / --lots-per-member` members, each with `--lots-per-member` earned lots
of 10-100 points, one `earn` entry per lot, and `members.points_balance` set to
the sum of the member's lots, so the ledger invariant holds before the run. The
lots are inserted in time order (lot k of every member, then lot k+1), and all
of them lapse on or before the expiry date, so every lot is due. Then VACUUM
ANALYZE (SQLite: ANALYZE), then:

1. `expire_points(ctx, as_of)` once, timed: seconds, lots/s, and the time of
   each SQL statement it ran;
2. the same call again, timed: must expire 0 lots (idempotent) and be fast;
3. one query checking that every member's balance == sum of their entries ==
   sum of their lots' remaining (all zero now).

Usage:
    .venv/bin/python bench/bench_expiry.py [--db postgresql|sqlite|both]
        [--lots 1000000] [--lots-per-member 10]

Defaults: PostgreSQL, 1,000,000 lots (100,000 members x 10): loading takes about
a minute. `--lots 100000` for a quick run. PostgreSQL runs in a scratch database
`loyalpos_bench_<random>` made through LOYALPOS_BENCH_PG_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and dropped afterwards;
SQLite in a temporary file.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

from benchlib import (
    LedgerCheck,
    StatementTimer,
    check_ledger,
    dialects,
    make_context,
    print_machine,
    print_table,
    scratch_database,
)
from sqlalchemy import Connection, Engine, TextClause, bindparam, text

from loyalpos.db.types import UTCDateTime
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.service.base import brands
from loyalpos.service.loyalty import jobs
from loyalpos.service.loyalty.jobs import ExpiryRun

AS_OF = date(2026, 11, 23)
EARNED_AT = datetime(2025, 11, 1, 4, 0, tzinfo=UTC)
RUN_AT = datetime(2026, 11, 22, 16, 5, tzinfo=UTC)  # 00:05 on 2026-11-23 in Asia/Shanghai


def _series(db: str, name: str, count: str) -> str:
    """A CTE `name(x)` counting 1..count (SQLite has no generate_series built in)."""
    if db == "postgresql":
        return f"{name}(x) AS (SELECT generate_series(1, {count}))"
    return f"{name}(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM {name} WHERE x < {count})"


def _days_before_as_of(db: str, days: str) -> str:
    if db == "postgresql":
        return f"CAST(:as_of AS DATE) - CAST({days} AS INTEGER)"
    return f"date(:as_of, '-' || ({days}) || ' days')"


def load_fixture(engine: Engine, db: str, brand_id: int, members: int, per_member: int) -> None:
    """Members, lots and earn entries, consistent with each other, in four statements."""
    earned_at = bindparam("earned_at", EARNED_AT, type_=UTCDateTime())
    recursive = "RECURSIVE " if db == "sqlite" else ""
    as_of: date | str = AS_OF if db == "postgresql" else AS_OF.isoformat()
    common: dict[str, object] = {"brand_id": brand_id}
    steps: list[tuple[TextClause, dict[str, object]]] = [
        (
            text(
                f"""
                WITH {recursive}{_series(db, "m", ":members")}
                INSERT INTO members (brand_id, phone, name, card_no, tier, points_balance,
                                     created_at)
                SELECT :brand_id, '139' || {_pad(db, 8)}, 'bench member ' || x,
                       '8' || {_pad(db, 15)}, 'normal', 0, :earned_at
                FROM m
                """
            ).bindparams(earned_at),
            {**common, "members": members},
        ),
        (
            text(
                f"""
                WITH {recursive}{_series(db, "k", ":per_member")}
                INSERT INTO point_lots (brand_id, member_id, original_points, remaining, is_debt,
                                        expires_on, available_at, created_at)
                SELECT m.brand_id, m.id, 10 + (m.id * 7 + k.x * 13) % 91,
                       10 + (m.id * 7 + k.x * 13) % 91, FALSE,
                       {_days_before_as_of(db, "(m.id + k.x) % 28")}, :earned_at, :earned_at
                FROM k CROSS JOIN members AS m
                WHERE m.brand_id = :brand_id
                ORDER BY k.x, m.id
                """
            ).bindparams(earned_at),
            {**common, "per_member": per_member, "as_of": as_of},
        ),
        (
            text(
                """
                INSERT INTO point_entries (brand_id, member_id, kind, points, lot_id,
                                           source_type, source_ref, description, created_at)
                SELECT brand_id, member_id, 'earn', original_points, id, 'order',
                       'BENCH-' || id, '消费得积分', created_at
                FROM point_lots
                WHERE brand_id = :brand_id
                ORDER BY id
                """
            ),
            common,
        ),
        (
            text(
                """
                UPDATE members SET points_balance = l.total
                FROM (SELECT member_id, sum(remaining) AS total FROM point_lots
                      WHERE brand_id = :brand_id GROUP BY member_id) AS l
                WHERE members.id = l.member_id
                """
            ),
            common,
        ),
    ]
    with engine.begin() as conn:
        for statement, params in steps:
            conn.execute(statement, params)


def _pad(db: str, width: int) -> str:
    if db == "postgresql":
        return f"lpad(x::text, {width}, '0')"
    return f"substr('{'0' * (width - 1)}' || x, -{width}, {width})"


def vacuum_analyze(engine: Engine, db: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if db == "postgresql" else "ANALYZE"))


def counts(conn: Connection, brand_id: int) -> tuple[int, int, int]:
    row = conn.execute(
        text(
            """
            SELECT (SELECT count(*) FROM point_lots WHERE brand_id = :b AND remaining > 0),
                   (SELECT count(*) FROM point_entries WHERE brand_id = :b AND kind = 'expire'),
                   (SELECT coalesce(sum(points_balance), 0) FROM members WHERE brand_id = :b)
            """
        ),
        {"b": brand_id},
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


@dataclass(frozen=True, slots=True)
class Result:
    db: str
    lots: int
    members: int
    load_s: float
    first: ExpiryRun
    first_s: float
    statements: list[tuple[str, float]]
    second: ExpiryRun
    second_s: float
    check: LedgerCheck
    open_lots_after: int
    expire_entries: int


def _by_statement(records: list[tuple[str, int]]) -> list[tuple[str, float]]:
    totals: dict[str, int] = defaultdict(int)
    for words, ns in records:
        totals[words] += ns
    return [(words, ns / 1e9) for words, ns in totals.items()]


def run(db: str, lots: int, per_member: int) -> Result:
    member_count = lots // per_member
    with scratch_database(db) as url:
        ctx = make_context(url)
        try:
            brand = brands.create_brand(
                ctx, "bench", "Bench brand", policy=ExpiryPolicy(ExpiryMode.FIXED, months=12)
            )
            started = time.perf_counter_ns()
            load_fixture(ctx.engine, db, brand.id, member_count, per_member)
            vacuum_analyze(ctx.engine, db)
            load_s = (time.perf_counter_ns() - started) / 1e9
            with ctx.engine.connect() as conn:
                loaded, _, points_before = counts(conn, brand.id)
            print(
                f"{db}: loaded {loaded} lots, {member_count} members, {points_before} points "
                f"in {load_s:.1f} s (load + vacuum/analyze)",
                flush=True,
            )
            assert loaded == member_count * per_member
            timer = StatementTimer(ctx.engine)
            with timer.recording() as records:
                started = time.perf_counter_ns()
                first = jobs.expire_points(ctx, AS_OF, now=RUN_AT)
                first_s = (time.perf_counter_ns() - started) / 1e9
            statements = _by_statement(records)
            started = time.perf_counter_ns()
            second = jobs.expire_points(ctx, AS_OF, now=RUN_AT)
            second_s = (time.perf_counter_ns() - started) / 1e9
            check = check_ledger(ctx.engine, brand.id)
            with ctx.engine.connect() as conn:
                open_after, expire_entries, _ = counts(conn, brand.id)
        finally:
            ctx.engine.dispose()
    return Result(
        db,
        loaded,
        member_count,
        load_s,
        first,
        first_s,
        statements,
        second,
        second_s,
        check,
        open_after,
        expire_entries,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Expiry of many lots in one run.")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="postgresql")
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--lots-per-member", type=int, default=10)
    args = parser.parse_args()
    if args.lots < args.lots_per_member or args.lots_per_member < 1:
        parser.error("--lots must be at least --lots-per-member, which must be positive")
    kinds = dialects(args.db)
    print_machine("bench_expiry: expire_points over due lots", postgres="postgresql" in kinds)
    print(
        f"{args.lots} lots = {args.lots // args.lots_per_member} members x "
        f"{args.lots_per_member} lots, all due on {AS_OF}; target (PostgreSQL, 1M lots) < 10 s"
    )
    print()
    results = [run(db, args.lots, args.lots_per_member) for db in kinds]
    print()
    print_table(
        ["db", "run", "lots expired", "points", "members", "seconds", "lots/s"],
        [
            row
            for r in results
            for row in (
                [
                    r.db,
                    "first",
                    str(r.first.lots),
                    str(r.first.points),
                    str(r.first.members),
                    f"{r.first_s:.2f}",
                    f"{r.first.lots / r.first_s:,.0f}",
                ],
                [
                    r.db,
                    "again (idempotent)",
                    str(r.second.lots),
                    str(r.second.points),
                    str(r.second.members),
                    f"{r.second_s:.3f}",
                    "-",
                ],
            )
        ],
    )
    for r in results:
        print()
        print(f"{r.db}: first run, time per SQL statement")
        print_table(
            ["seconds", "statement"],
            [[f"{s:.2f}", words] for words, s in r.statements]
            + [
                [
                    f"{r.first_s - sum(s for _, s in r.statements):.2f}",
                    "(rest: Python, begin, commit)",
                ]
            ],
        )
    print()
    for r in results:
        verdict = "met" if r.first_s < 10 else "MISSED"
        target = f"; target < 10 s {verdict}" if r.db == "postgresql" and r.lots >= 1e6 else ""
        print(
            f"{r.db}: {r.check}; lots still open: {r.open_lots_after}; "
            f"expire entries: {r.expire_entries}{target}"
        )


if __name__ == "__main__":
    main()
