"""Reconciliation (对账) in the console (reconcile.run: an administrator, or a store
manager for its stores): upload the POS's file of a store day (the JSON of POST
/v1/stores/{id}/reconciliation, docs/holds-and-reconciliation.md) and see the
differences, POS minus ours, from service/till/reconcile as the API answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import Response

from loyalpos.domain.accounts import Action
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.domain.money import yuan
from loyalpos.service.admin.accounts import Session
from loyalpos.service.till import reconcile
from loyalpos.web.console import shell
from loyalpos.web.console.orders import visible_stores
from loyalpos.web.render import ctx_of, gettext_for, refused

router = APIRouter(include_in_schema=False)
HOME = "/console/reconcile"
MAX_FILE = 8 * 1024 * 1024


def _page(
    request: Request,
    session: Session,
    *,
    store: str = "",
    errors: dict[str, str] | None = None,
    result: dict[str, object] | None = None,
    status: int = 200,
) -> Response:
    return shell.render(
        request,
        session,
        "console/reconcile.html",
        active=HOME,
        status=status,
        stores=visible_stores(request, session, Action.RECONCILE_RUN),
        store=store,
        errors=errors or {},
        result=result,
        yuan=yuan,
    )


def _session(request: Request) -> tuple[Session | None, Response | None]:
    session = shell.signed(request)
    if session is None:
        return None, shell.to_sign_in()
    if not shell.may_somewhere(session, Action.RECONCILE_RUN):
        return None, shell.denied(request, session, Action.RECONCILE_RUN)
    return session, None


@router.get("/console/reconcile")
def reconcile_page(request: Request) -> Response:
    session, stop = _session(request)
    if stop is not None:
        return stop
    assert session is not None
    return _page(request, session)


@router.post("/console/reconcile")
async def reconcile_day(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    store: Annotated[str, Form(max_length=20)] = "",
    file: UploadFile | None = None,
) -> Response:
    session, stop = _session(request)
    if stop is not None:
        return stop
    assert session is not None
    if not shell.check_form(session, csrf):
        return refused(request, HOME)
    _ = gettext_for(request)
    errors: dict[str, str] = {}
    store_id = int(store) if store.isdigit() and len(store) < 19 else 0
    if not store_id or not shell.may(session, Action.RECONCILE_RUN, store_id):
        errors["store"] = _("Pick one of your stores.")
    data = await file.read(MAX_FILE + 1) if file is not None else b""
    if not data:
        errors["file"] = _("Choose the POS's file of the day (JSON).")
    elif len(data) > MAX_FILE:
        errors["file"] = _("The file is larger than 8 MB.")
    if errors:
        return _page(request, session, store=store, errors=errors, status=400)
    try:
        day, pos = reconcile.pos_day_from_json(data)
        found = reconcile.reconcile_day(ctx_of(request), session.brand_id, store_id, day, pos)
    except NotFound:
        errors["store"] = _("Pick one of your stores.")
        return _page(request, session, store=store, errors=errors, status=400)
    except InvalidInput as exc:
        why = exc.message
        errors["file"] = _("The file cannot be compared: %(why)s") % {"why": why}
        return _page(request, session, store=store, errors=errors, status=400)
    return _page(request, session, store=store, result=reconcile.as_dict(found))
