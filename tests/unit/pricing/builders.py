"""Small builders for hand-made domain inputs to `quote()`: money in 分."""

from __future__ import annotations

from datetime import datetime

from loyalpos.domain.pricing.engine import quote
from loyalpos.domain.pricing.model import (
    Applied,
    Cart,
    CartLine,
    MemberContext,
    Options,
    Quote,
    Unusable,
    WalletCoupon,
)
from loyalpos.domain.pricing.rules import Benefit, RuleSet, Stacking

# 2024-06-04 is a Tuesday (ISO weekday 2); 2024-06-05 a Wednesday, 2024-06-08 a Saturday.
TUESDAY_NOON = datetime(2024, 6, 4, 12, 0)


def line(sku: str, price: int, qty: int = 1, category: str = "general") -> CartLine:
    return CartLine(sku=sku, category=category, unit_price=price, qty=qty)


def cart(*lines: CartLine, store: str = "S1", at: datetime = TUESDAY_NOON) -> Cart:
    return Cart(store=store, local_time=at, lines=tuple(lines))


def wallet(*pairs: tuple[str, str], expires: datetime | None = None) -> tuple[WalletCoupon, ...]:
    """(coupon id, template id) pairs, all expiring at `expires`."""
    return tuple(WalletCoupon(cid, template, expires) for cid, template in pairs)


def member(
    *coupons: WalletCoupon, tier: str | None = "normal", points: int = 0, **kw: object
) -> MemberContext:
    return MemberContext(tier=tier, points=points, wallet=tuple(coupons), **kw)  # type: ignore[arg-type]


def coupon(cid: str, template: str, expires: datetime | None = None) -> WalletCoupon:
    return WalletCoupon(cid, template, expires)


def rules(*benefits: Benefit, max_coupons: int = 1, **kw: object) -> RuleSet:
    stacking = kw.pop("stacking", None) or Stacking(max_coupons=max_coupons)
    return RuleSet(benefits=tuple(benefits), stacking=stacking, **kw)  # type: ignore[arg-type]


def price(
    rule_set: RuleSet,
    the_cart: Cart,
    the_member: MemberContext | None = None,
    options: Options | None = None,
) -> Quote:
    return quote(rule_set, the_member or member(), the_cart, options or Options())


def applied_ids(q: Quote) -> list[str]:
    """Coupon ids (or benefit ids of promotions) of the chosen coupons and promotions."""
    return [
        a.coupon_id or a.benefit
        for a in q.applied
        if a.kind not in {"member_price", "change_rounding"}
    ]


def applied(q: Quote, key: str) -> Applied:
    return next(a for a in q.applied if (a.coupon_id or a.benefit) == key)


def unusable(q: Quote, coupon_id: str) -> Unusable:
    found = [u for u in q.unusable if u.coupon_id == coupon_id]
    assert len(found) == 1, (coupon_id, q.unusable)
    return found[0]


def check_sums(q: Quote) -> None:
    """The bookkeeping identities every quote must satisfy."""
    assert sum(x.payable for x in q.lines) == q.payable
    assert sum(x.discount for x in q.lines) == q.discount
    assert sum(x.points_offset for x in q.lines) == q.points_offset
    assert sum(x.points_earned for x in q.lines) == q.points_earned
    assert q.subtotal - q.discount - q.points_offset == q.payable
    assert all(x.payable >= 0 and x.discount >= 0 for x in q.lines)
    assert sum(a.saving for a in q.applied) == q.discount
