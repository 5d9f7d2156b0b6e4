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

from loyalpos.domain.money import yuan
from loyalpos.domain.pricing.allocation import allocate
from loyalpos.domain.pricing.model import Cart, MemberContext
from loyalpos.domain.pricing.rules import EarnKind, EarnRule, PointsRounding, RuleSet


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


def earn(
    rules: RuleSet,
    member: MemberContext,
    cart: Cart,
    paid: Sequence[int],
    coupon_multipliers: Sequence[Fraction],
) -> Earned:
    active = [r for r in rules.earn if _in_force(r, cart, member)]
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
    coupon_mult = max(coupon_multipliers, default=Fraction(1))
    if coupon_mult != 1:
        notes.append(f"earn: coupon points ×{_fmt(coupon_mult)}")
    factor = tier_mult * time_mult * coupon_mult

    # Each line earns paid × rate × factor. The rate comes from the base rule, an
    # exclusion or the first category rule that takes the line, so rate × factor
    # is worked out once per rule and the sums over lines stay in integers
    # (Fraction arithmetic on every line took much of the time of a quote).
    excluded = by_kind.get(EarnKind.EXCLUDE, [])
    category = by_kind.get(EarnKind.CATEGORY_RATE, [])
    per_rule: dict[int, Fraction] = {}  # -1 base, -2 excluded, else index in category
    which: list[int] = []
    for line in cart.lines:
        if any(r.scope.line_ok(line) for r in excluded):
            k = -2
        else:
            k = next((n for n, r in enumerate(category) if r.scope.line_ok(line)), -1)
        if k not in per_rule:
            if k == -2:
                rate = Fraction(0)
            elif k == -1:
                rate = base_rate
            else:
                r = category[k]
                rate = r.rate if r.rate else base_rate * r.multiplier
            per_rule[k] = rate * factor
        which.append(k)
    rates = [per_rule[k] for k in which]  # per line: points per 分 paid
    paid_by_rule: dict[int, int] = {}
    for k, amount in zip(which, paid, strict=True):
        paid_by_rule[k] = paid_by_rule.get(k, 0) + amount
    earned_raw = sum((per_rule[k] * amount for k, amount in paid_by_rule.items()), Fraction(0))
    points = round_points(earned_raw, rules.points_rounding)
    notes.append(f"earn: {points} points on {yuan(sum(paid))} paid")

    bonus = 0
    total_paid = sum(paid)
    for r in by_kind.get(EarnKind.THRESHOLD_BONUS, []):
        reached = [pts for threshold, pts in r.steps if total_paid >= threshold]
        if reached:
            step = max(reached)
            bonus += step
            notes.append(f"earn: threshold bonus +{step} ({r.id})")
    if member.first_order:
        for r in by_kind.get(EarnKind.FIRST_ORDER_BONUS, []):
            bonus += r.points
            notes.append(f"earn: first order bonus +{r.points} ({r.id})")
    total = points + bonus
    # Bonuses still need a home when nothing was paid (e.g. a first-order bonus on
    # a fully discounted cart): then every line takes an equal share.
    if any(amount and per_fen for per_fen, amount in zip(rates, paid, strict=True)):
        weights = _int_weights(paid, rates)
    else:
        weights = list(paid) if any(paid) else [1] * len(paid)
    return Earned(total, allocate(total, weights), notes)


def _int_weights(paid: Sequence[int], rates: Sequence[Fraction]) -> list[int]:
    """The lines' raw points (paid × points per 分) over their common denominator:
    integers in the same proportion. Paid × n/d in lowest terms has denominator
    d / gcd(paid, d)."""
    denominator = math.lcm(
        *(r.denominator // math.gcd(a, r.denominator) for a, r in zip(paid, rates, strict=True))
    )
    return [
        a * r.numerator * denominator // r.denominator for a, r in zip(paid, rates, strict=True)
    ]
