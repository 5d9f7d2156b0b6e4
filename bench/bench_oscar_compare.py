"""loyalpos side by side with django-oscar's offer applicator, on Oscar's own fixture.

The peer harness is ../shared/bench/oscar/ (its README gives the fixture). This
script:

1. expresses that fixture as a loyalpos rule set and carts: the 200-product
   catalogue (price and category formulas taken from the harness itself), the
   5/30/100-line baskets, the three site offers as promotions and the 20 vouchers
   as coupon templates (one code in the wallet, as one entered code);
2. prices the baskets with `quote()` and checks the totals against Oscar's (from
   the harness's results.json), saying where the semantics differ;
3. runs Oscar's harness (`bench_oscar.py --quick` by default, or full) in its own
   virtualenv (created from the harness's requirements.txt if missing), writing
   its results.json to a temporary directory; then times loyalpos in this process,
   every case interleaved with the harness's own `reference_loop()` (imported from
   bench_oscar.py, which needs no Django for that);
4. prints medians, "x ref" (median / reference-loop median of the same run) and
   the speed-up per basket (goal: at least 100x).

Usage:
    .venv/bin/python bench/bench_oscar_compare.py [--oscar quick|full|skip]
        [--rounds 300] [--warmup 20] [--cpu N] [--oscar-venv PATH]

`--oscar skip` runs no Django and uses the figures in
../shared/bench/oscar/results.json (run 1 of the harness's README). Exit status 1
when a total differs other than in the documented ways, or the goal is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench_quote import Stats, machine_facts, pin_to_one_cpu, run_interleaved, table

from loyalpos.domain.pricing.engine import quote
from loyalpos.domain.pricing.model import (
    Cart,
    CartLine,
    MemberContext,
    Options,
    Quote,
    WalletCoupon,
)
from loyalpos.domain.pricing.rules import RuleSet
from loyalpos.rules import convert

HERE = Path(__file__).resolve().parent
OSCAR_DIR = HERE.parent.parent / "shared" / "bench" / "oscar"
DEFAULT_VENV = HERE / ".oscar-venv"
NOW = datetime(2026, 11, 23, 12, 0)
CATEGORY_NAMES = "ABCDEFGHIJ"
GOAL = 100.0


def load_harness() -> Any:
    """bench_oscar.py as a module: its fixture formulas and reference loop are plain
    Python (Django is imported inside its functions only)."""
    spec = importlib.util.spec_from_file_location("bench_oscar", OSCAR_DIR / "bench_oscar.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {OSCAR_DIR / 'bench_oscar.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


H = load_harness()
reference_loop: Callable[[], int] = H.reference_loop


# --------------------------------------------------------------------------
# Oscar's fixture as loyalpos rules, carts and wallets
# --------------------------------------------------------------------------
def fen(price: Decimal) -> int:
    return int(price * 100)


def category(j: int) -> str:
    return CATEGORY_NAMES[H.category_of(j)]


def basket(n_lines: int) -> Cart:
    """bench_oscar.build_basket: line k holds product 7k mod 200, quantity 3 in
    category B, else 1 + k mod 3."""
    lines = []
    for k in range(n_lines):
        j = (k * 7) % H.N_PRODUCTS
        qty = 3 if H.category_of(j) == 1 else 1 + k % 3
        lines.append(CartLine(f"P{j:03d}", category(j), fen(H.price_for(j)), qty))
    return Cart("web", NOW, tuple(lines))


SITE_OFFERS = ("multibuy-B", "pct10-A", "spend200-50")
OSCAR_OFFER_NAMES = {
    "multibuy-B": "Buy 3 get cheapest free (B)",
    "pct10-A": "10% off category A",
    "spend200-50": "Spend 200 get 50 off",
}


def voucher(v: int) -> tuple[str, dict[str, Any]]:
    """Voucher v of the harness (build_offers): its kind and coupon template."""
    kind = ("percentage", "absolute", "threshold")[v % 3]
    cat = CATEGORY_NAMES[2 + v % (H.N_CATEGORIES - 2)]
    doc: dict[str, Any] = {"id": f"V{v:02d}", "priority": 100}
    if kind == "percentage":
        off = 5 + v % 4 * 5
        doc |= {"name": f"{off}% off {cat}", "kind": "percent", "percent": 100 - off}
        doc["scope"] = {"categories": [cat]}
    elif kind == "absolute":
        amount = 5 + v % 3 * 5
        doc |= {"name": f"{amount} off {cat}", "kind": "cash", "amount_fen": amount * 100}
        doc["scope"] = {"categories": [cat]}
    else:
        threshold, amount = 50 + v % 4 * 25, 10 + v % 4 * 5
        doc |= {
            "name": f"spend {threshold} get {amount} off",
            "kind": "threshold",
            "threshold_fen": threshold * 100,
            "amount_fen": amount * 100,
        }
    return kind, doc


def rules_document() -> dict[str, Any]:
    vouchers = [voucher(v) for v in range(H.N_VOUCHERS)]
    threshold_ids = [doc["id"] for kind, doc in vouchers if kind == "threshold"]
    return {
        "promotions": [
            # (iii) priority 30: buy 3 from B, cheapest free.
            {
                "id": "multibuy-B",
                "name": OSCAR_OFFER_NAMES["multibuy-B"],
                "kind": "buy_n_free",
                "n": 3,
                "scope": {"categories": ["B"]},
                "priority": 30,
            },
            # (i) priority 20: 10% off category A.
            {
                "id": "pct10-A",
                "name": OSCAR_OFFER_NAMES["pct10-A"],
                "kind": "percent",
                "percent": 90,
                "scope": {"categories": ["A"]},
                "priority": 20,
            },
            # (ii) priority 10: spend 200 get 50 off, once. Oscar's offers are
            # exclusive per item and A and B items go to the two offers above, so
            # this one is measured on, and spread over, the other categories.
            {
                "id": "spend200-50",
                "name": OSCAR_OFFER_NAMES["spend200-50"],
                "kind": "threshold",
                "threshold_fen": 20000,
                "amount_fen": 5000,
                "scope": {"exclude_categories": ["A", "B"]},
                "priority": 10,
            },
        ],
        "coupons": [doc for _, doc in vouchers],
        "stacking": {
            "max_coupons": 1,  # one code per basket, as the harness enters one
            # A basket-wide threshold voucher takes every item in Oscar, so no site
            # offer can share the basket with it.
            "forbidden_pairs": [[t, offer] for t in threshold_ids for offer in SITE_OFFERS],
        },
    }


def build_rules() -> RuleSet:
    return convert.rule_set(convert.parse_rule_set(rules_document()))


def wallet(*codes: int) -> MemberContext:
    coupons = tuple(WalletCoupon(f"CODE{v:02d}", f"V{v:02d}") for v in codes)
    return MemberContext(tier=None, points=0, wallet=coupons)


def saving_of(q: Quote, benefit: str) -> int:
    return sum(a.saving for a in q.applied if a.benefit == benefit)


# --------------------------------------------------------------------------
# Totals: loyalpos against Oscar
# --------------------------------------------------------------------------
def money(x: int) -> str:
    return f"{x / 100:.2f}"


def check_totals(rules: RuleSet, oscar: dict[str, Any]) -> list[str]:
    """Print the comparison; return the problems (empty when every difference is
    one of the documented semantic ones)."""
    problems: list[str] = []
    rows = []
    for n in H.BASKET_SIZES:
        o = oscar["baskets"][str(n)]
        q = quote(rules, wallet(), basket(n), Options())
        ours = {k: saving_of(q, k) for k in SITE_OFFERS}
        theirs = {
            k: fen(Decimal(o["offers_applied"][OSCAR_OFFER_NAMES[k]]["discount"]))
            for k in SITE_OFFERS
        }
        oscar_total = fen(Decimal(o["total_after"]))
        if fen(Decimal(o["total_before"])) != q.subtotal:
            problems.append(f"{n}-line basket: subtotal {q.subtotal} != Oscar's")
        # Oscar's multibuy frees one unit per basket, loyalpos's 买3免1 one unit in
        # every 3: put Oscar's figure in its place and the totals must agree (to the
        # fen per percent offer: Oscar reports a percent discount rounded down).
        reconciled = q.payable + ours["multibuy-B"] - theirs["multibuy-B"]
        if abs(reconciled - oscar_total) > 1:
            problems.append(f"{n}-line basket: reconciled total {reconciled} != {oscar_total}")
        for k in ("pct10-A", "spend200-50"):
            if abs(ours[k] - theirs[k]) > (1 if k == "pct10-A" else 0):
                problems.append(f"{n}-line basket: {k} {ours[k]} != Oscar's {theirs[k]}")
        rows.append(
            [
                f"{n} lines",
                money(q.subtotal),
                f"{money(theirs['multibuy-B'])} / {money(ours['multibuy-B'])}",
                f"{money(theirs['pct10-A'])} / {money(ours['pct10-A'])}",
                f"{money(theirs['spend200-50'])} / {money(ours['spend200-50'])}",
                money(oscar_total),
                money(q.payable),
                "same" if q.payable == oscar_total else f"{money(q.payable - oscar_total)}",
                money(reconciled),
            ]
        )
    print("Site offers, discount Oscar / loyalpos:")
    print(
        table(
            [
                "basket",
                "before",
                "buy 3 B, 1 free",
                "10% off A",
                "spend 200 -50",
                "Oscar total",
                "loyalpos",
                "diff",
                "loyalpos w/ Oscar's multibuy",
            ],
            rows,
        )
    )

    print("\nVouchers on the 30-line basket (Oscar's README examples):")
    rows = []
    cart = basket(H.VOUCHER_BASKET_SIZE)
    plain = quote(rules, wallet(), cart, Options())
    for code, example in oscar["voucher_examples"].items():
        v = int(code[4:])
        kind, doc = voucher(v)
        q = quote(rules, wallet(v), cart, Options())
        used = [a for a in q.applied if a.coupon_id == code]
        oscar_total = fen(Decimal(example["total_after"]))
        oscar_voucher = fen(
            Decimal(example["offers_applied"][next(iter(example["offers_applied"]))]["discount"])
        )
        ours_voucher = used[0].saving if used else 0
        if kind == "threshold":
            # Oscar applies the voucher first (priority 100) and it takes the whole
            # basket; loyalpos picks the better combination: the site offers.
            note = "Oscar greedy: voucher only; loyalpos best: site offers, code unused"
            if used or q.payable != plain.payable:
                problems.append(f"{code}: expected the site offers to be chosen")
        else:
            note = "voucher on its category, plus the site offers (as Oscar)"
            if ours_voucher != oscar_voucher and abs(ours_voucher - oscar_voucher) > 1:
                problems.append(f"{code}: voucher {ours_voucher} != Oscar's {oscar_voucher}")
            if plain.payable - q.payable != ours_voucher:
                problems.append(f"{code}: the voucher does not simply add to the site offers")
        rows.append(
            [
                f"{code} ({doc['name']})",
                money(oscar_voucher),
                money(ours_voucher),
                money(oscar_total),
                money(q.payable),
                note,
            ]
        )
    print(
        table(
            ["code", "Oscar voucher", "loyalpos", "Oscar total", "loyalpos total", ""],
            rows,
        )
    )
    best = quote(rules, wallet(*range(H.N_VOUCHERS)), cart, Options())
    chosen = [a.coupon_id for a in best.applied if a.coupon_id]
    print(
        f"\nAll 20 codes in the wallet at once (loyalpos chooses; Oscar takes one code at a "
        f"time): uses {', '.join(chosen) or 'none'}, total {money(best.payable)}"
    )
    print(
        "\nSemantics that differ (both totals shown above):\n"
        "- multibuy: Oscar frees one unit per basket (its second application finds the\n"
        "  cheapest line already discounted); loyalpos's 买3免1 frees the cheapest of every\n"
        "  3 units, so on the 30- and 100-line baskets (9 and 30 B units) it frees 3 and 10.\n"
        "  With Oscar's multibuy figure put in its place the totals agree.\n"
        "- percent: Oscar discounts each line unrounded and reports the offer rounded\n"
        "  down; loyalpos rounds the eligible amount half up once (a fen either way).\n"
        "- choice: Oscar applies offers greedily by priority (a code first); loyalpos\n"
        "  searches for the best legal combination, so a basket-wide threshold code that\n"
        "  excludes the site offers is left unused when the site offers save more.\n"
        "- exclusivity per item is expressed as scopes (spend 200 on categories other than\n"
        "  A and B) and forbidden pairs (threshold codes with the site offers)."
    )
    return problems


# --------------------------------------------------------------------------
# Oscar's harness, in its own virtualenv
# --------------------------------------------------------------------------
def oscar_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {venv} from {OSCAR_DIR / 'requirements.txt'} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(OSCAR_DIR / "requirements.txt")],
        check=True,
    )
    return python


def run_oscar(mode: str, venv: Path) -> tuple[dict[str, Any], str]:
    if mode == "skip":
        path = OSCAR_DIR / "results.json"
        return json.loads(path.read_text()), f"{path} (not run in this session)"
    python = oscar_python(venv)
    with tempfile.TemporaryDirectory(prefix="oscar_results_") as tmp:
        out = Path(tmp) / "results.json"
        cmd = [str(python), str(OSCAR_DIR / "bench_oscar.py"), "--out", str(out)]
        if mode == "quick":
            cmd.append("--quick")
        print("running:", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=tmp)
        wall = time.perf_counter() - t0
        return json.loads(out.read_text()), f"bench_oscar.py {mode}, run now ({wall:.0f} s)"


# --------------------------------------------------------------------------
# loyalpos timing, interleaved with the reference loop
# --------------------------------------------------------------------------
@dataclass
class VoucherCycle:
    """One code of the 20 per quote, cycling, on the 30-line basket (the harness's
    "add 1 voucher code of 20 + re-price", without its database writes)."""

    rules: RuleSet
    cart: Cart
    i: int = 0

    def __call__(self) -> Quote:
        self.i = (self.i + 1) % H.N_VOUCHERS
        return quote(self.rules, wallet(self.i), self.cart, Options())


def time_loyalpos(rules: RuleSet, rounds: int, warmup: int) -> dict[str, Stats]:
    carts = {n: basket(n) for n in H.BASKET_SIZES}
    empty = wallet()
    work: dict[str, Callable[[], object]] = {}
    for n in H.BASKET_SIZES:
        cart = carts[n]

        def priced(cart: Cart = cart) -> Quote:
            return quote(rules, empty, cart, Options())

        work[f"apply_{n}"] = priced
    work["voucher_add_30"] = VoucherCycle(rules, carts[H.VOUCHER_BASKET_SIZE])
    all_codes = wallet(*range(H.N_VOUCHERS))
    work["wallet_20_30"] = lambda: quote(rules, all_codes, carts[30], Options())
    work["reference_loop"] = reference_loop
    # The harness's rotation: per round 4x the 5-line basket, 2x the 30-line, 1x
    # the 100-line, 2x a voucher, then the reference loop once.
    per_round = {"apply_5": 4, "apply_30": 2, "apply_100": 1, "voucher_add_30": 2}
    samples = run_interleaved(work, rounds, warmup, per_round)
    return {k: Stats.of(v) for k, v in samples.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--oscar",
        choices=("quick", "full", "skip"),
        default="quick",
        help="run Oscar's harness --quick (default) or full, or skip it and use "
        "../shared/bench/oscar/results.json",
    )
    ap.add_argument("--rounds", type=int, default=300, help="loyalpos rounds (default 300)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    ap.add_argument("--oscar-venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()

    rules = build_rules()
    shared = json.loads((OSCAR_DIR / "results.json").read_text())
    print("== loyalpos vs django-oscar on Oscar's fixture ==\n")
    problems = check_totals(rules, shared)
    print()

    oscar, source = run_oscar(args.oscar, args.oscar_venv)
    pinning = pin_to_one_cpu(args.cpu)  # after Oscar's run: it keeps both CPUs
    print(f"\nloyalpos timing: {args.rounds} rounds (+{args.warmup} warm-up), interleaved ...")
    stats = time_loyalpos(rules, args.rounds, args.warmup)
    ref = stats["reference_loop"]
    o_ref = oscar["cases"]["reference_loop"]["median_us"]

    rows = []
    speedups = []
    labels = {
        "apply_5": "price the 5-line basket",
        "apply_30": "price the 30-line basket",
        "apply_100": "price the 100-line basket",
        "voucher_add_30": "1 code of 20 + re-price, 30 lines",
        "wallet_20_30": "all 20 codes, choose best, 30 lines",
    }
    for key, label in labels.items():
        ours = stats[key]
        ours_x = ours.median_us / ref.median_us
        theirs = oscar["cases"].get(key)
        if theirs is None:
            rows.append([label, "-", "-", f"{ours.median_us:.0f}", f"{ours_x:.4f}", "-", "-"])
            continue
        theirs_x = theirs["median_us"] / o_ref
        speedup = theirs_x / ours_x
        speedups.append((key, speedup))
        rows.append(
            [
                label,
                f"{theirs['median_us']:.0f}",
                f"{theirs_x:.2f}",
                f"{ours.median_us:.0f}",
                f"{ours_x:.4f}",
                f"{speedup:.0f}x",
                f"{theirs['median_us'] / ours.median_us:.0f}x",
            ]
        )
    print()
    print(table(["machine", ""], machine_facts(pinning)))
    print()
    print(
        table(
            [
                "case",
                "Oscar median us",
                "Oscar x ref",
                "loyalpos median us",
                "loyalpos x ref",
                "speed-up (x ref)",
                "(median)",
            ],
            rows,
        )
    )
    print(
        f"\nreference_loop() median: Oscar's run {o_ref:.0f} us, loyalpos run "
        f"{ref.median_us:.0f} us (min {ref.min_us:.0f}, p99 {ref.p99_us:.0f})"
    )
    print(f"Oscar figures: {source}; django-oscar {oscar.get('oscar_version')}")
    print(
        "x ref = median / the same run's reference_loop() median; speed-up = Oscar x ref /"
        " loyalpos x ref (the machine-independent ratio), then the plain ratio of medians."
    )
    print("Oscar's cases include its SQL (SQLite on tmpfs); loyalpos prices in memory.")
    missed = [k for k, x in speedups if x < GOAL]
    print(
        f"goal >= {GOAL:.0f}x per basket: "
        + ("met" if not missed else "MISSED for " + ", ".join(missed))
    )
    if args.json:
        out = {
            "oscar_source": source,
            "oscar": {k: oscar["cases"][k] for k in oscar["cases"]},
            "loyalpos": {
                k: {"median_us": v.median_us, "p99_us": v.p99_us, "min_us": v.min_us}
                for k, v in stats.items()
            },
            "speedup_x_ref": dict(speedups),
        }
        Path(args.json).write_text(json.dumps(out, indent=2))
    if problems:
        print("\nTOTALS CHECK FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("\ntotals check: OK (every difference is one of the semantic ones above)")
    return 0 if not missed else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
