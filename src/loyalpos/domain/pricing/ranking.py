"""The ranking: the optional candidates of one search in the order the search
takes them, and the pieces that reason about them.

Invariant: candidates are ranked best standalone saving first, then earliest
expiry, then key (`by_saving`). The bounds rely on the first part (the best
coupons from a position on are the next ones, `bounds`), the tie rule on all
of it (the search's first path takes the best savings, then the rank's own
tie-breaks, `ties`), and dominance on the last two (the members of a class
come in the rank's order, so an earlier member is decided before a later one
is taken, `dominance`). Positions in the ranking number the candidates in bit
masks (`held`, `dead`, the dominance rule's blockers).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from loyalpos.domain.pricing.bounds import Bounds, Units
from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.dominance import Classes, Constraint, Dominance
from loyalpos.domain.pricing.moving import MovingDiscounts
from loyalpos.domain.pricing.ranked import Ranked
from loyalpos.domain.pricing.stacking import traits_of
from loyalpos.domain.pricing.ties import TieBreak


class Ranking(Ranked):
    """The ranked candidates (`Ranked`) with the pieces that reason about them:
    the bound (`bounds`), the promotions that run out of units (`units`), the
    classes and the dominance rule (`classes`, `dominance`), the tie rule
    (`ties`) and the moving discounts (`moving`)."""

    def __init__(
        self, s: SearchContext, forced: tuple[Candidate, ...], optional: list[Candidate]
    ) -> None:
        super().__init__(s, forced, optional)
        # `moving` looks at templates, not classes: the first candidate of each.
        reps = [c for c, _ in self.firsts.values()]
        self.classes = Classes(s, self, self.firsts, self.allowed_by_template)
        self.moving = MovingDiscounts(s, forced, reps, self.cands)
        self.bounds = Bounds(s, self)
        self.dominance = Dominance(s, self, self.classes)
        self.units = Units(s, self)
        self.ties = TieBreak(self, self.bounds)

    def joins(self, combo: Sequence[Candidate], j: int, coupons: int, mine: int) -> bool:
        """`stacking.fits(s, combo, cands[j]) is None`, without building the
        reason; `coupons` is how many coupons `combo` holds, `mine` the union of
        their `Traits.mine` (j conflicts with one of them exactly when with the
        union)."""
        if self.traits[j].against & mine:
            return False
        if self.is_coupon[j]:
            if coupons >= self.max_coupons:
                return False
            if self.allowed[j] < self.max_coupons:  # else `coupons` already tells
                tid = self.cands[j].benefit.id
                same = sum(1 for x in combo if x.coupon is not None and x.benefit.id == tid)
                if same >= self.allowed[j]:
                    return False
        return True

    def mine(self, combo: Sequence[Candidate]) -> int:
        """The union of the `Traits.mine` of `combo`'s benefits."""
        found = 0
        for c in combo:
            found |= traits_of(self.s, c.benefit).mine
        return found

    def steps(self, i: int, coupons_left: int, pending: tuple[Constraint, ...]) -> Sequence[int]:
        """The candidates from `i` on that might join: only promotions once the
        coupon slots are used; with one slot left and requirements that only a
        coupon can meet, the coupons that meet them all, and promotions."""
        if coupons_left <= 0:
            return self.promotions[bisect_left(self.promotions, i) :]
        if pending and coupons_left == 1 and all(k.last_promotion < i for k in pending):
            meet = frozenset.intersection(*(k.satisfiers for k in pending))
            return sorted(
                {x for x in meet if x >= i}.union(
                    self.promotions[bisect_left(self.promotions, i) :]
                )
            )
        return range(i, self.n)
