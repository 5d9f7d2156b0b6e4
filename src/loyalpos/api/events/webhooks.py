"""Webhooks (回调): HQ subscribes URLs to events, watches deliveries, replays
dead letters. Signing and retries: docs/webhooks.md."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from loyalpos.api.deps import CtxDep, HqDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.events.schemas import (
    BackfillPublic,
    BackfillRequest,
    DeliveriesPublic,
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhooksPublic,
)
from loyalpos.api.fields import MAX_ID
from loyalpos.service.events import webhooks
from loyalpos.service.events.webhooks import Delivery, Subscription

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["webhooks"])

# Access: every route needs an HQ key and sees only its own brand's webhooks.

WebhookId = Annotated[int, Path(gt=0, le=MAX_ID)]
DeliveryId = Annotated[int, Path(gt=0, le=MAX_ID)]


def webhook_public(s: Subscription) -> WebhookPublic:
    return WebhookPublic(
        id=s.id,
        url=s.url,
        event_types=list(s.event_types),
        active=s.active,
        created_at=s.created_at,
        after_event_id=s.after_event_id,
    )


def delivery_public(d: Delivery) -> DeliveryPublic:
    return DeliveryPublic(
        id=d.id,
        subscription_id=d.subscription_id,
        event_id=d.outbox_id,
        event_type=d.event_type,
        subject=d.subject,
        status=d.status.value,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status=d.last_status,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
    )


@router.post(
    "/webhooks",
    responses=responses(400, 403, 413, 422),
    response_model=WebhookCreated,
    status_code=201,
)
def create_webhook(body: WebhookCreate, ctx: CtxDep, who: HqDep) -> WebhookCreated:
    """Subscribe an http(s) URL to event types. The answer holds the signing
    secret, this once."""
    new = webhooks.subscribe(ctx, who.brand_id, body.url, body.event_types)
    return WebhookCreated(**webhook_public(new.subscription).model_dump(), secret=new.secret)


@router.get("/webhooks", responses=responses(403), response_model=WebhooksPublic)
def list_webhooks(ctx: CtxDep, who: HqDep) -> WebhooksPublic:
    """The brand's subscriptions, deactivated ones included, without secrets."""
    found = [webhook_public(s) for s in webhooks.list_subscriptions(ctx, who.brand_id)]
    return WebhooksPublic(data=found, count=len(found))


@router.get(
    "/webhooks/deliveries", responses=responses(403, 404, 422), response_model=DeliveriesPublic
)
def list_deliveries(
    ctx: CtxDep,
    who: HqDep,
    status: Annotated[
        Literal["pending", "delivered", "dead"] | None,
        Query(description="`dead` lists the dead letters"),
    ] = None,
    subscription_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID, description="paging: last id seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=webhooks.MAX_LIST)] = 100,
) -> DeliveriesPublic:
    """Deliveries oldest first, by status and subscription."""
    found = webhooks.list_deliveries(
        ctx,
        who.brand_id,
        status=status,
        subscription_id=subscription_id,
        after_id=after_id,
        limit=limit,
    )
    data = [delivery_public(d) for d in found]
    return DeliveriesPublic(data=data, count=len(data))


@router.post(
    "/webhooks/deliveries/{delivery_id}/replay",
    responses=responses(403, 404, 409, 422),
    response_model=DeliveryPublic,
)
def replay_delivery(delivery_id: DeliveryId, ctx: CtxDep, who: HqDep) -> DeliveryPublic:
    """Send a dead (or delivered) delivery again: pending, due now, attempts
    reset. 409 when it is still pending or its subscription is deactivated."""
    return delivery_public(webhooks.replay(ctx, who.brand_id, delivery_id))


@router.post(
    "/webhooks/{webhook_id}/deactivate",
    responses=responses(403, 404, 422),
    response_model=WebhookPublic,
)
def deactivate_webhook(webhook_id: WebhookId, ctx: CtxDep, who: HqDep) -> WebhookPublic:
    """Stop a subscription (repeating it is harmless); its pending deliveries
    become dead letters."""
    return webhook_public(webhooks.deactivate(ctx, who.brand_id, webhook_id))


@router.post(
    "/webhooks/{webhook_id}/backfill",
    response_model=BackfillPublic,
    responses=responses(
        400,
        403,
        (404, "webhook_not_found (not a subscription of this brand)"),
        (409, "webhook_inactive (the subscription is deactivated)"),
        413,
        422,
    ),
)
def backfill_webhook(
    webhook_id: WebhookId, body: BackfillRequest, ctx: CtxDep, who: HqDep
) -> BackfillPublic:
    """Send a subscription the events from before it was made (it gets only
    later ones by itself): events of its types with an id above
    `after_event_id`, up to its own `after_event_id`, oldest first, `limit` per
    call. 409 when it is deactivated."""
    done = webhooks.backfill(
        ctx, who.brand_id, webhook_id, after_event_id=body.after_event_id, limit=body.limit
    )
    return BackfillPublic(
        subscription_id=done.subscription_id,
        created=done.created,
        last_event_id=done.last_event_id,
        more=done.more,
    )
