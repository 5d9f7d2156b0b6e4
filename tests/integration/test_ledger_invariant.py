"""Property: over any sequence of earn / spend / adjust / reverse / expire, the
balance equals the sum of the entries and the sum of the open lots, and only a
reversal (where allowed) ever takes it below zero."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalpos.domain.errors import InsufficientPoints, InvalidInput
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import jobs, members, points
from loyalpos.service.loyalty.points import Source
from tests.integration.ledger_helpers import at, invariant

_brand_numbers = itertools.count()

policies = st.sampled_from(
    [
        ExpiryPolicy(),
        ExpiryPolicy(ExpiryMode.FIXED, months=1),
        ExpiryPolicy(ExpiryMode.FIXED, months=3),
        ExpiryPolicy(ExpiryMode.ROLLING, months=2),
    ]
)
amounts = st.integers(1, 500)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), amounts),
        st.tuples(st.just("spend"), amounts),
        st.tuples(st.just("adjust"), st.integers(-300, 300).filter(bool)),
        st.tuples(st.just("reverse"), st.integers(0, 50), st.integers(0, 500)),
        st.tuples(st.just("wait"), st.integers(1, 45)),
        st.tuples(st.just("expire"), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


def run_sequence(
    ctx: Context,
    policy: ExpiryPolicy,
    pending_days: int,
    negative_ok: bool,
    ops: list[tuple[int | str, ...]],
) -> None:
    brand = brands.create_brand(
        ctx,
        f"p{next(_brand_numbers)}",
        "Prop",
        policy=policy,
        pending_days=pending_days,
        allow_negative_balance=negative_ok,
        now=at("2024-01-01"),
    )
    m = members.register(ctx, brand.id, phone="13800138000", name="P", now=at("2024-01-01")).id
    now = at("2024-01-01")
    reversible: list[int] = []
    went_negative_by_reversal = False
    for op in ops:
        kind = op[0]
        before = points.balance(ctx, brand.id, m, now=now)
        if kind == "earn":
            reversible.append(points.earn(ctx, brand.id, m, int(op[1]), Source("t"), now=now).id)
        elif kind == "spend":
            try:
                reversible.append(
                    points.spend(ctx, brand.id, m, int(op[1]), Source("t"), now=now).id
                )
                assert int(op[1]) <= before.available
            except InsufficientPoints:
                assert int(op[1]) > before.available
        elif kind == "adjust":
            try:
                entry = points.adjust(
                    ctx, brand.id, m, int(op[1]), Source("t", operator="op", reason="prop"), now=now
                )
                reversible.append(entry.id)
            except InsufficientPoints:
                assert -int(op[1]) > before.available
        elif kind == "reverse" and reversible:
            target = reversible[int(op[1]) % len(reversible)]
            amount = int(op[2]) or None
            try:
                points.reverse(ctx, brand.id, target, Source("refund"), points=amount, now=now)
            except (InsufficientPoints, InvalidInput):
                pass
            if points.balance(ctx, brand.id, m, now=now).total < 0:
                went_negative_by_reversal = True
        elif kind == "wait":
            now += timedelta(days=int(op[1]))
        elif kind == "expire":
            jobs.expire_points(ctx, brand.local_date(now), brand_id=brand.id, now=now)
        total = invariant(ctx, m)
        after = points.balance(ctx, brand.id, m, now=now)
        assert after.pending >= 0 and after.total == total
        if total < 0:
            assert negative_ok and went_negative_by_reversal
        if kind in {"spend", "adjust", "expire", "wait", "earn"} and before.total >= 0:
            assert total >= 0


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    policy=policies, pending_days=st.sampled_from([0, 5]), negative_ok=st.booleans(), ops=operations
)
def test_ledger_invariant_holds_for_any_sequence(
    ctx: Context,
    policy: ExpiryPolicy,
    pending_days: int,
    negative_ok: bool,
    ops: list[tuple[int | str, ...]],
) -> None:
    run_sequence(ctx, policy, pending_days, negative_ok, ops)
