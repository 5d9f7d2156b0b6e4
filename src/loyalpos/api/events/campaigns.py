"""Triggered campaigns, read side: a member's tags and the campaign firings log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from loyalpos.api.deps import BrandDep, CtxDep, HqBrandDep, MemberId
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.events.schemas import FiringOut, FiringsOut, TagOut, TagsOut
from loyalpos.api.fields import MAX_ID, RuleId
from loyalpos.service.events import campaigns

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["campaigns"])


@router.get("/members/{member_id}/tags", responses=responses(404, 422), response_model=TagsOut)
def member_tags(member_id: MemberId, ctx: CtxDep, brand: BrandDep) -> TagsOut:
    """The member's tags (e.g. 唤醒成功 from a reactivation campaign), oldest first."""
    rows = campaigns.tags(ctx, brand.id, member_id)
    return TagsOut(
        member_id=member_id,
        tags=[TagOut(tag=t.tag, source=t.source, created_at=t.created_at) for t in rows],
    )


@router.get("/campaigns/firings", responses=responses(403, 404, 422), response_model=FiringsOut)
def campaign_firings(
    ctx: CtxDep,
    brand: HqBrandDep,
    campaign: RuleId | None = None,
    member_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
) -> FiringsOut:
    """Which campaigns fired, for whom and for what, newest first (HQ key)."""
    rows, total = campaigns.firings(
        ctx, brand.id, campaign=campaign, member_id=member_id, before_id=before_id, limit=limit
    )
    return FiringsOut(
        total=total,
        items=[
            FiringOut(
                id=r.id,
                campaign=r.campaign,
                event_key=r.event_key,
                member_id=r.member_id,
                created_at=r.created_at,
                status=r.status,
                order_id=r.order_id,
                coupon_ids=list(r.coupons),
                points_entry_id=r.points_entry_id,
                detail=r.detail,
                revoked_at=r.revoked_at,
            )
            for r in rows
        ],
        next_before_id=rows[-1].id if len(rows) == limit else None,
    )
