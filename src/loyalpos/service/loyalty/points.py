"""Booking points: earn, spend, adjust, reverse; balances and history.

Every booking locks the member row first (FOR UPDATE on PostgreSQL; SQLite's
BEGIN IMMEDIATE serialises writers), so two tills spending the same member's
points queue instead of overdrawing. Lot updates are guarded as well, so a
concurrent expiry run makes a booking retry rather than go wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from loyalpos.db import ledger_repo as repo
from loyalpos.db.ledger_repo import EntryRow
from loyalpos.domain.errors import Conflict, InsufficientPoints, InvalidInput, NotFound
from loyalpos.domain.ledger import (
    EntryKind,
    Lot,
    plan_clawback,
    plan_debt_settlement,
    plan_give_back,
    plan_spend,
    reclaimable,
    require_positive,
)
from loyalpos.service.base.brands import Brand, check_store, load_brand
from loyalpos.service.base.context import Context, RetryTransaction
from loyalpos.service.base.outbox import EventType, emit

MAX_POINTS_PER_ENTRY = 1_000_000_000
# Spends read lots a page at a time: most spends touch one or two lots, and a
# long-standing member may hold thousands.
SPEND_PAGE = 20


@dataclass(frozen=True, slots=True)
class Source:
    """Where a booking comes from: an order, a rule, an operator, an import..."""

    type: str
    ref: str | None = None
    description: str = ""
    store_id: int | None = None
    operator: str | None = None
    reason: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Balance:
    total: int
    available: int
    pending: int


def _check_amount(points: int) -> None:
    require_positive(points)
    if points > MAX_POINTS_PER_ENTRY:
        raise InvalidInput("points amount is too large", field="points", value=points)


def _lock(conn: Connection, brand_id: int, member_id: int) -> None:
    if repo.lock_member(conn, brand_id, member_id) is None:
        raise NotFound(
            f"会员 {member_id} 不存在 (member {member_id} not found)", code="member_not_found"
        )


def _replay(
    conn: Connection, brand_id: int, source: Source, member_id: int, points: int
) -> EntryRow | None:
    """The entry booked earlier under the same idempotency key, if any."""
    if source.idempotency_key is None:
        return None
    found = repo.entry_by_key(conn, brand_id, source.idempotency_key)
    if found is None:
        return None
    if found.member_id != member_id or found.points != points:
        raise Conflict(
            "idempotency key was used for a different booking",
            code="idempotency_key_reused",
            key=source.idempotency_key,
        )
    return found


def _roll_expiry(conn: Connection, brand: Brand, member_id: int, now: datetime) -> None:
    new_date = brand.policy.rolling_reset(brand.local_date(now))
    if new_date is not None:
        repo.set_open_lots_expiry(conn, member_id, new_date)


def credit(
    conn: Connection,
    brand: Brand,
    member_id: int,
    points: int,
    kind: EntryKind,
    source: Source,
    now: datetime,
    *,
    expires_on: date | None = None,
    pending: bool = True,
    no_debt: bool = False,
    move_balance: bool = True,
) -> int:
    """Add points in an open transaction: pay off any debt, open a lot, book the entry.

    `no_debt`: the caller read, under the member's lock, that the member has no
    debt lot, so there is nothing to pay off (saves the read). `move_balance`: see
    `ledger_repo.insert_entry`."""
    if kind is EntryKind.EARN:
        _roll_expiry(conn, brand, member_id, now)
    settle, rest = plan_debt_settlement([] if no_debt else repo.debt_lots(conn, member_id), points)
    repo.add_to_lots(conn, settle)
    new_lot = None
    if rest:
        lot_expiry = expires_on or brand.policy.expiry_for_new_lot(brand.local_date(now))
        delay = timedelta(days=brand.pending_days if pending else 0)
        new_lot = repo.NewLot(rest, lot_expiry, now + delay)
    # The lot and its entry: one statement on PostgreSQL (ledger_repo.insert_entry).
    return _book(
        conn,
        brand,
        member_id,
        kind,
        points,
        source,
        now,
        new_lot=new_lot,
        draws=[(d.lot_id, d.points) for d in settle],
        move_balance=move_balance,
    )


def debit(
    conn: Connection,
    brand: Brand,
    member_id: int,
    points: int,
    kind: EntryKind,
    source: Source,
    now: datetime,
    *,
    move_balance: bool = True,
) -> int:
    """Take spendable points in an open transaction, earliest-expiring lots first
    (`move_balance`: see `ledger_repo.insert_entry`)."""
    today = brand.local_date(now)
    lots: list[Lot] = []
    covered = 0
    while covered < points:
        page = repo.spendable_lots(conn, member_id, now, today, len(lots), SPEND_PAGE)
        lots += page
        covered += sum(lot.remaining for lot in page)
        if len(page) < SPEND_PAGE:
            break
    draws = plan_spend(lots, points, now, today)
    if not repo.take_from_lots(conn, draws):
        raise RetryTransaction
    entry_id = _book(
        conn,
        brand,
        member_id,
        kind,
        -points,
        source,
        now,
        draws=[(d.lot_id, -d.points) for d in draws],
        move_balance=move_balance,
    )
    if kind is EntryKind.SPEND:
        _roll_expiry(conn, brand, member_id, now)
    return entry_id


def _book(
    conn: Connection,
    brand: Brand,
    member_id: int,
    kind: EntryKind,
    points: int,
    source: Source,
    now: datetime,
    *,
    lot_id: int | None = None,
    reverses: int | None = None,
    draws: list[tuple[int, int]] | None = None,
    move_balance: bool = True,
    new_lot: repo.NewLot | None = None,
) -> int:
    return repo.insert_entry(
        conn,
        brand_id=brand.id,
        member_id=member_id,
        kind=kind.value,
        points=points,
        description=source.description or kind.value,
        now=now,
        source_type=source.type,
        source_ref=source.ref,
        store_id=source.store_id,
        lot_id=lot_id,
        reverses_entry_id=reverses,
        operator=source.operator,
        reason=source.reason,
        idempotency_key=source.idempotency_key,
        draws=draws or [],
        move_balance=move_balance,
        new_lot=new_lot,
    )


def announce(conn: Connection, entry: EntryRow) -> None:
    """Emit `points.changed` for one ledger entry (the checkout announces an order's
    points itself, once for the order)."""
    emit(
        conn,
        entry.brand_id,
        EventType.POINTS_CHANGED,
        f"member:{entry.member_id}",
        {
            "member_id": entry.member_id,
            "entry_id": entry.id,
            "kind": entry.kind,
            "delta": entry.points,
            "source_type": entry.source_type,
            "source_ref": entry.source_ref,
            "balance": repo.cached_balance(conn, entry.member_id),
        },
        entry.created_at,
    )


def announce_entry(conn: Connection, brand_id: int, entry_id: int) -> None:
    """`announce` for an entry known by id (bookings made inside a larger use case)."""
    row = repo.entry(conn, brand_id, entry_id)
    assert row is not None
    announce(conn, row)


def _booking(
    ctx: Context,
    brand_id: int,
    member_id: int,
    signed_points: int,
    source: Source,
    work: Callable[[Connection, Brand], int],
) -> EntryRow:
    """Run one booking as its own transaction, idempotently when a key is given."""

    def run(conn: Connection) -> EntryRow:
        brand = load_brand(conn, brand_id)
        check_store(conn, brand_id, source.store_id)
        _lock(conn, brand_id, member_id)
        replayed = _replay(conn, brand_id, source, member_id, signed_points)
        if replayed is not None:
            return replayed
        entry_id = work(conn, brand)
        row = repo.entry(conn, brand_id, entry_id)
        assert row is not None
        announce(conn, row)
        return row

    try:
        return ctx.run(run)
    except IntegrityError:
        # Two requests with the same idempotency key raced; the loser replays.
        if source.idempotency_key is None:
            raise
        return ctx.run(run)


def earn(
    ctx: Context,
    brand_id: int,
    member_id: int,
    points: int,
    source: Source,
    *,
    now: datetime | None = None,
) -> EntryRow:
    """Book points earned (积分获得); they may wait `pending_days` before use."""
    _check_amount(points)
    at = ctx.now(now)
    return _booking(
        ctx,
        brand_id,
        member_id,
        points,
        source,
        lambda conn, brand: credit(conn, brand, member_id, points, EntryKind.EARN, source, at),
    )


def spend(
    ctx: Context,
    brand_id: int,
    member_id: int,
    points: int,
    source: Source,
    *,
    now: datetime | None = None,
) -> EntryRow:
    """Book points used (积分使用); never below zero."""
    _check_amount(points)
    at = ctx.now(now)
    return _booking(
        ctx,
        brand_id,
        member_id,
        -points,
        source,
        lambda conn, brand: debit(conn, brand, member_id, points, EntryKind.SPEND, source, at),
    )


def adjust(
    ctx: Context,
    brand_id: int,
    member_id: int,
    points: int,
    source: Source,
    *,
    expires_on: date | None = None,
    now: datetime | None = None,
) -> EntryRow:
    """An operator's correction (人工调整), up or down, always with a reason."""
    if not source.operator or not (source.reason or "").strip():
        raise InvalidInput(
            "调整积分需要操作人和原因 (an adjustment needs an operator and a reason)",
            field="reason",
        )
    if points == 0:
        raise InvalidInput("adjustment of zero points", field="points")
    _check_amount(abs(points))
    at = ctx.now(now)

    def work(conn: Connection, brand: Brand) -> int:
        if points > 0:
            return credit(
                conn,
                brand,
                member_id,
                points,
                EntryKind.ADJUST,
                source,
                at,
                expires_on=expires_on,
                pending=False,
            )
        return debit(conn, brand, member_id, -points, EntryKind.ADJUST, source, at)

    return _booking(ctx, brand_id, member_id, points, source, work)


def reverse(
    ctx: Context,
    brand_id: int,
    entry_id: int,
    source: Source,
    *,
    points: int | None = None,
    allow_negative: bool | None = None,
    now: datetime | None = None,
) -> EntryRow:
    """Undo all or part of an earn, spend or adjustment (冲正), e.g. after a refund.

    Credits are taken back from their own lot first, then from other lots; if
    the member already used them, the brand's `allow_negative_balance` (or the
    caller's override) decides between a debt lot and a refusal. Debits go back
    to the very lots they came from; points whose lot has lapsed meanwhile are
    expired again at once, so a refund never extends a validity.
    """
    at = ctx.now(now)

    def run(conn: Connection) -> EntryRow:
        brand = load_brand(conn, brand_id)
        check_store(conn, brand_id, source.store_id)
        original = repo.entry(conn, brand_id, entry_id)
        if original is None:
            raise NotFound(
                f"积分流水 {entry_id} 不存在 (ledger entry not found)", code="entry_not_found"
            )
        if original.kind not in (EntryKind.EARN, EntryKind.SPEND, EntryKind.ADJUST):
            raise InvalidInput(
                f"a {original.kind} entry cannot be reversed",
                code="not_reversible",
                kind=original.kind,
            )
        _lock(conn, brand_id, original.member_id)
        left = abs(original.points) - repo.reversed_points(conn, entry_id)
        amount = left if points is None else points
        if amount <= 0 or amount > left:
            raise InvalidInput(
                f"可冲正积分 {left} (only {left} points left to reverse)",
                code="reversal_exceeds_entry",
                reversible=left,
            )
        sign = -1 if original.points > 0 else 1
        replayed = _replay(conn, brand_id, source, original.member_id, sign * amount)
        if replayed is not None:
            return replayed
        new_id = reverse_entry(conn, brand, original, amount, source, at, allow_negative)
        row = repo.entry(conn, brand_id, new_id)
        assert row is not None
        announce(conn, row)
        return row

    return ctx.run(run)


def reverse_entry(
    conn: Connection,
    brand: Brand,
    original: EntryRow,
    amount: int,
    source: Source,
    now: datetime,
    allow_negative: bool | None = None,
) -> int:
    """Reverse `amount` of an entry in an open transaction that holds the member's
    lock (the checks on what is left to reverse are the caller's)."""
    if original.points > 0:
        return _claw_back(conn, brand, original, amount, source, now, allow_negative)
    return _give_back(conn, brand, original, amount, source, now)


def clawable(conn: Connection, member_id: int) -> int:
    """Points a reversal could take back without going below zero."""
    return sum(lot.remaining for lot in repo.open_lots(conn, member_id) if lot.remaining > 0)


def reversible(conn: Connection, brand: Brand, member_id: int, wanted: int) -> int:
    """How many of `wanted` points a reversal may take back now, under the
    member's lock: all where the brand allows a negative balance, otherwise at
    most what the member holds (`domain.ledger.reclaimable`)."""
    if brand.allow_negative_balance:
        return reclaimable(wanted, 0, True)
    return reclaimable(wanted, clawable(conn, member_id), False)


def _claw_back(
    conn: Connection,
    brand: Brand,
    original: EntryRow,
    amount: int,
    source: Source,
    now: datetime,
    allow_negative: bool | None,
) -> int:
    lots = repo.open_lots(conn, original.member_id)
    origin = next((lot for lot in lots if lot.id == original.lot_id), None)
    plan = plan_clawback(origin, lots, amount)
    debt_lot = None
    if plan.shortfall:
        negative_ok = brand.allow_negative_balance if allow_negative is None else allow_negative
        if not negative_ok:
            raise InsufficientPoints(amount, amount - plan.shortfall)
        debt_lot = repo.insert_lot(
            conn,
            brand_id=brand.id,
            member_id=original.member_id,
            points=-plan.shortfall,
            expires_on=None,
            available_at=now,
            now=now,
            is_debt=True,
        )
    if not repo.take_from_lots(conn, plan.draws):
        raise RetryTransaction
    return _book(
        conn,
        brand,
        original.member_id,
        EntryKind.REVERSE,
        -amount,
        source,
        now,
        lot_id=debt_lot,
        reverses=original.id,
        draws=[(d.lot_id, -d.points) for d in plan.draws],
    )


def _give_back(
    conn: Connection, brand: Brand, original: EntryRow, amount: int, source: Source, now: datetime
) -> int:
    outstanding = repo.outstanding_draws(conn, original.id)
    lots = repo.lots_by_id(conn, outstanding)
    draws = plan_give_back([(lots[i], n) for i, n in outstanding.items()], amount)
    repo.add_to_lots(conn, draws)
    entry_id = _book(
        conn,
        brand,
        original.member_id,
        EntryKind.REVERSE,
        amount,
        source,
        now,
        reverses=original.id,
        draws=[(d.lot_id, d.points) for d in draws],
    )
    today = brand.local_date(now)
    # Under rolling expiry the spend itself had moved every remaining point's
    # date; returned points get that date, or a later one the member has since.
    rolled = brand.policy.rolling_reset(brand.local_date(original.created_at))
    if rolled is not None:
        rolled = max(rolled, repo.latest_open_expiry(conn, original.member_id) or rolled)
    for d in draws:
        lot = lots[d.lot_id]
        expires_on = lot.expires_on
        if rolled is not None and (expires_on is None or expires_on < rolled):
            expires_on = rolled
            repo.set_lot_expiry(conn, lot.id, expires_on)
        if expires_on is not None and expires_on <= today:
            repo.take_from_lots(conn, [d])
            repo.record_expired(conn, lot.id, d.points)
            _book(
                conn,
                brand,
                original.member_id,
                EntryKind.EXPIRE,
                -d.points,
                Source(
                    "expiry",
                    f"expiry:{today.isoformat()}",
                    f"积分到期失效 points lapsed on {expires_on.isoformat()} (returned by a refund)",
                    store_id=source.store_id,
                ),
                now,
                lot_id=lot.id,
            )
    return entry_id


def balance(ctx: Context, brand_id: int, member_id: int, *, now: datetime | None = None) -> Balance:
    """Total, spendable and pending points: indexed reads for the till.

    Points past their lapse date are not spendable even before the expiry job
    has booked them: they stay in `total` until then, not in `available`.
    """
    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        today = load_brand(conn, brand_id).local_date(at)
        row = repo.balance_parts(conn, brand_id, member_id, at, today)
    if row is None:
        raise NotFound(
            f"会员 {member_id} 不存在 (member {member_id} not found)", code="member_not_found"
        )
    total, pending = int(row.points_balance), int(row.pending)
    return Balance(total=total, available=total - pending - int(row.lapsed), pending=pending)


def expiry_schedule(ctx: Context, brand_id: int, member_id: int) -> list[tuple[date | None, int]]:
    """Points by lapse date: [(2025-10-01, 500), (None, 20)] — None never lapses."""
    with ctx.transaction(read_only=True) as conn:
        if not repo.member_exists(conn, brand_id, member_id):
            raise NotFound(f"member {member_id} not found", code="member_not_found")
        return repo.expiry_schedule(conn, member_id)


def history(
    ctx: Context,
    brand_id: int,
    member_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[EntryRow]:
    """Ledger entries newest first, within a time range, paged by `before_id`."""
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500", field="limit")
    with ctx.transaction(read_only=True) as conn:
        return repo.history(conn, brand_id, member_id, since, until, limit, before_id)


def lots(ctx: Context, brand_id: int, member_id: int, *, limit: int = 200) -> list[Lot]:
    """A member's open lots (points left, or a debt), earliest lapse first: what
    the member 360 page lists with their expiry dates. At most `limit`."""
    with ctx.transaction(read_only=True) as conn:
        if not repo.member_exists(conn, brand_id, member_id):
            raise NotFound(f"member {member_id} not found", code="member_not_found")
        return repo.open_lots(conn, member_id)[:limit]
