"""Orders (订单) in the console: the search by store, the store-local day, order
number and member phone (orders.read); one order with its receipt, the refunds
made and the till's events; and a refund of chosen lines with a reason, previewed
then confirmed (refunds.create: an administrator, or a store manager for its own
stores). A store manager sees only its stores: another store's order is 404.

The refund is the till's own (service/till/refunds): the cashier is the HQ
user's login, the terminal "console", and the refund number is fixed when the
preview is drawn, so a confirmation sent twice refunds once."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.accounts import Action, Role
from loyalpos.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalpos.domain.money import yuan
from loyalpos.service.admin.accounts import Session
from loyalpos.service.base import brands
from loyalpos.service.base.brands import Store
from loyalpos.service.till import orders, receipts, refunds, till_events
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for, problem_page, refused

router = APIRouter(include_in_schema=False)
StoreId = Annotated[int, Path(gt=0, le=2**63 - 1)]
OrderNo = Annotated[str, Path(min_length=1, max_length=64)]
TERMINAL = "console"
MAX_REASON = 200


def visible_stores(request: Request, session: Session, action: Action) -> list[Store]:
    """The brand's stores the user may do `action` for (a store manager: its own)."""
    found = brands.list_stores(ctx_of(request), session.brand_id)
    if session.user.role is Role.STORE_MANAGER:
        found = [s for s in found if s.id in session.user.store_ids]
    return [s for s in found if shell.may(session, action, s.id)]


def _not_found(request: Request) -> Response:
    _ = gettext_for(request)
    return problem_page(
        request, 404, _("Order not found"), _("No such order in your stores."), "/console/orders"
    )


@router.get("/console/orders")
def search(
    request: Request,
    store: Annotated[str, Query(max_length=20)] = "",
    date_: Annotated[str, Query(alias="date", max_length=20)] = "",
    order_no: Annotated[str, Query(max_length=200)] = "",
    phone: Annotated[str, Query(max_length=40)] = "",
    cursor: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    session = shell.signed(request)
    if session is None:
        return shell.to_sign_in()
    if not shell.may_somewhere(session, Action.ORDERS_READ):
        return shell.denied(request, session, Action.ORDERS_READ)
    _ = gettext_for(request)
    shown = visible_stores(request, session, Action.ORDERS_READ)
    values = {"store": store, "date": date_, "order_no": order_no, "phone": phone}
    errors: dict[str, str] = {}
    store_id: int | None = None
    if store:
        if not store.isdigit() or int(store) not in {s.id for s in shown}:
            errors["store"] = _("Pick one of your stores.")
        else:
            store_id = int(store)
    day: date | None = None
    if date_:
        try:
            day = date.fromisoformat(date_)
        except ValueError:
            errors["date"] = _("Write a date like 2024-01-31.")
    page = orders.OrderPage((), None)
    if not errors:
        allowed = None if session.user.role is not Role.STORE_MANAGER else {s.id for s in shown}
        try:
            page = orders.search(
                ctx_of(request),
                session.brand_id,
                allowed_stores=allowed,
                store_id=store_id,
                day=day,
                order_no=order_no,
                phone=phone,
                cursor=cursor,
            )
        except NotFound:
            errors["store"] = _("Pick one of your stores.")
        except InvalidInput as exc:
            field = str(exc.detail.get("field", "order_no"))
            messages = {
                "phone": _("Not a phone number: write it like 13800138000."),
                "date": _("Write a date like 2024-01-31."),
                "order_no": _("At most 64 characters."),
                "cursor": _("That page no longer exists: search again."),
            }
            errors[field if field in messages else "order_no"] = messages.get(field, exc.message)
    status = 400 if errors else 200
    more = None
    if page.next_cursor is not None:
        from urllib.parse import urlencode

        more = "/console/orders?" + urlencode({**values, "cursor": page.next_cursor})
    return shell.render(
        request,
        session,
        "console/orders.html",
        active="/console/orders",
        status=status,
        stores=shown,
        values=values,
        errors=errors,
        rows=page.rows,
        more=more,
        yuan=yuan,
    )


def _order_view(
    request: Request,
    session: Session,
    store_id: int,
    order_no: str,
    *,
    preview: dict[str, object] | None = None,
    chosen: dict[int, int] | None = None,
    reason: str = "",
    refund_no: str = "",
    errors: dict[str, str] | None = None,
    done: str = "",
    status: int = 200,
) -> Response:
    ctx = ctx_of(request)
    try:
        receipt = receipts.receipt(ctx, session.brand_id, store_id, order_no)
    except NotFound:
        return _not_found(request)
    return shell.render(
        request,
        session,
        "console/order.html",
        active="/console/orders",
        status=status,
        r=receipt,
        store_id=store_id,
        refunds=orders.refunds_of(ctx, session.brand_id, store_id, order_no),
        events=till_events.for_order(ctx, session.brand_id, store_id, order_no),
        can_refund=shell.may(session, Action.REFUNDS_CREATE, store_id)
        and receipt.status != "refunded",
        preview=preview,
        chosen=chosen or {},
        reason=reason,
        refund_no=refund_no,
        errors=errors or {},
        done=done,
        yuan=yuan,
    )


def _readable(request: Request, store_id: int) -> tuple[Session | None, Response | None]:
    session = shell.signed(request)
    if session is None:
        return None, shell.to_sign_in()
    if not shell.may_somewhere(session, Action.ORDERS_READ):
        return None, shell.denied(request, session, Action.ORDERS_READ)
    if not shell.may(session, Action.ORDERS_READ, store_id):
        return None, _not_found(request)
    return session, None


@router.get("/console/orders/{store_id}/{order_no}")
def order(
    request: Request,
    store_id: StoreId,
    order_no: OrderNo,
    refunded: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    session, stop = _readable(request, store_id)
    if stop is not None:
        return stop
    assert session is not None
    return _order_view(request, session, store_id, order_no, done=refunded)


async def _refund_form(request: Request) -> tuple[str, dict[int, int], str, str, dict[str, str]]:
    """(csrf, line → quantity, reason, refund number, errors) of a posted refund form."""
    form = await request.form()
    _ = gettext_for(request)
    errors: dict[str, str] = {}
    chosen: dict[int, int] = {}
    for key, value in form.multi_items():
        if not key.startswith("qty_") or not isinstance(value, str):
            continue
        line, text = key[4:], value.strip()
        if not line.isdigit() or len(line) > 6:
            continue
        if not text:
            continue
        if not text.isdigit() or len(text) > 6:
            errors[key] = _("A whole number of units.")
            continue
        if int(text) > 0:
            chosen[int(line)] = int(text)
    csrf = form.get("csrf")
    reason = form.get("reason")
    refund_no = form.get("refund_no")
    reason_text = reason.strip() if isinstance(reason, str) else ""
    if not reason_text:
        errors["reason"] = _("Say why the order is refunded.")
    elif len(reason_text) > MAX_REASON:
        errors["reason"] = _("At most 200 characters.")
    if not chosen and not errors:
        errors["lines"] = _("Choose at least one unit to refund.")
    return (
        csrf if isinstance(csrf, str) else "",
        chosen,
        reason_text,
        refund_no if isinstance(refund_no, str) else "",
        errors,
    )


def _writer(request: Request, store_id: int, csrf: str) -> tuple[Session | None, Response | None]:
    session = shell.signed(request)
    if session is None:
        return None, shell.to_sign_in()
    if not shell.may_somewhere(session, Action.REFUNDS_CREATE):
        return None, shell.denied(request, session, Action.REFUNDS_CREATE)
    if not shell.check_form(session, csrf):
        return None, refused(request, "/console/orders")
    if not shell.may(session, Action.REFUNDS_CREATE, store_id):
        return None, _not_found(request)
    return session, None


def _refund_errors(request: Request, exc: DomainError) -> dict[str, str]:
    """The service's refusal next to the line's quantity it is about, or the lines'."""
    _ = gettext_for(request)
    if exc.code == "refund_exceeds_order":
        left = exc.detail.get("refundable", 0)
        return {
            f"qty_{exc.detail.get('line_no')}": _("Only %(left)s left to refund.") % {"left": left}
        }
    if exc.code == "already_refunded":
        return {"lines": _("The order is already refunded in full.")}
    if exc.code == "refund_line_unknown":
        return {"lines": _("The order has no such line.")}
    return {"lines": exc.message}


def _request(
    store_id: int, order_no: str, session: Session, chosen: dict[int, int], reason: str, no: str
) -> refunds.RefundRequest:
    return refunds.RefundRequest(
        store_id=store_id,
        order_no=order_no,
        refund_no=no,
        cashier=session.user.login[:64],
        lines=tuple(refunds.RefundLine(n, q) for n, q in sorted(chosen.items())),
        reason=reason,
        terminal=TERMINAL,
    )


def _refund_refused(
    request: Request,
    session: Session,
    store_id: int,
    order_no: str,
    chosen: dict[int, int],
    reason: str,
    exc: DomainError,
) -> Response:
    """A refund (or its preview) the service refused: the 404 page for an order
    this user cannot see, else the order again with the refusal by its field."""
    if exc.code in ("order_not_found", "store_not_found"):
        return _not_found(request)
    return _order_view(
        request,
        session,
        store_id,
        order_no,
        chosen=chosen,
        reason=reason,
        errors=_refund_errors(request, exc),
        status=400,
    )


@router.post("/console/orders/{store_id}/{order_no}/refund-preview")
async def refund_preview(request: Request, store_id: StoreId, order_no: OrderNo) -> Response:
    csrf, chosen, reason, _no, errors = await _refund_form(request)
    session, stop = _writer(request, store_id, csrf)
    if stop is not None:
        return stop
    assert session is not None
    if errors:
        return _order_view(
            request,
            session,
            store_id,
            order_no,
            chosen=chosen,
            reason=reason,
            errors=errors,
            status=400,
        )
    refund_no = "HQ" + uuid.uuid4().hex[:20].upper()
    try:
        shown = refunds.preview(
            ctx_of(request),
            session.brand_id,
            _request(store_id, order_no, session, chosen, reason, ""),
        )
    except (NotFound, InvalidInput, Conflict) as exc:
        return _refund_refused(request, session, store_id, order_no, chosen, reason, exc)
    return _order_view(
        request,
        session,
        store_id,
        order_no,
        preview=shown,
        chosen=chosen,
        reason=reason,
        refund_no=refund_no,
    )


@router.post("/console/orders/{store_id}/{order_no}/refund")
async def refund(request: Request, store_id: StoreId, order_no: OrderNo) -> Response:
    csrf, chosen, reason, refund_no, errors = await _refund_form(request)
    session, stop = _writer(request, store_id, csrf)
    if stop is not None:
        return stop
    assert session is not None
    if not refund_no.strip() or len(refund_no) > 64:
        refund_no = "HQ" + uuid.uuid4().hex[:20].upper()
    if errors:
        return _order_view(
            request,
            session,
            store_id,
            order_no,
            chosen=chosen,
            reason=reason,
            errors=errors,
            status=400,
        )
    try:
        refunds.refund(
            ctx_of(request),
            session.brand_id,
            _request(store_id, order_no, session, chosen, reason, refund_no),
        )
    except (NotFound, InvalidInput, Conflict) as exc:
        return _refund_refused(request, session, store_id, order_no, chosen, reason, exc)
    from urllib.parse import quote

    return RedirectResponse(
        f"/console/orders/{store_id}/{quote(order_no, safe='')}?refunded={quote(refund_no)}",
        status_code=303,
    )
