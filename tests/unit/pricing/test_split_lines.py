"""A till may send one line per scan (`bun` qty 1, then `bun` qty 1 again) or one
line with qty 2: the quote must not care. Unit-level benefits count the units of
one sku over all its lines (`nth_discount` per sku, or any units in scope with
`nth_group: mixed`; `item`, `bundle` and `buy_n_free` pick across lines), and a
count threshold counts units, not lines.

Two properties: the grouping of units (`benefits._runs`, `_grouped`, which work
on runs of equal units) gives what grouping the units one by one gives; and
splitting a cart's lines changes no total of the quote."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalpos.domain.pricing import benefits
from loyalpos.domain.pricing.allocation import allocate, percent_of
from loyalpos.domain.pricing.benefits import Outcome, State
from loyalpos.domain.pricing.engine import quote
from loyalpos.domain.pricing.model import (
    Cart,
    CartLine,
    MemberContext,
    Options,
    PointsRequest,
    Quote,
    Remaining,
    WalletCoupon,
)
from loyalpos.domain.pricing.reasons import Ineligible
from loyalpos.domain.pricing.rules import (
    Benefit,
    ChangeRounding,
    EarnKind,
    EarnRule,
    Kind,
    NthGroup,
    PointsOffset,
    RuleSet,
    Scope,
    Stacking,
    ThresholdBase,
)
from tests.unit.pricing.test_optimizer_oracle import (
    NOW,
    count_thresholds,
    draw_wallet,
    split_lines,
)

SKUS = ["s0", "s1", "s2", "s3"]
CATEGORIES = ["a", "b"]

scopes = st.one_of(
    st.just(Scope()),
    st.builds(Scope, categories=st.frozensets(st.sampled_from(CATEGORIES), min_size=1)),
    st.builds(Scope, skus=st.frozensets(st.sampled_from(SKUS), min_size=1)),
    st.builds(Scope, exclude_skus=st.frozensets(st.sampled_from(SKUS), min_size=1)),
)


# Grouping units: runs against one unit at a time


def one_by_one(
    st_: State, idx: list[int], size: int, saving_of: Callable[[int], int], spread: bool = False
) -> tuple[list[int], list[tuple[int, int, int]]]:
    """What `buy_n_free` did before runs: every unit listed, dearest first (then
    by line), in groups of `size`, the last of each group saving `saving_of`, on
    its line, or (`spread`) over the group's lines by the value of their units."""
    units = sorted(
        ((price, i) for i in idx for price in st_.unit_prices(i)), key=lambda u: (-u[0], u[1])
    )
    per_line = [0] * len(st_.lines)
    used: dict[int, list[int]] = {}
    for g in range(len(units) // size):
        group = units[g * size : (g + 1) * size]
        price, i = group[-1]
        if spread:
            value: dict[int, int] = {}  # the group's lines, in the order it meets them
            for p, j in group:
                value[j] = value.get(j, 0) + p
            shares = allocate(saving_of(price), list(value.values()))
            for j, share in zip(value, shares, strict=True):
                per_line[j] += share
        else:
            per_line[i] += saving_of(price)
        for p, j in group:
            used.setdefault(j, []).append(p)
    return per_line, [(i, len(ps), sum(ps) - per_line[i]) for i, ps in sorted(used.items())]


def reference(b: Benefit, st_: State) -> Outcome | None:
    """`nth_discount` / `buy_n_free` from `one_by_one`; None where they fail."""
    idx = [i for i in st_.scope_lines(b.scope) if st_.amounts[i] > 0]
    if b.kind is Kind.BUY_N_FREE:
        parts, size = [idx], b.n

        def saving_of(price: int) -> int:
            return price
    else:
        size = b.nth
        if b.nth_group is NthGroup.MIXED:
            parts = [idx]
        else:
            parts = [[i for i in idx if st_.lines[i].sku == sku] for sku in SKUS]

        def saving_of(price: int) -> int:
            return price - percent_of(price, b.percent)

    per_line = [0] * len(st_.lines)
    consume: list[tuple[int, int, int]] = []
    spread = b.kind is Kind.NTH_DISCOUNT and b.nth_group is NthGroup.SKU
    for part in parts:
        mine, taken = one_by_one(st_, part, size, saving_of, spread)
        per_line = [x + y for x, y in zip(per_line, mine, strict=True)]
        consume += taken
    if not consume:
        return None
    return Outcome(sum(per_line), per_line, sorted(consume))


@st.composite
def states(draw: st.DrawFn) -> State:
    """A cart part-way through a combination: lines discounted, units consumed."""
    lines = draw(split_lines(SKUS, CATEGORIES, st.integers(0, 500), st.integers(1, 7), 7))
    state = State.start(tuple(lines), [x.subtotal for x in lines])
    for i, x in enumerate(lines):
        if draw(st.booleans()):
            state.amounts[i] = draw(st.integers(0, x.subtotal))
            state.consumed[i] = draw(st.integers(0, x.qty))
            if state.consumed[i]:
                state.held[i] = draw(st.integers(0, state.amounts[i]))
    return state


@settings(max_examples=400, deadline=None)
@given(
    states(),
    st.sampled_from([Kind.NTH_DISCOUNT, Kind.BUY_N_FREE]),
    st.sampled_from(list(NthGroup)),
    st.integers(2, 4),
    st.integers(1, 10_000),
    scopes,
)
def test_grouping_runs_of_units_equals_grouping_units_one_by_one(
    state: State, kind: Kind, group: NthGroup, size: int, pct: int, scope: Scope
) -> None:
    b = Benefit("p", "p", kind, scope=scope, nth=size, n=size, percent=pct, nth_group=group)
    before = state.copy()
    got = benefits.KINDS[kind](b, state, ThresholdBase.DISCOUNTED)
    want = reference(b, state)
    if want is None:
        assert isinstance(got, Ineligible)
        assert got.detail == {"needed_units": size}
    else:
        assert got == want
        assert sum(got.per_line) == got.saving
    assert (state.amounts, state.consumed, state.held) == (
        before.amounts,
        before.consumed,
        before.held,
    )


# Splitting lines changes no total


@st.composite
def benefit(draw: st.DrawFn, i: int, promotion: bool) -> Benefit:
    kind = draw(st.sampled_from(list(Kind)))
    unit_level = kind not in benefits.ORDER_LEVEL
    return Benefit(
        id=f"{'p' if promotion else 't'}{i}",
        name=f"benefit {i}",
        kind=kind,
        # Order-level benefits on the whole cart: how one spreads its saving over
        # the lines (largest remainders) would decide what a later one on part of
        # the cart sees, and that depends on how the lines are cut.
        scope=draw(scopes) if unit_level else Scope(),
        promotion=promotion,
        threshold=draw(st.sampled_from([0, 0, 500, 2_000])),
        threshold_items=draw(count_thresholds),
        amount=draw(st.sampled_from([100, 300, 1_000])),
        step=draw(st.none() | st.sampled_from([300, 1_000])),
        cap=draw(st.none() | st.sampled_from([50, 400])),
        percent=draw(st.integers(5_000, 9_900)),
        sku=draw(st.sampled_from(["", *SKUS])),
        price=draw(st.sampled_from([0, 100, 250])),
        bundle=tuple(draw(st.lists(st.sampled_from(SKUS), min_size=2, max_size=3))),
        nth=draw(st.integers(2, 3)),
        nth_group=draw(st.sampled_from(list(NthGroup))),
        n=draw(st.integers(2, 3)),
        max_per_order=draw(st.integers(1, 2)),
        priority=draw(st.integers(0, 1)),
        with_points=draw(st.booleans()),
    )


def split(draw: st.DrawFn, lines: list[CartLine]) -> list[CartLine]:
    """The same units, each line cut into random parts where it stands (as a till
    sends one line per scan). Not reordered: where units of different skus cost
    the same, a benefit that takes one unit (an any-item 兑换券) takes the first
    line's, so the order of the lines may decide which sku it frees."""
    parts: list[CartLine] = []
    for x in lines:
        left = x.qty
        while left:
            qty = draw(st.integers(1, left))
            parts.append(CartLine(x.sku, x.category, x.unit_price, qty))
            left -= qty
    return parts


@st.composite
def split_scenario(draw: st.DrawFn) -> tuple[RuleSet, MemberContext, Cart, Cart, Options]:
    templates = [draw(benefit(i, False)) for i in range(draw(st.integers(1, 4)))]
    promotions = [draw(benefit(i, True)) for i in range(draw(st.integers(0, 3)))]
    rules = RuleSet(
        earn=(EarnRule("base", EarnKind.BASE, rate=Fraction(1, 100)),),
        benefits=(*templates, *promotions),
        # The default order: unit-level kinds before order-level ones.
        stacking=Stacking(max_coupons=draw(st.integers(1, 3))),
        points_offset=PointsOffset(enabled=draw(st.booleans()), cap_percent=3_000),
        change_rounding=draw(st.sampled_from(list(ChangeRounding))),
    )
    wallet = draw_wallet(draw, templates, 6, 3)
    member = MemberContext("normal", draw(st.integers(0, 3_000)), False, wallet)
    lines = draw(
        split_lines(SKUS, CATEGORIES, st.sampled_from([0, 100, 250, 999]), st.integers(1, 4), 4)
    )
    budgets = {
        t.id: Remaining(discount=draw(st.sampled_from([1, 150])))
        for t in templates
        if draw(st.integers(0, 4)) == 0
    }
    options = Options(
        points=draw(st.sampled_from([PointsRequest.NONE, PointsRequest.MAX])), budgets=budgets
    )
    whole = Cart("S1", NOW, tuple(lines))
    return rules, member, whole, Cart("S1", NOW, tuple(split(draw, lines))), options


@settings(max_examples=300, deadline=None)
@given(split_scenario())
def test_one_line_per_scan_prices_as_one_line_per_sku(
    case: tuple[RuleSet, MemberContext, Cart, Cart, Options],
) -> None:
    rules, member, whole, cut, options = case
    a = quote(rules, member, whole, options)
    b = quote(rules, member, cut, options)
    assert (a.discount, a.points_offset, a.payable, a.points_earned) == (
        b.discount,
        b.points_offset,
        b.payable,
        b.points_earned,
    )
    # Each line's share is exact: the columns add up on both.
    for q in (a, b):
        assert sum(x.discount for x in q.lines) == q.discount
        assert all(sum(x.per_line) == x.saving for x in q.applied)
        assert all(x.payable >= 0 for x in q.lines)


def test_the_same_units_in_any_number_of_lines() -> None:
    """Four buns at 8.00 and a cake at 12.00, cut into lines every way, with
    第二件半价 on buns: always 8.00 off (two pairs), on whichever lines."""
    half = Benefit("2nd", "第二件半价", Kind.NTH_DISCOUNT, promotion=True, percent=5000)
    rules = RuleSet(benefits=(half,))
    for cuts in itertools.product([False, True], repeat=3):
        lines: list[CartLine] = []
        qty = 1
        for cut in (*cuts, True):
            if cut:
                lines.append(CartLine("bun", "bakery", 800, qty))
                qty = 1
            else:
                qty += 1
        lines.append(CartLine("cake", "bakery", 1200, 1))
        q = quote(rules, MemberContext(), Cart("S1", NOW, tuple(lines)), Options())
        assert q.discount == 800, lines
        assert q.lines[-1].discount == 0


# By hand: one line per scan


def q_of(rules: RuleSet, *lines: CartLine, wallet: tuple[str, ...] = ()) -> Quote:
    coupons = tuple(WalletCoupon(f"c{k}", t) for k, t in enumerate(wallet))
    who = MemberContext("normal", 0, False, coupons)
    return quote(rules, who, Cart("S1", NOW, lines), Options())


def bun(price: int = 800, qty: int = 1) -> CartLine:
    return CartLine("bun", "bakery", price, qty)


HALF = Benefit("2nd", "第二件半价", Kind.NTH_DISCOUNT, promotion=True, percent=5000)
ANY_TWO = replace(HALF, id="any2", name="任选两件第二件半价", nth_group=NthGroup.MIXED)


def test_second_bun_half_price_when_each_bun_is_its_own_line() -> None:
    q = q_of(RuleSet(benefits=(HALF,)), bun(), bun())
    assert q.discount == 400
    # Shared by the two buns, as on one line of 2: either one refunds 6.00.
    assert [x.discount for x in q.lines] == [200, 200]
    (a,) = q.applied
    assert a.per_line == (200, 200)
    assert not any(note.code.startswith("promotion_not_") for note in q.explanation)


def test_units_of_a_sku_at_several_prices_pair_dearest_first() -> None:
    """10.00, 8.00, 6.00, 4.00 over four lines: (10, 8) and (6, 4), the 8 and the 4
    at half price: 4.00 + 2.00, each shared by its pair in proportion to price:
    4.00 over 10 : 8 is 2.22 + 1.78 (the larger remainder takes the fen), 2.00
    over 6 : 4 is 1.20 + 0.80."""
    q = q_of(RuleSet(benefits=(HALF,)), bun(600), bun(1000), bun(400), bun(800))
    assert q.discount == 600
    assert [x.discount for x in q.lines] == [120, 222, 80, 178]


def test_per_sku_grouping_does_not_pair_different_skus() -> None:
    cake = CartLine("cake", "bakery", 1200, 1)
    q = q_of(RuleSet(benefits=(HALF,)), bun(), cake)
    assert q.discount == 0
    assert any(
        note.code == "promotion_not_applicable"
        and note.detail == {"promotion": "2nd", "reason_code": "no_eligible_items"}
        for note in q.explanation
    )


def test_any_two_pairs_different_skus_the_cheaper_at_half_price() -> None:
    """任选两件第二件半价: bread 15.00 and milk 9.00 → milk half price, 4.50 off."""
    bread = CartLine("bread", "bakery", 1500, 1)
    milk = CartLine("milk", "bakery", 900, 1)
    q = q_of(RuleSet(benefits=(ANY_TWO,)), milk, bread)
    assert [x.discount for x in q.lines] == [450, 0]
    # A third item, cheaper still, finds no partner: the dearest two pair.
    q = q_of(RuleSet(benefits=(ANY_TWO,)), milk, bread, bun(600))
    assert [x.discount for x in q.lines] == [450, 0, 0]


def test_any_two_stays_in_its_scope() -> None:
    bakery_only = replace(ANY_TWO, scope=Scope(categories=frozenset({"bakery"})))
    tea = CartLine("tea", "drinks", 2000, 1)
    q = q_of(RuleSet(benefits=(bakery_only,)), tea, bun())
    assert q.discount == 0
    q = q_of(RuleSet(benefits=(bakery_only,)), tea, bun(), bun(1000))
    assert [x.discount for x in q.lines] == [0, 400, 0]


def test_a_second_half_price_coupon_counts_across_lines_too() -> None:
    coupon_kind = replace(HALF, promotion=False)
    q = q_of(RuleSet(benefits=(coupon_kind,)), bun(), bun(), wallet=("2nd",))
    assert [(a.coupon_id, a.saving) for a in q.applied] == [("c0", 400)]


def test_item_bundle_and_buy_n_free_pick_units_across_split_lines() -> None:
    free_bun = Benefit("k", "面包兑换券", Kind.ITEM, sku="bun")
    q = q_of(RuleSet(benefits=(free_bun,)), bun(800), bun(900), wallet=("k",))
    assert [x.discount for x in q.lines] == [0, 900]  # the dearest bun
    combo = Benefit("b", "面包+咖啡 10 元", Kind.BUNDLE, bundle=("bun", "coffee"), price=1000)
    coffee = CartLine("coffee", "drinks", 1500, 1)
    q = q_of(RuleSet(benefits=(combo,)), bun(800), coffee, bun(900), wallet=("b",))
    assert q.discount == 1400  # 9.00 + 15.00 for 10.00
    assert q.lines[0].discount == 0
    three = Benefit("b3", "买三免一", Kind.BUY_N_FREE, promotion=True, n=3)
    q = q_of(RuleSet(benefits=(three,)), bun(), bun(), bun(700))
    assert [x.discount for x in q.lines] == [0, 0, 700]


def test_a_later_benefit_does_not_take_units_second_half_price_took() -> None:
    """Three buns over three lines: 第二件半价 would take two (4.00 off) and leave
    买二免一, applied after it, one bun: too few, so the two do not combine and
    买二免一 alone (8.00 off) is chosen."""
    two_free = Benefit("b2", "买二免一", Kind.BUY_N_FREE, promotion=True, n=2)
    q = q_of(RuleSet(benefits=(HALF, two_free)), bun(), bun(), bun())
    assert [a.benefit for a in q.applied] == ["b2"]
    assert q.discount == 800
    assert [x.discount for x in q.lines] == [0, 800, 0]
