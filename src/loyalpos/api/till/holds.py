"""Held carts (挂单 / 暂存): park, list, resume, cancel, and the reasons report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from loyalpos.api.deps import CtxDep, HqDep, PrincipalDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.fields import MAX_ID, IsoDate
from loyalpos.api.till.schemas import (
    HoldDetail,
    HoldIn,
    HoldPublic,
    HoldReport,
    HoldsPublic,
    ReasonCount,
    Terminal,
)
from loyalpos.service.till import holds
from loyalpos.service.till.holds import Hold, HoldReason

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["holds"])

StoreId = Annotated[int, Path(gt=0, le=MAX_ID)]
HoldId = Annotated[int, Path(gt=0, le=MAX_ID)]


def _public(h: Hold) -> dict[str, Any]:
    return {
        "id": h.id,
        "store_id": h.store_id,
        "member": (
            None
            if h.member is None
            else {"id": h.member.id, "name": h.member.name, "phone": h.member.phone}
        ),
        "reason": h.reason.value,
        "reason_label": h.reason_label,
        "note": h.note,
        "cashier": h.cashier,
        "terminal": h.terminal,
        "status": h.status.value,
        "created_at": h.created_at,
        "expires_at": h.expires_at,
        "closed_at": h.closed_at,
    }


def _detail(h: Hold) -> HoldDetail:
    return HoldDetail(**_public(h), cart=h.payload)


@router.post(
    "/stores/{store_id}/holds",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=HoldPublic,
    status_code=201,
)
def create_hold(store_id: StoreId, body: HoldIn, ctx: CtxDep, who: PrincipalDep) -> HoldPublic:
    """Park (挂单) the cart; it lapses after `held_cart_minutes` (default 120)."""
    who.require_store(store_id)
    h = holds.hold(
        ctx,
        who.brand_id,
        store_id,
        payload=body.cart,
        reason=body.reason,
        note=body.note,
        member_id=body.member_id,
        cashier=body.cashier,
        terminal=body.terminal,
    )
    return HoldPublic(**_public(h))


@router.get(
    "/stores/{store_id}/holds", responses=responses(403, 404, 422), response_model=HoldsPublic
)
def list_holds(
    store_id: StoreId,
    ctx: CtxDep,
    who: PrincipalDep,
    terminal: Terminal | None = None,
) -> HoldsPublic:
    """The store's parked carts, oldest first (lapsed ones are left out)."""
    who.require_store(store_id)
    found = holds.list_active(ctx, who.brand_id, store_id, terminal=terminal)
    return HoldsPublic(data=[HoldPublic(**_public(h)) for h in found], count=len(found))


@router.get(
    "/holds/report",
    responses=responses(403, 404, 422),
    response_model=HoldReport,
    response_model_by_alias=True,
)
def hold_report(
    ctx: CtxDep,
    who: HqDep,
    date_from: Annotated[IsoDate, Query(alias="from", description="first local day")],
    date_to: Annotated[IsoDate, Query(alias="to", description="last local day, inclusive")],
    store_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
) -> HoldReport:
    """HQ: holds made per store and reason in [from, to] (store-local days), by outcome."""
    rows = holds.report(ctx, who.brand_id, date_from, date_to, store_id=store_id)
    by_reason: dict[str, int] = {r.value: 0 for r in HoldReason}
    for r in rows:
        by_reason[r.reason.value] += r.total
    return HoldReport(
        date_from=date_from,
        date_to=date_to,
        data=[
            ReasonCount(
                store_id=r.store_id,
                store_code=r.store_code,
                reason=r.reason.value,
                reason_label=r.reason_label,
                total=r.total,
                held=r.held,
                resumed=r.resumed,
                cancelled=r.cancelled,
                expired=r.expired,
            )
            for r in rows
        ],
        by_reason=by_reason,
        total=sum(by_reason.values()),
    )


def _own(ctx: CtxDep, who: PrincipalDep, hold_id: int) -> Hold:
    h = holds.get(ctx, who.brand_id, hold_id)
    who.require_store(h.store_id)
    return h


@router.get("/holds/{hold_id}", responses=responses(403, 404, 422), response_model=HoldDetail)
def get_hold(hold_id: HoldId, ctx: CtxDep, who: PrincipalDep) -> HoldDetail:
    """One hold with its cart, in any state. Reading does not resume it."""
    return _detail(_own(ctx, who, hold_id))


@router.post(
    "/holds/{hold_id}/resume", responses=responses(403, 404, 409, 422), response_model=HoldDetail
)
def resume_hold(hold_id: HoldId, ctx: CtxDep, who: PrincipalDep) -> HoldDetail:
    """Take the cart back (取单), once: 409 `hold_already_resumed`, `hold_expired`
    or `hold_cancelled` otherwise. The cart comes back exactly as parked."""
    _own(ctx, who, hold_id)
    return _detail(holds.resume(ctx, who.brand_id, hold_id))


@router.post(
    "/holds/{hold_id}/cancel", responses=responses(403, 404, 409, 422), response_model=HoldPublic
)
def cancel_hold(hold_id: HoldId, ctx: CtxDep, who: PrincipalDep) -> HoldPublic:
    """Drop a parked cart; repeating it is harmless, a resumed or lapsed one is 409."""
    _own(ctx, who, hold_id)
    return HoldPublic(**_public(holds.cancel(ctx, who.brand_id, hold_id)))
