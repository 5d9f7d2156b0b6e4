"""Typed dependencies used straight in route signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from loyalpos.api import headers
from loyalpos.api.fields import MAX_ID
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Principal
from loyalpos.service.base import brands
from loyalpos.service.base.brands import Brand
from loyalpos.service.base.context import Context


async def get_ctx(request: Request) -> Context:
    # async: a plain attribute read; a sync dependency would cost a thread-pool hop.
    ctx = request.app.state.ctx
    assert isinstance(ctx, Context)
    return ctx


CtxDep = Annotated[Context, Depends(get_ctx)]


class _BearerKey(HTTPBearer):
    """The bearer scheme as OpenAPI declares it, read by `headers.bearer_key`
    (the function the fast path reads it with) rather than by FastAPI's own
    reading, so the two paths cannot take different keys from one request."""

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        return headers.bearer_key(request.scope["headers"])


_bearer = _BearerKey(
    scheme_name="HTTPBearer",
    description="API key: `Authorization: Bearer lp_...` (exactly one such header). Cashier "
    "keys act for one store, HQ keys for the whole brand.",
)


async def principal(ctx: CtxDep, raw: Annotated[str, Security(_bearer)]) -> Principal:
    """The caller, from its API key; every query below is scoped to its brand.

    A key in the per-process cache is checked on the event loop (no I/O: a hash
    and a compare); only a key that has to be read from the database goes to the
    thread pool. A sync dependency would cost every request a thread-pool hop.
    The fast path checks a key with the same `apikeys.authenticate_cached`."""
    who = apikeys.authenticate_cached(ctx, raw)
    if who is None:
        return await run_in_threadpool(apikeys.authenticate, ctx, raw)
    return who


PrincipalDep = Annotated[Principal, Depends(principal)]


def hq_principal(who: PrincipalDep) -> Principal:
    who.require_hq()
    return who


HqDep = Annotated[Principal, Depends(hq_principal)]


def current_brand(ctx: CtxDep, who: PrincipalDep) -> Brand:
    """The caller's brand (any scope)."""
    return brands.get_brand(ctx, who.brand_id)


def hq_brand(ctx: CtxDep, who: HqDep) -> Brand:
    """The caller's brand, for endpoints that need an HQ key."""
    return brands.get_brand(ctx, who.brand_id)


BrandDep = Annotated[Brand, Depends(current_brand)]
HqBrandDep = Annotated[Brand, Depends(hq_brand)]

MemberId = Annotated[int, Path(gt=0, le=MAX_ID)]
EntryId = Annotated[int, Path(gt=0, le=MAX_ID)]
