"""Webhooks (回调) in the console, for an administrator (webhooks.manage): the
subscriptions, subscribing a URL to event types (its signing secret shown once),
stopping one; the deliveries by status, the dead letters among them, and
replaying one. The service is the API's (service/events/webhooks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.accounts import Action
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.service.admin.accounts import Session
from loyalpos.service.base.outbox import EventType
from loyalpos.service.events import webhooks
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for, refused

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(gt=0, le=2**63 - 1)]
PAGE = 100
HOME = "/console/webhooks"


def _guard(request: Request, csrf: str | None = None) -> tuple[Session | None, Response | None]:
    session = shell.signed(request)
    if session is None:
        return None, shell.to_sign_in()
    if not shell.may(session, Action.WEBHOOKS_MANAGE):
        return None, shell.denied(request, session, Action.WEBHOOKS_MANAGE)
    if csrf is not None and not shell.check_form(session, csrf):
        return None, refused(request, HOME)
    return session, None


def _page(
    request: Request,
    session: Session,
    *,
    status_filter: str = "",
    after: int = 0,
    values: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
    secret: str = "",
    said: str = "",
    code: int = 200,
) -> Response:
    ctx = ctx_of(request)
    _ = gettext_for(request)
    wanted = status_filter if status_filter in {s.value for s in webhooks.DeliveryStatus} else None
    deliveries = webhooks.list_deliveries(
        ctx, session.brand_id, status=wanted, after_id=after, limit=PAGE
    )
    labels = {
        "pending": _("Waiting to be sent"),
        "delivered": _("Delivered"),
        "dead": _("Dead letter"),
    }
    more = None
    if len(deliveries) == PAGE:
        more = f"{HOME}?status={wanted or ''}&after={deliveries[-1].id}#deliveries"
    return shell.render(
        request,
        session,
        "console/webhooks.html",
        active=HOME,
        status=code,
        subscriptions=webhooks.list_subscriptions(ctx, session.brand_id),
        deliveries=deliveries,
        status_filter=wanted or "",
        labels=labels,
        event_types=[e.value for e in EventType],
        values=values or {"url": "", "events": []},
        errors=errors or {},
        secret=secret,
        said=said,
        more=more,
    )


@router.get("/console/webhooks")
def webhooks_page(
    request: Request,
    status: Annotated[str, Query(max_length=20)] = "",
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    replayed: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> Response:
    session, stop = _guard(request)
    if stop is not None:
        return stop
    assert session is not None
    _ = gettext_for(request)
    said = _("Delivery %(id)s will be sent again.") % {"id": replayed} if replayed else ""
    return _page(request, session, status_filter=status, after=after, said=said)


@router.post("/console/webhooks")
def subscribe(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    url: Annotated[str, Form(max_length=4000)] = "",
    events: Annotated[list[str] | None, Form(max_length=64)] = None,
) -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None:
        return stop
    assert session is not None
    _ = gettext_for(request)
    chosen = [e[:64] for e in (events or [])][:64]
    values: dict[str, object] = {"url": url, "events": chosen}
    if not chosen:
        errors = {"events": _("Choose at least one event.")}
        return _page(request, session, values=values, errors=errors, code=400)
    try:
        made = webhooks.subscribe(ctx_of(request), session.brand_id, url, chosen)
    except InvalidInput as exc:
        field = "url" if exc.detail.get("field") == "url" else "events"
        messages = {
            "invalid_webhook_url": _("Write a full address, like https://example.com/hooks."),
            "webhook_url_not_public": _("The address must be reachable on the internet."),
            "invalid_event_types": _("Choose events from the list."),
        }
        errors = {field: messages.get(exc.code, exc.message)}
        return _page(request, session, values=values, errors=errors, code=400)
    said = _("Subscription %(id)s made.") % {"id": made.subscription.id}
    return _page(request, session, secret=made.secret, said=said)


@router.post("/console/webhooks/{sub_id}/disable")
def disable(request: Request, sub_id: Id, csrf: Annotated[str, Form()] = "") -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None:
        return stop
    assert session is not None
    try:
        webhooks.deactivate(ctx_of(request), session.brand_id, sub_id)
    except NotFound:
        pass  # another brand's or none: nothing to stop, as if it were gone
    return RedirectResponse(HOME, status_code=303)


@router.post("/console/webhooks/deliveries/{delivery_id}/replay")
def replay(request: Request, delivery_id: Id, csrf: Annotated[str, Form()] = "") -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None:
        return stop
    assert session is not None
    _ = gettext_for(request)
    try:
        webhooks.replay(ctx_of(request), session.brand_id, delivery_id)
    except NotFound:
        return RedirectResponse(HOME, status_code=303)
    except Conflict as exc:
        messages = {
            "delivery_pending": _("This delivery is already waiting to be sent."),
            "webhook_inactive": _("The subscription is stopped: nothing to send to."),
        }
        errors = {f"delivery-{delivery_id}": messages.get(exc.code, exc.message)}
        return _page(request, session, errors=errors, code=409)
    return RedirectResponse(f"{HOME}?replayed={delivery_id}#deliveries", status_code=303)
