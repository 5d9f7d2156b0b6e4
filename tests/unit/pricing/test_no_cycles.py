"""A quote leaves no reference cycles behind: everything it builds is freed by
reference counting when the caller drops it, so quoting does not feed the
garbage collector's slow full passes (a p99 matter, docs/performance.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from loyalpos.domain.pricing.engine import quote
from loyalpos.domain.pricing.model import (
    Cart,
    CartLine,
    MemberContext,
    Options,
    PointsRequest,
    Remaining,
    WalletCoupon,
)
from loyalpos.domain.pricing.rules import Benefit, Kind, PointsOffset, RuleSet, Scope, Stacking

NOW = datetime(2024, 6, 4, 12, 0)


@pytest.fixture
def collector_off() -> Iterator[None]:
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()


@pytest.mark.usefixtures("collector_off")
@pytest.mark.parametrize("force", [(), ("c00",)])
def test_a_quote_leaves_no_cyclic_garbage(force: tuple[str, ...]) -> None:
    templates = (
        Benefit("mj", "满100减20", Kind.THRESHOLD, threshold=10000, amount=2000),
        Benefit("pct", "9折", Kind.PERCENT, percent=9000, scope=Scope(categories=frozenset("a"))),
        Benefit("v", "5元", Kind.CASH, amount=500, with_points=True, max_per_order=2),
        Benefit("free", "免费", Kind.ITEM, sku="s1"),
        Benefit("p2", "第二件半价", Kind.NTH_DISCOUNT, promotion=True, percent=5000),
    )
    rules = RuleSet(
        benefits=templates,
        stacking=Stacking(max_coupons=3),
        points_offset=PointsOffset(enabled=True, cap_percent=2000),
    )
    wallet = tuple(
        WalletCoupon(f"c{i:02d}", templates[i % 4].id, NOW + timedelta(days=i)) for i in range(12)
    )
    lines = tuple(CartLine(f"s{i % 3}", "ab"[i % 2], 1000 + 37 * i, 1 + i % 3) for i in range(8))
    options = Options(points=PointsRequest.MAX, force=force, budgets={"v": Remaining(discount=800)})
    gc.collect()  # what earlier tests left (pytest lets go of their reports lazily)
    q = quote(rules, MemberContext("gold", 5000, False, wallet), Cart("S1", NOW, lines), options)
    assert q.applied
    del q
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    ours = [o for o in gc.garbage if _from_loyalpos(o)]
    assert ours == [], [type(o).__name__ for o in ours[:20]]


def _from_loyalpos(o: object) -> bool:
    """An object the quote made: of a loyalpos type, or a frame/function of its code."""
    if type(o).__module__.startswith("loyalpos"):
        return True
    code = getattr(o, "f_code", None) or getattr(o, "__code__", None)
    return code is not None and "loyalpos" in code.co_filename
