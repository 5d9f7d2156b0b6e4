"""The console's home (/console)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loyalpos.web.console import shell

router = APIRouter(include_in_schema=False)


@router.get("/console")
def home(request: Request) -> Response:
    session = shell.signed(request)
    if session is None:
        return shell.to_sign_in()
    return shell.render(request, session, "console/home.html", active="/console")
