"""A member's orders, newest first: what the member 360 page lists (order number,
store, time, payable, status), each to be opened as its receipt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from loyalpos.db.tables import members, orders, stores
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.service.base.context import Context


@dataclass(frozen=True, slots=True)
class MemberOrder:
    id: int
    order_no: str
    store_id: int
    store_code: str
    store_name: str
    ordered_at: datetime
    payable: int  # fen
    refunded: int  # fen
    points_earned: int
    points_redeemed: int
    status: str


def of_member(
    ctx: Context, brand_id: int, member_id: int, *, limit: int = 50, before_id: int | None = None
) -> list[MemberOrder]:
    """The member's orders newest first (ix_orders_member_time), at most `limit`
    (1 to 500), older than order `before_id` when paging."""
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500", field="limit")
    where = [orders.c.member_id == member_id, orders.c.brand_id == brand_id]
    if before_id is not None:
        where.append(orders.c.id < before_id)
    with ctx.transaction(read_only=True) as conn:
        known = conn.execute(
            select(members.c.id).where(members.c.id == member_id, members.c.brand_id == brand_id)
        ).first()
        if known is None:
            raise NotFound("未找到会员 (no member with this id)", code="member_not_found", key="id")
        rows = conn.execute(
            select(
                orders.c.id,
                orders.c.order_no,
                orders.c.store_id,
                stores.c.code,
                stores.c.name,
                orders.c.ordered_at,
                orders.c.payable,
                orders.c.refunded,
                orders.c.points_earned,
                orders.c.points_redeemed,
                orders.c.status,
            )
            .join(stores, stores.c.id == orders.c.store_id)
            .where(*where)
            .order_by(orders.c.ordered_at.desc(), orders.c.id.desc())
            .limit(limit)
        )
        return [
            MemberOrder(
                int(r.id),
                r.order_no,
                int(r.store_id),
                r.code,
                r.name,
                r.ordered_at,
                int(r.payable),
                int(r.refunded),
                int(r.points_earned),
                int(r.points_redeemed),
                r.status,
            )
            for r in rows
        ]
