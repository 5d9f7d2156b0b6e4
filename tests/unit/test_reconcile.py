"""The pure reconciliation (对账) comparison: partitions, sums, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.reconcile import (
    BookedOrder,
    Figures,
    PosDay,
    PosOrder,
    reconcile,
)


def booked(no: str, amount: int, late: bool = False, **tenders: int) -> BookedOrder:
    return BookedOrder(no, amount, tenders or {"cash": amount}, late)


def test_a_day_that_agrees_is_balanced() -> None:
    ours = [booked("A1", 1000, wechat=1000), booked("A2", 550, cash=500, wechat=50)]
    pos = PosDay(
        2, 1550, {"wechat": 1050, "cash": 500}, (PosOrder("A1", 1000), PosOrder("A2", 550))
    )
    r = reconcile(pos, ours)
    assert r.balanced
    assert r.totals.count_diff == 0 and r.totals.amount_diff == 0
    assert [(t.method, t.pos, t.ours, t.diff) for t in r.tenders] == [
        ("cash", 500, 500, 0),
        ("wechat", 1050, 1050, 0),
    ]
    assert r.orders is not None
    assert [m.order_no for m in r.orders.matched] == ["A1", "A2"]
    assert r.orders.missing_here == () and r.orders.missing_at_pos == ()
    assert r.orders.list_matches_totals


def test_missing_orders_and_amount_differences_are_named() -> None:
    ours = [booked("A1", 1000), booked("A2", 500), booked("A9", 300, late=True)]
    pos = PosDay(
        3,
        1700,
        {"cash": 1700},
        (PosOrder("A1", 1000), PosOrder("A2", 450), PosOrder("P7", 250)),
    )
    r = reconcile(pos, ours)
    assert not r.balanced
    assert r.totals.pos == Figures(3, 1700)
    assert r.totals.ours == Figures(3, 1800)
    assert r.totals.amount_diff == -100
    assert r.orders is not None
    assert [(m.order_no, m.diff) for m in r.orders.amount_differences] == [("A2", -50)]
    assert r.orders.missing_here == (PosOrder("P7", 250),)
    assert [(b.order_no, b.late) for b in r.orders.missing_at_pos] == [("A9", True)]
    assert r.orders.list_matches_totals


def test_tender_methods_of_either_side_are_compared() -> None:
    ours = [booked("A1", 800, wechat=800), booked("A2", 200, stored_value=200)]
    r = reconcile(PosDay(2, 1000, {"wechat": 700, "alipay": 100}), ours)
    diffs = {t.method: (t.pos, t.ours, t.diff) for t in r.tenders}
    assert diffs == {
        "alipay": (100, 0, 100),
        "stored_value": (0, 200, -200),
        "wechat": (700, 800, -100),
    }
    assert r.totals.agrees and not r.balanced
    assert r.orders is None  # no list sent: only totals and tenders are compared


def test_a_pos_list_that_disagrees_with_its_own_totals_is_flagged() -> None:
    r = reconcile(PosDay(2, 1000, {}, (PosOrder("A1", 900),)), [booked("A1", 900)])
    assert r.orders is not None and not r.orders.list_matches_totals
    assert r.orders.listed == Figures(1, 900)
    assert not r.balanced


def test_an_empty_day_on_both_sides_is_balanced() -> None:
    assert reconcile(PosDay(0, 0, {}, ()), []).balanced


@pytest.mark.parametrize(
    ("pos", "field"),
    [
        (PosDay(-1, 0), "order_count"),
        (PosDay(0, -5), "amount_fen"),
        (PosDay(0, 10**14), "amount_fen"),
        (PosDay(1, 10, {"cash": -10}), "tenders.cash"),
        (PosDay(1, 10, {"": 10}), "tenders"),
        (PosDay(1, 10, {}, (PosOrder("", 10),)), "orders.0.order_no"),
        (PosDay(1, 10, {}, (PosOrder("A", -1),)), "orders.0.amount_fen"),
        (PosDay(2, 20, {}, (PosOrder("A", 10), PosOrder("A", 10))), "orders.1.order_no"),
        (PosDay(1, 10.5), "amount_fen"),  # type: ignore[arg-type]
        (PosDay(True, 10), "order_count"),
    ],
)
def test_bad_pos_figures_are_invalid_input(pos: PosDay, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        reconcile(pos, [])
    assert err.value.detail["field"] == field


order_nos = st.text(alphabet="ABCDEF0123456789", min_size=1, max_size=4)
amounts = st.integers(min_value=0, max_value=10**9)
methods = st.sampled_from(["cash", "wechat", "alipay", "card"])


@st.composite
def days(draw: st.DrawFn) -> tuple[PosDay, list[BookedOrder]]:
    pos_list = draw(st.dictionaries(order_nos, amounts, max_size=30))
    our_list = draw(st.dictionaries(order_nos, amounts, max_size=30))
    # Make overlaps likely, with equal or different amounts.
    for no in draw(
        st.lists(st.sampled_from(sorted(pos_list)), max_size=10) if pos_list else st.just([])
    ):
        our_list[no] = pos_list[no] if draw(st.booleans()) else draw(amounts)
    ours = [
        BookedOrder(no, amount, {draw(methods): amount}, draw(st.booleans()))
        for no, amount in our_list.items()
    ]
    count = draw(st.integers(0, 40))
    total = draw(amounts)
    tenders = draw(st.dictionaries(methods, amounts, max_size=4))
    pos = PosDay(count, total, tenders, tuple(PosOrder(n, a) for n, a in pos_list.items()))
    return pos, ours


@given(days())
def test_order_sets_partition_the_union_and_differences_add_up(
    day: tuple[PosDay, list[BookedOrder]],
) -> None:
    pos, ours = day
    r = reconcile(pos, ours)
    assert r.orders is not None and pos.orders is not None
    matched = [m.order_no for m in r.orders.matched]
    here = [p.order_no for p in r.orders.missing_here]
    at_pos = [b.order_no for b in r.orders.missing_at_pos]
    pos_nos = {p.order_no for p in pos.orders}
    our_nos = {b.order_no for b in ours}
    # A partition of the union: disjoint, no repeats, nothing left out.
    assert len(matched) + len(here) + len(at_pos) == len(pos_nos | our_nos)
    assert set(matched) | set(here) | set(at_pos) == pos_nos | our_nos
    assert set(matched) == pos_nos & our_nos
    assert set(here) == pos_nos - our_nos
    assert set(at_pos) == our_nos - pos_nos
    # Differences add up to the difference of the two lists' sums.
    pos_sum = sum(p.amount for p in pos.orders)
    our_sum = sum(b.amount for b in ours)
    decomposed = (
        sum(m.diff for m in r.orders.matched)
        + sum(p.amount for p in r.orders.missing_here)
        - sum(b.amount for b in r.orders.missing_at_pos)
    )
    assert decomposed == pos_sum - our_sum
    assert r.orders.listed == Figures(len(pos_nos), pos_sum)
    assert {m.order_no for m in r.orders.amount_differences} == {
        m.order_no for m in r.orders.matched if m.pos_amount != m.our_amount
    }
    # Totals and tenders: each difference is pos - ours, and tender diffs sum up.
    assert r.totals.amount_diff == pos.amount - our_sum
    assert r.totals.count_diff == pos.count - len(ours)
    assert sum(t.diff for t in r.tenders) == sum(pos.tenders.values()) - our_sum
    assert r.balanced == (
        r.totals.agrees and all(t.diff == 0 for t in r.tenders) and r.orders.agrees
    )
