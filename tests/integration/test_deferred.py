"""`db.engine.deferred`: statements whose results are not read go in one round
trip on PostgreSQL (psycopg pipeline mode); the same code runs one by one on
SQLite. What it writes commits with the transaction, and a statement that fails
in the block fails the transaction as any other would."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from loyalpos.db.engine import deferred
from loyalpos.db.tables import order_tenders, outbox
from loyalpos.service import brands
from loyalpos.service.context import Context
from loyalpos.service.outbox import EventType, emit_many


def _outbox_rows(ctx: Context) -> int:
    with ctx.transaction(read_only=True) as conn:
        return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())


def test_deferred_writes_commit_with_the_transaction(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "def", "Deferred")
    before = _outbox_rows(ctx)
    now = ctx.now()

    def work(conn: Connection) -> None:
        with deferred(conn):
            emit_many(conn, brand.id, [(EventType.ORDER_PAID, "order:1", {"n": 1})], now)
            emit_many(
                conn,
                brand.id,
                [(EventType.ORDER_PAID, f"order:{n}", {"n": n}) for n in (2, 3)],
                now,
            )
        # A statement after the block reads its results as usual.
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == before + 3

    ctx.run(work)
    assert _outbox_rows(ctx) == before + 3


def test_a_failure_in_deferred_fails_the_whole_transaction(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "def", "Deferred")
    before = _outbox_rows(ctx)
    now = ctx.now()

    def work(conn: Connection) -> None:
        emit_many(conn, brand.id, [(EventType.ORDER_PAID, "order:1", {"n": 1})], now)
        with deferred(conn):
            emit_many(conn, brand.id, [(EventType.ORDER_PAID, "order:2", {"n": 2})], now)
            # No such order: the foreign key refuses it (at once on SQLite, at the
            # end of the block on PostgreSQL), as a SQLAlchemy IntegrityError.
            conn.execute(
                insert(order_tenders).inline(),
                [{"order_id": 987654321, "method": "cash", "amount": 1, "reference": None}],
            )

    with pytest.raises(IntegrityError):
        ctx.run(work)
    assert _outbox_rows(ctx) == before
