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

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from loyalpos.domain.errors import (
    DomainError,
    Forbidden,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from loyalpos.service.admin import accounts, staff
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.web import i18n

_HERE = Path(__file__).parent
LANG_COOKIE = "lp_lang"
PRE_COOKIE = "lp_pre"  # the pre-session CSRF token, signed
TILL_COOKIE = "lp_till"  # a cashier's session token
CONSOLE_COOKIE = "lp_console"  # an HQ user's session token
REMEMBER_COOKIE = "lp_till_store"  # brand and store last signed in at, to prefill
CONSOLE_BRAND_COOKIE = "lp_console_brand"  # the brand last signed in to, to prefill
YEAR = 365 * 24 * 3600

_env = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)

# The static files, read once; their URLs carry a hash of the content, so they
# can be cached for a year and a new version is a new URL.
_STATIC: dict[str, tuple[bytes, str, str]] = {}
for _path in sorted((_HERE / "static").iterdir()):
    _body = _path.read_bytes()
    _type = {"css": "text/css", "js": "text/javascript"}.get(_path.suffix[1:], "text/plain")
    _STATIC[_path.name] = (_body, hashlib.sha256(_body).hexdigest()[:12], _type + "; charset=utf-8")


def static_url(name: str) -> str:
    return f"/static/{_STATIC[name][1]}/{name}"


router = APIRouter(include_in_schema=False)


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


# -- language --------------------------------------------------------------------


def _language(request: Request) -> tuple[str, str | None]:
    """(the page's language, the language to remember in the cookie if asked)."""
    asked = i18n.named(request.query_params.get("lang"))
    if asked is not None:
        return asked, asked
    remembered = i18n.named(request.cookies.get(LANG_COOKIE))
    if remembered is not None:
        return remembered, None
    accepted = i18n.from_accept_language(request.headers.get("accept-language"))
    return accepted or i18n.DEFAULT, None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _page(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    language, remember = _language(request)
    translations = i18n.TRANSLATIONS[language]
    html = _env.get_template(template).render(
        gettext=translations.gettext,
        ngettext=translations.ngettext,
        static_url=static_url,
        html_lang="en" if language == "en" else "zh-Hans",
        **values,
    )
    response = Response(
        html,
        status_code=status,
        media_type="text/html",
        headers={"Cache-Control": "no-store", "Content-Language": language.replace("_", "-")},
    )
    if remember is not None:
        response.set_cookie(
            LANG_COOKIE, remember, max_age=YEAR, samesite="lax", secure=_secure(request)
        )
    return response


def _gettext(request: Request) -> Callable[[str], str]:
    return i18n.TRANSLATIONS[_language(request)[0]].gettext


# -- CSRF before a session -------------------------------------------------------


def _sign(ctx: Context, token: str) -> str:
    return hmac.new(ctx.settings.secret, b"pre-session:" + token.encode(), "sha256").hexdigest()


def _pre_token(request: Request) -> str | None:
    """The pre-session token of the request's cookie, if the cookie is ours."""
    token, _, signature = (request.cookies.get(PRE_COOKIE) or "").partition(".")
    if token and hmac.compare_digest(_sign(_ctx(request), token).encode(), signature.encode()):
        return token
    return None


def _with_pre_token(request: Request, response: Response, token: str) -> Response:
    cookie = f"{token}.{_sign(_ctx(request), token)}"
    response.set_cookie(
        PRE_COOKIE, cookie, httponly=True, samesite="lax", secure=_secure(request), path="/"
    )
    return response


def _pre_token_ok(request: Request, sent: str) -> bool:
    token = _pre_token(request)
    return token is not None and bool(sent) and hmac.compare_digest(token.encode(), sent.encode())


def _refused(request: Request, back: str) -> Response:
    return _page(request, "refused.html", 403, back=back)


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
        ["brand", "store", "number", "pin"]
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
    response = _page(
        request, template, status, values=values, errors=errors, focus=focus, csrf=token
    )
    return _with_pre_token(request, response, token)


def _cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=_secure(request)
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
            return _refused(request, here)
        end(_ctx(request), request.cookies.get(cookie) or "")
    response = RedirectResponse(to, status_code=303)
    response.delete_cookie(cookie)
    return response


# -- pages -----------------------------------------------------------------------


@router.get("/")
def home() -> Response:
    return RedirectResponse("/till/sign-in", status_code=303)


@router.get("/static/{digest}/{name}")
def static(digest: str, name: str) -> Response:
    found = _STATIC.get(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    body, current, media_type = found
    cache = "public, max-age=31536000, immutable" if digest == current else "no-cache"
    return Response(
        body, media_type=media_type, headers={"Cache-Control": cache, "ETag": f'"{current}"'}
    )


@router.get("/till/sign-in")
def till_sign_in_page(request: Request) -> Response:
    brand, _, store = (request.cookies.get(REMEMBER_COOKIE) or "").partition(":")
    values = {"brand": brand, "store": store, "number": ""}
    return _sign_in_form(request, "till_sign_in.html", values, {})


@router.post("/till/sign-in")
def till_sign_in(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    brand: Annotated[str, Form()] = "",
    store: Annotated[str, Form()] = "",
    number: Annotated[str, Form()] = "",
    pin: Annotated[str, Form()] = "",
) -> Response:
    if not _pre_token_ok(request, csrf):
        return _refused(request, "/till/sign-in")
    _ = _gettext(request)
    values = {"brand": brand.strip(), "store": store.strip().upper(), "number": number.strip()}
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
    ctx = _ctx(request)
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
    started = staff.start_session(ctx, person)
    remember = (REMEMBER_COOKIE, f"{the_brand.code}:{the_store.code}")
    return _signed_in(request, "/till", TILL_COOKIE, started.token, remember)


def _till_session(request: Request) -> staff.StaffSession | None:
    try:
        return staff.check_session(_ctx(request), request.cookies.get(TILL_COOKIE))
    except DomainError:
        return None


@router.get("/till")
def till_page(request: Request) -> Response:
    session = _till_session(request)
    if session is None:
        return RedirectResponse("/till/sign-in", status_code=303)
    with _ctx(request).transaction(read_only=True) as conn:
        store = brands.store_in_brand(conn, session.staff.brand_id, session.staff.store_id)
    return _page(request, "till.html", staff=session.staff, store=store, csrf=session.csrf_token)


@router.post("/till/sign-out")
def till_sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    session = _till_session(request)
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
        return _refused(request, "/console/sign-in")
    _ = _gettext(request)
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
    ctx = _ctx(request)
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


def _console_session(request: Request) -> accounts.Session | None:
    try:
        return accounts.check_session(_ctx(request), request.cookies.get(CONSOLE_COOKIE))
    except DomainError:
        return None


@router.get("/console")
def console_page(request: Request) -> Response:
    session = _console_session(request)
    if session is None:
        return RedirectResponse("/console/sign-in", status_code=303)
    _ = _gettext(request)
    roles = {
        "admin": _("Administrator"),
        "operator": _("Operator"),
        "analyst": _("Analyst"),
        "store_manager": _("Store manager"),
    }
    role = session.user.role.value
    return _page(
        request,
        "console.html",
        user=session.user,
        role=f"{roles.get(role, role)} ({role})",
        csrf=session.csrf_token,
    )


@router.post("/console/sign-out")
def console_sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    session = _console_session(request)
    check = None if session is None else partial(accounts.check_csrf, session, csrf)
    return _signed_out(
        request, check, accounts.end_session, CONSOLE_COOKIE, "/console", "/console/sign-in"
    )
