"""The console's member pages at scale (issue 14: under 1 s with 1,000,000 members and
5,000,000 ledger entries; under 300 ms on the demo data).

The demo brand (loyalpos.service.admin.demo.seed), then `--members` members
bulk-inserted by SQL (phones +86166xxxxxxxx, cards 9 + 15 digits, names of a
common surname, a given name and a number: 王伟17, 李娜230...), each with
`--entries-per-member` ledger entries of 100 points and one open lot of their
sum lapsing in 2027-2031, so the ledger invariant holds. Then, in process through
the app (TestClient, an operator signed in, the page rendered), after `--warmup`
untimed calls, `--lookups` timed calls of each page:

- search by a bulk member's phone, by a demo member's card number, by a name prefix (王伟1, many matches: the
  first 50), by a one-character prefix (王: a tenth of the members match);
- the member 360 page of a bulk member and of a demo member with orders.

Prints p50/p99/max per page in ms.

Usage:
    .venv/bin/python bench/bench_console_members.py [--db postgresql|sqlite|both]
        [--members 1000000] [--entries-per-member 5] [--lookups 200] [--warmup 20]

PostgreSQL runs in a scratch database `loyalpos_bench_<random>` (LOYALPOS_BENCH_PG_URL);
SQLite in a temporary file. Loading the full size takes about a minute on PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from datetime import UTC, datetime

from benchlib import (
    Clock,
    Timings,
    check_ledger,
    dialects,
    make_context,
    ms,
    print_machine,
    print_table,
    scratch_database,
)
from fastapi.testclient import TestClient
from sqlalchemy import text

from loyalpos.api.app import create_app
from loyalpos.service.admin import demo
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
SURNAMES = "王李张刘陈杨赵黄周吴"
GIVEN = "伟芳娜敏静丽强磊军洋"

# g = 1..n: a member of the brand; its name, phone, card from g.
_PG_MEMBERS = """
INSERT INTO members (brand_id, phone, name, card_no, tier, points_balance, created_at,
                     spent_fen, orders_count)
SELECT :brand, '+86166' || lpad(g::text, 8, '0'),
       substr(:surnames, 1 + g % 10, 1) || substr(:given, 1 + (g / 10) % 10, 1) || g::text,
       '9' || lpad(g::text, 15, '0'), 'normal', :per * 100, :now, 0, 0
FROM generate_series(1, :n) AS g
"""
_SQLITE_MEMBERS = """
WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n)
INSERT INTO members (brand_id, phone, name, card_no, tier, points_balance, created_at,
                     spent_fen, orders_count)
SELECT :brand, '+86166' || substr('00000000' || g, -8, 8),
       substr(:surnames, 1 + g % 10, 1) || substr(:given, 1 + (g / 10) % 10, 1) || g,
       '9' || substr('000000000000000' || g, -15, 15), 'normal', :per * 100, :now, 0, 0
FROM s
"""
_LOTS = """
INSERT INTO point_lots (brand_id, member_id, original_points, remaining, is_debt, expires_on,
                        available_at, created_at, expired_points)
SELECT brand_id, id, points_balance, points_balance, false,
       {expires}, created_at, created_at, 0
FROM members WHERE brand_id = :brand AND phone LIKE '+86166%'
"""
_ENTRIES = """
INSERT INTO point_entries (brand_id, member_id, kind, points, source_type, source_ref,
                           description, created_at)
SELECT m.brand_id, m.id, 'earn', 100, 'import', 'bench', 'bench import', m.created_at
FROM members AS m {series}
WHERE m.brand_id = :brand AND m.phone LIKE '+86166%'
"""


def load(ctx: Context, brand_id: int, n: int, per: int) -> None:
    pg = ctx.engine.dialect.name == "postgresql"
    params = {
        "brand": brand_id,
        "n": n,
        "per": per,
        "now": NOW,
        "surnames": SURNAMES,
        "given": GIVEN,
    }
    started = time.perf_counter()
    with ctx.engine.begin() as conn:
        conn.execute(text(_PG_MEMBERS if pg else _SQLITE_MEMBERS), params)
        expires = (
            "make_date(2027 + (id % 5)::int, 12, 31)" if pg else "date((2027 + id % 5) || '-12-31')"
        )
        conn.execute(text(_LOTS.format(expires=expires)), {"brand": brand_id})
        series = (
            "CROSS JOIN generate_series(1, :per) AS k"
            if pg
            else "CROSS JOIN (WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k "
            "WHERE x < :per) SELECT x FROM k) AS k"
        )
        conn.execute(text(_ENTRIES.format(series=series)), {"brand": brand_id, "per": per})
        conn.execute(text("ANALYZE"))
    print(f"loaded {n:,} members, {n * per:,} entries in {time.perf_counter() - started:.1f} s")


def signed_in(client: TestClient) -> None:
    def csrf(html: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found
        return found.group(1)

    page = client.get("/console/sign-in")
    form = {"csrf": csrf(page.text), "brand": "demo", "login": "operator"}
    form["password"] = "demo-password"
    answer = client.post("/console/sign-in", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def run(kind: str, n: int, per: int, lookups: int, warmup: int) -> None:
    with scratch_database(kind) as url:
        ctx = make_context(url, Clock(NOW))
        brand = demo.seed(ctx)
        load(ctx, brand.id, n, per)
        some = random.Random(14)
        zhang_member = members.by_phone(ctx, brand.id, "13800138000")
        zhang, card = zhang_member.id, zhang_member.card_no
        pages: dict[str, object] = {
            "search: phone": lambda: f"/console/members?q=166{some.randint(1, n):08d}",
            "search: card (a demo member's)": lambda: f"/console/members?q={card}",
            "search: name prefix 王伟1": lambda: "/console/members?q=王伟1",
            "search: one character 王": lambda: "/console/members?q=王",
            "member 360: bulk member": lambda: f"/console/members/{bulk_id(some, n, ctx)}",
            "member 360: demo member": lambda: f"/console/members/{zhang}",
        }
        rows = []
        with TestClient(create_app(ctx), raise_server_exceptions=True) as client:
            signed_in(client)
            for name, make in pages.items():
                timings = Timings()
                for i in range(warmup + lookups):
                    path = make()  # type: ignore[operator]
                    start = time.perf_counter_ns()
                    answer = client.get(path)
                    took = time.perf_counter_ns() - start
                    assert answer.status_code == 200, (path, answer.status_code)
                    if i >= warmup:
                        timings.samples.append(took)
                rows.append(
                    [
                        name,
                        ms(timings.percentile_ms(50)),
                        ms(timings.percentile_ms(99)),
                        ms(max(timings.samples) / 1e6),
                    ]
                )
        print(f"\n{kind}: {n:,} members, {n * per:,} bulk ledger entries; ms per page")
        print_table(["page", "p50", "p99", "max"], rows)
        print(check_ledger(ctx.engine, brand.id))
        ctx.engine.dispose()


_FIRST_BULK: dict[str, int] = {}


def bulk_id(rnd: random.Random, n: int, ctx: Context) -> int:
    key = str(ctx.engine.url)
    if key not in _FIRST_BULK:
        with ctx.engine.connect() as conn:
            _FIRST_BULK[key] = int(
                conn.execute(
                    text("SELECT min(id) FROM members WHERE phone LIKE '+86166%'")
                ).scalar_one()
            )
    return _FIRST_BULK[key] + rnd.randrange(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="postgresql")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries-per-member", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    kinds = dialects(args.db)
    print_machine("console member pages", postgres="postgresql" in kinds)
    for kind in kinds:
        run(kind, args.members, args.entries_per_member, args.lookups, args.warmup)


if __name__ == "__main__":
    main()
