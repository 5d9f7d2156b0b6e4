"""The member's coupon wallet (券包) over HTTP: open coupons, issuing one (HQ), a
coupon's history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from loyalpos.api.deps import CtxDep, HqDep, MemberId, PrincipalDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.fields import MAX_ID
from loyalpos.api.loyalty.schemas import CouponIssueIn, CouponOut
from loyalpos.service.loyalty import coupons

# Tagged "checkout" as in 0.1, where these routes lived with the till's, so the
# published API document did not change when the code moved.
router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["checkout"])


def _coupon_out(c: coupons.Coupon) -> CouponOut:
    return CouponOut(
        id=c.id,
        template=c.template,
        state=c.state.value,
        issued_at=c.issued_at,
        valid_from=c.valid_from,
        expires_at=c.expires_at,
        order_id=c.order_id,
    )


@router.get(
    "/members/{member_id}/coupons", responses=responses(404, 422), response_model=list[CouponOut]
)
def wallet(member_id: MemberId, ctx: CtxDep, who: PrincipalDep) -> list[CouponOut]:
    """券包: the member's open coupons (issued, or held by a quote)."""
    return [_coupon_out(c) for c in coupons.wallet(ctx, who.brand_id, member_id)]


@router.post(
    "/members/{member_id}/coupons",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=CouponOut,
    status_code=201,
)
def issue_coupon(member_id: MemberId, body: CouponIssueIn, ctx: CtxDep, who: HqDep) -> CouponOut:
    """发券 (HQ): put a coupon of a template of the rules in force into the wallet."""
    return _coupon_out(
        coupons.issue_to_member(
            ctx, who.brand_id, member_id, body.template, source_ref=body.source_ref
        )
    )


@router.get("/coupons/{coupon_id}/history", responses=responses(404, 422))
def coupon_history(
    coupon_id: Annotated[int, Path(gt=0, le=MAX_ID)], ctx: CtxDep, who: PrincipalDep
) -> list[dict[str, Any]]:
    """A coupon's life: issued, used (order, store), returned (refund)."""
    return coupons.history(ctx, who.brand_id, coupon_id)
