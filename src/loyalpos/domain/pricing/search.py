"""The search for the best legal combination: depth-first branch and bound over
the ranking (`ranking`), exact unless it reaches its work budget.

A node holds a combination and takes the candidates from a position on, in
ranking order; each child adds one. What is passed over, and why no winner is
lost (the winner is the best irreducible combination by `ties.rank`):
- a node's remaining candidates once `node_floor + bound` falls below the best
  saving found (`bounds`: the bound is valid with moving discounts, and never
  grows further along the ranking), and a child whose own bound does;
- a node's remaining candidates once the bound can at most tie the best saving
  (or the best saves what the cart costs, which nothing exceeds) and the tie
  rule says nothing they can become outranks the best (`ties`), and a child
  for which it says so;
- candidates that cannot join: stacking conflicts and coupon limits
  (`Ranking.joins`; with them the rest of a run of one class, whose members
  have the same traits and template limits), coupons once the slots are used
  and, with one slot left, coupons that do not meet every pending dominance
  requirement that only a coupon can meet (`Ranking.steps`), promotions that
  would run out of units (`bounds.Units`);
- dominated combinations (`dominance`): a candidate is not taken where the
  requirements it leaves can no longer be met, and a combination with a
  requirement still unmet never becomes the best; a combination that
  dominates them is visited instead;
- a child that fails (saving -1) unless a moving discount may make it work
  later (`moving`).

Only irreducible combinations compete. Irreducibility is checked once, on the
winner, not on every improvement: the best of all visited combinations ranks
above every other one (each pruned branch ranks below a best found before it;
each dominated combination below the one that dominates it), so, if
irreducible, it is the best irreducible one. Otherwise (a coupon that adds
nothing would win on expiry) the search runs again checking every step.

The budget: the search counts evaluations and work (candidates looked at, and
the length of each combination evaluated), never time, so that equal inputs
give equal quotes. After `SEARCH_BUDGET` evaluations or `SEARCH_WORK` steps of
work it stops where it is, says so (`SearchContext.complete`), and returns the
best found so far, still legal and irreducible (`_polish`, `_reduce`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from loyalpos.domain.pricing.applying import offset_possible
from loyalpos.domain.pricing.bounds import node_floor, offset_slack
from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.dominance import Constraint, feasible
from loyalpos.domain.pricing.evaluation import Evaluation, evaluate, extend, without
from loyalpos.domain.pricing.lines import touched_mask
from loyalpos.domain.pricing.ranking import Ranking
from loyalpos.domain.pricing.stacking import fits
from loyalpos.domain.pricing.ties import rank

# What one search may do, counted from its start (both passes of `search`,
# `irreducible` included), each about a hundred times what a usual quote takes
# (bench/bench_quote.py: 10-300 evaluations, 3-1,100 steps of work). Counts, not
# a time, so that equal inputs always give equal quotes. Evaluations
# (`SearchContext.evaluations`), and work (`SearchContext.work`), which follows
# the time when combinations are long or candidates many: a step costs 1-20
# microseconds (the most with unit-level promotions on a 500-line cart).
# Measured at the limits: under a second for the wallets and rule sets tried,
# 3.5 s for the slowest known case (1,000 unit-level promotions on a 500-line
# cart), `_polish` included.
SEARCH_BUDGET = 20_000
SEARCH_WORK = 100_000


def search(
    s: SearchContext, forced: tuple[Candidate, ...], optional: list[Candidate]
) -> Evaluation:
    """The best legal combination containing `forced`, exactly, within the budget.

    `optional` are candidates with their standalone saving (`alone`); see the
    module's docstring for what the search passes over.

    If the budget stops the search, the best found so far is returned, still
    legal: completed greedily and made irreducible (`_polish`) if the first pass
    was cut short; if the second was, the better of its best and the first
    pass's best made irreducible (which saves the most of all). The order of the
    search makes it likely to be the best anyway: its first path takes the best
    standalone savings, then the earliest expiries and smallest ids, which is
    the rank's own order of tie-breaks.
    """
    r = Ranking(s, forced, optional)
    root = evaluate(s, forced)
    s.budget_end = s.evaluations + SEARCH_BUDGET
    s.work_end = s.work + SEARCH_WORK
    first = _depth_first(s, r, forced, root, eager=False)
    if not s.complete:
        return _polish(s, r, first, forced)
    if first is root or irreducible(s, first, forced):
        return first
    best = _depth_first(s, r, forced, root, eager=True)
    if not s.complete:
        # `first` saves the most of all: made irreducible it saves as much.
        reduced = _reduce(s, first, forced)
        if rank(reduced) < rank(best):
            best = reduced
    return best


def irreducible(s: SearchContext, e: Evaluation, forced: tuple[Candidate, ...]) -> bool:
    """No benefit of `e` (other than forced ones) can be dropped without losing
    saving: a coupon that adds nothing is never spent."""
    return all(without(s, e, c).saving < e.saving for c in _to_check(s, e, forced))


def _to_check(s: SearchContext, e: Evaluation, forced: tuple[Candidate, ...]) -> list[Candidate]:
    """The benefits of `e` (not forced) whose loss must be evaluated to know
    whether it costs saving. Without points offset the saving is the sum of the
    benefits' own savings, and a benefit on lines no other one of `e` touches
    leaves the others as they are: dropping it loses exactly its own saving, so
    one that saves something needs no evaluation."""
    found = [c for c in e.combo if c not in forced]
    if offset_possible(s) or not found:
        return found
    seen = twice = 0
    for c in e.combo:
        mask = touched_mask(s, c.benefit)
        twice |= seen & mask
        seen |= mask
    own = {id(c): saved for c, saved in e.own}
    return [c for c in found if own.get(id(c), 0) <= 0 or touched_mask(s, c.benefit) & twice]


def _polish(
    s: SearchContext, r: Ranking, e: Evaluation, forced: tuple[Candidate, ...]
) -> Evaluation:
    """For a search cut short: the best found so far, `e`, with each candidate
    added in ranking order that fits and raises the saving (the search may have
    stopped deep in one branch, short of what plainly adds more), then made
    irreducible (`_reduce`). Within half as much work again as the budget."""
    held = {id(c) for c in e.combo}
    end = s.work_end + SEARCH_WORK // 2
    for c in r.cands:
        if s.work >= end:
            break
        if id(c) in held or fits(s, e.combo, c) is not None:
            continue
        more = extend(s, e, c)
        if more.saving > e.saving:
            e = more
    return _reduce(s, e, forced)


def _reduce(s: SearchContext, e: Evaluation, forced: tuple[Candidate, ...]) -> Evaluation:
    """An irreducible part of `e` that saves at least as much (for a search cut
    short): drop a benefit (not a forced one) that costs no saving, the latest to
    expire first, then the largest id, until none is left to drop."""
    while True:
        dropped = False
        for c in sorted(_to_check(s, e, forced), key=_by_expiry_and_key, reverse=True):
            smaller = without(s, e, c)
            if smaller.saving >= e.saving:
                e, dropped = smaller, True
        if not dropped:
            return e  # a whole pass without a drop: irreducible


def _by_expiry_and_key(c: Candidate) -> tuple[datetime, str]:
    return c.expires, c.key


# A node of the search: the arguments of `_depth_first`'s `expand`.
_Node = tuple[
    int,
    tuple[Candidate, ...],
    int,
    Evaluation,
    int,
    tuple[Constraint, ...],
    int,
    tuple[int, ...],
    int,
]


def _depth_first(
    s: SearchContext,
    r: Ranking,
    forced: tuple[Candidate, ...],
    root: Evaluation,
    *,
    eager: bool,
) -> Evaluation:
    """The depth-first search of `search`; `eager`: only irreducible combinations
    become the best so far. Each node is a generator that yields its children
    in turn (an explicit stack, not recursion: a rule set may have many
    promotions that all apply, and Python's recursion limit is not a limit of
    the engine); the budget is checked before each step.

    The loop over a node's candidates is the engine's hot path: what it asks of
    the ranking's pieces is bound to local names once per search, and the tests
    that cost the least come first."""
    best = root
    max_coupons = s.rules.stacking.max_coupons
    bounds, units, moving, ties = r.bounds, r.units, r.moving, r.ties
    dominance, classes = r.dominance, r.classes
    cands, savings, is_coupon, traits = r.cands, r.savings, r.is_coupon, r.traits
    unique, blockers, run_end = classes.unique, dominance.blockers, classes.run_end
    gains = moving.gains
    slack = offset_slack(s)
    most, of_class, klass = bounds.most, classes.classes, classes.klass

    def expand(
        i: int,
        combo: tuple[Candidate, ...],
        held: int,
        current: Evaluation,
        coupons: int,
        pending: tuple[Constraint, ...],
        mine: int,
        used: tuple[int, ...],
        dead: int,
    ) -> Iterator[_Node]:
        nonlocal best
        if (
            not pending
            and current.saving >= 0
            and rank(current) < rank(best)
            and (not eager or irreducible(s, current, forced))
        ):
            best = current
        coupons_left = max_coupons - coupons
        floor = node_floor(moving, slack, current, held)
        order = r.steps(i, coupons_left, pending)
        consecutive = isinstance(order, range)
        row = bounds.row(coupons_left)
        at = 0
        cut, cut_for = len(order), None  # see below
        looked = 0  # candidates looked at: work
        try:
            while at < len(order):
                j = order[at]
                at += 1
                looked += 1
                # The tests up to `feasible` only get stricter further on, so passing
                # over the candidates that `steps` leaves out changes nothing.
                limit = bounds.bound_with(pending, j, coupons_left) if pending else row[j]
                if dead:
                    limit -= units.dead_saving(dead, j)
                top = best.saving
                if floor + limit < top:
                    return
                if floor + limit == top or most == top:
                    # No more than a tie is left from here on (`limit` only shrinks):
                    # it must win on the tie-breaks. Where it no longer can is found
                    # once per best, by bisection.
                    if cut_for is not best:
                        cut_for = best
                        cut = ties.cut(best, current, order, at - 1, top - floor, coupons_left)
                    if at > cut:
                        return
                if dead >> j & 1:
                    continue  # would fail: see `Units.takes`
                if pending and not feasible(pending, j, coupons_left):
                    return
                c = cands[j]
                # The stacking rules first: cheaper than the dominance rule's blockers.
                if not r.joins(combo, j, coupons, mine):
                    if consecutive and unique:  # no member of this class can join either
                        at = run_end[j] - i
                    continue
                if unique:  # `dominance.blocked(j, held)`, inline
                    mask = blockers[j]
                    if mask is None:
                        mask = dominance.blocker_mask(j)
                    if held & mask != mask:
                        if consecutive:
                            if dominance.uninterrupted_at(j):
                                # Every later member of the run has the same left-out
                                # one among its blockers.
                                at = run_end[j] - i
                            elif not any(of_class[id(x.benefit)] == klass[j] for x in combo):
                                at = dominance.skip(j) - i
                        continue
                left = coupons_left - is_coupon[j]
                if most == best.saving and ties.lost(best, current, c, j, floor, left):
                    continue  # (before the dominance rule's requirements, which cost more)
                after = dominance.include(j, combo, held, pending, left)
                if after is None:
                    continue
                # The extension saves at most `savings[j]` more (the bound's premise), so
                # if even that and all it could still add stay below the best, it would
                # neither become the best nor pass its own first bound test: skip it
                # without evaluating it.
                ahead = (
                    bounds.bound_with(after, j + 1, left) if after else bounds.bound(j + 1, left)
                )
                used_after, dead_after = (
                    units.dead(used, c, dead) if units.limited else (used, dead)
                )
                if dead_after:
                    ahead -= units.dead_saving(dead_after, j + 1)
                if floor + savings[j] + ahead < best.saving:
                    continue
                child_mine = mine | traits[j].mine
                ahead = bounds.compatible_bound(j + 1, left, child_mine, dead_after)
                reach = floor + savings[j] + ahead
                top = best.saving
                if reach < top:
                    continue  # the same, counting only what may still join
                if reach == top and most != top and ties.lost(best, current, c, j, floor, left):
                    continue
                extended = extend(s, current, c)
                if extended.saving >= 0 or (gains and moving.may_recover(extended)):
                    s.work += looked  # (counted here: `s.work` is an attribute)
                    looked = 0
                    yield (
                        j + 1,
                        extended.combo,
                        held | 1 << j,
                        extended,
                        coupons + is_coupon[j],
                        after,
                        child_mine,
                        used_after,
                        dead_after,
                    )
        finally:
            s.work += looked

    if root.saving >= 0:
        coupons = sum(1 for c in forced if c.coupon is not None)
        used: tuple[int, ...] = ()
        dead = 0
        for c in forced:
            used, dead = units.dead(used, c, dead)
        stack = [expand(0, forced, 0, root, coupons, (), r.mine(forced), used, dead)]
        end, work_end = s.budget_end, s.work_end
        while stack:
            if s.evaluations >= end or s.work >= work_end:
                s.complete = False
                break
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
            else:
                stack.append(expand(*child))
    return best
