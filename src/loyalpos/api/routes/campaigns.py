"""Triggered campaigns, read side: a member's tags and the campaign firings log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from loyalpos.api.deps import BrandDep, CtxDep, HqBrandDep, MemberId
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.fields import RuleId
from loyalpos.api.schemas import MAX_ID
from loyalpos.service.events import campaigns

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["campaigns"])


class TagOut(BaseModel):
    tag: str
    source: str = Field(description='what set it, e.g. "campaign:wake-up"')
    created_at: datetime


class TagsOut(BaseModel):
    member_id: int
    tags: list[TagOut]


class FiringOut(BaseModel):
    id: int
    campaign: str
    event_key: str = Field(
        description="what it fired for: order:{id}, member:{id} (first order) "
        "or tier:{member}:{tier}"
    )
    member_id: int | None
    created_at: datetime
    status: Literal["fired", "skipped", "revoked"] = Field(
        description="skipped: its order was fully refunded before it fired; revoked: "
        "its order was fully refunded later and its unused gifts taken back"
    )
    order_id: int | None = Field(description="the order an order trigger fired for")
    coupon_ids: list[int] = Field(description="the coupons it issued")
    points_entry_id: int | None = Field(description="the ledger entry of the points it gave")
    detail: dict[str, Any] | None = Field(
        description="why it was skipped, or what was revoked: coupons_voided, coupons_kept "
        "(with their state), points_reversed, points_kept (the member no longer held them), "
        "tag_kept, refund_id"
    )
    revoked_at: datetime | None


class FiringsOut(BaseModel):
    total: int = Field(description="firings matching the filters, all pages")
    items: list[FiringOut]
    next_before_id: int | None = Field(description="pass as before_id for the next page")


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
