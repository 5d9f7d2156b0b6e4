"""The search drops a promotion that needs free units (买 N 免 1, an item
promotion) once the combination holds item or bundle benefits that surely take
enough of its units first (`bounds.Units.takes`), from its choices and from
its bound. That must change nothing: on carts with few units, many item and
bundle coupons and such promotions (custom kind orders and priorities too), the
search still picks what brute force over every legal combination picks.

Item coupons at a set price, on carts whose unit prices often equal it, also
give coupons that save nothing (or little) alone yet move a unit-level
benefit's discount to other lines, where a later benefit saves more: the search
must still find such combinations (see `moving._shifts`)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

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
    Kind,
    NthGroup,
    PointsOffset,
    RuleSet,
    Scope,
    Stacking,
)
from tests.unit.pricing.test_optimizer_oracle import (
    NOW,
    assert_quote_is_brute_force_best,
    count_thresholds,
    draw_wallet,
    split_lines,
)

SKUS = ["s0", "s1", "s2"]
CATEGORIES = ["a", "b"]

scopes = st.one_of(
    st.just(Scope()),
    st.just(Scope()),
    st.builds(Scope, categories=st.frozensets(st.sampled_from(CATEGORIES), min_size=1)),
    st.builds(Scope, skus=st.frozensets(st.sampled_from(SKUS), min_size=1)),
)


@st.composite
def benefit(draw: st.DrawFn, i: int, promotion: bool) -> Benefit:
    if promotion:
        kinds = [Kind.BUY_N_FREE, Kind.BUY_N_FREE, Kind.ITEM, Kind.NTH_DISCOUNT, Kind.PERCENT]
    else:
        kinds = [Kind.ITEM, Kind.ITEM, Kind.ITEM, Kind.BUNDLE, Kind.CASH, Kind.PERCENT]
        kinds += [Kind.NTH_DISCOUNT]
    kind = draw(st.sampled_from(kinds))
    return Benefit(
        id=f"{'p' if promotion else 't'}{i}",
        name=f"benefit {i}",
        kind=kind,
        scope=draw(scopes),
        promotion=promotion,
        amount=draw(st.integers(100, 3_000)),
        percent=draw(st.integers(5_000, 9_900)),
        sku=draw(st.sampled_from(["", *SKUS])),
        price=draw(st.sampled_from([0, 0, 100, 500, 1_000])),
        bundle=tuple(draw(st.lists(st.sampled_from(SKUS), min_size=2, max_size=3))),
        nth=draw(st.integers(2, 3)),
        nth_group=draw(st.sampled_from(list(NthGroup))),
        n=draw(st.integers(2, 4)),
        threshold_items=draw(count_thresholds),
        max_per_order=draw(st.integers(1, 3)),
        priority=draw(st.integers(0, 1)),
        with_points=draw(st.booleans()),
    )


@st.composite
def scenario(draw: st.DrawFn) -> tuple[RuleSet, MemberContext, Cart, Options]:
    templates = [draw(benefit(i, False)) for i in range(draw(st.integers(1, 4)))]
    promotions = [draw(benefit(i, True)) for i in range(draw(st.integers(1, 3)))]
    kinds = list(Kind)
    order = tuple(draw(st.permutations(kinds))) if draw(st.booleans()) else Stacking().order
    stacking = Stacking(max_coupons=draw(st.integers(1, 4)), order=order)
    offset = PointsOffset(enabled=draw(st.booleans()))
    rules = RuleSet(benefits=(*templates, *promotions), stacking=stacking, points_offset=offset)
    wallet = draw_wallet(draw, templates, 9, 5)
    member = MemberContext("normal", draw(st.integers(0, 5_000)), False, wallet)
    prices = st.one_of(st.sampled_from([100, 500, 1_000]), st.integers(100, 5_000))
    lines = draw(split_lines(SKUS, CATEGORIES, prices, st.integers(1, 2), 4))
    options = Options(points=draw(st.sampled_from([PointsRequest.NONE, PointsRequest.MAX])))
    return rules, member, Cart("S1", NOW, tuple(lines)), options


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_units_rule_matches_brute_force(
    case: tuple[RuleSet, MemberContext, Cart, Options],
) -> None:
    assert_quote_is_brute_force_best(*case)


def test_a_coupon_that_saves_nothing_alone_can_enable_more() -> None:
    """An item coupon at 0.01 on items of 0.01 saves nothing alone, but the unit
    it takes changes which unit 买2免1 frees (one in category b instead of a), so
    a 代金券 on category a then saves 0.01 more: all three save 0.03, the 代金券
    alone 0.02. (Once reported `no_extra_saving` and left out of the search.)"""
    item = Benefit(id="t0", name="item", kind=Kind.ITEM, price=1)
    cash = Benefit(
        id="t1", name="cash", kind=Kind.CASH, amount=100, scope=Scope(categories=frozenset("a"))
    )
    promotion = Benefit(id="p0", name="3 for 2", kind=Kind.BUY_N_FREE, n=2, promotion=True)
    rules = RuleSet(benefits=(item, cash, promotion), stacking=Stacking(max_coupons=2))
    expires = NOW + timedelta(days=1)
    wallet = (WalletCoupon("c00", "t0", expires), WalletCoupon("c01", "t1", expires))
    member = MemberContext("normal", 0, False, wallet)
    lines = (CartLine("s0", "a", 1, 1), CartLine("s0", "a", 1, 1), CartLine("s0", "b", 1, 1))
    q = assert_quote_is_brute_force_best(rules, member, Cart("S1", NOW, lines), Options())
    assert q.discount == 3
    assert {a.coupon_id: a.saving for a in q.applied if a.coupon_id} == {"c00": 0, "c01": 2}
