"""The bodies of the campaign (firings, tags) and webhook (subscriptions,
deliveries, backfill) routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from loyalpos import integers as whole
from loyalpos.api.fields import MAX_ID, SINGLE_LINE
from loyalpos.api.models import Strict
from loyalpos.service.events import webhooks


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


EventName = Annotated[str, StringConstraints(min_length=1, max_length=40), SINGLE_LINE]


class WebhookCreate(Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=webhooks.MAX_URL_LENGTH)]
    event_types: Annotated[list[EventName], Field(min_length=1, max_length=20)] = Field(
        default_factory=lambda: ["*"],
        description='event types to receive, or ["*"] for all',
    )


class WebhookPublic(BaseModel):
    id: int
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime
    after_event_id: int = Field(
        description="the highest event id when it was made: it receives only later "
        "events (older ones on request: POST /v1/webhooks/{id}/backfill)"
    )


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="signing secret; shown this once, keep it safe")


class WebhooksPublic(BaseModel):
    data: list[WebhookPublic]
    count: int


class DeliveryPublic(BaseModel):
    id: int
    subscription_id: int
    event_id: int
    event_type: str
    subject: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class BackfillRequest(Strict):
    after_event_id: Annotated[int, whole.ident(ge=0, le=MAX_ID)] = Field(
        default=0, description="send events with a higher id (0: from the first)"
    )
    limit: Annotated[int, whole.count(ge=1, le=webhooks.MAX_BACKFILL)] = webhooks.MAX_BACKFILL


class BackfillPublic(BaseModel):
    subscription_id: int
    created: int = Field(description="deliveries made now (events it already had are skipped)")
    last_event_id: int | None = Field(description="the last event looked at")
    more: bool = Field(description="call again with after_event_id = last_event_id")


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
    count: int
