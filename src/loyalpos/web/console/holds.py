"""Held carts (挂单) report in the console: per store and reason, how many were
parked in a range of local days and how they ended (service/till/holds.report).
Readable with reports.read; a store manager sees its stores only."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from loyalpos.domain.accounts import Action, Role
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.service.till import holds
from loyalpos.web import labels
from loyalpos.web.console import shell
from loyalpos.web.console.orders import visible_stores
from loyalpos.web.render import ctx_of, gettext_for

router = APIRouter(include_in_schema=False)
HOME = "/console/holds"


@router.get("/console/holds")
def holds_report(
    request: Request,
    store: Annotated[str, Query(max_length=20)] = "",
    from_: Annotated[str, Query(alias="from", max_length=20)] = "",
    to: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    session = shell.signed(request)
    if session is None:
        return shell.to_sign_in()
    if not shell.may_somewhere(session, Action.REPORTS_READ):
        return shell.denied(request, session, Action.REPORTS_READ)
    _ = gettext_for(request)
    ctx = ctx_of(request)
    shown = visible_stores(request, session, Action.REPORTS_READ)
    today = ctx.now().date()
    values = {"store": store, "from": from_ or (today - timedelta(days=6)).isoformat(), "to": to}
    values["to"] = to or today.isoformat()
    errors: dict[str, str] = {}
    store_id: int | None = None
    if store:
        if not store.isdigit() or int(store) not in {s.id for s in shown}:
            errors["store"] = _("Pick one of your stores.")
        else:
            store_id = int(store)
    days: dict[str, date] = {}
    for field in ("from", "to"):
        try:
            days[field] = date.fromisoformat(values[field])
        except ValueError:
            errors[field] = _("Write a date like 2024-01-31.")
    rows: list[holds.ReportRow] = []
    if not errors:
        try:
            rows = holds.report(ctx, session.brand_id, days["from"], days["to"], store_id=store_id)
        except NotFound:
            errors["store"] = _("Pick one of your stores.")
        except InvalidInput as exc:
            field = str(exc.detail.get("field", "to"))
            errors["from" if field == "from" else "to"] = (
                _("The end is before the start.")
                if "before" in exc.message
                else _("At most %(days)s days at a time.") % {"days": holds.MAX_REPORT_DAYS}
                if "long" in exc.message or "at most" in exc.message
                else _("Write a date like 2024-01-31.")
            )
    if session.user.role is Role.STORE_MANAGER:
        rows = [r for r in rows if r.store_id in session.user.store_ids]
    names = labels.hold_reasons(_)
    reasons: dict[str, int] = {}
    for r in rows:
        reasons[names[r.reason.value]] = reasons.get(names[r.reason.value], 0) + r.total
    return shell.render(
        request,
        session,
        "console/holds.html",
        active=HOME,
        status=400 if errors else 200,
        stores=shown,
        values=values,
        errors=errors,
        rows=rows,
        reasons=reasons,
        reason_names=names,
        total=sum(r.total for r in rows),
    )
