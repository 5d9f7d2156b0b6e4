"""The POS flow over HTTP: identify, quote (and reserve), confirm payment, look an
order up, refund, upload offline orders (补单).

Cashier keys act for their own store only; HQ keys for any store of the brand.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from loyalpos.api.deps import CtxDep, PrincipalDep
from loyalpos.api.errors import V1_ERRORS, error_body, responses
from loyalpos.api.fields import MAX_ID, Code, QuoteToken
from loyalpos.api.till.fastpath import Answer, TillRoute
from loyalpos.api.till.schemas import (
    CartIn,
    ConfirmIn,
    IdentifyIn,
    IdentifyOut,
    LateBatchIn,
    LateBatchOut,
    LateResultOut,
    MemberRefIn,
    QuoteIn,
    QuoteOut,
    ReceiptOut,
    RefundIn,
    RefundOut,
    RefundPreviewIn,
    RefundPreviewOut,
)
from loyalpos.api.till.threads import run_till
from loyalpos.domain.errors import DomainError
from loyalpos.domain.pricing.model import CartLine, Options, PointsRequest, Strategy
from loyalpos.domain.times import check_instant
from loyalpos.service.admin.apikeys import Principal
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty.members import Identity
from loyalpos.service.till import checkout, refunds
from loyalpos.service.till.checkout import CartRequest, ConfirmRequest, MemberRef, Tender
from loyalpos.service.till.refunds import RefundLine, RefundRequest

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["checkout"])

StoreId = Annotated[int, Path(gt=0, le=MAX_ID)]


def member_ref(body: MemberRefIn) -> MemberRef:
    identity = body.identity
    return MemberRef(
        member_id=body.member_id,
        phone=body.phone,
        card_no=body.card_no,
        code=body.code,
        identity=Identity(identity.provider, identity.kind, identity.value) if identity else None,
    )


def cart_request(body: CartIn) -> CartRequest:
    o = body.options
    points: PointsRequest | int = PointsRequest(o.points) if isinstance(o.points, str) else o.points
    return CartRequest(
        body.store_id,
        tuple(
            CartLine(x.sku, x.category, x.unit_price_fen, x.qty, x.name or x.sku)
            for x in body.lines
        ),
        member_ref(body.member) if body.member else None,
        Options(
            points=points,
            strategy=Strategy(o.strategy),
            force=tuple(str(c) for c in o.force),
            exclude=tuple(str(c) for c in o.exclude),
            skip_all=o.skip_all,
        ),
    )


def confirm_request(body: ConfirmIn) -> ConfirmRequest:
    payer = body.payer
    return ConfirmRequest(
        order_no=body.order_no,
        cart=cart_request(body),
        tenders=tuple(Tender(t.method, t.amount_fen, t.reference) for t in body.tenders),
        cashier=body.cashier,
        terminal=body.terminal,
        coupon_ids=tuple(body.coupon_ids),
        points=body.points,
        payer=Identity(payer.provider, payer.kind, payer.value) if payer else None,
        quote_token=body.quote_token,
        ordered_at=check_instant(body.ordered_at, "ordered_at") if body.ordered_at else None,
    )


# The till's three hot endpoints are `async` and hand only the service call to
# a thread (api/till/threads.py: a few per process): a sync endpoint costs a hop for
# itself and another for its response validation (on top of its sync
# dependencies'), each a thread switch and an event-loop wake-up, which a 2-CPU
# till server pays on every request. Their work is in the `*_call` functions,
# which api/till/fastpath.py also runs for a well-formed request without FastAPI's
# per-request machinery; the routes stay the documented contract and answer
# everything else (bad input, a key to look up) exactly as before.


async def identify_call(ctx: Context, who: Principal, body: IdentifyIn) -> Answer:
    who.require_store(body.store_id)
    found = await run_till(
        ctx, checkout.identify, ctx, who.brand_id, body.store_id, member_ref(body.member)
    )
    return 200, found


async def quote_call(ctx: Context, who: Principal, body: QuoteIn) -> Answer:
    who.require_store(body.store_id)
    req = cart_request(body)

    def work() -> dict[str, Any]:
        return checkout.quote(
            ctx, who.brand_id, req, reserve=body.reserve, replaces=body.replaces
        ).as_json()

    return 200, await run_till(ctx, work)


async def confirm_call(ctx: Context, who: Principal, body: ConfirmIn) -> Answer:
    who.require_store(body.store_id)
    done = await run_till(ctx, checkout.confirm, ctx, who.brand_id, confirm_request(body))
    return (200 if done.replayed else 201), {**done.receipt, "replayed": done.replayed}


TILL_ROUTES: dict[str, TillRoute[Any]] = {
    "/v1/identify": TillRoute(IdentifyIn, IdentifyOut, identify_call),
    "/v1/quotes": TillRoute(QuoteIn, QuoteOut, quote_call),
    "/v1/orders": TillRoute(ConfirmIn, ReceiptOut, confirm_call),
}


@router.post("/identify", responses=responses(400, 403, 404, 413, 422), response_model=IdentifyOut)
async def identify(body: IdentifyIn, ctx: CtxDep, who: PrincipalDep) -> dict[str, Any]:
    """识别会员: member, tier, points, usable coupons and the tier progress line."""
    return (await identify_call(ctx, who, body))[1]


@router.post("/quotes", responses=responses(400, 403, 404, 409, 413, 422), response_model=QuoteOut)
async def quote(body: QuoteIn, ctx: CtxDep, who: PrincipalDep) -> dict[str, Any]:
    """Price a cart with the best legal combination of benefits (试算). With
    `reserve`, the chosen coupons and points are held for this till for a few
    minutes; confirm (with `quote_token`) or the time running out releases them."""
    return (await quote_call(ctx, who, body))[1]


@router.delete(
    "/stores/{store_id}/quotes/{token}", responses=responses(403, 404, 422), status_code=204
)
def release_quote(
    store_id: StoreId,
    token: QuoteToken,
    ctx: CtxDep,
    who: PrincipalDep,
) -> Response:
    """The till dropped the cart: release what its quote held."""
    who.require_store(store_id)
    checkout.release(ctx, who.brand_id, store_id, token)
    return Response(status_code=204)


@router.post(
    "/orders",
    response_model=ReceiptOut,
    status_code=201,
    responses={
        200: {
            "model": ReceiptOut,
            "description": "a replay: this order number was booked before, same body",
        },
        **responses(
            400,
            403,
            404,
            (
                409,
                "price_changed (nothing booked; `detail.fresh_quote` is the new price) "
                "or order_no_reused (same number, different body)",
            ),
            413,
            422,
        ),
    },
)
async def confirm(
    body: ConfirmIn, ctx: CtxDep, who: PrincipalDep, response: Response
) -> dict[str, Any]:
    """支付成功回调: book a paid order once. The server prices the cart again; if the
    chosen coupons or points are no longer valid, or the tenders do not add up to
    the price, it answers 409 with a fresh quote and books nothing."""
    response.status_code, receipt = await confirm_call(ctx, who, body)
    return receipt


@router.get(
    "/stores/{store_id}/orders/{order_no}",
    responses=responses(403, 404, 422),
    response_model=ReceiptOut,
)
def get_order(store_id: StoreId, order_no: Code, ctx: CtxDep, who: PrincipalDep) -> dict[str, Any]:
    who.require_store(store_id)
    return checkout.get_order(ctx, who.brand_id, store_id, order_no)


@router.post(
    "/stores/{store_id}/orders/{order_no}/refunds",
    response_model=RefundOut,
    status_code=201,
    responses={
        200: {
            "model": RefundOut,
            "description": "a replay: this refund number was booked before, same body",
        },
        **responses(400, 403, 404, 409, 413, 422),
    },
)
def refund(
    store_id: StoreId,
    order_no: Code,
    body: RefundIn,
    ctx: CtxDep,
    who: PrincipalDep,
    response: Response,
) -> dict[str, Any]:
    """退款, full or by line and quantity, idempotent by `refund_no`."""
    who.require_store(store_id)
    req = RefundRequest(
        store_id,
        order_no,
        body.refund_no,
        body.cashier,
        tuple(RefundLine(x.line_no, x.qty) for x in body.lines),
        body.reason,
        body.terminal,
    )
    done = refunds.refund(ctx, who.brand_id, req)
    if done.replayed:
        response.status_code = 200
    return {**done.receipt, "replayed": done.replayed}


@router.post(
    "/stores/{store_id}/orders/{order_no}/refunds/preview",
    response_model=RefundPreviewOut,
    responses=responses(400, 403, 404, 409, 413, 422),
)
def refund_preview(
    store_id: StoreId,
    order_no: Code,
    body: RefundPreviewIn,
    ctx: CtxDep,
    who: PrincipalDep,
) -> dict[str, Any]:
    """What this refund would give back (money, deduction, points, coupons and why),
    booking nothing; the same body as a refund, `refund_no` optional; the same errors."""
    who.require_store(store_id)
    req = RefundRequest(
        store_id,
        order_no,
        body.refund_no or "",
        body.cashier,
        tuple(RefundLine(x.line_no, x.qty) for x in body.lines),
        body.reason,
        body.terminal,
    )
    return refunds.preview(ctx, who.brand_id, req)


@router.post("/late-orders", responses=responses(400, 403, 413, 422), response_model=LateBatchOut)
def late_orders(body: LateBatchIn, ctx: CtxDep, who: PrincipalDep) -> LateBatchOut:
    """补单: orders a POS took while offline, each priced with the rules in force at
    its own time and booked idempotently. Benefits that cannot be honoured any more
    are dropped and listed in the order's `exceptions`; no order is dropped."""
    for o in body.orders:
        who.require_store(o.store_id)
    results: list[LateResultOut] = []
    for order_no, outcome in checkout.late_batch(
        ctx, who.brand_id, [confirm_request(o) for o in body.orders]
    ):
        if isinstance(outcome, DomainError):
            results.append(
                LateResultOut(
                    order_no=order_no,
                    outcome="rejected",
                    error=error_body(outcome.code, outcome.message, outcome.detail)["error"],
                )
            )
        else:
            results.append(
                LateResultOut(
                    order_no=order_no,
                    outcome="replayed" if outcome.replayed else "booked",
                    receipt=ReceiptOut.model_validate(
                        {**outcome.receipt, "replayed": outcome.replayed}
                    ),
                )
            )
    return LateBatchOut(
        results=results,
        booked=sum(r.outcome == "booked" for r in results),
        replayed=sum(r.outcome == "replayed" for r in results),
        rejected=sum(r.outcome == "rejected" for r in results),
        with_exceptions=sum(bool(r.receipt and r.receipt.exceptions) for r in results),
    )
