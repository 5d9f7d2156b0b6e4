"""Reconciliation (对账) of a store day: the POS's figures against our booked orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from loyalpos.api.deps import CtxDep, PrincipalDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.fields import MAX_ID
from loyalpos.api.till.schemas import (
    ReconcileIn,
    ReconciliationOut,
)
from loyalpos.service.till import reconcile

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["reconciliation"])

StoreId = Annotated[int, Path(gt=0, le=MAX_ID)]


@router.post(
    "/stores/{store_id}/reconciliation",
    responses=responses(400, 403, 404, 413, 422),
    response_model=ReconciliationOut,
)
def reconcile_store_day(
    store_id: StoreId, body: ReconcileIn, ctx: CtxDep, who: PrincipalDep
) -> ReconciliationOut:
    """Compare the POS's day (totals, tenders, optionally its orders) with the orders
    booked for the store on that local day. Differences are `pos - ours`."""
    who.require_store(store_id)
    found = reconcile.reconcile_day(ctx, who.brand_id, store_id, body.date, body.pos_day())
    return ReconciliationOut.model_validate(reconcile.as_dict(found))
