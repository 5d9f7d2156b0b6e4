"""Till events: a till records an override (a skipped member identification, a
manual price, benefits declined, a forced coupon); HQ reads the counts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from loyalpos.api.deps import CtxDep, HqDep, PrincipalDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.fields import MAX_ID, IsoDate
from loyalpos.api.till.schemas import TillEventCount, TillEventIn, TillEventOut, TillEventReport
from loyalpos.service.till import till_events
from loyalpos.service.till.till_events import TillEvent, TillEventKind

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["till events"])

StoreId = Annotated[int, Path(gt=0, le=MAX_ID)]


def _out(e: TillEvent) -> TillEventOut:
    return TillEventOut(
        id=e.id,
        store_id=e.store_id,
        kind=e.kind.value,
        kind_label=e.kind_label,
        staff_id=e.staff_id,
        staff_number=e.staff_number,
        terminal=e.terminal,
        order_no=e.order_no,
        reason=e.reason,
        detail=e.detail,
        created_at=e.created_at,
    )


@router.post(
    "/stores/{store_id}/till-events",
    responses=responses(400, 403, 404, 413, 422),
    response_model=TillEventOut,
    status_code=201,
)
def record_till_event(
    store_id: StoreId, body: TillEventIn, ctx: CtxDep, who: PrincipalDep
) -> TillEventOut:
    """Record an override a till of the store made (the store's cashier key, or HQ)."""
    who.require_store(store_id)
    event = till_events.record(
        ctx,
        who.brand_id,
        store_id,
        body.kind,
        staff_id=None,
        staff_number=body.staff_number,
        terminal=body.terminal,
        reason=body.reason,
        order_no=body.order_no,
        detail=body.detail,
    )
    return _out(event)


@router.get(
    "/till-events/report", responses=responses(403, 404, 422), response_model=TillEventReport
)
def till_event_report(
    ctx: CtxDep,
    who: HqDep,
    date_from: Annotated[IsoDate, Query(description="first local day")],
    date_to: Annotated[IsoDate, Query(description="last local day, inclusive")],
    store_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
) -> TillEventReport:
    """HQ: the tills' overrides per store, kind and local day in [date_from, date_to]."""
    rows = till_events.report(
        ctx, who.brand_id, store_id=store_id, date_from=date_from, date_to=date_to
    )
    by_kind: dict[str, int] = {k.value: 0 for k in TillEventKind}
    for r in rows:
        by_kind[r.kind.value] += r.count
    return TillEventReport(
        date_from=date_from,
        date_to=date_to,
        data=[
            TillEventCount(
                store_id=r.store_id,
                store_code=r.store_code,
                kind=r.kind.value,
                kind_label=r.kind_label,
                day=r.day,
                count=r.count,
            )
            for r in rows
        ],
        by_kind=by_kind,
        total=sum(by_kind.values()),
    )
