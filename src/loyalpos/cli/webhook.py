"""`loyalpos webhook`: webhooks (回调): subscriptions, their deliveries, dead
letters, replay and backfill. A subscription's signing secret is printed once,
when it is made, and never listed."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from loyalpos.cli.common import BrandOpt, brand_id_by_code, print_json, service_context
from loyalpos.cli.errors import guarded

group = typer.Typer(
    help="Webhooks (回调): subscriptions, deliveries, dead letters, replay",
    no_args_is_help=True,
)


def subscription_json(s: Any) -> dict[str, Any]:
    """A subscription as printed, without its secret."""
    return {
        "id": s.id,
        "url": s.url,
        "event_types": list(s.event_types),
        "active": s.active,
        "created_at": s.created_at,
        "after_event_id": s.after_event_id,
    }


def delivery_json(d: Any) -> dict[str, Any]:
    """A delivery as printed: enough to see why it failed and when it is retried."""
    return {
        "id": d.id,
        "subscription_id": d.subscription_id,
        "event_id": d.outbox_id,
        "event_type": d.event_type,
        "subject": d.subject,
        "status": d.status.value,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
    }


@group.command("subscribe")
@guarded
def webhook_subscribe(
    brand: BrandOpt,
    url: str,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="event type, repeatable; default * (all)"),
    ] = None,
) -> None:
    """Subscribe URL to events; prints the signing secret (shown this once)."""
    from loyalpos.service.events import webhooks

    ctx = service_context()
    new = webhooks.subscribe(ctx, brand_id_by_code(ctx, brand), url, event or ["*"])
    print_json({**subscription_json(new.subscription), "secret": new.secret})
    typer.echo("store this secret now: it cannot be shown again", err=True)


@group.command("list")
@guarded
def webhook_list(brand: BrandOpt) -> None:
    """List a brand's webhook subscriptions (never their secrets)."""
    from loyalpos.service.events import webhooks

    ctx = service_context()
    found = webhooks.list_subscriptions(ctx, brand_id_by_code(ctx, brand))
    print_json([subscription_json(s) for s in found])


@group.command("deactivate")
@guarded
def webhook_deactivate(brand: BrandOpt, subscription_id: int) -> None:
    """Stop a subscription; its pending deliveries become dead letters."""
    from loyalpos.service.events import webhooks

    ctx = service_context()
    print_json(
        subscription_json(webhooks.deactivate(ctx, brand_id_by_code(ctx, brand), subscription_id))
    )


@group.command("deliveries")
@guarded
def webhook_deliveries(
    brand: BrandOpt,
    status: Annotated[
        str | None, typer.Option(help="pending, delivered or dead (the dead letters)")
    ] = None,
    after: Annotated[int, typer.Option(help="show ids after this one (paging)")] = 0,
    limit: int = 100,
) -> None:
    """List deliveries, oldest first; --status dead is the dead-letter list."""
    from loyalpos.service.events import webhooks

    ctx = service_context()
    found = webhooks.list_deliveries(
        ctx, brand_id_by_code(ctx, brand), status=status, after_id=after, limit=limit
    )
    print_json([delivery_json(d) for d in found])


@group.command("replay")
@guarded
def webhook_replay(brand: BrandOpt, delivery_id: int) -> None:
    """Send a dead or delivered delivery again (pending, due now, attempts reset)."""
    from loyalpos.service.events import webhooks

    ctx = service_context()
    print_json(delivery_json(webhooks.replay(ctx, brand_id_by_code(ctx, brand), delivery_id)))


@group.command("backfill")
@guarded
def webhook_backfill(
    brand: BrandOpt,
    subscription_id: int,
    after: Annotated[int, typer.Option(help="send events with an id above this one")] = 0,
    limit: int = 1000,
) -> None:
    """Send a subscription the events from before it was made, oldest first."""
    from loyalpos.service.events import webhooks

    ctx = service_context()
    done = webhooks.backfill(
        ctx, brand_id_by_code(ctx, brand), subscription_id, after_event_id=after, limit=limit
    )
    print_json(
        {
            "subscription_id": done.subscription_id,
            "created": done.created,
            "last_event_id": done.last_event_id,
            "more": done.more,
        }
    )
