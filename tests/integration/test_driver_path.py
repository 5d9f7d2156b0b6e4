"""`db.engine.write_many` and `read_first`: on PostgreSQL the till's hot statements
run on psycopg's cursor, compiled once, bypassing SQLAlchemy's execution context.
They must give what SQLAlchemy gives: the same values, times in UTC, literal
parameters filled in, and the same exception types (a repeat of an order number
is found by its IntegrityError)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from loyalpos.db.engine import read_first, write_many
from loyalpos.db.tables import outbox, stores
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context

SHANGHAI = timezone(timedelta(hours=8))

_INSERT_OUTBOX = insert(outbox).inline()
_INSERT_STORE = insert(stores).returning(stores.c.id)
# A literal (the 0 of coalesce) becomes a parameter SQLAlchemy fills itself.
_SUMMARY = select(
    func.count().label("events"),
    func.max(outbox.c.created_at).label("last"),
    func.coalesce(func.sum(func.length(outbox.c.subject)), 0).label("subject_chars"),
).where(outbox.c.brand_id == bindparam("brand_id"), outbox.c.event_type == bindparam("kind"))
_PROCESS = (
    update(outbox)
    .where(outbox.c.id == bindparam("event_id"))
    .values(processed_at=bindparam("at", type_=outbox.c.processed_at.type))
)


def test_written_and_read_back_as_sqlalchemy_reads_them(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "drv", "Driver path")
    local = datetime(2026, 12, 4, 20, 30, tzinfo=SHANGHAI)  # 12:30 UTC
    rows = [
        {
            "brand_id": brand.id,
            "event_type": "order.paid",
            "subject": f"order:{n}",
            "payload": "{}",
            "created_at": local + timedelta(minutes=n),
        }
        for n in range(3)
    ]
    with ctx.transaction() as conn:
        write_many(conn, _INSERT_OUTBOX, rows)
        write_many(conn, _INSERT_OUTBOX, [{**rows[0], "event_type": "points.changed"}])
    params = {"brand_id": brand.id, "kind": "order.paid"}
    with ctx.transaction() as conn:
        if ctx.dialect == "postgresql":
            # psycopg hands times back in the session's zone: make it not UTC.
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'Asia/Shanghai'")
        fast = read_first(conn, _SUMMARY, params)
        slow = conn.execute(_SUMMARY, params).first()
    assert fast is not None and slow is not None
    assert (fast.events, fast.subject_chars) == (3, 3 * len("order:0"))
    assert (fast.events, fast.subject_chars) == (slow.events, slow.subject_chars)
    # Stored as the instant it was, handed back in UTC.
    assert fast.last == local + timedelta(minutes=2)
    assert fast.last.utcoffset() == timedelta(0)
    assert fast.last.hour == 12 and fast.last.minute == 32


def test_a_write_without_result_converts_its_times(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "drv2", "Driver path 2")
    now = datetime(2026, 12, 4, 8, 0, tzinfo=SHANGHAI)
    row = {
        "brand_id": brand.id,
        "event_type": "order.paid",
        "subject": "order:1",
        "payload": "{}",
        "created_at": now,
    }
    with ctx.transaction() as conn:
        write_many(conn, _INSERT_OUTBOX, [row])
        event_id = conn.execute(
            select(outbox.c.id).where(outbox.c.brand_id == brand.id)
        ).scalar_one()
        write_many(conn, _PROCESS, [{"event_id": event_id, "at": now + timedelta(seconds=5)}])
    with ctx.transaction() as conn:
        done = conn.execute(
            select(outbox.c.processed_at).where(outbox.c.id == event_id)
        ).scalar_one()
    assert done == datetime(2026, 12, 4, 0, 0, 5, tzinfo=UTC)


def test_a_key_violation_is_sqlalchemys_integrity_error(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "drv3", "Driver path 3")
    store = {"brand_id": brand.id, "code": "S1", "name": "One", "created_at": ctx.now()}
    with ctx.transaction() as conn:
        first = read_first(conn, _INSERT_STORE, store)
    assert first is not None and int(first.id) > 0
    with pytest.raises(IntegrityError), ctx.transaction() as conn:
        read_first(conn, _INSERT_STORE, store)
    with pytest.raises(IntegrityError), ctx.transaction() as conn:
        write_many(conn, insert(stores).inline(), [store])
    with ctx.transaction() as conn:
        count = conn.execute(
            select(func.count()).select_from(stores).where(stores.c.brand_id == brand.id)
        ).scalar_one()
    assert count == 1
