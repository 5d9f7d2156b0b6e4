"""Which lines of the cart a scope accepts, or a benefit reads or writes, as bit
masks (bit i: line i), once per search.

Invariant: the lines are those of the cart the search starts from, and a
benefit reads and writes only the lines it could take units or a discount
from: an item coupon's sku, a bundle's skus, otherwise its whole scope.
Whether a line still costs something does not change its bit. So two benefits
whose masks are disjoint do not change what each other saves, whatever else is
applied (the points offset, on what the whole cart still costs, aside): the
search relies on this to know which benefits may interfere
(`dominance`), which discounts may move (`moving`) and which saving is lost
exactly when one benefit is dropped (`search.irreducible`).
"""

from __future__ import annotations

from collections.abc import Sequence

from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.rules import Benefit, Kind, Scope


def scope_info(s: SearchContext, scope: Scope) -> tuple[tuple[int, ...], int]:
    """The lines `scope` accepts (`State.scope_lines`: one tuple for equal scopes)
    and the same as a bit mask; once per scope."""
    found = s.scope_masks.get(id(scope))  # the entry keeps `scope` alive
    if found is None:
        lines = s.start.scope_lines(scope)
        mask = s.line_masks.get(id(lines))
        if mask is None:
            mask = 0
            for i in lines:
                mask |= 1 << i
            s.line_masks[id(lines)] = mask
        found = s.scope_masks[id(scope)] = (scope, lines, mask)
    return found[1], found[2]


def scope_mask(s: SearchContext, scope: Scope) -> int:
    """The lines `scope` accepts, as a bit mask."""
    return scope_info(s, scope)[1]


def touched_mask(s: SearchContext, b: Benefit) -> int:
    """`_touched(b, s.start)`, once per benefit."""
    found = s.touch.get(id(b))  # the entry keeps `b` alive
    if found is None:
        if b.kind is Kind.BUNDLE or (b.kind is Kind.ITEM and b.sku):
            mask = _touched(b, s.start)
        else:
            mask = scope_mask(s, b.scope)  # the same, once per scope
        found = s.touch[id(b)] = (b, mask)
    return found[1]


def _touched(b: Benefit, st: State) -> int:
    """Bit mask of the lines whose state applying `b` reads or writes."""
    if b.kind is Kind.ITEM and b.sku:
        idx: Sequence[int] = st.sku_lines(b.sku)
    elif b.kind is Kind.BUNDLE:
        idx = [i for sku in set(b.bundle) for i in st.sku_lines(sku)]
    else:
        idx = st.scope_lines(b.scope)
    mask = 0
    for i in idx:
        mask |= 1 << i
    return mask


def item_lines(st: State, b: Benefit) -> tuple[int, ...]:
    """The lines an item benefit takes its unit from (`benefits.item`)."""
    return st.sku_lines(b.sku) if b.sku else st.scope_lines(b.scope)


def line_mask(lines: Sequence[int]) -> int:
    mask = 0
    for i in lines:
        mask |= 1 << i
    return mask
