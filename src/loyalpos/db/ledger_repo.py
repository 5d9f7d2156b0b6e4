"""Queries of the points ledger: lots, entries, draws, balances, expiry.

Functions take an open `Connection`; the service layer owns the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from loyalpos.db.engine import read_first, write_many
from loyalpos.db.tables import (
    inserted_id,
    members,
    orders,
    outbox,
    point_draws,
    point_entries,
    point_lots,
    refunds,
)
from loyalpos.domain.ledger import Draw, Lot


@dataclass(frozen=True, slots=True)
class EntryRow:
    id: int
    brand_id: int
    member_id: int
    store_id: int | None
    kind: str
    points: int
    lot_id: int | None
    reverses_entry_id: int | None
    source_type: str
    source_ref: str | None
    description: str
    operator: str | None
    reason: str | None
    idempotency_key: str | None
    created_at: datetime
    # In the history only: the earning rules behind an order's points (the
    # order's earn entry and the reversals of it by refunds), as stored with the
    # order (`orders.points_rules`); None elsewhere and for older orders.
    points_rules: list[dict[str, Any]] | None = None


_ENTRY_COLUMNS = [point_entries.c[name] for name in EntryRow.__slots__ if name != "points_rules"]


_LOT_COLUMNS = (
    point_lots.c.id,
    point_lots.c.remaining,
    point_lots.c.expires_on,
    point_lots.c.available_at,
)


def _lot(row: Any) -> Lot:
    return Lot(row.id, row.remaining, row.expires_on, row.available_at)


def open_lots(conn: Connection, member_id: int) -> list[Lot]:
    """Lots with points left (positive or debt), earliest expiry first."""
    rows = conn.execute(
        select(
            point_lots.c.id,
            point_lots.c.remaining,
            point_lots.c.expires_on,
            point_lots.c.available_at,
        )
        .where(point_lots.c.member_id == member_id, point_lots.c.remaining != 0)
        .order_by(point_lots.c.expires_on, point_lots.c.id)
    )
    return [_lot(r) for r in rows]


def _spendable(member_id: int, now: datetime, today: date) -> Any:
    return and_(
        point_lots.c.member_id == member_id,
        point_lots.c.remaining > 0,
        point_lots.c.available_at <= now,
        or_(point_lots.c.expires_on.is_(None), point_lots.c.expires_on > today),
    )


def _spendable_page(member_id: Any, now: Any, today: Any) -> Any:
    return (
        select(*_LOT_COLUMNS)
        .where(_spendable(member_id, now, today))
        .order_by(point_lots.c.expires_on.is_(None), point_lots.c.expires_on, point_lots.c.id)
    )


# Hot statements built once (building one costs more Python than running it);
# each is run with its parameters.
_SPENDABLE_PAGE = _spendable_page(bindparam("member_id"), bindparam("now"), bindparam("today"))
_SPENDABLE_FIRST = _SPENDABLE_PAGE.limit(bindparam("limit", literal_execute=False))


def spendable_lots(
    conn: Connection, member_id: int, now: datetime, today: date, offset: int, limit: int
) -> list[Lot]:
    """A page of the member's spendable lots in spending order."""
    if offset == 0:
        rows = conn.execute(
            _SPENDABLE_FIRST, {"member_id": member_id, "now": now, "today": today, "limit": limit}
        )
    else:
        rows = conn.execute(_spendable_page(member_id, now, today).offset(offset).limit(limit))
    return [_lot(r) for r in rows]


def spendable_total(conn: Connection, member_id: int, now: datetime, today: date) -> int:
    total = conn.execute(
        select(func.coalesce(func.sum(point_lots.c.remaining), 0)).where(
            _spendable(member_id, now, today)
        )
    ).scalar_one()
    return int(total)


def debt_lots(conn: Connection, member_id: int) -> list[Lot]:
    rows = conn.execute(
        select(*_LOT_COLUMNS)
        .where(point_lots.c.member_id == member_id, point_lots.c.remaining < 0)
        .order_by(point_lots.c.id)
    )
    return [_lot(r) for r in rows]


def lots_by_id(conn: Connection, lot_ids: Iterable[int]) -> dict[int, Lot]:
    ids = list(lot_ids)
    if not ids:
        return {}
    rows = conn.execute(
        select(
            point_lots.c.id,
            point_lots.c.remaining,
            point_lots.c.expires_on,
            point_lots.c.available_at,
        ).where(point_lots.c.id.in_(ids))
    )
    return {r.id: _lot(r) for r in rows}


def insert_lot(
    conn: Connection,
    *,
    brand_id: int,
    member_id: int,
    points: int,
    expires_on: date | None,
    available_at: datetime,
    now: datetime,
    is_debt: bool = False,
) -> int:
    result = conn.execute(
        insert(point_lots),
        {
            "brand_id": brand_id,
            "member_id": member_id,
            "original_points": points,
            "remaining": points,
            "is_debt": is_debt,
            "expires_on": expires_on,
            "available_at": available_at,
            "created_at": now,
        },
    )
    return inserted_id(result)


_TAKE_FROM_LOT = (
    update(point_lots)
    .where(point_lots.c.id == bindparam("lot_id"), point_lots.c.remaining >= bindparam("n"))
    .values(remaining=point_lots.c.remaining - bindparam("n"))
)
_ADD_TO_LOT = (
    update(point_lots)
    .where(point_lots.c.id == bindparam("lot_id"))
    .values(remaining=point_lots.c.remaining + bindparam("n"))
)
# PostgreSQL: every lot of a spend in one statement, `(lot_id, n)` pairs from two arrays.
_DRAWS = (
    func.unnest(
        bindparam("lot_ids", type_=ARRAY(BigInteger)), bindparam("ns", type_=ARRAY(BigInteger))
    )
    .table_valued("lot_id", "n")
    .render_derived(name="d")
)
_TAKE_FROM_LOTS = (
    update(point_lots)
    .where(point_lots.c.id == _DRAWS.c.lot_id, point_lots.c.remaining >= _DRAWS.c.n)
    .values(remaining=point_lots.c.remaining - _DRAWS.c.n)
)
_ADD_TO_LOTS = (
    update(point_lots)
    .where(point_lots.c.id == _DRAWS.c.lot_id)
    .values(remaining=point_lots.c.remaining + _DRAWS.c.n)
)


def _one_statement(conn: Connection, draws: Sequence[Draw]) -> bool:
    """Whether `draws` go as one `UPDATE ... FROM unnest(...)`: on PostgreSQL, with
    more than one lot, each lot once (a lot twice in the FROM list would be moved
    once). A spend draws from 5-6 lots in the till's benchmark: one statement
    instead of a round trip per lot."""
    return (
        len(draws) > 1
        and conn.dialect.name == "postgresql"
        and len({d.lot_id for d in draws}) == len(draws)
    )


def _arrays(draws: Sequence[Draw]) -> dict[str, list[int]]:
    return {"lot_ids": [d.lot_id for d in draws], "ns": [d.points for d in draws]}


def take_from_lots(conn: Connection, draws: Sequence[Draw]) -> bool:
    """Subtract each draw from its lot, only if the lot still holds it.

    Returns False when a lot changed since it was read (a concurrent expiry or
    spend), so the caller retries its transaction instead of overdrawing.
    """
    if _one_statement(conn, draws):
        return conn.execute(_TAKE_FROM_LOTS, _arrays(draws)).rowcount == len(draws)
    for d in draws:
        result = conn.execute(_TAKE_FROM_LOT, {"lot_id": d.lot_id, "n": d.points})
        if result.rowcount != 1:
            return False
    return True


def add_to_lots(conn: Connection, draws: Sequence[Draw]) -> None:
    """Add each draw to its lot (pays off debt, or gives points back)."""
    if _one_statement(conn, draws):
        conn.execute(_ADD_TO_LOTS, _arrays(draws))
        return
    for d in draws:
        conn.execute(_ADD_TO_LOT, {"lot_id": d.lot_id, "n": d.points})


def set_open_lots_expiry(conn: Connection, member_id: int, expires_on: date) -> None:
    conn.execute(
        update(point_lots)
        .where(
            point_lots.c.member_id == member_id,
            point_lots.c.remaining > 0,
            point_lots.c.expires_on.is_distinct_from(expires_on),
        )
        .values(expires_on=expires_on)
    )


def latest_open_expiry(conn: Connection, member_id: int) -> date | None:
    value = conn.execute(
        select(func.max(point_lots.c.expires_on)).where(
            point_lots.c.member_id == member_id, point_lots.c.remaining > 0
        )
    ).scalar_one_or_none()
    return value if isinstance(value, date) else None


def set_lot_expiry(conn: Connection, lot_id: int, expires_on: date | None) -> None:
    conn.execute(update(point_lots).where(point_lots.c.id == lot_id).values(expires_on=expires_on))


@dataclass(frozen=True, slots=True)
class NewLot:
    """A lot `insert_entry` opens for its entry (not a debt lot)."""

    points: int
    expires_on: date | None
    available_at: datetime


def _entry_with_new_lot() -> Any:
    """WITH lot AS (INSERT INTO point_lots ... RETURNING id) INSERT INTO
    point_entries (..., lot_id) VALUES (..., (SELECT id FROM lot)) RETURNING id:
    PostgreSQL only (a data-modifying WITH)."""
    lot = (
        insert(point_lots)
        .values(
            brand_id=bindparam("brand_id"),
            member_id=bindparam("member_id"),
            original_points=bindparam("lot_points"),
            remaining=bindparam("lot_points"),
            is_debt=False,
            expires_on=bindparam("lot_expires_on"),
            available_at=bindparam("lot_available_at"),
            created_at=bindparam("created_at"),
        )
        .returning(point_lots.c.id)
        .cte("new_lot")
    )
    columns = (
        "brand_id",
        "member_id",
        "store_id",
        "kind",
        "points",
        "reverses_entry_id",
        "source_type",
        "source_ref",
        "description",
        "operator",
        "reason",
        "idempotency_key",
        "created_at",
    )
    return (
        insert(point_entries)
        .values(
            {**{c: bindparam(c) for c in columns}, "lot_id": select(lot.c.id).scalar_subquery()}
        )
        .add_cte(lot)
        .returning(point_entries.c.id)
    )


_ENTRY_WITH_NEW_LOT = _entry_with_new_lot()


def insert_entry(
    conn: Connection,
    *,
    brand_id: int,
    member_id: int,
    kind: str,
    points: int,
    description: str,
    now: datetime,
    source_type: str,
    source_ref: str | None = None,
    store_id: int | None = None,
    lot_id: int | None = None,
    reverses_entry_id: int | None = None,
    operator: str | None = None,
    reason: str | None = None,
    idempotency_key: str | None = None,
    draws: Sequence[tuple[int, int]] = (),
    move_balance: bool = True,
    new_lot: NewLot | None = None,
) -> int:
    """Append one entry, its signed lot movements, and move the cached balance
    (unless `move_balance` is false: the caller then moves it in its own UPDATE of
    the member row, before its transaction ends). `new_lot`: a lot to open for
    the entry (instead of `lot_id`); on PostgreSQL the lot and the entry are one
    statement (one round trip), elsewhere two."""
    values = {
        "brand_id": brand_id,
        "member_id": member_id,
        "store_id": store_id,
        "kind": kind,
        "points": points,
        "reverses_entry_id": reverses_entry_id,
        "source_type": source_type,
        "source_ref": source_ref,
        "description": description,
        "operator": operator,
        "reason": reason,
        "idempotency_key": idempotency_key,
        "created_at": now,
    }
    if new_lot is not None and conn.dialect.name == "postgresql":
        assert lot_id is None
        row = read_first(
            conn,
            _ENTRY_WITH_NEW_LOT,
            {
                **values,
                "lot_points": new_lot.points,
                "lot_expires_on": new_lot.expires_on,
                "lot_available_at": new_lot.available_at,
            },
        )
        assert row is not None
        entry_id = int(row[0])
    else:
        if new_lot is not None:
            assert lot_id is None
            lot_id = insert_lot(
                conn,
                brand_id=brand_id,
                member_id=member_id,
                points=new_lot.points,
                expires_on=new_lot.expires_on,
                available_at=new_lot.available_at,
                now=now,
            )
        inserted = read_first(conn, _INSERT_ENTRY, {**values, "lot_id": lot_id})
        assert inserted is not None
        entry_id = int(inserted.id)
    if draws:
        write_many(
            conn,
            _INSERT_DRAWS,
            [{"entry_id": entry_id, "lot_id": lot, "points": n} for lot, n in draws],
        )
    if move_balance:
        conn.execute(
            update(members)
            .where(members.c.id == member_id)
            .values(points_balance=members.c.points_balance + points)
        )
    return entry_id


_INSERT_DRAWS = insert(point_draws).inline()
_INSERT_ENTRY = insert(point_entries).returning(point_entries.c.id)


def entry(conn: Connection, brand_id: int, entry_id: int) -> EntryRow | None:
    row = conn.execute(
        select(*_ENTRY_COLUMNS).where(
            point_entries.c.id == entry_id, point_entries.c.brand_id == brand_id
        )
    ).first()
    return EntryRow(*row) if row else None


def entry_by_key(conn: Connection, brand_id: int, key: str) -> EntryRow | None:
    row = conn.execute(
        select(*_ENTRY_COLUMNS).where(
            point_entries.c.brand_id == brand_id, point_entries.c.idempotency_key == key
        )
    ).first()
    return EntryRow(*row) if row else None


def reversed_points(conn: Connection, entry_id: int) -> int:
    """How many points of an entry earlier reversals already undid (absolute)."""
    total = conn.execute(
        select(func.coalesce(func.sum(point_entries.c.points), 0)).where(
            point_entries.c.reverses_entry_id == entry_id,
            point_entries.c.kind == "reverse",
        )
    ).scalar_one()
    return abs(int(total))


def outstanding_draws(conn: Connection, entry_id: int) -> dict[int, int]:
    """Per lot, the points a debit took and its reversals have not yet returned."""
    reversal_ids = select(point_entries.c.id).where(point_entries.c.reverses_entry_id == entry_id)
    rows = conn.execute(
        select(point_draws.c.lot_id, func.sum(point_draws.c.points))
        .where((point_draws.c.entry_id == entry_id) | point_draws.c.entry_id.in_(reversal_ids))
        .group_by(point_draws.c.lot_id)
    )
    return {lot: -int(n) for lot, n in rows if int(n) < 0}


def lock_member(conn: Connection, brand_id: int, member_id: int) -> Any:
    """The member row, locked against concurrent bookings until commit."""
    return conn.execute(
        select(members.c.id, members.c.points_balance)
        .where(members.c.id == member_id, members.c.brand_id == brand_id)
        .with_for_update()
    ).first()


def member_exists(conn: Connection, brand_id: int, member_id: int) -> bool:
    found = conn.execute(
        select(members.c.id).where(members.c.id == member_id, members.c.brand_id == brand_id)
    ).first()
    return found is not None


def balance_parts(
    conn: Connection,
    brand_id: int,
    member_id: int,
    now: datetime,
    today: date,
    *extra: Any,
) -> Any:
    """Total (cached on the member row), points still pending (not yet spendable),
    and points past their lapse date that the expiry job has not yet expired;
    `extra` columns ride along in the same statement (the till's one read)."""
    return conn.execute(
        select(*balance_columns(member_id, now, today), *extra).where(
            members.c.id == member_id, members.c.brand_id == brand_id
        )
    ).first()


def balance_columns(member_id: Any, now: Any, today: Any) -> tuple[Any, Any, Any]:
    """`points_balance`, `pending` and `lapsed` (see `balance_parts`) as columns of
    a SELECT from `members`; the arguments are values or bind parameters."""
    lapsed = (
        select(func.coalesce(func.sum(point_lots.c.remaining), 0))
        .where(
            point_lots.c.member_id == member_id,
            point_lots.c.expires_on <= today,
            point_lots.c.remaining > 0,
            point_lots.c.available_at <= now,
        )
        .scalar_subquery()
    )
    pending = (
        select(func.coalesce(func.sum(point_lots.c.remaining), 0))
        .where(
            point_lots.c.member_id == member_id,
            point_lots.c.available_at > now,
            point_lots.c.remaining > 0,
        )
        .scalar_subquery()
    )
    return members.c.points_balance, pending.label("pending"), lapsed.label("lapsed")


def expiry_schedule(conn: Connection, member_id: int) -> list[tuple[date | None, int]]:
    rows = conn.execute(
        select(point_lots.c.expires_on, func.sum(point_lots.c.remaining))
        .where(point_lots.c.member_id == member_id, point_lots.c.remaining > 0)
        .group_by(point_lots.c.expires_on)
        .order_by(point_lots.c.expires_on.is_(None), point_lots.c.expires_on)
    )
    return [(d, int(n)) for d, n in rows]


def history(
    conn: Connection,
    brand_id: int,
    member_id: int,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    before_id: int | None = None,
) -> list[EntryRow]:
    conditions = [point_entries.c.member_id == member_id, point_entries.c.brand_id == brand_id]
    if since is not None:
        conditions.append(point_entries.c.created_at >= since)
    if until is not None:
        conditions.append(point_entries.c.created_at < until)
    if before_id is not None:
        conditions.append(point_entries.c.id < before_id)
    rows = conn.execute(
        select(*_ENTRY_COLUMNS, _RULES_OF_ENTRY)
        .select_from(_WITH_ORDERS)
        .where(and_(*conditions))
        .order_by(point_entries.c.created_at.desc(), point_entries.c.id.desc())
        .limit(limit)
    )
    return [_with_rules(r) for r in rows]


def _with_rules(row: Any) -> EntryRow:
    """An entry of `_ENTRY_COLUMNS` followed by its order's `points_rules`."""
    *columns, rules = row
    entry = EntryRow(*columns)
    return entry if rules is None else replace(entry, points_rules=json.loads(rules))


# The order whose earn entry an entry is (found by its (store, order number),
# the orders' unique key), or, for a refund's reversal of that entry, the
# refunded order (by the refunds' unique key): the history shows the order's
# earning rules next to both, in the same statement.
_EARNED_BY = orders.alias("earned_by")
_REFUNDED = orders.alias("refunded_order")
_WITH_ORDERS = (
    point_entries.outerjoin(
        _EARNED_BY,
        and_(
            point_entries.c.source_type == "order",
            _EARNED_BY.c.store_id == point_entries.c.store_id,
            _EARNED_BY.c.order_no == point_entries.c.source_ref,
            _EARNED_BY.c.earn_entry_id == point_entries.c.id,
        ),
    )
    .outerjoin(
        refunds,
        and_(
            point_entries.c.source_type == "refund",
            refunds.c.store_id == point_entries.c.store_id,
            refunds.c.refund_no == point_entries.c.source_ref,
        ),
    )
    .outerjoin(
        _REFUNDED,
        and_(
            _REFUNDED.c.id == refunds.c.order_id,
            _REFUNDED.c.earn_entry_id == point_entries.c.reverses_entry_id,
        ),
    )
)
_RULES_OF_ENTRY = func.coalesce(_EARNED_BY.c.points_rules, _REFUNDED.c.points_rules)


def cached_balance(conn: Connection, member_id: int) -> int:
    """The member row's balance (kept equal to the sum of entries by every booking)."""
    return int(
        conn.execute(select(members.c.points_balance).where(members.c.id == member_id)).scalar_one()
    )


def sums(conn: Connection, member_id: int) -> tuple[int, int, int]:
    """(cached balance, sum of entries, sum of open lots): the ledger invariant."""
    cached = cached_balance(conn, member_id)
    entries = conn.execute(
        select(func.coalesce(func.sum(point_entries.c.points), 0)).where(
            point_entries.c.member_id == member_id
        )
    ).scalar_one()
    lots = conn.execute(
        select(func.coalesce(func.sum(point_lots.c.remaining), 0)).where(
            point_lots.c.member_id == member_id
        )
    ).scalar_one()
    return int(cached), int(entries), int(lots)


def expired_sums(conn: Connection, member_id: int) -> tuple[int, int]:
    """Points the member's `expire` entries took, and the points their lots
    record as expired: the two must agree (a check for tests and audits)."""
    entries = conn.execute(
        select(func.coalesce(-func.sum(point_entries.c.points), 0)).where(
            point_entries.c.member_id == member_id, point_entries.c.kind == "expire"
        )
    ).scalar_one()
    lots = conn.execute(
        select(func.coalesce(func.sum(point_lots.c.expired_points), 0)).where(
            point_lots.c.member_id == member_id
        )
    ).scalar_one()
    return int(entries), int(lots)


def record_expired(conn: Connection, lot_id: int, points: int) -> None:
    """Count `points` as expired from a lot (the refund path expires one lot at
    a time, with the lot on its entry)."""
    conn.execute(
        update(point_lots)
        .where(point_lots.c.id == lot_id)
        .values(expired_points=point_lots.c.expired_points + points)
    )


def _due(as_of: date, brand_id: int | None) -> Any:
    due = and_(point_lots.c.remaining > 0, point_lots.c.expires_on <= as_of)
    if brand_id is not None:
        due = and_(due, point_lots.c.brand_id == brand_id)
    return due


def members_with_due_lots(conn: Connection, as_of: date, brand_id: int | None) -> list[int]:
    """Every member holding a lot that lapses on or before `as_of`, in id order."""
    rows = conn.execute(
        select(point_lots.c.member_id)
        .where(_due(as_of, brand_id))
        .group_by(point_lots.c.member_id)
        .order_by(point_lots.c.member_id)
    )
    return [int(r[0]) for r in rows]


def lock_members(conn: Connection, member_ids: Sequence[int]) -> None:
    """Lock member rows in id order, the order every multi-member job uses."""
    conn.execute(
        select(members.c.id)
        .where(members.c.id.in_(member_ids))
        .order_by(members.c.id)
        .with_for_update()
    ).all()


def expire_due_lots(
    conn: Connection,
    as_of: date,
    now: datetime,
    first: int,
    last: int,
    brand_id: int | None = None,
) -> tuple[int, int, int]:
    """Expire the lots of members `first`..`last` (of `brand_id`, or of every
    brand) that lapse on or before `as_of`, set-based.

    Three statements over the same rows: append one `expire` entry per member
    (the sum of its due lots), point each emptied lot at that entry with the
    points it lost, and lower each member's cached balance; then announce each
    member's change in the outbox. One entry per member rather than per lot
    keeps a daily run of a million lots to a tenth of the ledger rows; the lots
    keep the exact breakdown. The caller holds the members' row locks, so no
    booking can change these lots meanwhile (a range, not an id list, binds two
    values: a lot cannot become due for a past `as_of` after the caller listed
    the members, and if one did, the lot rows' own locks and the bookings'
    guarded updates would still keep it exact). A second run for the same date
    finds nothing left, which makes it idempotent. Returns (lots, points, members).
    """
    due = and_(_due(as_of, brand_id), point_lots.c.member_id.between(first, last))
    ref = f"expiry:{as_of.isoformat()}"
    earliest, latest = func.min(point_lots.c.expires_on), func.max(point_lots.c.expires_on)
    lapsed_on = case(
        (earliest == latest, cast(earliest, String)),
        else_=cast(earliest, String) + literal(" .. ") + cast(latest, String),
    )
    per_member = (
        select(
            point_lots.c.brand_id,
            point_lots.c.member_id,
            literal("expire"),
            -func.sum(point_lots.c.remaining),
            literal("expiry"),
            literal(ref),
            literal("积分到期失效 points lapsed on ") + lapsed_on,
            literal(now, point_entries.c.created_at.type),
        )
        .where(due)
        .group_by(point_lots.c.brand_id, point_lots.c.member_id)
    )
    columns = [
        "brand_id",
        "member_id",
        "kind",
        "points",
        "source_type",
        "source_ref",
        "description",
        "created_at",
    ]
    ids = (
        conn.execute(
            insert(point_entries).from_select(columns, per_member).returning(point_entries.c.id)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0, 0, 0
    booked = point_entries.alias("booked")
    this_run = and_(
        booked.c.id.between(min(ids), max(ids)),
        booked.c.kind == "expire",
        booked.c.source_ref == ref,
    )
    # Joined on this run's entries, which name exactly the batch's members: an
    # `IN (batch)` here as well would be checked against every lot of the join.
    lots = conn.execute(
        update(point_lots)
        .where(_due(as_of, brand_id), this_run, booked.c.member_id == point_lots.c.member_id)
        .values(
            expired_points=point_lots.c.expired_points + point_lots.c.remaining,
            expired_entry_id=booked.c.id,
            remaining=0,
        )
    ).rowcount
    conn.execute(
        update(members)
        .where(this_run, booked.c.member_id == members.c.id)
        .values(points_balance=members.c.points_balance + booked.c.points)
    )
    _announce_expiry(conn, this_run, booked, ref, now)
    points = conn.execute(
        select(func.coalesce(func.sum(booked.c.points), 0)).where(this_run)
    ).scalar_one()
    return lots, -int(points), len(ids)


def _announce_expiry(conn: Connection, this_run: Any, booked: Any, ref: str, now: datetime) -> None:
    """One `points.changed` outbox event per member of the run, in the same
    set-based way (the payload is built in SQL: numbers and fixed strings only)."""

    def num(column: Any) -> Any:
        return cast(column, String)

    payload = (
        literal('{"at": "' + now.isoformat() + '", "balance": ')
        + num(members.c.points_balance)
        + literal(', "delta": ')
        + num(booked.c.points)
        + literal(', "entry_id": ')
        + num(booked.c.id)
        + literal(', "kind": "expire", "member_id": ')
        + num(booked.c.member_id)
        + literal(', "source_ref": "' + ref + '", "source_type": "expiry", "subject": "member:')
        + num(booked.c.member_id)
        + literal('", "type": "points.changed"}')
    )
    conn.execute(
        insert(outbox).from_select(
            ["brand_id", "event_type", "subject", "payload", "created_at"],
            select(
                booked.c.brand_id,
                literal("points.changed"),
                literal("member:") + num(booked.c.member_id),
                payload,
                literal(now, outbox.c.created_at.type),
            ).where(this_run, members.c.id == booked.c.member_id),
        )
    )
