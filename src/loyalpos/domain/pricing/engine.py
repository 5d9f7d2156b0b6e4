"""`quote()`: the whole pricing of one cart, as a pure function.

Order of application (documented in docs/benefit-engine.md):
1. member prices (会员价), item-level, always first;
2. the chosen coupons and promotions, in `stacking.order` of kinds (item-level
   kinds before order-level ones), then priority (higher first), then id;
3. points offset (积分抵扣) on what is left, within its cap;
4. rounding off the change (抹零), always in the customer's favour;
5. points earned on what the customer pays.

The combination of coupons and promotions is chosen by an exact
branch-and-bound search, exact unless it reaches its work budget, which the
quote then says in `debug`. Each idea has its own module, whose docstring
states the invariant it relies on:
- `starting`: the cart's limits and member prices (step 1);
- `eligibility`: which coupons and promotions may take part at all, and why
  not; `stacking`: which may sit together;
- `applying`: a sequence of benefits applied for real (caps, shared budgets,
  the split over the lines, the points offset); `quick`: the same saving
  without the split, which the search compares (both results in `applied`);
  `evaluation`: a combination and what it gives, memoised on its sequence;
- `choose`: forced coupons, candidates tried alone, the strategy; `search`:
  the branch and bound, what it passes over and its budget, over the
  `ranking` of candidates (their facts in `ranked`), with its `bounds`, the `moving` discounts that the
  bound allows for (savings are not subadditive: a benefit held may save more
  once another joins, never more than alone), the `dominance` between
  interchangeable coupons and the tie rule (`ties`);
- `explain`: why each coupon was not used, and the notes.
"""

from __future__ import annotations

from fractions import Fraction

from loyalpos.domain.pricing import benefits, reasons
from loyalpos.domain.pricing.allocation import allocate
from loyalpos.domain.pricing.benefits import State
from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.choose import choose
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.earning import Earned, earn
from loyalpos.domain.pricing.eligibility import candidates
from loyalpos.domain.pricing.explain import (
    Unused,
    benefits_applied,
    by_coupon_id,
    change_rounding,
    explain_rest,
    member_price,
    points_offset_note,
    unusable_entry,
)
from loyalpos.domain.pricing.model import (
    Applied,
    Cart,
    LineQuote,
    MemberContext,
    Note,
    Options,
    Quote,
)
from loyalpos.domain.pricing.reasons import Reason
from loyalpos.domain.pricing.rules import ChangeRounding, RuleSet
from loyalpos.domain.pricing.starting import check_cart, member_prices


def quote(rules: RuleSet, member: MemberContext, cart: Cart, options: Options) -> Quote:
    """Price `cart` for `member` under `rules`; deterministic for equal inputs.

    The explanation is built for the chosen combination only, once the search is
    over, from the names in the rule set (templates', promotions', tiers')."""
    check_cart(cart)
    notes: list[Note] = []
    applied: list[Applied] = []
    # 1. Member prices.
    start, member_saving = _start(rules, member, cart, options, applied, notes)
    # 2. The coupons and promotions: who may take part, the choice, why the others
    # were left out; 3. the points offset comes with the choice (it counts in
    # the saving).
    unusable: list[Unused] = []
    cands, by_id = candidates(rules, member, cart, options, unusable, notes)
    order = {k.value: i for i, k in enumerate(rules.stacking.order)}
    s = SearchContext(rules, member, options, start, order)
    best = choose(s, cands, unusable, notes)
    explain_rest(s, best, cands, unusable)
    results = best.results
    benefits_applied(results, applied, notes)
    points_note = points_offset_note(best, options)
    if points_note is not None:
        notes.append(points_note)
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

    # 4. 抹零; 5. points earned on what is paid.
    paid, change = _round_off(rules, cart, left, offsets, applied, notes)
    earned = _earn(rules, member, cart, paid, results)
    notes += earned.explanation
    unusable.sort(key=by_coupon_id)
    return Quote(
        subtotal=sum(start.original),
        discount=member_saving + discount + change,
        points_redeemed=points,
        points_offset=offset,
        rounding=change,
        payable=sum(paid),
        points_earned=earned.total,
        applied=tuple(applied),
        unusable=tuple([unusable_entry(coupon, why, by_id) for coupon, why in unusable]),
        lines=_lines(cart, start, paid, offsets, earned),
        explanation=tuple(notes),
        points_rules=earned.rules,
        debug=debug,
    )


def _start(
    rules: RuleSet,
    member: MemberContext,
    cart: Cart,
    options: Options,
    applied: list[Applied],
    notes: list[Note],
) -> tuple[State, int]:
    """Step 1: the cart at member prices (at shelf prices when every benefit is
    skipped), and what member prices save."""
    if options.skip_all:
        amounts, member_saving = [line.subtotal for line in cart.lines], 0
        notes.append(Note("benefits_skipped", *reasons.SIMPLE[Reason.SKIPPED], {}))
    else:
        amounts, member_saving = member_prices(rules, member, cart)
    start = State.start(cart.lines, amounts)
    if member_saving:
        per_line = [sub - a for sub, a in zip(start.original, amounts, strict=True)]
        tier = member.tier or ""
        entry, note = member_price(
            member.tier, rules.tier_names.get(tier, tier), member_saving, per_line
        )
        applied.append(entry)
        notes.append(note)
    return start, member_saving


def _round_off(
    rules: RuleSet,
    cart: Cart,
    left: list[int],
    offsets: list[int],
    applied: list[Applied],
    notes: list[Note],
) -> tuple[list[int], int]:
    """Step 4: what each line is paid after the points offset and 抹零, and 抹零."""
    after = [a - o for a, o in zip(left, offsets, strict=True)]
    change = _change(rules, cart.store, sum(after))
    change_lines = allocate(change, after)
    if change:
        entry, note = change_rounding(change, change_lines)
        applied.append(entry)
        notes.append(note)
    return [a - c for a, c in zip(after, change_lines, strict=True)], change


def _change(rules: RuleSet, store: str, payable: int) -> int:
    mode = rules.store_change_rounding.get(store, rules.change_rounding)
    if mode is ChangeRounding.FEN:
        return payable % 10
    if mode is ChangeRounding.JIAO:
        return payable % 100
    return 0


def _earn(
    rules: RuleSet,
    member: MemberContext,
    cart: Cart,
    paid: list[int],
    results: list[tuple[Candidate, benefits.Outcome]],
) -> Earned:
    """Step 5: points earned on what is paid, with the chosen benefits' multipliers."""
    multiplied = [c for c, _ in results if c.benefit.points_multiplier is not None]
    return earn(
        rules,
        member,
        cart,
        paid,
        [Fraction(c.benefit.points_multiplier or 1) for c in multiplied],
        [(c.benefit.id, c.label) for c in multiplied],
    )


def _lines(
    cart: Cart, start: State, paid: list[int], offsets: list[int], earned: Earned
) -> tuple[LineQuote, ...]:
    """Each line's discount, points offset, payable and points earned."""
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
    return tuple(lines)
