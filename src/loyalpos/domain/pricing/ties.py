"""The rank of a combination, and the tie rule: cutting branches that can at
most tie the best saving and cannot win the tie-breaks.

The rank (`rank`, smaller is better): higher saving; then the coupons' expiry
dates, sorted, compared in turn (earlier first, no expiry counts as last);
then fewer coupons; then the sorted keys (coupon ids, `promotion:<id>`). With
unique keys it is a total order on combinations, so the winner does not
depend on the order of the wallet or of the search.

Invariants of the tie rule (`TieBreak.outranked`):
- it is used only where the search's bound says that a branch saves at most
  the best saving, and only if the candidates it still takes make up the
  saving it lacks (`short`); it answers whether nothing the branch can become
  ranks above the best, from lower bounds on the expiries and keys any such
  combination can have. The conditions it leaves out (stacking, limits,
  dominance) only remove combinations, so each bound stays a lower bound and a
  cut loses no winner;
- it only gets truer further along the ranking (fewer candidates are left
  from a later position), so the search finds by bisection, once per node and
  best, the position from which every branch is cut (`cut`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import neg
from typing import Any, Protocol

from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.evaluation import Evaluation, Rank
from loyalpos.domain.pricing.ranked import Ranked


class BoundsOf(Protocol):
    """What the tie rule reads of the search's bound (`bounds.Bounds`): how many
    coupons stand before each position, and the bound from a position on."""

    coupons_to: list[int]

    def bound_at(self, j: int, coupons: int) -> int: ...


# `TieBreak.outranked`: how many promotions' keys it keeps per position, and
# what stands for no coupon's key (after every key: the last code point).
_PROMOTION_KEYS = 16
_NO_KEY = "\U0010ffff"


def rank(e: Evaluation) -> Rank:
    if e.ranking is None:
        coupons = [c for c in e.combo if c.coupon is not None]
        e.ranking = (
            -e.saving,
            tuple(sorted(c.expires for c in coupons)),
            len(coupons),
            tuple(sorted(c.key for c in e.combo)),
        )
    return e.ranking


class _Smallest:
    """From each position j of the ranking on, the `size` smallest values of the
    candidates at `positions` (ascending) from j on, sorted (`value` gives each
    one's); worked out from the end back to the positions asked for only."""

    def __init__(self, positions: list[int], size: int, value: Callable[[int], Any]) -> None:
        self.positions, self.size, self.value = positions, size, value
        self.next = len(positions) - 1  # the next position to take in
        self.found: list[Any] = []
        self.marks: list[int] = []  # minus the positions taken in, ascending
        self.lists: list[list[Any]] = []  # `found` once each was taken in

    def at(self, j: int) -> list[Any]:
        positions, size = self.positions, self.size
        if size <= 0:
            return []  # no room left: the zero smallest (found[-1] would not exist)
        found = self.found
        while self.next >= 0 and positions[self.next] >= j:
            at = positions[self.next]
            value = self.value(at)
            if len(found) < size or value < found[-1]:
                found = found.copy()
                insort(found, value)
                del found[size:]
            self.marks.append(-at)
            self.lists.append(found)
            self.next -= 1
        self.found = found
        k = bisect_right(self.marks, -j)  # how many taken in lie at j or after
        return self.lists[k - 1] if k else []


class TieBreak:
    """The tie rule over one search's ranking; tables built when first needed."""

    def __init__(self, r: Ranked, bounds: BoundsOf) -> None:
        self.cands, self.keys, self.n = r.cands, r.keys, r.n
        self.is_coupon, self.savings, self.promotions = r.is_coupon, r.savings, r.promotions
        self.max_coupons = r.max_coupons
        self.coupons_to = bounds.coupons_to
        self.bound_at = bounds.bound_at
        self.coupon_positions: list[int] | None = None
        self.earliest: _Smallest | None = None
        self.coupon_keys: _Smallest | None = None
        self.promotion_keys: _Smallest | None = None
        self.least: list[list[str]] = []

    def lost(
        self, best: Evaluation, current: Evaluation, c: Candidate, j: int, floor: int, left: int
    ) -> bool:
        """With the best saving only tied at most, whether `current` with `c` (at
        j) and what may follow cannot win the tie-breaks."""
        ranked = rank(current)
        expiries, keys = ranked[1], ranked[3]
        if c.coupon is not None:
            expiries = tuple(sorted((*expiries, c.expires)))
        keys = tuple(sorted((*keys, c.key)))
        short = best.saving - floor - self.savings[j]
        return self.outranked(rank(best), expiries, keys, j + 1, short, left, False)

    def cut(
        self,
        best: Evaluation,
        current: Evaluation,
        order: Sequence[int],
        start: int,
        short: int,
        coupons_left: int,
    ) -> int:
        """The first index of `order` from `start` on from which a child of
        `current` can no longer outrank `best` (`len(order)` if none), by
        bisection: `outranked` only gets truer further on."""
        ranked, ranking = rank(current), rank(best)
        lo, hi = start, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.outranked(ranking, ranked[1], ranked[3], order[mid], short, coupons_left, True):
                hi = mid
            else:
                lo = mid + 1
        return lo  # (the outcome at `lo` was True, unless past the end)

    def outranked(
        self,
        best: Rank,
        expiries: tuple[datetime, ...],
        keys: tuple[str, ...],
        j: int,
        short: int,
        coupons_left: int,
        add: bool,
    ) -> bool:
        """Whether no combination made of a part and candidates from j on ranks
        above `best` while saving as much. The search's bound says that such a
        combination saves at most `best`'s saving, and only if the candidates it
        takes from j on save `short` or more alone, together. `expiries` and
        `keys` are the part's coupons' expiries and all its keys, sorted (as in
        `rank`); `add`: at least one candidate from j on must join (the part
        itself was ranked already); `coupons_left`: how many coupons may join.

        On a tie the rank compares the sorted expiries, then the sorted keys
        (equal expiries mean as many coupons). A sorted tuple U grows by q given
        elements at the least with the q smallest on offer; and adding the next
        smallest, e, lowers U while e < max(U), and raises it once e >= max(U)
        (U then grows by a tail). So:
        - no combination has expiries below those of the part with the q
          earliest coupons from j on: q as many as expire before the part's
          last, but no fewer than the coupons needed to make up `short` (all
          promotions from j on helping) and no more than may join;
        - if that equals `best`'s expiries, those that tie on them take exactly
          as many coupons as make up the difference, a; no such combination has
          keys below those of the part with the a smallest keys of the coupons
          from j on that could be among them (each must save at least what the
          other a - 1 at best leave of `short`) and the keys of every promotion
          from j on that comes before the largest of these (the smallest one
          anyway, if one must join and none does).
        The conditions left out (stacking, limits, dominance) only remove
        combinations, so each bound stays a lower bound."""
        bound_at = self.bound_at
        need = 0  # the fewest coupons from j on that can make up `short`
        while bound_at(j, need) < short:
            need += 1
            if need > coupons_left:
                return True
        if self.earliest is None:
            cands = self.cands
            self.earliest = _Smallest(
                self._coupon_positions(), self.max_coupons, lambda x: cands[x].expires
            )
        early = self.earliest.at(j)
        if add and not need and bisect_left(self.promotions, j) == len(self.promotions):
            need = 1  # no promotion left: one coupon at least
        if need > min(coupons_left, len(early)):
            return True
        fewer = bisect_left(early, expiries[-1]) if expiries else 0
        q = min(max(need, fewer), coupons_left, len(early))
        lowest = tuple(sorted((*expiries, *early[:q])))
        if lowest != best[1]:
            return lowest > best[1]
        # The same expiries as `best`: exactly `a` more coupons.
        a = len(best[1]) - len(expiries)
        added: list[str] = []
        if a:
            # Each of them saves at least this: they lie from j to `end` (the
            # ranking is by saving, best first).
            floor = short - bound_at(j, a - 1)
            end = max(j, bisect_right(self.savings, -floor, key=neg))
            if self.coupons_to[end] - self.coupons_to[j] < a:
                return True
            # The smallest key there, then no less than the smallest from j on.
            first = self._least_key(j, end)
            added = [first]
            if a > 1:
                if self.coupon_keys is None:
                    self.coupon_keys = _Smallest(
                        self._coupon_positions(), self.max_coupons, self.keys.__getitem__
                    )
                added += [max(first, k) for k in self.coupon_keys.at(j)[1:a]]
        if self.promotion_keys is None:
            self.promotion_keys = _Smallest(self.promotions, _PROMOTION_KEYS, self.keys.__getitem__)
        promotion_keys = self.promotion_keys.at(j)
        part = sorted((*keys, *added))
        if part:
            fewer = bisect_left(promotion_keys, part[-1])
            if fewer == len(promotion_keys) == _PROMOTION_KEYS:
                return False  # more promotions from j on may come first: not known
            added = promotion_keys[:fewer]
        if add and not a and not added:
            if not promotion_keys:
                return True
            added = promotion_keys[:1]
        return tuple(sorted((*part, *added))) >= best[3]

    def _coupon_positions(self) -> list[int]:
        if self.coupon_positions is None:
            self.coupon_positions = [x for x in range(self.n) if self.is_coupon[x]]
        return self.coupon_positions

    def _least_key(self, start: int, end: int) -> str:
        """The least key of the coupons from `start` to `end` (one at least):
        looked through when they are few, else from a table where level g holds
        the least coupon key from each j to j + 2**g (built when first needed)."""
        keys, is_coupon = self.keys, self.is_coupon
        if end - start <= 64:
            return min([keys[x] for x in range(start, end) if is_coupon[x]])
        if not self.least:
            level = [keys[x] if is_coupon[x] else _NO_KEY for x in range(self.n)]
            self.least = [level]
            width = 1
            while 2 * width <= self.n:
                level = [min(level[x], level[x + width]) for x in range(self.n - 2 * width + 1)]
                self.least.append(level)
                width *= 2
        g = (end - start).bit_length() - 1
        level = self.least[g]
        return min(level[start], level[end - (1 << g)])
