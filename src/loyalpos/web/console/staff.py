"""Store staff (员工) and their PINs (staff.manage: an administrator for every
store, a store manager for its own): one store's list, a new staff member
(number, name, PIN), disabling and enabling one, and a new PIN (which also
lifts a lockout). Another store's staff member is refused as not there (404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.accounts import Action
from loyalpos.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalpos.service.admin import accounts, staff
from loyalpos.service.base import brands
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for, problem_page

router = APIRouter(include_in_schema=False)
StaffId = Annotated[int, Path(gt=0, le=2**63 - 1)]
HERE = "/console/staff"


def _guard(
    request: Request, csrf: str | None = None
) -> tuple[accounts.Session | None, Response | None]:
    """The signed-in user who may manage staff somewhere, or the answer that stops."""
    return shell.guard(request, Action.STAFF_MANAGE, HERE, csrf, somewhere=True)


def _stores(request: Request, session: accounts.Session) -> list[brands.Store]:
    """The stores whose staff this user manages (a store manager: its own)."""
    found = brands.list_stores(ctx_of(request), session.brand_id)
    return [s for s in found if shell.may(session, Action.STAFF_MANAGE, s.id)]


def _store_asked(request: Request, mine: list[brands.Store]) -> brands.Store | None:
    asked = request.query_params.get("store", "")
    for s in mine:
        if str(s.id) == asked:
            return s
    return mine[0] if mine and not asked else None


def _not_here(request: Request) -> Response:
    _ = gettext_for(request)
    return problem_page(
        request,
        404,
        _("Not found"),
        _("There is no such staff member at the stores you look after."),
        back=HERE,
    )


def _mine(request: Request, session: accounts.Session, staff_id: int) -> staff.Staff | None:
    """The staff member, if of a store this user manages."""
    try:
        found = staff.get_staff(ctx_of(request), session.brand_id, staff_id)
    except NotFound:
        return None
    return found if shell.may(session, Action.STAFF_MANAGE, found.store_id) else None


def _errors_of(request: Request, exc: DomainError) -> dict[str, str]:
    _ = gettext_for(request)
    messages = {
        "invalid_staff_number": ("number", _("1-16 letters or digits.")),
        "staff_exists": ("number", _("Another staff member of this store has this number.")),
        "invalid_name": ("name", _("Enter a name of 1-100 characters.")),
        "invalid_pin": ("pin", _("4-8 digits.")),
        "store_not_found": ("store", _("Pick one of your stores.")),
    }
    field, message = messages.get(exc.code, (str(exc.detail.get("field", "form")), exc.message))
    return {field: message}


@router.get(HERE)
def staff_list(request: Request) -> Response:
    session, stop = _guard(request)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    mine = _stores(request, session)
    store = _store_asked(request, mine)
    if store is None and request.query_params.get("store"):
        return _not_here(request)
    people = staff.list_staff(ctx_of(request), session.brand_id, store.id) if store else []
    return shell.render(
        request,
        session,
        "console/staff.html",
        active=HERE,
        stores=mine,
        store=store,
        people=people,
        done=request.query_params.get("done", ""),
    )


def _form(
    request: Request,
    session: accounts.Session,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    order = ["store", "number", "name", "pin"]
    return shell.render(
        request,
        session,
        "console/staff_form.html",
        active=HERE,
        status=status,
        stores=_stores(request, session),
        values=values,
        errors=errors,
        focus=next((n for n in order if n in errors), "number"),
    )


@router.get(HERE + "/new")
def new_staff(request: Request) -> Response:
    session, stop = _guard(request)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    values = {"store": request.query_params.get("store", ""), "number": "", "name": ""}
    return _form(request, session, values, {})


@router.post(HERE + "/new")
def create_staff(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    store: Annotated[str, Form(max_length=20)] = "",
    number: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    pin: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    _ = gettext_for(request)
    values = {"store": store, "number": number, "name": name}
    store_id = int(store) if store.isdigit() and len(store) < 19 else 0
    if not shell.may(session, Action.STAFF_MANAGE, store_id):
        return _form(request, session, values, {"store": _("Pick one of your stores.")}, 400)
    try:
        staff.create_staff(ctx_of(request), session.brand_id, store_id, number, name, pin)
    except (InvalidInput, Conflict, NotFound) as exc:
        return _form(request, session, values, _errors_of(request, exc), 400)
    return RedirectResponse(f"{HERE}?store={store_id}&done=created", status_code=303)


def _switch(request: Request, staff_id: int, csrf: str, *, enable: bool) -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    person = _mine(request, session, staff_id)
    if person is None:
        return _not_here(request)
    change = staff.enable_staff if enable else staff.disable_staff
    change(ctx_of(request), session.brand_id, staff_id)
    done = "enabled" if enable else "disabled"
    return RedirectResponse(f"{HERE}?store={person.store_id}&done={done}", status_code=303)


@router.post(HERE + "/{staff_id}/disable")
def disable_staff(
    request: Request, staff_id: StaffId, csrf: Annotated[str, Form()] = ""
) -> Response:
    return _switch(request, staff_id, csrf, enable=False)


@router.post(HERE + "/{staff_id}/enable")
def enable_staff(
    request: Request, staff_id: StaffId, csrf: Annotated[str, Form()] = ""
) -> Response:
    return _switch(request, staff_id, csrf, enable=True)


def _pin_form(
    request: Request,
    session: accounts.Session,
    person: staff.Staff,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return shell.render(
        request,
        session,
        "console/staff_pin.html",
        active=HERE,
        status=status,
        person=person,
        errors=errors,
    )


@router.get(HERE + "/{staff_id}/pin")
def pin_page(request: Request, staff_id: StaffId) -> Response:
    session, stop = _guard(request)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    person = _mine(request, session, staff_id)
    if person is None:
        return _not_here(request)
    return _pin_form(request, session, person, {})


@router.post(HERE + "/{staff_id}/pin")
def reset_pin(
    request: Request,
    staff_id: StaffId,
    csrf: Annotated[str, Form()] = "",
    pin: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    person = _mine(request, session, staff_id)
    if person is None:
        return _not_here(request)
    try:
        staff.reset_pin(ctx_of(request), session.brand_id, staff_id, pin)
    except InvalidInput as exc:
        return _pin_form(request, session, person, _errors_of(request, exc), 400)
    return RedirectResponse(f"{HERE}?store={person.store_id}&done=pin", status_code=303)
