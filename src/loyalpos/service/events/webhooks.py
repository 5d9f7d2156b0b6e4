"""Webhook subscriptions (订阅) and their deliveries: subscribe, list, deactivate,
the dead-letter list and replay. The worker (`service/events/worker.py`) creates and
sends the deliveries; signing and the retry schedule are in `domain/webhooks.py`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from loyalpos.db.tables import inserted_id, outbox, webhook_deliveries, webhook_subscriptions
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.webhooks import is_address, public_address
from loyalpos.service.base.brands import load_brand
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType

ALL_EVENTS = "*"
MAX_URL_LENGTH = 500
MAX_LIST = 500
DEACTIVATED_ERROR = "subscription deactivated"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    brand_id: int
    url: str
    event_types: tuple[str, ...]
    active: bool
    created_at: datetime
    # Events up to this outbox id were there before the subscription (see `subscribe`).
    after_event_id: int = 0

    def matches(self, event_type: str, event_id: int) -> bool:
        """Whether the worker makes a delivery of this event for the subscription:
        active, of a wanted type, and newer than the subscription."""
        return (
            self.active
            and event_id > self.after_event_id
            and (ALL_EVENTS in self.event_types or event_type in self.event_types)
        )


@dataclass(frozen=True, slots=True)
class NewSubscription:
    subscription: Subscription
    secret: str  # shown once, when the subscription is made


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    brand_id: int
    subscription_id: int
    outbox_id: int
    event_type: str
    subject: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def subscription_from_row(row: Any) -> Subscription:
    return Subscription(
        row.id,
        row.brand_id,
        row.url,
        tuple(json.loads(row.event_types)),
        bool(row.active),
        row.created_at,
        int(row.after_event_id),
    )


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host, no credentials, no whitespace."""
    url = url.strip()
    problem: str | None = None
    if not url or len(url) > MAX_URL_LENGTH:
        problem = f"must be 1-{MAX_URL_LENGTH} characters"
    elif any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        problem = "must not contain spaces or control characters"
    else:
        try:
            parts = urlsplit(url)
            port = parts.port  # raises on a port that is not a number 0-65535
        except ValueError:
            parts, port = None, None
            problem = "is not a valid URL"
        if parts is not None:
            if parts.scheme not in {"http", "https"}:
                problem = "must start with http:// or https://"
            elif not parts.hostname:
                problem = "needs a host"
            elif parts.username is not None or parts.password is not None:
                problem = "must not carry a user name or password"
            elif port == 0:
                problem = "has port 0"
    if problem is not None:
        raise InvalidInput(
            f"回调地址无效 (webhook URL {problem})", code="invalid_webhook_url", field="url"
        )
    return url


PRIVATE_NETWORK_HINT = (
    "an on-premise installation can allow private addresses with "
    "LOYALPOS_WEBHOOK_PRIVATE_NETWORK=true"
)


def check_public_host(url: str) -> None:
    """Refuse at once a URL whose host is a non-public address or `localhost`; a
    host name is resolved, and checked again, at each delivery (worker.send)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    local_name = host == "localhost" or host.endswith(".localhost")
    if local_name or (is_address(host) and not public_address(host)):
        raise InvalidInput(
            f"回调地址不能指向内网或本机 (webhook URL must point to a public address; "
            f"{PRIVATE_NETWORK_HINT})",
            code="webhook_url_not_public",
            field="url",
        )


def check_event_types(event_types: Iterable[str]) -> tuple[str, ...]:
    """Known event types (deduplicated, sorted), or ("*",) for all of them."""
    given = list(event_types)
    known = {e.value for e in EventType}
    unknown = sorted({e for e in given if e != ALL_EVENTS and e not in known})
    if not given or unknown:
        raise InvalidInput(
            '事件类型无效 (event_types must list known event types, or "*" for all)',
            code="invalid_event_types",
            unknown=unknown,
            known=sorted(known),
        )
    if ALL_EVENTS in given:
        return (ALL_EVENTS,)
    return tuple(sorted(set(given)))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def subscribe(
    ctx: Context,
    brand_id: int,
    url: str,
    event_types: Iterable[str],
    *,
    now: datetime | None = None,
) -> NewSubscription:
    """Subscribe `url` to `event_types`; the signing secret is returned only here.

    The subscription receives the events that come after it, not the backlog:
    the worker matches events to subscriptions when it processes the outbox,
    which may be long after the event (a worker that was down, thousands queued),
    so the time of matching cannot decide. Instead the subscription records the
    highest outbox id visible now (`after_event_id`) and matches only higher
    ids: whether an event is delivered is then fixed the moment the subscription
    exists, whenever and however often the worker runs.

    Ids come from one sequence, so every event written after this commit has a
    higher id and is delivered, including one whose booking was in flight now
    and commits a moment later. The one event that can fall the other way, on
    PostgreSQL, is a booking in flight now that drew its id *before* a booking
    that has already committed (two tills in the same milliseconds): it counts
    as before the subscription. On SQLite writers are serialised, so the mark is
    exact. An HQ operator who wants older events asks for them (`backfill`)."""
    at = ctx.now(now)
    clean_url = check_url(url)
    if not ctx.settings.webhook_private_network:
        check_public_host(clean_url)
    types = check_event_types(event_types)
    secret = new_secret()

    def run(conn: Connection) -> NewSubscription:
        load_brand(conn, brand_id)
        mark = conn.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one()
        sub_id = inserted_id(
            conn.execute(
                insert(webhook_subscriptions).values(
                    brand_id=brand_id,
                    url=clean_url,
                    event_types=json.dumps(list(types)),
                    secret=secret,
                    active=True,
                    created_at=at,
                    after_event_id=int(mark),
                )
            )
        )
        return NewSubscription(_load_subscription(conn, brand_id, sub_id), secret)

    return ctx.run(run)


def _load_subscription(conn: Connection, brand_id: int, sub_id: int) -> Subscription:
    row = conn.execute(
        select(webhook_subscriptions).where(
            webhook_subscriptions.c.id == sub_id, webhook_subscriptions.c.brand_id == brand_id
        )
    ).first()
    if row is None:
        raise NotFound(
            "订阅不存在 (webhook subscription not found)",
            code="webhook_not_found",
            id=sub_id,
        )
    return subscription_from_row(row)


def get_subscription(ctx: Context, brand_id: int, sub_id: int) -> Subscription:
    with ctx.transaction(read_only=True) as conn:
        return _load_subscription(conn, brand_id, sub_id)


def list_subscriptions(
    ctx: Context, brand_id: int, *, include_inactive: bool = True
) -> list[Subscription]:
    query = select(webhook_subscriptions).where(webhook_subscriptions.c.brand_id == brand_id)
    if not include_inactive:
        query = query.where(webhook_subscriptions.c.active.is_(True))
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(query.order_by(webhook_subscriptions.c.id))
        return [subscription_from_row(r) for r in rows]


def deactivate(
    ctx: Context, brand_id: int, sub_id: int, *, now: datetime | None = None
) -> Subscription:
    """Stop a subscription (idempotent). Its pending deliveries become dead letters
    with the reason, so nothing is sent to it any more and nothing is lost."""
    at = ctx.now(now)

    def run(conn: Connection) -> Subscription:
        sub = _load_subscription(conn, brand_id, sub_id)
        if sub.active:
            conn.execute(
                update(webhook_subscriptions)
                .where(webhook_subscriptions.c.id == sub_id)
                .values(active=False)
            )
            conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.subscription_id == sub_id,
                    webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
                )
                .values(
                    status=DeliveryStatus.DEAD.value,
                    last_error=DEACTIVATED_ERROR,
                    next_attempt_at=at,
                )
            )
        return _load_subscription(conn, brand_id, sub_id)

    return ctx.run(run)


def _delivery_query() -> Any:
    return select(
        webhook_deliveries,
        outbox.c.event_type,
        outbox.c.subject,
    ).join(outbox, outbox.c.id == webhook_deliveries.c.outbox_id)


def delivery_from_row(row: Any) -> Delivery:
    return Delivery(
        row.id,
        row.brand_id,
        row.subscription_id,
        row.outbox_id,
        row.event_type,
        row.subject,
        DeliveryStatus(row.status),
        row.attempts,
        row.next_attempt_at,
        row.last_status,
        row.last_error,
        row.created_at,
        row.delivered_at,
    )


def check_status(status: str | None) -> DeliveryStatus | None:
    if status is None:
        return None
    try:
        return DeliveryStatus(status)
    except ValueError:
        raise InvalidInput(
            "投递状态无效 (status must be pending, delivered or dead)",
            code="invalid_delivery_status",
            status=status,
        ) from None


def list_deliveries(
    ctx: Context,
    brand_id: int,
    *,
    status: str | None = None,
    subscription_id: int | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Delivery]:
    """Deliveries by id, oldest first; `status="dead"` is the dead-letter list.
    Page with `after_id` = the last id of the previous page. A `subscription_id`
    of another brand (or of none) is NotFound, as everywhere."""
    wanted = check_status(status)
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be 1-{MAX_LIST}", code="invalid_limit", limit=limit)
    query = _delivery_query().where(
        webhook_deliveries.c.brand_id == brand_id, webhook_deliveries.c.id > after_id
    )
    if wanted is not None:
        query = query.where(webhook_deliveries.c.status == wanted.value)
    if subscription_id is not None:
        query = query.where(webhook_deliveries.c.subscription_id == subscription_id)
    with ctx.transaction(read_only=True) as conn:
        if subscription_id is not None:
            _load_subscription(conn, brand_id, subscription_id)
        rows = conn.execute(query.order_by(webhook_deliveries.c.id).limit(limit))
        return [delivery_from_row(r) for r in rows]


def _load_delivery(conn: Connection, brand_id: int, delivery_id: int) -> Delivery:
    row = conn.execute(
        _delivery_query().where(
            webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.brand_id == brand_id
        )
    ).first()
    if row is None:
        raise NotFound(
            "投递记录不存在 (webhook delivery not found)",
            code="delivery_not_found",
            id=delivery_id,
        )
    return delivery_from_row(row)


def get_delivery(ctx: Context, brand_id: int, delivery_id: int) -> Delivery:
    with ctx.transaction(read_only=True) as conn:
        return _load_delivery(conn, brand_id, delivery_id)


def insert_delivery_ignoring_duplicates(dialect: str) -> Any:
    """INSERT into webhook_deliveries that skips a (subscription, event) pair
    already there; with RETURNING it counts the rows really inserted."""
    keys = [webhook_deliveries.c.subscription_id, webhook_deliveries.c.outbox_id]
    if dialect == "postgresql":
        return postgresql.insert(webhook_deliveries).on_conflict_do_nothing(index_elements=keys)
    # SQLite 3.35+ for RETURNING, which counts the rows really inserted.
    return sqlite.insert(webhook_deliveries).on_conflict_do_nothing(index_elements=keys)


MAX_BACKFILL = 1000


@dataclass(frozen=True, slots=True)
class Backfill:
    subscription_id: int
    created: int  # deliveries made now (events already delivered to it are skipped)
    last_event_id: int | None  # the last event looked at; None when there was none
    more: bool  # the page was full: call again with after_event_id=last_event_id


def backfill(
    ctx: Context,
    brand_id: int,
    sub_id: int,
    *,
    after_event_id: int = 0,
    limit: int = MAX_BACKFILL,
    now: datetime | None = None,
) -> Backfill:
    """HQ asks for events from before a subscription (补发历史事件): one pending
    delivery, due now, per event of the brand of a type it wants with an id in
    (`after_event_id`, the subscription's own `after_event_id`], oldest first, at
    most `limit` per call (page on with `last_event_id`). Events it already has a
    delivery of are skipped, so a repeated call sends nothing twice. Later events
    need no backfill: the worker delivers them."""
    at = ctx.now(now)
    if not 1 <= limit <= MAX_BACKFILL:
        raise InvalidInput(f"limit must be 1-{MAX_BACKFILL}", code="invalid_limit", limit=limit)
    if after_event_id < 0:
        raise InvalidInput(
            "after_event_id must be 0 or more",
            code="invalid_after_event_id",
            field="after_event_id",
        )

    def run(conn: Connection) -> Backfill:
        sub = _load_subscription(conn, brand_id, sub_id)
        if not sub.active:
            raise Conflict(
                "订阅已停用，无法补发 (the subscription is deactivated; nothing to send to)",
                code="webhook_inactive",
                subscription_id=sub.id,
            )
        query = select(outbox.c.id).where(
            outbox.c.brand_id == brand_id,
            outbox.c.id > after_event_id,
            outbox.c.id <= sub.after_event_id,
        )
        if ALL_EVENTS not in sub.event_types:
            query = query.where(outbox.c.event_type.in_(sub.event_types))
        ids = list(conn.execute(query.order_by(outbox.c.id).limit(limit)).scalars())
        created = 0
        if ids:
            created = len(
                conn.execute(
                    insert_delivery_ignoring_duplicates(ctx.dialect).returning(
                        webhook_deliveries.c.id
                    ),
                    [
                        {
                            "brand_id": brand_id,
                            "subscription_id": sub.id,
                            "outbox_id": event_id,
                            "status": DeliveryStatus.PENDING.value,
                            "attempts": 0,
                            "next_attempt_at": at,
                            "created_at": at,
                        }
                        for event_id in ids
                    ],
                ).all()
            )
        return Backfill(sub.id, created, ids[-1] if ids else None, len(ids) == limit)

    return ctx.run(run)


def replay(
    ctx: Context, brand_id: int, delivery_id: int, *, now: datetime | None = None
) -> Delivery:
    """Send a dead (or already delivered) delivery again: pending, due now, with
    a fresh set of attempts. The receiver sees the same event id again."""
    at = ctx.now(now)

    def run(conn: Connection) -> Delivery:
        delivery = _load_delivery(conn, brand_id, delivery_id)
        if delivery.status is DeliveryStatus.PENDING:
            raise Conflict(
                "该投递已在等待发送 (this delivery is already pending)",
                code="delivery_pending",
                id=delivery_id,
                next_attempt_at=delivery.next_attempt_at,
            )
        sub = _load_subscription(conn, brand_id, delivery.subscription_id)
        if not sub.active:
            raise Conflict(
                "订阅已停用，无法重发 (the subscription is deactivated; nothing to send to)",
                code="webhook_inactive",
                subscription_id=sub.id,
            )
        # Guarded by the status read above, so two replays at once reset it once.
        changed = conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.id == delivery_id,
                webhook_deliveries.c.status == delivery.status.value,
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=at,
                delivered_at=None,
            )
        ).rowcount
        if changed != 1:
            raise Conflict(
                "该投递刚被修改，请重试 (the delivery changed meanwhile; try again)",
                code="delivery_changed",
                id=delivery_id,
            )
        return _load_delivery(conn, brand_id, delivery_id)

    return ctx.run(run)
