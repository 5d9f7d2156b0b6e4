"""Choosing the combination: the cashier's forced coupons first, then each other
candidate tried alone, then the strategy's search.

Invariants:
- forced coupons are honoured in the order given, each only if it fits with
  those forced before it and still applies with them; they start every
  combination the search considers;
- a candidate is searched only if it applies alone (else it is unusable, with
  the reason it fails) and saves something alone, or saves nothing but may
  move another unit-level benefit's discount (`moving.movers`); a coupon that
  neither saves nor moves anything is `no_extra_saving`;
- the standalone saving found here (`Candidate.alone`) is what the ranking
  orders by and the bounds add up.
"""

from __future__ import annotations

from loyalpos.domain.pricing import reasons
from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.evaluation import Evaluation, evaluate
from loyalpos.domain.pricing.explain import Unused, forced_note, forced_unusable, promotion_note
from loyalpos.domain.pricing.model import Note, Strategy
from loyalpos.domain.pricing.moving import movers
from loyalpos.domain.pricing.quick import alone_saving
from loyalpos.domain.pricing.reasons import Ineligible, Reason
from loyalpos.domain.pricing.search import search
from loyalpos.domain.pricing.stacking import fits


def choose(
    s: SearchContext, cands: list[Candidate], unusable: list[Unused], notes: list[Note]
) -> Evaluation:
    """The combination to quote; why each candidate left out before the search
    was left out goes to `unusable` (coupons) or `notes` (promotions)."""
    forced, rejected = _forced(s, cands, unusable, notes)
    rest = [c for c in cands if c not in forced and c.key not in rejected]
    optional = _optional(s, forced, rest, unusable, notes)
    if s.options.strategy is Strategy.EARLIEST_EXPIRY:
        return _earliest_expiry(s, forced, optional, notes)
    return search(s, tuple(forced), optional)


def _forced(
    s: SearchContext, cands: list[Candidate], unusable: list[Unused], notes: list[Note]
) -> tuple[list[Candidate], set[str]]:
    """The forced coupons that can be honoured, and the keys of those that cannot."""
    forced: list[Candidate] = []
    rejected: set[str] = set()
    for coupon_id in dict.fromkeys(s.options.force):
        c = next((x for x in cands if x.key == coupon_id), None)
        if c is None:
            notes.append(forced_unusable(s, coupon_id, unusable))
            continue
        why = fits(s, forced, c)
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
            notes.append(forced_note(coupon_id, c.label, failed))
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
    return forced, rejected


def _optional(
    s: SearchContext,
    forced: list[Candidate],
    rest: list[Candidate],
    unusable: list[Unused],
    notes: list[Note],
) -> list[Candidate]:
    """Those of `rest` worth searching, each with its standalone saving set."""
    optional: list[Candidate] = []
    idle: list[Candidate] = []  # usable, but save nothing alone
    for c in rest:
        saves = alone_saving(s, c)
        if isinstance(saves, Ineligible):
            if c.coupon is not None:
                unusable.append((c.coupon, saves))
            else:
                notes.append(promotion_note("promotion_not_applicable", c.benefit, saves))
            continue
        if saves <= 0:
            idle.append(c)
            continue
        c.alone = saves
        optional.append(c)
    if idle:
        moving = movers(s, idle, [*forced, *optional, *idle])
        optional += moving
        kept = {id(c) for c in moving}
        for c in idle:
            if c.coupon is not None and id(c) not in kept:
                unusable.append((c.coupon, reasons.simple(Reason.NO_EXTRA_SAVING)))
    return optional


def _earliest_expiry(
    s: SearchContext, forced: list[Candidate], optional: list[Candidate], notes: list[Note]
) -> Evaluation:
    """Strategy `earliest_expiry`: from the forced coupons, each usable coupon by
    expiry (then id) that fits, still applies and raises the discount; then the
    promotions by the exact search."""
    chosen = list(forced)
    current = evaluate(s, tuple(chosen))
    for c in sorted(
        (x for x in optional if x.coupon is not None), key=lambda x: (x.expires, x.key)
    ):
        if fits(s, chosen, c) is not None:
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
