from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from loyalpos import __version__
from loyalpos.api.admin.schemas import Health
from loyalpos.api.deps import CtxDep
from loyalpos.api.errors import responses

router = APIRouter(tags=["health"], responses=responses(503))


@router.get("/healthz", response_model=Health)
def healthz(ctx: CtxDep) -> Health:
    """Liveness and database reachability; needs no API key."""
    with ctx.transaction() as conn:
        conn.execute(text("SELECT 1"))
    return Health(status="ok", database=ctx.dialect, version=__version__)
