"""Typed dependencies used straight in route signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from loyalpos.api.schemas import MAX_ID
from loyalpos.domain.errors import InvalidInput
from loyalpos.service import brands
from loyalpos.service.brands import Brand
from loyalpos.service.context import Context


def get_ctx(request: Request) -> Context:
    ctx = request.app.state.ctx
    assert isinstance(ctx, Context)
    return ctx


CtxDep = Annotated[Context, Depends(get_ctx)]


def current_brand(
    ctx: CtxDep,
    x_brand: Annotated[str | None, Header(description="brand code (品牌编码)")] = None,
) -> Brand:
    """The caller's brand. Until API keys arrive (checkout issue) the brand is
    named by the `X-Brand` header; every query below is scoped to it."""
    code = (x_brand or "").strip()
    if not code:
        raise InvalidInput("缺少品牌 (the X-Brand header is required)", code="brand_required")
    return brands.brand_by_code(ctx, code)


BrandDep = Annotated[Brand, Depends(current_brand)]

MemberId = Annotated[int, Path(gt=0, le=MAX_ID)]
EntryId = Annotated[int, Path(gt=0, le=MAX_ID)]
