"""Each benefit kind as a small function over the cart's running amounts.

A kind looks at what each line still costs (`State.amounts`), works out its
saving and returns it split over the lines; the engine subtracts it. Units
taken by an item, bundle or multibuy benefit are marked consumed so two
benefits never discount the same unit twice (Oscar's LineOfferConsumer idea).
Unit-level kinds pick units across lines (the same sku may come as one line per
scan), and book each unit's saving on its own line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loyalpos.domain.pricing import reasons
from loyalpos.domain.pricing.allocation import allocate, percent_of
from loyalpos.domain.pricing.model import CartLine
from loyalpos.domain.pricing.reasons import Ineligible, Reason
from loyalpos.domain.pricing.rules import Benefit, Kind, NthGroup, Scope, ThresholdBase


@dataclass(slots=True)
class State:
    """The cart as benefits are applied: per line, what is still payable, and
    how many units (worth how much of that) earlier benefits consumed."""

    lines: tuple[CartLine, ...]
    original: tuple[int, ...]
    amounts: list[int]
    consumed: list[int]
    held: list[int]
    # Lines in each scope, worked out once per cart and shared by every copy:
    # id(scope) -> (the scope, kept alive so its id is not reused; line indexes);
    # (categories, skus, excluded categories, excluded skus) -> (the same, line
    # indexes), shared by equal scopes; ("sku", sku) and ("cat", category) -> the
    # lines of that sku or category.
    in_scope: dict[object, tuple[object, tuple[int, ...]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def start(cls, lines: tuple[CartLine, ...], amounts: list[int]) -> State:
        n = len(lines)
        return cls(lines, tuple(x.subtotal for x in lines), list(amounts), [0] * n, [0] * n)

    def copy(self) -> State:
        return State(
            self.lines,
            self.original,
            self.amounts[:],
            self.consumed[:],
            self.held[:],
            self.in_scope,
        )

    def scope_lines(self, scope: Scope) -> tuple[int, ...]:
        """Indexes of the lines `scope` accepts (`Scope.line_ok`), in cart order.
        Scopes that list the same categories and skus share one tuple."""
        found = self.in_scope.get(id(scope))
        if found is None or found[0] is not scope:
            key = (scope.categories, scope.skus, scope.exclude_categories, scope.exclude_skus)
            equal = self.in_scope.get(key)
            if equal is None:
                equal = self.in_scope[key] = (key, self._lines_in(scope))
            found = self.in_scope[id(scope)] = (scope, equal[1])
        return found[1]

    def _lines_in(self, scope: Scope) -> tuple[int, ...]:
        """`Scope.line_ok` over the lines, with its common cases spelt out."""
        if scope.exclude_skus or scope.exclude_categories:
            return tuple([i for i, x in enumerate(self.lines) if scope.line_ok(x)])
        if not scope.categories and not scope.skus:
            return tuple(range(len(self.lines)))
        self._index()
        index = self.in_scope
        empty: tuple[object, tuple[int, ...]] = (None, ())
        parts = [index.get(("cat", c), empty)[1] for c in scope.categories]
        parts += [index.get(("sku", k), empty)[1] for k in scope.skus]
        if len(parts) == 1:
            return parts[0]
        return tuple(sorted(set().union(*parts)))

    def _index(self) -> None:
        """("sku", sku) and ("cat", category) -> their lines, in one pass per cart."""
        if ("sku", None) in self.in_scope:
            return
        skus: dict[str, list[int]] = {}
        categories: dict[str, list[int]] = {}
        for i, x in enumerate(self.lines):
            skus.setdefault(x.sku, []).append(i)
            categories.setdefault(x.category, []).append(i)
        for k, v in skus.items():
            self.in_scope[("sku", k)] = (k, tuple(v))
        for k, v in categories.items():
            self.in_scope[("cat", k)] = (k, tuple(v))
        self.in_scope[("sku", None)] = (None, ())

    def sku_lines(self, sku: str) -> tuple[int, ...]:
        """Indexes of the lines of `sku`, in cart order."""
        found = self.in_scope.get(("sku", sku))
        if found is None:
            self._index()
            found = self.in_scope.get(("sku", sku)) or (sku, ())
        return found[1]

    def free_units(self, i: int) -> int:
        return self.lines[i].qty - self.consumed[i]

    def unit_prices(self, i: int) -> list[int]:
        """Current prices of the line's unconsumed units, dearest first: what
        `allocate(value, [1] * n)` gives, an equal split whose leftover fen go to
        the first units."""
        n = self.free_units(i)
        if not n:
            return []
        value = self.amounts[i] - self.held[i]
        if value < 0:
            return allocate(value, [1] * n)  # refuses, as allocate does
        q, r = divmod(value, n)
        return [q + 1] * r + [q] * (n - r)

    def dearest_unit_price(self, i: int) -> int:
        """`unit_prices(i)[0]`, without building the list (the line has free units)."""
        value = self.amounts[i] - self.held[i]
        if value < 0:
            return self.unit_prices(i)[0]
        return -(-value // self.free_units(i))

    def take(
        self, per_line: list[int], *, whole_line: bool, lines: Iterable[int] | None = None
    ) -> None:
        """Subtract a discount. One on the whole line (order-level) lowers the
        consumed units' share in step; one on particular units does not.
        `lines`, when given, holds every line where `per_line` is not zero."""
        for i in range(len(per_line)) if lines is None else lines:
            d = per_line[i]
            if d:
                if whole_line and self.held[i]:
                    self.held[i] -= d * self.held[i] // self.amounts[i]
                self.amounts[i] -= d


@dataclass(frozen=True, slots=True)
class Outcome:
    saving: int
    per_line: list[int]
    consume: list[tuple[int, int, int]]  # (line, units, value still held by them)


Result = Outcome | Ineligible
Apply = Callable[[Benefit, State, ThresholdBase], Result]


def _eligible(b: Benefit, st: State) -> list[int]:
    amounts = st.amounts
    return [i for i in st.scope_lines(b.scope) if amounts[i] > 0]


def _spread(saving: int, idx: list[int], st: State, weights: list[int] | None = None) -> list[int]:
    """`saving` allocated over lines `idx` in proportion to what they still cost
    (`weights`, when the caller has them already)."""
    per_line = [0] * len(st.lines)
    if weights is None:
        weights = [st.amounts[i] for i in idx]
    for i, part in zip(idx, allocate(saving, weights), strict=True):
        per_line[i] = part
    return per_line


def _base(b: Benefit, st: State, idx: list[int], default: ThresholdBase) -> int:
    base = b.threshold_base or default
    source = st.original if base is ThresholdBase.ORIGINAL else st.amounts
    return sum(source[i] for i in idx)


def order_level(
    b: Benefit, current: int, base: int, has_lines: bool, cap: int | None
) -> int | Ineligible:
    """The saving of an order-level benefit (`threshold`, `percent`, `cash`) from
    sums alone: `current` is what its lines still cost, `base` the amount its
    threshold is measured on, `has_lines` whether any cart line is in its scope,
    `cap` a budget cap. `apply` and the engine's quick evaluation both use it, so
    the two agree to the fen."""
    if not current:
        if has_lines:
            # In scope but already fully discounted: it saves nothing, items are there.
            return 0
        return reasons.simple(Reason.NO_ELIGIBLE_ITEMS)
    if base < b.threshold:
        return reasons.below_threshold(b.threshold - base, b.threshold)
    kind = b.kind
    if kind is Kind.THRESHOLD:
        saving = (base // b.step) * b.amount if b.step else b.amount
    elif kind is Kind.PERCENT:
        saving = current - percent_of(current, b.percent)
    else:  # cash
        saving = b.amount
    if b.cap is not None:
        saving = min(saving, b.cap)
    saving = max(0, min(saving, current))
    return saving if cap is None else min(saving, cap)


def _order_level(b: Benefit, st: State, default: ThresholdBase, spread: bool = True) -> Result:
    """The saving of an order-level benefit, spread over its lines (`spread`;
    without it, `per_line` is left empty: see `preview`). A budget cap is
    applied by `apply`."""
    idx = _eligible(b, st)
    amounts = st.amounts
    weights = [amounts[i] for i in idx]
    current = sum(weights)
    if idx and (b.threshold_base or default) is ThresholdBase.ORIGINAL:
        base = _base(b, st, idx, default)
    else:
        base = current  # measured on what the lines still cost: the same sum
    found = order_level(b, current, base, bool(st.scope_lines(b.scope)), None)
    if isinstance(found, Ineligible):
        return found
    if not idx:
        return Outcome(0, [0] * len(st.lines), [])
    return Outcome(found, _spread(found, idx, st, weights) if spread else [], [])


def threshold(b: Benefit, st: State, default: ThresholdBase, spread: bool = True) -> Result:
    """满减: spend ≥ threshold → minus amount; with `step`, minus amount per full step."""
    return _order_level(b, st, default, spread)


def percent(b: Benefit, st: State, default: ThresholdBase, spread: bool = True) -> Result:
    """折扣: pay `percent` (hundredths of a percent) of the eligible amount."""
    return _order_level(b, st, default, spread)


def cash(b: Benefit, st: State, default: ThresholdBase, spread: bool = True) -> Result:
    """代金券: minus amount, never below zero."""
    return _order_level(b, st, default, spread)


def _dearest_unit(st: State, sku: str | None, b: Benefit) -> tuple[int, int] | None:
    """(line, unit price) of the dearest free unit of `sku` (or in scope)."""
    best: tuple[int, int] | None = None
    candidates = st.scope_lines(b.scope) if sku is None else st.sku_lines(sku)
    for i in candidates:
        if st.free_units(i) <= 0:
            continue
        price = st.dearest_unit_price(i)
        if best is None or price > best[1]:
            best = (i, price)
    return best


def item(b: Benefit, st: State, _default: ThresholdBase) -> Result:
    """兑换券 / 商品券: one unit of the item free (price 0) or at a set price."""
    found = _dearest_unit(st, b.sku or None, b)
    if found is None:
        return reasons.simple(Reason.NO_ELIGIBLE_ITEMS, sku=b.sku)
    i, price = found
    saving = max(0, price - b.price)
    per_line = [0] * len(st.lines)
    per_line[i] = saving
    return Outcome(saving, per_line, [(i, 1, price - saving)])


def bundle(b: Benefit, st: State, _default: ThresholdBase) -> Result:
    """套餐券: one unit of each listed item together at a set price."""
    picks: list[tuple[int, int]] = []
    trial = st.copy()
    for sku in b.bundle:
        found = _dearest_unit(trial, sku, b)
        if found is None:
            return reasons.simple(Reason.NO_ELIGIBLE_ITEMS, missing=sku)
        picks.append(found)
        trial.consumed[found[0]] += 1
        trial.held[found[0]] += found[1]
    total = sum(price for _, price in picks)
    saving = max(0, total - b.price)
    shares = allocate(saving, [price for _, price in picks])
    per_line = [0] * len(st.lines)
    consume: list[tuple[int, int, int]] = []
    for (i, price), share in zip(picks, shares, strict=True):
        per_line[i] += share
        consume.append((i, 1, price - share))
    return Outcome(saving, per_line, consume)


def _runs(st: State, idx: Iterable[int]) -> list[tuple[int, int, int]]:
    """The free units of lines `idx` as runs (-price, line, units), dearest
    first, then by line: each line's `unit_prices` (at most two prices, a fen
    apart) without listing its units one by one."""
    runs: list[tuple[int, int, int]] = []
    amounts, held = st.amounts, st.held
    for i in idx:
        n = st.free_units(i)
        if n <= 0:
            continue
        value = amounts[i] - held[i]
        if value < 0:
            st.unit_prices(i)  # refuses, as allocate does
        q, r = divmod(value, n)
        if r:
            runs.append((-q - 1, i, r))
        if n > r:
            runs.append((-q, i, n - r))
    runs.sort()
    return runs


def _grouped(
    runs: list[tuple[int, int, int]],
    size: int,
    saving_of: Callable[[int], int],
    per_line: list[int],
    consume: list[tuple[int, int, int]],
    *,
    spread: bool = False,
) -> bool:
    """Units in `runs` (dearest first) in groups of `size`; the last (cheapest)
    unit of each full group saves `saving_of(its price)`, booked in `per_line` on
    that unit's line, or with `spread` over the group's units in proportion to
    their prices (largest remainder); every unit of the full groups is consumed,
    `consume` gets (line, units, what they still hold) per line. The units past
    the last full group (the cheapest) stay free. False if there is no full group.

    A group inside one run (one line, one price) books on that line either way;
    only a group that straddles runs is split, so a long line costs no more."""
    end = sum([units for _, _, units in runs]) // size * size  # units taken
    if not end:
        return False
    taken: dict[int, list[int]] = {}  # line -> [units, their value]
    # The group being filled: line -> the value of its units in it (as met).
    partial: dict[int, int] = {}
    pos = 0
    for neg, i, units in runs:
        if pos >= end:
            break
        price = -neg
        k = min(units, end - pos)
        if spread:
            left = k
            if pos % size:  # finish the group an earlier run started
                t = min(size - pos % size, left)
                partial[i] = partial.get(i, 0) + t * price
                left -= t
                if (pos + t) % size == 0:
                    shares = allocate(saving_of(price), list(partial.values()))
                    for line, share in zip(partial, shares, strict=True):
                        per_line[line] += share
                    partial = {}
            whole, rest = divmod(left, size)
            if whole:
                per_line[i] += whole * saving_of(price)
            if rest:
                partial = {i: rest * price}
        else:
            # Group ends among positions pos .. pos + k - 1: each p with (p + 1) % size == 0.
            ends = (pos + k) // size - pos // size
            if ends:
                per_line[i] += ends * saving_of(price)
        found = taken.get(i)
        if found is None:
            taken[i] = [k, price * k]
        else:  # the line's second price
            found[0] += k
            found[1] += price * k
        pos += k
    for i in sorted(taken):
        units, value = taken[i]
        consume.append((i, units, value - per_line[i]))
    return True


def nth_discount(b: Benefit, st: State, _default: ThresholdBase) -> Result:
    """第 N 件 X 折 (第二件半价): the units in scope, of one sku over all its lines
    (`nth_group` sku) or of any skus together (mixed: 任选), dearest first, in
    groups of `nth`; the cheapest unit of each group pays `percent`. A till that
    sends one line per scan gets what one line of the same units gets, line by
    line too: per sku, a group's saving is spread over its units (by price), as
    within one line; mixed (任选), it stays on the discounted item's line, which
    the receipt shows discounted."""
    per_line = [0] * len(st.lines)
    consume: list[tuple[int, int, int]] = []
    pct = b.percent

    def saving_of(price: int) -> int:
        return price - percent_of(price, pct)

    idx = _eligible(b, st)
    if b.nth_group is NthGroup.MIXED:
        found = _grouped(_runs(st, idx), b.nth, saving_of, per_line, consume)
    else:
        by_sku: dict[str, list[int]] = {}
        lines = st.lines
        for i in idx:
            by_sku.setdefault(lines[i].sku, []).append(i)
        found = False
        for same in by_sku.values():
            # Units of one sku are alike: a group's saving is shared by its units,
            # so one line per scan books (and refunds) as one line of them does.
            runs = _runs(st, same)
            found = _grouped(runs, b.nth, saving_of, per_line, consume, spread=True) or found
        consume.sort()
    if not found:
        return reasons.simple(Reason.NO_ELIGIBLE_ITEMS, needed_units=b.nth)
    return Outcome(sum(per_line), per_line, consume)


def _whole(price: int) -> int:
    return price


def buy_n_free(b: Benefit, st: State, _default: ThresholdBase) -> Result:
    """买 N 免 1: of every `n` eligible units (across lines, dearest first), the
    cheapest is free."""
    per_line = [0] * len(st.lines)
    consume: list[tuple[int, int, int]] = []
    if not _grouped(_runs(st, _eligible(b, st)), b.n, _whole, per_line, consume):
        return reasons.simple(Reason.NO_ELIGIBLE_ITEMS, needed_units=b.n)
    return Outcome(sum(per_line), per_line, consume)


def items_in_scope(scope: Scope, lines: Iterable[CartLine]) -> int:
    """What a count threshold (满 N 件) counts: the units of the lines in `scope`
    with a unit price above 0, as the cart came in: a free gift line never
    counts, a unit that member prices or another benefit make cheaper or free
    still does. A fact of the cart that no benefit changes, so it is checked
    once with the other candidate checks, before the search."""
    return sum([x.qty for x in lines if x.unit_price > 0 and scope.line_ok(x)])


def below_count(b: Benefit, lines: Iterable[CartLine]) -> Ineligible | None:
    """Why `b` cannot apply for want of items (`threshold_items`), or None."""
    need = b.threshold_items
    if not need:
        return None
    have = items_in_scope(b.scope, lines)
    if have >= need:
        return None
    return reasons.below_count_threshold(need - have, need)


KINDS: dict[Kind, Apply] = {
    Kind.THRESHOLD: threshold,
    Kind.PERCENT: percent,
    Kind.CASH: cash,
    Kind.ITEM: item,
    Kind.BUNDLE: bundle,
    Kind.NTH_DISCOUNT: nth_discount,
    Kind.BUY_N_FREE: buy_n_free,
}


ORDER_LEVEL: dict[Kind, Callable[[Benefit, State, ThresholdBase, bool], Result]] = {
    Kind.THRESHOLD: threshold,
    Kind.PERCENT: percent,
    Kind.CASH: cash,
}


def preview(b: Benefit, st: State, default: ThresholdBase, cap: int | None) -> int | Ineligible:
    """The saving `apply` would book, or why `b` cannot apply, leaving `st` as it
    is; an order-level benefit skips spreading its saving over the lines."""
    order_level = ORDER_LEVEL.get(b.kind)
    if order_level is not None:
        outcome = order_level(b, st, default, False)
    else:
        outcome = KINDS[b.kind](b, st, default)
    if isinstance(outcome, Ineligible):
        return outcome
    return min(outcome.saving, cap) if cap is not None else outcome.saving


def _capped(outcome: Outcome, cap: int) -> Outcome:
    """`outcome` held to `cap`. The units it consumes keep what the cap did not
    take off them: a later benefit must not see them as free of charge."""
    per_line = allocate(cap, outcome.per_line)
    back = {i: d - per_line[i] for i, d in enumerate(outcome.per_line) if d != per_line[i]}
    consume = []
    for i, units, value in outcome.consume:
        consume.append((i, units, value + back.pop(i, 0)))
    return Outcome(cap, per_line, consume)


def apply(b: Benefit, st: State, default: ThresholdBase, cap: int | None) -> Result:
    """Work out `b` on `st` and, if usable, book it into `st`."""
    outcome = KINDS[b.kind](b, st, default)
    if isinstance(outcome, Ineligible):
        return outcome
    per_line = outcome.per_line
    if cap is not None and outcome.saving > cap:
        outcome = _capped(outcome, cap)
        per_line = outcome.per_line
    if outcome.consume:
        # A unit-level kind discounts only the lines it consumes units of.
        st.take(per_line, whole_line=False, lines=dict.fromkeys(i for i, _, _ in outcome.consume))
    else:
        st.take(per_line, whole_line=True, lines=st.scope_lines(b.scope))
    for i, units, value in outcome.consume:
        st.consumed[i] += units
        st.held[i] += value
    return outcome
