"""Largest-remainder allocation, and the bookkeeping identities of any quote
on random carts, wallets and rules (hypothesis)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalpos.domain.pricing.allocation import allocate, percent_of
from loyalpos.domain.pricing.engine import quote
from loyalpos.domain.pricing.model import (
    Cart,
    CartLine,
    MemberContext,
    Options,
    PointsRequest,
    WalletCoupon,
)
from loyalpos.domain.pricing.rules import (
    Benefit,
    ChangeRounding,
    EarnKind,
    EarnRule,
    Kind,
    MemberPrices,
    PointsOffset,
    RuleSet,
    Scope,
    Stacking,
    ThresholdBase,
)
from tests.unit.pricing.builders import check_sums

# allocate: examples


def test_ten_yuan_over_three_equal_lines_is_334_333_333() -> None:
    assert allocate(1000, [1000, 1000, 1000]) == [334, 333, 333]


def test_the_largest_remainders_get_the_spare_fen() -> None:
    # shares 1.5, 3.3, 5.2 → floors 1, 3, 5 and one fen left: it goes to the .5.
    assert allocate(10, [15, 33, 52]) == [2, 3, 5]


def test_equal_remainders_favour_the_earlier_line() -> None:
    assert allocate(1, [1, 1]) == [1, 0]


def test_nothing_to_split_or_no_weight_gives_zeros() -> None:
    assert allocate(0, [5, 7]) == [0, 0]
    assert allocate(100, [0, 0]) == [0, 0]
    assert allocate(100, []) == []


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        allocate(-1, [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        allocate(1, [3, -1])


@pytest.mark.parametrize(
    ("amount", "percent", "paid"),
    [(10000, 9500, 9500), (999, 9000, 899), (1001, 8850, 886), (5, 5000, 3), (1, 5000, 1)],
)
def test_percent_of_rounds_half_up_to_the_fen(amount: int, percent: int, paid: int) -> None:
    assert percent_of(amount, percent) == paid


# allocate: properties

weights = st.lists(st.integers(0, 10**7), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(weights, st.data())
def test_allocation_sums_exactly_and_no_part_exceeds_its_weight(
    ws: list[int], data: st.DataObject
) -> None:
    total = data.draw(st.integers(0, sum(ws)))
    parts = allocate(total, ws)
    assert len(parts) == len(ws)
    if sum(ws) == 0:
        assert parts == [0] * len(ws)
        return
    assert sum(parts) == total
    assert all(0 <= p <= w for p, w in zip(parts, ws, strict=True))


@settings(max_examples=300, deadline=None)
@given(weights, st.integers(0, 10**8))
def test_allocation_is_within_one_fen_of_the_exact_share_and_favours_largest_remainders(
    ws: list[int], total: int
) -> None:
    if sum(ws) == 0:
        return
    parts = allocate(total, ws)
    assert sum(parts) == total
    exact = [Fraction(total * w, sum(ws)) for w in ws]
    for p, e in zip(parts, exact, strict=True):
        # the floor of the exact share, or one fen more when it is not whole
        assert p == math.floor(e) or (p == math.floor(e) + 1 and e.denominator != 1)
    # A line rounded down never has a larger remainder than a line rounded up.
    up = [e - int(e) for p, e in zip(parts, exact, strict=True) if p > e]
    down = [e - int(e) for p, e in zip(parts, exact, strict=True) if p < e]
    if up and down:
        assert min(up) >= max(down)


# quote invariants on random inputs

NOW = datetime(2024, 6, 4, 12, 0)
SKUS = ["s0", "s1", "s2", "s3"]
CATEGORIES = ["a", "b"]

cart_lines = st.lists(
    st.builds(
        CartLine,
        sku=st.sampled_from(SKUS),
        category=st.sampled_from(CATEGORIES),
        unit_price=st.integers(0, 30_000),
        qty=st.integers(1, 4),
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def benefits(draw: st.DrawFn, i: int) -> Benefit:
    kind = draw(st.sampled_from(list(Kind)))
    promotion = draw(st.booleans()) and draw(st.booleans())
    return Benefit(
        id=f"b{i}",
        name=f"benefit {i}",
        kind=kind,
        scope=draw(
            st.one_of(
                st.just(Scope()),
                st.builds(Scope, categories=st.frozensets(st.sampled_from(CATEGORIES), min_size=1)),
                st.builds(Scope, exclude_skus=st.frozensets(st.sampled_from(SKUS), min_size=1)),
            )
        ),
        promotion=promotion,
        threshold=draw(st.integers(0, 50_000))
        if kind is not Kind.THRESHOLD
        else draw(st.integers(100, 50_000)),
        amount=draw(st.integers(1, 20_000)),
        step=draw(st.none() | st.integers(1_000, 20_000)),
        cap=draw(st.none() | st.integers(1, 10_000)),
        percent=draw(st.integers(1, 9_999)),
        sku=draw(st.sampled_from(SKUS)),
        price=draw(st.integers(0, 5_000)),
        bundle=tuple(draw(st.lists(st.sampled_from(SKUS), min_size=2, max_size=3, unique=True))),
        nth=draw(st.integers(2, 3)),
        n=draw(st.integers(2, 4)),
        threshold_base=draw(st.none() | st.sampled_from(list(ThresholdBase))),
        exclusive=draw(st.booleans()) and draw(st.booleans()),
        with_points=draw(st.booleans()),
        max_per_order=draw(st.integers(1, 2)),
        priority=draw(st.integers(0, 1)),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[RuleSet, MemberContext, Cart, Options]:
    templates = [draw(benefits(i)) for i in range(draw(st.integers(0, 5)))]
    coupon_templates = [t.id for t in templates if not t.promotion]
    wallet = tuple(
        WalletCoupon(
            f"c{j}",
            draw(st.sampled_from(coupon_templates)),
            NOW + timedelta(days=draw(st.integers(-1, 20))),
        )
        for j in range(draw(st.integers(0, 6) if coupon_templates else st.just(0)))
    )
    rules = RuleSet(
        earn=(EarnRule("base", EarnKind.BASE, rate=Fraction(draw(st.integers(0, 3)), 100)),),
        benefits=tuple(templates),
        stacking=Stacking(
            max_coupons=draw(st.integers(0, 3)),
            threshold_base=draw(st.sampled_from(list(ThresholdBase))),
        ),
        points_offset=PointsOffset(
            enabled=draw(st.booleans()),
            cap_percent=draw(st.integers(0, 10_000)),
            step=draw(st.sampled_from([1, 10, 100])),
            min_points=draw(st.integers(0, 500)),
        ),
        member_prices=MemberPrices(tier_percent={"gold": draw(st.integers(5_000, 10_000))}),
        change_rounding=draw(st.sampled_from(list(ChangeRounding))),
    )
    member = MemberContext(
        tier=draw(st.sampled_from(["normal", "gold", None])),
        points=draw(st.integers(0, 50_000)),
        wallet=wallet,
    )
    ids = [c.id for c in wallet]
    options = Options(
        points=draw(st.sampled_from([PointsRequest.NONE, PointsRequest.MAX, 0, 150, 5_000])),
        skip_all=draw(st.booleans()) and draw(st.booleans()),
        force=tuple(draw(st.lists(st.sampled_from(ids), max_size=2, unique=True))) if ids else (),
        exclude=tuple(draw(st.lists(st.sampled_from(ids), max_size=1))) if ids else (),
    )
    return rules, member, Cart("S1", NOW, tuple(draw(cart_lines))), options


@settings(max_examples=200, deadline=None)
@given(cases())
def test_every_quote_adds_up_line_by_line(
    case: tuple[RuleSet, MemberContext, Cart, Options],
) -> None:
    rules, member, cart, options = case
    q = quote(rules, member, cart, options)
    check_sums(q)
    assert q.subtotal == sum(x.subtotal for x in cart.lines)
    assert [x.subtotal for x in q.lines] == [x.subtotal for x in cart.lines]
    assert all(x.payable + x.discount + x.points_offset == x.subtotal for x in q.lines)
    assert q.points_redeemed <= member.points
    assert q.points_earned >= 0
    for a in q.applied:
        assert sum(a.per_line) == a.saving
    # Every wallet coupon is either applied or explained, never both.
    used = {a.coupon_id for a in q.applied if a.coupon_id is not None}
    explained = {u.coupon_id for u in q.unusable}
    assert used | explained == {c.id for c in member.wallet}
    assert not used & explained
