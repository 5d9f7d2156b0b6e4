"""The background worker: outbox → event handlers and webhook deliveries → HTTP.

Two steps, each safe to run in several processes at once:

`dispatch_outbox` claims unprocessed outbox rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite's single writer serialises), and for each one, inside one
savepoint: creates a delivery per matching active subscription (insert ignoring
duplicates), runs the handlers registered for its type
(`handlers.py`), and marks the row processed. So an
event's deliveries and handler effects commit together with the mark, once.

`deliver_due` claims due pending deliveries by moving `next_attempt_at` a lease
ahead and counting the attempt (short transaction, SKIP LOCKED), POSTs them
with no transaction open, then records each outcome guarded by the attempt
number, so a worker whose lease ran out cannot overwrite a newer attempt.
Delivery is at least once: a worker that dies mid-request leaves the delivery
to be sent again when the lease ends; receivers dedupe on the event id.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import DBAPIError

from loyalpos import __version__
from loyalpos.db.outage import outage
from loyalpos.db.tables import outbox, webhook_deliveries, webhook_subscriptions
from loyalpos.domain.webhooks import (
    DELIVERY_ID_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    RetryPolicy,
    is_success,
    public_address,
    sign,
)
from loyalpos.service.base.context import RETRYABLE_SQLSTATES, Context, RetryTransaction
from loyalpos.service.base.outbox import OutboxEvent
from loyalpos.service.events.handlers import REGISTRY, Handler, Handlers
from loyalpos.service.events.webhooks import (
    PRIVATE_NETWORK_HINT,
    DeliveryStatus,
    insert_delivery_ignoring_duplicates,
    subscription_from_row,
)

log = logging.getLogger(__name__)

USER_AGENT = f"loyalpos-webhooks/{__version__}"
DEFAULT_TIMEOUT = 5.0
DEFAULT_LEASE_SECONDS = 60.0
MAX_ERROR_CHARS = 500


# Deprecated (one release): hooks run for every event, after the handlers
# registered by type in `service/events/handlers.py`. Register with
# `handlers.on(EventType...)` instead.
HANDLERS: list[Handler] = []


@dataclass(frozen=True, slots=True)
class DispatchResult:
    events: int  # processed (marked) this pass
    deliveries: int  # delivery rows created
    failed: tuple[int, ...] = ()  # event ids whose handlers raised; left unprocessed


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryTransaction):
        return True
    return isinstance(exc, DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


def _hooks(handlers: Handlers | Sequence[Handler] | None) -> Callable[[str], Sequence[Handler]]:
    if handlers is None:
        return lambda event_type: (*REGISTRY.for_type(event_type), *HANDLERS)
    if isinstance(handlers, Handlers):
        return handlers.for_type
    every = tuple(handlers)
    return lambda event_type: every


def dispatch_outbox(
    ctx: Context,
    now: datetime | None = None,
    batch: int = 100,
    *,
    handlers: Handlers | Sequence[Handler] | None = None,
) -> DispatchResult:
    """Turn up to `batch` unprocessed events into deliveries and handler effects.
    `handlers`: the registry by event type (default: the process's one), or a
    list of hooks to run for every event (tests, tools)."""
    at = ctx.now(now)
    hooks_for = _hooks(handlers)

    def run(conn: Connection) -> DispatchResult:
        rows = conn.execute(
            select(outbox)
            .where(outbox.c.processed_at.is_(None))
            .order_by(outbox.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return DispatchResult(0, 0)
        subs = [
            subscription_from_row(s)
            for s in conn.execute(
                select(webhook_subscriptions)
                .where(
                    webhook_subscriptions.c.brand_id.in_({r.brand_id for r in rows}),
                    webhook_subscriptions.c.active.is_(True),
                )
                .order_by(webhook_subscriptions.c.id)
            )
        ]
        insert_delivery = insert_delivery_ignoring_duplicates(ctx.dialect)
        processed = created = 0
        failed: list[int] = []
        for row in rows:
            try:
                with conn.begin_nested():
                    made = 0
                    for sub in subs:
                        if sub.brand_id == row.brand_id and sub.matches(row.event_type, row.id):
                            made += len(
                                conn.execute(
                                    insert_delivery.values(
                                        brand_id=row.brand_id,
                                        subscription_id=sub.id,
                                        outbox_id=row.id,
                                        status=DeliveryStatus.PENDING.value,
                                        attempts=0,
                                        next_attempt_at=at,
                                        created_at=at,
                                    ).returning(webhook_deliveries.c.id)
                                ).all()
                            )
                    hooks = hooks_for(row.event_type)
                    if hooks:
                        event = OutboxEvent(
                            row.id,
                            row.brand_id,
                            row.event_type,
                            row.subject,
                            json.loads(row.payload),
                            row.payload,
                            row.created_at,
                        )
                        for hook in hooks:
                            hook(ctx, conn, event, at)
                    conn.execute(
                        update(outbox).where(outbox.c.id == row.id).values(processed_at=at)
                    )
            except Exception as exc:
                if _retryable(exc):
                    raise
                log.exception("outbox event %s (%s): handler failed", row.id, row.event_type)
                failed.append(row.id)
                continue
            processed += 1
            created += made
        return DispatchResult(processed, created, tuple(failed))

    return ctx.run(run)


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this worker holds until `lease_until`; `attempt` is its number."""

    delivery_id: int
    brand_id: int
    subscription_id: int
    outbox_id: int
    event_type: str
    url: str
    secret: str
    body: str
    attempt: int
    lease_until: datetime


def claim_due(ctx: Context, now: datetime, batch: int, lease: timedelta) -> list[Claim]:
    """Take up to `batch` due pending deliveries: count the attempt and push
    `next_attempt_at` to the end of the lease, in one short transaction."""
    d, s = webhook_deliveries, webhook_subscriptions
    until = now + lease

    def run(conn: Connection) -> list[Claim]:
        ids = list(
            conn.execute(
                select(d.c.id)
                .join(s, s.c.id == d.c.subscription_id)
                .where(
                    d.c.status == DeliveryStatus.PENDING.value,
                    d.c.next_attempt_at <= now,
                    s.c.active.is_(True),
                )
                .order_by(d.c.next_attempt_at, d.c.id)
                .limit(batch)
                .with_for_update(skip_locked=True, of=d)
            ).scalars()
        )
        if not ids:
            return []
        conn.execute(
            update(d)
            .where(d.c.id.in_(ids))
            .values(attempts=d.c.attempts + 1, next_attempt_at=until)
        )
        rows = conn.execute(
            select(
                d.c.id,
                d.c.brand_id,
                d.c.subscription_id,
                d.c.outbox_id,
                d.c.attempts,
                outbox.c.event_type,
                outbox.c.payload,
                s.c.url,
                s.c.secret,
            )
            .join(s, s.c.id == d.c.subscription_id)
            .join(outbox, outbox.c.id == d.c.outbox_id)
            .where(d.c.id.in_(ids))
            .order_by(d.c.id)
        )
        return [
            Claim(
                r.id,
                r.brand_id,
                r.subscription_id,
                r.outbox_id,
                r.event_type,
                r.url,
                r.secret,
                r.payload,
                r.attempts,
                until,
            )
            for r in rows
        ]

    return ctx.run(run)


def signed_request(claim: Claim, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt."""
    body = claim.body.encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(claim.secret, body, int(now.timestamp())),
        EVENT_ID_HEADER: str(claim.outbox_id),
        EVENT_TYPE_HEADER: claim.event_type,
        DELIVERY_ID_HEADER: str(claim.delivery_id),
    }
    return body, headers


@dataclass(frozen=True, slots=True)
class Attempt:
    status: int | None  # the HTTP status, None when no answer came
    error: str | None  # None when delivered


class NotPublic(Exception):
    """The delivery's host resolves to no public address (see `public_address`)."""


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (a seam for tests)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def pinned(url: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """Where to send `url` when only public addresses are allowed: the URL with its
    host replaced by a public address the name resolves to (the connection goes
    to the address that was checked, so a name that resolves differently a moment
    later, DNS rebinding, cannot redirect it), the Host header, and the TLS server
    name for https (certificates are checked against the name, not the address)."""
    target = httpx.URL(url)
    host = target.host
    port = target.port or (443 if target.scheme == "https" else 80)
    addresses = resolve(host, port)
    public = [a for a in addresses if public_address(a)]
    if not public:
        raise NotPublic(
            f"{host} resolves to {', '.join(sorted(set(addresses))) or 'nothing'}, not a "
            f"public address; {PRIVATE_NETWORK_HINT}"
        )
    extensions: dict[str, Any] = {"sni_hostname": host} if target.scheme == "https" else {}
    headers = {"Host": target.netloc.decode("ascii")}
    return target.copy_with(host=public[0]), headers, extensions


def send(
    client: httpx.Client,
    claim: Claim,
    now: datetime,
    timeout: float,
    *,
    private_network: bool = False,
) -> Attempt:
    """POST one delivery. Never raises: every failure is an `Attempt` with an error.
    Unless `private_network`, only to a public address (`pinned`)."""
    body, headers = signed_request(claim, now)
    try:
        url: httpx.URL | str = claim.url
        extensions: dict[str, Any] = {}
        if not private_network:
            url, host, extensions = pinned(claim.url)
            headers.update(host)
        with client.stream(
            "POST",
            url,
            content=body,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            extensions=extensions,
        ) as response:
            if is_success(response.status_code):
                return Attempt(response.status_code, None)
            snippet = b""
            for chunk in response.iter_bytes():
                snippet += chunk
                if len(snippet) >= 200:
                    break
            text = snippet[:200].decode("utf-8", "replace").strip()
            return Attempt(response.status_code, f"HTTP {response.status_code}: {text}")
    except Exception as exc:  # connection refused, timeout, bad URL ...: a failed attempt
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    status: DeliveryStatus | None  # None: the lease was lost, nothing recorded
    attempt: int
    next_attempt_at: datetime | None = None


def record(
    ctx: Context, claim: Claim, attempt: Attempt, now: datetime, policy: RetryPolicy
) -> Outcome:
    """Store the outcome of `claim`'s attempt, unless another worker has re-claimed it."""
    d = webhook_deliveries
    values: dict[str, Any] = {
        "last_status": attempt.status,
        "last_error": attempt.error[:MAX_ERROR_CHARS] if attempt.error else None,
    }
    due: datetime | None = None
    if attempt.error is None:
        status = DeliveryStatus.DELIVERED
        values.update(status=status.value, delivered_at=now)
    elif policy.exhausted(claim.attempt):
        status = DeliveryStatus.DEAD
    else:
        status = DeliveryStatus.PENDING
        due = now + timedelta(seconds=policy.backoff_seconds(claim.attempt))
        values.update(next_attempt_at=due)
    values["status"] = status.value

    def run(conn: Connection) -> int:
        return conn.execute(
            update(d)
            .where(
                d.c.id == claim.delivery_id,
                d.c.status == DeliveryStatus.PENDING.value,
                d.c.attempts == claim.attempt,
            )
            .values(**values)
        ).rowcount

    if ctx.run(run) != 1:
        log.warning(
            "webhook delivery %s: attempt %s finished after its lease; outcome not recorded",
            claim.delivery_id,
            claim.attempt,
        )
        return Outcome(claim.delivery_id, None, claim.attempt)
    if status is DeliveryStatus.DEAD:
        log.warning(
            "webhook delivery %s dead after %s attempts: %s",
            claim.delivery_id,
            claim.attempt,
            attempt.error,
        )
    return Outcome(claim.delivery_id, status, claim.attempt, due)


@dataclass(frozen=True, slots=True)
class DeliverResult:
    claimed: int
    delivered: int
    retrying: int
    dead: int
    outcomes: tuple[Outcome, ...] = field(default=(), repr=False)


def lease_for(batch: int, concurrency: int, timeout: float, minimum: float) -> timedelta:
    """Long enough for the whole batch to be sent even if every request times out
    (connect, send and read each up to `timeout`), and never below `minimum`."""
    rounds = math.ceil(batch / max(1, concurrency))
    return timedelta(seconds=max(minimum, rounds * timeout * 3))


def deliver_due(
    ctx: Context,
    now: datetime | None,
    client: httpx.Client,
    batch: int = 50,
    *,
    policy: RetryPolicy | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    concurrency: int = 8,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> DeliverResult:
    """Claim due deliveries, POST them (no transaction open meanwhile), record outcomes."""
    at = ctx.now(now)
    rules = policy or RetryPolicy()
    claims = claim_due(ctx, at, batch, lease_for(batch, concurrency, timeout, lease_seconds))
    if not claims:
        return DeliverResult(0, 0, 0, 0)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(claims)))) as pool:
        private = ctx.settings.webhook_private_network
        futures = [
            (c, pool.submit(send, client, c, at, timeout, private_network=private)) for c in claims
        ]
        for claim, future in futures:
            outcomes.append(record(ctx, claim, future.result(), at, rules))
    counts = {s: sum(1 for o in outcomes if o.status is s) for s in DeliveryStatus}
    return DeliverResult(
        len(claims),
        counts[DeliveryStatus.DELIVERED],
        counts[DeliveryStatus.PENDING],
        counts[DeliveryStatus.DEAD],
        tuple(outcomes),
    )


@dataclass
class WorkerStats:
    passes: int = 0
    events: int = 0
    deliveries_created: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    errors: int = 0


def run_worker(
    ctx: Context,
    once: bool = False,
    poll_seconds: float = 1.0,
    *,
    client: httpx.Client | None = None,
    stop: threading.Event | None = None,
    policy: RetryPolicy | None = None,
    dispatch_batch: int = 100,
    deliver_batch: int = 50,
) -> WorkerStats:
    """Dispatch and deliver in a loop until `stop` is set. `once`: run passes
    until nothing more is ready now, then return (for cron and tests)."""
    stop = stop or threading.Event()
    own_client = client is None
    http = client or httpx.Client(
        timeout=DEFAULT_TIMEOUT, follow_redirects=False, headers={"User-Agent": USER_AGENT}
    )
    stats = WorkerStats()
    try:
        while not stop.is_set():
            busy = False
            try:
                dispatched = dispatch_outbox(ctx, None, dispatch_batch)
                delivered = deliver_due(ctx, None, http, deliver_batch, policy=policy)
            except Exception as exc:
                if once:
                    raise
                stats.errors += 1
                down = outage(exc)
                if down is not None:
                    # A restart or failover: one line a pass, not a traceback a second.
                    log.warning(
                        "worker pass: database unavailable (%s); trying again in %ss",
                        down.reason,
                        poll_seconds,
                    )
                else:
                    log.exception("worker pass failed; trying again in %ss", poll_seconds)
            else:
                stats.passes += 1
                stats.events += dispatched.events
                stats.deliveries_created += dispatched.deliveries
                stats.delivered += delivered.delivered
                stats.retrying += delivered.retrying
                stats.dead += delivered.dead
                if dispatched.events or delivered.claimed:
                    log.info(
                        "worker: %s events, %s deliveries created, %s delivered, "
                        "%s to retry, %s dead",
                        dispatched.events,
                        dispatched.deliveries,
                        delivered.delivered,
                        delivered.retrying,
                        delivered.dead,
                    )
                # A full batch means more is probably waiting: go again at once.
                busy = dispatched.events >= dispatch_batch or delivered.claimed >= deliver_batch
            if once and not busy:
                break
            if not busy:
                stop.wait(poll_seconds)
    finally:
        if own_client:
            http.close()
    return stats
