"""The cart the benefits start from: checked against the engine's limits, then
at member prices (会员价), step 1 of the order of application.

Invariants: a cart that passes `check_cart` has 1-500 lines of 1-10,000 units
at 0-1,000,000 元 each, the limits the search's budget was measured at (see
`search`). Member prices come before every other benefit and are not part of
the search: a fixed item price for the member's tier where it is below the
shelf price, else the tier percentage on the lines in the member-price scope.
"""

from __future__ import annotations

from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.pricing.allocation import percent_of
from loyalpos.domain.pricing.model import Cart, MemberContext
from loyalpos.domain.pricing.rules import RuleSet

MAX_LINES = 500
MAX_QTY = 10_000
MAX_UNIT_PRICE = 100_000_000  # 1,000,000 元


def check_cart(cart: Cart) -> None:
    if not cart.lines:
        raise InvalidInput("购物车为空 (the cart has no lines)", field="lines")
    if len(cart.lines) > MAX_LINES:
        raise InvalidInput(f"at most {MAX_LINES} lines per cart", field="lines")
    for n, line in enumerate(cart.lines):
        if not 1 <= line.qty <= MAX_QTY:
            raise InvalidInput(
                f"第 {n + 1} 行数量无效 (line {n + 1}: quantity must be 1-{MAX_QTY})",
                field=f"lines.{n}.qty",
            )
        if not 0 <= line.unit_price <= MAX_UNIT_PRICE:
            raise InvalidInput(
                f"第 {n + 1} 行价格无效 (line {n + 1}: unit price out of range)",
                field=f"lines.{n}.unit_price",
            )


def member_prices(rules: RuleSet, member: MemberContext, cart: Cart) -> tuple[list[int], int]:
    """What each line costs at the member's prices, and what that saves in all."""
    mp = rules.member_prices
    amounts = [line.unit_price * line.qty for line in cart.lines]  # the subtotals
    if member.tier is None:
        return amounts, 0
    subtotal = sum(amounts)
    pct = mp.tier_percent.get(member.tier)
    item_prices = mp.item_prices
    if pct is None and not item_prices:
        return amounts, 0
    scope = mp.scope
    # `scope.line_ok` inline when the scope only lists categories and skus.
    plain = not scope.exclude_skus and not scope.exclude_categories
    every = plain and not scope.categories and not scope.skus
    categories, skus = scope.categories, scope.skus
    for i, line in enumerate(cart.lines):
        fixed = None
        if item_prices:
            by_tier = item_prices.get(line.sku)
            if by_tier is not None:
                fixed = by_tier.get(member.tier)
        if fixed is not None and fixed < line.unit_price:
            amounts[i] = fixed * line.qty
        elif pct is not None and (
            every
            or (line.category in categories or line.sku in skus if plain else scope.line_ok(line))
        ):
            amounts[i] = percent_of(amounts[i], pct)
    return amounts, subtotal - sum(amounts)
