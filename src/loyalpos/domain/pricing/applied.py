"""What applying a sequence of benefits gives (`AppliedSequence`, every amount
split over the lines) and the same without the lines (`Summary`, what the search
compares). Plain results, below the search's context, which memoises both by
the sequence of steps; `applying` and `quick` make them."""

from __future__ import annotations

from typing import NamedTuple

from loyalpos.domain.pricing import benefits
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.reasons import Ineligible


class AppliedSequence(NamedTuple):
    """What applying one sequence of benefits gives, whoever holds the coupons,
    with every amount split over the lines. On failure `outcomes` are those
    before the benefit that failed, `failed` why."""

    saving: int
    discount: int
    state: State
    outcomes: tuple[benefits.Outcome, ...]
    points: int
    offset: int
    failed: Ineligible | None
    # Sums over the lines of `state`, asked for by `quick.summary`: id(lines of a
    # scope) -> what they still cost; (id(lines), 1) -> their original amounts
    # over those that still cost something; -1 -> what all lines still cost.
    sums: dict[object, int]


class Summary(NamedTuple):
    """`AppliedSequence` without the lines: what the search needs to compare
    combinations. `savings` are the benefits' own savings (before a failure)."""

    saving: int
    discount: int
    savings: tuple[int, ...]
    points: int
    offset: int
    failed: Ineligible | None
