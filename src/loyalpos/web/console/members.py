"""Members (会员) in the HQ console: search by phone, card number or the start of
a name; the member 360 page (profile, identities, tier and progress, points with
their lots and lapse dates, the ledger with the rule behind each entry, coupons
and their states, orders, tags, campaign firings); a points adjustment with a
required reason; a coupon issued to the member, or to a list of members
uploaded as CSV, once per list (service/loyalty/coupon_lists.py).

Administrators and operators: members.read to look, points.adjust and
coupons.issue to write. Analysts and store managers see the 'no permission' page.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.accounts import Action
from loyalpos.domain.errors import DomainError, InsufficientPoints, InvalidInput, NotFound
from loyalpos.domain.money import yuan
from loyalpos.service.base import brands
from loyalpos.service.events import campaigns
from loyalpos.service.loyalty import coupon_lists, coupons, members, points
from loyalpos.service.till import member_orders
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for, language

router = APIRouter(include_in_schema=False)
MemberId = Annotated[int, Path(gt=0, le=2**63 - 1)]
PAGE = 50  # the latest this many of each long list
MENU_PATH = "/console/members"

STATE_LABELS = {
    "issued": "Issued",
    "locked": "Held by a quote",
    "used": "Used",
    "returned": "Returned",
    "expired": "Expired",
    "voided": "Voided",
}
KIND_LABELS = {
    "earn": "Earned",
    "spend": "Spent",
    "expire": "Lapsed",
    "adjust": "Adjustment",
    "reverse": "Reversal",
}
FIRING_LABELS = {"fired": "Fired", "skipped": "Skipped", "revoked": "Withdrawn"}
ORDER_STATUS_LABELS = {
    "paid": "Paid",
    "partially_refunded": "Partly refunded",
    "refunded": "Refunded",
}


def _guard(request: Request, action: Action, csrf: str | None = None) -> Response | None:
    """Sign-in, the permission, and for a post its CSRF token."""
    return shell.guard(request, action, MENU_PATH, csrf)[1]


def _clock(request: Request, brand_id: int) -> Callable[[datetime | None, str], str]:
    """Times as the brand's wall clock (Asia/Shanghai unless set): `at(t, fmt)`."""
    zone = brands.get_brand(ctx_of(request), brand_id).zone

    def at(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return "—" if moment is None else moment.astimezone(zone).strftime(fmt)

    return at


def _cursor(request: Request, name: str) -> int | None:
    """A page's `?name=<id>` (older than that row), or None for the latest."""
    raw = request.query_params.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 else None


def _labels(request: Request, labels: dict[str, str]) -> dict[str, str]:
    _ = gettext_for(request)
    return {code: _(text) for code, text in labels.items()}


# -- search ---------------------------------------------------------------------------


@router.get("/console/members")
def search(request: Request) -> Response:
    stop = _guard(request, Action.MEMBERS_READ)
    if stop is not None:
        return stop
    session = shell.signed(request)
    assert session is not None
    text = request.query_params.get("q", "")[:100]
    found = members.search(ctx_of(request), session.brand_id, text) if text.strip() else []
    return shell.render(
        request,
        session,
        "console/members.html",
        active=MENU_PATH,
        q=text,
        found=found,
        searched=bool(text.strip()),
        limit=members.SEARCH_LIMIT,
        tier_names=members.tier_names(ctx_of(request), session.brand_id) if found else {},
        at=_clock(request, session.brand_id),
        can_issue=shell.may(session, Action.COUPONS_ISSUE),
    )


# -- member 360 -----------------------------------------------------------------------


def _rule_text(request: Request, entry: Any) -> str:
    """The rule (or who and why) behind a ledger entry, in the page's language."""
    lang_en = language(request)[0] == "en"
    if entry.points_rules:
        parts = [
            str(r.get("en" if lang_en else "zh") or r.get("rule") or "") for r in entry.points_rules
        ]
        return "; ".join(p for p in parts if p)
    return ""


def _member_page(
    request: Request,
    member_id: int,
    *,
    status: int = 200,
    adjust: dict[str, str] | None = None,
    adjust_errors: dict[str, str] | None = None,
    issue_errors: dict[str, str] | None = None,
    done: str = "",
) -> Response:
    session = shell.signed(request)
    assert session is not None
    ctx = ctx_of(request)
    brand_id = session.brand_id
    try:
        member = members.get(ctx, brand_id, member_id)
    except NotFound:
        return shell.render(
            request,
            session,
            "console/member_missing.html",
            active=MENU_PATH,
            status=404,
            member_id=member_id,
        )
    standing = members.standing(ctx, brand_id, member_id)
    balance = points.balance(ctx, brand_id, member_id)
    lots = points.lots(ctx, brand_id, member_id)
    schedule = points.expiry_schedule(ctx, brand_id, member_id)
    entries_before = _cursor(request, "entries_before")
    orders_before = _cursor(request, "orders_before")
    entries = points.history(ctx, brand_id, member_id, limit=PAGE, before_id=entries_before)
    wallet = coupons.of_member(ctx, brand_id, member_id, limit=PAGE)
    templates = coupons.templates_in_force(ctx, brand_id)  # none before rules are published
    template_names = {t.id: t.name for t in templates}
    orders = member_orders.of_member(ctx, brand_id, member_id, limit=PAGE, before_id=orders_before)
    tags = campaigns.tags(ctx, brand_id, member_id)
    firings, firings_total = campaigns.firings(ctx, brand_id, member_id=member_id, limit=PAGE)
    identities = members.identities_of(ctx, brand_id, member_id)
    progress_pct = None
    if standing.next_min_spent_fen:
        progress_pct = min(100, standing.spent_fen * 100 // standing.next_min_spent_fen)
    return shell.render(
        request,
        session,
        "console/member.html",
        active=MENU_PATH,
        status=status,
        m=member,
        standing=standing,
        progress_pct=progress_pct,
        balance=balance,
        lots=lots,
        schedule=schedule,
        entries=[(e, _rule_text(request, e)) for e in entries],
        wallet=wallet,
        templates=templates,
        template_names=template_names,
        orders=orders,
        tags=tags,
        firings=firings,
        firings_total=firings_total,
        identities=identities,
        page_size=PAGE,
        entries_before=entries_before,
        orders_before=orders_before,
        older_entries=entries[-1].id if len(entries) == PAGE else None,
        older_orders=orders[-1].id if len(orders) == PAGE else None,
        yuan=yuan,
        at=_clock(request, brand_id),
        states=_labels(request, STATE_LABELS),
        kinds=_labels(request, KIND_LABELS),
        order_statuses=_labels(request, ORDER_STATUS_LABELS),
        firing_statuses=_labels(request, FIRING_LABELS),
        campaign_names=campaigns.campaign_names(ctx, brand_id),
        can_adjust=shell.may(session, Action.POINTS_ADJUST),
        can_issue=shell.may(session, Action.COUPONS_ISSUE),
        adjust=adjust or {"points": "", "reason": ""},
        adjust_errors=adjust_errors or {},
        issue_errors=issue_errors or {},
        nonce=secrets.token_hex(8),
        done=done,
    )


@router.get("/console/members/issue")
def issue_list_form(request: Request) -> Response:
    stop = _guard(request, Action.COUPONS_ISSUE)
    if stop is not None:
        return stop
    return _list_page(request, {}, None)


@router.get("/console/members/{member_id}")
def member_360(request: Request, member_id: MemberId) -> Response:
    stop = _guard(request, Action.MEMBERS_READ)
    if stop is not None:
        return stop
    done = request.query_params.get("done", "")
    return _member_page(
        request, member_id, done=done if done in ("adjusted", "issued", "had") else ""
    )


# -- points adjustment ------------------------------------------------------------------


@router.post("/console/members/{member_id}/points")
def adjust_points(
    request: Request,
    member_id: MemberId,
    csrf: Annotated[str, Form()] = "",
    points_: Annotated[str, Form(alias="points")] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    stop = _guard(request, Action.POINTS_ADJUST, csrf)
    if stop is not None:
        return stop
    session = shell.signed(request)
    assert session is not None
    _ = gettext_for(request)
    values = {"points": points_, "reason": reason}
    errors: dict[str, str] = {}
    amount = 0
    try:
        amount = int(points_.strip()) if len(points_) <= 40 else 0
    except ValueError:
        errors["points"] = _("Enter a whole number of points: 100 adds, -100 takes away.")
    if not errors and amount == 0:
        errors["points"] = _("Enter a whole number of points: 100 adds, -100 takes away.")
    if not reason.strip():
        errors["reason"] = _("Write why the points are adjusted.")
    elif len(reason) > 500:
        errors["reason"] = _("At most 500 characters.")
    if not errors:
        source = points.Source(
            "operator",
            None,
            f"人工调整 (adjustment): {reason.strip()}",
            operator=session.user.login,
            reason=reason.strip(),
        )
        try:
            points.adjust(ctx_of(request), session.brand_id, member_id, amount, source)
        except NotFound:
            return RedirectResponse(MENU_PATH, status_code=303)
        except InsufficientPoints as exc:
            errors["points"] = _(
                "Not enough points: %(requested)s to take away, %(available)s can be."
            ) % {
                "requested": exc.detail.get("requested", -amount),
                "available": exc.detail.get("available", 0),
            }
        except InvalidInput as exc:
            field = str(exc.detail.get("field", "points"))
            if field == "reason":
                errors["reason"] = _("Write why the points are adjusted.")
            else:
                errors["points"] = _("At most 1,000,000,000 points at a time.")
    if errors:
        return _member_page(request, member_id, status=400, adjust=values, adjust_errors=errors)
    return RedirectResponse(f"/console/members/{member_id}?done=adjusted", status_code=303)


# -- a coupon to this member ----------------------------------------------------------------


def _issue_error(request: Request, exc: DomainError) -> str:
    _ = gettext_for(request)
    if exc.code == "template_not_found":
        return _("Pick a coupon template of the rules in force.")
    if exc.code == "template_expired":
        return _("This template is past its validity: it cannot be issued.")
    return _("No rules are in force: publish a rule set first.")


@router.post("/console/members/{member_id}/coupons")
def issue_one(
    request: Request,
    member_id: MemberId,
    csrf: Annotated[str, Form()] = "",
    template: Annotated[str, Form()] = "",
    nonce: Annotated[str, Form()] = "",
) -> Response:
    stop = _guard(request, Action.COUPONS_ISSUE, csrf)
    if stop is not None:
        return stop
    session = shell.signed(request)
    assert session is not None
    _ = gettext_for(request)
    if not template or len(template) > 64:
        return _member_page(
            request,
            member_id,
            status=400,
            issue_errors={"template": _("Pick a coupon template of the rules in force.")},
        )
    # One form, one coupon: the form's nonce makes a repeated post issue nothing new.
    ref = f"console:{session.user.login}:{nonce[:32] or secrets.token_hex(8)}"[:120]
    try:
        done = coupons.issue_once(ctx_of(request), session.brand_id, member_id, template, ref)
    except NotFound as exc:
        if exc.code == "member_not_found":
            return RedirectResponse(MENU_PATH, status_code=303)
        return _member_page(
            request, member_id, status=400, issue_errors={"template": _issue_error(request, exc)}
        )
    except InvalidInput as exc:
        return _member_page(
            request, member_id, status=400, issue_errors={"template": _issue_error(request, exc)}
        )
    outcome = "issued" if done.new else "had"
    return RedirectResponse(f"/console/members/{member_id}?done={outcome}", status_code=303)


# -- a coupon to a list (CSV) ------------------------------------------------------------------


def _list_page(
    request: Request,
    errors: dict[str, str],
    report: coupon_lists.ListReport | None,
    *,
    template: str = "",
    status: int = 200,
) -> Response:
    session = shell.signed(request)
    assert session is not None
    _ = gettext_for(request)
    templates = coupons.templates_in_force(ctx_of(request), session.brand_id)
    if not templates:
        errors = {**errors, "form": _("No rules are in force: publish a rule set first.")}
    return shell.render(
        request,
        session,
        "console/member_issue.html",
        active=MENU_PATH,
        status=status,
        templates=templates,
        chosen=template,
        errors=errors,
        report=report,
        template_name={t.id: t.name for t in templates}.get(template, template),
    )


@router.post("/console/members/issue")
def issue_list(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    template: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    stop = _guard(request, Action.COUPONS_ISSUE, csrf)
    if stop is not None:
        return stop
    session = shell.signed(request)
    assert session is not None
    _ = gettext_for(request)
    errors: dict[str, str] = {}
    content = b""
    if not template:
        errors["template"] = _("Pick a coupon template of the rules in force.")
    if file is None or not file.filename:
        errors["file"] = _("Choose a CSV file: one phone number or member id a line.")
    else:
        content = file.file.read(coupon_lists.MAX_FILE_BYTES + 1)
    if errors:
        return _list_page(request, errors, None, template=template, status=400)
    try:
        report = coupon_lists.issue_to_list(ctx_of(request), session.brand_id, template, content)
    except NotFound as exc:
        errors["template"] = _issue_error(request, exc)
    except InvalidInput as exc:
        if exc.detail.get("field") == "file":
            messages = {
                "list_empty": _("The file is empty."),
                "list_too_large": _("The file is larger than 1 MB: split it."),
                "list_not_utf8": _("The file is not UTF-8 text: save it as CSV UTF-8."),
                "list_too_long": _("At most 20,000 lines a file: split it."),
            }
            errors["file"] = messages.get(exc.code, exc.message)
        else:
            errors["template"] = _issue_error(request, exc)
    if errors:
        return _list_page(request, errors, None, template=template, status=400)
    return _list_page(request, {}, report, template=template)
