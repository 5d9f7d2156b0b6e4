"""`quote()`: the whole pricing of one cart, as a pure function.

Order of application (documented in docs/benefit-engine.md):
1. member prices (会员价), item-level, always first;
2. the chosen coupons and promotions, in `stacking.order` of kinds (item-level
   kinds before order-level ones), then priority (higher first), then id;
3. points offset (积分抵扣) on what is left, within its cap;
4. rounding off the change (抹零), always in the customer's favour;
5. points earned on what the customer pays.

The combination of coupons and promotions is chosen by an exact
branch-and-bound search (see `search`; exact unless it reaches its budget,
which the quote then says): savings are subadditive (a benefit never
saves more because another was applied first), so "current saving + the best
remaining standalone savings" bounds every extension.

Speed (bench/bench_quote.py, docs/performance.md), none of it changing a result:
- an evaluation depends only on the benefits (and budget caps) in their order of
  application, so it is memoised on that sequence: wallets repeat templates, and
  the search, `irreducible` and the explanations ask for the same sequences
  again; a new sequence starts from the state of its longest evaluated prefix;
- the search compares combinations by their savings alone (`_summary`): the
  order-level benefits at the end of a sequence are worked out from what their
  scopes' lines still cost in all, without splitting anything over the lines;
  the chosen combination is applied for real when its lines are asked for;
- a candidate's standalone saving is worked out once per template, without
  spreading it over the lines (`benefits.preview`, or `_summary`);
- the search passes over candidates that cannot join the current combination
  without branching, bounds in O(1) from precomputed tables, extends a node's
  sorted sequence in place, and checks irreducibility on the winner only (see
  `search`); stacking rules are bit masks per benefit (`_Traits`), kept per rule
  set object across quotes;
- coupons of one template are interchangeable except for their expiry and id,
  and so are coupons of templates that pricing and stacking cannot tell apart,
  so a combination holding a later one while an earlier one of the same class
  was left out is dominated and is neither kept nor extended, unless another
  benefit that would be applied between the two keeps them apart (`_Ranking`);
- a branch that can at most tie the best saving is cut when nothing it can
  become wins the tie-breaks (`_Ranking.outranked`).

What is left is bounded: the search stops at a budget of evaluations and work
(`SEARCH_BUDGET`, `SEARCH_WORK`), a count so that equal inputs give equal
quotes, and the quote's `debug` says so (`search`).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from itertools import accumulate
from operator import neg
from typing import Any, NamedTuple

from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.money import yuan
from loyalpos.domain.pricing import benefits, reasons
from loyalpos.domain.pricing.allocation import allocate, percent_of
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.earning import earn
from loyalpos.domain.pricing.model import (
    Applied,
    Cart,
    LineQuote,
    MemberContext,
    Note,
    Options,
    PointsRequest,
    Quote,
    Strategy,
    Unusable,
    WalletCoupon,
)
from loyalpos.domain.pricing.reasons import Ineligible, Reason
from loyalpos.domain.pricing.rules import (
    Benefit,
    ChangeRounding,
    Kind,
    RuleSet,
    Scope,
    ThresholdBase,
)

MAX_LINES = 500
MAX_QTY = 10_000
MAX_UNIT_PRICE = 100_000_000  # 1,000,000 元
FAR_FUTURE = datetime.max


# One step of a sequence: a number for (the benefit by identity, its budget cap,
# whether a coupon rather than a promotion brings it, which decides points
# offset), given out per search (`_info`).
Step = int


@dataclass(slots=True)
class Candidate:
    """A usable benefit: a wallet coupon, or a promotion (coupon None). Not
    changed once made (not frozen only because building frozen dataclasses took
    a tenth of the time of a quote's candidates)."""

    benefit: Benefit
    coupon: WalletCoupon | None
    expires: datetime
    cap: int | None
    # The coupon id, or `promotion:<id>`: what the ranking and the quote name it by.
    key: str = field(init=False, repr=False, compare=False)
    # Its step in the search numbered `owner`, and its `_sort_key` in the search
    # numbered `keyed`, given out when first asked for (see `_info`).
    owner: int = field(default=-1, init=False, repr=False, compare=False)
    step: Step = field(default=-1, init=False, repr=False, compare=False)
    keyed: int = field(default=-1, init=False, repr=False, compare=False)
    sort_key: tuple[int, int, str] = field(
        default=(0, 0, ""), init=False, repr=False, compare=False
    )
    # What it saves alone (`_alone`), once it is known to be usable.
    alone: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = self.coupon.id if self.coupon else f"promotion:{self.benefit.id}"

    @property
    def label(self) -> str:
        return self.benefit.name or self.benefit.id


Rank = tuple[int, tuple[datetime, ...], int, tuple[str, ...]]


@dataclass(slots=True)
class Evaluation:
    """A combination and what applying it gives. The saving and the outcome of
    each benefit come from the quick evaluation (`_summary`); the lines' amounts
    and each benefit's split over the lines (`state`, `results`) are worked out
    when first asked for, which the engine does for the chosen combination only."""

    combo: tuple[Candidate, ...]
    saving: int
    discount: int
    points: int
    offset: int
    failed: tuple[Candidate, Ineligible] | None
    ordered: list[Candidate] = field(repr=False, compare=False)
    savings: tuple[int, ...] = field(repr=False, compare=False)
    search: _Search = field(repr=False, compare=False)
    steps: tuple[Step, ...] = field(repr=False, compare=False)
    keys: list[tuple[int, int, str]] = field(repr=False, compare=False)  # of `ordered`
    spread: list[int] | None = field(default=None, repr=False, compare=False)
    ranking: Rank | None = field(default=None, repr=False, compare=False)
    full: _Sequence | None = field(default=None, repr=False, compare=False)

    def _materialised(self) -> _Sequence:
        if self.full is None:
            steps = self.steps
            self.full = self.search.full.get(steps) or _apply_sequence(
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


class _Sequence(NamedTuple):
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
    # Sums over the lines of `state`, asked for by `_summary`: id(lines of a
    # scope) -> what they still cost; (id(lines), 1) -> their original amounts
    # over those that still cost something; -1 -> what all lines still cost.
    sums: dict[object, int]


class _Summary(NamedTuple):
    """`_Sequence` without the lines: what the search needs to compare
    combinations. `savings` are the benefits' own savings (before a failure)."""

    saving: int
    discount: int
    savings: tuple[int, ...]
    points: int
    offset: int
    failed: Ineligible | None


def _steps(s: _Search, ordered: Sequence[Candidate]) -> tuple[Step, ...]:
    serial = s.serial
    for c in ordered:
        if c.owner != serial:
            _step(s, c)
    return tuple([c.step for c in ordered])


_serials = itertools.count()


@dataclass
class _Search:
    rules: RuleSet
    member: MemberContext
    options: Options
    start: State
    order: dict[str, int]
    # id(benefit) -> its `_Traits`, shared by the searches under one rule set,
    # and `_pricing` -> the first benefit seen with it (see `_Traits.twin`)
    traits: dict[int, _Traits] = field(init=False)
    twins: dict[tuple[object, ...], Benefit] = field(init=False)
    # A number of its own, which marks the candidates whose `sort_key` and
    # `step` it gave (`_info`), and the candidates that keep their benefits alive.
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
    # Quick evaluations (`_summary`) and materialised ones (`_apply_sequence`),
    # by the sequence of steps.
    memo: dict[tuple[Step, ...], _Summary] = field(default_factory=dict)
    full: dict[tuple[Step, ...], _Sequence] = field(default_factory=dict)
    # id(benefit) -> (the benefit, the lines it touches as a bit mask)
    touch: dict[int, tuple[Benefit, int]] = field(default_factory=dict)
    # id(scope) -> (the scope, its lines in the cart as a bit mask)
    scope_masks: dict[int, tuple[Scope, tuple[int, ...], int]] = field(default_factory=dict)
    # id(a tuple of line indexes from `State.scope_lines`, which keeps it) -> bit mask
    line_masks: dict[int, int] = field(default_factory=dict)
    # What each benefit saves on its own, or why it cannot apply (see `_alone`).
    alone: dict[Step, int | Ineligible] = field(default_factory=dict)
    reasons: dict[tuple[str | int, ...], Ineligible] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.traits, self.twins = _rules_traits(self.rules)
        self.serial = next(_serials)


def check_cart(cart: Cart) -> None:
    if not cart.lines:
        raise InvalidInput("购物车为空 (the cart has no lines)", field="lines")
    if len(cart.lines) > MAX_LINES:
        raise InvalidInput(f"at most {MAX_LINES} lines per cart", field="lines")
    for n, line in enumerate(cart.lines):
        if not 1 <= line.qty <= MAX_QTY:
            raise InvalidInput(
                f"第 {n + 1} 行数量无效 (line {n + 1}: quantity must be 1-{MAX_QTY})",
                field=f"lines.{n}.qty",
            )
        if not 0 <= line.unit_price <= MAX_UNIT_PRICE:
            raise InvalidInput(
                f"第 {n + 1} 行价格无效 (line {n + 1}: unit price out of range)",
                field=f"lines.{n}.unit_price",
            )


def _member_prices(rules: RuleSet, member: MemberContext, cart: Cart) -> tuple[list[int], int]:
    mp = rules.member_prices
    amounts = [line.unit_price * line.qty for line in cart.lines]  # the subtotals
    if member.tier is None:
        return amounts, 0
    subtotal = sum(amounts)
    pct = mp.tier_percent.get(member.tier)
    item_prices = mp.item_prices
    if pct is None and not item_prices:
        return amounts, 0
    scope = mp.scope
    # `scope.line_ok` inline when the scope only lists categories and skus.
    plain = not scope.exclude_skus and not scope.exclude_categories
    every = plain and not scope.categories and not scope.skus
    categories, skus = scope.categories, scope.skus
    for i, line in enumerate(cart.lines):
        fixed = None
        if item_prices:
            by_tier = item_prices.get(line.sku)
            if by_tier is not None:
                fixed = by_tier.get(member.tier)
        if fixed is not None and fixed < line.unit_price:
            amounts[i] = fixed * line.qty
        elif pct is not None and (
            every
            or (line.category in categories or line.sku in skus if plain else scope.line_ok(line))
        ):
            amounts[i] = percent_of(amounts[i], pct)
    return amounts, subtotal - sum(amounts)


def _static_check(
    b: Benefit,
    coupon: WalletCoupon | None,
    cart: Cart,
    member: MemberContext,
    options: Options,
    tier_names: Mapping[str, str],
) -> Ineligible | None:
    return _validity(b, coupon, cart.local_time) or _template_check(
        b, cart, member, options, tier_names
    )


def _validity(b: Benefit, coupon: WalletCoupon | None, now: datetime) -> Ineligible | None:
    """Expired or not yet valid: the template's dates and the coupon's together."""
    valid_from, valid_to = b.valid_from, b.valid_to
    if coupon is not None:
        if coupon.valid_from is not None and (valid_from is None or coupon.valid_from > valid_from):
            valid_from = coupon.valid_from
        if coupon.expires_at is not None and (valid_to is None or coupon.expires_at < valid_to):
            valid_to = coupon.expires_at
    if valid_to is not None and now >= valid_to:
        return reasons.expired(valid_to)
    if valid_from is not None and now < valid_from:
        return reasons.not_yet_valid(valid_from)
    return None


# When a member's use limit lets the template be used again, by period.
_AGAIN = {
    "day": ("明天可再用", "usable again tomorrow"),
    "week": ("下周可再用", "usable again next week"),
    "month": ("下月可再用", "usable again next month"),
}


def _template_check(
    b: Benefit,
    cart: Cart,
    member: MemberContext,
    options: Options,
    tier_names: Mapping[str, str],
) -> Ineligible | None:
    """What rules a template (or promotion) out whichever coupon carries it; the
    reason says what would make it usable (`reasons`): the stores where it is
    valid, the tiers it is for (by `tier_names`), its days and hours."""
    now = cart.local_time
    scope = b.scope
    if not scope.store_ok(cart.store):
        return reasons.store_not_eligible(cart.store, scope.stores, scope.exclude_stores)
    if not scope.tier_ok(member.tier):
        return reasons.tier_not_eligible(member.tier, scope.tiers, tier_names)
    window = scope.window
    if not window.contains(now):
        return reasons.outside_time_window(window.weekdays, window.dates, window.hours)
    usage = member.usage.get(b.id)
    limit = b.member_limit
    if usage is not None:
        for used, allowed, zh, en, period in (
            (usage.day, limit.per_day, "每日", "per day", "day"),
            (usage.week, limit.per_week, "每周", "per week", "week"),
            (usage.month, limit.per_month, "每月", "per month", "month"),
        ):
            if allowed is not None and used >= allowed:
                return reasons.limit(
                    f"{zh}限用 {allowed} 次",
                    f"{allowed} use(s) {en}",
                    hint=_AGAIN[period],
                    used=used,
                    allowed=allowed,
                )
    budget = options.budgets.get(b.id)
    if budget is not None and (budget.uses == 0 or budget.discount == 0):
        return reasons.limit("活动预算已用完", "the campaign budget is used up")
    return None


def _cap(b: Benefit, options: Options) -> int | None:
    budget = options.budgets.get(b.id)
    return budget.discount if budget is not None else None


def _expiry(b: Benefit, coupon: WalletCoupon | None) -> datetime:
    mine = coupon.expires_at if coupon is not None else None
    valid_to = b.valid_to
    if valid_to is not None and mine is not None:
        return min(valid_to, mine)
    return valid_to or mine or FAR_FUTURE


def _sort_key(s: _Search, c: Candidate) -> tuple[int, int, str]:
    return _info(s, c)[0]


def _info(s: _Search, c: Candidate) -> tuple[tuple[int, int, str], Step]:
    """(its `_sort_key`, its step), once per candidate and search: kept on the
    candidate (`sort_key`, `step`), marked with the search's `serial` (`keyed`,
    `owner`), so the hot paths read them directly. Only the candidates that are
    evaluated in a combination need a sort key (a tuple the collector tracks)."""
    if c.keyed != s.serial:
        place = _traits(s, c.benefit).place
        c.sort_key = (place[0], place[1], c.key)
        c.keyed = s.serial
    return c.sort_key, _step(s, c)


def _step(s: _Search, c: Candidate) -> Step:
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


def _place(s: _Search, c: Candidate) -> tuple[int, int]:
    """`_sort_key` without the id: benefits in one place are applied by id."""
    return _traits(s, c.benefit).place


class _Traits(NamedTuple):
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
    # alive by `_Search.twins` (see `_Ranking`).
    twin: int


def _pricing(b: Benefit) -> tuple[object, ...]:
    """Every field of `b` that pricing reads, or that may make it conflict or
    be limited: all but its id, its name, its validity (already checked, and
    each coupon's expiry is on its candidate), its member limits (checked
    before the search), its refund policy and `max_per_order` (a `_Ranking`
    class only holds templates whose limit cannot bind)."""
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


def _traits(s: _Search, b: Benefit) -> _Traits:
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
        found = s.traits[id(b)] = _Traits(
            b, place, b.exclusive, groups, first, second, mine, against, id(twin)
        )
    return found


# Traits depend on the rule set alone, and a server quotes many carts with one
# rule set object (service.rulesets caches the converted published versions), so
# they are kept per rule set object (which the entry keeps alive), for the few
# most recent ones, with the twins (`_Traits.twin`) found so far.
_TRAITS_BY_RULES: dict[
    int, tuple[RuleSet, dict[int, _Traits], dict[tuple[object, ...], Benefit]]
] = {}
_TRAITS_KEPT = 16


def _rules_traits(
    rules: RuleSet,
) -> tuple[dict[int, _Traits], dict[tuple[object, ...], Benefit]]:
    found = _TRAITS_BY_RULES.get(id(rules))
    if found is None or found[0] is not rules:
        if len(_TRAITS_BY_RULES) >= _TRAITS_KEPT:
            _TRAITS_BY_RULES.clear()
        found = _TRAITS_BY_RULES[id(rules)] = (rules, {}, {})
    return found[1], found[2]


def _points_allowed(combo: Sequence[Candidate]) -> bool:
    return all(c.coupon is None or c.benefit.with_points for c in combo)


def _offset(s: _Search, left: int, combo: Sequence[Candidate]) -> tuple[int, int]:
    """(points, fen) of the points offset when the lines still cost `left` in
    all; per line, it is `allocate(fen, st.amounts)` (see `Evaluation.offset_lines`)."""
    po = s.rules.points_offset
    request = s.options.points
    if not po.enabled or request == PointsRequest.NONE or s.options.skip_all:
        return 0, 0
    if not _points_allowed(combo):
        return 0, 0
    cap_fen = left * po.cap_percent // 10000
    by_cap = cap_fen * po.points_per_unit // po.unit_fen
    wanted = s.member.points if request == PointsRequest.MAX else int(request)
    points = min(wanted, s.member.points, by_cap)
    points -= points % po.step
    if points < max(po.min_points, 1):
        return 0, 0
    return points, points * po.unit_fen // po.points_per_unit


def _by_sort_key(c: Candidate) -> tuple[int, int, str]:
    return c.sort_key


def evaluate(s: _Search, combo: tuple[Candidate, ...]) -> Evaluation:
    """Apply `combo` in the documented order to a copy of the starting state.

    The work depends only on the sequence of benefits applied, so it is done once
    per sequence (`s.memo`) and handed to each combination that yields it; the
    split over the lines waits until someone asks (`Evaluation.state`)."""
    s.evaluations += 1
    serial = s.serial
    for c in combo:
        if c.keyed != serial or c.owner != serial:
            _info(s, c)
    ordered = sorted(combo, key=_by_sort_key) if len(combo) > 1 else list(combo)
    return _evaluation(
        s, combo, ordered, tuple([c.step for c in ordered]), [c.sort_key for c in ordered]
    )


def _extend(s: _Search, e: Evaluation, c: Candidate) -> Evaluation:
    """`evaluate(s, (*e.combo, c))`, placing `c` among the sorted benefits of `e`."""
    s.evaluations += 1
    if c.keyed != s.serial or c.owner != s.serial:
        _info(s, c)
    key, step = c.sort_key, c.step
    at = bisect_right(e.keys, key)
    ordered = e.ordered[:at]
    ordered.append(c)
    ordered += e.ordered[at:]
    keys = e.keys[:at]
    keys.append(key)
    keys += e.keys[at:]
    return _evaluation(s, (*e.combo, c), ordered, (*e.steps[:at], step, *e.steps[at:]), keys)


def _without(s: _Search, e: Evaluation, c: Candidate) -> Evaluation:
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
    s: _Search,
    combo: tuple[Candidate, ...],
    ordered: list[Candidate],
    steps: tuple[Step, ...],
    keys: list[tuple[int, int, str]],
) -> Evaluation:
    s.work += len(steps)
    seq = s.memo.get(steps)
    if seq is None:
        seq = _summary(s, ordered, steps)
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


def _summarise(seq: _Sequence) -> _Summary:
    return _Summary(
        seq.saving,
        seq.discount,
        tuple([o.saving for o in seq.outcomes]),
        seq.points,
        seq.offset,
        seq.failed,
    )


def _summary(s: _Search, ordered: list[Candidate], steps: tuple[Step, ...]) -> _Summary:
    """What `_apply_sequence` would give, without splitting the order-level
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
        found = _summarise(s.full.get(steps) or _apply_sequence(s, ordered, steps))
        s.memo[steps] = found
        return found
    if u:
        head = steps[:u]
        prefix = s.full.get(head) or _apply_sequence(s, ordered[:u], head)
        if prefix.failed is not None:
            found = _summarise(prefix)
            s.memo[steps] = found
            return found
    else:
        prefix = _root(s)
    st = prefix.state
    sums = prefix.sums
    default = s.rules.stacking.threshold_base
    outcomes = [o.saving for o in prefix.outcomes]
    # Lines in scope as a bit mask -> what the benefits on them saved: the
    # benefits of one scope count once each below (not once per benefit before).
    taken: dict[int, int] = {}
    used: int = 0
    failed: Ineligible | None = None
    budgets = _budget_caps(ordered, outcomes) if s.options.budgets else {}
    for c in ordered[u:]:
        b = c.benefit
        lines, mask = _scope_info(s, b.scope)
        current = sums.get(id(lines))  # equal scopes share their lines' tuple
        if current is None:
            current = _scope_sum(st, sums, lines)
        overlap = False
        for other, saved in taken.items():
            if other & mask:
                if other & ~mask:
                    # Part of the earlier saving fell on these lines: apply for real.
                    found = _summarise(s.full.get(steps) or _apply_sequence(s, ordered, steps))
                    s.memo[steps] = found
                    return found
                current -= saved
                overlap = True
        if (b.threshold_base or default) is ThresholdBase.ORIGINAL:
            if overlap:
                found = _summarise(s.full.get(steps) or _apply_sequence(s, ordered, steps))
                s.memo[steps] = found
                return found
            base = _original_base(st, sums, lines)
        else:
            base = current
        cap = c.cap
        if cap is not None:
            cap -= budgets.get(b.id, 0)  # see `_apply_sequence`
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
        found = _Summary(-1, 0, tuple(outcomes), 0, 0, failed)
    else:
        discount = sum(outcomes)
        left = sums.get(-1)
        if left is None:
            left = sums[-1] = sum(st.amounts)
        points, fen = _offset(s, left - used, ordered)
        found = _Summary(discount + fen, discount, tuple(outcomes), points, fen, None)
    s.memo[steps] = found
    return found


def _scope_sum(st: State, sums: dict[object, int], lines: tuple[int, ...]) -> int:
    """What `lines` still cost in `st`, kept in `sums` (see `_Sequence.sums`)."""
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


def _alone_order_level(s: _Search, c: Candidate) -> int | Ineligible:
    """What `_summary(s, [c], ...)` gives as the discount of an order-level
    benefit alone, or why it fails, without the points offset or a memo entry."""
    b = c.benefit
    root = _root(s)
    st, sums = root.state, root.sums
    lines, mask = _scope_info(s, b.scope)
    current = sums.get(id(lines))
    if current is None:
        current = _scope_sum(st, sums, lines)
    if (b.threshold_base or s.rules.stacking.threshold_base) is ThresholdBase.ORIGINAL:
        base = _original_base(st, sums, lines)
    else:
        base = current
    return benefits.order_level(b, current, base, mask != 0, c.cap)


def _root(s: _Search) -> _Sequence:
    """The empty sequence: the cart after member prices."""
    found = s.full.get(())
    if found is None:
        found = _apply_sequence(s, [], ())
    return found


def _scope_mask(s: _Search, scope: Scope) -> int:
    """The lines `scope` accepts, as a bit mask."""
    return _scope_info(s, scope)[1]


def _scope_info(s: _Search, scope: Scope) -> tuple[tuple[int, ...], int]:
    """The lines `scope` accepts (`State.scope_lines`: one tuple for equal scopes)
    and the same as a bit mask; once per scope."""
    found = s.scope_masks.get(id(scope))  # the entry keeps `scope` alive
    if found is None:
        lines = s.start.scope_lines(scope)
        mask = s.line_masks.get(id(lines))
        if mask is None:
            mask = 0
            for i in lines:
                mask |= 1 << i
            s.line_masks[id(lines)] = mask
        found = s.scope_masks[id(scope)] = (scope, lines, mask)
    return found[1], found[2]


def _apply_sequence(s: _Search, ordered: list[Candidate], steps: tuple[Step, ...]) -> _Sequence:
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
    used = _budget_caps(ordered, [o.saving for o in outcomes]) if s.options.budgets else {}
    for c in ordered[done:]:
        cap = c.cap
        if cap is not None:
            # A discount budget is shared: each coupon gets what the ones before left.
            cap -= used.get(c.benefit.id, 0)
        outcome = benefits.apply(c.benefit, st, base, cap)
        if isinstance(outcome, Ineligible):
            seq = _Sequence(-1, 0, st, tuple(outcomes), 0, 0, outcome, {})
            s.full[steps] = seq
            return seq
        outcomes.append(outcome)
        if cap is not None:
            used[c.benefit.id] = used.get(c.benefit.id, 0) + outcome.saving
    discount = sum(o.saving for o in outcomes)
    points, fen = _offset(s, sum(st.amounts), ordered)
    seq = _Sequence(discount + fen, discount, st, tuple(outcomes), points, fen, None, {})
    s.full[steps] = seq
    return seq


def _pair_ok(s: _Search, a: Candidate, b: Candidate) -> bool:
    """Whether the stacking rules let `a` and `b` sit in one combination: neither
    is exclusive, no exclusive group names both (by kind or id), and no forbidden
    pair matches them either way round."""
    return not _traits(s, a.benefit).against & _traits(s, b.benefit).mine


def per_order(s: _Search, b: Benefit) -> int:
    """How many coupons of template `b` one order may use: its own limit and what
    is left of its budget of uses. A discount budget is shared by the template's
    coupons in the order (see `_budget_caps`), so it limits their total, not
    their number."""
    allowed = b.max_per_order
    budget = s.options.budgets.get(b.id)
    if budget is not None and budget.uses is not None:
        allowed = min(allowed, budget.uses)
    return allowed


def _budget_caps(ordered: Sequence[Candidate], savings: Sequence[int]) -> dict[str, int]:
    """What the benefits applied so far (`savings`, in the order of `ordered`)
    took from each discount budget, by template or promotion id."""
    used: dict[str, int] = {}
    for c, saved in zip(ordered, savings, strict=False):
        if c.cap is not None:
            used[c.benefit.id] = used.get(c.benefit.id, 0) + saved
    return used


def _fits(s: _Search, combo: Sequence[Candidate], c: Candidate) -> Ineligible | None:
    """Why `c` may not join `combo`, or None if it may."""
    for other in combo:
        if not _pair_ok(s, other, c):
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


def _reason(s: _Search, what: tuple[str | int, ...]) -> Ineligible:
    """A conflict with a chosen benefit (label, key) or the coupon limit of the
    order, built once per search: the reasons for unused coupons repeat them
    (`_unusable` gives each coupon its own copy of the details)."""
    found = s.reasons.get(what)
    if found is None:
        if what[0] == "conflict":
            found = reasons.conflict(str(what[1]), str(what[2]))
        else:
            n = what[1]
            found = reasons.limit(f"每单最多 {n} 张券", f"{n} coupon(s) per order", max_coupons=n)
        s.reasons[what] = found
    return found


def _rank(e: Evaluation) -> Rank:
    if e.ranking is None:
        coupons = [c for c in e.combo if c.coupon is not None]
        e.ranking = (
            -e.saving,
            tuple(sorted(c.expires for c in coupons)),
            len(coupons),
            tuple(sorted(c.key for c in e.combo)),
        )
    return e.ranking


def irreducible(s: _Search, e: Evaluation, forced: tuple[Candidate, ...]) -> bool:
    """No benefit of `e` (other than forced ones) can be dropped without losing
    saving: a coupon that adds nothing is never spent."""
    return all(_without(s, e, c).saving < e.saving for c in _to_check(s, e, forced))


def _to_check(s: _Search, e: Evaluation, forced: tuple[Candidate, ...]) -> list[Candidate]:
    """The benefits of `e` (not forced) whose loss must be evaluated to know
    whether it costs saving. Without points offset the saving is the sum of the
    benefits' own savings, and a benefit on lines no other one of `e` touches
    leaves the others as they are: dropping it loses exactly its own saving, so
    one that saves something needs no evaluation."""
    found = [c for c in e.combo if c not in forced]
    if _offset_possible(s) or not found:
        return found
    seen = twice = 0
    for c in e.combo:
        mask = _mask(s, c.benefit)
        twice |= seen & mask
        seen |= mask
    own = {id(c): saved for c, saved in e.own}
    return [c for c in found if own.get(id(c), 0) <= 0 or _mask(s, c.benefit) & twice]


def _offset_slack(s: _Search) -> int:
    """How much more points offset a combination may get than one it holds, in
    fen. Adding a benefit can lower the discount (a 每满减 measured after it
    drops a step; a unit it takes makes 买N免1 free less); more is then left to
    pay, and the offset, which moves in steps and starts at a minimum, may grow
    by a step or the minimum at once, plus rounding, on top of its share of what
    the discount lost (never more than the loss itself)."""
    if not _offset_possible(s):
        return 0
    po = s.rules.points_offset
    step = max(po.step, po.min_points, 1)
    return -(-step * po.unit_fen // po.points_per_unit) - (-po.unit_fen // po.points_per_unit) + 1


def _offset_possible(s: _Search) -> bool:
    """Whether any combination may get a points offset (see `_offset`)."""
    po = s.rules.points_offset
    return po.enabled and s.options.points != PointsRequest.NONE and not s.options.skip_all


def _mask(s: _Search, b: Benefit) -> int:
    """`_touched(b, s.start)`, once per benefit."""
    found = s.touch.get(id(b))  # the entry keeps `b` alive
    if found is None:
        if b.kind is Kind.BUNDLE or (b.kind is Kind.ITEM and b.sku):
            mask = _touched(b, s.start)
        else:
            mask = _scope_mask(s, b.scope)  # the same, once per scope
        found = s.touch[id(b)] = (b, mask)
    return found[1]


class _Constraint(NamedTuple):
    """A combination holding a coupon that was preferred over an earlier one of
    its template is dominated unless it also holds one of `satisfiers`."""

    satisfiers: frozenset[int]  # indexes in the ranking
    ordered: tuple[int, ...]  # the same, in order (best standalone saving first)
    last: int  # the last of them
    last_promotion: int  # the last that is a promotion (needs no coupon slot), or -1


def _item_lines(st: State, b: Benefit) -> tuple[int, ...]:
    """The lines an item benefit takes its unit from (`benefits.item`)."""
    return st.sku_lines(b.sku) if b.sku else st.scope_lines(b.scope)


def _line_mask(lines: Sequence[int]) -> int:
    mask = 0
    for i in lines:
        mask |= 1 << i
    return mask


def _touched(b: Benefit, st: State) -> int:
    """Bit mask of the lines whose state applying `b` reads or writes."""
    if b.kind is Kind.ITEM and b.sku:
        idx: Sequence[int] = st.sku_lines(b.sku)
    elif b.kind is Kind.BUNDLE:
        idx = [i for sku in set(b.bundle) for i in st.sku_lines(sku)]
    else:
        idx = st.scope_lines(b.scope)
    mask = 0
    for i in idx:
        mask |= 1 << i
    return mask


UNIT_LEVEL = frozenset({Kind.ITEM, Kind.BUNDLE, Kind.NTH_DISCOUNT, Kind.BUY_N_FREE})


class _Shifts(NamedTuple):
    """Where a combination may save more once another benefit joins it (see
    `_shifts`)."""

    # step (`Candidate.step`) -> (what it saves alone, its `_growth`)
    gains: dict[Step, tuple[int, tuple[int, int]]]
    # the steps whose discount may move off their lines (those that may gain too)
    moving: frozenset[Step]


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


_Key = tuple[int, int | None]  # (id(benefit), cap): coupons of one template and budget
# A class of interchangeable candidates (see `_Ranking`): (`_Traits.twin`, None,
# True), or (id(benefit), cap, False) for the coupons of one template on their own.
_Class = tuple[int, int | None, bool]
# `_Ranking.outranked`: how many promotions' keys it keeps per position, and
# what stands for no coupon's key (after every key: the last code point).
_PROMOTION_KEYS = 16
_NO_KEY = "\U0010ffff"
_NO_SHIFTS = _Shifts({}, frozenset())


def _shifts(s: _Search, forced: Sequence[Candidate], reps: Sequence[Candidate]) -> _Shifts:
    """The benefits that may save more in a combination when another joins it,
    each with what it saves alone, which bounds what it saves anywhere.

    Every benefit applied later sees a cart no dearer, line by line and unit by
    unit, and saves no more on it; so a combination saves no more than its
    benefits alone, and, as long as each benefit's discount stays on the same
    lines, adding one never raises what the others save. A unit-level benefit
    chooses its units: with another benefit on its lines applied before it, it
    may discount other lines, or fewer, and leave a line dearer than it did,
    which a benefit applied after it on that line may then take (a 兑换券 at the
    item's own price saves nothing yet moves 买2免1 to another category, where a
    category 代金券 saves more). Such moved lines, and those of any benefit that
    touches them later, are followed in the order of application: what touches
    them may gain. Empty when nothing can move (the search's quick bound holds).

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
        by_place.setdefault(_traits(s, c.benefit).place, []).append(key)
    before = 0  # the lines of the templates in earlier places
    moved = 0  # the lines of those whose discount may move
    moving: list[_Key] = []
    gaining: list[_Key] = []
    for place in sorted(by_place):
        keys = by_place[place]
        masks = [_mask(s, keyed[k].benefit) for k in keys]
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
        # An optional candidate's `alone` is known (`_choose`).
        alone = _alone(s, c) if id(c) in is_forced else c.alone
        gains[_step(s, c)] = (alone if isinstance(alone, int) else 0, _growth(c.benefit, default))
    return _Shifts(gains, frozenset(_step(s, keyed[k]) for k in moving))


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


class _Ranking:
    """The optional candidates of one search, best standalone saving first, with
    what the search asks of them again and again, worked out once.

    Dominance: the coupons of one class differ only in expiry and id. A class is
    the coupons of one template, or of several templates that pricing and
    stacking cannot tell apart: equal in every field pricing reads and in their
    stacking traits (`_Traits.twin`: kind, priority, scope, every amount and
    threshold, the exclusive groups and forbidden pairs that name them), none
    with a discount budget (`cap`, which is kept per template id), and none whose
    per-order limit can bind (no more candidates of it, forced ones included,
    than `per_order` allows). Promotions likewise: one promotion, or several
    interchangeable ones without a budget. Applying any member of a class is
    applying the same benefit; so is leaving one out.

    If a combination holds member B of a class and leaves out member A of the
    same class that the rank prefers (expires first, or as soon and a smaller
    id), swapping B for A gives a combination that is as legal (the same
    conflicts, the same number of coupons, no template's limit exceeded),
    irreducible and saving, and ranks higher, unless the order of application
    changes: benefits are applied in (kind, priority, id) order, so a benefit X
    of the same kind and priority whose id lies between A's and B's, and that
    touches some of the same lines, is applied between them in one order and not
    in the other (benefits on disjoint lines commute; so do two members of one
    class, being the same benefit).

    The ranking puts the members of a class in the rank's order, so when the
    search adds B every such A has been decided. B then needs, on each side, a
    benefit X between B and the nearest left-out A: one already held, or one still
    to come (a `_Constraint`). B is added only while every requirement can still
    be met, and a combination with an unmet one does not compete. This needs
    unique ids (a real wallet has them); with duplicates it stands aside.

    Ties (see `outranked`): a branch whose bound only equals the best saving is
    cut when nothing it can still become outranks the best on the tie-breaks."""

    def __init__(
        self, s: _Search, forced: tuple[Candidate, ...], optional: list[Candidate]
    ) -> None:
        cands = self.cands = sorted(optional, key=_by_saving)
        self.s = s
        n = self.n = len(cands)
        self.max_coupons = s.rules.stacking.max_coupons
        self.forced = forced
        self.keys = [c.key for c in cands]
        self.is_coupon = [c.coupon is not None for c in cands]
        self.savings = [c.alone for c in cands]
        self.traits = [_traits(s, c.benefit) for c in cands]
        # Each template's first candidate in ranking order and how many it has,
        # forced ones included, by id(benefit).
        firsts: dict[int, list[Any]] = {}  # id(benefit) -> [candidate, count]
        for c in cands:
            found = firsts.get(id(c.benefit))
            if found is None:
                firsts[id(c.benefit)] = [c, 1]
            else:
                found[1] += 1
        allowed = {key: per_order(s, c.benefit) for key, (c, _) in firsts.items()}
        self.allowed = [allowed[id(c.benefit)] for c in cands]
        # `_shifts` looks at templates, not classes: the first candidate of each.
        reps = [c for c, _ in firsts.values()]
        for c in forced:
            found = firsts.get(id(c.benefit))
            if found is None:
                firsts[id(c.benefit)] = [c, 1]
            else:
                found[1] += 1
        # The class of each (see above).
        classes: dict[int, _Class] = {}
        self.classes = classes
        for key, (c, count) in firsts.items():
            b = c.benefit
            limit = allowed.get(key)
            if c.cap is None and (
                c.coupon is None or count <= (per_order(s, b) if limit is None else limit)
            ):
                classes[key] = (_traits(s, b).twin, None, True)
            else:
                classes[key] = (key, c.cap, False)
        self.klass = [classes[id(c.benefit)] for c in cands]
        # The members of each class in ranking order, and j's place among them.
        same_lists: list[list[int]] = []
        place: list[int] = []
        self.place = place
        seen: dict[_Class, list[int]] = {}
        for j in range(n):
            same = seen.setdefault(self.klass[j], [])
            same_lists.append(same)
            place.append(len(same))
            same.append(j)
        # As tuples of ints, which the collector stops tracking.
        frozen = {id(v): tuple(v) for v in seen.values()}
        self.same: list[tuple[int, ...]] = [frozen[id(v)] for v in same_lists]
        self.shifts = _shifts(s, forced, reps)
        gains = self.shifts.gains
        # The candidates that may gain, as bits of `held`; any forced one counts always.
        self.gain_bits = 0
        if gains:
            gaining = {id(c.benefit) for c in reps if _step(s, c) in gains}
            for j in range(n):
                if id(cands[j].benefit) in gaining:
                    self.gain_bits |= 1 << j
        self.forced_gain = any(_step(s, c) in gains for c in forced)
        is_coupon, savings = self.is_coupon, self.savings
        self.promotions = [i for i in range(n) if not is_coupon[i]]

        # bound(i, k): every promotion from i on, plus the k best coupons from i on,
        # which, the ranking being by saving, are the next k.
        promotions = [
            0 if coupon else saving for coupon, saving in zip(is_coupon, savings, strict=True)
        ]
        self.promotions_from = list(accumulate(reversed(promotions), initial=0))[::-1]
        self.bounds: dict[int, list[int]] = {}  # coupons left -> `bound(i, ...)` by i
        self.coupon_sums = list(
            accumulate(
                [x for x, coupon in zip(savings, is_coupon, strict=True) if coupon], initial=0
            )
        )
        # How many coupons come before each position (and all of them, at n).
        self.coupons_to = list(accumulate(is_coupon, initial=0))
        self.coupons_before = self.coupons_to[:-1]
        # Candidates by (kind, priority), then benefit, when first needed
        # (`_interferers`): only these can come between two others.
        self._groups: dict[tuple[int, int], dict[_Class, list[int]]] | None = None

        keys = [c.key for c in forced] + self.keys
        self.unique = len(set(keys)) == len(keys)
        self.interfering: dict[tuple[int, int], bool] = {}
        self.interferers: dict[_Class, tuple[list[str], list[tuple[int, bool]]]] = {}
        self.free: dict[_Class, bool] = {}  # `uninterrupted`, by class
        self.free_at: list[bool | None] = [None] * n  # the same, by position
        # run_end[j]: where the run of candidates of j's class that starts at j
        # ends (the ranking puts a class's members together unless another
        # class saves exactly as much).
        run_end = self.run_end = list(range(1, n + 1))
        for j in range(n - 2, -1, -1):
            if place[j + 1] and same_lists[j] is same_lists[j + 1]:
                run_end[j] = run_end[j + 1]
        # No combination saves more than the cart costs after member prices: no
        # line goes below 0, and the offset is paid out of what is left (unless
        # its cap is above 100%). -1: no such limit.
        cap_percent = s.rules.points_offset.cap_percent
        self.most = sum(s.start.amounts) if cap_percent <= 10000 or not _offset_possible(s) else -1
        # For `outranked`, worked out when first needed.
        self.coupon_positions: list[int] | None = None
        self.earliest: _Smallest | None = None
        self.coupon_keys: _Smallest | None = None
        self.promotion_keys: _Smallest | None = None
        self.least: list[list[str]] = []
        # Worked out when first needed: see `_sides`, `_blockers`, `skip`.
        self.sides: list[tuple[list[int], list[int]] | None] = [None] * n
        self.blockers: list[int | None] = [None] * n  # bit masks
        self.earlier: list[int | None] = [None] * n  # bit masks of `same[j][:place[j]]`
        self.free_from: list[int | None] = [None] * n
        # Promotions that need free units (`buy_n_free`, `item`): the lines they
        # take units from as a bit mask, how many units those lines hold, and how
        # many of them must be free (see `takes`).
        self.limited: list[tuple[int, int, int, int]] = []  # (index, mask, units, need)
        for j in self.promotions:
            b = cands[j].benefit
            if b.kind is Kind.BUY_N_FREE:
                lines, need = s.start.scope_lines(b.scope), b.n
            elif b.kind is Kind.ITEM:
                lines, need = _item_lines(s.start, b), 1
            else:
                continue
            qty = s.start.lines
            units = sum([qty[i].qty for i in lines])
            self.limited.append((j, _line_mask(lines), units, need))
        self.taking: dict[int, tuple[tuple[int, int], ...]] = {}  # id(candidate) -> `takes`

    def dearer(self, e: Evaluation) -> int:
        """How much dearer, in all, the lines may get in a combination holding
        `e` than they are in `e`: what the benefits of `e` whose discount may
        move (`_Shifts.moving`) save there, at most."""
        moving = self.shifts.moving
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
        if c.step not in self.shifts.gains:
            return False
        base = c.benefit.threshold_base or self.s.rules.stacking.threshold_base
        if why.reason is Reason.BELOW_THRESHOLD and base is ThresholdBase.DISCOUNTED:
            shortfall = why.detail.get("shortfall_fen")
            return not isinstance(shortfall, int) or self.dearer(e) >= shortfall
        return True

    def ceiling(self, e: Evaluation) -> int:
        """What `e`'s benefits save alone, together, plus the largest points
        offset: no combination holding them saves more, whether `e` works or not."""
        gains = self.shifts.gains
        total = _offset(self.s, sum(self.s.start.amounts), ())[1]
        for c in e.combo:
            found = gains.get(c.step)
            if found is not None:
                total += found[0]
            else:
                alone = _alone(self.s, c)
                total += alone if isinstance(alone, int) else 0
        return total

    def slack(self, e: Evaluation) -> int:
        """How much more than in `e` the benefits of `e` may save once others join
        (see `_shifts`): each that may gain, up to what it saves alone, and no
        more than its `_growth` allows for lines as much dearer as they may get."""
        gains = self.shifts.gains
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

    def takes(self, c: Candidate) -> tuple[tuple[int, int], ...]:
        """(k, units): `c` surely takes `units` units from the lines of
        `limited[k]` before that promotion is applied, when both are in a
        combination. An item or bundle benefit takes one unit of each sku it names
        (its lines, or the sku's, all lie among the promotion's) or fails; units
        once taken stay taken; so a promotion whose lines keep fewer units than it
        needs cannot join a combination that holds such benefits (`dead`)."""
        found = self.taking.get(id(c))
        if found is None:
            found = ()
            b = c.benefit
            if self.limited and b.kind in (Kind.ITEM, Kind.BUNDLE):
                st = self.s.start
                if b.kind is Kind.ITEM:
                    parts = [_line_mask(_item_lines(st, b))]
                else:
                    parts = [_line_mask(st.sku_lines(sku)) for sku in b.bundle]
                key = _sort_key(self.s, c)
                hits = []
                for k, (j, mask, _, _) in enumerate(self.limited):
                    if not key < _sort_key(self.s, self.cands[j]):
                        continue  # applied after the promotion (or in an unknown order)
                    units = sum(1 for m in parts if m and not m & ~mask)
                    if units:
                        hits.append((k, units))
                found = tuple(hits)
            self.taking[id(c)] = found  # `c` is one of `cands` or forced: kept alive
        return found

    def dead(self, used: tuple[int, ...], c: Candidate, dead: int) -> tuple[tuple[int, ...], int]:
        """`used` (units taken from each `limited` promotion's lines) and `dead`
        (the bits of the promotions that can no longer join) once `c` joins."""
        hits = self.takes(c)
        if not hits:
            return used, dead
        now = list(used) if used else [0] * len(self.limited)
        for k, units in hits:
            now[k] += units
            j, _, total, need = self.limited[k]
            if total - now[k] < need:
                dead |= 1 << j
        return tuple(now), dead

    def dead_saving(self, dead: int, i: int) -> int:
        """What the promotions at the bits of `dead` from i on would add to `bound`."""
        total = 0
        for j in self.promotions:
            if j >= i and dead >> j & 1:
                total += self.savings[j]
        return total

    def bound(self, i: int, coupons_left: int) -> int:
        """Every promotion from i on, plus the `coupons_left` best coupons from i on
        (the next ones, the ranking being by saving); a table per `coupons_left`."""
        return self.row(coupons_left)[i]

    def compatible_bound(self, i: int, coupons_left: int, mine: int, dead: int) -> int:
        """`bound(i, coupons_left)` counting only the candidates that the stacking
        rules let join a combination whose `_Traits.mine` union is `mine` (and no
        promotion at the bits of `dead`): what the ones that may join save alone
        still bounds what they add. Looks at a few coupons past the first
        incompatible one at most, then counts the best of the rest as `bound` does."""
        traits, savings, is_coupon = self.traits, self.savings, self.is_coupon
        total = 0
        k = coupons_left
        x = i
        end = min(self.n, i + 24)
        while k > 0 and x < end:
            if is_coupon[x] and not traits[x].against & mine:
                total += savings[x]
                k -= 1
            x += 1
        if k > 0 and x < self.n:
            sums, first = self.coupon_sums, self.coupons_before[x]
            total += sums[min(len(sums) - 1, first + k)] - sums[first]
        for x in self.promotions:
            if x >= i and not dead >> x & 1 and not traits[x].against & mine:
                total += savings[x]
        return total

    def row(self, coupons_left: int) -> list[int]:
        """`bound(i, coupons_left)` for every i."""
        row = self.bounds.get(coupons_left)
        if row is None:
            sums, top, k = self.coupon_sums, len(self.coupon_sums) - 1, max(coupons_left, 0)
            # `sums[min(top, first + k)]` without the `min`: the total repeated k times.
            padded = sums + [sums[top]] * k
            row = self.bounds[coupons_left] = [
                promotions + padded[first + k] - sums[first]
                for promotions, first in zip(
                    self.promotions_from, [*self.coupons_before, top], strict=True
                )
            ]
        return row

    def bound_with(self, pending: tuple[_Constraint, ...], i: int, coupons_left: int) -> int:
        """`bound(i, coupons_left)`, knowing that a requirement that only a coupon
        can meet takes one of the slots: the best coupon that meets it from i on,
        plus the best others. Never more than `bound`, and as it, never larger
        further on."""
        limit = self.bound(i, coupons_left)
        if coupons_left <= 0:
            return limit
        for k in pending:
            if k.last_promotion >= i:
                continue  # a promotion may meet it, taking no slot
            at = bisect_left(k.ordered, i)
            if at == len(k.ordered):
                continue  # cannot be met: `feasible` says so
            meet = self.savings[k.ordered[at]]
            limit = min(limit, self.bound(i, coupons_left - 1) + meet)
        return limit

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
        `_rank`); `add`: at least one candidate from j on must join (the part
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
        need = 0  # the fewest coupons from j on that can make up `short`
        while self._bound_at(j, need) < short:
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
            floor = short - self._bound_at(j, a - 1)
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

    def _bound_at(self, j: int, coupons: int) -> int:
        """`bound(j, coupons)` (j up to n) without building its table."""
        sums, first = self.coupon_sums, self.coupons_to[j]
        return self.promotions_from[j] + sums[min(len(sums) - 1, first + coupons)] - sums[first]

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

    def compatible(self, a: Candidate, b: Candidate) -> bool:
        return _pair_ok(self.s, a, b)

    def joins(self, combo: Sequence[Candidate], j: int, coupons: int, mine: int) -> bool:
        """`_fits(s, combo, cands[j]) is None`, without building the reason;
        `coupons` is how many coupons `combo` holds, `mine` the union of their
        `_Traits.mine` (j conflicts with one of them exactly when with the union)."""
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
        """The union of the `_Traits.mine` of `combo`'s benefits."""
        found = 0
        for c in combo:
            found |= _traits(self.s, c.benefit).mine
        return found

    def _mask(self, b: Benefit) -> int:
        return _mask(self.s, b)

    def interferes(self, x: Candidate, c: Candidate) -> bool:
        """Whether `x`, held with `c`, may be applied between two members of `c`'s
        class and change the outcome."""
        pair = (id(x.benefit), id(c.benefit))
        found = self.interfering.get(pair)
        if found is None:
            tx, tc = _traits(self.s, x.benefit), _traits(self.s, c.benefit)
            classes = self.classes
            found = (
                classes[id(x.benefit)] != classes[id(c.benefit)]
                and tx.place == tc.place
                and bool(self._mask(x.benefit) & self._mask(c.benefit))
                and not tx.against & tc.mine  # compatible
            )
            self.interfering[pair] = found
        return found

    def _sides(self, j: int) -> tuple[list[int], list[int]]:
        """The earlier members of j's class with a smaller id, nearest first,
        and those with a larger id, nearest first."""
        found = self.sides[j]
        if found is None:
            key, keys = self.keys[j], self.keys
            nearer = sorted(self.same[j][: self.place[j]], key=keys.__getitem__)
            found = self.sides[j] = (
                [e for e in reversed(nearer) if keys[e] < key],
                [e for e in nearer if keys[e] > key],
            )
        return found

    def skip(self, j: int) -> int:
        """Where to go on from a blocked candidate j when the combination holds
        no member of its class: the next of its run that nothing blocks (all
        the others are blocked for the same reason: a left-out earlier coupon)."""
        found = self.free_from[j]
        if found is None:
            k = j + 1
            end = self.run_end[j]
            while k < end and self.blocker_mask(k):
                k += 1
            found = self.free_from[j] = k
        return found

    def blocker_mask(self, j: int) -> int:
        mask = self.blockers[j]
        if mask is None:
            mask = 0
            for e in self._blockers(j):
                mask |= 1 << e
            self.blockers[j] = mask
        return mask

    def blocked(self, j: int, held: int) -> bool:
        """Whether candidate j certainly cannot join a combination holding the
        candidates at the bits of `held`: an earlier member of its class is left
        out and no benefit at all could come between the two (`include` would
        say so, at more cost)."""
        if not self.unique:
            return False
        mask = self.blocker_mask(j)
        return held & mask != mask

    def uninterrupted_at(self, j: int) -> bool:
        """`uninterrupted` for candidate j, kept per position."""
        found = self.free_at[j]
        if found is None:
            found = self.free_at[j] = self.uninterrupted(self.cands[j])
        return found

    def uninterrupted(self, c: Candidate) -> bool:
        """Whether no benefit, ranked or forced, can come between two coupons of
        `c`'s class (then every earlier one blocks, see `_blockers`)."""
        klass = self.classes[id(c.benefit)]
        found = self.free.get(klass)
        if found is None:
            found = self.free[klass] = not self._interferers(c)[0] and not any(
                self.interferes(x, c) for x in self.forced
            )
        return found

    def _blockers(self, j: int) -> Sequence[int]:
        """The earlier members of j's class with no possible interferer (ranked
        or forced) between their id and j's, nearest first on each side."""
        if not self.place[j]:
            return []  # the first of its class
        c, key = self.cands[j], self.keys[j]
        if self.uninterrupted(c):
            return self.same[j][: self.place[j]]
        keys = sorted(
            [*self._interferers(c)[0], *(x.key for x in self.forced if self.interferes(x, c))]
        )
        left, right = self._sides(j)
        found = []
        for e in left:
            if bisect_right(keys, self.keys[e]) != bisect_left(keys, key):
                break
            found.append(e)
        for e in right:
            if bisect_right(keys, key) != bisect_left(keys, self.keys[e]):
                break
            found.append(e)
        return found

    def _interferers(self, c: Candidate) -> tuple[list[str], list[tuple[int, bool]]]:
        """Ranked candidates that interfere with `c`'s class, by id. Whether one
        does depends on its class alone (`interferes`), and so does the answer."""
        klass = self.classes[id(c.benefit)]
        found = self.interferers.get(klass)
        if found is None:
            hits: list[tuple[str, int]] = []
            if self._groups is None:
                self._groups = {}
                for j in range(self.n):
                    self._groups.setdefault(self.traits[j].place, {}).setdefault(
                        self.klass[j], []
                    ).append(j)
            for members in self._groups.get(_place(self.s, c), {}).values():
                if self.interferes(self.cands[members[0]], c):
                    hits.extend((self.keys[i], i) for i in members)
            hits.sort()
            found = ([k for k, _ in hits], [(i, self.is_coupon[i]) for _, i in hits])
            self.interferers[klass] = found
        return found

    def include(
        self,
        j: int,
        combo: tuple[Candidate, ...],
        held: int,
        pending: tuple[_Constraint, ...],
        coupons_left: int,
    ) -> tuple[_Constraint, ...] | None:
        """The requirements once candidate `j` joins `combo` (the candidates at
        the bits of `held`, plus the forced ones), `coupons_left` after it; None if
        they can no longer all be met."""
        if not self.unique:
            return ()
        after = tuple([k for k in pending if j not in k.satisfiers]) if pending else ()
        earlier = self.earlier[j]
        if earlier is None:
            earlier = 0
            for e in self.same[j][: self.place[j]]:
                earlier |= 1 << e
            self.earlier[j] = earlier
        if held & earlier == earlier:  # no member of the class left out before it
            return after if self.feasible(after, j + 1, coupons_left) else None
        lower, higher = self._sides(j)
        left = next((e for e in lower if not held >> e & 1), None)
        right = next((e for e in higher if not held >> e & 1), None)
        if left is None and right is None:
            return after if self.feasible(after, j + 1, coupons_left) else None
        c, key = self.cands[j], self.keys[j]
        for low, high in (
            (None if left is None else self.keys[left], key),
            (key, None if right is None else self.keys[right]),
        ):
            if low is None or high is None:
                continue
            if any(low < x.key < high and self.interferes(x, c) for x in combo):
                continue
            keys, entries = self._interferers(c)
            found = [
                entries[i]
                for i in range(bisect_right(keys, low), bisect_left(keys, high))
                if entries[i][0] > j
            ]
            if not found:
                return None
            after += (
                _Constraint(
                    frozenset(i for i, _ in found),
                    tuple(sorted(i for i, _ in found)),
                    max(i for i, _ in found),
                    max((i for i, coupon in found if not coupon), default=-1),
                ),
            )
        return after if self.feasible(after, j + 1, coupons_left) else None

    @staticmethod
    def feasible(pending: tuple[_Constraint, ...], j: int, coupons_left: int) -> bool:
        """Whether candidates from `j` on may still meet every requirement."""
        if coupons_left > 0:
            return all(k.last >= j for k in pending)
        return all(k.last_promotion >= j for k in pending)

    def steps(self, i: int, coupons_left: int, pending: tuple[_Constraint, ...]) -> Sequence[int]:
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


def _by_saving(c: Candidate) -> tuple[int, datetime, str]:
    """The ranking's order: best standalone saving first, then earliest expiry, then id."""
    return -c.alone, c.expires, c.key


# What one search may do, counted from its start (both passes of `search`,
# `irreducible` included), each about a hundred times what a usual quote takes
# (bench/bench_quote.py: 10-300 evaluations, 3-1,100 steps of work). Counts, not
# a time, so that equal inputs always give equal quotes. Evaluations
# (`_Search.evaluations`), and work (`_Search.work`), which follows the time when
# combinations are long or candidates many: a step costs 1-20 microseconds (the
# most with unit-level promotions on a 500-line cart). Measured at the limits:
# under a second for the wallets and rule sets tried, 3.5 s for the slowest
# known case (1,000 unit-level promotions on a 500-line cart), `_polish` included.
SEARCH_BUDGET = 20_000
SEARCH_WORK = 100_000


def search(s: _Search, forced: tuple[Candidate, ...], optional: list[Candidate]) -> Evaluation:
    """The best legal combination containing `forced`, exactly, within the budget.

    `optional` are candidates with their standalone saving (`alone`); depth-first,
    best standalone first, pruning a branch when even the best remaining
    savings (within the coupon limit, and no more than the cart costs) cannot
    reach the best found so far, or can only equal it while nothing the branch
    can become outranks the best (`_Ranking.outranked`). Among equal savings the
    rank prefers coupons that expire first, then fewer coupons, then ids; only
    irreducible combinations compete. Candidates that cannot join a combination
    are passed over without branching, and dominated combinations (see
    `_Ranking`) are not followed.

    Irreducibility is checked once, on the winner, not on every improvement: the
    best of all visited combinations ranks above every other one (each pruned
    branch ranks below a best found before it; each dominated combination below
    the one that dominates it), so, if irreducible, it is the best irreducible
    one. Otherwise (a coupon that adds nothing would win on expiry) the search
    runs again checking every step.

    The budget: after `SEARCH_BUDGET` evaluations or `SEARCH_WORK` steps of work
    the search stops where it is and `s.complete` turns False. The best found so
    far is returned, still legal: completed greedily and made irreducible
    (`_polish`) if the first pass was cut short; if the second was, the better of
    its best and the first pass's best made irreducible (which saves the most of
    all). The order of the search makes it likely to be the best anyway: its
    first path takes the best standalone savings, then the earliest expiries and
    smallest ids, which is the rank's own order of tie-breaks.
    """
    r = _Ranking(s, forced, optional)
    root = evaluate(s, forced)
    s.budget_end = s.evaluations + SEARCH_BUDGET
    s.work_end = s.work + SEARCH_WORK
    first = _search(s, r, forced, root, eager=False)
    if not s.complete:
        return _polish(s, r, first, forced)
    if first is root or irreducible(s, first, forced):
        return first
    best = _search(s, r, forced, root, eager=True)
    if not s.complete:
        # `first` saves the most of all: made irreducible it saves as much.
        reduced = _reduce(s, first, forced)
        if _rank(reduced) < _rank(best):
            best = reduced
    return best


def _polish(s: _Search, r: _Ranking, e: Evaluation, forced: tuple[Candidate, ...]) -> Evaluation:
    """For a search cut short: the best found so far, `e`, with each candidate
    added in ranking order that fits and raises the saving (the search may have
    stopped deep in one branch, short of what plainly adds more), then made
    irreducible (`_reduce`). Within half as much work again as the budget."""
    held = {id(c) for c in e.combo}
    end = s.work_end + SEARCH_WORK // 2
    for c in r.cands:
        if s.work >= end:
            break
        if id(c) in held or _fits(s, e.combo, c) is not None:
            continue
        more = _extend(s, e, c)
        if more.saving > e.saving:
            e = more
    return _reduce(s, e, forced)


def _reduce(s: _Search, e: Evaluation, forced: tuple[Candidate, ...]) -> Evaluation:
    """An irreducible part of `e` that saves at least as much (for a search cut
    short): drop a benefit (not a forced one) that costs no saving, the latest to
    expire first, then the largest id, until none is left to drop."""
    while True:
        dropped = False
        for c in sorted(_to_check(s, e, forced), key=_by_expiry_and_key, reverse=True):
            smaller = _without(s, e, c)
            if smaller.saving >= e.saving:
                e, dropped = smaller, True
        if not dropped:
            return e  # a whole pass without a drop: irreducible


def _by_expiry_and_key(c: Candidate) -> tuple[datetime, str]:
    return c.expires, c.key


# A node of the search: the arguments of `_search`'s `expand`.
_Node = tuple[
    int,
    tuple[Candidate, ...],
    int,
    Evaluation,
    int,
    tuple[_Constraint, ...],
    int,
    tuple[int, ...],
    int,
]


def _search(
    s: _Search, r: _Ranking, forced: tuple[Candidate, ...], root: Evaluation, *, eager: bool
) -> Evaluation:
    """The depth-first search of `search`; `eager`: only irreducible combinations
    become the best so far. Each node is a generator that yields its children
    in turn (an explicit stack, not recursion: a rule set may have many
    promotions that all apply, and Python's recursion limit is not a limit of
    the engine); the budget is checked before each step."""
    best = root
    max_coupons = s.rules.stacking.max_coupons
    unique, blockers = r.unique, r.blockers
    gains = r.shifts.gains
    gain_bits, forced_gain = r.gain_bits, r.forced_gain
    offset_slack = _offset_slack(s)
    most, classes, klass = r.most, r.classes, r.klass

    def lost(current: Evaluation, c: Candidate, j: int, floor: int, left: int) -> bool:
        """With the best saving only tied at most, whether `current` with `c` (at
        j) and what may follow cannot win the tie-breaks."""
        ranked = _rank(current)
        expiries, keys = ranked[1], ranked[3]
        if c.coupon is not None:
            expiries = tuple(sorted((*expiries, c.expires)))
        keys = tuple(sorted((*keys, c.key)))
        short = best.saving - floor - r.savings[j]
        return r.outranked(_rank(best), expiries, keys, j + 1, short, left, False)

    def expand(
        i: int,
        combo: tuple[Candidate, ...],
        held: int,
        current: Evaluation,
        coupons: int,
        pending: tuple[_Constraint, ...],
        mine: int,
        used: tuple[int, ...],
        dead: int,
    ) -> Iterator[_Node]:
        nonlocal best
        if (
            not pending
            and current.saving >= 0
            and _rank(current) < _rank(best)
            and (not eager or irreducible(s, current, forced))
        ):
            best = current
        coupons_left = max_coupons - coupons
        if current.failed is not None:
            floor = r.ceiling(current)  # see `_Ranking.may_recover`
        else:
            floor = max(current.saving, 0)
            if offset_slack and _points_allowed(current.combo):
                floor += offset_slack  # (a coupon without points keeps them out below too)
            if held & gain_bits or forced_gain:
                floor += r.slack(current)
        order = r.steps(i, coupons_left, pending)
        consecutive = isinstance(order, range)
        row = r.row(coupons_left)
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
                limit = r.bound_with(pending, j, coupons_left) if pending else row[j]
                if dead:
                    limit -= r.dead_saving(dead, j)
                top = best.saving
                if floor + limit < top:
                    return
                if floor + limit == top or most == top:
                    # No more than a tie is left from here on (`limit` only shrinks):
                    # it must win on the tie-breaks. Where it no longer can is found
                    # once per best, by bisection: a cut found for one best holds for
                    # any better one.
                    if cut_for is not best:
                        cut_for = best
                        ranked, ranking = _rank(current), _rank(best)
                        lo, hi = at - 1, len(order)
                        while lo < hi:
                            mid = (lo + hi) // 2
                            if r.outranked(
                                ranking,
                                ranked[1],
                                ranked[3],
                                order[mid],
                                top - floor,
                                coupons_left,
                                True,
                            ):
                                hi = mid
                            else:
                                lo = mid + 1
                        cut = lo  # (the outcome at `lo` was True, unless past the end)
                    if at > cut:
                        return
                if dead >> j & 1:
                    continue  # would fail: see `_Ranking.takes`
                if pending and not r.feasible(pending, j, coupons_left):
                    return
                c = r.cands[j]
                # The stacking rules first: cheaper than the dominance rule's blockers.
                if not r.joins(combo, j, coupons, mine):
                    if consecutive and unique:  # no member of this class can join either
                        at = r.run_end[j] - i
                    continue
                if unique:  # `r.blocked(j, held)`, inline
                    mask = blockers[j]
                    if mask is None:
                        mask = r.blocker_mask(j)
                    if held & mask != mask:
                        if consecutive:
                            if r.uninterrupted_at(j):
                                # Every later member of the run has the same left-out
                                # one among its blockers.
                                at = r.run_end[j] - i
                            elif not any(classes[id(x.benefit)] == klass[j] for x in combo):
                                at = r.skip(j) - i
                        continue
                left = coupons_left - r.is_coupon[j]
                if most == best.saving and lost(current, c, j, floor, left):
                    continue  # (before the dominance rule's requirements, which cost more)
                after = r.include(j, combo, held, pending, left)
                if after is None:
                    continue
                # The extension saves at most `savings[j]` more (the bound's premise), so
                # if even that and all it could still add stay below the best, it would
                # neither become the best nor pass its own first bound test: skip it
                # without evaluating it.
                ahead = r.bound_with(after, j + 1, left) if after else r.bound(j + 1, left)
                used_after, dead_after = r.dead(used, c, dead) if r.limited else (used, dead)
                if dead_after:
                    ahead -= r.dead_saving(dead_after, j + 1)
                if floor + r.savings[j] + ahead < best.saving:
                    continue
                child_mine = mine | r.traits[j].mine
                ahead = r.compatible_bound(j + 1, left, child_mine, dead_after)
                reach = floor + r.savings[j] + ahead
                top = best.saving
                if reach < top:
                    continue  # the same, counting only what may still join
                if reach == top and most != top and lost(current, c, j, floor, left):
                    continue
                extended = _extend(s, current, c)
                if extended.saving >= 0 or (gains and r.may_recover(extended)):
                    s.work += looked  # (counted here: `s.work` is an attribute)
                    looked = 0
                    yield (
                        j + 1,
                        extended.combo,
                        held | 1 << j,
                        extended,
                        coupons + r.is_coupon[j],
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
            used, dead = r.dead(used, c, dead)
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


def _candidates(
    rules: RuleSet,
    member: MemberContext,
    cart: Cart,
    options: Options,
    unusable: list[Unused],
    notes: list[Note] | None = None,
) -> tuple[list[Candidate], dict[str, Benefit]]:
    """The usable wallet coupons and promotions, and the benefits by id; the
    promotions not in force go to `notes`."""
    if notes is None:
        notes = []
    found: list[Candidate] = []
    tier_names = rules.tier_names
    by_id: dict[str, Benefit] = {}
    for t in rules.benefits:
        by_id.setdefault(t.id, t)  # as `rules.benefit`: the first with the id
    # id(template) -> what `_template_check` says (it does not depend on the coupon)
    checked: dict[int, Ineligible | None] = {}
    for coupon in member.wallet:
        b = by_id.get(coupon.template)
        problem: Ineligible | None
        if b is None or b.promotion:
            problem = reasons.simple(Reason.UNKNOWN_TEMPLATE, template=coupon.template)
        elif options.skip_all:
            problem = reasons.simple(Reason.SKIPPED)
        elif coupon.id in options.exclude:
            problem = reasons.simple(Reason.EXCLUDED)
        else:
            problem = _validity(b, coupon, cart.local_time)
            if problem is None:
                if id(b) in checked:
                    problem = checked[id(b)]
                else:
                    # A count threshold (满 N 件) is a fact of the cart: checked here,
                    # once, it never enters the search or its bounds.
                    problem = checked[id(b)] = _template_check(
                        b, cart, member, options, tier_names
                    ) or benefits.below_count(b, cart.lines)
        if problem is not None:
            unusable.append((coupon, problem))
            continue
        assert b is not None
        found.append(Candidate(b, coupon, _expiry(b, coupon), _cap(b, options)))
    if not options.skip_all:
        for b in rules.benefits:
            if not b.promotion:
                continue
            problem = _static_check(
                b, None, cart, member, options, tier_names
            ) or benefits.below_count(b, cart.lines)
            if problem is None:
                found.append(Candidate(b, None, FAR_FUTURE, _cap(b, options)))
            else:
                notes.append(_promotion_note("promotion_not_in_force", b, problem))
    return found, by_id


def _promotion_note(code: str, b: Benefit, why: Ineligible) -> Note:
    """A promotion that does not apply to this order, and why."""
    label = b.name or b.id
    return Note(
        code,
        f"促销「{label}」不适用：{why.zh}",
        f"promotion {label} does not apply: {why.en}",
        {"promotion": b.id, "reason_code": why.reason.value},
    )


# A wallet coupon that is not used, and why; made into an `Unusable` once the
# search is over (`quote`), so that the search's objects and the quote's are not
# alive together (fewer objects for the garbage collector to see at any time).
Unused = tuple[WalletCoupon, Ineligible]


def _unusable(coupon: WalletCoupon, why: Ineligible, by_id: Mapping[str, Benefit]) -> Unusable:
    # A reason may be shared by the coupons of a template (see `_alone`, `s.memo`):
    # each coupon gets its own copy of the details.
    b = by_id.get(coupon.template)
    if b is not None and why.reason is Reason.NO_ELIGIBLE_ITEMS:
        why = reasons.with_scope(why, b.scope.categories, b.scope.skus)
    return Unusable(
        coupon.id,
        coupon.template,
        why.reason.value,
        why.zh,
        why.en,
        dict(why.detail),
        (b.name or b.id) if b is not None else coupon.template,
    )


def _forced_note(coupon_id: str, label: str, why: Ineligible) -> Note:
    return Note(
        "forced_coupon_unusable",
        f"指定的「{label}」不可用：{why.zh}",
        f"the chosen {label} cannot be used: {why.en}",
        {"coupon_id": coupon_id, "reason_code": why.reason.value},
    )


def _forced_unusable(s: _Search, coupon_id: str, unusable: list[Unused]) -> Note:
    """A forced coupon that is not a candidate: why (from `unusable`), or that
    the member does not hold it."""
    why = next((w for coupon, w in unusable if coupon.id == coupon_id), None)
    if why is not None:
        return _forced_note(coupon_id, _coupon_label(s, coupon_id), why)
    return Note(
        "forced_coupon_unusable",
        f"指定的券 {coupon_id} 不在会员的券包中",
        f"the chosen coupon {coupon_id} is not in the member's wallet",
        {"coupon_id": coupon_id, "reason_code": "not_in_wallet"},
    )


def _coupon_label(s: _Search, coupon_id: str) -> str:
    """The name of a wallet coupon's template, or the coupon id."""
    coupon = next((w for w in s.member.wallet if w.id == coupon_id), None)
    b = s.rules.benefit(coupon.template) if coupon is not None else None
    return (b.name or b.id) if b is not None else coupon_id


def _alone(s: _Search, c: Candidate) -> int | Ineligible:
    """What `evaluate(s, (c,))` would give as the discount, or as the reason it
    fails, worked out once per template and without spreading the saving over the
    lines (`benefits.preview`); the search applies `c` for real if it gets there."""
    s.evaluations += 1
    step = c.step if c.owner == s.serial else _step(s, c)
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


def _movers(s: _Search, idle: list[Candidate], pool: list[Candidate]) -> list[Candidate]:
    """Those of `idle` (which save nothing alone) that can still make a
    combination save more: a unit-level one applied before another unit-level
    benefit on its lines takes units that benefit may then not take, and so may
    move its discount elsewhere (see `_shifts`). One that saves nothing and
    takes no unit leaves the cart as it is."""
    later = [(_info(s, c)[0], _mask(s, c.benefit)) for c in pool if c.benefit.kind in UNIT_LEVEL]
    found = []
    for c in idle:
        if c.benefit.kind in UNIT_LEVEL:
            mine, lines = _info(s, c)[0], _mask(s, c.benefit)
            if any(key > mine and mask & lines for key, mask in later):
                found.append(c)
    return found


def _choose(
    s: _Search, cands: list[Candidate], unusable: list[Unused], notes: list[Note]
) -> Evaluation:
    forced: list[Candidate] = []
    rejected: set[str] = set()
    for coupon_id in dict.fromkeys(s.options.force):
        c = next((x for x in cands if x.key == coupon_id), None)
        if c is None:
            notes.append(_forced_unusable(s, coupon_id, unusable))
            continue
        why = _fits(s, forced, c)
        if why is not None:
            unusable.append((c.coupon, why))  # type: ignore[arg-type]
            notes.append(
                Note(
                    "forced_coupon_conflict",
                    f"指定的「{c.label}」与另一张指定的券不可同时使用：{why.zh}",
                    f"the chosen {c.label} cannot go with another chosen coupon: {why.en}",
                    {"coupon_id": coupon_id, "reason_code": why.reason.value},
                )
            )
            rejected.add(c.key)
            continue
        alone = evaluate(s, (*forced, c))
        if alone.failed is not None:
            failed = alone.failed[1]
            unusable.append((c.coupon, failed))  # type: ignore[arg-type]
            notes.append(_forced_note(coupon_id, c.label, failed))
            rejected.add(c.key)
            continue
        forced.append(c)
        notes.append(
            Note(
                "coupon_forced",
                f"收银员指定使用「{c.label}」",
                f"the cashier chose {c.label}",
                {"coupon_id": coupon_id},
            )
        )
    rest = [c for c in cands if c not in forced and c.key not in rejected]
    optional: list[Candidate] = []
    idle: list[Candidate] = []  # usable, but save nothing alone
    for c in rest:
        saves = _alone(s, c)
        if isinstance(saves, Ineligible):
            if c.coupon is not None:
                unusable.append((c.coupon, saves))
            else:
                notes.append(_promotion_note("promotion_not_applicable", c.benefit, saves))
            continue
        if saves <= 0:
            idle.append(c)
            continue
        c.alone = saves
        optional.append(c)
    if idle:
        movers = _movers(s, idle, [*forced, *optional, *idle])
        optional += movers
        kept = {id(c) for c in movers}
        for c in idle:
            if c.coupon is not None and id(c) not in kept:
                unusable.append((c.coupon, reasons.simple(Reason.NO_EXTRA_SAVING)))
    if s.options.strategy is Strategy.EARLIEST_EXPIRY:
        chosen = list(forced)
        current = evaluate(s, tuple(chosen))
        for c in sorted(
            (x for x in optional if x.coupon is not None), key=lambda x: (x.expires, x.key)
        ):
            if _fits(s, chosen, c) is not None:
                continue
            trial = evaluate(s, (*chosen, c))
            if trial.saving >= 0 and trial.discount > current.discount:
                chosen.append(c)
                current = trial
        notes.append(
            Note(
                "strategy_earliest_expiry",
                "优先使用最早到期的券",
                "the coupons that expire first are used first",
                {},
            )
        )
        promos = [x for x in optional if x.coupon is None]
        return search(s, tuple(chosen), promos)
    return search(s, tuple(forced), optional)


def _explain_rest(
    s: _Search, best: Evaluation, cands: list[Candidate], unusable: list[Unused]
) -> None:
    """Say why each usable coupon that was not chosen was left out."""
    chosen = {c.key for c in best.combo}
    listed = {coupon.id for coupon, _ in unusable}
    # With unique ids, whether a coupon fits with the chosen ones depends on its
    # template alone (see `_fits`, `_pair_ok`).
    same_reason = len({c.key for c in cands}) == len(cands)
    fits: dict[tuple[int, int | None], Ineligible | None] = {}
    for c in cands:
        if c.coupon is None or c.key in chosen or c.key in listed:
            continue
        template = (id(c.benefit), c.cap)
        if same_reason and template in fits:
            why = fits[template]
        else:
            why = fits[template] = _fits(s, best.combo, c)
        if why is None:
            trial = _extend(s, best, c)
            if trial.failed is None:
                why = reasons.simple(Reason.NO_EXTRA_SAVING)
            elif trial.failed[0] is c:
                why = trial.failed[1]
            else:
                # Adding `c` would make a chosen benefit unusable (e.g. push it
                # below its threshold): that is a conflict with that benefit.
                other = trial.failed[0]
                why = reasons.conflict(other.label, other.key)
        unusable.append((c.coupon, why))


def _change(rules: RuleSet, store: str, payable: int) -> int:
    mode = rules.store_change_rounding.get(store, rules.change_rounding)
    if mode is ChangeRounding.FEN:
        return payable % 10
    if mode is ChangeRounding.JIAO:
        return payable % 100
    return 0


def _by_coupon_id(unused: Unused) -> str:
    return unused[0].id


def quote(rules: RuleSet, member: MemberContext, cart: Cart, options: Options) -> Quote:
    """Price `cart` for `member` under `rules`; deterministic for equal inputs.

    The explanation is built for the chosen combination only, once the search is
    over, from the names in the rule set (templates', promotions', tiers')."""
    check_cart(cart)
    notes: list[Note] = []
    if options.skip_all:
        amounts, member_saving = [line.subtotal for line in cart.lines], 0
        notes.append(Note("benefits_skipped", *reasons.SIMPLE[Reason.SKIPPED], {}))
    else:
        amounts, member_saving = _member_prices(rules, member, cart)
    start = State.start(cart.lines, amounts)
    applied: list[Applied] = []
    if member_saving:
        per_line = [sub - a for sub, a in zip(start.original, amounts, strict=True)]
        tier = member.tier or ""
        tier_name = rules.tier_names.get(tier, tier)
        applied.append(
            Applied(
                "member_price",
                "member_price",
                member_saving,
                None,
                tuple(per_line),
                f"会员价（{tier_name}）",
            )
        )
        notes.append(
            Note(
                "member_price",
                f"会员价（{tier_name}）省 {yuan(member_saving)} 元",
                f"member price ({tier_name}) saves ¥{yuan(member_saving)}",
                {"tier": member.tier, "saving_fen": member_saving},
            )
        )
    unusable: list[Unused] = []
    cands, by_id = _candidates(rules, member, cart, options, unusable, notes)
    order = {k.value: i for i, k in enumerate(rules.stacking.order)}
    s = _Search(rules, member, options, start, order)
    best = _choose(s, cands, unusable, notes)
    _explain_rest(s, best, cands, unusable)
    results = best.results
    for c, outcome in results:
        label = c.label
        saving = outcome.saving
        applied.append(
            Applied(
                c.benefit.id,
                c.benefit.kind.value,
                saving,
                c.coupon.id if c.coupon else None,
                tuple(outcome.per_line),
                label,
            )
        )
        detail: dict[str, object] = {"benefit": c.benefit.id, "kind": c.benefit.kind.value}
        if c.coupon is not None:
            detail["coupon_id"] = c.coupon.id
        detail["saving_fen"] = saving
        code = "coupon_applied" if c.coupon else "promotion_applied"
        if saving:
            notes.append(
                Note(
                    code, f"{label} 省 {yuan(saving)} 元", f"{label} saves ¥{yuan(saving)}", detail
                )
            )
        else:
            notes.append(
                Note(
                    code,
                    f"{label} 本身不省钱，但让其他优惠多省",
                    f"{label} saves nothing itself but lets the other benefits save more",
                    detail,
                )
            )
    if best.points:
        notes.append(
            Note(
                "points_offset",
                f"{best.points} 积分抵 {yuan(best.offset)} 元",
                f"{best.points} points pay ¥{yuan(best.offset)}",
                {"points": best.points, "offset_fen": best.offset},
            )
        )
    elif options.points != PointsRequest.NONE and not _points_allowed(best.combo):
        notes.append(
            Note(
                "points_offset_not_allowed",
                "所选的券不可与积分抵扣同用",
                "points cannot pay together with the chosen coupon(s)",
                {},
            )
        )
    debug: dict[str, int | bool] = {"combinations_evaluated": s.evaluations}
    if not s.complete:
        # The search stopped at its budget (see `search`): the quote is legal, and
        # probably but not surely the best. Said only then, so that the usual
        # quote's `debug` keeps its shape.
        debug["search_complete"] = False
    discount, points, offset = best.discount, best.points, best.offset
    left = best.state.amounts
    offsets = best.offset_lines or [0] * len(cart.lines)
    # The search is over: let it go before the quote's own objects are made.
    del s, best, cands

    after = [a - o for a, o in zip(left, offsets, strict=True)]
    change = _change(rules, cart.store, sum(after))
    change_lines = allocate(change, after)
    if change:
        applied.append(
            Applied("change_rounding", "change_rounding", change, None, tuple(change_lines), "抹零")
        )
        notes.append(
            Note(
                "change_rounding",
                f"抹零 {yuan(change)} 元",
                f"rounding off the change: ¥{yuan(change)}",
                {"rounding_fen": change},
            )
        )
    paid = [a - c for a, c in zip(after, change_lines, strict=True)]
    multiplied = [c for c, _ in results if c.benefit.points_multiplier is not None]
    earned = earn(
        rules,
        member,
        cart,
        paid,
        [Fraction(c.benefit.points_multiplier or 1) for c in multiplied],
        [(c.benefit.id, c.label) for c in multiplied],
    )
    notes += earned.explanation

    lines = []
    for i, line in enumerate(cart.lines):
        offset_i = offsets[i]
        discount_i = start.original[i] - paid[i] - offset_i
        lines.append(
            LineQuote(
                line.sku,
                line.qty,
                start.original[i],
                discount_i,
                offset_i,
                paid[i],
                earned.per_line[i],
            )
        )
    subtotal = sum(start.original)
    unusable.sort(key=_by_coupon_id)
    return Quote(
        subtotal=subtotal,
        discount=member_saving + discount + change,
        points_redeemed=points,
        points_offset=offset,
        rounding=change,
        payable=sum(paid),
        points_earned=earned.total,
        applied=tuple(applied),
        unusable=tuple([_unusable(coupon, why, by_id) for coupon, why in unusable]),
        lines=tuple(lines),
        explanation=tuple(notes),
        points_rules=earned.rules,
        debug=debug,
    )
