"""Refunds (退款): full or partial by line and quantity, each under its own
refund number (idempotent like a confirm).

What a refund does, in one transaction with the order's and member's locks:
- money: each returned unit takes back its share of the line's payable
  (cumulative floors, so refunding everything returns exactly what was paid);
- points earned on what is returned are reversed in the same proportion, and
  points spent on it are given back to the lots they came from;
- if the member already spent the points being reversed, the brand decides:
  `allow_negative_balance` lets the balance go negative (a debt lot the next
  earnings pay off); otherwise their value is deducted from the money refunded;
- coupons come back to the wallet by their template's `return_policy`: when the
  whole order is refunded (the default), as soon as what is left of the order no
  longer meets the coupon's condition, or never; never once expired. The
  receipt says for each coupon of the order whether it came back and why
  (`coupon_returns`, decided in `domain.checkout.coupon_returns`);
- growth (成长值) goes down by the money returned; the tier is not lowered by a
  refund (tiers move on the next order).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from loyalpos.db import ledger_repo
from loyalpos.db.tables import (
    coupons,
    inserted_id,
    members,
    order_benefits,
    order_lines,
    orders,
    refund_lines,
    refunds,
)
from loyalpos.domain.checkout import (
    CouponReturn,
    UsedCoupon,
    coupon_returns,
    fingerprint,
    share,
    unmet_after_refund,
)
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.pricing import model as m
from loyalpos.domain.pricing.rules import ReturnPolicy
from loyalpos.service.base.brands import Brand, load_brand, store_in_brand
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType, emit
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.loyalty.points import Source, reverse_entry, reversible
from loyalpos.service.rulebook.rulesets import rules_at, rules_of_version
from loyalpos.service.till._inputs import cached_store


@dataclass(frozen=True, slots=True)
class RefundLine:
    line_no: int
    qty: int


@dataclass(frozen=True, slots=True)
class RefundRequest:
    store_id: int
    order_no: str
    refund_no: str
    cashier: str
    # Empty: refund everything not refunded yet.
    lines: tuple[RefundLine, ...] = ()
    reason: str = ""
    # The till it is made at (orders and holds record theirs too).
    terminal: str | None = None


@dataclass(frozen=True, slots=True)
class Refunded:
    receipt: dict[str, Any]
    replayed: bool


@dataclass(frozen=True, slots=True)
class _Part:
    line_no: int
    qty: int
    amount: int
    points_reversed: int
    points_returned: int


def _fingerprint(req: RefundRequest) -> str:
    what: dict[str, Any] = {
        "order_no": req.order_no,
        "lines": sorted([x.line_no, x.qty] for x in req.lines),
        "cashier": req.cashier,
        "reason": req.reason,
    }
    if req.terminal is not None:
        # Only when given, so a refund sent again as it was before terminals were
        # kept still matches its first booking.
        what["terminal"] = req.terminal
    return fingerprint(what)


def refund(
    ctx: Context, brand_id: int, req: RefundRequest, *, now: datetime | None = None
) -> Refunded:
    """Book a refund once; a repeat with the same refund number replays it."""
    if not req.refund_no.strip():
        raise InvalidInput("缺少退款单号 (refund_no is required)", field="refund_no")
    run = _work(ctx, brand_id, req, ctx.now(now))
    try:
        return ctx.run(run)
    except IntegrityError:
        return ctx.run(run)


def preview(
    ctx: Context, brand_id: int, req: RefundRequest, *, now: datetime | None = None
) -> dict[str, Any]:
    """What `refund` would answer for `req` now, booking nothing: the receipt's
    amount, deduction, points reversed and returned, and each coupon's return with
    its message, plus `"preview": true` and `"replayed"`.

    It is `refund`'s own booking, run in a transaction that is then rolled back:
    no ledger entry, coupon change, order change, outbox event (so no webhook)
    or refund number survives it. `refund_no` is optional: without one a
    throwaway number is used inside the transaction and the receipt says
    `refund_no: null`; with one already booked, the preview is that refund's
    replay (or Conflict `refund_no_reused`, as `refund` would answer). The
    receipt's `refund_id` is null (nothing was kept), but for a replay. Errors
    are `refund`'s. It takes `refund`'s locks (the order's and the member's rows)
    for its short transaction.
    """
    given = req.refund_no.strip()
    trial = req if given else replace(req, refund_no=f"preview-{uuid.uuid4().hex}")
    work = _work(ctx, brand_id, trial, ctx.now(now))

    def run(conn: Connection) -> Refunded:
        done = work(conn)
        # ctx.transaction sees the block rolled back itself and commits nothing.
        conn.rollback()
        return done

    try:
        done = ctx.run(run)
    except IntegrityError:
        done = ctx.run(run)
    receipt = dict(done.receipt)
    if not done.replayed:
        receipt["refund_id"] = None
    if not given:
        receipt["refund_no"] = None
    return {**receipt, "preview": True, "replayed": done.replayed}


def _work(
    ctx: Context, brand_id: int, req: RefundRequest, at: datetime
) -> Callable[[Connection], Refunded]:
    """The refund's whole transaction (replay, locks, booking), for `ctx.run`."""
    digest = _fingerprint(req)

    def run(conn: Connection) -> Refunded:
        store_in_brand(conn, brand_id, req.store_id)
        replay = _replay(conn, brand_id, req, digest)
        if replay is not None:
            return replay
        brand = load_brand(conn, brand_id)
        order = conn.execute(
            select(orders)
            .where(
                orders.c.brand_id == brand_id,
                orders.c.store_id == req.store_id,
                orders.c.order_no == req.order_no,
            )
            .with_for_update()
        ).first()
        if order is None:
            raise NotFound(
                f"订单 {req.order_no} 不存在 (order not found at this store)",
                code="order_not_found",
            )
        # The lock on the order serialises refunds of it; a replay may have
        # committed while this one waited.
        replay = _replay(conn, brand_id, req, digest)
        if replay is not None:
            return replay
        if order.member_id is not None:
            ledger_repo.lock_member(conn, brand_id, order.member_id)
        lines = {
            r.line_no: r
            for r in conn.execute(select(order_lines).where(order_lines.c.order_id == order.id))
        }
        parts = _parts(req, lines)
        return _book(conn, ctx, brand, req, order, lines, parts, digest, at)

    return run


def _replay(conn: Connection, brand_id: int, req: RefundRequest, digest: str) -> Refunded | None:
    row = conn.execute(
        select(refunds.c.request_hash, refunds.c.response, refunds.c.brand_id).where(
            refunds.c.store_id == req.store_id, refunds.c.refund_no == req.refund_no
        )
    ).first()
    if row is None or row.brand_id != brand_id:
        return None
    if row.request_hash != digest:
        raise Conflict(
            f"退款单号 {req.refund_no} 已用于另一笔退款 (refund number already used differently)",
            code="refund_no_reused",
            refund_no=req.refund_no,
        )
    return Refunded(json.loads(row.response), True)


def _parts(req: RefundRequest, lines: dict[int, Any]) -> list[_Part]:
    """What each line gives back, by quantity; refuses more than is left."""
    wanted: dict[int, int] = {}
    if req.lines:
        for n, x in enumerate(req.lines):
            if x.line_no not in lines:
                raise InvalidInput(
                    f"订单没有第 {x.line_no} 行 (no line {x.line_no} in the order)",
                    code="refund_line_unknown",
                    field=f"lines.{n}.line_no",
                )
            if x.qty < 1:
                raise InvalidInput(
                    "退货数量至少为 1 (qty must be at least 1)", field=f"lines.{n}.qty"
                )
            wanted[x.line_no] = wanted.get(x.line_no, 0) + x.qty
    else:
        wanted = {no: r.qty - r.refunded_qty for no, r in lines.items() if r.qty > r.refunded_qty}
    if not wanted:
        raise Conflict(
            "订单已全部退款 (the order is already fully refunded)", code="already_refunded"
        )
    parts = []
    for no, qty in sorted(wanted.items()):
        line = lines[no]
        left = line.qty - line.refunded_qty
        if qty > left:
            raise Conflict(
                f"第 {no} 行最多还能退 {left} 件 (line {no}: only {left} left to refund)",
                code="refund_exceeds_order",
                line_no=no,
                refundable=left,
            )
        before = line.refunded_qty
        parts.append(
            _Part(
                no,
                qty,
                share(line.payable, line.qty, before, qty),
                share(line.points_earned, line.qty, before, qty),
                share(line.points_redeemed, line.qty, before, qty),
            )
        )
    return parts


def _book(
    conn: Connection,
    ctx: Context,
    brand: Brand,
    req: RefundRequest,
    order: Any,
    lines: dict[int, Any],
    parts: list[_Part],
    digest: str,
    now: datetime,
) -> Refunded:
    amount = sum(p.amount for p in parts)
    to_reverse = sum(p.points_reversed for p in parts)
    to_return = sum(p.points_returned for p in parts)
    source = Source(
        "refund",
        req.refund_no,
        f"退款 {req.refund_no} (订单 {req.order_no}) refund of order {req.order_no}",
        store_id=req.store_id,
    )
    reversed_points = deduction = 0
    member_id = order.member_id
    if member_id is not None and to_return:
        spend = ledger_repo.entry(conn, brand.id, order.spend_entry_id)
        assert spend is not None
        reverse_entry(conn, brand, spend, to_return, source, now)
    if member_id is not None and to_reverse:
        earn = ledger_repo.entry(conn, brand.id, order.earn_entry_id)
        assert earn is not None
        reversed_points = reversible(conn, brand, member_id, to_reverse)
        if reversed_points < to_reverse:
            deduction = min(amount, _value(conn, ctx, brand, order, to_reverse - reversed_points))
        if reversed_points:
            reverse_entry(conn, brand, earn, reversed_points, source, now, allow_negative=True)
    refund_id = inserted_id(
        conn.execute(
            insert(refunds).values(
                brand_id=brand.id,
                store_id=req.store_id,
                order_id=order.id,
                refund_no=req.refund_no,
                request_hash=digest,
                amount=amount - deduction,
                deduction=deduction,
                points_reversed=reversed_points,
                points_returned=to_return,
                cashier=req.cashier,
                terminal=req.terminal,
                response="{}",
                created_at=now,
            )
        )
    )
    conn.execute(
        insert(refund_lines),
        [
            {
                "refund_id": refund_id,
                "line_no": p.line_no,
                "qty": p.qty,
                "amount": p.amount,
                "points_reversed": p.points_reversed,
                "points_returned": p.points_returned,
            }
            for p in parts
        ],
    )
    for p in parts:
        conn.execute(
            update(order_lines)
            .where(order_lines.c.order_id == order.id, order_lines.c.line_no == p.line_no)
            .values(refunded_qty=order_lines.c.refunded_qty + p.qty)
        )
    done = {p.line_no: p.qty for p in parts}
    whole = all(r.refunded_qty + done.get(no, 0) == r.qty for no, r in lines.items())
    decided = _coupon_returns(conn, ctx, brand, order, lines, done, whole, now)
    give = [c.coupon_id for c in decided if c.returned]
    returned = (
        wallet.give_back(conn, brand.id, order.id, refund_id, req.store_id, now, only=give)
        if give
        else []
    )
    conn.execute(
        update(orders)
        .where(orders.c.id == order.id)
        .values(
            refunded=orders.c.refunded + amount - deduction,
            status="refunded" if whole else "partially_refunded",
        )
    )
    if member_id is not None:
        conn.execute(
            update(members)
            .where(members.c.id == member_id)
            .values(spent_fen=members.c.spent_fen - amount)
        )
    receipt = {
        "refund_id": refund_id,
        "refund_no": req.refund_no,
        "order_no": req.order_no,
        "store_id": req.store_id,
        "member_id": member_id,
        "cashier": req.cashier,
        "terminal": req.terminal,
        "order_status": "refunded" if whole else "partially_refunded",
        "amount_fen": amount - deduction,
        "deduction_fen": deduction,
        "points_reversed": reversed_points,
        "points_returned": to_return,
        "coupons_returned": returned,
        "coupon_returns": [
            {
                "coupon_id": c.coupon_id,
                "template": c.template,
                "name": c.name,
                "policy": c.policy.value,
                "returned": c.returned,
                "code": c.code,
                "message": c.zh,
                "message_en": c.en,
                "detail": c.detail,
            }
            for c in decided
        ],
        "lines": [
            {
                "line_no": p.line_no,
                "qty": p.qty,
                "amount_fen": p.amount,
                "points_reversed": p.points_reversed,
                "points_returned": p.points_returned,
            }
            for p in parts
        ],
    }
    conn.execute(
        update(refunds)
        .where(refunds.c.id == refund_id)
        .values(response=json.dumps(receipt, ensure_ascii=False))
    )
    emit(
        conn,
        brand.id,
        EventType.ORDER_REFUNDED,
        f"order:{order.id}",
        {**receipt, "order_id": order.id},
        now,
    )
    if member_id is not None and (reversed_points or to_return):
        emit(
            conn,
            brand.id,
            EventType.POINTS_CHANGED,
            f"member:{member_id}",
            {
                "member_id": member_id,
                "refund_id": refund_id,
                "delta": to_return - reversed_points,
                "balance": ledger_repo.cached_balance(conn, member_id),
            },
            now,
        )
    return Refunded(receipt, False)


def _coupon_returns(
    conn: Connection,
    ctx: Context,
    brand: Brand,
    order: Any,
    lines: dict[int, Any],
    done: dict[int, int],
    whole: bool,
    now: datetime,
) -> list[CouponReturn]:
    """What this refund does with each coupon the order used, by the return
    policy of its template in the rules the order was priced with. Whether what
    is left still meets a coupon's condition is asked of the engine only when a
    coupon's policy needs it (`threshold_broken`, a partial refund)."""
    rows = conn.execute(
        select(
            coupons.c.id,
            coupons.c.template,
            coupons.c.state,
            coupons.c.order_id,
            coupons.c.expires_at,
        )
        .select_from(order_benefits.join(coupons, coupons.c.id == order_benefits.c.coupon_id))
        .where(order_benefits.c.order_id == order.id)
        .order_by(order_benefits.c.id)  # the order they were applied in
    ).all()
    if not rows:
        return []
    rules = rules_of_version(conn, ctx, brand.id, order.rule_version).rules
    used = []
    for r in rows:
        b = rules.benefit(r.template)
        used.append(
            UsedCoupon(
                int(r.id),
                r.template,
                (b.name or b.id) if b is not None else r.template,
                b.return_policy if b is not None else ReturnPolicy.FULL_REFUND,
                r.state == wallet.State.USED.value and r.order_id == order.id,
                r.expires_at is not None and r.expires_at <= now,
            )
        )
    held = [c for c in used if c.held]
    unmet = {}
    if not whole and any(c.policy is ReturnPolicy.THRESHOLD_BROKEN for c in held):
        store = cached_store(conn, ctx, brand, order.store_id)
        left = []
        for no, r in sorted(lines.items()):
            qty = r.qty - r.refunded_qty - done.get(no, 0)
            if qty > 0:
                left.append(m.CartLine(r.sku, r.category, r.unit_price, qty, r.name))
        receipt = json.loads(order.response)
        cart = m.Cart(
            store.code,
            order.ordered_at.astimezone(store.zone).replace(tzinfo=None),
            tuple(left),
        )
        tier = receipt.get("pricing_tier", receipt.get("tier"))
        unmet = unmet_after_refund(rules, cart, tier, [(str(c.id), c.template) for c in held])
    return coupon_returns(used, whole, unmet)


def _value(conn: Connection, ctx: Context, brand: Brand, order: Any, points: int) -> int:
    """What `points` are worth in fen by the order's points-offset rate, rounded
    down (in the customer's favour)."""
    if points <= 0:
        return 0
    offset = rules_at(conn, ctx, brand.id, order.ordered_at).rules.points_offset
    return points * offset.unit_fen // offset.points_per_unit
