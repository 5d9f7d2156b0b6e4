"""The selling screen (收银台) and the JSON its script calls.

The page is one template; the script (static/till.js) keeps the cart and asks
the server at each change: `/till/api/...` here, each a translation of the
cashier's session and a small body into the same service calls the HTTP API
makes (identify, quote with reservation, confirm, holds, refunds, late orders),
so no rule lives twice. Who sells is the session's staff member at the
session's terminal: the script never names the cashier, the store or the
terminal, and every order, hold and refund records them.

Every call needs the till session's cookie; every POST also its CSRF token in
the `X-CSRF-Token` header (a page of another site can send the cookie, not the
header). A refusal is the API's error body with its 4xx, which the script shows
in a banner; a lost database is a 503 the script takes for "offline".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response

from loyalpos.domain.errors import DomainError, Forbidden, InvalidInput, NotFound, Unauthorized
from loyalpos.domain.pricing.model import CartLine, Options, PointsRequest, Strategy
from loyalpos.domain.scanning import ScanKind
from loyalpos.domain.times import check_instant
from loyalpos.service.admin import staff
from loyalpos.service.base import brands
from loyalpos.service.catalogue import products, scan
from loyalpos.service.till import checkout, holds, receipts, refunds, till_events
from loyalpos.service.till.checkout import CartRequest, ConfirmRequest, MemberRef, Tender
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from loyalpos.web import labels
from loyalpos.web import till_bodies as body
from loyalpos.web.render import (
    STATIC,
    ctx_of,
    gettext_for,
    language,
    page,
    static_url,
    till_session,
)
from loyalpos.web.till_messages import script_messages

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(gt=0, le=2**63 - 1)]


# -- the page --------------------------------------------------------------------


@router.get("/till")
def till_page(request: Request) -> Response:
    session = till_session(request)
    if session is None:
        return RedirectResponse("/till/sign-in", status_code=303)
    ctx = ctx_of(request)
    with ctx.transaction(read_only=True) as conn:
        store = brands.store_in_brand(conn, session.staff.brand_id, session.staff.store_id)
    settings = checkout.till_settings(ctx, session.staff.brand_id)
    config = {
        "store": {"id": store.id, "code": store.code, "name": store.name},
        "staff": {"number": session.staff.number, "name": session.staff.name},
        "terminal": session.terminal,
        "require_member": settings.require_member,
        "skip_reasons": list(settings.skip_reasons),
        "hold_reasons": [
            {"code": code, "label": label}
            for code, label in labels.hold_reasons(gettext_for(request)).items()
        ],
        "messages": script_messages(gettext_for(request)),
        "lang": "en" if language(request)[0] == "en" else "zh",
    }
    return page(
        request,
        "till.html",
        staff=session.staff,
        store=store,
        terminal=session.terminal,
        csrf=session.csrf_token,
        config=json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
        till_js=static_url("till.js"),
    )


@router.get("/till-sw.js")
def service_worker() -> Response:
    """The till's service worker, at the root so that its scope can be /till."""
    body, digest, media_type = STATIC["till-sw.js"]
    return Response(
        body, media_type=media_type, headers={"Cache-Control": "no-cache", "ETag": f'"{digest}"'}
    )


# -- the script's calls ------------------------------------------------------------


def _session(request: Request, *, writing: bool) -> staff.StaffSession:
    """The cashier's session; for a write, with its CSRF token in the header."""
    found = till_session(request)
    if found is None:
        raise Unauthorized(
            "请重新登录收银台 (the till session ended: sign in again)", code="signed_out"
        )
    if writing:
        staff.check_csrf(found, request.headers.get("x-csrf-token") or "")
    return found


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(value), status_code=status, headers={"Cache-Control": "no-store"}
    )


def _member(member_id: int | None) -> MemberRef | None:
    return None if member_id is None else MemberRef(member_id=member_id)


def _cart(s: staff.StaffSession, cart: body.CartIn) -> CartRequest:
    points: PointsRequest | int = (
        PointsRequest(cart.points) if isinstance(cart.points, str) else cart.points
    )
    return CartRequest(
        s.staff.store_id,
        tuple(
            CartLine(x.sku, x.category, x.unit_price_fen, x.qty, x.name or x.sku)
            for x in cart.lines
        ),
        _member(cart.member_id),
        Options(
            points=points,
            strategy=Strategy.MAX_SAVING,
            force=tuple(str(c) for c in cart.force),
            skip_all=cart.skip_all,
        ),
    )


def _confirm(s: staff.StaffSession, order: body.OrderIn, *, late: bool) -> ConfirmRequest:
    at: datetime | None = None
    if order.ordered_at:
        at = check_instant(datetime.fromisoformat(order.ordered_at), "ordered_at")
    return ConfirmRequest(
        order_no=order.order_no,
        cart=_cart(s, order),
        tenders=tuple(Tender(t.method, t.amount_fen, t.reference) for t in order.tenders),
        cashier=s.staff.number,
        terminal=s.terminal,
        coupon_ids=tuple(order.coupon_ids),
        points=order.points_used,
        quote_token=None if late else order.quote_token,
        ordered_at=at if late else None,
    )


@router.post("/till/api/scan")
def scan_code(request: Request, sent: body.ScanIn) -> JSONResponse:
    """What the scanner (or the cashier) typed: an item with its line price, a
    member (identified at once), a payment code, or what it could not be."""
    s = _session(request, writing=True)
    ctx = ctx_of(request)
    found = scan.scan(ctx, s.staff.brand_id, sent.text)
    kind = found.kind
    answer: dict[str, Any] = {"kind": kind.value, "text": found.scanned.text}
    if kind is ScanKind.INVALID:
        answer["reason"] = found.scanned.reason
    elif kind is ScanKind.PAYMENT_CODE:
        answer["wallet"] = found.scanned.wallet.value if found.scanned.wallet else None
    elif kind in (ScanKind.MEMBER_CODE, ScanKind.PHONE, ScanKind.CARD):
        ref = {
            ScanKind.MEMBER_CODE: MemberRef(code=found.scanned.text),
            ScanKind.PHONE: MemberRef(phone=found.scanned.text),
            ScanKind.CARD: MemberRef(card_no=found.scanned.text),
        }[kind]
        answer["member"] = checkout.identify(ctx, s.staff.brand_id, s.staff.store_id, ref)
    elif found.scanned.is_item:
        answer["code"] = found.scanned.code
        answer["price_fen"] = found.price_fen
        answer["weight_g"] = found.weight_g
        answer["product"] = None if found.product is None else _product(found.product)
    return _json(answer)


def _product(p: products.Product) -> dict[str, Any]:
    return {
        "sku": p.sku,
        "name": p.name,
        "category": p.category,
        "price_fen": p.price_fen,
        "barcode": p.barcode,
        "unit": p.unit.value,
    }


@router.get("/till/api/products")
def product_search(
    request: Request,
    q: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=products.MAX_SEARCH)] = 20,
) -> JSONResponse:
    """The catalogue by name or sku prefix; with limit=200 and no `q`, what the
    page keeps for selling at shelf prices while the server is away."""
    s = _session(request, writing=False)
    found = products.search(ctx_of(request), s.staff.brand_id, q.strip(), limit=limit)
    return _json({"data": [_product(p) for p in found]})


@router.post("/till/api/members/{member_id}")
def member(request: Request, member_id: Id) -> JSONResponse:
    """The member panel again (after a sale, a resumed hold)."""
    s = _session(request, writing=True)
    return _json(
        checkout.identify(
            ctx_of(request), s.staff.brand_id, s.staff.store_id, MemberRef(member_id=member_id)
        )
    )


@router.post("/till/api/quote")
def quote(request: Request, cart: body.QuoteIn) -> JSONResponse:
    """Price the cart; a member's coupons and points chosen are held for this
    till (the previous quote's hold, `replaces`, is given back first)."""
    s = _session(request, writing=True)
    done = checkout.quote(
        ctx_of(request), s.staff.brand_id, _cart(s, cart), reserve=True, replaces=cart.replaces
    )
    return _json(done.as_json())


@router.post("/till/api/release")
def release(request: Request, sent: body.ReleaseIn) -> JSONResponse:
    """The cart was dropped: give back what its quote held (gone already is fine)."""
    s = _session(request, writing=True)
    try:
        checkout.release(ctx_of(request), s.staff.brand_id, s.staff.store_id, sent.token)
    except NotFound:
        pass
    return _json({"released": True})


@router.post("/till/api/orders")
def confirm(request: Request, order: body.OrderIn) -> JSONResponse:
    """Paid: book the order once (its number makes a retry a replay)."""
    s = _session(request, writing=True)
    ctx = ctx_of(request)
    if order.member_id is None and order.skip_reason == "":
        settings = checkout.till_settings(ctx, s.staff.brand_id)
        if settings.require_member:
            raise Forbidden(
                "本店须先识别会员：请扫会员码，或选择跳过原因 "
                "(this brand requires a member before payment: scan one or give a reason)",
                code="member_identification_required",
            )
    done = checkout.confirm(ctx, s.staff.brand_id, _confirm(s, order, late=False))
    if not done.replayed:
        _record_overrides(request, s, order)
    return _json({**done.receipt, "replayed": done.replayed}, 200 if done.replayed else 201)


def _record_overrides(request: Request, s: staff.StaffSession, order: body.OrderIn) -> None:
    """What the cashier decided against the defaults, for the reports."""
    record = _recorder(request, s, order.order_no)
    if order.member_id is None and order.skip_reason:
        record(till_events.TillEventKind.IDENTIFICATION_SKIPPED, order.skip_reason, {})
    for line in order.lines:
        if line.manual:
            record(
                till_events.TillEventKind.MANUAL_PRICE,
                "",
                {"sku": line.sku, "price_fen": line.unit_price_fen, "qty": line.qty},
            )
    if order.skip_all:
        record(till_events.TillEventKind.BENEFITS_DECLINED, "", {})
    if order.force:
        record(till_events.TillEventKind.COUPON_SWITCHED, "", {"coupons": order.force})


def _recorder(
    request: Request, s: staff.StaffSession, order_no: str
) -> Callable[[till_events.TillEventKind, str, dict[str, Any]], None]:
    def record(kind: till_events.TillEventKind, reason: str, detail: dict[str, Any]) -> None:
        till_events.record(
            ctx_of(request),
            s.staff.brand_id,
            s.staff.store_id,
            kind,
            staff_id=s.staff.id,
            staff_number=s.staff.number,
            terminal=s.terminal,
            reason=reason,
            order_no=order_no,
            detail=detail,
        )

    return record


@router.post("/till/api/late-orders")
def late_orders(request: Request, sent: body.LateIn) -> JSONResponse:
    """补单: the sales this page kept while the server was away, each priced with
    the rules of its own time; what could not be honoured is in `exceptions`."""
    s = _session(request, writing=True)
    results: list[dict[str, Any]] = []
    by_no = {o.order_no: o for o in sent.orders}
    requests = [_confirm(s, o, late=True) for o in sent.orders]
    ctx = ctx_of(request)
    for order_no, outcome in checkout.late_batch(ctx, s.staff.brand_id, requests):
        if isinstance(outcome, DomainError) and outcome.code == "order_no_reused":
            # A sale kept after a confirm whose answer was lost: it was booked then,
            # as the cashier first sent it; that booking stands.
            booked = checkout.get_order(ctx, s.staff.brand_id, s.staff.store_id, order_no)
            results.append({"order_no": order_no, "outcome": "replayed", "receipt": booked})
            continue
        if isinstance(outcome, DomainError):
            results.append(
                {
                    "order_no": order_no,
                    "outcome": "rejected",
                    "error": {"code": outcome.code, "message": outcome.message},
                }
            )
            continue
        if not outcome.replayed:
            _record_overrides(request, s, by_no[order_no])
        results.append(
            {
                "order_no": order_no,
                "outcome": "replayed" if outcome.replayed else "booked",
                "receipt": outcome.receipt,
            }
        )
    return _json({"results": results})


# -- held carts (挂单) ----------------------------------------------------------------


def _hold_json(request: Request, h: holds.Hold, *, cart: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": h.id,
        "reason": h.reason.value,
        "reason_label": labels.hold_reasons(gettext_for(request))[h.reason.value],
        "note": h.note,
        "cashier": h.cashier,
        "terminal": h.terminal,
        "status": h.status.value,
        "created_at": h.created_at.isoformat(),
        "member": None
        if h.member is None
        else {"id": h.member.id, "name": h.member.name, "phone": h.member.phone},
    }
    if cart:
        found["cart"] = h.payload
    return found


@router.get("/till/api/holds")
def held(request: Request) -> JSONResponse:
    """The store's parked carts, every terminal's (a cart parked at one till is
    resumed at another)."""
    s = _session(request, writing=False)
    found = holds.list_active(ctx_of(request), s.staff.brand_id, s.staff.store_id)
    return _json({"data": [_hold_json(request, h) for h in found]})


@router.post("/till/api/holds")
def hold(request: Request, sent: body.HoldIn) -> JSONResponse:
    s = _session(request, writing=True)
    h = holds.hold(
        ctx_of(request),
        s.staff.brand_id,
        s.staff.store_id,
        payload=sent.cart,
        reason=sent.reason,
        note=sent.note,
        member_id=sent.member_id,
        cashier=s.staff.number,
        terminal=s.terminal,
    )
    return _json(_hold_json(request, h), 201)


def _store_hold(request: Request, s: staff.StaffSession, hold_id: int) -> None:
    """A hold of another store is not found from this till."""
    if holds.get(ctx_of(request), s.staff.brand_id, hold_id).store_id != s.staff.store_id:
        raise NotFound("挂单不存在 (no such held cart at this store)", code="hold_not_found")


@router.post("/till/api/holds/{hold_id}/resume")
def resume(request: Request, hold_id: Id) -> JSONResponse:
    s = _session(request, writing=True)
    _store_hold(request, s, hold_id)
    h = holds.resume(ctx_of(request), s.staff.brand_id, hold_id)
    return _json(_hold_json(request, h, cart=True))


@router.post("/till/api/holds/{hold_id}/cancel")
def cancel(request: Request, hold_id: Id) -> JSONResponse:
    s = _session(request, writing=True)
    _store_hold(request, s, hold_id)
    return _json(_hold_json(request, holds.cancel(ctx_of(request), s.staff.brand_id, hold_id)))


# -- refunds (退货) ------------------------------------------------------------------


@router.get("/till/api/orders/{order_no}")
def order(
    request: Request, order_no: Annotated[str, Path(min_length=1, max_length=64)]
) -> JSONResponse:
    """An order of this store, with its lines, to pick what to refund."""
    s = _session(request, writing=False)
    found = receipts.receipt(ctx_of(request), s.staff.brand_id, s.staff.store_id, order_no.strip())
    return _json(
        {
            "order_no": found.order_no,
            "status": found.status,
            "payable_fen": found.payable,
            "refunded_fen": found.refunded,
            "member": None
            if found.member is None
            else {"name": found.member.name, "phone": found.member.phone_masked},
            "lines": [
                {
                    "line_no": x.line_no,
                    "sku": x.sku,
                    "name": x.name,
                    "qty": x.qty,
                    "refunded_qty": x.refunded_qty,
                    "payable_fen": x.payable,
                }
                for x in found.lines
            ],
        }
    )


def _refund(s: staff.StaffSession, sent: body.RefundIn, refund_no: str) -> RefundRequest:
    return RefundRequest(
        s.staff.store_id,
        sent.order_no.strip(),
        refund_no,
        s.staff.number,
        tuple(RefundLine(x.line_no, x.qty) for x in sent.lines),
        sent.reason,
        s.terminal,
    )


@router.post("/till/api/refunds/preview")
def refund_preview(request: Request, sent: body.RefundIn) -> JSONResponse:
    """What the refund would do (money back, points reversed, coupons returned),
    nothing booked."""
    s = _session(request, writing=True)
    preview = refunds.preview(
        ctx_of(request), s.staff.brand_id, _refund(s, sent, sent.refund_no or "preview")
    )
    return _json(preview)


@router.post("/till/api/refunds")
def refund(request: Request, sent: body.RefundIn) -> JSONResponse:
    s = _session(request, writing=True)
    if not sent.refund_no:
        raise InvalidInput("缺少退款单号 (refund_no is required)", code="refund_no_required")
    done = refunds.refund(ctx_of(request), s.staff.brand_id, _refund(s, sent, sent.refund_no))
    return _json({**done.receipt, "replayed": done.replayed}, 200 if done.replayed else 201)
