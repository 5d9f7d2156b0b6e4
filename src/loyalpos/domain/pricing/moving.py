"""Moving discounts: where a combination may save more once another benefit
joins it, and by how much at most.

Savings are not subadditive. Every benefit applied later sees a cart no
dearer, line by line and unit by unit, and saves no more on it; so a benefit
saves no more in any combination than it saves alone (its standalone saving,
`Candidate.alone`), and, as long as each benefit's discount stays on the same
lines, adding one never raises what the others save. But a unit-level benefit
chooses its units: with another benefit on its lines applied before it, it may
discount other lines, or fewer, and leave a line dearer than it did, which a
benefit applied after it on that line may then take (a 兑换券 at the item's own
price saves nothing yet moves 买2免1 to another category, where a category 代金券
saves more). So a benefit held in a combination may save more in a larger one.

Invariants the search's bound relies on (see `bounds`):
- only the benefits in `MovingDiscounts.gains` may save more in a larger
  combination than in a smaller one: those on lines that a moving discount may
  leave dearer, followed in the order of application (`_shifts`); the others
  save no more;
- each of them saves no more than alone anywhere, and no more than its
  `_growth` allows for its lines getting dearer by what the moving discounts
  save (`dearer`): `slack` is what a held combination's benefits may gain in
  all, `ceiling` what they may save at most whatever happens;
- a combination that fails may work in a larger one only when the benefit that
  fails may gain (`may_recover`): a threshold on what the lines still cost only
  if the moving discounts could cover its shortfall;
- a candidate that saves nothing alone can still raise a combination's saving
  only by taking units from under a later unit-level benefit (`movers`); the
  others leave the cart as they find it and are not searched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from loyalpos.domain.pricing import benefits
from loyalpos.domain.pricing.applying import points_offset
from loyalpos.domain.pricing.candidate import Candidate, Step
from loyalpos.domain.pricing.context import SearchContext, info, step_of
from loyalpos.domain.pricing.evaluation import Evaluation
from loyalpos.domain.pricing.lines import touched_mask
from loyalpos.domain.pricing.quick import alone_saving
from loyalpos.domain.pricing.reasons import Reason
from loyalpos.domain.pricing.rules import Benefit, Kind, ThresholdBase
from loyalpos.domain.pricing.stacking import traits_of

UNIT_LEVEL = frozenset({Kind.ITEM, Kind.BUNDLE, Kind.NTH_DISCOUNT, Kind.BUY_N_FREE})

_Key = tuple[int, int | None]  # (id(benefit), cap): coupons of one template and budget


class _Shifts(NamedTuple):
    """Where a combination may save more once another benefit joins it (see
    `_shifts`)."""

    # step (`Candidate.step`) -> (what it saves alone, its `_growth`)
    gains: dict[Step, tuple[int, tuple[int, int]]]
    # the steps whose discount may move off their lines (those that may gain too)
    moving: frozenset[Step]


_NO_SHIFTS = _Shifts({}, frozenset())


class MovingDiscounts:
    """The moving discounts of one search (`_shifts`) and what they allow the
    benefits of a combination to gain."""

    def __init__(
        self,
        s: SearchContext,
        forced: tuple[Candidate, ...],
        reps: Sequence[Candidate],
        cands: Sequence[Candidate],
    ) -> None:
        """`reps`: one candidate per template (`_shifts`); `cands`: the ranking,
        whose positions `gain_bits` numbers."""
        self.s = s
        shifts = _shifts(s, forced, reps)
        self.gains = gains = shifts.gains
        self.moving = shifts.moving
        # The candidates that may gain, as bits of the search's `held`; any forced
        # one counts always.
        self.gain_bits = 0
        if gains:
            gaining = {id(c.benefit) for c in reps if step_of(s, c) in gains}
            for j in range(len(cands)):
                if id(cands[j].benefit) in gaining:
                    self.gain_bits |= 1 << j
        self.forced_gain = any(step_of(s, c) in gains for c in forced)

    def dearer(self, e: Evaluation) -> int:
        """How much dearer, in all, the lines may get in a combination holding
        `e` than they are in `e`: what the benefits of `e` whose discount may
        move (`_Shifts.moving`) save there, at most."""
        moving = self.moving
        return sum(
            [saved for c, saved in zip(e.ordered, e.savings, strict=False) if c.step in moving]
        )

    def may_recover(self, e: Evaluation) -> bool:
        """Whether a combination that fails may work once others join: when the
        benefit that fails may gain (see `_shifts`), another one applied before
        it may move off the lines it needs, or leave its threshold reached; a
        threshold on what the lines still cost rises no more than they get dearer."""
        if e.failed is None:
            return False
        c, why = e.failed
        if c.step not in self.gains:
            return False
        base = c.benefit.threshold_base or self.s.rules.stacking.threshold_base
        if why.reason is Reason.BELOW_THRESHOLD and base is ThresholdBase.DISCOUNTED:
            shortfall = why.detail.get("shortfall_fen")
            return not isinstance(shortfall, int) or self.dearer(e) >= shortfall
        return True

    def ceiling(self, e: Evaluation) -> int:
        """What `e`'s benefits save alone, together, plus the largest points
        offset: no combination holding them saves more, whether `e` works or not."""
        gains = self.gains
        total = points_offset(self.s, sum(self.s.start.amounts), ())[1]
        for c in e.combo:
            found = gains.get(c.step)
            if found is not None:
                total += found[0]
            else:
                alone = alone_saving(self.s, c)
                total += alone if isinstance(alone, int) else 0
        return total

    def slack(self, e: Evaluation) -> int:
        """How much more than in `e` the benefits of `e` may save once others join
        (see `_shifts`): each that may gain, up to what it saves alone, and no
        more than its `_growth` allows for lines as much dearer as they may get."""
        gains = self.gains
        total = 0
        dearer = -1
        for c, saved in zip(e.ordered, e.savings, strict=False):
            found = gains.get(c.step)
            if found is None or found[0] <= saved:
                continue
            room = found[0] - saved
            per, step = found[1]
            if step:
                if dearer < 0:
                    dearer = self.dearer(e)
                room = min(room, (dearer // step + 1) * per)
            total += room
        return total


def _growth(b: Benefit, default: ThresholdBase) -> tuple[int, int]:
    """(per, step): once `b` applies, lines dearer by d in all raise what it saves
    by at most (d // step + 1) * per; step 0: by nothing known short of what it
    saves alone. An order-level benefit, its threshold met, saves a function of
    what its lines still cost that grows no faster than they do (+1 fen of
    rounding); a stepped 满减 on discounted amounts gains `amount` per step the
    amount crosses; on original amounts, a line no longer free brings its whole
    original price; a unit-level benefit may find a whole unit freed."""
    if b.kind not in benefits.ORDER_LEVEL:
        return 0, 0
    if b.kind is Kind.THRESHOLD and b.step:
        if (b.threshold_base or default) is ThresholdBase.ORIGINAL:
            return 0, 0
        return b.amount, b.step
    return 1, 1


def _shifts(s: SearchContext, forced: Sequence[Candidate], reps: Sequence[Candidate]) -> _Shifts:
    """The benefits that may save more in a combination when another joins it,
    each with what it saves alone, which bounds what it saves anywhere.

    A unit-level benefit whose lines another benefit applied before it touches
    may move its discount (see the module's docstring). Such moved lines, and
    those of any benefit that touches them later, are followed in the order of
    application: what touches them may gain. Empty when nothing can move (the
    search's quick bound holds).

    Worked out per template (and budget), by one of its coupons (`reps`; the
    forced ones count too): its coupons do not move each other's
    discounts (whichever goes first, together they take the dearest units at
    the same terms). Templates of one place in the order (kind, priority) are
    applied in the order of their coupons' ids, so each is taken to come both
    before and after the others there."""
    keyed: dict[_Key, Candidate] = {}
    unit_level = False
    for c in (*reps, *forced):
        key = (id(c.benefit), c.cap)
        if key not in keyed:
            keyed[key] = c
            unit_level = unit_level or c.benefit.kind in UNIT_LEVEL
    if len(keyed) < 2 or not unit_level:
        return _NO_SHIFTS
    by_place: dict[tuple[int, int], list[_Key]] = {}
    for key, c in keyed.items():
        by_place.setdefault(traits_of(s, c.benefit).place, []).append(key)
    before = 0  # the lines of the templates in earlier places
    moved = 0  # the lines of those whose discount may move
    moving: list[_Key] = []
    gaining: list[_Key] = []
    for place in sorted(by_place):
        keys = by_place[place]
        masks = [touched_mask(s, keyed[k].benefit) for k in keys]
        seen = twice = 0  # lines of this place's templates; of two or more of them
        for lines in masks:
            twice |= seen & lines
            seen |= lines
        here = 0  # the lines of this place's templates found moving so far
        left = list(range(len(keys)))
        changed = True
        while changed:
            changed = False
            for i in left[:]:
                lines, k = masks[i], keys[i]
                if lines & (moved | here):
                    gaining.append(k)
                elif not (keyed[k].benefit.kind in UNIT_LEVEL and lines & (before | twice)):
                    continue
                moving.append(k)
                here |= lines
                left.remove(i)
                changed = True
        moved |= here
        before |= seen
    default = s.rules.stacking.threshold_base
    is_forced = {id(c) for c in forced}
    gains: dict[Step, tuple[int, tuple[int, int]]] = {}
    for k in gaining:
        c = keyed[k]
        # An optional candidate's `alone` is known (`choose`).
        alone = alone_saving(s, c) if id(c) in is_forced else c.alone
        gains[step_of(s, c)] = (
            alone if isinstance(alone, int) else 0,
            _growth(c.benefit, default),
        )
    return _Shifts(gains, frozenset(step_of(s, keyed[k]) for k in moving))


def movers(s: SearchContext, idle: list[Candidate], pool: list[Candidate]) -> list[Candidate]:
    """Those of `idle` (which save nothing alone) that can still make a
    combination save more: a unit-level one applied before another unit-level
    benefit on its lines takes units that benefit may then not take, and so may
    move its discount elsewhere (see `_shifts`). One that saves nothing and
    takes no unit leaves the cart as it is."""
    later = [
        (info(s, c)[0], touched_mask(s, c.benefit)) for c in pool if c.benefit.kind in UNIT_LEVEL
    ]
    found = []
    for c in idle:
        if c.benefit.kind in UNIT_LEVEL:
            mine, lines = info(s, c)[0], touched_mask(s, c.benefit)
            if any(key > mine and mask & lines for key, mask in later):
                found.append(c)
    return found
