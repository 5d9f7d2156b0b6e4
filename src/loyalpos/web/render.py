"""What every page of the web layer shares: the templates, the static files and
their cache-busting URLs, the page's language, and who is signed in.

Pages are rendered here with the request's language (`?lang=`, then the
remembered cookie, then Accept-Language, then 简体中文); every text they show
comes from the message catalogues (web/i18n.py), the script's texts included
(`messages_for_script`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from loyalpos.domain.errors import DomainError
from loyalpos.service.admin import accounts, staff
from loyalpos.service.base.context import Context
from loyalpos.web import i18n

_HERE = Path(__file__).parent
LANG_COOKIE = "lp_lang"
TILL_COOKIE = "lp_till"  # a cashier's session token
CONSOLE_COOKIE = "lp_console"  # an HQ user's session token
YEAR = 365 * 24 * 3600

env = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)

# The static files, read once; their URLs carry a hash of the content, so they
# can be cached for a year and a new version is a new URL.
STATIC: dict[str, tuple[bytes, str, str]] = {}
_TYPES = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml"}
for _path in sorted((_HERE / "static").iterdir()):
    _body = _path.read_bytes()
    _type = _TYPES.get(_path.suffix[1:], "text/plain")
    STATIC[_path.name] = (_body, hashlib.sha256(_body).hexdigest()[:12], _type + "; charset=utf-8")


# Browser libraries installed by npm (scripts/bootstrap: `npm ci` from the
# repository's package-lock.json), served the same way but never copied into
# the repository. A checkout without node_modules serves pages without them
# (`vendored` tells a page whether it may use one).
NODE_MODULES = Path(os.environ.get("LOYALPOS_NODE_MODULES") or _HERE.parents[2] / "node_modules")
VENDOR = {"echarts.min.js": "echarts/dist/echarts.min.js"}
for _name, _relative in VENDOR.items():
    try:
        _body = (NODE_MODULES / _relative).read_bytes()
    except OSError:
        continue
    STATIC[_name] = (
        _body,
        hashlib.sha256(_body).hexdigest()[:12],
        "text/javascript; charset=utf-8",
    )


def vendored(name: str) -> bool:
    """Whether the npm-installed file `name` (a key of VENDOR) can be served."""
    return name in STATIC


def static_url(name: str) -> str:
    return f"/static/{STATIC[name][1]}/{name}"


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def language(request: Request) -> tuple[str, str | None]:
    """(the page's language, the language to remember in the cookie if asked)."""
    asked = i18n.named(request.query_params.get("lang"))
    if asked is not None:
        return asked, asked
    remembered = i18n.named(request.cookies.get(LANG_COOKIE))
    if remembered is not None:
        return remembered, None
    accepted = i18n.from_accept_language(request.headers.get("accept-language"))
    return accepted or i18n.DEFAULT, None


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def page(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    """The page `template` in the request's language, never cached."""
    lang, remember = language(request)
    translations = i18n.TRANSLATIONS[lang]
    html = env.get_template(template).render(
        gettext=translations.gettext,
        ngettext=translations.ngettext,
        static_url=static_url,
        html_lang="en" if lang == "en" else "zh-Hans",
        lang=lang,
        **values,
    )
    response = Response(
        html,
        status_code=status,
        media_type="text/html",
        headers={"Cache-Control": "no-store", "Content-Language": lang.replace("_", "-")},
    )
    if remember is not None:
        response.set_cookie(
            LANG_COOKIE, remember, max_age=YEAR, samesite="lax", secure=secure(request)
        )
    return response


def gettext_for(request: Request) -> Callable[[str], str]:
    return i18n.TRANSLATIONS[language(request)[0]].gettext


def refused(request: Request, back: str) -> Response:
    """The page for a refused request (no permission, a form without its token)."""
    return page(request, "refused.html", 403, back=back)


def problem_page(
    request: Request, status: int, title: str, message: str, back: str | None = None
) -> Response:
    """A page that says what went wrong and where to go (a cashier's screen, not
    an error body): back to the till unless `back` says otherwise."""
    _ = gettext_for(request)
    to = back or ("/console" if request.url.path.startswith("/console") else "/till")
    label = _("Back to the console") if to.startswith("/console") else _("Back to the till")
    return page(
        request, "problem.html", status, title=title, message=message, back=to, back_label=label
    )


def unavailable_page(request: Request) -> Response:
    """A page asked for while the database is away: say so, and that a reload
    will do once it is back (the till's own copy opens meanwhile, see till-sw.js)."""
    _ = gettext_for(request)
    answer = problem_page(
        request,
        503,
        _("The server cannot reach its database"),
        _(
            "This is usually over in a moment. Reload the page in a few seconds; if it "
            "goes on, call the store manager."
        ),
        back=request.url.path,
    )
    answer.headers["Retry-After"] = "2"
    return answer


def broken_page(request: Request) -> Response:
    """A page whose request hit a bug (logged with its traceback by the caller)."""
    _ = gettext_for(request)
    return problem_page(
        request,
        500,
        _("Something went wrong"),
        _("The page could not be shown. Reload it; if it happens again, call the store manager."),
    )


def wants_page(scope: Any) -> bool:
    """A browser asking for a page (not the API, not the till script's calls)."""
    if scope.get("method") != "GET":
        return False
    path = str(scope.get("path", ""))
    if path.startswith(("/v1/", "/till/api/", "/static/", "/healthz")):
        return False
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"text/html" in accept


def till_session(request: Request) -> staff.StaffSession | None:
    """The signed-in cashier of this browser, or None."""
    try:
        return staff.check_session(ctx_of(request), request.cookies.get(TILL_COOKIE))
    except DomainError:
        return None


def console_session(request: Request) -> accounts.Session | None:
    """The signed-in HQ user of this browser, or None."""
    try:
        return accounts.check_session(ctx_of(request), request.cookies.get(CONSOLE_COOKIE))
    except DomainError:
        return None
