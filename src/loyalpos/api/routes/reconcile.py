"""Reconciliation (对账) of a store day: the POS's figures against our booked orders."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, StringConstraints

from loyalpos import integers as whole
from loyalpos.api.deps import CtxDep, PrincipalDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.fields import SINGLE_LINE, Code, IsoDate
from loyalpos.api.schemas import MAX_ID, Strict
from loyalpos.domain.reconcile import MAX_COUNT, MAX_FEN, PosDay, PosOrder
from loyalpos.service.till import reconcile

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["reconciliation"])

StoreId = Annotated[int, Path(gt=0, le=MAX_ID)]
Fen = Annotated[int, whole.fen(ge=0, le=MAX_FEN)]
Method = Annotated[str, StringConstraints(min_length=1, max_length=32), SINGLE_LINE]


class PosOrderIn(Strict):
    order_no: Code
    amount_fen: Fen


class ReconcileIn(Strict):
    """What the POS recorded for one store day. Amounts are integer fen paid at
    checkout (before refunds)."""

    date: IsoDate = Field(description="the store's local calendar day")
    order_count: Annotated[int, whole.count(ge=0, le=MAX_COUNT)]
    amount_fen: Fen
    tenders: Annotated[dict[Method, Fen], Field(max_length=64)] = Field(
        default_factory=dict, description='fen per tender method, e.g. {"wechat": 12800}'
    )
    orders: Annotated[list[PosOrderIn], Field(max_length=50_000)] | None = Field(
        default=None, description="optional: the POS's orders, compared one by one"
    )

    def pos_day(self) -> PosDay:
        listed = None
        if self.orders is not None:
            listed = tuple(PosOrder(o.order_no, o.amount_fen) for o in self.orders)
        return PosDay(self.order_count, self.amount_fen, dict(self.tenders), listed)


class Figures(BaseModel):
    order_count: int
    amount_fen: int


class TotalsOut(BaseModel):
    pos: Figures
    ours: Figures
    diff: Figures = Field(description="pos - ours")


class TenderOut(BaseModel):
    method: str
    pos_fen: int
    ours_fen: int
    diff_fen: int


class MatchedOut(BaseModel):
    order_no: str
    pos_fen: int
    ours_fen: int
    diff_fen: int
    late: bool


class PosOnlyOut(BaseModel):
    order_no: str
    amount_fen: int


class OursOnlyOut(BaseModel):
    order_no: str
    amount_fen: int
    late: bool


class OrdersOut(BaseModel):
    matched: list[MatchedOut] = Field(description="on both sides (diff 0 when amounts agree)")
    missing_here: list[PosOnlyOut] = Field(description="the POS has them, we do not")
    missing_at_pos: list[OursOnlyOut] = Field(
        description="we booked them, the POS does not list them"
    )
    amount_differences: list[MatchedOut] = Field(description="matched orders whose amounts differ")
    listed: Figures = Field(description="the sum of the POS's own list")
    list_matches_totals: bool


class Window(BaseModel):
    start: str
    end: str


class ReconciliationOut(BaseModel):
    store_id: int
    store_code: str
    date: dt.date
    timezone: str
    window: Window = Field(description="the local day as UTC instants [start, end)")
    status: Literal["balanced", "discrepancies"]
    totals: TotalsOut
    tenders: list[TenderOut]
    orders: OrdersOut | None = Field(description="null when the POS sent no order list")
    late_orders: int = Field(description="our orders of the day booked late (补单)")


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
