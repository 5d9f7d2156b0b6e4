"""The search's bound: the most any combination a branch can still become may
save.

A node of the search holds a combination C and may add candidates from a
position i of the ranking on (best standalone saving first). Its bound is
`node_floor(C)` plus what those candidates save alone, within the coupon limit.
It is valid, moving discounts included, because:
- no benefit saves more in any combination than alone (see `moving`), so the
  candidates added save at most their standalone savings: every promotion
  from i on plus the `coupons_left` best coupons from i on, which, the ranking
  being by standalone saving, are the next ones (`Bounds.row`: a table per
  number of coupons left, so a look-up is O(1));
- C's own benefits may save more in a larger combination only through moving
  discounts, by at most `MovingDiscounts.slack`; a combination that failed may
  recover only as `moving.may_recover` says, and its benefits then save at most
  their standalone savings and the offset at most the largest one
  (`MovingDiscounts.ceiling`), which is then its floor;
- the points offset grows only with what is left to pay. Added benefits lower
  that; a benefit that lowers another's discount by L raises it by L, and the
  offset then by its share of L (never more than L) plus at most a step (or
  the minimum) and rounding (`offset_slack`), added to the floor when C may
  take points at all (a coupon without points keeps them out of every larger
  combination too);
- no combination saves more than the cart costs after member prices
  (`Bounds.most`): no line goes below 0, and the offset is paid out of what is
  left, unless its cap is above 100%.

Tighter bounds, each only leaving out candidates that cannot join, so each
stays an upper bound:
- `Bounds.compatible_bound` counts only the candidates the stacking rules let
  join the node: conflicts only grow as a combination grows;
- `Units`: a promotion that needs free units (`buy_n_free`, `item`) fails once
  item and bundle benefits applied before it have taken so many units from its
  lines (each takes one per sku it names, or fails) that fewer than it needs
  are left, so it neither joins nor counts (`dead`);
- `Bounds.bound_with`: a dominance requirement that only a coupon can meet
  (`dominance.Constraint`) takes one of the coupon slots, since a combination
  that leaves it unmet does not compete.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

from loyalpos.domain.pricing.applying import offset_possible, points_allowed
from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.context import SearchContext, sort_key_of
from loyalpos.domain.pricing.dominance import Constraint
from loyalpos.domain.pricing.evaluation import Evaluation
from loyalpos.domain.pricing.lines import item_lines, line_mask
from loyalpos.domain.pricing.moving import MovingDiscounts
from loyalpos.domain.pricing.ranked import Ranked
from loyalpos.domain.pricing.rules import Kind


def offset_slack(s: SearchContext) -> int:
    """How much more points offset a combination may get than one it holds, in
    fen. Adding a benefit can lower the discount (a 每满减 measured after it
    drops a step; a unit it takes makes 买N免1 free less); more is then left to
    pay, and the offset, which moves in steps and starts at a minimum, may grow
    by a step or the minimum at once, plus rounding, on top of its share of what
    the discount lost (never more than the loss itself)."""
    if not offset_possible(s):
        return 0
    po = s.rules.points_offset
    step = max(po.step, po.min_points, 1)
    return -(-step * po.unit_fen // po.points_per_unit) - (-po.unit_fen // po.points_per_unit) + 1


def node_floor(moving: MovingDiscounts, slack: int, current: Evaluation, held: int) -> int:
    """What a combination holding `current` (the ranked candidates at the bits
    of `held`) may save at most besides what the candidates it adds save alone;
    `slack` is the search's `offset_slack`."""
    if current.failed is not None:
        return moving.ceiling(current)  # see `MovingDiscounts.may_recover`
    floor = max(current.saving, 0)
    if slack and points_allowed(current.combo):
        floor += slack  # (a coupon without points keeps them out below too)
    if held & moving.gain_bits or moving.forced_gain:
        floor += moving.slack(current)
    return floor


class Bounds:
    """What the candidates from a position of the ranking on may add at most."""

    def __init__(self, s: SearchContext, r: Ranked) -> None:
        is_coupon, savings = r.is_coupon, r.savings
        self.is_coupon, self.savings = is_coupon, savings
        self.n, self.traits, self.promotions = r.n, r.traits, r.promotions
        # bound(i, k): every promotion from i on, plus the k best coupons from i on,
        # which, the ranking being by saving, are the next k.
        promotions = [
            0 if coupon else saving for coupon, saving in zip(is_coupon, savings, strict=True)
        ]
        self.promotions_from = list(accumulate(reversed(promotions), initial=0))[::-1]
        self.bounds: dict[int, list[int]] = {}  # coupons left -> `bound(i, ...)` by i
        self.coupon_sums = list(
            accumulate(
                [x for x, coupon in zip(savings, is_coupon, strict=True) if coupon], initial=0
            )
        )
        # How many coupons come before each position (and all of them, at n).
        self.coupons_to = list(accumulate(is_coupon, initial=0))
        self.coupons_before = self.coupons_to[:-1]
        # No combination saves more than the cart costs after member prices: no
        # line goes below 0, and the offset is paid out of what is left (unless
        # its cap is above 100%). -1: no such limit.
        cap_percent = s.rules.points_offset.cap_percent
        self.most = sum(s.start.amounts) if cap_percent <= 10000 or not offset_possible(s) else -1

    def bound(self, i: int, coupons_left: int) -> int:
        """Every promotion from i on, plus the `coupons_left` best coupons from i on
        (the next ones, the ranking being by saving); a table per `coupons_left`."""
        return self.row(coupons_left)[i]

    def row(self, coupons_left: int) -> list[int]:
        """`bound(i, coupons_left)` for every i."""
        row = self.bounds.get(coupons_left)
        if row is None:
            sums, top, k = self.coupon_sums, len(self.coupon_sums) - 1, max(coupons_left, 0)
            # `sums[min(top, first + k)]` without the `min`: the total repeated k times.
            padded = sums + [sums[top]] * k
            row = self.bounds[coupons_left] = [
                promotions + padded[first + k] - sums[first]
                for promotions, first in zip(
                    self.promotions_from, [*self.coupons_before, top], strict=True
                )
            ]
        return row

    def bound_at(self, j: int, coupons: int) -> int:
        """`bound(j, coupons)` (j up to n) without building its table."""
        sums, first = self.coupon_sums, self.coupons_to[j]
        return self.promotions_from[j] + sums[min(len(sums) - 1, first + coupons)] - sums[first]

    def compatible_bound(self, i: int, coupons_left: int, mine: int, dead: int) -> int:
        """`bound(i, coupons_left)` counting only the candidates that the stacking
        rules let join a combination whose `Traits.mine` union is `mine` (and no
        promotion at the bits of `dead`): what the ones that may join save alone
        still bounds what they add. Looks at a few coupons past the first
        incompatible one at most, then counts the best of the rest as `bound` does."""
        traits, savings, is_coupon = self.traits, self.savings, self.is_coupon
        total = 0
        k = coupons_left
        x = i
        end = min(self.n, i + 24)
        while k > 0 and x < end:
            if is_coupon[x] and not traits[x].against & mine:
                total += savings[x]
                k -= 1
            x += 1
        if k > 0 and x < self.n:
            sums, first = self.coupon_sums, self.coupons_before[x]
            total += sums[min(len(sums) - 1, first + k)] - sums[first]
        for x in self.promotions:
            if x >= i and not dead >> x & 1 and not traits[x].against & mine:
                total += savings[x]
        return total

    def bound_with(self, pending: tuple[Constraint, ...], i: int, coupons_left: int) -> int:
        """`bound(i, coupons_left)`, knowing that a requirement that only a coupon
        can meet takes one of the slots: the best coupon that meets it from i on,
        plus the best others. Never more than `bound`, and as it, never larger
        further on."""
        limit = self.bound(i, coupons_left)
        if coupons_left <= 0:
            return limit
        for k in pending:
            if k.last_promotion >= i:
                continue  # a promotion may meet it, taking no slot
            at = bisect_left(k.ordered, i)
            if at == len(k.ordered):
                continue  # cannot be met: `feasible` says so
            meet = self.savings[k.ordered[at]]
            limit = min(limit, self.bound(i, coupons_left - 1) + meet)
        return limit


class Units:
    """The promotions of the ranking that need free units, and those that can no
    longer find enough in a combination (see the module's docstring)."""

    def __init__(self, s: SearchContext, r: Ranked) -> None:
        self.s, self.cands, self.savings, self.promotions = s, r.cands, r.savings, r.promotions
        # Promotions that need free units (`buy_n_free`, `item`): the lines they
        # take units from as a bit mask, how many units those lines hold, and how
        # many of them must be free (see `takes`).
        self.limited: list[tuple[int, int, int, int]] = []  # (index, mask, units, need)
        for j in self.promotions:
            b = self.cands[j].benefit
            if b.kind is Kind.BUY_N_FREE:
                lines, need = s.start.scope_lines(b.scope), b.n
            elif b.kind is Kind.ITEM:
                lines, need = item_lines(s.start, b), 1
            else:
                continue
            qty = s.start.lines
            units = sum([qty[i].qty for i in lines])
            self.limited.append((j, line_mask(lines), units, need))
        self.taking: dict[int, tuple[tuple[int, int], ...]] = {}  # id(candidate) -> `takes`

    def takes(self, c: Candidate) -> tuple[tuple[int, int], ...]:
        """(k, units): `c` surely takes `units` units from the lines of
        `limited[k]` before that promotion is applied, when both are in a
        combination. An item or bundle benefit takes one unit of each sku it names
        (its lines, or the sku's, all lie among the promotion's) or fails; units
        once taken stay taken; so a promotion whose lines keep fewer units than it
        needs cannot join a combination that holds such benefits (`dead`)."""
        found = self.taking.get(id(c))
        if found is None:
            found = ()
            b = c.benefit
            if self.limited and b.kind in (Kind.ITEM, Kind.BUNDLE):
                st = self.s.start
                if b.kind is Kind.ITEM:
                    parts = [line_mask(item_lines(st, b))]
                else:
                    parts = [line_mask(st.sku_lines(sku)) for sku in b.bundle]
                key = sort_key_of(self.s, c)
                hits = []
                for k, (j, mask, _, _) in enumerate(self.limited):
                    if not key < sort_key_of(self.s, self.cands[j]):
                        continue  # applied after the promotion (or in an unknown order)
                    units = sum(1 for m in parts if m and not m & ~mask)
                    if units:
                        hits.append((k, units))
                found = tuple(hits)
            self.taking[id(c)] = found  # `c` is one of `cands` or forced: kept alive
        return found

    def dead(self, used: tuple[int, ...], c: Candidate, dead: int) -> tuple[tuple[int, ...], int]:
        """`used` (units taken from each `limited` promotion's lines) and `dead`
        (the bits of the promotions that can no longer join) once `c` joins."""
        hits = self.takes(c)
        if not hits:
            return used, dead
        now = list(used) if used else [0] * len(self.limited)
        for k, units in hits:
            now[k] += units
            j, _, total, need = self.limited[k]
            if total - now[k] < need:
                dead |= 1 << j
        return tuple(now), dead

    def dead_saving(self, dead: int, i: int) -> int:
        """What the promotions at the bits of `dead` from i on would add to `bound`."""
        total = 0
        for j in self.promotions:
            if j >= i and dead >> j & 1:
                total += self.savings[j]
        return total
