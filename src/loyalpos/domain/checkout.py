"""Pure arithmetic of the checkout: tiers and their progress line, the shares a
partial refund takes back, which coupons a refund gives back (by each
template's return policy), and the fingerprint that tells a replay from a
different request under the same order number."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loyalpos.domain.money import yuan
from loyalpos.domain.pricing.engine import quote
from loyalpos.domain.pricing.model import (
    Cart,
    MemberContext,
    Options,
    Unusable,
    WalletCoupon,
)
from loyalpos.domain.pricing.reasons import SIMPLE, Reason
from loyalpos.domain.pricing.rules import ReturnPolicy, RuleSet


@dataclass(frozen=True, slots=True)
class Tier:
    id: str
    name: str
    min_spent: int


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the member is from the next tier (距离金卡还需消费 ¥320.00)."""

    next_tier: str
    next_name: str
    shortfall: int

    @property
    def message_zh(self) -> str:
        return f"距离{self.next_name}还需消费 ¥{yuan(self.shortfall)}"

    @property
    def message_en(self) -> str:
        return f"spend ¥{yuan(self.shortfall)} more to reach {self.next_name}"


def tier_for(tiers: Sequence[Tier], spent: int) -> Tier | None:
    """The highest tier whose threshold `spent` reaches; None if tiers are not set."""
    reached = [t for t in tiers if t.min_spent <= spent]
    return max(reached, key=lambda t: (t.min_spent, t.id)) if reached else None


def progress(tiers: Sequence[Tier], spent: int) -> Progress | None:
    """The next tier above what `spent` reaches and the shortfall; None at the top."""
    above = [t for t in tiers if t.min_spent > spent]
    if not above:
        return None
    nxt = min(above, key=lambda t: (t.min_spent, t.id))
    return Progress(nxt.id, nxt.name or nxt.id, nxt.min_spent - spent)


def share(total: int, qty: int, before: int, now: int) -> int:
    """The part of `total` (spread over `qty` units) that `now` more units take,
    after `before` units were taken already.

    Cumulative floors: refunding every unit, in any number of parts, gives back
    exactly `total`, and each part is within one fen of its proportion.
    """
    if not (0 <= before and 0 <= now and before + now <= qty and qty > 0):
        raise ValueError("refund quantities out of range")
    return total * (before + now) // qty - total * before // qty


def fingerprint(data: Any) -> str:
    """SHA-256 of canonical JSON: equal requests, equal fingerprints."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- coupons on a refund (退券) ------------------------------------------------

# Reasons a coupon cannot be used that are not about the lines of the cart (its
# dates, the store, the tier, limits, the cashier's choice): they held when the
# order was booked, so on a refund only the other reasons (below its threshold,
# no eligible items left, ...) mean the remaining lines no longer meet it.
NOT_ABOUT_THE_LINES = frozenset(
    {
        Reason.STORE_NOT_ELIGIBLE,
        Reason.TIER_NOT_ELIGIBLE,
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.OUTSIDE_TIME_WINDOW,
        Reason.CONFLICT,
        Reason.LIMIT_REACHED,
        Reason.EXCLUDED,
        Reason.SKIPPED,
        Reason.UNKNOWN_TEMPLATE,
        Reason.NO_EXTRA_SAVING,
    }
)


def unmet_after_refund(
    rules: RuleSet, cart: Cart, tier: str | None, coupons: Sequence[tuple[str, str]]
) -> dict[str, Unusable | None]:
    """Which of an order's coupons what is left of it no longer qualifies for.

    `cart` holds the order's remaining lines (after the refund) at the order's
    store and local time; `coupons` are (coupon id, template) of the coupons the
    order still holds, in the order they were applied. The engine prices the
    remaining lines under the order's rules with exactly those coupons forced
    (as a confirm does), so a coupon's condition is the engine's own: its
    threshold on the amounts it is measured on, its scope's items, units. A
    coupon maps to None if it still applies, else to the reason it does not."""
    if not coupons:
        return {}
    if not cart.lines:
        gone = Unusable("", "", Reason.NO_ELIGIBLE_ITEMS.value, *SIMPLE[Reason.NO_ELIGIBLE_ITEMS])
        return {coupon_id: gone for coupon_id, _ in coupons}
    member = MemberContext(
        tier=tier, wallet=tuple(WalletCoupon(coupon_id, t) for coupon_id, t in coupons)
    )
    q = quote(rules, member, cart, Options(force=tuple(c for c, _ in coupons)))
    applied = {a.coupon_id for a in q.applied}
    why = {u.coupon_id: u for u in q.unusable}
    found: dict[str, Unusable | None] = {}
    for coupon_id, _ in coupons:
        u = why.get(coupon_id)
        if coupon_id in applied or u is None or Reason(u.reason_code) in NOT_ABOUT_THE_LINES:
            found[coupon_id] = None
        else:
            found[coupon_id] = u
    return found


@dataclass(frozen=True, slots=True)
class UsedCoupon:
    """A coupon an order used, as a refund of the order finds it."""

    id: int
    template: str
    name: str
    policy: ReturnPolicy
    held: bool  # still used by this order: no earlier refund gave it back
    expired: bool  # at the time of the refund


@dataclass(frozen=True, slots=True)
class CouponReturn:
    """Whether a refund gives a coupon back, and why, for the refund's receipt."""

    coupon_id: int
    template: str
    name: str
    policy: ReturnPolicy
    returned: bool
    code: str
    zh: str
    en: str
    detail: dict[str, object]


def coupon_returns(
    used: Sequence[UsedCoupon], whole: bool, unmet: Mapping[str, Unusable | None]
) -> list[CouponReturn]:
    """The refund's decision for each coupon of the order, by its template's
    `return_policy`: `full_refund` gives it back when the refund completes the
    order's refund; `threshold_broken` as soon as what is left of the order no
    longer meets the coupon's condition (`unmet`, see `unmet_after_refund`),
    which a full refund always does; `never` keeps it used. An expired coupon
    stays used whatever the policy; one given back before is not given twice."""
    decided = []
    for c in used:
        name = c.name or c.template
        why = unmet.get(str(c.id))
        detail: dict[str, object] = {}
        if not c.held:
            returned, code = False, "already_returned"
            zh = f"「{name}」已在之前的退款中退回"
            en = f"{name} was given back by an earlier refund"
        elif c.policy is ReturnPolicy.NEVER:
            returned, code = False, "kept_never_returned"
            zh = f"「{name}」按规则退款不退券"
            en = f"{name} is never given back on a refund (its rule)"
        elif not whole and c.policy is ReturnPolicy.FULL_REFUND:
            returned, code = False, "kept_until_full_refund"
            zh = f"「{name}」仅在整单退款时退回"
            en = f"{name} is given back only when the whole order is refunded"
        elif not whole and why is None:
            returned, code = False, "kept_threshold_met"
            zh = f"剩余商品仍满足「{name}」的使用条件，券不退回"
            en = f"what is left of the order still meets the condition of {name}: not given back"
        elif c.expired:
            returned, code = False, "kept_expired"
            zh = f"「{name}」已过期，不退回"
            en = f"{name} has expired: not given back"
        elif whole:
            returned, code = True, "returned_order_refunded"
            zh = f"整单已退，「{name}」已退回券包"
            en = f"the whole order is refunded: {name} is back in the wallet"
        else:
            assert why is not None
            returned, code = True, "returned_threshold_broken"
            zh = f"剩余商品不再满足「{name}」的使用条件（{why.message_zh}），券已退回券包"
            en = (
                f"what is left of the order no longer meets the condition of {name} "
                f"({why.message_en}): back in the wallet"
            )
            detail = {"reason_code": why.reason_code, **why.detail}
        decided.append(
            CouponReturn(c.id, c.template, name, c.policy, returned, code, zh, en, detail)
        )
    return decided
