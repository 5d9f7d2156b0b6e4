"""Points earned on what the customer actually pays (实付).

Per line: paid × rate (the base rate, or its category / item override, or 0
when excluded), × the member's tier multiplier, × the best time multiplier in
force (会员日, weekend, holiday, hours), × the best points multiplier of a chosen
coupon. The sum is rounded once (the rule set's `points_rounding`, default
floor), then the highest threshold-bonus step and the first-order bonus are
added. Every fraction is exact (`Fraction`); the total is split back over the
lines by largest remainder so refunds can reverse points line by line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from loyalpos.domain.money import yuan
from loyalpos.domain.pricing.allocation import allocate
from loyalpos.domain.pricing.model import Cart, MemberContext
from loyalpos.domain.pricing.rules import EarnKind, EarnRule, PointsRounding, RuleSet, Scope


@dataclass(frozen=True, slots=True)
class Earned:
    total: int
    per_line: list[int]
    explanation: list[str]


def round_points(value: Fraction, mode: PointsRounding) -> int:
    if mode is PointsRounding.CEIL:
        return math.ceil(value)
    if mode is PointsRounding.ROUND:
        return math.floor(value + Fraction(1, 2))
    return math.floor(value)


def _in_force(rule: EarnRule, cart: Cart, member: MemberContext) -> bool:
    s = rule.scope
    return s.store_ok(cart.store) and s.tier_ok(member.tier) and s.window.contains(cart.local_time)


def _fmt(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{float(f):g}"


class _Plan(NamedTuple):
    """What `earn` works out from the rules in force, the member's tier and the
    coupons' multiplier alone, kept per rule set object (see `_plan`)."""

    rules: RuleSet  # kept alive so that its id() is not reused
    notes: tuple[str, ...]  # before the points line
    # Per rule (-2 excluded, -1 base, else the index in `category`): points per 分
    # paid as an integer over `common`, the rules' common denominator.
    per_rule: dict[int, int]
    common: int
    excluded: list[EarnRule]
    category: list[EarnRule]
    threshold_bonus: list[EarnRule]
    first_order_bonus: list[EarnRule]


_PLANS: dict[tuple[object, ...], _Plan] = {}
_PLANS_KEPT = 256


def _plan(
    rules: RuleSet, member: MemberContext, active: list[EarnRule], coupon_mult: Fraction
) -> _Plan:
    key = (id(rules), member.tier, coupon_mult, *[id(r) for r in active])
    found = _PLANS.get(key)
    if found is not None and found.rules is rules:
        return found
    by_kind: dict[EarnKind, list[EarnRule]] = {}
    for r in active:
        by_kind.setdefault(r.kind, []).append(r)
    notes: list[str] = []
    base = by_kind.get(EarnKind.BASE, [])
    base_rate = base[0].rate if base else Fraction(0)
    if base:
        notes.append(f"earn: base {_fmt(base_rate * 100)} point(s) per 元 ({base[0].id})")
    tier_mult = max(
        (
            r.tier_multipliers[member.tier]
            for r in by_kind.get(EarnKind.TIER_MULTIPLIER, [])
            if member.tier in r.tier_multipliers
        ),
        default=Fraction(1),
    )
    if tier_mult != 1:
        notes.append(f"earn: tier {member.tier} ×{_fmt(tier_mult)}")
    time_rules = by_kind.get(EarnKind.TIME_MULTIPLIER, [])
    time_mult = max((r.multiplier for r in time_rules), default=Fraction(1))
    if time_mult != 1:
        best = next(r for r in time_rules if r.multiplier == time_mult)
        notes.append(f"earn: {best.description or best.id} ×{_fmt(time_mult)}")
    if coupon_mult != 1:
        notes.append(f"earn: coupon points ×{_fmt(coupon_mult)}")
    factor = tier_mult * time_mult * coupon_mult

    # Each line earns paid × rate × factor. The rate comes from the base rule, an
    # exclusion or the first category rule that takes the line, so rate × factor
    # is worked out once per rule, as an integer over a common denominator, and
    # the sums over lines stay in integers (Fraction arithmetic on every line took
    # much of the time of a quote).
    excluded = by_kind.get(EarnKind.EXCLUDE, [])
    category = by_kind.get(EarnKind.CATEGORY_RATE, [])
    rates: dict[int, Fraction] = {-2: Fraction(0), -1: base_rate * factor}
    for k, r in enumerate(category):
        rates[k] = (r.rate if r.rate else base_rate * r.multiplier) * factor
    common = math.lcm(*(x.denominator for x in rates.values()))
    per_rule = {k: x.numerator * (common // x.denominator) for k, x in rates.items()}
    if len(_PLANS) >= _PLANS_KEPT:
        _PLANS.clear()
    found = _PLANS[key] = _Plan(
        rules,
        tuple(notes),
        per_rule,
        common,
        excluded,
        category,
        by_kind.get(EarnKind.THRESHOLD_BONUS, []),
        by_kind.get(EarnKind.FIRST_ORDER_BONUS, []),
    )
    return found


def earn(
    rules: RuleSet,
    member: MemberContext,
    cart: Cart,
    paid: Sequence[int],
    coupon_multipliers: Sequence[Fraction],
) -> Earned:
    active = [r for r in rules.earn if _in_force(r, cart, member)]
    plan = _plan(rules, member, active, max(coupon_multipliers, default=Fraction(1)))
    notes = list(plan.notes)
    which = _classify(cart, plan.excluded, plan.category)
    # Per line, its exact points times `plan.common`: Σ paid × n/d over the lines,
    # exactly, over the rules' common denominator.
    per_rule = plan.per_rule
    weights = [amount * per_rule[k] for amount, k in zip(paid, which, strict=True)]
    points = _round_ratio(sum(weights), plan.common, rules.points_rounding)
    total_paid = sum(paid)
    notes.append(f"earn: {points} points on {yuan(total_paid)} paid")

    bonus = 0
    for r in plan.threshold_bonus:
        reached = [pts for threshold, pts in r.steps if total_paid >= threshold]
        if reached:
            step = max(reached)
            bonus += step
            notes.append(f"earn: threshold bonus +{step} ({r.id})")
    if member.first_order:
        for r in plan.first_order_bonus:
            bonus += r.points
            notes.append(f"earn: first order bonus +{r.points} ({r.id})")
    total = points + bonus
    # The total goes to the lines in proportion to their exact points (`weights`:
    # the same proportion as the points themselves, which is all the split
    # depends on). Bonuses still need a home when nothing was paid (e.g. a
    # first-order bonus on a fully discounted cart): then every line takes an
    # equal share.
    if not any(weights):
        weights = list(paid) if any(paid) else [1] * len(paid)
    return Earned(total, allocate(total, weights), notes)


def _round_ratio(numerator: int, denominator: int, mode: PointsRounding) -> int:
    """`round_points(Fraction(numerator, denominator), mode)` in integers."""
    if mode is PointsRounding.CEIL:
        return -(-numerator // denominator)
    if mode is PointsRounding.ROUND:
        return (2 * numerator + denominator) // (2 * denominator)
    return numerator // denominator


def _classify(cart: Cart, excluded: list[EarnRule], category: list[EarnRule]) -> list[int]:
    """Per line: -2 if an exclusion takes it, else the index of the first category
    rule that does, else -1 (the base rate). `Scope.line_ok`, with the scopes
    that only list categories and skus (the usual ones) checked inline."""
    simple = all(_plain(r.scope) for r in (*excluded, *category))
    if not simple:
        which = []
        for line in cart.lines:
            if any(r.scope.line_ok(line) for r in excluded):
                which.append(-2)
            else:
                which.append(next((n for n, r in enumerate(category) if r.scope.line_ok(line)), -1))
        return which
    ex_categories = frozenset().union(*(r.scope.categories for r in excluded))
    ex_skus = frozenset().union(*(r.scope.skus for r in excluded))
    everything = any(not r.scope.categories and not r.scope.skus for r in excluded)
    # The first category rule that takes a category, a sku, or every line.
    none = len(category)
    everyone = next(
        (n for n, r in enumerate(category) if not r.scope.categories and not r.scope.skus), none
    )
    by_category: dict[str, int] = {}
    by_sku: dict[str, int] = {}
    for n, r in enumerate(category):
        for c in r.scope.categories:
            by_category.setdefault(c, n)
        for one in r.scope.skus:
            by_sku.setdefault(one, n)
    which = []
    for line in cart.lines:
        cat, sku = line.category, line.sku
        if everything or cat in ex_categories or sku in ex_skus:
            which.append(-2)
            continue
        first = min(by_category.get(cat, none), by_sku.get(sku, none), everyone)
        which.append(-1 if first == none else first)
    return which


def _plain(scope: Scope) -> bool:
    return not scope.exclude_skus and not scope.exclude_categories
