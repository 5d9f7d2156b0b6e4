"""The console's home (/console): today's figures of each store the user may
read (its local day: orders, member share, sales, points issued and redeemed,
coupons used) and a 30-day chart of sales and orders, drawn by ECharts from the
page's JSON island (static/console-home.js). Without the npm-installed ECharts
the page says the chart is missing and shows the figures alone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loyalpos.domain.accounts import Action
from loyalpos.domain.money import yuan
from loyalpos.service.reports import figures as reports
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for, vendored

router = APIRouter(include_in_schema=False)


def _chart(request: Request, panel: reports.Panel) -> dict[str, Any]:
    """What static/console-home.js draws: dates, sales in yuan, order counts."""
    _ = gettext_for(request)
    return {
        "days": [d.day.isoformat() for d in panel.days],
        "sales": [d.sales / 100 for d in panel.days],
        "orders": [d.orders for d in panel.days],
        "labels": {"sales": _("Sales (yuan)"), "orders": _("Number of orders")},
    }


@router.get("/console")
def home(request: Request) -> Response:
    session = shell.signed(request)
    if session is None:
        return shell.to_sign_in()
    if not shell.may_somewhere(session, Action.REPORTS_READ):
        return shell.denied(request, session, Action.REPORTS_READ)
    panel = reports.home_panel(ctx_of(request), session.user, session.brand_id)
    return shell.render(
        request,
        session,
        "console/home.html",
        active="/console",
        panel=panel,
        chart=_chart(request, panel),
        charts=vendored("echarts.min.js"),
        yuan=yuan,
        days=reports.DAYS,
        refresh_minutes=round(reports.PAST_TTL / 60),
    )
