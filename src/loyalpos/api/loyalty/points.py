from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from loyalpos.api.deps import BrandDep, CtxDep, EntryId, HqBrandDep, MemberId
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.fields import MAX_ID, IsoDate, IsoDateTime
from loyalpos.api.loyalty.schemas import (
    BalancePublic,
    EntriesPublic,
    EntryPublic,
    ExpiryLine,
    ExpiryRunPublic,
    PointsAdjust,
    PointsBooking,
    Reversal,
)
from loyalpos.db.ledger_repo import EntryRow
from loyalpos.domain.times import check_instant
from loyalpos.service.loyalty import jobs, points
from loyalpos.service.loyalty.points import Source

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["points"])

# Access: reading a balance and its history is open to cashier keys; every
# booking (earn, spend, adjust, reverse) and the expiry job needs an HQ key. A
# till books points through checkout, which prices the order first; a raw
# booking would let one store mint or burn any member's points.


def entry_public(e: EntryRow) -> EntryPublic:
    return EntryPublic(
        id=e.id,
        member_id=e.member_id,
        store_id=e.store_id,
        kind=e.kind,
        points=e.points,
        lot_id=e.lot_id,
        reverses_entry_id=e.reverses_entry_id,
        source_type=e.source_type,
        source_ref=e.source_ref,
        description=e.description,
        operator=e.operator,
        reason=e.reason,
        created_at=e.created_at,
        points_rules=e.points_rules,
    )


@router.get(
    "/members/{member_id}/points", responses=responses(404, 422), response_model=BalancePublic
)
def get_balance(member_id: MemberId, ctx: CtxDep, brand: BrandDep) -> BalancePublic:
    """Balance (total, spendable, pending) and points by lapse date."""
    b = points.balance(ctx, brand.id, member_id)
    schedule = points.expiry_schedule(ctx, brand.id, member_id)
    return BalancePublic(
        member_id=member_id,
        total=b.total,
        available=b.available,
        pending=b.pending,
        expiring=[ExpiryLine(expires_on=d, points=n) for d, n in schedule],
    )


def _aware(value: datetime | None, field: str) -> datetime | None:
    return None if value is None else check_instant(value, field)


@router.get(
    "/members/{member_id}/points/history",
    responses=responses(404, 422),
    response_model=EntriesPublic,
)
def get_history(
    member_id: MemberId,
    ctx: CtxDep,
    brand: BrandDep,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
) -> EntriesPublic:
    """Ledger entries newest first, optionally within [since, until)."""
    points.balance(ctx, brand.id, member_id)
    rows = points.history(
        ctx,
        brand.id,
        member_id,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        limit=limit,
        before_id=before_id,
    )
    return EntriesPublic(
        data=[entry_public(r) for r in rows],
        count=len(rows),
        next_before_id=rows[-1].id if len(rows) == limit else None,
    )


def _source(kind: str, body: PointsBooking) -> Source:
    return Source(
        kind,
        body.source_ref,
        body.description,
        store_id=body.store_id,
        idempotency_key=body.idempotency_key,
    )


@router.post(
    "/members/{member_id}/points/earn",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=EntryPublic,
    status_code=201,
)
def earn(member_id: MemberId, body: PointsBooking, ctx: CtxDep, brand: HqBrandDep) -> EntryPublic:
    """Book earned points (idempotent with `idempotency_key`)."""
    return entry_public(points.earn(ctx, brand.id, member_id, body.points, _source("order", body)))


@router.post(
    "/members/{member_id}/points/spend",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=EntryPublic,
    status_code=201,
)
def spend(member_id: MemberId, body: PointsBooking, ctx: CtxDep, brand: HqBrandDep) -> EntryPublic:
    """Use points, earliest-expiring first; 409 if not enough are spendable."""
    return entry_public(points.spend(ctx, brand.id, member_id, body.points, _source("order", body)))


@router.post(
    "/members/{member_id}/points/adjust",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=EntryPublic,
    status_code=201,
)
def adjust(member_id: MemberId, body: PointsAdjust, ctx: CtxDep, brand: HqBrandDep) -> EntryPublic:
    """An operator's adjustment, with a reason."""
    source = Source(
        "operator",
        None,
        f"人工调整 (adjustment): {body.reason}",
        store_id=body.store_id,
        operator=body.operator,
        reason=body.reason,
        idempotency_key=body.idempotency_key,
    )
    return entry_public(
        points.adjust(ctx, brand.id, member_id, body.points, source, expires_on=body.expires_on)
    )


@router.post(
    "/points/entries/{entry_id}/reverse",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=EntryPublic,
    status_code=201,
)
def reverse(entry_id: EntryId, body: Reversal, ctx: CtxDep, brand: HqBrandDep) -> EntryPublic:
    """Reverse all or part of an entry (冲正)."""
    source = Source(
        "reversal",
        body.source_ref,
        f"冲正流水 #{entry_id} (reversal)",
        store_id=body.store_id,
        operator=body.operator,
        reason=body.reason,
        idempotency_key=body.idempotency_key,
    )
    return entry_public(points.reverse(ctx, brand.id, entry_id, source, points=body.points))


@router.post("/jobs/expire", responses=responses(403, 422), response_model=ExpiryRunPublic)
def run_expiry(ctx: CtxDep, brand: HqBrandDep, as_of: IsoDate | None = None) -> ExpiryRunPublic:
    """Expire the brand's lots lapsing on or before `as_of` (default: today in the
    brand's time zone). A day after today is refused: 422 `expiry_date_in_future`."""
    run = jobs.expire_points(ctx, as_of, brand_id=brand.id)
    return ExpiryRunPublic(as_of=run.as_of, lots=run.lots, points=run.points, members=run.members)
