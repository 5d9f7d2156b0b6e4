"""Helpers shared by the ledger tests."""

from __future__ import annotations

from datetime import UTC, datetime

from loyalpos.db import ledger_repo
from loyalpos.domain.expiry import ExpiryPolicy
from loyalpos.service.base import brands
from loyalpos.service.base.brands import Brand
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members
from loyalpos.service.loyalty.points import Source


def at(day: str, hour: int = 12) -> datetime:
    """Noon (or `hour`) local Shanghai time on `day`, as an aware UTC datetime."""
    y, m, d = (int(x) for x in day.split("-"))
    return datetime(y, m, d, hour - 8 if hour >= 8 else hour, tzinfo=UTC)


def new_brand(ctx: Context, policy: ExpiryPolicy | None = None, **kwargs: object) -> Brand:
    return brands.create_brand(ctx, "b", "Brand", policy=policy, **kwargs)  # type: ignore[arg-type]


def new_member(ctx: Context, brand: Brand, phone: str = "13800138000") -> int:
    return members.register(ctx, brand.id, phone=phone, name="会员").id


def order(ref: str) -> Source:
    return Source("order", ref, f"order {ref}")


def invariant(ctx: Context, member_id: int) -> int:
    """Assert balance = sum of entries = sum of lots; return it."""
    with ctx.transaction() as conn:
        cached, entries, lots = ledger_repo.sums(conn, member_id)
        expired_entries, expired_lots = ledger_repo.expired_sums(conn, member_id)
    assert cached == entries == lots, (cached, entries, lots)
    assert expired_entries == expired_lots, (expired_entries, expired_lots)
    return cached
