from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from loyalpos.db import ledger_repo
from loyalpos.db.tables import point_entries, point_lots
from loyalpos.domain.calendar import Period
from loyalpos.domain.errors import Conflict, InsufficientPoints, InvalidInput, NotFound
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.domain.ledger import Draw
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import jobs, members, points
from loyalpos.service.loyalty.points import Source
from tests.conftest import Clock
from tests.integration.ledger_helpers import at, invariant, new_brand, new_member, order

ROLLING_12 = ExpiryPolicy(ExpiryMode.ROLLING, months=12)


def expire_on(clock: Clock, ctx: Context, day: str, **kwargs: Any) -> jobs.ExpiryRun:
    """The expiry job run on `day` (01:00 in Shanghai): the clock moves there
    first, since the job refuses a day after today."""
    clock.now = at(day, 1)
    return jobs.expire_points(ctx, date.fromisoformat(day), **kwargs)


def test_rolling_worked_example_remaining_points_lapse_a_year_after_last_use(
    ctx: Context, clock: Clock
) -> None:
    brand = new_brand(ctx, ROLLING_12)
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 1000, order("A"), now=at("2024-01-01"))
    assert points.expiry_schedule(ctx, brand.id, m) == [(date(2025, 1, 1), 1000)]
    points.spend(ctx, brand.id, m, 500, order("B"), now=at("2024-10-01"))
    assert points.expiry_schedule(ctx, brand.id, m) == [(date(2025, 10, 1), 500)]
    assert expire_on(clock, ctx, "2025-09-30").lots == 0
    run = expire_on(clock, ctx, "2025-10-01")
    assert (run.lots, run.points, run.members) == (1, 500, 1)
    assert invariant(ctx, m) == 0


def test_fixed_expiry_lapses_each_lot_on_its_own_date_and_the_job_is_idempotent(
    ctx: Context, clock: Clock
) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=6))
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 100, order("A"), now=at("2024-01-10"))
    points.earn(ctx, brand.id, m, 200, order("B"), now=at("2024-03-05"))
    points.spend(ctx, brand.id, m, 30, order("C"), now=at("2024-04-01"))
    assert points.expiry_schedule(ctx, brand.id, m) == [
        (date(2024, 7, 10), 70),
        (date(2024, 9, 5), 200),
    ]
    first = expire_on(clock, ctx, "2024-07-10")
    again = jobs.expire_points(ctx, date(2024, 7, 10))
    assert (first.lots, first.points) == (1, 70)
    assert (again.lots, again.points) == (0, 0)
    assert invariant(ctx, m) == 200
    expired = [e for e in points.history(ctx, brand.id, m) if e.kind == "expire"]
    assert [e.points for e in expired] == [-70]
    assert "2024-07-10" in expired[0].description


def test_end_of_year_policy(ctx: Context) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, period=Period.YEAR, periods_later=1))
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 10, order("A"), now=at("2024-03-01"))
    assert points.expiry_schedule(ctx, brand.id, m) == [(date(2026, 1, 1), 10)]


def test_local_date_decides_expiry_not_utc(ctx: Context) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=1))
    m = new_member(ctx, brand)
    # 2024-01-31 23:30 UTC is already 2024-02-01 in Shanghai.
    points.earn(ctx, brand.id, m, 10, order("A"), now=at("2024-02-01", 7).replace(minute=30))
    assert points.expiry_schedule(ctx, brand.id, m) == [(date(2024, 3, 1), 10)]


def test_pending_points_become_spendable_after_the_return_window(ctx: Context) -> None:
    brand = new_brand(ctx, pending_days=7)
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 100, order("A"), now=at("2024-01-01"))
    b = points.balance(ctx, brand.id, m, now=at("2024-01-03"))
    assert (b.total, b.available, b.pending) == (100, 0, 100)
    with pytest.raises(InsufficientPoints):
        points.spend(ctx, brand.id, m, 10, order("B"), now=at("2024-01-03"))
    b = points.balance(ctx, brand.id, m, now=at("2024-01-08", 13))
    assert (b.total, b.available, b.pending) == (100, 100, 0)
    points.spend(ctx, brand.id, m, 10, order("B"), now=at("2024-01-08", 13))
    assert invariant(ctx, m) == 90


def test_birthday_extension_moves_open_lots_once_a_year(ctx: Context) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=12, birthday_extension_months=3))
    m = members.register(
        ctx,
        brand.id,
        phone="13800138000",
        name="寿星",
        birthday=date(1990, 5, 20),
        now=at("2024-01-01"),
    ).id
    other = members.register(
        ctx,
        brand.id,
        phone="13800138001",
        name="别人",
        birthday=date(1990, 6, 1),
        now=at("2024-01-01"),
    ).id
    for who in (m, other):
        points.earn(ctx, brand.id, who, 100, order(f"A{who}"), now=at("2024-02-01"))
    assert jobs.extend_birthdays(ctx, date(2024, 5, 1)) == 1
    assert jobs.extend_birthdays(ctx, date(2024, 5, 31)) == 0
    assert points.expiry_schedule(ctx, brand.id, m) == [(date(2025, 5, 1), 100)]
    assert points.expiry_schedule(ctx, brand.id, other) == [(date(2025, 2, 1), 100)]
    assert jobs.extend_birthdays(ctx, date(2025, 5, 2)) == 1
    assert points.expiry_schedule(ctx, brand.id, m) == [(date(2025, 8, 1), 100)]


def test_spend_never_overdraws_and_says_how_much_is_there(ctx: Context) -> None:
    brand = new_brand(ctx)
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 50, order("A"))
    with pytest.raises(InsufficientPoints) as raised:
        points.spend(ctx, brand.id, m, 51, order("B"))
    assert raised.value.detail == {"requested": 51, "available": 50}
    assert invariant(ctx, m) == 50


def test_refund_of_a_spend_gives_points_back_to_the_lots_they_came_from(ctx: Context) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=12))
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 100, order("A"), now=at("2024-01-01"))
    points.earn(ctx, brand.id, m, 100, order("B"), now=at("2024-03-01"))
    spent = points.spend(ctx, brand.id, m, 150, order("C"), now=at("2024-04-01"))
    assert points.expiry_schedule(ctx, brand.id, m) == [(date(2025, 3, 1), 50)]
    points.reverse(ctx, brand.id, spent.id, Source("refund", "R1"), points=60, now=at("2024-04-02"))
    # Partial give-back fills the later lot first (the customer's side).
    assert points.expiry_schedule(ctx, brand.id, m) == [
        (date(2025, 1, 1), 10),
        (date(2025, 3, 1), 100),
    ]
    points.reverse(ctx, brand.id, spent.id, Source("refund", "R2"), now=at("2024-04-03"))
    assert points.expiry_schedule(ctx, brand.id, m) == [
        (date(2025, 1, 1), 100),
        (date(2025, 3, 1), 100),
    ]
    with pytest.raises(InvalidInput):
        points.reverse(ctx, brand.id, spent.id, Source("refund", "R3"))
    assert invariant(ctx, m) == 200


def test_points_returned_to_a_lapsed_lot_lapse_at_once(ctx: Context, clock: Clock) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=1))
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 100, order("A"), now=at("2024-01-01"))
    spent = points.spend(ctx, brand.id, m, 40, order("B"), now=at("2024-01-20"))
    expire_on(clock, ctx, "2024-02-01")
    points.reverse(ctx, brand.id, spent.id, Source("refund", "R"), now=at("2024-02-10"))
    assert invariant(ctx, m) == 0
    kinds = [(e.kind, e.points) for e in points.history(ctx, brand.id, m)]
    assert kinds[:2] == [("expire", -40), ("reverse", 40)]


def test_refund_under_rolling_expiry_returns_points_with_the_rolled_date(ctx: Context) -> None:
    brand = new_brand(ctx, ROLLING_12)
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 100, order("A"), now=at("2024-01-01"))
    spent = points.spend(ctx, brand.id, m, 100, order("B"), now=at("2024-10-01"))
    points.reverse(ctx, brand.id, spent.id, Source("refund", "R"), now=at("2024-10-02"))
    assert points.expiry_schedule(ctx, brand.id, m) == [(date(2025, 10, 1), 100)]


def test_reversing_spent_earnings_needs_the_brand_to_allow_a_negative_balance(
    ctx: Context,
) -> None:
    brand = new_brand(ctx)
    m = new_member(ctx, brand)
    earned = points.earn(ctx, brand.id, m, 100, order("A"))
    points.spend(ctx, brand.id, m, 80, order("B"))
    with pytest.raises(InsufficientPoints):
        points.reverse(ctx, brand.id, earned.id, Source("refund", "R"))
    assert invariant(ctx, m) == 20
    points.reverse(ctx, brand.id, earned.id, Source("refund", "R"), allow_negative=True)
    assert invariant(ctx, m) == -80
    # The debt is paid off by the next earnings before anything else.
    points.earn(ctx, brand.id, m, 100, order("C"))
    assert invariant(ctx, m) == 20
    assert points.balance(ctx, brand.id, m).available == 20
    points.spend(ctx, brand.id, m, 20, order("D"))
    assert invariant(ctx, m) == 0


def test_brand_policy_allows_negative_balance(ctx: Context) -> None:
    brand = new_brand(ctx, allow_negative_balance=True)
    m = new_member(ctx, brand)
    earned = points.earn(ctx, brand.id, m, 100, order("A"))
    points.spend(ctx, brand.id, m, 100, order("B"))
    points.reverse(ctx, brand.id, earned.id, Source("refund", "R"), points=30)
    assert invariant(ctx, m) == -30
    with pytest.raises(InsufficientPoints):
        points.spend(ctx, brand.id, m, 1, order("C"))


def test_an_earn_pays_off_debt_then_opens_its_lot_with_its_entry(ctx: Context) -> None:
    # On PostgreSQL the new lot and its entry are one statement: the entry must
    # point at a lot of its own with the rest of the points.
    brand = new_brand(ctx, allow_negative_balance=True)
    m = new_member(ctx, brand)
    earned = points.earn(ctx, brand.id, m, 100, order("A"))
    points.spend(ctx, brand.id, m, 100, order("B"))
    points.reverse(ctx, brand.id, earned.id, Source("refund", "R"), points=30)
    e = points.earn(ctx, brand.id, m, 50, order("C"))
    assert e.lot_id is not None and e.lot_id != earned.lot_id
    with ctx.transaction() as conn:
        lot = conn.execute(
            select(
                point_lots.c.original_points,
                point_lots.c.remaining,
                point_lots.c.is_debt,
                point_lots.c.member_id,
                point_lots.c.brand_id,
            ).where(point_lots.c.id == e.lot_id)
        ).one()
    assert tuple(lot) == (20, 20, False, m, brand.id)
    assert invariant(ctx, m) == 20


def test_adjustments_need_an_operator_and_a_reason(ctx: Context) -> None:
    brand = new_brand(ctx)
    m = new_member(ctx, brand)
    with pytest.raises(InvalidInput):
        points.adjust(ctx, brand.id, m, 10, Source("operator", operator="amy"))
    e = points.adjust(
        ctx,
        brand.id,
        m,
        10,
        Source("operator", operator="amy", reason="补录 missing receipt"),
        expires_on=date(2030, 1, 1),
    )
    assert (e.kind, e.operator, e.reason) == ("adjust", "amy", "补录 missing receipt")
    points.adjust(ctx, brand.id, m, -4, Source("operator", operator="amy", reason="typo"))
    with pytest.raises(InsufficientPoints):
        points.adjust(ctx, brand.id, m, -7, Source("operator", operator="amy", reason="x"))
    assert invariant(ctx, m) == 6


def test_idempotency_key_books_once_and_refuses_a_different_booking(ctx: Context) -> None:
    brand = new_brand(ctx)
    m = new_member(ctx, brand)
    src = Source("order", "A", idempotency_key="pos-1:A")
    first = points.earn(ctx, brand.id, m, 10, src)
    assert points.earn(ctx, brand.id, m, 10, src).id == first.id
    with pytest.raises(Conflict):
        points.earn(ctx, brand.id, m, 11, src)
    assert invariant(ctx, m) == 10


def test_entries_record_store_source_and_description(ctx: Context) -> None:
    brand = new_brand(ctx)
    store = brands.create_store(ctx, brand.id, "S1", "一店")
    m = new_member(ctx, brand)
    e = points.earn(
        ctx,
        brand.id,
        m,
        10,
        Source("order", "NO-1", "消费积分 1 point per 10 元", store_id=store.id),
    )
    assert (e.store_id, e.source_type, e.source_ref, e.lot_id is not None) == (
        store.id,
        "order",
        "NO-1",
        True,
    )
    assert e.description == "消费积分 1 point per 10 元"


def test_no_query_crosses_brands(ctx: Context) -> None:
    a = new_brand(ctx)
    b = brands.create_brand(ctx, "other", "Other")
    store_b = brands.create_store(ctx, b.id, "S", "B店")
    m = new_member(ctx, a)
    e = points.earn(ctx, a.id, m, 10, order("A"))
    with pytest.raises(NotFound):
        points.earn(ctx, b.id, m, 10, order("X"))
    with pytest.raises(NotFound):
        points.balance(ctx, b.id, m)
    with pytest.raises(NotFound):
        points.reverse(ctx, b.id, e.id, Source("refund"))
    with pytest.raises(NotFound):
        points.earn(ctx, a.id, m, 10, Source("order", store_id=store_b.id))
    assert points.history(ctx, b.id, m) == []
    with pytest.raises(NotFound):
        members.get(ctx, b.id, m)


def test_history_by_time_range_newest_first(ctx: Context) -> None:
    brand = new_brand(ctx)
    m = new_member(ctx, brand)
    for day in ("2024-01-01", "2024-02-01", "2024-03-01"):
        points.earn(ctx, brand.id, m, 10, order(day), now=at(day))
    rows = points.history(ctx, brand.id, m, since=at("2024-01-15"), until=at("2024-03-01"))
    assert [r.source_ref for r in rows] == ["2024-02-01"]
    page = points.history(ctx, brand.id, m, limit=2)
    assert [r.source_ref for r in page] == ["2024-03-01", "2024-02-01"]
    rest = points.history(ctx, brand.id, m, limit=2, before_id=page[-1].id)
    assert [r.source_ref for r in rest] == ["2024-01-01"]


def test_claim_token_gives_an_anonymous_orders_points_once(ctx: Context) -> None:
    brand = new_brand(ctx)
    token = members.create_claim(ctx, brand.id, order_ref="ANON-1", points=88)
    joined = members.register(
        ctx, brand.id, phone="13800138000", name="新会员", claim_token=token.lower()
    )
    assert joined.points_balance == 88
    later = new_member(ctx, brand, "13800138001")
    with pytest.raises(Conflict) as raised:
        members.claim(ctx, brand.id, later, token)
    assert raised.value.code == "claim_already_used"
    with ctx.transaction() as conn:
        claims_booked = conn.execute(
            select(func.count()).where(point_entries.c.source_type == "claim")
        ).scalar_one()
    assert claims_booked == 1


def test_claim_tokens_expire(ctx: Context) -> None:
    brand = new_brand(ctx)
    token = members.create_claim(ctx, brand.id, order_ref="ANON-2", points=5, now=at("2024-01-01"))
    m = new_member(ctx, brand)
    with pytest.raises(Conflict) as raised:
        members.claim(ctx, brand.id, m, token, now=at("2024-03-01"))
    assert raised.value.code == "claim_expired"
    assert invariant(ctx, m) == 0


def test_lapsed_points_cannot_be_spent_even_if_the_expiry_job_is_late(
    ctx: Context, clock: Clock
) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=1))
    m = new_member(ctx, brand)
    points.earn(ctx, brand.id, m, 100, order("A"), now=at("2024-01-01"))
    points.earn(ctx, brand.id, m, 50, order("B"), now=at("2024-01-20"))
    b = points.balance(ctx, brand.id, m, now=at("2024-02-05"))
    assert (b.total, b.available) == (150, 50)
    with pytest.raises(InsufficientPoints) as raised:
        points.spend(ctx, brand.id, m, 60, order("C"), now=at("2024-02-05"))
    assert raised.value.detail["available"] == 50
    points.spend(ctx, brand.id, m, 50, order("D"), now=at("2024-02-05"))
    assert expire_on(clock, ctx, "2024-02-05").points == 100
    assert invariant(ctx, m) == 0


def test_a_spend_reads_lots_page_by_page_in_expiry_order(ctx: Context) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=12))
    m = new_member(ctx, brand)
    for day in range(1, 29):
        points.earn(ctx, brand.id, m, 10, order(f"E{day}"), now=at(f"2024-02-{day:02d}"))
    spent = points.spend(ctx, brand.id, m, 255, order("S"), now=at("2024-03-01"))
    assert spent.points == -255
    assert points.expiry_schedule(ctx, brand.id, m)[0] == (date(2025, 2, 26), 5)
    assert invariant(ctx, m) == 25


def test_expiry_works_through_members_in_batches_and_stays_idempotent(
    ctx: Context, clock: Clock
) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=1))
    ids = [new_member(ctx, brand, f"1380013{8000 + i:04d}") for i in range(5)]
    for i, m in enumerate(ids):
        points.earn(ctx, brand.id, m, 10 * (i + 1), order(f"A{i}"), now=at("2024-01-01"))
        points.earn(ctx, brand.id, m, 7, order(f"B{i}"), now=at("2024-01-20"))
    run = expire_on(clock, ctx, "2024-02-01", batch_members=2)
    assert (run.lots, run.points, run.members) == (5, 150, 5)
    again = jobs.expire_points(ctx, date(2024, 2, 1), batch_members=2)
    assert (again.lots, again.points, again.members) == (0, 0, 0)
    assert [invariant(ctx, m) for m in ids] == [7] * 5


def test_expiry_books_one_entry_per_member_and_each_lot_keeps_what_it_lost(
    ctx: Context, clock: Clock
) -> None:
    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=6))
    m = new_member(ctx, brand)
    other = new_member(ctx, brand, phone="13900139000")
    points.earn(ctx, brand.id, m, 100, order("A"), now=at("2024-01-10"))
    points.earn(ctx, brand.id, m, 200, order("B"), now=at("2024-02-05"))
    points.earn(ctx, brand.id, m, 50, order("C"), now=at("2024-06-01"))
    points.spend(ctx, brand.id, m, 30, order("D"), now=at("2024-04-01"))
    points.earn(ctx, brand.id, other, 40, order("E"), now=at("2024-01-20"))
    run = expire_on(clock, ctx, "2024-08-31")
    assert (run.lots, run.points, run.members) == (3, 310, 2)
    expired = [e for e in points.history(ctx, brand.id, m) if e.kind == "expire"]
    assert [e.points for e in expired] == [-270]
    assert expired[0].lot_id is None
    assert "2024-07-10 .. 2024-08-05" in expired[0].description
    with ctx.transaction() as conn:
        rows = conn.execute(
            select(
                point_lots.c.original_points,
                point_lots.c.remaining,
                point_lots.c.expired_points,
                point_lots.c.expired_entry_id,
            )
            .where(point_lots.c.member_id == m)
            .order_by(point_lots.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (100, 0, 70, expired[0].id),
        (200, 0, 200, expired[0].id),
        (50, 50, 0, None),
    ]
    assert invariant(ctx, m) == 50
    assert invariant(ctx, other) == 0


def test_every_points_change_is_announced_in_the_outbox(ctx: Context, clock: Clock) -> None:
    import json

    from loyalpos.db.tables import outbox

    brand = new_brand(ctx, ExpiryPolicy(ExpiryMode.FIXED, months=6))
    m = new_member(ctx, brand)
    earned = points.earn(ctx, brand.id, m, 100, order("A"), now=at("2024-01-10"))
    points.spend(ctx, brand.id, m, 30, order("B"), now=at("2024-02-01"))
    points.reverse(ctx, brand.id, earned.id, Source("refund", "R"), points=10, now=at("2024-02-02"))
    expire_on(clock, ctx, "2024-07-10")
    with ctx.transaction() as conn:
        rows = conn.execute(
            select(outbox.c.payload)
            .where(outbox.c.event_type == "points.changed")
            .order_by(outbox.c.id)
        ).scalars()
        events = [json.loads(r) for r in rows]
    assert [(e["kind"], e["delta"], e["balance"]) for e in events] == [
        ("earn", 100, 100),
        ("spend", -30, 70),
        ("reverse", -10, 60),
        ("expire", -60, 0),
    ]
    assert all(e["member_id"] == m and e["subject"] == f"member:{m}" for e in events)


def test_an_expiry_run_for_one_brand_leaves_other_brands_alone(ctx: Context, clock: Clock) -> None:
    policy = ExpiryPolicy(ExpiryMode.FIXED, months=6)
    a = new_brand(ctx, policy)
    b = brands.create_brand(ctx, "other", "Other", policy=policy)
    # Interleaved member ids: a1 < b1 < a2, so b1 lies inside a's batch range.
    a1 = new_member(ctx, a, phone="13800000001")
    b1 = new_member(ctx, b, phone="13800000002")
    a2 = new_member(ctx, a, phone="13800000003")
    for brand, m in ((a, a1), (b, b1), (a, a2)):
        points.earn(ctx, brand.id, m, 50, order(f"O{m}"), now=at("2024-01-10"))
    run = expire_on(clock, ctx, "2024-07-10", brand_id=a.id)
    assert (run.members, run.points) == (2, 100)
    assert invariant(ctx, b1) == 50 and invariant(ctx, a1) == 0 == invariant(ctx, a2)


def test_lots_move_together_and_a_lot_that_no_longer_holds_its_draw_stops_the_spend(
    ctx: Context,
) -> None:
    # On PostgreSQL several lots move in one statement: it must move each by its
    # own amount, and refuse (False) when any one lot cannot give its draw.
    brand = new_brand(ctx)
    m = new_member(ctx, brand)
    for ref, n in (("A", 30), ("B", 40), ("C", 50)):
        points.earn(ctx, brand.id, m, n, order(ref))

    def remaining() -> list[int]:
        with ctx.transaction(read_only=True) as conn:
            rows = conn.execute(
                select(point_lots.c.remaining)
                .where(point_lots.c.member_id == m)
                .order_by(point_lots.c.id)
            )
            return [int(r[0]) for r in rows]

    with ctx.transaction() as conn:
        lots = [
            int(r[0])
            for r in conn.execute(
                select(point_lots.c.id).where(point_lots.c.member_id == m).order_by(point_lots.c.id)
            )
        ]
        assert ledger_repo.take_from_lots(conn, [Draw(lots[0], 30), Draw(lots[2], 5)])
        ledger_repo.add_to_lots(conn, [Draw(lots[0], 7), Draw(lots[1], 1)])
    assert remaining() == [7, 41, 45]
    with ctx.transaction() as conn:
        assert not ledger_repo.take_from_lots(
            conn, [Draw(lots[0], 7), Draw(lots[1], 42), Draw(lots[2], 1)]
        )
        conn.rollback()
    assert remaining() == [7, 41, 45]


def test_the_expiry_job_refuses_a_day_after_today_in_the_brands_time_zone(
    ctx: Context, clock: Clock
) -> None:
    # Issue 11 item 9: `as_of=2099-01-01` expired every lot of the brand.
    east = new_brand(ctx)  # Asia/Shanghai
    west = brands.create_brand(ctx, "west", "West", timezone="America/Los_Angeles")
    m_east = new_member(ctx, east)
    m_west = new_member(ctx, west, phone="13900139000")
    for brand, m in ((east, m_east), (west, m_west)):
        source = Source("operator", None, "x", operator="op", reason="opening balance")
        points.adjust(ctx, brand.id, m, 100, source, expires_on=date(2024, 1, 1))
    # 04:00 UTC on 1 January: noon in Shanghai, still 31 December in Los Angeles.
    assert clock.now.isoformat() == "2024-01-01T04:00:00+00:00"
    refused = [
        (date(2099, 1, 1), east.id, "2024-01-01"),
        (date(2024, 1, 2), east.id, "2024-01-01"),
        (date(2024, 1, 1), west.id, "2023-12-31"),
        (date(2024, 1, 1), None, "2023-12-31"),  # every brand: each at its own today
    ]
    for as_of, brand_id, today in refused:
        with pytest.raises(InvalidInput) as raised:
            jobs.expire_points(ctx, as_of, brand_id=brand_id)
        assert raised.value.code == "expiry_date_in_future"
        assert raised.value.detail["today"] == today
        assert raised.value.detail["as_of"] == as_of.isoformat()
    assert invariant(ctx, m_east) == 100 and invariant(ctx, m_west) == 100
    # Today is accepted; by default each brand runs up to its own today.
    assert jobs.expire_points(ctx, date(2024, 1, 1), brand_id=east.id).points == 100
    assert jobs.expire_points(ctx).points == 0
    assert invariant(ctx, m_west) == 100
    clock.advance(hours=9)  # 05:00 on 1 January in Los Angeles
    run = jobs.expire_points(ctx)
    assert (run.as_of, run.points, run.members) == (date(2024, 1, 1), 100, 1)
    assert invariant(ctx, m_east) == 0 == invariant(ctx, m_west)
