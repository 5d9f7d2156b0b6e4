"""The sign-in pages of the till (staff number + PIN) and of the HQ console
(login name + password), and the pages they lead to.

Forms are plain HTML posts, so Enter submits and nothing needs script. Every
post carries a CSRF token: the session's once signed in, and before that a
pre-session token, a double-submit cookie signed with the server's secret (a
page of another site can neither read it nor make one). A post without it gets
the 403 page. Sign-in errors are shown next to the field they are about, in the
page's language; the service's own messages are for the API and the logs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from loyalpos.service.admin import accounts, staff
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.web.render import (
    CONSOLE_COOKIE,
    STATIC,
    TILL_COOKIE,
    YEAR,
    console_session,
    ctx_of,
    gettext_for,
    page,
    refused,
    secure,
    till_session,
)

PRE_COOKIE = "lp_pre"  # the pre-session CSRF token, signed
DEFAULT_TERMINAL = "01"
REMEMBER_COOKIE = "lp_till_store"  # brand and store last signed in at, to prefill
CONSOLE_BRAND_COOKIE = "lp_console_brand"  # the brand last signed in to, to prefill

router = APIRouter(include_in_schema=False)


# -- CSRF before a session -------------------------------------------------------


def _sign(ctx: Context, token: str) -> str:
    return hmac.new(ctx.settings.secret, b"pre-session:" + token.encode(), "sha256").hexdigest()


def _pre_token(request: Request) -> str | None:
    """The pre-session token of the request's cookie, if the cookie is ours."""
    token, _, signature = (request.cookies.get(PRE_COOKIE) or "").partition(".")
    if token and hmac.compare_digest(_sign(ctx_of(request), token).encode(), signature.encode()):
        return token
    return None


def _with_pre_token(request: Request, response: Response, token: str) -> Response:
    cookie = f"{token}.{_sign(ctx_of(request), token)}"
    response.set_cookie(
        PRE_COOKIE, cookie, httponly=True, samesite="lax", secure=secure(request), path="/"
    )
    return response


def _pre_token_ok(request: Request, sent: str) -> bool:
    token = _pre_token(request)
    return token is not None and bool(sent) and hmac.compare_digest(token.encode(), sent.encode())


def _hh_mm(when: datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%H:%M")


def _sign_in_form(
    request: Request,
    template: str,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    token = _pre_token(request) or secrets.token_urlsafe(24)
    order = (
        ["brand", "store", "terminal", "number", "pin"]
        if template.startswith("till")
        else [
            "brand",
            "login",
            "password",
        ]
    )
    wrong = [name for name in order if name in errors]
    empty = [name for name in order if not values.get(name)]
    focus = (wrong or empty or [order[-1]])[0]
    response = page(
        request, template, status, values=values, errors=errors, focus=focus, csrf=token
    )
    return _with_pre_token(request, response, token)


def _cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure(request)
    )


def _signed_in(
    request: Request, to: str, cookie: str, token: str, remember: tuple[str, str]
) -> Response:
    """The answer to a sign-in that worked: on to `to` with the session's cookie,
    what to prefill next time (`remember`: cookie name, value) kept a year, and
    the pre-session CSRF token dropped."""
    response = RedirectResponse(to, status_code=303)
    _cookie(request, response, cookie, token)
    _cookie(request, response, *remember, max_age=YEAR)
    response.delete_cookie(PRE_COOKIE)
    return response


def _signed_out(
    request: Request,
    check_csrf: Callable[[], None] | None,
    end: Callable[[Context, str], None],
    cookie: str,
    here: str,
    to: str,
) -> Response:
    """Sign-out for the till and the console alike: a live session (`check_csrf`
    given) must send its CSRF token, then ends; either way the cookie goes and
    the browser is sent to `to`. A forged form is refused and sent back `here`."""
    if check_csrf is not None:
        try:
            check_csrf()
        except Forbidden:
            return refused(request, here)
        end(ctx_of(request), request.cookies.get(cookie) or "")
    response = RedirectResponse(to, status_code=303)
    response.delete_cookie(cookie)
    return response


# -- pages -----------------------------------------------------------------------


@router.get("/")
def home() -> Response:
    return RedirectResponse("/till/sign-in", status_code=303)


@router.get("/static/{digest}/{name}")
def static(digest: str, name: str) -> Response:
    found = STATIC.get(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    body, current, media_type = found
    cache = "public, max-age=31536000, immutable" if digest == current else "no-cache"
    return Response(
        body, media_type=media_type, headers={"Cache-Control": cache, "ETag": f'"{current}"'}
    )


@router.get("/till/sign-in")
def till_sign_in_page(request: Request) -> Response:
    brand, _, rest = (request.cookies.get(REMEMBER_COOKIE) or "").partition(":")
    store, _, terminal = rest.partition(":")
    values = {
        "brand": brand,
        "store": store,
        "terminal": terminal or DEFAULT_TERMINAL,
        "number": "",
    }
    return _sign_in_form(request, "till_sign_in.html", values, {})


@router.post("/till/sign-in")
def till_sign_in(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    brand: Annotated[str, Form()] = "",
    store: Annotated[str, Form()] = "",
    terminal: Annotated[str, Form()] = "",
    number: Annotated[str, Form()] = "",
    pin: Annotated[str, Form()] = "",
) -> Response:
    if not _pre_token_ok(request, csrf):
        return refused(request, "/till/sign-in")
    _ = gettext_for(request)
    values = {
        "brand": brand.strip(),
        "store": store.strip().upper(),
        # A store with one till need not name it: the form offers "01" too.
        "terminal": terminal.strip() or DEFAULT_TERMINAL,
        "number": number.strip(),
    }
    errors: dict[str, str] = {}
    for name, message in (
        ("brand", _("Enter the brand code.")),
        ("store", _("Enter the store code.")),
        ("number", _("Enter your staff number.")),
    ):
        if not values[name]:
            errors[name] = message
    if not pin:
        errors["pin"] = _("Enter your PIN.")
    if errors:
        return _sign_in_form(request, "till_sign_in.html", values, errors, 400)
    ctx = ctx_of(request)
    status = 401
    try:
        the_brand = brands.brand_by_code(ctx, values["brand"])
    except NotFound:
        errors["brand"] = _("No brand has this code.")
        return _sign_in_form(request, "till_sign_in.html", values, errors, 401)
    try:
        the_store = brands.store_by_code(ctx, the_brand.id, values["store"])
        person = staff.sign_in(ctx, the_brand.id, the_store.id, values["number"], pin)
    except NotFound as exc:
        if exc.code == "store_not_found":
            errors["store"] = _("This brand has no store with this code.")
        else:
            errors["number"] = _("This store has no staff member with this number.")
    except TooManyAttempts as exc:
        status = 429
        time = _hh_mm(exc.until, the_brand.timezone)
        errors["pin"] = _(
            "Too many wrong PINs: locked until %(time)s. Wait, or ask the store manager "
            "to reset your PIN."
        ) % {"time": time}
    except Unauthorized as exc:
        if exc.code == "wrong_pin":
            left = int(exc.detail.get("attempts_left", 0))
            errors["pin"] = _("Wrong PIN: %(left)s tries left before the lock.") % {"left": left}
        else:
            errors["number"] = _("This staff number is disabled: ask the store manager.")
    except DomainError:
        errors["form"] = _("Signing in did not work. Check what you typed and try again.")
        status = 400
    if errors:
        return _sign_in_form(request, "till_sign_in.html", values, errors, status)
    try:
        started = staff.start_session(ctx, person, terminal=values["terminal"])
    except InvalidInput:
        errors["terminal"] = _("A till number is up to 32 letters or digits, on one line.")
        return _sign_in_form(request, "till_sign_in.html", values, errors, 400)
    remember = (REMEMBER_COOKIE, f"{the_brand.code}:{the_store.code}:{values['terminal']}")
    return _signed_in(request, "/till", TILL_COOKIE, started.token, remember)


@router.post("/till/sign-out")
def till_sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    session = till_session(request)
    check = None if session is None else partial(staff.check_csrf, session, csrf)
    return _signed_out(request, check, staff.end_session, TILL_COOKIE, "/till", "/till/sign-in")


@router.get("/console/sign-in")
def console_sign_in_page(request: Request) -> Response:
    values = {"brand": request.cookies.get(CONSOLE_BRAND_COOKIE, ""), "login": ""}
    return _sign_in_form(request, "console_sign_in.html", values, {})


@router.post("/console/sign-in")
def console_sign_in(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    brand: Annotated[str, Form()] = "",
    login: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    if not _pre_token_ok(request, csrf):
        return refused(request, "/console/sign-in")
    _ = gettext_for(request)
    values = {"brand": brand.strip(), "login": login.strip()}
    errors: dict[str, str] = {}
    if not values["brand"]:
        errors["brand"] = _("Enter the brand code.")
    if not values["login"]:
        errors["login"] = _("Enter your login name.")
    if not password:
        errors["password"] = _("Enter your password.")
    if errors:
        return _sign_in_form(request, "console_sign_in.html", values, errors, 400)
    ctx = ctx_of(request)
    status = 401
    address = request.client.host if request.client else None
    try:
        the_brand = brands.brand_by_code(ctx, values["brand"])
    except NotFound:
        errors["brand"] = _("No brand has this code.")
        return _sign_in_form(request, "console_sign_in.html", values, errors, 401)
    try:
        user = accounts.authenticate(ctx, the_brand.id, values["login"], password, address=address)
        started = accounts.start_session(ctx, user, address=address)
    except TooManyAttempts as exc:
        status = 429
        time = _hh_mm(exc.until, the_brand.timezone)
        errors["password"] = _("Too many failed sign-ins: try again after %(time)s.") % {
            "time": time
        }
    except Unauthorized as exc:
        if exc.code == "account_disabled":
            errors["login"] = _("This account is disabled: ask an administrator.")
        else:
            errors["password"] = _("Wrong login name or password.")
    except DomainError:
        errors["form"] = _("Signing in did not work. Check what you typed and try again.")
        status = 400
    if errors:
        return _sign_in_form(request, "console_sign_in.html", values, errors, status)
    remember = (CONSOLE_BRAND_COOKIE, the_brand.code)
    return _signed_in(request, "/console", CONSOLE_COOKIE, started.token, remember)


@router.post("/console/sign-out")
def console_sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    session = console_session(request)
    check = None if session is None else partial(accounts.check_csrf, session, csrf)
    return _signed_out(
        request, check, accounts.end_session, CONSOLE_COOKIE, "/console", "/console/sign-in"
    )
