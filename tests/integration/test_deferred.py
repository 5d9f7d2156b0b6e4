"""`db.engine.deferred`: writes whose results are not read go as one statement at
the end of the block on PostgreSQL; the same code runs one by one on SQLite.
What it writes is what one-by-one writes would have written, commits with the
transaction, and a write that fails in the block fails the transaction as any
other would."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from loyalpos.db.engine import deferred, write_many
from loyalpos.db.tables import brands as brands_table
from loyalpos.db.tables import order_tenders, outbox
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType, emit_many


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
            write_many(
                conn,
                insert(order_tenders).inline(),
                [{"order_id": 987654321, "method": "cash", "amount": 1, "reference": None}],
            )

    with pytest.raises(IntegrityError):
        ctx.run(work)
    assert _outbox_rows(ctx) == before


_INSERT = insert(outbox).inline()
_MARK = (
    update(outbox)
    .where(outbox.c.subject == bindparam("key"))
    .values(processed_at=bindparam("at", type_=outbox.c.processed_at.type), event_type="seen")
)


_RENAME = (
    update(brands_table)
    .where(brands_table.c.id == bindparam("brand"))
    .values(name=bindparam("name"))
)


def _events(conn: Connection, brand_id: int) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        select(outbox.c.event_type, outbox.c.subject, outbox.c.payload)
        .add_columns(outbox.c.created_at, outbox.c.processed_at)
        .where(outbox.c.brand_id == brand_id)
        .order_by(outbox.c.subject)
    )
    return [tuple(r) for r in rows]


def _writes(conn: Connection, brand_id: int, now: Any) -> None:
    """Inserts of awkward values, two to one table, and updates that must see
    what was written before them."""
    local = now.astimezone(timezone(timedelta(hours=8)))
    row = {"brand_id": brand_id, "event_type": "x", "created_at": local, "processed_at": None}
    write_many(conn, _INSERT, [{**row, "subject": "a", "payload": "100% 'quoted' 中文 %(x)s"}])
    write_many(
        conn,
        _INSERT,
        [
            {**row, "subject": "b", "payload": "{}", "processed_at": now},
            {**row, "subject": "c", "payload": "", "event_type": "y"},
        ],
    )
    # An update of a row the block inserted, then of the same row again: the
    # second wins, as one by one.
    write_many(conn, _MARK, [{"key": "c", "at": now}])
    write_many(conn, _MARK, [{"key": "c", "at": now + timedelta(hours=1)}])
    # An insert after an update of its table, then an update of that new row.
    write_many(conn, _INSERT, [{**row, "subject": "d", "payload": "[]"}])
    write_many(conn, _MARK, [{"key": "d", "at": now}, {"key": "a", "at": now}])


def test_deferred_writes_what_one_by_one_writes_would(ctx: Context) -> None:
    now = ctx.now()
    one_by_one = brands.create_brand(ctx, "seq", "One by one")
    batched = brands.create_brand(ctx, "def", "Deferred")

    def work(conn: Connection) -> None:
        _writes(conn, one_by_one.id, now)
        with deferred(conn):
            _writes(conn, batched.id, now)

    ctx.run(work)
    with ctx.transaction(read_only=True) as conn:
        expected = _events(conn, one_by_one.id)
        assert _events(conn, batched.id) == expected
    assert [(e[0], e[1], e[4]) for e in expected] == [
        ("seen", "a", now),
        ("x", "b", now),
        ("seen", "c", now + timedelta(hours=1)),
        ("seen", "d", now),
    ]


def test_deferred_sends_its_writes_as_few_statements_at_its_end(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs each write at once: no round trips to save")
    brand = brands.create_brand(ctx, "def", "Deferred")
    now = ctx.now()
    sent: list[str] = []
    original = psycopg.Cursor.execute

    def recorded(cursor: Any, query: Any, *args: Any, **kw: Any) -> Any:
        sent.append(str(query))
        return original(cursor, query, *args, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", recorded)
    monkeypatch.setattr(psycopg.Cursor, "executemany", recorded)
    row = {"brand_id": brand.id, "event_type": "x", "created_at": now, "payload": "{}"}

    def work(conn: Connection) -> None:
        with deferred(conn):
            write_many(conn, _INSERT, [{**row, "subject": "a"}, {**row, "subject": "b"}])
            write_many(conn, _RENAME, [{"brand": brand.id, "name": "Renamed"}])
            write_many(conn, _INSERT, [{**row, "subject": "c"}])
            assert sent == []  # nothing goes before the end of the block
            # an update of a table written in the block: what came before goes first
            write_many(conn, _MARK, [{"key": "a", "at": now}])
            assert len(sent) == 1
        assert len(sent) == 2 and all(s.startswith("WITH") for s in sent), sent

    ctx.run(work)
    assert brands.get_brand(ctx, brand.id).name == "Renamed"
    with ctx.transaction(read_only=True) as conn:
        assert [e[:2] for e in _events(conn, brand.id)] == [
            ("seen", "a"),
            ("x", "b"),
            ("x", "c"),
        ]


def test_a_deferred_block_inside_another_joins_it(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "def", "Deferred")
    now = ctx.now()
    row = {"brand_id": brand.id, "event_type": "x", "created_at": now, "payload": "{}"}

    def work(conn: Connection) -> None:
        with deferred(conn):
            with deferred(conn):
                write_many(conn, _INSERT, [{**row, "subject": "a"}])
            # still kept for the outer block's end, in order with the inner write
            write_many(conn, _INSERT, [{**row, "subject": "b"}])
            write_many(conn, _MARK, [{"key": "a", "at": now}])

    ctx.run(work)
    with ctx.transaction(read_only=True) as conn:
        assert [e[:2] for e in _events(conn, brand.id)] == [("seen", "a"), ("x", "b")]
