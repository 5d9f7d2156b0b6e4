"""The outbox (发件箱): events written in the same transaction as the change they
describe, so an event exists exactly when its change committed. The worker
(`service/events/worker.py`) hands each one to the handlers registered for its
type (`service/events/handlers.py`) and to the webhook subscriptions.

The event types and the event as handlers see it live here, with the table they
are written to, so that writers (every context) and readers (events) share them
without importing each other."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert

from loyalpos.db.engine import write_many
from loyalpos.db.tables import inserted_id, outbox


class EventType(StrEnum):
    MEMBER_CREATED = "member.created"
    ORDER_PAID = "order.paid"
    ORDER_REFUNDED = "order.refunded"
    POINTS_CHANGED = "points.changed"
    COUPON_ISSUED = "coupon.issued"
    COUPON_REDEEMED = "coupon.redeemed"
    COUPON_VOIDED = "coupon.voided"
    TIER_CHANGED = "tier.changed"


Event = tuple[EventType, str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One outbox row as handlers see it. `body` is the exact JSON text that
    webhooks carry; `payload` is it parsed."""

    id: int
    brand_id: int
    event_type: str
    subject: str
    payload: dict[str, Any]
    body: str
    created_at: datetime


def _row(brand_id: int, event: Event, now: datetime) -> dict[str, Any]:
    """An outbox row; the payload repeats type, subject and time so it stands alone."""
    kind, subject, payload = event
    body = {"type": kind.value, "subject": subject, "at": now.isoformat(), **payload}
    return {
        "brand_id": brand_id,
        "event_type": kind.value,
        "subject": subject,
        "payload": json.dumps(body, ensure_ascii=False, sort_keys=True),
        "created_at": now,
    }


def emit(
    conn: Connection,
    brand_id: int,
    event_type: EventType,
    subject: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    """Append one event; `subject` is what it is about (e.g. "order:42")."""
    row = _row(brand_id, (event_type, subject, payload), now)
    return inserted_id(conn.execute(insert(outbox).values(**row)))


# `inline`: no RETURNING of the new id even for one row, so that it can run
# where results are not read (db.engine.deferred).
_INSERT_MANY = insert(outbox).inline()


def emit_many(conn: Connection, brand_id: int, events: list[Event], now: datetime) -> None:
    """Append several events in one statement (a booking announces 2-5 at once);
    it reads no result, so it may run in `db.engine.deferred`."""
    write_many(conn, _INSERT_MANY, [_row(brand_id, e, now) for e in events])
