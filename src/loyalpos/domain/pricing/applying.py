"""Applying one sequence of benefits for real, every amount split over the lines,
and the points offset on what is left.

Invariants:
- the benefits come sorted in the order of application (`context.sort_key_of`:
  kind in `stacking.order`, then priority, then id) and each sees what the
  lines still cost after the ones before it (`benefits.apply` on one running
  `State`, copied from the cart after member prices);
- so what a sequence gives depends on the sequence alone, and so does what any
  prefix of it gives: a sequence starts from the state of its longest prefix
  already applied (`SearchContext.full`), and a prefix that failed makes every
  longer sequence fail the same way;
- a discount budget (`Candidate.cap`) is shared by the benefits of one
  template or promotion id in the order: each is capped by what the ones
  applied before it left (`budget_caps`), so their total never exceeds it;
- a benefit that cannot apply (below its threshold, no unit left) makes the
  whole sequence fail: such a combination is not legal, and its saving is -1;
- the points offset is worked out on what all the lines still cost in the end,
  only when every coupon of the combination allows points (`with_points`),
  within the offset's cap, step and minimum (`points_offset`).
"""

from __future__ import annotations

from collections.abc import Sequence

from loyalpos.domain.pricing import benefits
from loyalpos.domain.pricing.applied import AppliedSequence
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.candidate import Candidate, Step
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.model import PointsRequest
from loyalpos.domain.pricing.reasons import Ineligible


def apply_sequence(
    s: SearchContext, ordered: list[Candidate], steps: tuple[Step, ...]
) -> AppliedSequence:
    """Apply `ordered` from the longest prefix already applied; memoise the result.
    A prefix that failed makes the whole sequence fail the same way."""
    done = 0
    outcomes: list[benefits.Outcome] = []
    st: State | None = None
    for k in range(len(steps) - 1, 0, -1):
        prefix = s.full.get(steps[:k])
        if prefix is None:
            continue
        if prefix.failed is not None:
            s.full[steps] = prefix
            return prefix
        done, outcomes, st = k, list(prefix.outcomes), prefix.state.copy()
        break
    if st is None:
        st = s.start.copy()
    base = s.rules.stacking.threshold_base
    used = budget_caps(ordered, [o.saving for o in outcomes]) if s.options.budgets else {}
    for c in ordered[done:]:
        cap = c.cap
        if cap is not None:
            # A discount budget is shared: each coupon gets what the ones before left.
            cap -= used.get(c.benefit.id, 0)
        outcome = benefits.apply(c.benefit, st, base, cap)
        if isinstance(outcome, Ineligible):
            seq = AppliedSequence(-1, 0, st, tuple(outcomes), 0, 0, outcome, {})
            s.full[steps] = seq
            return seq
        outcomes.append(outcome)
        if cap is not None:
            used[c.benefit.id] = used.get(c.benefit.id, 0) + outcome.saving
    discount = sum(o.saving for o in outcomes)
    points, fen = points_offset(s, sum(st.amounts), ordered)
    seq = AppliedSequence(discount + fen, discount, st, tuple(outcomes), points, fen, None, {})
    s.full[steps] = seq
    return seq


def root(s: SearchContext) -> AppliedSequence:
    """The empty sequence: the cart after member prices."""
    found = s.full.get(())
    if found is None:
        found = apply_sequence(s, [], ())
    return found


def budget_caps(ordered: Sequence[Candidate], savings: Sequence[int]) -> dict[str, int]:
    """What the benefits applied so far (`savings`, in the order of `ordered`)
    took from each discount budget, by template or promotion id."""
    used: dict[str, int] = {}
    for c, saved in zip(ordered, savings, strict=False):
        if c.cap is not None:
            used[c.benefit.id] = used.get(c.benefit.id, 0) + saved
    return used


def points_allowed(combo: Sequence[Candidate]) -> bool:
    return all(c.coupon is None or c.benefit.with_points for c in combo)


def points_offset(s: SearchContext, left: int, combo: Sequence[Candidate]) -> tuple[int, int]:
    """(points, fen) of the points offset when the lines still cost `left` in
    all; per line, it is `allocate(fen, st.amounts)` (see
    `Evaluation.offset_lines`)."""
    po = s.rules.points_offset
    request = s.options.points
    if not po.enabled or request == PointsRequest.NONE or s.options.skip_all:
        return 0, 0
    if not points_allowed(combo):
        return 0, 0
    cap_fen = left * po.cap_percent // 10000
    by_cap = cap_fen * po.points_per_unit // po.unit_fen
    wanted = s.member.points if request == PointsRequest.MAX else int(request)
    points = min(wanted, s.member.points, by_cap)
    points -= points % po.step
    if points < max(po.min_points, 1):
        return 0, 0
    return points, points * po.unit_fen // po.points_per_unit


def offset_possible(s: SearchContext) -> bool:
    """Whether any combination may get a points offset (see `points_offset`)."""
    po = s.rules.points_offset
    return po.enabled and s.options.points != PointsRequest.NONE and not s.options.skip_all
