"""`earn` works in integers; it must give what exact per-line Fraction
arithmetic gives, for every rounding mode and every kind of scope."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalpos.domain.pricing.allocation import allocate
from loyalpos.domain.pricing.earning import earn, round_points
from loyalpos.domain.pricing.model import Cart, CartLine, MemberContext
from loyalpos.domain.pricing.rules import EarnKind, EarnRule, PointsRounding, RuleSet, Scope

NOW = datetime(2024, 6, 4, 12, 0)
CATEGORIES = ["a", "b", "c"]
SKUS = [f"s{i}" for i in range(4)]

scopes = st.one_of(
    st.just(Scope()),
    st.builds(Scope, categories=st.frozensets(st.sampled_from(CATEGORIES), min_size=1)),
    st.builds(Scope, skus=st.frozensets(st.sampled_from(SKUS), min_size=1)),
    st.builds(
        Scope,
        categories=st.frozensets(st.sampled_from(CATEGORIES)),
        exclude_skus=st.frozensets(st.sampled_from(SKUS), min_size=1),
    ),
)
fractions = st.builds(Fraction, st.integers(0, 7), st.integers(1, 300))


@st.composite
def cases(draw: st.DrawFn) -> tuple[RuleSet, Cart, list[int], list[Fraction]]:
    rules: list[EarnRule] = [EarnRule("base", EarnKind.BASE, rate=draw(fractions))]
    for i in range(draw(st.integers(0, 3))):
        rules.append(
            EarnRule(
                f"cat{i}",
                EarnKind.CATEGORY_RATE,
                scope=draw(scopes),
                rate=draw(st.sampled_from([Fraction(0), draw(fractions)])),
                multiplier=draw(st.sampled_from([Fraction(1), Fraction(1, 2), Fraction(3)])),
            )
        )
    for i in range(draw(st.integers(0, 2))):
        rules.append(EarnRule(f"ex{i}", EarnKind.EXCLUDE, scope=draw(scopes)))
    rules.append(
        EarnRule("tier", EarnKind.TIER_MULTIPLIER, tier_multipliers={"gold": Fraction(6, 5)})
    )
    lines = draw(
        st.lists(
            st.builds(
                CartLine,
                sku=st.sampled_from(SKUS),
                category=st.sampled_from(CATEGORIES),
                unit_price=st.integers(0, 20_000),
                qty=st.integers(1, 3),
            ),
            min_size=1,
            max_size=8,
        )
    )
    paid = [draw(st.integers(0, x.subtotal)) for x in lines]
    ruleset = RuleSet(earn=tuple(rules), points_rounding=draw(st.sampled_from(PointsRounding)))
    multipliers = draw(st.lists(st.sampled_from([Fraction(2), Fraction(3, 2)]), max_size=2))
    return ruleset, Cart("S1", NOW, tuple(lines)), paid, multipliers


def reference(
    rules: RuleSet, cart: Cart, paid: list[int], multipliers: list[Fraction]
) -> tuple[int, list[int]]:
    """Per line, in Fractions: the formula of docs/benefit-engine.md ("Earning")."""
    base = next(r.rate for r in rules.earn if r.kind is EarnKind.BASE)
    factor = Fraction(6, 5) * max(multipliers, default=Fraction(1))
    raw: list[Fraction] = []
    for line, amount in zip(cart.lines, paid, strict=True):
        if any(r.scope.line_ok(line) for r in rules.earn if r.kind is EarnKind.EXCLUDE):
            rate = Fraction(0)
        else:
            rule = next(
                (
                    r
                    for r in rules.earn
                    if r.kind is EarnKind.CATEGORY_RATE and r.scope.line_ok(line)
                ),
                None,
            )
            rate = base if rule is None else (rule.rate or base * rule.multiplier)
        raw.append(amount * rate * factor)
    total = round_points(sum(raw, Fraction(0)), rules.points_rounding)
    if any(raw):
        common = math.lcm(*(x.denominator for x in raw))
        weights = [int(x * common) for x in raw]
    else:
        weights = list(paid) if any(paid) else [1] * len(paid)
    return total, allocate(total, weights)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_points_in_integers_equal_exact_fractions(
    case: tuple[RuleSet, Cart, list[int], list[Fraction]],
) -> None:
    rules, cart, paid, multipliers = case
    got = earn(rules, MemberContext("gold"), cart, paid, multipliers)
    assert (got.total, got.per_line) == reference(rules, cart, paid, multipliers)


@settings(max_examples=300, deadline=None)
@given(cases(), st.integers(0, 2), st.booleans())
def test_the_rules_behind_the_points_add_up_to_them_and_to_what_was_paid(
    case: tuple[RuleSet, Cart, list[int], list[Fraction]], bonus_steps: int, first: bool
) -> None:
    """Whatever the rates, multipliers, rounding and bonuses: the points of the
    rules that produced an order's points add up to its points, and the rates'
    lines to what was paid (the answer to "why did I get N points?")."""
    rules, cart, paid, multipliers = case
    extra = [EarnRule("first", EarnKind.FIRST_ORDER_BONUS, points=7)]
    if bonus_steps:
        steps = tuple((n * 5000, n * 11) for n in range(1, bonus_steps + 1))
        extra.append(EarnRule("bonus", EarnKind.THRESHOLD_BONUS, steps=steps))
    rules = replace(rules, earn=(*rules.earn, *extra))
    names = [(f"t{i}", f"券{i}") for i in range(len(multipliers))]
    got = earn(rules, MemberContext("gold", first_order=first), cart, paid, multipliers, names)
    assert sum(r.points or 0 for r in got.rules) == got.total
    rates = [r for r in got.rules if r.kind in ("base", "category_rate", "exclude")]
    assert sum(r.paid or 0 for r in rates) == sum(paid)
    assert all(r.factor is not None for r in rates)
    kinds = [r.kind for r in got.rules]
    assert kinds.count("tier_multiplier") == 1  # gold ×1.2 is in every case
    assert kinds.count("coupon_multiplier") == (max(multipliers, default=1) != 1)
    assert kinds.count("first_order_bonus") == first
