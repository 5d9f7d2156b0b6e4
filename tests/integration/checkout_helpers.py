"""A small shop for the checkout tests: one brand, two stores, simple rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.domain.pricing.model import CartLine, Options
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons, members, points
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till.checkout import CartRequest, ConfirmRequest, MemberRef, Tender

RULES = """
points:
  earn:
    - {id: base, kind: base, points_per_yuan: 1}
  offset: {points_per_yuan: 100, cap_percent: 50, step: 100}
coupons:
  - {id: mj100-20, name: 满100减20, kind: threshold, threshold_fen: 10000, amount_fen: 2000,
     with_points: true}
  - {id: cash5, name: 5元代金券, kind: cash, amount_fen: 500, with_points: true}
stacking: {max_coupons: 2}
tiers:
  - {id: normal, name: 普通会员, min_spent_fen: 0}
  - {id: gold, name: 金卡, min_spent_fen: 50000}
"""


@dataclass(frozen=True)
class Shop:
    brand: brands.Brand
    store_a: int
    store_b: int
    member: int


def open_shop(ctx: Context, *, negative: bool = False, rules: str = RULES) -> Shop:
    brand = brands.create_brand(
        ctx,
        "shop",
        "Shop",
        policy=ExpiryPolicy(ExpiryMode.FIXED, months=12),
        allow_negative_balance=negative,
    )
    a = brands.create_store(ctx, brand.id, "A", "Store A")
    b = brands.create_store(ctx, brand.id, "B", "Store B")
    draft = rulesets.save_draft(ctx, brand.id, rules)
    rulesets.publish(ctx, brand.id, draft.version, effective_from=ctx.now() - timedelta(days=1))
    member = members.register(ctx, brand.id, phone="13800138000", name="张三").id
    points.earn(ctx, brand.id, member, 1000, points.Source("import", "opening"))
    return Shop(brand, a.id, b.id, member)


def give_coupon(ctx: Context, shop: Shop, template: str) -> int:
    return coupons.issue_to_member(ctx, shop.brand.id, shop.member, template).id


def cart(
    store: int,
    member: int | None,
    *lines: tuple[str, int, int],
    options: Options | None = None,
) -> CartRequest:
    return CartRequest(
        store,
        tuple(CartLine(sku, "food", price, qty, sku) for sku, price, qty in lines),
        MemberRef(member_id=member) if member is not None else None,
        options or Options(),
    )


def confirm_request(
    order_no: str,
    c: CartRequest,
    paid: int,
    *,
    coupon_ids: tuple[int, ...] = (),
    points_used: int = 0,
    **kwargs: object,
) -> ConfirmRequest:
    return ConfirmRequest(
        order_no=order_no,
        cart=c,
        tenders=(Tender("wechat", paid, f"wx-{order_no}"),),
        cashier="c01",
        terminal="T1",
        coupon_ids=coupon_ids,
        points=points_used,
        **kwargs,  # type: ignore[arg-type]
    )
