"""HQ users (用户) of the brand, for an administrator (users.manage): the list,
a new user (login, name, role, a store manager's stores, first password),
disabling and enabling one, and giving one a new password. Each change is the
service's (service/admin/accounts); a refusal shows next to its field."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.accounts import Action, Role
from loyalpos.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalpos.service.admin import accounts
from loyalpos.service.base import brands
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for

router = APIRouter(include_in_schema=False)
UserId = Annotated[int, Path(gt=0, le=2**63 - 1)]
HERE = "/console/users"


def _roles(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        Role.ADMIN.value: _("Administrator"),
        Role.OPERATOR.value: _("Operator"),
        Role.ANALYST.value: _("Analyst"),
        Role.STORE_MANAGER.value: _("Store manager"),
    }


def _guard(
    request: Request, csrf: str | None = None
) -> tuple[accounts.Session | None, Response | None]:
    """The signed-in administrator, or the answer that stops the request."""
    return shell.guard(request, Action.USERS_MANAGE, HERE, csrf)


def _errors_of(request: Request, exc: DomainError) -> dict[str, str]:
    """The service's refusal as a message next to its field, in the page's language."""
    _ = gettext_for(request)
    messages = {
        "invalid_login": ("login", _("2-40 lower-case letters, digits, '.', '_', '@' or '-'.")),
        "user_exists": ("login", _("Another user has this login name.")),
        "invalid_name": ("display_name", _("Enter a name of 1-100 characters.")),
        "stores_required": ("stores", _("A store manager needs at least one store.")),
        "stores_not_allowed": ("stores", _("Only a store manager looks after stores.")),
        "store_not_found": ("stores", _("Pick stores of this brand.")),
        "weak_password": (
            "password",
            _("At least 10 characters, and not the login name."),
        ),
    }
    field, message = messages.get(exc.code, (str(exc.detail.get("field", "form")), exc.message))
    return {field: message}


@router.get(HERE)
def users(request: Request) -> Response:
    session, stop = _guard(request)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    ctx = ctx_of(request)
    return shell.render(
        request,
        session,
        "console/users.html",
        active=HERE,
        users=accounts.list_users(ctx, session.brand_id),
        roles=_roles(request),
        stores={s.id: s for s in brands.list_stores(ctx, session.brand_id)},
        me=session.user.id,
        done=request.query_params.get("done", ""),
    )


def _form(
    request: Request,
    session: accounts.Session,
    values: dict[str, str],
    chosen: list[int],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    order = ["login", "display_name", "role", "stores", "password"]
    return shell.render(
        request,
        session,
        "console/user_form.html",
        active=HERE,
        status=status,
        values=values,
        chosen=chosen,
        errors=errors,
        focus=next((n for n in order if n in errors), "login"),
        roles=_roles(request),
        stores=brands.list_stores(ctx_of(request), session.brand_id),
    )


@router.get(HERE + "/new")
def new_user(request: Request) -> Response:
    session, stop = _guard(request)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    values = {"login": "", "display_name": "", "role": Role.OPERATOR.value}
    return _form(request, session, values, [], {})


@router.post(HERE + "/new")
def create_user(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    login: Annotated[str, Form(max_length=200)] = "",
    display_name: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=40)] = "",
    stores: Annotated[list[str] | None, Form(max_length=64)] = None,
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    _ = gettext_for(request)
    values = {"login": login, "display_name": display_name, "role": role}
    chosen = [int(s) for s in stores or () if s.isdigit() and len(s) < 19]
    if role not in _roles(request):
        return _form(request, session, values, chosen, {"role": _("Pick one of the roles.")}, 400)
    try:
        accounts.create_user(
            ctx_of(request),
            session.brand_id,
            login,
            display_name,
            Role(role),
            password,
            store_ids=chosen,
        )
    except (InvalidInput, Conflict, NotFound) as exc:
        return _form(request, session, values, chosen, _errors_of(request, exc), 400)
    return RedirectResponse(HERE + "?done=created", status_code=303)


@router.post(HERE + "/{user_id}/disable")
def disable_user(request: Request, user_id: UserId, csrf: Annotated[str, Form()] = "") -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    try:
        accounts.disable_user(ctx_of(request), session.brand_id, user_id)
    except NotFound:
        return RedirectResponse(HERE, status_code=303)
    return RedirectResponse(HERE + "?done=disabled", status_code=303)


@router.post(HERE + "/{user_id}/enable")
def enable_user(request: Request, user_id: UserId, csrf: Annotated[str, Form()] = "") -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    try:
        accounts.enable_user(ctx_of(request), session.brand_id, user_id)
    except NotFound:
        return RedirectResponse(HERE, status_code=303)
    return RedirectResponse(HERE + "?done=enabled", status_code=303)


def _password_form(
    request: Request,
    session: accounts.Session,
    user: accounts.User,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return shell.render(
        request,
        session,
        "console/user_password.html",
        active=HERE,
        status=status,
        target=user,
        errors=errors,
    )


@router.get(HERE + "/{user_id}/password")
def password_page(request: Request, user_id: UserId) -> Response:
    session, stop = _guard(request)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    try:
        user = accounts.get_user(ctx_of(request), session.brand_id, user_id)
    except NotFound:
        return RedirectResponse(HERE, status_code=303)
    return _password_form(request, session, user, {})


@router.post(HERE + "/{user_id}/password")
def reset_password(
    request: Request,
    user_id: UserId,
    csrf: Annotated[str, Form()] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    ctx = ctx_of(request)
    try:
        accounts.reset_password(ctx, session.brand_id, user_id, password)
    except NotFound:
        return RedirectResponse(HERE, status_code=303)
    except InvalidInput as exc:
        user = accounts.get_user(ctx, session.brand_id, user_id)
        return _password_form(request, session, user, _errors_of(request, exc), 400)
    return RedirectResponse(HERE + "?done=password", status_code=303)
