"""Points earned on what the customer actually pays (实付).

Per line: paid × rate (the base rate, or its category / item override, or 0
when excluded), × the member's tier multiplier, × the best time multiplier in
force (会员日, weekend, holiday, hours), × the best points multiplier of a chosen
coupon. The sum is rounded once (the rule set's `points_rounding`, default
floor), then the highest threshold-bonus step and the first-order bonus are
added. Every fraction is exact (`Fraction`); the total is split back over the
lines by largest remainder so refunds can reverse points line by line.

The rules that produced the points come back as data (`PointsRule`, stored with
the order): each rate that priced a line with its share of the points, each
multiplier, each bonus; their points add up to the total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from loyalpos.domain.money import yuan
from loyalpos.domain.pricing.allocation import allocate
from loyalpos.domain.pricing.model import Cart, MemberContext, Note, PointsRule
from loyalpos.domain.pricing.rules import EarnKind, EarnRule, PointsRounding, RuleSet, Scope


@dataclass(frozen=True, slots=True)
class Earned:
    total: int
    per_line: list[int]
    # The rules that produced `total` (their points add up to it), and the
    # explanation's sentences about them.
    rules: tuple[PointsRule, ...]
    explanation: list[Note]


def round_points(value: Fraction, mode: PointsRounding) -> int:
    if mode is PointsRounding.CEIL:
        return math.ceil(value)
    if mode is PointsRounding.ROUND:
        return math.floor(value + Fraction(1, 2))
    return math.floor(value)


def _in_force(rule: EarnRule, cart: Cart, member: MemberContext) -> bool:
    s = rule.scope
    return s.store_ok(cart.store) and s.tier_ok(member.tier) and s.window.contains(cart.local_time)


def ratio_text(f: Fraction) -> str:
    """An exact rate or multiplier as text: "2", "1.5", "0.125", or "1/3" when
    no finite decimal is exact (never a float)."""
    if f.denominator == 1:
        return str(f.numerator)
    d = f.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{f.numerator}/{f.denominator}"
    places = max(twos, fives)
    scaled = abs(f.numerator) * (10**places // f.denominator)
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if f < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


# A rate rule's text: (rule id, kind, description, 中文, English, points per 元).
_RateText = tuple[str, str, str, str, str, str]


def _rate_text(rule: EarnRule, per_fen: Fraction) -> _RateText:
    per_yuan = ratio_text(per_fen * 100)
    label = rule.description or rule.id
    if rule.kind is EarnKind.BASE:
        zh, en = f"基础积分 每元 {per_yuan} 积分", f"base rate {per_yuan} point(s) per ¥1"
    else:
        zh, en = f"{label} 每元 {per_yuan} 积分", f"{label}: {per_yuan} point(s) per ¥1"
    return rule.id, rule.kind.value, label, zh, en, per_yuan


def _multiplier(rule: str, kind: str, label: str, factor: Fraction) -> PointsRule:
    m = ratio_text(factor)
    return PointsRule(rule, kind, label, f"{label} ×{m}", f"{label}: points ×{m}", m)


class _Plan(NamedTuple):
    """What `earn` works out from the rules in force, the member's tier and the
    coupons' multiplier alone, kept per rule set object (see `_plan`)."""

    rules: RuleSet  # kept alive so that its id() is not reused
    # The tier and time multipliers in force (the coupons' one is per quote), and
    # their sentences in the explanation, made once.
    multipliers: tuple[PointsRule, ...]
    multiplier_notes: tuple[Note, ...]
    # Per rule (-2 excluded, -1 base, else the index in `category`): points per 分
    # paid as an integer over `common`, the rules' common denominator.
    per_rule: dict[int, int]
    common: int
    # Per rule as in `per_rule` (no -1 without a base rule): its texts.
    texts: dict[int, _RateText]
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
    multipliers: list[PointsRule] = []
    base = by_kind.get(EarnKind.BASE, [])
    base_rate = base[0].rate if base else Fraction(0)
    tier = member.tier or ""
    tier_rules = [
        r for r in by_kind.get(EarnKind.TIER_MULTIPLIER, []) if tier in r.tier_multipliers
    ]
    tier_mult = max((r.tier_multipliers[tier] for r in tier_rules), default=Fraction(1))
    if tier_mult != 1:
        best = next(r for r in tier_rules if r.tier_multipliers[tier] == tier_mult)
        name = rules.tier_names.get(tier, tier)
        multipliers.append(_multiplier(best.id, best.kind.value, name, tier_mult))
    time_rules = by_kind.get(EarnKind.TIME_MULTIPLIER, [])
    time_mult = max((r.multiplier for r in time_rules), default=Fraction(1))
    if time_mult != 1:
        best = next(r for r in time_rules if r.multiplier == time_mult)
        multipliers.append(
            _multiplier(best.id, best.kind.value, best.description or best.id, time_mult)
        )
    factor = tier_mult * time_mult * coupon_mult

    # Each line earns paid × rate × factor. The rate comes from the base rule, an
    # exclusion or the first category rule that takes the line, so rate × factor
    # is worked out once per rule, as an integer over a common denominator, and
    # the sums over lines stay in integers (Fraction arithmetic on every line took
    # much of the time of a quote).
    excluded = by_kind.get(EarnKind.EXCLUDE, [])
    category = by_kind.get(EarnKind.CATEGORY_RATE, [])
    rates: dict[int, Fraction] = {-2: Fraction(0), -1: base_rate * factor}
    texts: dict[int, _RateText] = {}
    if base:
        texts[-1] = _rate_text(base[0], base_rate)
    if excluded:
        label = "、".join(r.description or r.id for r in excluded)
        ids = ", ".join(r.id for r in excluded)
        texts[-2] = (
            ids,
            EarnKind.EXCLUDE.value,
            label,
            f"{label} 不积分",
            f"{label}: no points",
            "0",
        )
    for k, r in enumerate(category):
        own = r.rate if r.rate else base_rate * r.multiplier
        rates[k] = own * factor
        texts[k] = _rate_text(r, own)
    common = math.lcm(*(x.denominator for x in rates.values()))
    per_rule = {k: x.numerator * (common // x.denominator) for k, x in rates.items()}
    if len(_PLANS) >= _PLANS_KEPT:
        _PLANS.clear()
    found = _PLANS[key] = _Plan(
        rules,
        tuple(multipliers),
        tuple(_note(x) for x in multipliers),
        per_rule,
        common,
        texts,
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
    coupon_names: Sequence[tuple[str, str]] = (),
) -> Earned:
    """The points `paid` earns; `coupon_names` are (template id, name) of the
    coupons whose `coupon_multipliers` these are (in the same order), to say
    which multiplied the points."""
    active = [r for r in rules.earn if _in_force(r, cart, member)]
    coupon_mult = max(coupon_multipliers, default=Fraction(1))
    plan = _plan(rules, member, active, coupon_mult)
    which = _classify(cart, plan.excluded, plan.category)
    # Per line, its exact points times `plan.common`: Σ paid × n/d over the lines,
    # exactly, over the rules' common denominator.
    per_rule = plan.per_rule
    # Per line its exact points, and per rate rule what its lines paid and their
    # exact points: the rounded points are shared out over the rules in that
    # proportion. One pass over the lines.
    weights: list[int] = []
    by_rule: dict[int, list[int]] = {}
    for amount, k in zip(paid, which, strict=True):
        w = amount * per_rule[k]
        weights.append(w)
        acc = by_rule.get(k)
        if acc is None:
            by_rule[k] = [amount, w]
        else:
            acc[0] += amount
            acc[1] += w
    exact = sum(weights)
    points = _round_ratio(exact, plan.common, rules.points_rounding)
    total_paid = sum(paid)
    texts = plan.texts
    keys = sorted((k for k in by_rule if k in texts), key=lambda k: (k == -2, k))
    shares = allocate(points, [by_rule[k][1] for k in keys]) if keys else []
    made: list[PointsRule] = []
    for k, share in zip(keys, shares, strict=True):
        rule_id, kind, label, zh, en, factor = texts[k]
        made.append(PointsRule(rule_id, kind, label, zh, en, factor, share, by_rule[k][0]))
    rates = len(made)
    made += plan.multipliers
    if coupon_mult != 1:
        best = next(
            (n for f, n in zip(coupon_multipliers, coupon_names, strict=False) if f == coupon_mult),
            ("", "coupon"),
        )
        made.append(_multiplier(best[0], "coupon_multiplier", best[1] or best[0], coupon_mult))
    rated = len(made)

    bonus = 0
    for r in plan.threshold_bonus:
        reached = [(pts, threshold) for threshold, pts in r.steps if total_paid >= threshold]
        if reached:
            step, at = max(reached)
            bonus += step
            if r.description:
                zh, en = (
                    f"{r.description}：满 {yuan(at)} 元 +{step} 积分",
                    f"{r.description}: ¥{yuan(at)} or more, +{step} points",
                )
            else:
                zh, en = (
                    f"满 {yuan(at)} 元奖励 +{step} 积分",
                    f"bonus for ¥{yuan(at)} or more: +{step} points",
                )
            made.append(PointsRule(r.id, r.kind.value, r.description or r.id, zh, en, points=step))
    if member.first_order:
        for r in plan.first_order_bonus:
            bonus += r.points
            made.append(
                PointsRule(
                    r.id,
                    r.kind.value,
                    r.description or r.id,
                    f"{r.description or '首单奖励'} +{r.points} 积分",
                    f"{r.description or 'first order bonus'}: +{r.points} points",
                    points=r.points,
                )
            )
    total = points + bonus
    notes = [_note(x) for x in made[:rates]]
    notes += plan.multiplier_notes
    notes += [_note(x) for x in made[rates + len(plan.multipliers) : rated]]
    notes.append(
        Note(
            "points_earned",
            f"实付 {yuan(total_paid)} 元，得 {points} 积分",
            f"{points} points on ¥{yuan(total_paid)} paid",
            {"points": points, "paid_fen": total_paid},
        )
    )
    notes += [_note(x) for x in made[rated:]]
    # The total goes to the lines in proportion to their exact points (`weights`:
    # the same proportion as the points themselves, which is all the split
    # depends on). Bonuses still need a home when nothing was paid (e.g. a
    # first-order bonus on a fully discounted cart): then every line takes an
    # equal share.
    if not any(weights):
        weights = list(paid) if any(paid) else [1] * len(paid)
    return Earned(total, allocate(total, weights), tuple(made), notes)


def _note(r: PointsRule) -> Note:
    """A rule's sentence in the explanation: code `earn_<kind>`."""
    detail: dict[str, object] = {"rule": r.rule}
    if r.factor is not None:
        detail["factor"] = r.factor
    if r.points is not None:
        detail["points"] = r.points
    if r.paid is not None:
        detail["paid_fen"] = r.paid
    return Note(f"earn_{r.kind}", r.zh, r.en, detail)


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
