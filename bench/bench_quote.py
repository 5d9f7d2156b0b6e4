"""Quote latency: `loyalpos.domain.pricing.engine.quote` in-process on realistic carts.

Targets (issue 3, "Speed"), on one core:
- a 30-line cart, 10 earning rules, a wallet of 20 coupons: p99 <= 1 ms;
- a wallet of 200 coupons: p99 <= 10 ms.

The rule set is written as an HQ document (`loyalpos.rules.schema`) and converted
once, outside the timer:
- 10 earning rules: base 1 point per 元, tier multipliers, two category rates and a
  category multiplier, an exclusion, weekend ×2, member day ×3, threshold bonus
  steps, first-order bonus;
- member price 98% for 金卡 on cosmetics;
- 13 coupon templates: 满减 at three levels, 每满 200 减 20 (capped), 9折 with a cap
  and a threshold, 85折 on apparel, two 代金券, a free-coffee 兑换券, a snack at
  1 元, a 套餐券, a grocery 满减 with double points, a 会员日 coupon (Wednesdays:
  outside its window on the Saturday the carts are priced);
- 3 promotions: 第二件半价 on drinks, 买3免1 on snacks, 95折 on home (10:00-22:00);
- stacking: at most 3 coupons, one 满减 per order (exclusive group), 满减 not with
  折扣, 折扣 not with 代金券; points offset on (100 points = 1 元, cap 20%).

Carts: 5, 30 and 100 lines over a 300-product catalogue (1.50-59.99 元, 1-3 units a
line; the first four lines are the coffee and the burger set the item and bundle
coupons want). The member is 金卡, first order, 8,000 points, asking for maximum
points offset; the carts are priced on a Saturday afternoon.

Wallets are instances of those templates, as real wallets repeat templates: coupon
i is of template i mod 13, with ids in issue order (so templates interleave) and
expiry dates spread over two months; every 23rd is expired and every 29th not yet
valid. One extra case gives 200 coupons of 200 distinct templates (the six coupon
kinds with their parameters varied). An adversarial one gives 40 coupons of 40
templates that differ in id alone (5 元 代金券), at most 6 per order: before the
search knew such templates as interchangeable, millions of combinations tied on
saving (issue 11); it must stay a few dozen evaluations.

Timing: each round quotes every case once, in a shuffled order (fixed seed), after
warm-up rounds; every 10 rounds the Oscar peer harness's reference loop runs too
(`x ref` = median / the loop's median, steady when the machine's speed drifts),
followed by one untimed quote. GC is on unless `--gc` says otherwise. The process
is pinned to one CPU. The search's own count of the combinations it evaluated is
printed per case.

Usage:
    .venv/bin/python bench/bench_quote.py [--rounds 400] [--warmup 30] [--cpu N]
        [--gc on|freeze|off] [--ref-every 10] [--json PATH]

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalpos.domain.pricing.engine import quote
from loyalpos.domain.pricing.model import (
    Cart,
    CartLine,
    MemberContext,
    Options,
    PointsRequest,
    Quote,
    WalletCoupon,
)
from loyalpos.domain.pricing.rules import RuleSet
from loyalpos.rules import convert

NOW = datetime(2026, 11, 21, 15, 30)  # a Saturday afternoon: weekend ×2 is in force
LINE_COUNTS = (5, 30, 100)
WALLET_SIZES = (5, 20, 50, 200)
DISTINCT_CASE = (30, 200)  # lines, coupons of as many distinct templates
EQUAL_CASE = (30, 40, 6)  # lines, coupons of as many templates equal but for id, max per order
TARGETS_MS = {(30, 20): 1.0}  # (lines, coupons) -> p99 target; 200 coupons -> 10 ms
TARGET_200_MS = 10.0

CATEGORIES = (
    "cosmetics",
    "grocery",
    "drinks",
    "snacks",
    "apparel",
    "food",
    "tobacco",
    "home",
    "electronics",
    "giftcard",
)
N_PRODUCTS = 300
POINTS = 8_000  # the member's balance: 80 元 of points offset at most
SPECIAL_LINES = (  # sku, category, unit price: what the item and bundle coupons need
    ("coffee", "drinks", 2500),
    ("burger", "food", 2500),
    ("fries", "food", 1000),
    ("drink", "drinks", 1000),
)


# --------------------------------------------------------------------------
# Rules, carts, wallets
# --------------------------------------------------------------------------
EARN: list[dict[str, Any]] = [
    {"id": "base", "kind": "base", "points_per_yuan": 1},
    {"id": "tiers", "kind": "tier_multiplier", "multipliers": {"silver": 1.2, "gold": 1.5}},
    {
        "id": "cosmetics-x2",
        "kind": "category_rate",
        "scope": {"categories": ["cosmetics"]},
        "points_per_yuan": 2,
    },
    {
        "id": "grocery-half",
        "kind": "category_rate",
        "scope": {"categories": ["grocery"]},
        "yuan_per_point": 2,
    },
    {
        "id": "electronics-half",
        "kind": "category_rate",
        "scope": {"categories": ["electronics"]},
        "multiplier": 0.5,
    },
    {"id": "no-tobacco", "kind": "exclude", "scope": {"categories": ["tobacco", "giftcard"]}},
    {"id": "weekend", "kind": "time_multiplier", "multiplier": 2, "scope": {"weekdays": [6, 7]}},
    {"id": "member-day", "kind": "time_multiplier", "multiplier": 3, "scope": {"weekdays": [3]}},
    {
        "id": "spend-bonus",
        "kind": "threshold_bonus",
        "steps": [{"spend_fen": 50000, "points": 500}, {"spend_fen": 100000, "points": 1200}],
    },
    {"id": "welcome", "kind": "first_order_bonus", "points": 200},
]

TEMPLATES: list[dict[str, Any]] = [
    {"id": "mj200-30", "kind": "threshold", "threshold_fen": 20000, "amount_fen": 3000},
    {"id": "mj500-80", "kind": "threshold", "threshold_fen": 50000, "amount_fen": 8000},
    {"id": "mj1000-200", "kind": "threshold", "threshold_fen": 100000, "amount_fen": 20000},
    {
        "id": "every200-20",
        "kind": "threshold",
        "threshold_fen": 20000,
        "step_fen": 20000,
        "amount_fen": 2000,
        "cap_fen": 10000,
    },
    {
        "id": "pct90-cap50",
        "kind": "percent",
        "percent": 90,
        "cap_fen": 5000,
        "threshold_fen": 10000,
    },
    {
        "id": "apparel-85",
        "kind": "percent",
        "percent": 85,
        "cap_fen": 8000,
        "scope": {"categories": ["apparel"]},
    },
    {"id": "cash10", "kind": "cash", "amount_fen": 1000, "with_points": True, "max_per_order": 2},
    {"id": "cash20", "kind": "cash", "amount_fen": 2000, "threshold_fen": 10000},
    {"id": "free-coffee", "kind": "item", "sku": "coffee", "price_fen": 0, "with_points": True},
    {"id": "snack-1", "kind": "item", "scope": {"categories": ["snacks"]}, "price_fen": 100},
    {"id": "combo30", "kind": "bundle", "bundle": ["burger", "fries", "drink"], "price_fen": 3000},
    {
        "id": "grocery-mj100-15",
        "kind": "threshold",
        "threshold_fen": 10000,
        "amount_fen": 1500,
        "scope": {"categories": ["grocery"]},
        "with_points": True,
        "points_multiplier": 2,
    },
    {
        "id": "member-day-20",
        "kind": "cash",
        "amount_fen": 2000,
        "with_points": True,
        "scope": {"weekdays": [3]},
    },
]

PROMOTIONS: list[dict[str, Any]] = [
    {
        "id": "drinks-2nd-half",
        "kind": "nth_discount",
        "nth": 2,
        "percent": 50,
        "scope": {"categories": ["drinks"]},
    },
    {"id": "snacks-3for2", "kind": "buy_n_free", "n": 3, "scope": {"categories": ["snacks"]}},
    {
        "id": "home-95",
        "kind": "percent",
        "percent": 95,
        "scope": {"categories": ["home"], "hours": ["10:00-22:00"]},
    },
]

STACKING: dict[str, Any] = {
    "max_coupons": 3,
    "exclusive_groups": [["mj200-30", "mj500-80", "mj1000-200", "every200-20"]],
    "forbidden_pairs": [["threshold", "percent"], ["percent", "cash"]],
}


def rules_document(
    templates: Sequence[dict[str, Any]], stacking: dict[str, Any] = STACKING
) -> dict[str, Any]:
    return {
        "points": {
            "earn": EARN,
            "offset": {"points_per_yuan": 100, "cap_percent": 20, "step": 100},
        },
        "member_prices": {"tiers": {"gold": 98}, "scope": {"categories": ["cosmetics"]}},
        "coupons": list(templates),
        "promotions": PROMOTIONS,
        "stacking": stacking,
    }


def build_rules(
    templates: Sequence[dict[str, Any]], stacking: dict[str, Any] = STACKING
) -> RuleSet:
    return convert.rule_set(convert.parse_rule_set(rules_document(templates, stacking)))


def equal_templates(n: int) -> list[dict[str, Any]]:
    """`n` templates that differ in id alone: a 5 元 代金券 each, with points offset."""
    return [
        {"id": f"eq{t:02d}", "kind": "cash", "amount_fen": 500, "with_points": True}
        for t in range(n)
    ]


def distinct_templates(n: int) -> list[dict[str, Any]]:
    """`n` different templates: the six coupon kinds with parameters varied."""
    out: list[dict[str, Any]] = []
    for t in range(n):
        kind = t % 6
        base: dict[str, Any] = {"id": f"t{t:03d}"}
        if kind == 0:
            threshold = 10000 + (t * 3517) % 90000
            base |= {"kind": "threshold", "threshold_fen": threshold, "amount_fen": threshold // 8}
        elif kind == 1:
            base |= {
                "kind": "threshold",
                "threshold_fen": 10000 + (t % 5) * 5000,
                "step_fen": 10000 + (t % 5) * 5000,
                "amount_fen": 500 + (t % 7) * 300,
                "cap_fen": 5000 + (t % 4) * 2500,
            }
        elif kind == 2:
            base |= {
                "kind": "percent",
                "percent": 80 + t % 18,
                "cap_fen": 2000 + (t % 9) * 1000,
                "scope": {"categories": [CATEGORIES[t % len(CATEGORIES)]]},
            }
        elif kind == 3:
            base |= {
                "kind": "cash",
                "amount_fen": 300 + (t * 131) % 3000,
                "with_points": t % 2 == 0,
            }
        elif kind == 4:
            base |= {"kind": "item", "sku": f"P{(t * 37) % N_PRODUCTS:03d}", "price_fen": t % 500}
        else:
            first, second = (t * 37) % N_PRODUCTS, (t * 37 + 70) % N_PRODUCTS
            base |= {
                "kind": "bundle",
                "bundle": [f"P{first:03d}", f"P{second:03d}"],
                "price_fen": 1000 + (t * 97) % 9000,
            }
        out.append(base)
    return out


def price_of(j: int) -> int:
    return 150 + (j * 7919 + 104729) % 5850  # 1.50 .. 59.99 元


def build_cart(n_lines: int) -> Cart:
    """The special lines (coffee, burger set) first, then catalogue products."""
    lines = [CartLine(sku, cat, price, 1) for sku, cat, price in SPECIAL_LINES[: min(4, n_lines)]]
    k = 0
    while len(lines) < n_lines:
        j = (k * 37 + 11) % N_PRODUCTS
        lines.append(CartLine(f"P{j:03d}", CATEGORIES[j % len(CATEGORIES)], price_of(j), 1 + k % 3))
        k += 1
    return Cart("S001", NOW, tuple(lines))


def build_wallet(
    n: int, template_ids: Sequence[str], *, distinct: bool
) -> tuple[WalletCoupon, ...]:
    wallet = []
    for i in range(n):
        template = template_ids[i % len(template_ids)]
        expires = NOW + timedelta(days=1 + (i * 7) % 60, hours=i % 24)
        valid_from: datetime | None = None
        if not distinct and i % 23 == 22:
            expires = NOW - timedelta(days=1)  # expired, still in the wallet
        if not distinct and i % 29 == 28:
            valid_from = NOW + timedelta(days=3)  # issued for later
        wallet.append(WalletCoupon(f"W{i:04d}", template, expires, valid_from))
    return tuple(wallet)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    lines: int
    coupons: int
    templates: int
    rules: RuleSet
    member: MemberContext
    cart: Cart
    options: Options
    target_ms: float | None

    def run(self) -> Quote:
        return quote(self.rules, self.member, self.cart, self.options)


def build_cases() -> list[Case]:
    options = Options(points=PointsRequest.MAX)
    rules = build_rules(TEMPLATES)
    ids = [t["id"] for t in TEMPLATES]
    cases = []
    for n_lines in LINE_COUNTS:
        cart = build_cart(n_lines)
        for n_coupons in WALLET_SIZES:
            member = MemberContext(
                "gold", POINTS, True, build_wallet(n_coupons, ids, distinct=False)
            )
            target = TARGETS_MS.get((n_lines, n_coupons))
            if n_coupons == 200:
                target = TARGET_200_MS
            cases.append(
                Case(
                    f"{n_lines} lines x {n_coupons} coupons",
                    n_lines,
                    n_coupons,
                    min(n_coupons, len(ids)),
                    rules,
                    member,
                    cart,
                    options,
                    target,
                )
            )
    n_lines, n_coupons = DISTINCT_CASE
    many = distinct_templates(n_coupons)
    wallet = build_wallet(n_coupons, [t["id"] for t in many], distinct=True)
    cases.append(
        Case(
            f"{n_lines} lines x {n_coupons} distinct templates",
            n_lines,
            n_coupons,
            n_coupons,
            build_rules(many),
            MemberContext("gold", POINTS, True, wallet),
            build_cart(n_lines),
            options,
            TARGET_200_MS,
        )
    )
    n_lines, n_coupons, most = EQUAL_CASE
    equal = equal_templates(n_coupons)
    wallet = build_wallet(n_coupons, [t["id"] for t in equal], distinct=True)
    cases.append(
        Case(
            f"{n_lines} lines x {n_coupons} equal templates, {most} per order",
            n_lines,
            n_coupons,
            n_coupons,
            build_rules(equal, {**STACKING, "max_coupons": most}),
            MemberContext("gold", POINTS, True, wallet),
            build_cart(n_lines),
            options,
            None,
        )
    )
    return cases


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------
def reference_loop() -> int:
    """The Oscar peer harness's machine-speed yardstick, the same loop exactly:
    x += i*i for 200 000 iterations (bench_oscar.reference_loop)."""
    x = 0
    for i in range(200000):
        x += i * i
    return x


def pin_to_one_cpu(cpu: int | None) -> str:
    """Pin this process to one CPU (the last allowed one unless `cpu` is given)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    allowed = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu is not None else allowed[-1]
    os.sched_setaffinity(0, {chosen})
    return f"pinned to CPU {chosen} of {len(allowed)} allowed"


@dataclass(frozen=True, slots=True)
class Stats:
    n: int
    min_us: float
    median_us: float
    p99_us: float
    mean_us: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Stats:
        s = sorted(samples_ns)
        p99 = s[max(0, math.ceil(0.99 * len(s)) - 1)]  # nearest rank, as the Oscar harness
        return cls(
            len(s),
            s[0] / 1000,
            statistics.median(s) / 1000,
            p99 / 1000,
            statistics.fmean(s) / 1000,
        )


def run_interleaved(
    work: dict[str, Callable[[], object]],
    rounds: int,
    warmup: int,
    per_round: dict[str, int] | None = None,
) -> dict[str, list[int]]:
    """Round-robin over every case (`per_round` times each, default once), in the
    given order, so each sees the same machine conditions: the Oscar harness's
    rotation."""
    samples: dict[str, list[int]] = {name: [] for name in work}
    for r in range(warmup + rounds):
        for name, fn in work.items():
            for _ in range((per_round or {}).get(name, 1)):
                t0 = time.perf_counter_ns()
                fn()
                dt = time.perf_counter_ns() - t0
                if r >= warmup:
                    samples[name].append(dt)
    return samples


def run_shuffled(
    work: dict[str, Callable[[], object]],
    reference: Callable[[], object],
    rounds: int,
    warmup: int,
    every: int,
) -> tuple[dict[str, list[int]], list[int]]:
    """Every round runs each case once, in a new random order (fixed seed), so no
    case always follows the same one; every `every` rounds the reference loop
    runs too, followed by one untimed quote so that the next timed case does not
    pay for the caches the loop emptied."""
    rng = random.Random(20261123)
    names = list(work)
    samples: dict[str, list[int]] = {name: [] for name in names}
    ref: list[int] = []
    for r in range(warmup + rounds):
        rng.shuffle(names)
        for name in names:
            t0 = time.perf_counter_ns()
            work[name]()
            dt = time.perf_counter_ns() - t0
            if r >= warmup:
                samples[name].append(dt)
        if r % every == 0:
            t0 = time.perf_counter_ns()
            reference()
            ref.append(time.perf_counter_ns() - t0)
            work[names[0]]()
    return samples, ref


def evaluations(q: Quote) -> int:
    """The search's own count, from the quote's debug field."""
    return q.debug.get("combinations_evaluated", -1)


def machine_facts(pinning: str) -> list[tuple[str, str]]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return [
        ("date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("CPU", f"{cpu}, {os.cpu_count()} cores; {pinning}"),
        ("load average", ", ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=400, help="measured rounds (default 400)")
    ap.add_argument("--warmup", type=int, default=30, help="untimed rounds first (default 30)")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    ap.add_argument(
        "--ref-every", type=int, default=10, help="run the reference loop every N rounds"
    )
    ap.add_argument(
        "--gc",
        choices=("on", "freeze", "off"),
        default="on",
        help="garbage collector: on (default); freeze: on, but the objects built before "
        "timing (rules, carts, wallets, modules) are moved out of its reach with "
        "gc.freeze(), as a server may do after start-up; off",
    )
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()

    pinning = pin_to_one_cpu(args.cpu)
    cases = build_cases()
    print("== quote() latency ==")
    print(table(["machine", ""], machine_facts(pinning)))
    print()

    # What each case prices to (untimed), so a reader can see the work is real.
    info: dict[str, tuple[int, Quote]] = {}
    for c in cases:
        q = c.run()
        info[c.name] = (evaluations(q), q)
    sample = next(c for c in cases if (c.lines, c.coupons) == (30, 20))
    q = info[sample.name][1]
    print(
        f"{sample.name}: subtotal {q.subtotal / 100:.2f}, discount {q.discount / 100:.2f}, "
        f"points offset {q.points_offset / 100:.2f} ({q.points_redeemed} points), "
        f"pays {q.payable / 100:.2f}, earns {q.points_earned} points"
    )
    print(
        "  applied: "
        + ", ".join(f"{a.coupon_id or a.benefit} -{a.saving / 100:.2f}" for a in q.applied)
    )
    print(f"  {len(q.unusable)} coupon(s) explained as not used")
    print()

    work: dict[str, Callable[[], object]] = {c.name: c.run for c in cases}
    if args.gc == "freeze":
        gc.collect()
        gc.freeze()
    elif args.gc == "off":
        gc.disable()
    print(
        f"timing: {args.rounds} rounds (+{args.warmup} warm-up), each case once per round "
        f"in a shuffled order, the reference loop every {args.ref_every} rounds ..."
    )
    collections = [0, 0, 0]

    def count_collections(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    gc.callbacks.append(count_collections)
    t_run = time.perf_counter()
    samples, ref_samples = run_shuffled(
        work, reference_loop, args.rounds, args.warmup, args.ref_every
    )
    wall = time.perf_counter() - t_run
    gc.callbacks.remove(count_collections)
    stats = {name: Stats.of(s) for name, s in samples.items()}
    ref = stats["reference_loop()"] = Stats.of(ref_samples)

    rows = []
    verdicts = []
    for c in cases:
        st = stats[c.name]
        target = "" if c.target_ms is None else f"p99 <= {c.target_ms:g} ms"
        verdict = ""
        if c.target_ms is not None:
            ok = st.p99_us / 1000 <= c.target_ms
            verdict = "OK" if ok else "MISSED"
            verdicts.append(ok)
        rows.append(
            [
                c.name,
                str(c.templates),
                str(info[c.name][0]),
                f"{st.median_us / 1000:.3f}",
                f"{st.p99_us / 1000:.3f}",
                f"{st.mean_us / 1000:.3f}",
                f"{st.median_us / ref.median_us:.4f}",
                target,
                verdict,
            ]
        )
    print()
    print(
        table(
            [
                "case",
                "templates",
                "evals",
                "p50 ms",
                "p99 ms",
                "mean ms",
                "x ref",
                "target",
                "",
            ],
            rows,
        )
    )
    print(
        f"\nreference_loop(): median {ref.median_us / 1000:.2f} ms, min {ref.min_us / 1000:.2f}, "
        f"p99 {ref.p99_us / 1000:.2f} (x ref = case median / this median)"
    )
    if ref.median_us / ref.min_us > 1.15 or ref.p99_us / ref.min_us > 1.5:
        print("NOTE: the reference loop varied: machine speed changed during the run.")
    print(
        f"{args.rounds} samples per case ({ref.n} of the reference loop), nearest-rank p99, "
        f"GC {args.gc}; "
        f"evals = combinations the search evaluated; timed part {wall:.0f} s"
    )
    print(
        "garbage collections during the timed part (warm-up included): "
        f"young {collections[0]}, middle {collections[1]}, full {collections[2]}"
    )
    if args.json:
        out = {
            "machine": dict(machine_facts(pinning)),
            "rounds": args.rounds,
            "gc": args.gc,
            "warmup": args.warmup,
            "cases": {name: _stats_dict(st) for name, st in stats.items()},
            "evaluations": {name: e for name, (e, _) in info.items()},
            "collections": collections,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print("wrote", args.json)
    return 0 if all(verdicts) else 1


def _stats_dict(st: Stats) -> dict[str, float]:
    return {
        "n": st.n,
        "min_us": st.min_us,
        "median_us": st.median_us,
        "p99_us": st.p99_us,
        "mean_us": st.mean_us,
    }


if __name__ == "__main__":
    raise SystemExit(main())
