"""The quick evaluation: what applying a sequence saves, without splitting the
order-level benefits at its end over the lines. The search compares
combinations by their savings alone; the chosen one is applied for real
(`applying`) when its lines are asked for.

Invariants (each gives exactly what `applying.apply_sequence` gives; the
property tests in tests/unit/pricing/test_quick_evaluation.py check it):
- an order-level benefit (`threshold`, `percent`, `cash`) saves a function of
  what the lines of its scope still cost in all, and of its threshold's base:
  how that sum is spread over the lines does not matter;
- an order-level benefit's split sums exactly to its saving and falls on lines
  of its scope only. So after the unit-level part of a sequence is applied for
  real, what a later order-level benefit's lines still cost is the sum after
  that part less the savings of the order-level benefits before it whose scope
  lies inside its own; one whose lines lie outside its scope changes nothing.
  When the scopes overlap in part, or a threshold measured on original amounts
  may see lines the earlier ones brought to zero, the sequence is applied for
  real instead;
- the points offset depends on what all the lines still cost, which is the sum
  after the unit-level part less every order-level saving;
- a benefit's standalone saving is worked out once per step (`alone_saving`),
  from the cart's sums for an order-level one and by `benefits.preview`
  otherwise, and counts as one evaluation, as evaluating it would.
"""

from __future__ import annotations

from loyalpos.domain.pricing import benefits
from loyalpos.domain.pricing.applied import AppliedSequence, Summary
from loyalpos.domain.pricing.applying import (
    apply_sequence,
    budget_caps,
    points_offset,
    root,
)
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.candidate import Candidate, Step
from loyalpos.domain.pricing.context import SearchContext, step_of
from loyalpos.domain.pricing.lines import scope_info
from loyalpos.domain.pricing.reasons import Ineligible
from loyalpos.domain.pricing.rules import ThresholdBase


def summarise(seq: AppliedSequence) -> Summary:
    return Summary(
        seq.saving,
        seq.discount,
        tuple([o.saving for o in seq.outcomes]),
        seq.points,
        seq.offset,
        seq.failed,
    )


def summary(s: SearchContext, ordered: list[Candidate], steps: tuple[Step, ...]) -> Summary:
    """What `apply_sequence` would give, without splitting the order-level
    benefits at the end of the sequence over the lines; memoised.

    The unit-level benefits (and whatever comes before the last of them) are
    applied for real, from the longest prefix applied before. An order-level
    benefit then needs only what its scope's lines still cost in all: the sum
    over the lines after that prefix, less the savings of the order-level
    benefits before it whose lines lie inside its scope (their split sums
    exactly to their saving); one whose lines lie outside it changes nothing.
    When a scope overlaps an earlier one's only in part, or a threshold measured
    on original amounts may see lines the earlier ones brought to zero, the
    sequence is applied for real instead."""
    n = len(ordered)
    u = n
    while u and ordered[u - 1].benefit.kind in benefits.ORDER_LEVEL:
        u -= 1
    if u == n:
        return _for_real(s, ordered, steps)
    if u:
        head = steps[:u]
        prefix = s.full.get(head) or apply_sequence(s, ordered[:u], head)
        if prefix.failed is not None:
            found = summarise(prefix)
            s.memo[steps] = found
            return found
    else:
        prefix = root(s)
    st = prefix.state
    sums = prefix.sums
    default = s.rules.stacking.threshold_base
    outcomes = [o.saving for o in prefix.outcomes]
    # Lines in scope as a bit mask -> what the benefits on them saved: the
    # benefits of one scope count once each below (not once per benefit before).
    taken: dict[int, int] = {}
    used: int = 0
    failed: Ineligible | None = None
    budgets = budget_caps(ordered, outcomes) if s.options.budgets else {}
    for c in ordered[u:]:
        b = c.benefit
        lines, mask = scope_info(s, b.scope)
        current = sums.get(id(lines))  # equal scopes share their lines' tuple
        if current is None:
            current = _scope_sum(st, sums, lines)
        overlap = False
        for other, saved in taken.items():
            if other & mask:
                if other & ~mask:
                    # Part of the earlier saving fell on these lines: apply for real.
                    return _for_real(s, ordered, steps)
                current -= saved
                overlap = True
        if (b.threshold_base or default) is ThresholdBase.ORIGINAL:
            if overlap:
                return _for_real(s, ordered, steps)
            base = _original_base(st, sums, lines)
        else:
            base = current
        cap = c.cap
        if cap is not None:
            cap -= budgets.get(b.id, 0)  # see `apply_sequence`
        saving = benefits.order_level(b, current, base, mask != 0, cap)
        if isinstance(saving, Ineligible):
            failed = saving
            break
        outcomes.append(saving)
        if cap is not None:
            budgets[b.id] = budgets.get(b.id, 0) + saving
        if saving:
            taken[mask] = taken.get(mask, 0) + saving
            used += saving
    if failed is not None:
        found = Summary(-1, 0, tuple(outcomes), 0, 0, failed)
    else:
        discount = sum(outcomes)
        left = sums.get(-1)
        if left is None:
            left = sums[-1] = sum(st.amounts)
        points, fen = points_offset(s, left - used, ordered)
        found = Summary(discount + fen, discount, tuple(outcomes), points, fen, None)
    s.memo[steps] = found
    return found


def _for_real(s: SearchContext, ordered: list[Candidate], steps: tuple[Step, ...]) -> Summary:
    """`summary` by applying the whole sequence for real; memoised."""
    found = summarise(s.full.get(steps) or apply_sequence(s, ordered, steps))
    s.memo[steps] = found
    return found


def _scope_sum(st: State, sums: dict[object, int], lines: tuple[int, ...]) -> int:
    """What `lines` still cost in `st`, kept in `sums` (see `AppliedSequence.sums`)."""
    amounts = st.amounts
    if len(lines) == len(amounts):  # every line
        found = sum(amounts)
    else:
        found = sum([amounts[i] for i in lines])
    sums[id(lines)] = found
    return found


def _original_base(st: State, sums: dict[object, int], lines: tuple[int, ...]) -> int:
    """The original amounts of those of `lines` that still cost something in `st`
    (a threshold on original amounts), kept in `sums`."""
    key = (id(lines), 1)
    found = sums.get(key)
    if found is None:
        amounts, original = st.amounts, st.original
        found = sums[key] = sum([original[i] for i in lines if amounts[i] > 0])
    return found


def alone_saving(s: SearchContext, c: Candidate) -> int | Ineligible:
    """What `evaluation.evaluate(s, (c,))` would give as the discount, or as the
    reason it fails, worked out once per template and without spreading the
    saving over the lines (`benefits.preview`); the search applies `c` for real
    if it gets there."""
    s.evaluations += 1
    step = c.step if c.owner == s.serial else step_of(s, c)
    found = s.alone.get(step)
    if found is None:
        seq = s.memo.get((step,))
        if seq is not None:
            found = seq.discount if seq.failed is None else seq.failed
        elif c.benefit.kind in benefits.ORDER_LEVEL:
            found = _alone_order_level(s, c)  # from the cart's sums: no pass over the lines
        else:
            base = s.rules.stacking.threshold_base
            found = benefits.preview(c.benefit, s.start, base, c.cap)
        s.alone[step] = found
    return found


def _alone_order_level(s: SearchContext, c: Candidate) -> int | Ineligible:
    """What `summary(s, [c], ...)` gives as the discount of an order-level
    benefit alone, or why it fails, without the points offset or a memo entry."""
    b = c.benefit
    start = root(s)
    st, sums = start.state, start.sums
    lines, mask = scope_info(s, b.scope)
    current = sums.get(id(lines))
    if current is None:
        current = _scope_sum(st, sums, lines)
    if (b.threshold_base or s.rules.stacking.threshold_base) is ThresholdBase.ORIGINAL:
        base = _original_base(st, sums, lines)
    else:
        base = current
    return benefits.order_level(b, current, base, mask != 0, c.cap)
