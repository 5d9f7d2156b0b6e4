"""`quote()`: the whole pricing of one cart, as a pure function.

Order of application (documented in docs/benefit-engine.md):
1. member prices (会员价), item-level, always first;
2. the chosen coupons and promotions, in `stacking.order` of kinds (item-level
   kinds before order-level ones), then priority (higher first), then id;
3. points offset (积分抵扣) on what is left, within its cap;
4. rounding off the change (抹零), always in the customer's favour;
5. points earned on what the customer pays.

The combination of coupons and promotions is chosen by an exact
branch-and-bound search (see `search`): savings are subadditive (a benefit never
saves more because another was applied first), so "current saving + the best
remaining standalone savings" bounds every extension.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

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
    Options,
    PointsRequest,
    Quote,
    Strategy,
    Unusable,
    WalletCoupon,
)
from loyalpos.domain.pricing.reasons import Ineligible, Reason
from loyalpos.domain.pricing.rules import Benefit, ChangeRounding, RuleSet

MAX_LINES = 500
MAX_QTY = 10_000
MAX_UNIT_PRICE = 100_000_000  # 1,000,000 元
FAR_FUTURE = datetime.max


@dataclass(frozen=True, slots=True)
class Candidate:
    """A usable benefit: a wallet coupon, or a promotion (coupon None)."""

    benefit: Benefit
    coupon: WalletCoupon | None
    expires: datetime
    cap: int | None

    @property
    def key(self) -> str:
        return self.coupon.id if self.coupon else f"promotion:{self.benefit.id}"

    @property
    def label(self) -> str:
        return self.benefit.name or self.benefit.id


@dataclass(slots=True)
class Evaluation:
    combo: tuple[Candidate, ...]
    saving: int
    discount: int
    state: State
    results: list[tuple[Candidate, benefits.Outcome]]
    points: int
    offset: int
    offset_lines: list[int]
    failed: tuple[Candidate, Ineligible] | None = None


@dataclass
class _Search:
    rules: RuleSet
    member: MemberContext
    options: Options
    start: State
    order: dict[str, int]
    compat: dict[tuple[str, str], bool] = field(default_factory=dict)
    evaluations: int = 0


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
    amounts = [line.subtotal for line in cart.lines]
    if member.tier is None:
        return amounts, 0
    pct = mp.tier_percent.get(member.tier)
    for i, line in enumerate(cart.lines):
        fixed = mp.item_prices.get(line.sku, {}).get(member.tier)
        if fixed is not None and fixed < line.unit_price:
            amounts[i] = fixed * line.qty
        elif pct is not None and mp.scope.line_ok(line):
            amounts[i] = percent_of(line.subtotal, pct)
    return amounts, sum(line.subtotal for line in cart.lines) - sum(amounts)


def _static_check(
    b: Benefit, coupon: WalletCoupon | None, cart: Cart, member: MemberContext, options: Options
) -> Ineligible | None:
    now = cart.local_time
    valid_from = max((t for t in (b.valid_from, coupon and coupon.valid_from) if t), default=None)
    valid_to = min((t for t in (b.valid_to, coupon and coupon.expires_at) if t), default=None)
    if valid_to is not None and now >= valid_to:
        return reasons.simple(Reason.EXPIRED, expired_at=valid_to.isoformat())
    if valid_from is not None and now < valid_from:
        return reasons.simple(Reason.NOT_YET_VALID, valid_from=valid_from.isoformat())
    if not b.scope.store_ok(cart.store):
        return reasons.simple(Reason.STORE_NOT_ELIGIBLE, store=cart.store)
    if not b.scope.tier_ok(member.tier):
        return reasons.simple(Reason.TIER_NOT_ELIGIBLE, tier=member.tier)
    if not b.scope.window.contains(now):
        return reasons.simple(Reason.OUTSIDE_TIME_WINDOW)
    usage = member.usage.get(b.id)
    limit = b.member_limit
    if usage is not None:
        for used, allowed, zh, en in (
            (usage.day, limit.per_day, "每日", "per day"),
            (usage.week, limit.per_week, "每周", "per week"),
            (usage.month, limit.per_month, "每月", "per month"),
        ):
            if allowed is not None and used >= allowed:
                return reasons.limit(
                    f"{zh}限用 {allowed} 次", f"{allowed} use(s) {en}", used=used, allowed=allowed
                )
    budget = options.budgets.get(b.id)
    if budget is not None and (budget.uses == 0 or budget.discount == 0):
        return reasons.limit("活动预算已用完", "the campaign budget is used up")
    return None


def _cap(b: Benefit, options: Options) -> int | None:
    budget = options.budgets.get(b.id)
    return budget.discount if budget is not None else None


def _expiry(b: Benefit, coupon: WalletCoupon | None) -> datetime:
    times = [t for t in (b.valid_to, coupon and coupon.expires_at) if t]
    return min(times) if times else FAR_FUTURE


def _sort_key(s: _Search, c: Candidate) -> tuple[int, int, str]:
    return (s.order.get(c.benefit.kind, 99), -c.benefit.priority, c.key)


def _points_allowed(combo: Sequence[Candidate]) -> bool:
    return all(c.coupon is None or c.benefit.with_points for c in combo)


def _offset(s: _Search, st: State, combo: Sequence[Candidate]) -> tuple[int, int, list[int]]:
    """(points, fen, per line) of the points offset on what `st` still costs."""
    po = s.rules.points_offset
    request = s.options.points
    if not po.enabled or request == PointsRequest.NONE or s.options.skip_all:
        return 0, 0, [0] * len(st.amounts)
    if not _points_allowed(combo):
        return 0, 0, [0] * len(st.amounts)
    left = sum(st.amounts)
    cap_fen = left * po.cap_percent // 10000
    by_cap = cap_fen * po.points_per_unit // po.unit_fen
    wanted = s.member.points if request == PointsRequest.MAX else int(request)
    points = min(wanted, s.member.points, by_cap)
    points -= points % po.step
    if points < max(po.min_points, 1):
        return 0, 0, [0] * len(st.amounts)
    fen = points * po.unit_fen // po.points_per_unit
    return points, fen, allocate(fen, st.amounts)


def evaluate(s: _Search, combo: tuple[Candidate, ...]) -> Evaluation:
    """Apply `combo` in the documented order to a copy of the starting state."""
    s.evaluations += 1
    st = s.start.copy()
    results: list[tuple[Candidate, benefits.Outcome]] = []
    base = s.rules.stacking.threshold_base
    for c in sorted(combo, key=lambda c: _sort_key(s, c)):
        outcome = benefits.apply(c.benefit, st, base, c.cap)
        if isinstance(outcome, Ineligible):
            return Evaluation(combo, -1, 0, st, results, 0, 0, [], (c, outcome))
        results.append((c, outcome))
    discount = sum(o.saving for _, o in results)
    points, fen, per_line = _offset(s, st, combo)
    return Evaluation(combo, discount + fen, discount, st, results, points, fen, per_line)


def _pair_ok(s: _Search, a: Candidate, b: Candidate) -> bool:
    key = (a.key, b.key)
    found = s.compat.get(key)
    if found is None:
        found = _compatible(s.rules, a, b)
        s.compat[key] = s.compat[(b.key, a.key)] = found
    return found


def _compatible(rules: RuleSet, a: Candidate, b: Candidate) -> bool:
    if a.benefit.exclusive or b.benefit.exclusive:
        return False
    names_a = {a.benefit.kind.value, a.benefit.id}
    names_b = {b.benefit.kind.value, b.benefit.id}
    for group in rules.stacking.exclusive_groups:
        if group & names_a and group & names_b:
            return False
    for x, y in rules.stacking.forbidden_pairs:
        if (x in names_a and y in names_b) or (y in names_a and x in names_b):
            return False
    return True


def _fits(s: _Search, combo: Sequence[Candidate], c: Candidate) -> Ineligible | None:
    """Why `c` may not join `combo`, or None if it may."""
    for other in combo:
        if not _pair_ok(s, other, c):
            return reasons.conflict(other.label, other.key)
    if c.coupon is not None:
        coupons = [x for x in combo if x.coupon is not None]
        if len(coupons) >= s.rules.stacking.max_coupons:
            return reasons.limit(
                f"每单最多 {s.rules.stacking.max_coupons} 张券",
                f"{s.rules.stacking.max_coupons} coupon(s) per order",
                max_coupons=s.rules.stacking.max_coupons,
            )
        same = sum(1 for x in coupons if x.benefit.id == c.benefit.id)
        if same >= c.benefit.max_per_order:
            return reasons.limit(
                f"此券每单限用 {c.benefit.max_per_order} 张",
                f"{c.benefit.max_per_order} per order",
                max_per_order=c.benefit.max_per_order,
            )
    return None


def _rank(e: Evaluation) -> tuple[int, tuple[datetime, ...], int, tuple[str, ...]]:
    coupons = [c for c in e.combo if c.coupon is not None]
    return (
        -e.saving,
        tuple(sorted(c.expires for c in coupons)),
        len(coupons),
        tuple(sorted(c.key for c in e.combo)),
    )


def irreducible(s: _Search, e: Evaluation, forced: tuple[Candidate, ...]) -> bool:
    """No benefit of `e` (other than forced ones) can be dropped without losing
    saving: a coupon that adds nothing is never spent."""
    for c in e.combo:
        if c in forced:
            continue
        rest = tuple(x for x in e.combo if x is not c)
        if evaluate(s, rest).saving >= e.saving:
            return False
    return True


def search(
    s: _Search, forced: tuple[Candidate, ...], optional: list[tuple[Candidate, int]]
) -> Evaluation:
    """The best legal combination containing `forced`, exactly.

    `optional` pairs each candidate with its standalone saving; depth-first,
    best standalone first, pruning a branch when even the best remaining
    savings (within the coupon limit) cannot reach the best found so far.
    Among equal savings the rank prefers coupons that expire first, then fewer
    coupons, then ids; only irreducible combinations compete.
    """
    ranked = sorted(optional, key=lambda cs: (-cs[1], cs[0].expires, cs[0].key))
    best = evaluate(s, forced)
    max_coupons = s.rules.stacking.max_coupons

    def bound(i: int, coupons_left: int) -> int:
        total, used = 0, 0
        for c, saving in ranked[i:]:
            if c.coupon is None:
                total += saving
            elif used < coupons_left:
                total += saving
                used += 1
        return total

    def dfs(i: int, combo: tuple[Candidate, ...], current: Evaluation) -> None:
        nonlocal best
        if current.saving >= 0 and _rank(current) < _rank(best) and irreducible(s, current, forced):
            best = current
        if i >= len(ranked):
            return
        coupons_left = max_coupons - sum(1 for c in combo if c.coupon is not None)
        if max(current.saving, 0) + bound(i, coupons_left) < best.saving:
            return
        c = ranked[i][0]
        if _fits(s, combo, c) is None:
            extended = evaluate(s, (*combo, c))
            if extended.saving >= 0:
                dfs(i + 1, (*combo, c), extended)
        dfs(i + 1, combo, current)

    if best.saving >= 0:
        dfs(0, forced, best)
    return best


def _candidates(
    rules: RuleSet, member: MemberContext, cart: Cart, options: Options, unusable: list[Unusable]
) -> tuple[list[Candidate], list[str]]:
    notes: list[str] = []
    found: list[Candidate] = []
    for coupon in member.wallet:
        b = rules.benefit(coupon.template)
        problem: Ineligible | None
        if b is None or b.promotion:
            problem = reasons.simple(Reason.UNKNOWN_TEMPLATE, template=coupon.template)
        elif options.skip_all:
            problem = reasons.simple(Reason.SKIPPED)
        elif coupon.id in options.exclude:
            problem = reasons.simple(Reason.EXCLUDED)
        else:
            problem = _static_check(b, coupon, cart, member, options)
        if problem is not None:
            unusable.append(_unusable(coupon, problem))
            continue
        assert b is not None
        found.append(Candidate(b, coupon, _expiry(b, coupon), _cap(b, options)))
    if not options.skip_all:
        for b in rules.benefits:
            if not b.promotion:
                continue
            problem = _static_check(b, None, cart, member, options)
            if problem is None:
                found.append(Candidate(b, None, FAR_FUTURE, _cap(b, options)))
            else:
                notes.append(f"promotion {b.id} not in force: {problem.en}")
    return found, notes


def _unusable(coupon: WalletCoupon, why: Ineligible) -> Unusable:
    return Unusable(coupon.id, coupon.template, why.reason.value, why.zh, why.en, why.detail)


def _choose(
    s: _Search, cands: list[Candidate], unusable: list[Unusable], notes: list[str]
) -> Evaluation:
    forced: list[Candidate] = []
    for coupon_id in s.options.force:
        c = next((x for x in cands if x.key == coupon_id), None)
        if c is None:
            notes.append(f"forced coupon {coupon_id} cannot be used (see unusable)")
            continue
        why = _fits(s, forced, c)
        if why is not None:
            unusable.append(_unusable(c.coupon, why))  # type: ignore[arg-type]
            notes.append(f"forced coupon {coupon_id} conflicts with another forced coupon")
            continue
        alone = evaluate(s, (*forced, c))
        if alone.failed is not None:
            unusable.append(_unusable(c.coupon, alone.failed[1]))  # type: ignore[arg-type]
            notes.append(f"forced coupon {coupon_id} cannot be used: {alone.failed[1].en}")
            continue
        forced.append(c)
        notes.append(f"cashier forced coupon {coupon_id}")
    rest = [c for c in cands if c not in forced]
    optional: list[tuple[Candidate, int]] = []
    for c in rest:
        alone = evaluate(s, (c,))
        if alone.failed is not None:
            if c.coupon is not None:
                unusable.append(_unusable(c.coupon, alone.failed[1]))
            else:
                notes.append(f"promotion {c.benefit.id} does not apply: {alone.failed[1].en}")
            continue
        if alone.discount <= 0:
            if c.coupon is not None:
                unusable.append(_unusable(c.coupon, reasons.simple(Reason.NO_EXTRA_SAVING)))
            continue
        optional.append((c, alone.discount))
    if s.options.strategy is Strategy.EARLIEST_EXPIRY:
        chosen = list(forced)
        current = evaluate(s, tuple(chosen))
        for c, _ in sorted(
            (x for x in optional if x[0].coupon is not None),
            key=lambda cs: (cs[0].expires, cs[0].key),
        ):
            if _fits(s, chosen, c) is not None:
                continue
            trial = evaluate(s, (*chosen, c))
            if trial.saving >= 0 and trial.discount > current.discount:
                chosen.append(c)
                current = trial
        notes.append("strategy earliest_expiry: soonest-expiring usable coupons first")
        promos = [x for x in optional if x[0].coupon is None]
        return search(s, tuple(chosen), promos)
    return search(s, tuple(forced), optional)


def _explain_rest(
    s: _Search, best: Evaluation, cands: list[Candidate], unusable: list[Unusable]
) -> None:
    """Say why each usable coupon that was not chosen was left out."""
    chosen = {c.key for c in best.combo}
    listed = {u.coupon_id for u in unusable}
    for c in cands:
        if c.coupon is None or c.key in chosen or c.key in listed:
            continue
        why = _fits(s, best.combo, c)
        if why is None:
            trial = evaluate(s, (*best.combo, c))
            why = trial.failed[1] if trial.failed else reasons.simple(Reason.NO_EXTRA_SAVING)
        unusable.append(_unusable(c.coupon, why))


def _change(rules: RuleSet, store: str, payable: int) -> int:
    mode = rules.store_change_rounding.get(store, rules.change_rounding)
    if mode is ChangeRounding.FEN:
        return payable % 10
    if mode is ChangeRounding.JIAO:
        return payable % 100
    return 0


def quote(rules: RuleSet, member: MemberContext, cart: Cart, options: Options) -> Quote:
    """Price `cart` for `member` under `rules`; deterministic for equal inputs."""
    check_cart(cart)
    notes: list[str] = []
    if options.skip_all:
        amounts, member_saving = [line.subtotal for line in cart.lines], 0
        notes.append("cashier skipped all benefits")
    else:
        amounts, member_saving = _member_prices(rules, member, cart)
    start = State.start(cart.lines, amounts)
    applied: list[Applied] = []
    if member_saving:
        per_line = [line.subtotal - a for line, a in zip(cart.lines, amounts, strict=True)]
        applied.append(
            Applied("member_price", "member_price", member_saving, None, tuple(per_line))
        )
        notes.append(f"member price for tier {member.tier}: saves {yuan(member_saving)}")
    unusable: list[Unusable] = []
    cands, cand_notes = _candidates(rules, member, cart, options, unusable)
    notes += cand_notes
    order = {k.value: i for i, k in enumerate(rules.stacking.order)}
    s = _Search(rules, member, options, start, order)
    best = _choose(s, cands, unusable, notes)
    _explain_rest(s, best, cands, unusable)
    for c, outcome in best.results:
        applied.append(
            Applied(
                c.benefit.id,
                c.benefit.kind.value,
                outcome.saving,
                c.coupon.id if c.coupon else None,
                tuple(outcome.per_line),
            )
        )
        notes.append(
            f"{'coupon ' + c.key if c.coupon else 'promotion ' + c.benefit.id} "
            f"({c.benefit.kind.value}) saves {yuan(outcome.saving)}"
        )
    if best.points:
        notes.append(f"points offset: {best.points} points for {yuan(best.offset)}")
    elif options.points != PointsRequest.NONE and not _points_allowed(best.combo):
        notes.append("points offset not allowed with the chosen coupon(s)")
    notes.append(f"search evaluated {s.evaluations} combination(s)")

    after = [
        a - o
        for a, o in zip(best.state.amounts, best.offset_lines or [0] * len(amounts), strict=True)
    ]
    change = _change(rules, cart.store, sum(after))
    change_lines = allocate(change, after)
    if change:
        applied.append(
            Applied("change_rounding", "change_rounding", change, None, tuple(change_lines))
        )
        notes.append(f"rounding off the change (抹零): {yuan(change)}")
    paid = [a - c for a, c in zip(after, change_lines, strict=True)]
    multipliers = [
        c.benefit.points_multiplier
        for c, _ in best.results
        if c.benefit.points_multiplier is not None
    ]
    earned = earn(rules, member, cart, paid, [Fraction(m) for m in multipliers])
    notes += earned.explanation

    lines = []
    for i, line in enumerate(cart.lines):
        offset_i = best.offset_lines[i] if best.offset_lines else 0
        discount_i = line.subtotal - paid[i] - offset_i
        lines.append(
            LineQuote(
                line.sku, line.qty, line.subtotal, discount_i, offset_i, paid[i], earned.per_line[i]
            )
        )
    subtotal = sum(line.subtotal for line in cart.lines)
    unusable.sort(key=lambda u: u.coupon_id)
    return Quote(
        subtotal=subtotal,
        discount=member_saving + best.discount + change,
        points_redeemed=best.points,
        points_offset=best.offset,
        rounding=change,
        payable=sum(paid),
        points_earned=earned.total,
        applied=tuple(applied),
        unusable=tuple(unusable),
        lines=tuple(lines),
        explanation=tuple(notes),
    )
