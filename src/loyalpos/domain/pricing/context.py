"""What one quote's search works with and remembers (`SearchContext`), and how
its candidates are numbered.

Invariants:
- an evaluation depends only on the benefits applied, in their order of
  application, with their budget caps and whether a coupon brings each (which
  decides points offset). A `Step` names exactly that, so the sequence of
  steps is the key of the memo tables (`memo`, `full`, `alone`): wallets repeat
  templates, and the search, irreducibility and the explanations ask for the
  same sequences again;
- benefits, scopes and line tuples are named by id() in the tables; each entry
  (or `kept`, or the starting state) keeps its object alive, so that the id()
  cannot name another object within the search;
- a candidate's number and sort key are kept on the candidate, marked with the
  search's `serial`, so the hot paths read them without a lookup (`info`);
- the work is counted (`evaluations`, `work`), never timed, so that equal
  inputs give equal quotes (see `search`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from loyalpos.domain.pricing.applied import AppliedSequence, Summary
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.candidate import Candidate, Step
from loyalpos.domain.pricing.model import MemberContext, Options
from loyalpos.domain.pricing.reasons import Ineligible
from loyalpos.domain.pricing.rules import Benefit, RuleSet, Scope
from loyalpos.domain.pricing.stacking import Traits, rules_traits, traits_of

_serials = itertools.count()


@dataclass
class SearchContext:
    rules: RuleSet
    member: MemberContext
    options: Options
    start: State
    order: dict[str, int]
    # id(benefit) -> its `Traits`, shared by the searches under one rule set,
    # and `stacking._pricing` -> the first benefit seen with it (see `Traits.twin`)
    traits: dict[int, Traits] = field(init=False)
    twins: dict[tuple[object, ...], Benefit] = field(init=False)
    # A number of its own, which marks the candidates whose `sort_key` and
    # `step` it gave (`info`), and the candidates that keep their benefits alive.
    serial: int = field(init=False)
    kept: list[Candidate] = field(default_factory=list)
    # (id(benefit), cap, coupon?) -> its step; `kept` keeps every such benefit
    # alive (through its candidate), so that its id() is not reused
    step_ids: dict[tuple[int, int | None, bool], Step] = field(default_factory=dict)
    evaluations: int = 0
    # Work, in steps: a candidate the search looks at, and each benefit of each
    # combination evaluated (a long combination costs more to evaluate).
    work: int = 0
    # The search stops once `evaluations` reaches `budget_end` or `work` reaches
    # `work_end` (see `search`); `complete` says whether it had to.
    budget_end: int = -1
    work_end: int = -1
    complete: bool = True
    # Quick evaluations (`quick.summary`) and materialised ones
    # (`applying.apply_sequence`), by the sequence of steps.
    memo: dict[tuple[Step, ...], Summary] = field(default_factory=dict)
    full: dict[tuple[Step, ...], AppliedSequence] = field(default_factory=dict)
    # id(benefit) -> (the benefit, the lines it touches as a bit mask)
    touch: dict[int, tuple[Benefit, int]] = field(default_factory=dict)
    # id(scope) -> (the scope, its lines in the cart as a bit mask)
    scope_masks: dict[int, tuple[Scope, tuple[int, ...], int]] = field(default_factory=dict)
    # id(a tuple of line indexes from `State.scope_lines`, which keeps it) -> bit mask
    line_masks: dict[int, int] = field(default_factory=dict)
    # What each benefit saves on its own, or why it cannot apply (see
    # `quick.alone_saving`).
    alone: dict[Step, int | Ineligible] = field(default_factory=dict)
    reasons: dict[tuple[str | int, ...], Ineligible] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.traits, self.twins = rules_traits(self.rules)
        self.serial = next(_serials)


def steps_of(s: SearchContext, ordered: Sequence[Candidate]) -> tuple[Step, ...]:
    serial = s.serial
    for c in ordered:
        if c.owner != serial:
            step_of(s, c)
    return tuple([c.step for c in ordered])


def sort_key_of(s: SearchContext, c: Candidate) -> tuple[int, int, str]:
    """Where `c` is applied: (position of its kind in `stacking.order`,
    -priority, its key)."""
    return info(s, c)[0]


def info(s: SearchContext, c: Candidate) -> tuple[tuple[int, int, str], Step]:
    """(its `sort_key_of`, its step), once per candidate and search: kept on the
    candidate (`sort_key`, `step`), marked with the search's `serial` (`keyed`,
    `owner`), so the hot paths read them directly. Only the candidates that are
    evaluated in a combination need a sort key (a tuple the collector tracks)."""
    if c.keyed != s.serial:
        place = traits_of(s, c.benefit).place
        c.sort_key = (place[0], place[1], c.key)
        c.keyed = s.serial
    return c.sort_key, step_of(s, c)


def step_of(s: SearchContext, c: Candidate) -> Step:
    """Its step: see `Step`."""
    if c.owner != s.serial:
        what = (id(c.benefit), c.cap, c.coupon is not None)
        step = s.step_ids.get(what)
        if step is None:
            step = s.step_ids[what] = len(s.step_ids)
            s.kept.append(c)  # keeps the benefit, whose id() names the step, alive
        c.step = step
        c.owner = s.serial
    return c.step


def place_of(s: SearchContext, c: Candidate) -> tuple[int, int]:
    """`sort_key_of` without the id: benefits in one place are applied by id."""
    return traits_of(s, c.benefit).place


def by_sort_key(c: Candidate) -> tuple[int, int, str]:
    return c.sort_key
