from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain.errors import InsufficientPoints, InvalidInput
from loyalpos.domain.ledger import (
    Lot,
    plan_clawback,
    plan_debt_settlement,
    plan_give_back,
    plan_spend,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
TODAY = date(2024, 6, 1)
PAST = NOW - timedelta(days=1)


def lot(i: int, remaining: int, expires: date | None, available: datetime = PAST) -> Lot:
    return Lot(i, remaining, expires, available)


def test_spend_uses_the_lots_that_expire_first() -> None:
    lots = [lot(1, 100, None), lot(2, 50, date(2025, 1, 1)), lot(3, 70, date(2024, 9, 1))]
    draws = plan_spend(lots, 150, NOW, TODAY)
    assert [(d.lot_id, d.points) for d in draws] == [(3, 70), (2, 50), (1, 30)]


def test_pending_and_empty_lots_are_not_spendable() -> None:
    lots = [
        lot(1, 100, None, NOW + timedelta(days=3)),
        lot(2, 0, date(2024, 7, 1)),
        lot(3, 40, date(2025, 1, 1)),
    ]
    with pytest.raises(InsufficientPoints) as raised:
        plan_spend(lots, 50, NOW, TODAY)
    assert raised.value.detail == {"requested": 50, "available": 40}


def test_lapsed_lots_are_not_spendable_even_before_the_expiry_job() -> None:
    lots = [lot(1, 100, TODAY), lot(2, 30, date(2024, 6, 2))]
    assert [(d.lot_id, d.points) for d in plan_spend(lots, 30, NOW, TODAY)] == [(2, 30)]
    with pytest.raises(InsufficientPoints):
        plan_spend(lots, 31, NOW, TODAY)


def test_spend_of_zero_or_negative_points_is_refused() -> None:
    with pytest.raises(InvalidInput):
        plan_spend([lot(1, 10, None)], 0, NOW, TODAY)


def test_give_back_fills_latest_expiring_lots_first_and_never_more_than_taken() -> None:
    a, b = lot(1, 0, date(2024, 7, 1)), lot(2, 0, date(2025, 7, 1))
    draws = plan_give_back([(a, 30), (b, 20)], 25)
    assert [(d.lot_id, d.points) for d in draws] == [(2, 20), (1, 5)]
    with pytest.raises(InvalidInput):
        plan_give_back([(a, 30), (b, 20)], 51)


def test_clawback_takes_from_the_origin_lot_then_others_and_reports_shortfall() -> None:
    origin = lot(1, 20, date(2025, 1, 1))
    others = [origin, lot(2, 50, date(2024, 8, 1))]
    plan = plan_clawback(origin, others, 100)
    assert [(d.lot_id, d.points) for d in plan.draws] == [(1, 20), (2, 50)]
    assert plan.shortfall == 30


def test_new_credit_pays_off_debt_first() -> None:
    draws, rest = plan_debt_settlement([lot(5, -30, None), lot(6, -10, None)], 35)
    assert [(d.lot_id, d.points) for d in draws] == [(5, 30), (6, 5)]
    assert rest == 0


lots_strategy = st.lists(
    st.builds(
        Lot,
        id=st.integers(1, 10_000),
        remaining=st.integers(0, 1_000),
        expires_on=st.none() | st.dates(date(2024, 1, 1), date(2030, 1, 1)),
        available_at=st.sampled_from([PAST, NOW + timedelta(days=1)]),
    ),
    max_size=12,
    unique_by=lambda x: x.id,
)


@given(lots_strategy, st.integers(1, 5_000))
def test_spend_plan_is_exact_or_refused(lots: list[Lot], points: int) -> None:
    spendable = sum(x.remaining for x in lots if x.spendable_at(NOW, TODAY))
    if points > spendable:
        with pytest.raises(InsufficientPoints):
            plan_spend(lots, points, NOW, TODAY)
        return
    draws = plan_spend(lots, points, NOW, TODAY)
    by_id = {x.id: x for x in lots}
    assert sum(d.points for d in draws) == points
    assert all(0 < d.points <= by_id[d.lot_id].remaining for d in draws)
    assert all(by_id[d.lot_id].spendable_at(NOW, TODAY) for d in draws)
    assert len({d.lot_id for d in draws}) == len(draws)
