"""What pricing a cart at the till reads: the store, the member (by id, phone, card,
dynamic code or payer id) with the state a quote needs, the rules in force, the
wallet, the points and budgets; and pricing them with the engine."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, bindparam, exists, func, select
from sqlalchemy.exc import DBAPIError

from loyalpos.db import ledger_repo
from loyalpos.db.engine import read_first
from loyalpos.db.tables import (
    brands,
    members,
    order_benefits,
    orders,
    point_lots,
    reservations,
)
from loyalpos.domain.checkout import Tier
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.domain.pricing import model as m
from loyalpos.domain.pricing.engine import quote as engine_quote
from loyalpos.rules.schema import RuleSetDoc
from loyalpos.service.base.brands import BRAND_COLUMNS, Brand, brand_from_row, store_in_brand
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.loyalty.members import (
    Member,
    checked_card_no,
    member_from_row,
    member_id_by_identity,
    member_id_from_code,
)
from loyalpos.service.loyalty.phones import normalise_phone
from loyalpos.service.rulebook.rulesets import InForce, rules_at
from loyalpos.service.till._model import CartRequest, MemberRef, Priced, StoreRow

log = logging.getLogger(__name__)


def load_store(conn: Connection, brand: Brand, store_id: int) -> StoreRow:
    store = store_in_brand(conn, brand.id, store_id)
    return StoreRow(store.id, store.code, store.name, ZoneInfo(store.timezone or brand.timezone))


T = TypeVar("T")


def cached_store(conn: Connection, ctx: Context, brand: Brand, store_id: int) -> StoreRow:
    """The store from a 30 s per-process cache (stores change rarely)."""
    return ctx.remember(
        ("store", brand.id, store_id), 30.0, lambda: load_store(conn, brand, store_id)
    )


@contextmanager
def reading_connection(ctx: Context) -> Iterator[Connection]:
    """A connection for a till's reads. On PostgreSQL without a transaction
    (autocommit): at READ COMMITTED each statement has its own snapshot anyway, so
    BEGIN and COMMIT were two round trips that bought nothing. SQLite keeps its
    read transaction (one snapshot, and its BEGIN is local)."""
    if ctx.dialect != "postgresql":
        with ctx.transaction(read_only=True) as conn:
            yield conn
        return
    with ctx.engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


def once_more_if_dropped(work: Callable[[], T]) -> T:
    """Run `work` (a whole transaction, safe to repeat) a second time if the
    database connection was lost under it (the pool does not ping: see db.engine)."""
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return work()


def find_member(
    conn: Connection,
    ctx: Context,
    brand_id: int,
    ref: MemberRef,
    now: datetime,
    *,
    lock: bool = False,
) -> Member:
    """The member a till named, by id, phone, card, dynamic code or external id;
    with `lock`, its row is read under the booking lock (one statement for both)."""
    return find_member_and_brand(conn, ctx, brand_id, ref, now, lock=lock)[0]


def find_member_and_brand(
    conn: Connection, ctx: Context, brand_id: int, ref: MemberRef, now: datetime, *, lock: bool
) -> tuple[Member, Brand | None]:
    """`find_member`; with `lock`, also the brand as it is now (read in the same
    statement as the locked member row: its points policy is what a booking uses)."""
    column, value, what = _member_key(conn, ctx, brand_id, ref, now)
    row = read_first(conn, _MEMBER_BY[column, lock], {"brand_id": brand_id, "key": value})
    if row is None:
        raise NotFound(
            f"未找到会员 (no member with this {what})", code="member_not_found", key=what
        )
    return member_from_row(row), brand_from_row(row) if lock else None


def _member_select(column: str, lock: bool) -> Any:
    if lock:
        return (
            select(members, *BRAND_COLUMNS)
            .join(brands, brands.c.id == members.c.brand_id)
            .where(
                members.c.brand_id == bindparam("brand_id"), members.c[column] == bindparam("key")
            )
            .with_for_update(of=members)
        )
    return select(members).where(
        members.c.brand_id == bindparam("brand_id"), members.c[column] == bindparam("key")
    )


# The till's hot statements are built once and run with parameters: building one
# (coercions, cache key) cost more Python than running it.
_MEMBER_BY = {
    (column, lock): _member_select(column, lock)
    for column in ("id", "phone", "card_no")
    for lock in (False, True)
}


def _member_key(
    conn: Connection, ctx: Context, brand_id: int, ref: MemberRef, now: datetime
) -> tuple[str, Any, str]:
    """The column of `members` that names the member, its value, and what names it."""
    given = [
        x for x in (ref.member_id, ref.phone, ref.card_no, ref.code, ref.identity) if x is not None
    ]
    if len(given) != 1:
        raise InvalidInput(
            "请只提供一种会员识别方式 (give exactly one of member_id, phone, card_no, code, identity)",
            code="member_ref_invalid",
        )
    if ref.member_id is not None:
        return "id", ref.member_id, "id"
    if ref.code is not None:
        return "id", member_id_from_code(ctx, brand_id, ref.code, now), "id"
    if ref.phone is not None:
        return "phone", normalise_phone(ref.phone, ctx.settings.default_region), "phone"
    if ref.card_no is not None:
        return "card_no", checked_card_no(ref.card_no), "card number"
    assert ref.identity is not None
    found = member_id_by_identity(conn, brand_id, ref.identity)
    if found is None:
        raise NotFound(
            "未找到会员 (no member bound to this id)", code="member_not_found", key="identity"
        )
    return "id", found, "id"


@dataclass(frozen=True, slots=True)
class MemberState:
    """A member's points and growth as pricing and booking need them."""

    total: int
    spendable: int
    pending: int
    held_elsewhere: int
    spent: int
    orders_count: int
    last_order_at: datetime | None
    in_debt: bool = False


def _state_columns(member_id: Any, other_than: Any = None) -> list[Any]:
    """The columns of a `MemberState` in a SELECT from `members`; `member_id` is a
    bind parameter or `members.c.id` (subqueries correlated with the row);
    `other_than`: the id (parameter or scalar subquery) of the reservation whose
    hold does not count (this till's own), or None."""
    now: Any = bindparam("now")
    held = select(func.coalesce(func.sum(reservations.c.points), 0)).where(
        reservations.c.member_id == member_id,
        reservations.c.released_at.is_(None),
        reservations.c.expires_at > now,
    )
    if other_than is not None:
        held = held.where(reservations.c.id != other_than)
    return [
        *ledger_repo.balance_columns(member_id, now, bindparam("today")),
        held.scalar_subquery().label("held"),
        members.c.spent_fen,
        members.c.orders_count,
        members.c.last_order_at,
        exists()
        .where(point_lots.c.member_id == member_id, point_lots.c.remaining < 0)
        .label("in_debt"),
    ]


def _member_state_select(other_than_reservation: bool) -> Any:
    member_id: Any = bindparam("member_id")
    other: Any = bindparam("reservation_id") if other_than_reservation else None
    return select(*_state_columns(member_id, other)).where(
        members.c.id == member_id, members.c.brand_id == bindparam("brand_id")
    )


_MEMBER_STATE = {other: _member_state_select(other) for other in (False, True)}


def _confirm_state_select(quoted: bool) -> Any:
    """For a member's confirm, run once the member's row is locked: the member's
    state (as `member_state`), the order already booked under this order number
    in this store if any (the replay check: a separate statement after the lock
    wait, so at READ COMMITTED its snapshot includes what an earlier holder of
    the lock committed), and with `quoted` the id of the till's quote hold (NULL
    if the token is not one of this store's), whose own hold does not count."""
    member_id: Any = bindparam("member_id")
    quoted_id = None
    if quoted:
        mine = reservations.alias("quoted")
        quoted_id = (
            select(mine.c.id)
            .where(
                mine.c.token == bindparam("token"),
                mine.c.brand_id == bindparam("brand_id"),
                mine.c.store_id == bindparam("store_id"),
            )
            .scalar_subquery()
        )
    booked = and_(
        orders.c.store_id == bindparam("store_id"), orders.c.order_no == bindparam("order_no")
    )
    columns = [
        *_state_columns(member_id, quoted_id),
        orders.c.id.label("order_id"),
        orders.c.request_hash,
        orders.c.response,
        orders.c.brand_id.label("order_brand_id"),
    ]
    if quoted_id is not None:
        columns.append(quoted_id.label("reservation_id"))
    return (
        select(*columns)
        .select_from(members.outerjoin(orders, booked))
        .where(members.c.id == member_id, members.c.brand_id == bindparam("brand_id"))
    )


CONFIRM_STATE = {quoted: _confirm_state_select(quoted) for quoted in (False, True)}
# A member and its state in one statement, for reads without the booking lock
# (quote, identify): the member's columns, then the state's extra ones.
_MEMBER_AND_STATE = {
    column: select(
        members,
        *(c for c in _state_columns(members.c.id) if c.name not in members.c),
    ).where(members.c.brand_id == bindparam("brand_id"), members.c[column] == bindparam("key"))
    for column in ("id", "phone", "card_no")
}


def state_from_row(row: Any) -> MemberState:
    total, pending = int(row.points_balance), int(row.pending)
    return MemberState(
        total,
        total - pending - int(row.lapsed),
        pending,
        int(row.held),
        int(row.spent_fen),
        int(row.orders_count),
        row.last_order_at,
        bool(row.in_debt),
    )


def find_member_with_state(
    conn: Connection, ctx: Context, brand: Brand, ref: MemberRef, now: datetime
) -> tuple[Member, MemberState]:
    """`find_member` (without the lock) and `member_state` (no reservation of
    this till) in one statement."""
    column, value, what = _member_key(conn, ctx, brand.id, ref, now)
    row = conn.execute(
        _MEMBER_AND_STATE[column],
        {"brand_id": brand.id, "key": value, "now": now, "today": brand.local_date(now)},
    ).first()
    if row is None:
        raise NotFound(
            f"未找到会员 (no member with this {what})", code="member_not_found", key=what
        )
    return member_from_row(row), state_from_row(row)


def member_state(
    conn: Connection, brand: Brand, member_id: int, now: datetime, reservation_id: int | None
) -> MemberState:
    """One statement: balance parts (as `points.balance` counts them), points
    other tills' live quotes hold, growth, and whether the member owes points (a
    debt lot: an earn must pay it off first)."""
    params: dict[str, Any] = {
        "member_id": member_id,
        "brand_id": brand.id,
        "now": now,
        "today": brand.local_date(now),
    }
    if reservation_id is not None:
        params["reservation_id"] = reservation_id
    row = read_first(conn, _MEMBER_STATE[reservation_id is not None], params)
    assert row is not None, "the member row is read before its state"
    return state_from_row(row)


def tiers_of(doc: RuleSetDoc) -> list[Tier]:
    return [Tier(t.id, t.name or t.id, t.min_spent_fen) for t in doc.tiers]


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything a price depends on besides the cart, read once per request."""

    store: StoreRow
    rules: InForce
    member: Member | None
    context: m.MemberContext
    local_now: datetime
    points_total: int
    points_available: int
    usable: tuple[wallet.Coupon, ...]
    spent: int = 0
    orders_count: int = 0
    last_order_at: datetime | None = None
    budgets: dict[str, m.Remaining] = field(default_factory=dict)
    in_debt: bool = False


def budgeted(doc: RuleSetDoc) -> dict[str, tuple[int | None, int | None]]:
    """Templates and promotions with a total budget: (uses, discount in fen)."""
    return {
        b.id: (b.limits.total_uses, b.limits.total_discount_fen)
        for b in (*doc.coupons, *doc.promotions)
        if b.limits.total_uses is not None or b.limits.total_discount_fen is not None
    }


def remaining_budgets(conn: Connection, brand_id: int, doc: RuleSetDoc) -> dict[str, m.Remaining]:
    """What is left of each total budget, from the benefits booked on orders."""
    caps = budgeted(doc)
    if not caps:
        return {}
    rows = conn.execute(
        select(order_benefits.c.benefit, func.count(), func.sum(order_benefits.c.saving))
        .join(orders, orders.c.id == order_benefits.c.order_id)
        .where(orders.c.brand_id == brand_id, order_benefits.c.benefit.in_(list(caps)))
        .group_by(order_benefits.c.benefit)
    ).all()
    used = {str(b): (int(n), int(total or 0)) for b, n, total in rows}
    left: dict[str, m.Remaining] = {}
    for benefit, (uses, discount) in caps.items():
        n, total = used.get(benefit, (0, 0))
        left[benefit] = m.Remaining(
            None if uses is None else max(0, uses - n),
            None if discount is None else max(0, discount - total),
        )
    return left


def _needs_usage(doc: RuleSetDoc) -> bool:
    return any(
        b.limits.per_member_day or b.limits.per_member_week or b.limits.per_member_month
        for b in (*doc.coupons, *doc.promotions)
    )


def load_inputs(
    conn: Connection,
    ctx: Context,
    brand: Brand,
    store_id: int,
    now: datetime,
    *,
    member: Member | None,
    reservation_id: int | None = None,
    state: MemberState | None = None,
    with_wallet: bool = True,
    rules: InForce | None = None,
) -> Inputs:
    """Read what pricing needs: the store, the rules in force at `now`, and the
    member's tier, spendable points (less what other tills hold), usable coupons
    and template usage. `state`: the member's, read already (with the member).
    Without `with_wallet` the member's coupons are not read (an empty wallet):
    only for a confirm that uses none, whose price is then the same, as every
    coupon it does not choose is excluded anyway. `rules`: price with these
    instead of the version in force (a draft HQ tries before publishing)."""
    store = cached_store(conn, ctx, brand, store_id)
    if rules is None:
        rules = rules_at(conn, ctx, brand.id, now)
    local_now = now.astimezone(store.zone).replace(tzinfo=None)
    budgets = remaining_budgets(conn, brand.id, rules.document)
    if member is None:
        return Inputs(store, rules, None, m.MemberContext(), local_now, 0, 0, (), budgets=budgets)
    found = wallet.open_coupons(conn, member.id, now) if with_wallet else []
    usable = tuple(c for c in found if c.usable_by(reservation_id, now))
    if state is None:
        state = member_state(conn, brand, member.id, now, reservation_id)
    available = max(0, state.spendable - state.held_elsewhere)
    usage = (
        wallet.usage(conn, member.id, local_now, store.zone) if _needs_usage(rules.document) else {}
    )
    context = m.MemberContext(
        tier=member.tier,
        points=available,
        first_order=state.orders_count == 0,
        wallet=wallet.wallet_for_engine(usable, reservation_id, now, store.zone),
        usage=usage,
    )
    return Inputs(
        store,
        rules,
        member,
        context,
        local_now,
        state.total,
        available,
        usable,
        state.spent,
        state.orders_count,
        state.last_order_at,
        budgets,
        state.in_debt,
    )


def price_with(inputs: Inputs, lines: tuple[m.CartLine, ...], options: m.Options) -> Priced:
    """The engine's quote for these inputs (pure: no I/O)."""
    cart = m.Cart(inputs.store.code, inputs.local_now, lines)
    if inputs.budgets:
        options = replace(options, budgets={**inputs.budgets, **options.budgets})
    q = engine_quote(inputs.rules.rules, inputs.context, cart, options)
    if q.debug.get("search_complete") is False:
        # The search stopped at its work budget: the plan is legal and good, maybe not
        # the best. Rare (thousands of interchangeable benefits): say which rule set
        # and store, so an operator can look at it.
        log.warning(
            "quote search stopped at its budget: store %s, rule version %s, %s lines, "
            "%s coupons in the wallet",
            inputs.store.code,
            inputs.rules.version,
            len(lines),
            len(inputs.context.wallet),
        )
    return Priced(
        inputs.store, inputs.member, inputs.rules, q, inputs.points_available, inputs.usable
    )


def price(
    conn: Connection,
    ctx: Context,
    brand: Brand,
    req: CartRequest,
    now: datetime,
    *,
    member: Member | None,
    reservation_id: int | None = None,
    state: MemberState | None = None,
    rules: InForce | None = None,
) -> Priced:
    """Price a cart for a member with the rules in force at `now` (or `rules`)."""
    inputs = load_inputs(
        conn,
        ctx,
        brand,
        req.store_id,
        now,
        member=member,
        reservation_id=reservation_id,
        state=state,
        rules=rules,
    )
    return price_with(inputs, req.lines, req.options)
