"""A combination of candidates and what applying it gives (`Evaluation`).

Invariants:
- a combination is a set: its benefits are applied sorted by
  `context.sort_key_of` whatever order it was built in, so the search extends a
  node's sorted sequence in place (`extend`, `without`) instead of sorting again;
- its saving and each benefit's own saving come from the quick evaluation
  (`quick.summary`), memoised on the sequence of steps; the split over the
  lines (`state`, `results`, `offset_lines`) is worked out only when asked
  for, which the engine does for the chosen combination only, and gives the
  same figures;
- every evaluation counts one towards the search's budget (`evaluations`) and
  its length towards its work, memoised or not, so the budget depends on what
  the search asks, not on what it remembers.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from loyalpos.domain.pricing import benefits
from loyalpos.domain.pricing.allocation import allocate
from loyalpos.domain.pricing.applied import AppliedSequence
from loyalpos.domain.pricing.applying import apply_sequence
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.candidate import Candidate, Step
from loyalpos.domain.pricing.context import SearchContext, by_sort_key, info
from loyalpos.domain.pricing.quick import summary
from loyalpos.domain.pricing.reasons import Ineligible

# (-saving, the coupons' sorted expiries, how many coupons, every sorted key)
Rank = tuple[int, tuple[datetime, ...], int, tuple[str, ...]]


@dataclass(slots=True)
class Evaluation:
    """A combination and what applying it gives. The saving and the outcome of
    each benefit come from the quick evaluation (`quick.summary`); the lines'
    amounts and each benefit's split over the lines (`state`, `results`) are
    worked out when first asked for, which the engine does for the chosen
    combination only."""

    combo: tuple[Candidate, ...]
    saving: int
    discount: int
    points: int
    offset: int
    failed: tuple[Candidate, Ineligible] | None
    ordered: list[Candidate] = field(repr=False, compare=False)
    savings: tuple[int, ...] = field(repr=False, compare=False)
    search: SearchContext = field(repr=False, compare=False)
    steps: tuple[Step, ...] = field(repr=False, compare=False)
    keys: list[tuple[int, int, str]] = field(repr=False, compare=False)  # of `ordered`
    spread: list[int] | None = field(default=None, repr=False, compare=False)
    ranking: Rank | None = field(default=None, repr=False, compare=False)
    full: AppliedSequence | None = field(default=None, repr=False, compare=False)

    def _materialised(self) -> AppliedSequence:
        if self.full is None:
            steps = self.steps
            self.full = self.search.full.get(steps) or apply_sequence(
                self.search, self.ordered, steps
            )
        return self.full

    @property
    def state(self) -> State:
        """The cart after the combination (up to a benefit that failed)."""
        return self._materialised().state

    @property
    def results(self) -> list[tuple[Candidate, benefits.Outcome]]:
        """Each benefit applied and its outcome, split over the lines."""
        return list(zip(self.ordered, self._materialised().outcomes, strict=False))

    @property
    def own(self) -> list[tuple[Candidate, int]]:
        """Each benefit applied and what it saved, without the split."""
        return list(zip(self.ordered, self.savings, strict=False))

    @property
    def offset_lines(self) -> list[int]:
        """The points offset per line; worked out for the chosen combination only.
        Empty when the combination failed."""
        if self.spread is None:
            self.spread = [] if self.failed else allocate(self.offset, self.state.amounts)
        return self.spread


def evaluate(s: SearchContext, combo: tuple[Candidate, ...]) -> Evaluation:
    """Apply `combo` in the documented order to a copy of the starting state.

    The work depends only on the sequence of benefits applied, so it is done once
    per sequence (`s.memo`) and handed to each combination that yields it; the
    split over the lines waits until someone asks (`Evaluation.state`)."""
    s.evaluations += 1
    serial = s.serial
    for c in combo:
        if c.keyed != serial or c.owner != serial:
            info(s, c)
    ordered = sorted(combo, key=by_sort_key) if len(combo) > 1 else list(combo)
    return _evaluation(
        s, combo, ordered, tuple([c.step for c in ordered]), [c.sort_key for c in ordered]
    )


def extend(s: SearchContext, e: Evaluation, c: Candidate) -> Evaluation:
    """`evaluate(s, (*e.combo, c))`, placing `c` among the sorted benefits of `e`."""
    s.evaluations += 1
    if c.keyed != s.serial or c.owner != s.serial:
        info(s, c)
    key, step = c.sort_key, c.step
    at = bisect_right(e.keys, key)
    ordered = e.ordered[:at]
    ordered.append(c)
    ordered += e.ordered[at:]
    keys = e.keys[:at]
    keys.append(key)
    keys += e.keys[at:]
    return _evaluation(s, (*e.combo, c), ordered, (*e.steps[:at], step, *e.steps[at:]), keys)


def without(s: SearchContext, e: Evaluation, c: Candidate) -> Evaluation:
    """`evaluate(s, combo)` for `e`'s combination without `c`, from its sorted
    benefits."""
    rest = tuple([x for x in e.combo if x is not c])
    if len(rest) != len(e.combo) - 1:
        return evaluate(s, rest)  # `c` more than once
    s.evaluations += 1
    at = next(k for k, x in enumerate(e.ordered) if x is c)
    return _evaluation(
        s,
        rest,
        e.ordered[:at] + e.ordered[at + 1 :],
        e.steps[:at] + e.steps[at + 1 :],
        e.keys[:at] + e.keys[at + 1 :],
    )


def _evaluation(
    s: SearchContext,
    combo: tuple[Candidate, ...],
    ordered: list[Candidate],
    steps: tuple[Step, ...],
    keys: list[tuple[int, int, str]],
) -> Evaluation:
    s.work += len(steps)
    seq = s.memo.get(steps)
    if seq is None:
        seq = summary(s, ordered, steps)
    failed = None if seq.failed is None else (ordered[len(seq.savings)], seq.failed)
    return Evaluation(
        combo,
        seq.saving,
        seq.discount,
        seq.points,
        seq.offset,
        failed,
        ordered,
        seq.savings,
        s,
        steps,
        keys,
    )
