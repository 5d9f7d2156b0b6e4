"""Refund shares, tiers and fingerprints (domain/checkout.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain.checkout import Tier, fingerprint, progress, share, tier_for


@st.composite
def partitions(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    qty = draw(st.integers(1, 50))
    total = draw(st.integers(0, 10**9))
    parts: list[int] = []
    left = qty
    while left:
        n = draw(st.integers(1, left))
        parts.append(n)
        left -= n
    return total, qty, parts


@given(partitions())
def test_refunding_every_unit_in_any_parts_returns_exactly_the_total(
    case: tuple[int, int, list[int]],
) -> None:
    total, qty, parts = case
    before = 0
    got = []
    for n in parts:
        got.append(share(total, qty, before, n))
        before += n
    assert sum(got) == total
    for n, part in zip(parts, got, strict=True):
        # Each part is within one fen of its exact proportion.
        assert abs(part * qty - total * n) < qty


def test_share_refuses_more_than_is_left() -> None:
    for args in [(100, 2, 1, 2), (100, 2, -1, 1), (100, 0, 0, 0)]:
        try:
            share(*args)
        except ValueError:
            continue
        raise AssertionError(f"share{args} should refuse")


TIERS = [
    Tier("normal", "普通会员", 0),
    Tier("silver", "银卡", 100000),
    Tier("gold", "金卡", 500000),
]


def test_tiers_and_the_progress_line() -> None:
    assert tier_for(TIERS, 0) == TIERS[0]
    assert tier_for(TIERS, 99999) == TIERS[0]
    assert tier_for(TIERS, 100000) == TIERS[1]
    assert tier_for([], 10**9) is None
    p = progress(TIERS, 468000)
    assert p is not None and p.message_zh == "距离金卡还需消费 ¥320.00"
    assert progress(TIERS, 500000) is None


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=5))
def test_fingerprint_ignores_key_order(data: dict[str, int]) -> None:
    assert fingerprint(data) == fingerprint(dict(reversed(list(data.items()))))
