"""Which wallet coupons and promotions may take part in this quote at all
(docs/benefit-engine.md, "Which coupons can be considered"), and the reasons
for those that may not.

Invariants:
- the checks here depend on one benefit (template or promotion), the coupon
  that carries it, the cart's store, time and lines, the member and the
  options, never on the other benefits: so they are made once, before the
  search, and the search and its bounds never see what they rule out. That
  includes a count threshold (满 N 件): no benefit changes how many items a
  cart has (`benefits.below_count`);
- a wallet coupon gets the first reason that applies, in a fixed order:
  unknown template (or a promotion's id), skipped, excluded, expired or not yet
  valid (the template's dates and the coupon's together), store, tier, time
  window, member use limit, campaign budget used up, count threshold. What
  rules a template out whatever coupon carries it is worked out once per
  template (`template_check`);
- each reason says what would make the benefit usable (`reasons`);
- a usable candidate carries its expiry (the earlier of the template's and
  the coupon's, `FAR_FUTURE` for none: last in the rank) and what is left of
  its discount budget (`budget_cap`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from loyalpos.domain.pricing import benefits, reasons
from loyalpos.domain.pricing.candidate import FAR_FUTURE, Candidate
from loyalpos.domain.pricing.explain import Unused, promotion_note
from loyalpos.domain.pricing.model import Cart, MemberContext, Note, Options, WalletCoupon
from loyalpos.domain.pricing.reasons import Ineligible, Reason
from loyalpos.domain.pricing.rules import Benefit, RuleSet


def candidates(
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
    # id(template) -> what `template_check` says (it does not depend on the coupon)
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
            problem = validity(b, coupon, cart.local_time)
            if problem is None:
                if id(b) in checked:
                    problem = checked[id(b)]
                else:
                    # A count threshold (满 N 件) is a fact of the cart: checked here,
                    # once, it never enters the search or its bounds.
                    problem = checked[id(b)] = template_check(
                        b, cart, member, options, tier_names
                    ) or benefits.below_count(b, cart.lines)
        if problem is not None:
            unusable.append((coupon, problem))
            continue
        assert b is not None
        found.append(Candidate(b, coupon, _expiry(b, coupon), budget_cap(b, options)))
    if not options.skip_all:
        for b in rules.benefits:
            if not b.promotion:
                continue
            problem = _static_check(
                b, None, cart, member, options, tier_names
            ) or benefits.below_count(b, cart.lines)
            if problem is None:
                found.append(Candidate(b, None, FAR_FUTURE, budget_cap(b, options)))
            else:
                notes.append(promotion_note("promotion_not_in_force", b, problem))
    return found, by_id


def _static_check(
    b: Benefit,
    coupon: WalletCoupon | None,
    cart: Cart,
    member: MemberContext,
    options: Options,
    tier_names: Mapping[str, str],
) -> Ineligible | None:
    return validity(b, coupon, cart.local_time) or template_check(
        b, cart, member, options, tier_names
    )


def validity(b: Benefit, coupon: WalletCoupon | None, now: datetime) -> Ineligible | None:
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


def template_check(
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


def budget_cap(b: Benefit, options: Options) -> int | None:
    """What is left of the benefit's discount budget, or None without one."""
    budget = options.budgets.get(b.id)
    return budget.discount if budget is not None else None


def _expiry(b: Benefit, coupon: WalletCoupon | None) -> datetime:
    mine = coupon.expires_at if coupon is not None else None
    valid_to = b.valid_to
    if valid_to is not None and mine is not None:
        return min(valid_to, mine)
    return valid_to or mine or FAR_FUTURE
