"""The search compares combinations by a quick evaluation that does not split
order-level savings over the lines (`quick.summary`); it must give exactly
what applying the benefits for real gives (`applying.apply_sequence`)."""

from __future__ import annotations

import itertools
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalpos.domain.pricing.applied import Summary
from loyalpos.domain.pricing.applying import apply_sequence
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.candidate import FAR_FUTURE, Candidate
from loyalpos.domain.pricing.context import SearchContext, sort_key_of, steps_of
from loyalpos.domain.pricing.eligibility import budget_cap
from loyalpos.domain.pricing.evaluation import evaluate
from loyalpos.domain.pricing.model import (
    Cart,
    CartLine,
    MemberContext,
    Options,
    PointsRequest,
    Remaining,
)
from loyalpos.domain.pricing.quick import alone_saving, summarise
from loyalpos.domain.pricing.rules import (
    Benefit,
    Kind,
    NthGroup,
    PointsOffset,
    RuleSet,
    Scope,
    Stacking,
    ThresholdBase,
)
from tests.unit.pricing.test_optimizer_oracle import split_lines

NOW = datetime(2024, 6, 4, 12, 0)
CATEGORIES = ["a", "b", "c"]
SKUS = [f"s{i}" for i in range(5)]

lines = split_lines(
    SKUS, CATEGORIES, st.one_of(st.integers(0, 300), st.integers(1, 20_000)), st.integers(1, 3), 8
)

# Nested, disjoint and partly overlapping scopes.
scopes = st.one_of(
    st.just(Scope()),
    st.builds(Scope, categories=st.frozensets(st.sampled_from(CATEGORIES), min_size=1)),
    st.builds(Scope, skus=st.frozensets(st.sampled_from(SKUS), min_size=1, max_size=2)),
    st.builds(Scope, exclude_skus=st.frozensets(st.sampled_from(SKUS), min_size=1, max_size=2)),
)


@st.composite
def benefit(draw: st.DrawFn, i: int) -> Benefit:
    # Mostly order-level kinds: the quick evaluation is about them.
    order_level = [Kind.THRESHOLD, Kind.PERCENT, Kind.CASH]
    kind = draw(st.sampled_from(order_level * 3 + list(Kind)))
    return Benefit(
        id=f"b{i}",
        name=f"benefit {i}",
        kind=kind,
        scope=draw(scopes),
        threshold=draw(st.integers(0, 30_000)),
        amount=draw(st.integers(1, 20_000)),
        step=draw(st.none() | st.integers(1_000, 10_000)),
        cap=draw(st.none() | st.integers(1, 5_000)),
        percent=draw(st.integers(1, 9_999)),
        sku=draw(st.none() | st.sampled_from(SKUS)),
        price=draw(st.integers(0, 3_000)),
        bundle=tuple(draw(st.lists(st.sampled_from(SKUS), min_size=2, max_size=3, unique=True))),
        nth=draw(st.integers(2, 3)),
        nth_group=draw(st.sampled_from(list(NthGroup))),
        n=draw(st.integers(2, 3)),
        threshold_base=draw(st.none() | st.sampled_from(list(ThresholdBase))),
        with_points=draw(st.booleans()),
        priority=draw(st.integers(0, 1)),
    )


@st.composite
def sequences(draw: st.DrawFn) -> tuple[SearchContext, list[list[Candidate]]]:
    templates = [draw(benefit(i)) for i in range(draw(st.integers(1, 6)))]
    order = Stacking().order
    if draw(st.booleans()) and draw(st.booleans()):
        order = tuple(draw(st.permutations(list(Kind))))
    rules = RuleSet(
        benefits=tuple(templates),
        stacking=Stacking(threshold_base=draw(st.sampled_from(list(ThresholdBase))), order=order),
        points_offset=PointsOffset(
            enabled=draw(st.booleans()), cap_percent=draw(st.integers(500, 10_000)), step=1
        ),
    )
    budgets = {
        t.id: Remaining(discount=draw(st.integers(0, 3_000)))
        for t in templates
        if draw(st.booleans()) and draw(st.booleans())
    }
    options = Options(points=PointsRequest.MAX, budgets=budgets)
    member = MemberContext("normal", draw(st.integers(0, 20_000)))
    cart = Cart("S1", NOW, tuple(draw(lines)))
    amounts = [x.subtotal for x in cart.lines]
    order_of = {k.value: i for i, k in enumerate(rules.stacking.order)}
    s = SearchContext(rules, member, options, State.start(cart.lines, amounts), order_of)
    cands = [Candidate(b, None, FAR_FUTURE, budget_cap(b, options)) for b in templates]
    # Twice the benefits with a budget: the two share it.
    cands += [c for c in cands if c.cap is not None]
    combos = [
        list(combo)
        for size in range(1, min(len(cands), 4) + 1)
        for combo in itertools.combinations(cands, size)
    ]
    return s, combos


def materialised(s: SearchContext, combo: list[Candidate]) -> Summary:
    """The old way: every benefit applied and split over the lines, on a fresh memo."""
    fresh = SearchContext(s.rules, s.member, s.options, s.start, s.order)
    ordered = sorted(combo, key=lambda c: sort_key_of(fresh, c))
    steps = steps_of(fresh, ordered)
    return summarise(apply_sequence(fresh, ordered, steps))


@settings(max_examples=300, deadline=None)
@given(sequences())
def test_the_quick_evaluation_equals_applying_for_real(
    case: tuple[SearchContext, list[list[Candidate]]],
) -> None:
    s, combos = case
    for combo in combos:
        e = evaluate(s, tuple(combo))
        want = materialised(s, combo)
        assert (e.saving, e.discount, e.savings, e.points, e.offset) == (
            want.saving,
            want.discount,
            want.savings,
            want.points,
            want.offset,
        )
        assert (e.failed[1] if e.failed else None) == want.failed
        # And the lines, once asked for, are those of the real application.
        assert sum(o.saving for _, o in e.results) == sum(want.savings)
        assert [o.saving for _, o in e.results] == list(want.savings)


def test_a_threshold_on_original_amounts_sees_the_lines_an_earlier_discount_zeroed() -> None:
    # 9999.99% off pays 1 fen of 100.01 元: the 1-fen line goes to zero, so a 满减
    # measured on original amounts no longer counts it, and misses by 1 fen.
    cart_lines = (CartLine("s0", "a", 1, 1), CartLine("s1", "a", 10_000, 1))
    pct = Benefit("p", "p", Kind.PERCENT, percent=1)
    mj = Benefit(
        "m", "m", Kind.THRESHOLD, threshold=10_001, amount=1, threshold_base=ThresholdBase.ORIGINAL
    )
    rules = RuleSet(benefits=(pct, mj))
    order = {k.value: i for i, k in enumerate(rules.stacking.order)}
    start = State.start(cart_lines, [1, 10_000])
    s = SearchContext(rules, MemberContext(), Options(), start, order)
    cands = [Candidate(b, None, FAR_FUTURE, None) for b in (pct, mj)]
    assert evaluate(s, (cands[1],)).saving == 1
    e = evaluate(s, tuple(cands))
    assert e.failed is not None
    assert e.failed[1].detail == {"shortfall_fen": 1, "threshold_fen": 10_001}
    assert e.failed[1] == materialised(s, cands).failed


@settings(max_examples=300, deadline=None)
@given(sequences())
def test_standalone_savings_equal_applying_for_real(
    case: tuple[SearchContext, list[list[Candidate]]],
) -> None:
    """`quick.alone_saving` (order-level benefits from the cart's sums, others by
    `benefits.preview`) gives what applying the benefit alone for real gives: its
    discount, or the reason it fails."""
    s, combos = case
    for combo in combos:
        if len(combo) != 1:
            continue
        (c,) = combo
        got = alone_saving(s, c)
        want = materialised(s, combo)
        if want.failed is not None:
            assert got == want.failed
        else:
            assert got == want.discount
