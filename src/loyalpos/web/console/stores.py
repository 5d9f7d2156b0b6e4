"""The brand's stores (门店): the list for every HQ user (a store manager sees
its own), opening one and changing its name, city, format (业态) and time zone
for an administrator. The code is fixed once opened: tills, keys and exports
name the store by it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.accounts import Action, Role
from loyalpos.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for

router = APIRouter(include_in_schema=False)
StoreId = Annotated[int, Path(gt=0, le=2**63 - 1)]

# 业态 labels by code (service/base/brands.STORE_FORMATS), as message ids.
FORMAT_LABELS = {
    "mall": "Shopping mall",
    "street": "Street shop",
    "community": "Neighbourhood shop",
    "office": "Office building",
    "transit": "Station or airport",
    "campus": "Campus",
    "other": "Other",
}


def _formats(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {code: _(FORMAT_LABELS[code]) for code in brands.STORE_FORMATS}


@router.get("/console/stores")
def stores(request: Request) -> Response:
    session = shell.signed(request)
    if session is None:
        return shell.to_sign_in()
    ctx = ctx_of(request)
    found = brands.list_stores(ctx, session.brand_id)
    if session.user.role is Role.STORE_MANAGER:
        found = [s for s in found if s.id in session.user.store_ids]
    return shell.render(
        request,
        session,
        "console/stores.html",
        active="/console/stores",
        stores=found,
        formats=_formats(request),
        default_zone=brands.get_brand(ctx, session.brand_id).timezone,
        can_manage=shell.may(session, Action.STORES_MANAGE),
    )


def _form(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    new: bool,
    status: int = 200,
) -> Response:
    session = shell.signed(request)
    assert session is not None
    _ = gettext_for(request)
    order = ["code", "name", "city", "format", "timezone"]
    focus = next((n for n in order if n in errors), "code" if new else "name")
    return shell.render(
        request,
        session,
        "console/store_form.html",
        active="/console/stores",
        status=status,
        title=_("Open a store") if new else _("Change the store"),
        new=new,
        values=values,
        errors=errors,
        focus=focus,
        formats=_formats(request),
    )


def _errors_of(request: Request, exc: DomainError) -> dict[str, str]:
    """The service's refusal as a message next to its field, in the page's language."""
    _ = gettext_for(request)
    field = str(exc.detail.get("field", "form"))
    messages = {
        "bad_store_code": _("1-40 letters, digits, - or _."),
        "bad_store_name": _("Enter a name of at most 200 characters."),
        "bad_city": _("At most 64 characters."),
        "bad_store_format": _("Pick one of the formats."),
        "store_exists": _("Another store has this code."),
    }
    if field == "timezone":
        return {field: _("Not a time zone: write it like Asia/Shanghai.")}
    return {field: messages.get(exc.code, exc.message)}


def _guard(request: Request, csrf: str | None = None) -> Response | None:
    """Sign-in, the permission, and for a post its CSRF token."""
    return shell.guard(request, Action.STORES_MANAGE, "/console/stores", csrf)[1]


@router.get("/console/stores/new")
def new_store(request: Request) -> Response:
    stop = _guard(request)
    if stop is not None:
        return stop
    return _form(
        request, {"code": "", "name": "", "city": "", "format": "", "timezone": ""}, {}, new=True
    )


@router.post("/console/stores/new")
def open_store(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    code: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    city: Annotated[str, Form(max_length=1000)] = "",
    format: Annotated[str, Form(max_length=100)] = "",
    timezone: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    stop = _guard(request, csrf)
    if stop is not None:
        return stop
    session = shell.signed(request)
    assert session is not None
    values = {"code": code, "name": name, "city": city, "format": format, "timezone": timezone}
    ctx: Context = ctx_of(request)
    try:
        brands.create_store(
            ctx,
            session.brand_id,
            code,
            name,
            city=city,
            format=format,
            timezone=timezone or None,
        )
    except (InvalidInput, Conflict) as exc:
        return _form(request, values, _errors_of(request, exc), new=True, status=400)
    return RedirectResponse("/console/stores", status_code=303)


@router.get("/console/stores/{store_id}")
def edit_store(request: Request, store_id: StoreId) -> Response:
    stop = _guard(request)
    if stop is not None:
        return stop
    session = shell.signed(request)
    assert session is not None
    ctx = ctx_of(request)
    try:
        with ctx.transaction(read_only=True) as conn:
            s = brands.store_in_brand(conn, session.brand_id, store_id)
    except NotFound:
        return RedirectResponse("/console/stores", status_code=303)
    values = {
        "code": s.code,
        "name": s.name,
        "city": s.city or "",
        "format": s.format or "",
        "timezone": s.timezone or "",
    }
    return _form(request, values, {}, new=False)


@router.post("/console/stores/{store_id}")
def change_store(
    request: Request,
    store_id: StoreId,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    city: Annotated[str, Form(max_length=1000)] = "",
    format: Annotated[str, Form(max_length=100)] = "",
    timezone: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    stop = _guard(request, csrf)
    if stop is not None:
        return stop
    session = shell.signed(request)
    assert session is not None
    ctx = ctx_of(request)
    try:
        brands.update_store(
            ctx, session.brand_id, store_id, name=name, city=city, format=format, timezone=timezone
        )
    except NotFound:
        return RedirectResponse("/console/stores", status_code=303)
    except InvalidInput as exc:
        with ctx.transaction(read_only=True) as conn:
            code = brands.store_in_brand(conn, session.brand_id, store_id).code
        values = {"code": code, "name": name, "city": city, "format": format, "timezone": timezone}
        return _form(request, values, _errors_of(request, exc), new=False, status=400)
    return RedirectResponse("/console/stores", status_code=303)
