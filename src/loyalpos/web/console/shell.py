"""What every console page shares: the signed-in user (or the way to sign-in),
the permission check with its "no permission" page, the menu the user's role
may see, and the CSRF check of every form that writes.

A page is `signed(request)` first: None sends the browser to sign-in. `denied`
is the 403 page a role without the permission sees (the page names what it
may not do); `check_form` refuses a post whose token is not the session's.
`render` draws a page inside the console's frame with the menu of the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.accounts import Action
from loyalpos.domain.errors import Forbidden
from loyalpos.service.admin import accounts
from loyalpos.web.render import console_session, gettext_for, page, refused

SIGN_IN = "/console/sign-in"


@dataclass(frozen=True, slots=True)
class MenuItem:
    path: str
    label: str  # a message id
    action: Action | None  # what the user must be allowed somewhere; None: everyone


# The console's parts, in the menu's order; a part appears once it exists.
MENU: list[MenuItem] = [
    MenuItem("/console", "Home", Action.REPORTS_READ),
    MenuItem("/console/stores", "Stores", None),
    MenuItem("/console/rules", "Rules", Action.RULES_READ),
    MenuItem("/console/members", "Members", Action.MEMBERS_READ),
    MenuItem("/console/orders", "Orders", Action.ORDERS_READ),
    MenuItem("/console/reconcile", "Reconciliation", Action.RECONCILE_RUN),
    MenuItem("/console/holds", "Held carts report", Action.REPORTS_READ),
    MenuItem("/console/webhooks", "Webhooks", Action.WEBHOOKS_MANAGE),
    MenuItem("/console/staff", "Staff", Action.STAFF_MANAGE),
    MenuItem("/console/users", "Users", Action.USERS_MANAGE),
    MenuItem("/console/keys", "API keys", Action.KEYS_MANAGE),
]


def signed(request: Request) -> accounts.Session | None:
    return console_session(request)


def to_sign_in() -> Response:
    return RedirectResponse(SIGN_IN, status_code=303)


def menu_for(user: accounts.User) -> list[MenuItem]:
    return [m for m in MENU if m.action is None or accounts.can_somewhere(user, m.action)]


def render(
    request: Request,
    session: accounts.Session,
    template: str,
    *,
    active: str,
    status: int = 200,
    **values: Any,
) -> Response:
    """A console page: `template` inside the frame, the menu with `active` lit."""
    _ = gettext_for(request)
    roles = {
        "admin": _("Administrator"),
        "operator": _("Operator"),
        "analyst": _("Analyst"),
        "store_manager": _("Store manager"),
    }
    return page(
        request,
        template,
        status,
        user=session.user,
        role_label=roles.get(session.user.role.value, session.user.role.value),
        menu=menu_for(session.user),
        active=active,
        csrf=session.csrf_token,
        **values,
    )


def denied(request: Request, session: accounts.Session, action: Action) -> Response:
    """The page a user sees for what their role may not do (403)."""
    return render(
        request, session, "console/denied.html", active="", status=403, action=action.value
    )


def guard(
    request: Request,
    action: Action,
    back: str,
    csrf: str | None = None,
    *,
    somewhere: bool = False,
) -> tuple[accounts.Session | None, Response | None]:
    """Every console page's first step: (the signed-in session, None), or (None,
    the answer that stops the request): sign-in when not signed in, the "no
    permission" page for a role without `action` (for some store with
    `somewhere`, the brand otherwise), and for a post (`csrf` given) the refused
    page, linking back to `back`, when its token is not the session's."""
    session = signed(request)
    if session is None:
        return None, to_sign_in()
    allowed = may_somewhere(session, action) if somewhere else may(session, action)
    if not allowed:
        return None, denied(request, session, action)
    if csrf is not None and not check_form(session, csrf):
        return None, refused(request, back)
    return session, None


def check_form(session: accounts.Session, sent: str) -> bool:
    """Whether a posted form carries the session's CSRF token."""
    try:
        accounts.check_csrf(session, sent)
    except Forbidden:
        return False
    return True


def may(session: accounts.Session, action: Action, store_id: int | None = None) -> bool:
    return accounts.can(session.user, action, store_id)


def may_somewhere(session: accounts.Session, action: Action) -> bool:
    return accounts.can_somewhere(session.user, action)
