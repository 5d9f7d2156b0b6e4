"""Which benefits may sit together in one combination (叠加规则), and why not.

Invariants the search relies on:
- whether two benefits conflict depends on the rule set alone (their kinds, ids
  and `exclusive`, and `stacking`), so each benefit's stacking rules are worked
  out once per rule set object into two bit masks (`Traits.mine`, `against`),
  kept across quotes;
- two benefits conflict exactly when `a.against & b.mine` (a symmetric test by
  construction), so a benefit conflicts with some member of a combination
  exactly when it conflicts with the union of their `mine`: the search keeps
  that union per node and tests a candidate in one operation;
- the coupon limits (`stacking.max_coupons`, a template's `per_order`) count
  coupons only: promotions take no slot;
- `fits` gives the first reason in a fixed order: a conflict with the first
  benefit of the combination it conflicts with, then the order's coupon limit,
  then the template's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from loyalpos.domain.pricing import reasons
from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.model import Options
from loyalpos.domain.pricing.reasons import Ineligible
from loyalpos.domain.pricing.rules import Benefit, RuleSet


class Traits(NamedTuple):
    """What the search asks of a benefit again and again, worked out once."""

    benefit: Benefit  # kept alive so that its id() is not reused
    place: tuple[int, int]  # (position of its kind in `stacking.order`, -priority)
    exclusive: bool
    groups: int  # bit g: `exclusive_groups[g]` names it (by kind or id)
    first: int  # bit p: `forbidden_pairs[p][0]` names it
    second: int  # bit p: `forbidden_pairs[p][1]` names it
    # All of the above in one number each, so that two benefits (or a benefit and
    # the union of a combination's `mine`) conflict exactly when `against & mine`:
    # the groups, `second` against `first` and `first` against `second`, and two
    # bits, "is exclusive" and "is there", each benefit's `mine` setting "is
    # there" and an exclusive one's "is exclusive", the `against` of every one
    # holding "is exclusive" and of an exclusive one "is there".
    mine: int
    against: int
    # id() of the first benefit seen under the rule set with the same `_pricing`
    # and the same stacking traits (`place`, `mine`, `against`): a benefit
    # interchangeable with this one wherever pricing and stacking look, kept
    # alive by `SearchContext.twins` (see `dominance`).
    twin: int


class Searching(Protocol):
    """What stacking reads of the search's context (`context.SearchContext`, which
    builds on this module) and caches there: the rules, the cashier's options,
    the traits worked out so far, their twins, and reasons already made."""

    rules: RuleSet
    options: Options
    traits: dict[int, Traits]
    twins: dict[tuple[object, ...], Benefit]
    reasons: dict[tuple[str | int, ...], Ineligible]


def _pricing(b: Benefit) -> tuple[object, ...]:
    """Every field of `b` that pricing reads, or that may make it conflict or
    be limited: all but its id, its name, its validity (already checked, and
    each coupon's expiry is on its candidate), its member limits (checked
    before the search), its refund policy and `max_per_order` (a class of
    interchangeable coupons, `dominance.Classes`, only holds templates whose
    limit cannot bind)."""
    return (
        b.kind,
        b.scope,
        b.promotion,
        b.threshold,
        b.threshold_items,
        b.amount,
        b.step,
        b.cap,
        b.percent,
        b.sku,
        b.price,
        b.bundle,
        b.nth,
        b.nth_group,
        b.n,
        b.threshold_base,
        b.exclusive,
        b.with_points,
        b.priority,
        b.points_multiplier,
    )


def traits_of(s: Searching, b: Benefit) -> Traits:
    # The entry keeps `b` alive, so its id() cannot name another benefit.
    found = s.traits.get(id(b))
    if found is None:
        stacking = s.rules.stacking
        names = {b.kind.value, b.id}
        groups = first = second = 0
        for g, group in enumerate(stacking.exclusive_groups):
            if group & names:
                groups |= 1 << g
        for p, (x, y) in enumerate(stacking.forbidden_pairs):
            if x in names:
                first |= 1 << p
            if y in names:
                second |= 1 << p
        order = {k.value: i for i, k in enumerate(stacking.order)}
        place = (order.get(b.kind, 99), -b.priority)
        g, p = len(stacking.exclusive_groups), len(stacking.forbidden_pairs)
        there, exclusive = 1 << (g + 2 * p), 1 << (g + 2 * p + 1)
        mine = groups | first << g | second << (g + p) | there
        against = groups | second << g | first << (g + p) | exclusive
        if b.exclusive:
            mine |= exclusive
            against |= there
        twin = s.twins.setdefault((_pricing(b), place, mine, against), b)
        found = s.traits[id(b)] = Traits(
            b, place, b.exclusive, groups, first, second, mine, against, id(twin)
        )
    return found


# Traits depend on the rule set alone, and a server quotes many carts with one
# rule set object (service.rulesets caches the converted published versions), so
# they are kept per rule set object (which the entry keeps alive), for the few
# most recent ones, with the twins (`Traits.twin`) found so far.
_TRAITS_BY_RULES: dict[
    int, tuple[RuleSet, dict[int, Traits], dict[tuple[object, ...], Benefit]]
] = {}
_TRAITS_KEPT = 16


def rules_traits(
    rules: RuleSet,
) -> tuple[dict[int, Traits], dict[tuple[object, ...], Benefit]]:
    found = _TRAITS_BY_RULES.get(id(rules))
    if found is None or found[0] is not rules:
        if len(_TRAITS_BY_RULES) >= _TRAITS_KEPT:
            _TRAITS_BY_RULES.clear()
        found = _TRAITS_BY_RULES[id(rules)] = (rules, {}, {})
    return found[1], found[2]


def pair_ok(s: Searching, a: Candidate, b: Candidate) -> bool:
    """Whether the stacking rules let `a` and `b` sit in one combination: neither
    is exclusive, no exclusive group names both (by kind or id), and no forbidden
    pair matches them either way round."""
    return not traits_of(s, a.benefit).against & traits_of(s, b.benefit).mine


def per_order(s: Searching, b: Benefit) -> int:
    """How many coupons of template `b` one order may use: its own limit and what
    is left of its budget of uses. A discount budget is shared by the template's
    coupons in the order (see `applying.budget_caps`), so it limits their total,
    not their number."""
    allowed = b.max_per_order
    budget = s.options.budgets.get(b.id)
    if budget is not None and budget.uses is not None:
        allowed = min(allowed, budget.uses)
    return allowed


def fits(s: Searching, combo: Sequence[Candidate], c: Candidate) -> Ineligible | None:
    """Why `c` may not join `combo`, or None if it may."""
    for other in combo:
        if not pair_ok(s, other, c):
            return _reason(s, ("conflict", other.label, other.key))
    if c.coupon is not None:
        coupons = [x for x in combo if x.coupon is not None]
        if len(coupons) >= s.rules.stacking.max_coupons:
            return _reason(s, ("max_coupons", s.rules.stacking.max_coupons))
        same = sum(1 for x in coupons if x.benefit.id == c.benefit.id)
        allowed = per_order(s, c.benefit)
        if same >= allowed:
            return reasons.limit(
                f"此券每单限用 {allowed} 张", f"{allowed} per order", max_per_order=allowed
            )
    return None


def _reason(s: Searching, what: tuple[str | int, ...]) -> Ineligible:
    """A conflict with a chosen benefit (label, key) or the coupon limit of the
    order, built once per search: the reasons for unused coupons repeat them
    (`explain.unusable_entry` gives each coupon its own copy of the details)."""
    found = s.reasons.get(what)
    if found is None:
        if what[0] == "conflict":
            found = reasons.conflict(str(what[1]), str(what[2]))
        else:
            n = what[1]
            found = reasons.limit(f"每单最多 {n} 张券", f"{n} coupon(s) per order", max_coupons=n)
        s.reasons[what] = found
    return found
