"""Confirm payment (支付成功回调) and late orders (补单): price again under the
member's lock, book the order, its lines, points, coupons and events in one
transaction, and answer a repeat with what was booked. The receipt of a booked
order too."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from loyalpos.db.engine import deferred, read_first, write_many
from loyalpos.db.tables import (
    brands,
    members,
    order_benefits,
    order_lines,
    order_tenders,
    orders,
)
from loyalpos.domain.checkout import fingerprint, tier_for
from loyalpos.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalpos.domain.ledger import EntryKind
from loyalpos.domain.money import yuan
from loyalpos.domain.pricing import model as m
from loyalpos.domain.pricing.allocation import allocate
from loyalpos.rules.simulate import applied_json, lines_json, points_rules_json
from loyalpos.service.base.brands import Brand, cached_brand, store_in_brand
from loyalpos.service.base.context import Context, RetryTransaction
from loyalpos.service.base.outbox import Event, EventType, emit_many
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.loyalty.members import (
    Member,
    insert_claim,
    member_id_by_identity,
    new_claim_token,
)
from loyalpos.service.loyalty.points import Source, credit, debit
from loyalpos.service.till._inputs import (
    CONFIRM_STATE,
    Inputs,
    MemberState,
    budgeted,
    find_member_and_brand,
    load_inputs,
    once_more_if_dropped,
    price_with,
    remaining_budgets,
    state_from_row,
    tiers_of,
)
from loyalpos.service.till._model import (
    TENDER_METHODS,
    Confirmed,
    ConfirmRequest,
    MemberRef,
    PriceChanged,
    Priced,
    priced_json,
)
from loyalpos.service.till._quoting import chosen_coupons, find_hold, release_hold


def request_fingerprint(req: ConfirmRequest) -> str:
    """What makes two confirms "the same request" (the replay check)."""
    cart = req.cart
    o = cart.options
    return fingerprint(
        {
            "store": cart.store_id,
            "lines": [[x.sku, x.category, x.unit_price, x.qty, x.name] for x in cart.lines],
            "member": None
            if cart.member is None
            else [
                cart.member.member_id,
                cart.member.phone,
                cart.member.card_no,
                cart.member.code,
                None
                if cart.member.identity is None
                else [
                    cart.member.identity.provider,
                    cart.member.identity.kind,
                    cart.member.identity.value,
                ],
            ],
            "options": [
                str(o.points),
                o.strategy.value,
                list(o.force),
                list(o.exclude),
                o.skip_all,
            ],
            "coupons": sorted(req.coupon_ids),
            "points": req.points,
            "tenders": [[t.method, t.amount, t.reference] for t in req.tenders],
            "payer": None
            if req.payer is None
            else [req.payer.provider, req.payer.kind, req.payer.value],
            "cashier": req.cashier,
            "terminal": req.terminal,
            "ordered_at": req.ordered_at.isoformat() if req.ordered_at else None,
        }
    )


def _check_request(req: ConfirmRequest) -> None:
    if not req.order_no.strip():
        raise InvalidInput("缺少订单号 (order_no is required)", field="order_no")
    if not req.tenders:
        raise InvalidInput("缺少支付方式 (at least one tender is required)", field="tenders")
    for n, t in enumerate(req.tenders):
        if t.method not in TENDER_METHODS:
            raise InvalidInput(
                f"未知支付方式 {t.method} (unknown tender method)", field=f"tenders.{n}.method"
            )
        if t.amount < 0:
            raise InvalidInput("支付金额不能为负 (tender amount < 0)", field=f"tenders.{n}.amount")
    if req.points < 0:
        raise InvalidInput("积分不能为负 (points < 0)", field="points")
    if len(set(req.coupon_ids)) != len(req.coupon_ids):
        raise InvalidInput("券重复 (a coupon is listed twice)", field="coupon_ids")


@dataclass(frozen=True, slots=True)
class _Plan:
    priced: Priced
    inputs: Inputs
    exceptions: tuple[dict[str, Any], ...]


def _forced_options(
    req: ConfirmRequest, wallet_ids: Sequence[int], coupons: Sequence[int]
) -> m.Options:
    """Price exactly what the POS chose: its coupons forced, every other coupon out."""
    chosen = {str(c) for c in coupons}
    return replace(
        req.cart.options,
        force=tuple(sorted(chosen)),
        exclude=tuple(str(c) for c in wallet_ids if str(c) not in chosen),
        points=req.points if req.points else m.PointsRequest.NONE,
    )


def _matches(q: m.Quote, coupons: Sequence[int], points: int, paid: int | None) -> bool:
    return (
        sorted(chosen_coupons(q)) == sorted(coupons)
        and q.points_redeemed == points
        and (paid is None or q.payable == paid)
    )


def _plan(
    conn: Connection,
    ctx: Context,
    brand: Brand,
    req: ConfirmRequest,
    member: Member | None,
    reservation_id: int | None,
    ordered_at: datetime,
    late: bool,
    state: MemberState | None = None,
) -> _Plan:
    """Price what the POS chose. Live orders must match exactly or nothing is
    booked; a late order keeps what can still be honoured and lists the rest.
    `state`: the member's, read already under the lock (see `_confirm_state`)."""
    paid = sum(t.amount for t in req.tenders)
    if member is None and (req.coupon_ids or req.points):
        if not late:
            raise InvalidInput(
                "未识别会员，不能用券或积分 (coupons and points need a member)",
                code="member_required",
            )
    # No coupon chosen: no need to read the wallet (see load_inputs).
    with_wallet = bool(req.coupon_ids)
    inputs = load_inputs(
        conn,
        ctx,
        brand,
        req.cart.store_id,
        ordered_at,
        member=member,
        reservation_id=reservation_id,
        state=state,
        with_wallet=with_wallet,
    )
    wallet_ids = [c.id for c in inputs.usable]
    coupons = list(req.coupon_ids) if member is not None else []
    points = req.points if member is not None else 0
    exceptions: list[dict[str, Any]] = []
    missing = [c for c in coupons if c not in wallet_ids]
    if missing and late:
        exceptions += [
            {
                "code": "coupon_unavailable",
                "coupon_id": c,
                "message": "券已不可用 (coupon no longer usable)",
            }
            for c in missing
        ]
        coupons = [c for c in coupons if c in wallet_ids]
    if points > inputs.points_available and late:
        exceptions.append(
            {
                "code": "points_unavailable",
                "requested": points,
                "available": inputs.points_available,
                "message": "积分已不足 (points no longer available)",
            }
        )
        points = 0
    priced = price_with(inputs, req.cart.lines, _forced_options(req, wallet_ids, coupons))
    if late:
        applied = chosen_coupons(priced.quote)
        for c in coupons:
            if c not in applied:
                exceptions.append(
                    {
                        "code": "coupon_not_applicable",
                        "coupon_id": c,
                        "message": "券不满足使用条件 (coupon does not apply to this cart)",
                    }
                )
        if priced.quote.points_redeemed != points:
            exceptions.append(
                {
                    "code": "points_adjusted",
                    "requested": points,
                    "booked": priced.quote.points_redeemed,
                    "message": "积分抵扣已按规则调整 (points offset adjusted to the rules)",
                }
            )
        if priced.quote.payable != paid:
            exceptions.append(
                {
                    "code": "amount_mismatch",
                    "expected_fen": priced.quote.payable,
                    "paid_fen": paid,
                    "message": "支付金额与应付不符 (tenders differ from the amount due)",
                }
            )
        return _Plan(priced, inputs, tuple(exceptions))
    if missing or not _matches(priced.quote, coupons, points, paid):
        if not with_wallet and member is not None:
            # The fresh quote offers the member's coupons: read them now.
            inputs = load_inputs(
                conn,
                ctx,
                brand,
                req.cart.store_id,
                ordered_at,
                member=member,
                reservation_id=reservation_id,
            )
        fresh = price_with(inputs, req.cart.lines, req.cart.options)
        raise PriceChanged(
            "价格或优惠已变化，请按新报价重新收款 (price or benefits changed: nothing was booked; "
            "charge the fresh quote)",
            unavailable_coupons=missing,
            expected_payable_fen=priced.quote.payable,
            paid_fen=paid,
            fresh_quote=priced_json(fresh),
        )
    return _Plan(priced, inputs, ())


def confirm(
    ctx: Context,
    brand_id: int,
    req: ConfirmRequest,
    *,
    late: bool = False,
    now: datetime | None = None,
) -> Confirmed:
    """Book a paid order once (支付成功回调); a repeat replays the first answer."""
    _check_request(req)
    at = ctx.now(now)
    ordered_at = req.ordered_at or at
    if ordered_at > at + timedelta(minutes=5):
        raise InvalidInput("订单时间在未来 (ordered_at is in the future)", field="ordered_at")
    digest = request_fingerprint(req)

    def run(conn: Connection, conflicted: bool) -> Confirmed:
        # A member's order looks for a replay once it holds the member's lock (a
        # copy of this request may have booked while it waited). An order without
        # a member looks only when something says it may be one: its INSERT hit
        # the (store, order number) key, so this is the second run (`conflicted`),
        # or it cannot be priced or booked as sent (a replay answers what was
        # booked, even if prices changed since). A first booking, the common
        # case, then costs no lookup.
        anonymous = req.cart.member is None
        if anonymous and conflicted:
            replay = _replay(conn, brand_id, req, digest)
            if replay is not None:
                return replay

        def replay_or(exc: DomainError) -> Confirmed:
            """The replay of this order number, else `exc`: the order cannot go
            through as sent."""
            looked = anonymous and conflicted
            replay = None if looked else _replay(conn, brand_id, req, digest)
            if replay is None:
                raise exc
            return replay

        try:
            member, unknown, locked_brand = _order_member(
                conn, ctx, brand_id, req, ordered_at if late else at, late
            )
        except DomainError as exc:
            # The member cannot be found (any more): a replay still answers.
            return replay_or(exc)
        state = None
        if member is not None:
            # The replay check, the quote hold and the member's state: one
            # statement, after the lock (see _confirm_state_select).
            assert locked_brand is not None
            state, replay, reservation_id = _confirm_state(
                conn, locked_brand, member, req, digest, ordered_at
            )
            if replay is not None:
                return replay
        else:
            if not anonymous:
                # A late order whose member is gone: its replay, if any, first.
                replay = _replay(conn, brand_id, req, digest)
                if replay is not None:
                    return replay
            try:
                found = find_hold(conn, brand_id, req.cart.store_id, req.quote_token)
            except DomainError as exc:
                return replay_or(exc)
            reservation_id = found[0] if found else None
        # The brand's points policy as it is now, read with the member's lock, for
        # the points this order books; without a member no points are booked.
        brand = locked_brand or cached_brand(ctx, conn, brand_id)
        try:
            plan = _plan(conn, ctx, brand, req, member, reservation_id, ordered_at, late, state)
        except DomainError as exc:
            if member is not None:
                raise  # its replay was looked for under the lock
            return replay_or(exc)
        if unknown is not None:
            plan = replace(plan, exceptions=(unknown, *plan.exceptions))
        receipt = _book(
            conn, ctx, brand, req, member, plan, reservation_id, digest, ordered_at, at, late
        )
        return Confirmed(receipt, False)

    def attempt() -> Confirmed:
        try:
            return ctx.run(lambda conn: run(conn, False))
        except IntegrityError:
            # Another request booked this order number first: answer as its replay.
            return ctx.run(lambda conn: run(conn, True))

    # Safe to repeat: a confirm that committed before the connection dropped replays.
    return once_more_if_dropped(attempt)


def _receipt(order_id: int, stored: str) -> dict[str, Any]:
    """The receipt from `orders.response` (stored without its own order id, which
    the row has; older rows have it in the text as well, with the same value)."""
    return {"order_id": order_id, **json.loads(stored)}


_ORDER_BY_NO = select(
    orders.c.id, orders.c.request_hash, orders.c.response, orders.c.brand_id
).where(orders.c.store_id == bindparam("store_id"), orders.c.order_no == bindparam("order_no"))


def _replay(conn: Connection, brand_id: int, req: ConfirmRequest, digest: str) -> Confirmed | None:
    row = conn.execute(
        _ORDER_BY_NO, {"store_id": req.cart.store_id, "order_no": req.order_no}
    ).first()
    if row is None:
        return None
    return _replayed(row.id, row.brand_id, row.request_hash, row.response, brand_id, req, digest)


def _confirm_state(
    conn: Connection,
    brand: Brand,
    member: Member,
    req: ConfirmRequest,
    digest: str,
    ordered_at: datetime,
) -> tuple[MemberState, Confirmed | None, int | None]:
    """The member's state at `ordered_at` (no hold of the till's own quote
    counted), the replay if this order number is booked, and the id of the
    till's quote hold; a token that is not one of this store's is NotFound (after
    the replay check, as `_replay` then `find_hold` had it)."""
    quoted = req.quote_token is not None
    row = read_first(
        conn,
        CONFIRM_STATE[quoted],
        {
            "member_id": member.id,
            "brand_id": brand.id,
            "now": ordered_at,
            "today": brand.local_date(ordered_at),
            "store_id": req.cart.store_id,
            "order_no": req.order_no,
            "token": req.quote_token,
        },
    )
    assert row is not None, "the member row is locked before its state is read"
    if row.order_id is not None:
        replay = _replayed(
            row.order_id, row.order_brand_id, row.request_hash, row.response, brand.id, req, digest
        )
        if replay is not None:
            return state_from_row(row), replay, None
    reservation_id = None
    if quoted:
        if row.reservation_id is None:
            raise NotFound(
                "报价已失效 (quote token not found for this store)", code="quote_not_found"
            )
        reservation_id = int(row.reservation_id)
    return state_from_row(row), None, reservation_id


def _replayed(
    order_id: int,
    order_brand_id: int,
    request_hash: str,
    response: str,
    brand_id: int,
    req: ConfirmRequest,
    digest: str,
) -> Confirmed | None:
    if order_brand_id != brand_id:
        return None
    if request_hash != digest:
        raise Conflict(
            f"订单号 {req.order_no} 已用于另一笔订单 (order number already used with a different body)",
            code="order_no_reused",
            order_no=req.order_no,
        )
    return Confirmed(_receipt(order_id, response), True)


def _order_member(
    conn: Connection, ctx: Context, brand_id: int, req: ConfirmRequest, now: datetime, late: bool
) -> tuple[Member | None, dict[str, Any] | None, Brand | None]:
    """The identified member, or the member bound to the payer's WeChat/Alipay id
    (扫码即会员), or nobody; locked, with the brand read in the same statement. A
    late order whose member cannot be found any more is booked without one and
    says so, rather than dropped."""
    if req.cart.member is not None:
        try:
            member, brand = find_member_and_brand(
                conn, ctx, brand_id, req.cart.member, now, lock=True
            )
            return member, None, brand
        except DomainError as exc:
            if not late:
                raise
            unknown = {"code": "member_unknown", "reason": exc.code, "message": exc.message}
            return None, unknown, None
    if req.payer is not None:
        member_id = member_id_by_identity(conn, brand_id, req.payer)
        if member_id is not None:
            member, brand = find_member_and_brand(
                conn, ctx, brand_id, MemberRef(member_id=member_id), now, lock=True
            )
            return member, None, brand
    return None, None, None


def late_batch(
    ctx: Context, brand_id: int, batch: Sequence[ConfirmRequest], *, now: datetime | None = None
) -> list[tuple[str, Confirmed | DomainError]]:
    """Book orders a POS recorded offline (补单), each priced with the rules in force
    at its own time and booked idempotently; one order's problem never stops the
    rest. Benefits that can no longer be honoured are dropped and listed."""
    results: list[tuple[str, Confirmed | DomainError]] = []
    for req in batch:
        if req.ordered_at is None:
            results.append(
                (req.order_no, InvalidInput("补单需要订单时间 (ordered_at is required)"))
            )
            continue
        try:
            results.append((req.order_no, confirm(ctx, brand_id, req, late=True, now=now)))
        except DomainError as exc:
            results.append((req.order_no, exc))
    return results


def _book(
    conn: Connection,
    ctx: Context,
    brand: Brand,
    req: ConfirmRequest,
    member: Member | None,
    plan: _Plan,
    reservation_id: int | None,
    digest: str,
    ordered_at: datetime,
    now: datetime,
    late: bool,
) -> dict[str, Any]:
    """Book the order. The points (entries need no order id) and the claim come
    first, so that the order row is written once, complete, with its stored
    receipt; then its lines, benefits and tenders, the coupons, the member's row
    (balance and growth in one UPDATE) and the events."""
    q = plan.priced.quote
    store = plan.priced.store
    _check_budgets(conn, brand.id, plan)
    used = chosen_coupons(q)
    points_rules = points_rules_json(q.points_rules)
    body: dict[str, Any] = {
        "order_no": req.order_no,
        "store_id": store.id,
        "status": "paid",
        "late": late,
        "ordered_at": ordered_at.isoformat(),
        "member_id": member.id if member else None,
        "rule_version": plan.priced.rules.version,
        "subtotal_fen": q.subtotal,
        "discount_fen": q.discount,
        "points_redeemed": q.points_redeemed,
        "points_offset_fen": q.points_offset,
        "rounding_fen": q.rounding,
        "payable_fen": q.payable,
        "paid_fen": sum(t.amount for t in req.tenders),
        "points_earned": q.points_earned if member else 0,
        "claim_token": None,
        "coupons_used": used,
        "applied": applied_json(q),
        "lines": lines_json(q),
        "points_rules": points_rules,
        "exceptions": list(plan.exceptions),
        "tier": member.tier if member else None,
        # The tier the order was priced with (`tier` becomes the tier after it):
        # a refund prices what is left with it (coupon return policy).
        "pricing_tier": member.tier if member else None,
    }
    earn_id = spend_id = None
    growth: _Growth | None = None
    if member is not None:
        earn_id, spend_id = _book_points(conn, brand, req, member, plan, now)
        growth = _growth(member, plan, ordered_at)
        body["tier"] = growth.tier
    elif q.points_earned > 0:
        # The claim row itself goes with the order's other writes (below).
        body["claim_token"] = new_claim_token()
    inserted = read_first(
        conn,
        _INSERT_ORDER,
        {
            "brand_id": brand.id,
            "store_id": store.id,
            "order_no": req.order_no,
            "member_id": member.id if member else None,
            "status": "paid",
            "request_hash": digest,
            "rule_version": plan.priced.rules.version,
            "subtotal": q.subtotal,
            "discount": q.discount,
            "points_redeemed": q.points_redeemed,
            "points_offset": q.points_offset,
            "rounding": q.rounding,
            "payable": q.payable,
            "points_earned": body["points_earned"],
            "cashier": req.cashier,
            "terminal": req.terminal,
            "payer": None if req.payer is None else f"{req.payer.provider}:{req.payer.kind}",
            "late": late,
            "exceptions": json.dumps(list(plan.exceptions), ensure_ascii=False),
            # With the order's own INSERT: no statement more on the hot path.
            "points_rules": json.dumps(points_rules, ensure_ascii=False),
            "claim_token": "issued" if body["claim_token"] is not None else None,
            "earn_entry_id": earn_id,
            "spend_entry_id": spend_id,
            # The receipt less its order id (see _receipt).
            "response": json.dumps(body, ensure_ascii=False),
            "ordered_at": ordered_at,
            "booked_at": now,
        },
    )
    assert inserted is not None
    order_id = int(inserted.id)
    receipt: dict[str, Any] = {"order_id": order_id, **body}
    # The one write of the rest whose answer matters (a coupon taken meanwhile
    # means running again), before those whose answers nobody reads.
    if used and not wallet.redeem(conn, brand.id, used, order_id, store.id, reservation_id, now):
        raise RetryTransaction
    redeemed_per_line = allocate(q.points_redeemed, [x.points_offset for x in q.lines])
    events: list[Event] = [
        (
            EventType.ORDER_PAID,
            f"order:{order_id}",
            {
                "order_id": order_id,
                "order_no": req.order_no,
                "store_id": store.id,
                "store": store.code,
                "member_id": member.id if member else None,
                "payable_fen": q.payable,
                "points_earned": receipt["points_earned"],
                "points_redeemed": q.points_redeemed,
                "coupons_used": used,
                "late": late,
                "ordered_at": ordered_at.isoformat(),
                "lines": [
                    {"sku": x.sku, "category": x.category, "qty": x.qty, "payable_fen": lq.payable}
                    for x, lq in zip(req.cart.lines, q.lines, strict=True)
                ],
                "first_order": growth.first_order if growth else False,
                "previous_order_at": growth.previous_order_at if growth else None,
                "tier": receipt["tier"],
            },
        )
    ]
    if member is not None:
        assert growth is not None
        events += _member_events(member, plan, order_id, used, growth)
    # The claim, lines, benefits, tenders, the hold's release, the member row and
    # the events read no result: on PostgreSQL they go as one statement (db.engine.deferred).
    with deferred(conn):
        if body["claim_token"] is not None:
            insert_claim(
                conn,
                brand.id,
                order_ref=f"{store.code}:{req.order_no}",
                points=q.points_earned,
                store_id=store.id,
                description=f"订单 {req.order_no} 补积分 (points of order {req.order_no})",
                now=now,
                valid_days=ctx.settings.claim_valid_days,
                token=body["claim_token"],
            )
        write_many(
            conn,
            _INSERT_LINES,
            [
                {
                    "order_id": order_id,
                    "line_no": n + 1,
                    "sku": line.sku,
                    "category": line.category,
                    "name": line.name,
                    "unit_price": line.unit_price,
                    "qty": line.qty,
                    "subtotal": lq.subtotal,
                    "discount": lq.discount,
                    "points_offset": lq.points_offset,
                    "payable": lq.payable,
                    "points_earned": lq.points_earned if member else 0,
                    "points_redeemed": redeemed_per_line[n],
                }
                for n, (line, lq) in enumerate(zip(req.cart.lines, q.lines, strict=True))
            ],
        )
        if q.applied:
            write_many(
                conn,
                _INSERT_BENEFITS,
                [
                    {
                        "order_id": order_id,
                        "coupon_id": int(a.coupon_id) if a.coupon_id is not None else None,
                        "benefit": a.benefit,
                        "kind": a.kind,
                        "saving": a.saving,
                    }
                    for a in q.applied
                ],
            )
        write_many(
            conn,
            _INSERT_TENDERS,
            [
                {
                    "order_id": order_id,
                    "method": t.method,
                    "amount": t.amount,
                    "reference": t.reference,
                }
                for t in req.tenders
            ],
        )
        if reservation_id is not None:
            release_hold(conn, reservation_id, now)
        if member is not None:
            assert growth is not None
            _update_member(conn, member, plan, growth)
        emit_many(conn, brand.id, events, now)
    return receipt


_INSERT_ORDER = insert(orders).returning(orders.c.id)
# `inline`: no RETURNING of generated ids (none is read), also for a single row,
# so that they can run in `deferred`.
_INSERT_LINES = insert(order_lines).inline()
_INSERT_BENEFITS = insert(order_benefits).inline()
_INSERT_TENDERS = insert(order_tenders).inline()


def _check_budgets(conn: Connection, brand_id: int, plan: _Plan) -> None:
    """A total budget is shared by every store: orders that use one are serialised
    on the brand row, and if another order took from the budget after this one
    was priced, the whole confirm runs again with the budget as it is now (the
    engine then leaves out what no longer fits)."""
    doc = plan.priced.rules.document
    caps = budgeted(doc)
    used = {a.benefit for a in plan.priced.quote.applied if a.benefit in caps}
    if not used:
        return
    conn.execute(select(brands.c.id).where(brands.c.id == brand_id).with_for_update()).first()
    left = remaining_budgets(conn, brand_id, doc)
    if any(left[b] != plan.inputs.budgets.get(b) for b in used):
        raise RetryTransaction


def _book_points(
    conn: Connection,
    brand: Brand,
    req: ConfirmRequest,
    member: Member,
    plan: _Plan,
    now: datetime,
) -> tuple[int | None, int | None]:
    """The order's spend and earn entries: (earn entry id, spend entry id). The
    cached balance moves in `_update_member`, with the growth."""
    q = plan.priced.quote
    store = plan.priced.store
    spend_id = earn_id = None
    if q.points_redeemed:
        spend_id = debit(
            conn,
            brand,
            member.id,
            q.points_redeemed,
            EntryKind.SPEND,
            Source(
                "order",
                req.order_no,
                f"订单 {req.order_no} 积分抵扣 {yuan(q.points_offset)} 元 (points offset)",
                store_id=store.id,
            ),
            now,
            move_balance=False,
        )
    if q.points_earned:
        earn_id = credit(
            conn,
            brand,
            member.id,
            q.points_earned,
            EntryKind.EARN,
            Source(
                "order",
                req.order_no,
                f"订单 {req.order_no} 消费得积分 (points earned on the order)",
                store_id=store.id,
            ),
            now,
            # Read under this lock with the balance (member_state); a spend above
            # does not create debt.
            no_debt=not plan.inputs.in_debt,
            move_balance=False,
        )
    return earn_id, spend_id


@dataclass(frozen=True, slots=True)
class _Growth:
    spent: int
    orders_count: int
    last_order_at: datetime | None
    tier: str
    first_order: bool
    previous_order_at: str | None


def _growth(member: Member, plan: _Plan, ordered_at: datetime) -> _Growth:
    inputs = plan.inputs
    spent, orders_count, last_order_at = inputs.spent, inputs.orders_count, inputs.last_order_at
    new_spent = spent + plan.priced.quote.payable
    tier = tier_for(tiers_of(plan.priced.rules.document), new_spent)
    return _Growth(
        new_spent,
        orders_count + 1,
        ordered_at if last_order_at is None or ordered_at > last_order_at else last_order_at,
        tier.id if tier is not None and tier.id != member.tier else member.tier,
        orders_count == 0,
        last_order_at.isoformat() if last_order_at else None,
    )


def _update_member(conn: Connection, member: Member, plan: _Plan, growth: _Growth) -> None:
    """One UPDATE of the member row: the cached balance (by the order's points)
    and the growth (spent, orders, last order, tier)."""
    q = plan.priced.quote
    write_many(
        conn,
        _UPDATE_MEMBER,
        [
            {
                "member_id": member.id,
                "delta": q.points_earned - q.points_redeemed,
                "spent": growth.spent,
                "orders": growth.orders_count,
                "last_order_at": growth.last_order_at,
                "tier": growth.tier,
            }
        ],
    )


_UPDATE_MEMBER = (
    update(members)
    .where(members.c.id == bindparam("member_id"))
    .values(
        points_balance=members.c.points_balance + bindparam("delta", type_=BigInteger()),
        spent_fen=bindparam("spent", type_=members.c.spent_fen.type),
        orders_count=bindparam("orders", type_=members.c.orders_count.type),
        last_order_at=bindparam("last_order_at", type_=members.c.last_order_at.type),
        tier=bindparam("tier", type_=members.c.tier.type),
    )
)


def _member_events(
    member: Member, plan: _Plan, order_id: int, used: list[int], growth: _Growth
) -> list[Event]:
    q = plan.priced.quote
    events: list[Event] = []
    if q.points_redeemed or q.points_earned:
        events.append(
            (
                EventType.POINTS_CHANGED,
                f"member:{member.id}",
                {
                    "member_id": member.id,
                    "order_id": order_id,
                    "delta": q.points_earned - q.points_redeemed,
                    "balance": plan.inputs.points_total + q.points_earned - q.points_redeemed,
                },
            )
        )
    for coupon_id in used:
        events.append(
            (
                EventType.COUPON_REDEEMED,
                f"coupon:{coupon_id}",
                {"coupon_id": coupon_id, "member_id": member.id, "order_id": order_id},
            )
        )
    if growth.tier != member.tier:
        events.append(
            (
                EventType.TIER_CHANGED,
                f"member:{member.id}",
                {
                    "member_id": member.id,
                    "from": member.tier,
                    "to": growth.tier,
                    "order_id": order_id,
                    "spent_fen": growth.spent,
                },
            )
        )
    return events


def get_order(ctx: Context, brand_id: int, store_id: int, order_no: str) -> dict[str, Any]:
    """The receipt of a booked order (what confirm answered)."""
    with ctx.transaction(read_only=True) as conn:
        store_in_brand(conn, brand_id, store_id)
        row = conn.execute(
            select(orders.c.id, orders.c.response, orders.c.status, orders.c.refunded).where(
                orders.c.brand_id == brand_id,
                orders.c.store_id == store_id,
                orders.c.order_no == order_no,
            )
        ).first()
    if row is None:
        raise NotFound(f"订单 {order_no} 不存在 (order not found)", code="order_not_found")
    receipt = _receipt(row.id, row.response)
    receipt["status"] = row.status
    receipt["refunded_fen"] = int(row.refunded)
    return receipt
