"""What a printed receipt (小票) of a booked order says, read back from what was
booked: the order row and its lines, benefits and tenders, the member and the
points ledger, the claim of an anonymous order and the coupons its
after-purchase campaigns gave.

Money stays integer fen here; the page formats it. Times are the store's (its
own time zone, else the brand's).

What is not here, because it is not stored: the cash the customer handed over
and the change given. A confirm's tenders must add up to the amount payable
(`_booking._plan`), so `order_tenders.amount` is what each method paid toward
the order, not what was tendered; the till would have to send the cash given
for change to be printed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from loyalpos.db.tables import (
    campaign_firings,
    claims,
    coupons,
    members,
    order_lines,
    order_tenders,
    orders,
    point_entries,
    store_staff,
    stores,
)
from loyalpos.domain.errors import NotFound
from loyalpos.domain.privacy import mask_phone
from loyalpos.service.base.brands import cached_brand, store_in_brand
from loyalpos.service.base.context import Context
from loyalpos.service.rulebook.rulesets import rules_at


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """`discount`: what came off the line's subtotal but points (its share of
    抹零 included); subtotal - discount - points_offset = payable."""

    name: str
    sku: str
    qty: int
    unit_price: int
    subtotal: int
    discount: int
    points_offset: int
    payable: int
    line_no: int = 0  # what a refund names the line by
    refunded_qty: int = 0


@dataclass(frozen=True, slots=True)
class AppliedBenefit:
    """A promotion, coupon, member price or the 抹零 (kind `change_rounding`)
    the order was priced with, by its name then."""

    name: str
    kind: str
    saving: int
    coupon_id: int | None


@dataclass(frozen=True, slots=True)
class ReceiptTender:
    """`received`: for cash, the money handed over when it was more than the
    amount (the web till sends it in the tender's reference as
    `cash_received=<fen>`); the change due is `received - amount`."""

    method: str  # one of till TENDER_METHODS: cash, bank_card, wechat, alipay, ...
    amount: int
    received: int | None = None

    @property
    def change(self) -> int:
        return 0 if self.received is None else max(0, self.received - self.amount)


CASH_RECEIVED = "cash_received="


def cash_received(method: str, amount: int, reference: str | None) -> int | None:
    """The money handed over for a cash tender, if the till said and it is more."""
    if method != "cash" or not reference or not reference.startswith(CASH_RECEIVED):
        return None
    text = reference[len(CASH_RECEIVED) :]
    if not text.isdigit() or len(text) > 12:
        return None
    received = int(text)
    return received if received > amount else None


@dataclass(frozen=True, slots=True)
class ReceiptMember:
    name: str
    phone_masked: str
    card_no: str
    points_balance_after: int  # the ledger's sum up to this order's entries


@dataclass(frozen=True, slots=True)
class NewCoupon:
    """A coupon an after-purchase campaign gave the member for this order."""

    id: int
    name: str
    campaign: str  # the campaign's name
    expires_at: datetime | None  # store time


@dataclass(frozen=True, slots=True)
class Claim:
    """先消费后建档: the code an anonymous customer uses to take the order's points."""

    token: str
    points: int
    expires_at: datetime  # store time
    claimed: bool


@dataclass(frozen=True, slots=True)
class Receipt:
    brand_code: str
    brand_name: str
    store_code: str
    store_name: str
    order_no: str
    status: str  # paid, partially_refunded, refunded
    ordered_at: datetime  # in the store's time zone
    timezone: str
    cashier: str  # as the till sent it (the staff number at the web till)
    cashier_name: str | None  # the store's staff member with that number, if any
    terminal: str
    late: bool  # booked later (补单)
    lines: tuple[ReceiptLine, ...]
    benefits: tuple[AppliedBenefit, ...]
    subtotal: int
    # Every benefit's saving, 抹零 included (as `orders.discount`, the sum of
    # `benefits`, and of the lines' discounts): subtotal - discount - points_offset
    # = payable.
    discount: int
    points_offset: int
    rounding: int  # 抹零, in the customer's favour: part of `discount`
    payable: int
    refunded: int
    tenders: tuple[ReceiptTender, ...]
    points_earned: int
    points_redeemed: int
    member: ReceiptMember | None
    new_coupons: tuple[NewCoupon, ...]
    claim: Claim | None


def receipt(ctx: Context, brand_id: int, store_id: int, order_no: str) -> Receipt:
    """The receipt of order `order_no` of this store. An order of another store
    (or brand) is NotFound as one that does not exist.

    `new_coupons` are those the order's campaigns gave so far: the worker runs
    them after the order is committed (within a moment), so a receipt printed at
    once may not list them yet; a reprint will."""
    with ctx.transaction(read_only=True) as conn:
        brand = cached_brand(ctx, conn, brand_id)
        store = store_in_brand(conn, brand_id, store_id)
        row = conn.execute(
            select(orders).where(
                orders.c.brand_id == brand_id,
                orders.c.store_id == store_id,
                orders.c.order_no == order_no,
            )
        ).first()
        if row is None:
            raise NotFound(
                f"订单 {order_no} 不存在 (order not found)",
                code="order_not_found",
                order_no=order_no,
            )
        zone = ZoneInfo(store.timezone or brand.timezone)
        order_id = int(row.id)
        booked: dict[str, Any] = json.loads(row.response)
        lines = tuple(
            ReceiptLine(
                r.name,
                r.sku,
                int(r.qty),
                int(r.unit_price),
                int(r.subtotal),
                int(r.discount),
                int(r.points_offset),
                int(r.payable),
                int(r.line_no),
                int(r.refunded_qty),
            )
            for r in conn.execute(
                select(order_lines)
                .where(order_lines.c.order_id == order_id)
                .order_by(order_lines.c.line_no)
            )
        )
        tenders = tuple(
            ReceiptTender(
                r.method, int(r.amount), cash_received(r.method, int(r.amount), r.reference)
            )
            for r in conn.execute(
                select(order_tenders.c.method, order_tenders.c.amount, order_tenders.c.reference)
                .where(order_tenders.c.order_id == order_id)
                .order_by(order_tenders.c.id)
            )
        )
        cashier_name = conn.execute(
            select(store_staff.c.name).where(
                store_staff.c.store_id == store_id, store_staff.c.number == row.cashier
            )
        ).scalar()
        member = None
        new_coupons: tuple[NewCoupon, ...] = ()
        if row.member_id is not None:
            member = _member(conn, row)
            new_coupons = _new_coupons(conn, ctx, brand_id, order_id, row.ordered_at, zone)
        claim = _claim(conn, brand_id, store.code, row, booked, zone)
    return Receipt(
        brand_code=brand.code,
        brand_name=brand.name,
        store_code=store.code,
        store_name=store.name,
        order_no=row.order_no,
        status=row.status,
        ordered_at=row.ordered_at.astimezone(zone),
        timezone=zone.key,
        cashier=row.cashier,
        cashier_name=cashier_name,
        terminal=row.terminal,
        late=bool(row.late),
        lines=lines,
        benefits=_benefits(booked.get("applied") or []),
        subtotal=int(row.subtotal),
        discount=int(row.discount),
        points_offset=int(row.points_offset),
        rounding=int(row.rounding),
        payable=int(row.payable),
        refunded=int(row.refunded),
        tenders=tenders,
        points_earned=int(row.points_earned),
        points_redeemed=int(row.points_redeemed),
        member=member,
        new_coupons=new_coupons,
        claim=claim,
    )


def _benefits(applied: list[dict[str, Any]]) -> tuple[AppliedBenefit, ...]:
    """The benefits as the order was answered with them (`orders.response`):
    `order_benefits` has the same rows but not their names, which the rules of
    the day gave and a later version may have changed."""
    return tuple(
        AppliedBenefit(
            str(a.get("name") or a["benefit"]),
            str(a["kind"]),
            int(a["saving_fen"]),
            None if a.get("coupon_id") is None else int(a["coupon_id"]),
        )
        for a in applied
    )


def _member(conn: Connection, order: Any) -> ReceiptMember:
    m = conn.execute(
        select(members.c.name, members.c.phone, members.c.card_no).where(
            members.c.id == order.member_id
        )
    ).one()
    # The balance right after this order: the ledger's entries up to the order's
    # own (earn or spend), else up to when it was booked. A reprint next week
    # shows what the customer had then, not what they have now.
    own = [int(e) for e in (order.earn_entry_id, order.spend_entry_id) if e is not None]
    upto = point_entries.c.id <= max(own) if own else point_entries.c.created_at <= order.booked_at
    balance = conn.execute(
        select(func.coalesce(func.sum(point_entries.c.points), 0)).where(
            point_entries.c.member_id == order.member_id, upto
        )
    ).scalar_one()
    return ReceiptMember(m.name, mask_phone(m.phone), m.card_no, int(balance))


def _new_coupons(
    conn: Connection,
    ctx: Context,
    brand_id: int,
    order_id: int,
    ordered_at: datetime,
    zone: ZoneInfo,
) -> tuple[NewCoupon, ...]:
    """The coupons of this order's campaign firings (`campaign_firings.coupon_ids`)
    still in force; a firing revoked by a full refund gave nothing to print."""
    firings = conn.execute(
        select(campaign_firings.c.campaign, campaign_firings.c.coupon_ids)
        .where(
            campaign_firings.c.brand_id == brand_id,
            campaign_firings.c.order_id == order_id,
            campaign_firings.c.status == "fired",
        )
        .order_by(campaign_firings.c.id)
    ).all()
    given = {int(c): f.campaign for f in firings for c in json.loads(f.coupon_ids or "[]")}
    if not given:
        return ()
    # The campaigns of an order ran with the rules in force when it was ordered.
    doc = rules_at(conn, ctx, brand_id, ordered_at).document
    template_names = {t.id: t.name or t.id for t in doc.coupons}
    campaign_names = {c.id: c.name or c.id for c in doc.campaigns}
    rows = conn.execute(
        select(coupons.c.id, coupons.c.template, coupons.c.expires_at)
        .where(
            coupons.c.brand_id == brand_id,
            coupons.c.id.in_(list(given)),
            coupons.c.state != "voided",
        )
        .order_by(coupons.c.id)
    )
    return tuple(
        NewCoupon(
            int(r.id),
            template_names.get(r.template, r.template),
            campaign_names.get(given[int(r.id)], given[int(r.id)]),
            None if r.expires_at is None else r.expires_at.astimezone(zone),
        )
        for r in rows
    )


def _claim(
    conn: Connection,
    brand_id: int,
    store_code: str,
    order: Any,
    booked: dict[str, Any],
    zone: ZoneInfo,
) -> Claim | None:
    """The claim code of an anonymous order that earned points. The table keeps
    only its hash (`claims.token_hash`); the code itself is in the answer the
    POS got (`orders.response`), which is where a reprint reads it."""
    token = booked.get("claim_token")
    if order.member_id is not None or not token:
        return None
    row = conn.execute(
        select(claims.c.points, claims.c.expires_at, claims.c.claimed_at).where(
            claims.c.brand_id == brand_id,
            claims.c.order_ref == f"{store_code}:{order.order_no}",
        )
    ).first()
    if row is None:
        return None
    return Claim(
        str(token), int(row.points), row.expires_at.astimezone(zone), row.claimed_at is not None
    )


@dataclass(frozen=True, slots=True)
class RecentCart:
    """A recent order's cart, to price again (HQ tries a draft on it)."""

    order_no: str
    store_code: str
    ordered_at: datetime
    member_id: int | None
    member_phone: str | None  # masked
    lines: tuple[tuple[str, str, int, int], ...]  # (sku, category, unit price, qty)
    payable: int


def recent_carts(ctx: Context, brand_id: int, limit: int = 10) -> list[RecentCart]:
    """The brand's last `limit` orders' carts, newest first."""
    with ctx.transaction(read_only=True) as conn:
        found = conn.execute(
            select(
                orders.c.id,
                orders.c.order_no,
                orders.c.store_id,
                orders.c.member_id,
                orders.c.ordered_at,
                orders.c.payable,
                members.c.phone,
            )
            .select_from(orders.outerjoin(members, members.c.id == orders.c.member_id))
            .where(orders.c.brand_id == brand_id)
            .order_by(orders.c.id.desc())
            .limit(limit)
        ).all()
        if not found:
            return []
        codes = {
            int(r.id): r.code
            for r in conn.execute(
                select(stores.c.id, stores.c.code).where(stores.c.brand_id == brand_id)
            )
        }
        lines: dict[int, list[tuple[str, str, int, int]]] = {}
        for line in conn.execute(
            select(
                order_lines.c.order_id,
                order_lines.c.sku,
                order_lines.c.category,
                order_lines.c.unit_price,
                order_lines.c.qty,
            )
            .where(order_lines.c.order_id.in_([int(r.id) for r in found]))
            .order_by(order_lines.c.order_id, order_lines.c.line_no)
        ):
            lines.setdefault(int(line.order_id), []).append(
                (line.sku, line.category, int(line.unit_price), int(line.qty))
            )
    return [
        RecentCart(
            r.order_no,
            codes.get(int(r.store_id), ""),
            r.ordered_at,
            None if r.member_id is None else int(r.member_id),
            mask_phone(r.phone) if r.phone else None,
            tuple(lines.get(int(r.id), [])),
            int(r.payable),
        )
        for r in found
    ]
