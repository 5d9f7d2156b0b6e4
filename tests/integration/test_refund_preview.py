"""Refund preview (退款预览): what a refund would give back, booking nothing. It is
the refund's own booking rolled back, so its figures are the real refund's; on
SQLite and PostgreSQL, the service and the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loyalpos.api.app import create_app
from loyalpos.db.tables import metadata
from loyalpos.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalpos.domain.pricing.model import Options
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import points
from loyalpos.service.till import checkout, refunds
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from tests.integration.checkout_helpers import Shop, cart, confirm_request, give_coupon, open_shop
from tests.integration.ledger_helpers import invariant

# What a receipt says that a preview cannot know (nothing is booked) or adds.
NOT_FIGURES = {"refund_id", "refund_no", "preview", "replayed"}


def figures(receipt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in receipt.items() if k not in NOT_FIGURES}


def everything(ctx: Context) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: the whole database."""
    with ctx.transaction() as conn:
        return {
            t.name: [
                tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns)).all()
            ]
            for t in metadata.sorted_tables
        }


def paid_order(ctx: Context, shop: Shop, *, coupon: int | None = None, pts: int = 0) -> dict:
    c = cart(
        shop.store_a,
        shop.member,
        ("latte", 3000, 3),
        ("cake", 4000, 1),
        options=Options(points=pts),
    )
    q = checkout.quote(ctx, shop.brand.id, c).priced.quote
    req = confirm_request(
        "O-1", c, q.payable, coupon_ids=(coupon,) if coupon else (), points_used=q.points_redeemed
    )
    return checkout.confirm(ctx, shop.brand.id, req).receipt


def request(shop: Shop, no: str, *lines: tuple[int, int], order_no: str = "O-1") -> RefundRequest:
    return RefundRequest(
        shop.store_a,
        order_no,
        no,
        "c01",
        tuple(RefundLine(n, q) for n, q in lines),
        "顾客退货",
        "T1",
    )


def test_preview_is_the_refund_and_books_nothing(ctx: Context) -> None:
    shop = open_shop(ctx)
    coupon = give_coupon(ctx, shop, "mj100-20")
    paid_order(ctx, shop, coupon=coupon, pts=500)
    for no, lines in (("R-1", ((1, 1),)), ("R-2", ())):  # a part, then the rest
        before = everything(ctx)
        seen = refunds.preview(ctx, shop.brand.id, request(shop, no, *lines))
        unnamed = refunds.preview(ctx, shop.brand.id, request(shop, "", *lines))
        assert everything(ctx) == before  # no ledger, coupon, order, refund or outbox row
        assert seen["preview"] is True and seen["replayed"] is False
        assert (seen["refund_id"], seen["refund_no"]) == (None, no)
        assert (unnamed["refund_id"], unnamed["refund_no"]) == (None, None)
        assert figures(unnamed) == figures(seen)
        # The number was not taken: the real refund books it, with the same figures.
        done = refunds.refund(ctx, shop.brand.id, request(shop, no, *lines))
        assert not done.replayed
        assert figures(done.receipt) == figures(seen)
        assert everything(ctx) != before
    # The second was the whole rest: the coupon came back, with its message.
    assert seen["order_status"] == "refunded" and seen["coupons_returned"] == [coupon]
    (ret,) = seen["coupon_returns"]
    assert ret["returned"] is True and ret["message"]
    assert invariant(ctx, shop.member) == points.balance(ctx, shop.brand.id, shop.member).total


def test_preview_shows_the_deduction_for_points_already_spent(ctx: Context) -> None:
    shop = open_shop(ctx, negative=False)
    paid_order(ctx, shop)
    points.spend(ctx, shop.brand.id, shop.member, 1130, points.Source("order", "X"))
    before = everything(ctx)
    seen = refunds.preview(ctx, shop.brand.id, request(shop, ""))
    assert everything(ctx) == before
    assert (seen["points_reversed"], seen["deduction_fen"], seen["amount_fen"]) == (
        0,
        130,
        13000 - 130,
    )
    done = refunds.refund(ctx, shop.brand.id, request(shop, "R-1"))
    assert figures(done.receipt) == figures(seen)


def test_preview_of_a_booked_number_is_its_replay(ctx: Context) -> None:
    shop = open_shop(ctx)
    paid_order(ctx, shop)
    done = refunds.refund(ctx, shop.brand.id, request(shop, "R-1", (2, 1)))
    again = refunds.preview(ctx, shop.brand.id, request(shop, "R-1", (2, 1)))
    assert again == {**done.receipt, "preview": True, "replayed": True}
    with pytest.raises(Conflict) as exc:
        refunds.preview(ctx, shop.brand.id, request(shop, "R-1", (1, 1)))
    assert exc.value.code == "refund_no_reused"


@pytest.mark.parametrize(
    ("make", "kind", "code"),
    [
        (lambda s: request(s, "R-9", order_no="NOPE"), NotFound, "order_not_found"),
        (lambda s: request(s, "R-9", (9, 1)), InvalidInput, "refund_line_unknown"),
        (lambda s: request(s, "R-9", (1, 4)), Conflict, "refund_exceeds_order"),
        (lambda s: request(s, "", (1, 0)), InvalidInput, "invalid_input"),
    ],
)
def test_preview_refuses_what_refund_refuses(
    ctx: Context, make: Any, kind: type[DomainError], code: str
) -> None:
    shop = open_shop(ctx)
    paid_order(ctx, shop)
    before = everything(ctx)
    req = make(shop)
    with pytest.raises(kind) as seen:
        refunds.preview(ctx, shop.brand.id, req)
    with pytest.raises(kind) as real:
        refunds.refund(ctx, shop.brand.id, req if req.refund_no else request(shop, "R-9", (1, 0)))
    assert seen.value.code == real.value.code == code
    assert everything(ctx) == before


def test_preview_of_a_fully_refunded_order_is_refused(ctx: Context) -> None:
    shop = open_shop(ctx)
    paid_order(ctx, shop)
    refunds.refund(ctx, shop.brand.id, request(shop, "R-1"))
    with pytest.raises(Conflict) as exc:
        refunds.preview(ctx, shop.brand.id, request(shop, ""))
    assert exc.value.code == "already_refunded"


# -- the HTTP API -----------------------------------------------------------------------


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c


def test_api_preview_then_refund(ctx: Context, client: TestClient) -> None:
    shop = open_shop(ctx)
    coupon = give_coupon(ctx, shop, "mj100-20")
    paid_order(ctx, shop, coupon=coupon)
    key = apikeys.create_key(ctx, shop.brand.id, Scope.CASHIER, "t", store_id=shop.store_a).secret
    other = apikeys.create_key(ctx, shop.brand.id, Scope.CASHIER, "t", store_id=shop.store_b)
    auth = {"Authorization": f"Bearer {key}"}
    base = f"/v1/stores/{shop.store_a}/orders/O-1/refunds"
    body = {"cashier": "c01", "terminal": "T1", "lines": [{"line_no": 1, "qty": 2}]}
    before = everything(ctx)
    seen = client.post(base + "/preview", json=body, headers=auth)
    assert seen.status_code == 200, seen.text
    assert everything(ctx) == before
    preview = seen.json()
    assert preview["preview"] is True and preview["refund_id"] is None
    assert preview["refund_no"] is None and preview["amount_fen"] > 0
    assert preview["coupon_returns"][0]["code"] == "kept_until_full_refund"
    named = client.post(base + "/preview", json={**body, "refund_no": "R-1"}, headers=auth)
    assert named.status_code == 200 and named.json()["refund_no"] == "R-1"
    done = client.post(base, json={**body, "refund_no": "R-1"}, headers=auth)
    assert done.status_code == 201, done.text
    assert figures(done.json()) == figures(preview)
    replay = client.post(base + "/preview", json={**body, "refund_no": "R-1"}, headers=auth)
    assert replay.status_code == 200 and replay.json()["replayed"] is True
    assert replay.json()["refund_id"] == done.json()["refund_id"]

    def error(url: str, payload: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
        answer = client.post(url, json=payload, headers=headers)
        return answer.status_code, answer.json()["error"]["code"]

    assert error(base + "/preview", {**body, "refund_no": "R-1", "reason": "x"}, auth) == (
        409,
        "refund_no_reused",
    )
    assert error(base + "/preview", {**body, "lines": [{"line_no": 1, "qty": 9}]}, auth) == (
        409,
        "refund_exceeds_order",
    )
    nope = f"/v1/stores/{shop.store_a}/orders/NOPE/refunds/preview"
    assert error(nope, body, auth) == (404, "order_not_found")
    assert error(base + "/preview", {**body, "extra": 1}, auth) == (422, "validation_error")
    assert error(base + "/preview", {"lines": []}, auth) == (422, "validation_error")
    wrong = {"Authorization": f"Bearer {other.secret}"}
    assert error(base + "/preview", body, wrong) == (403, "wrong_store")
