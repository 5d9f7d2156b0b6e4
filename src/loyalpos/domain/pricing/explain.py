"""The explanation of a quote: why each wallet coupon was not used, and the
trail of decisions (`Note`s) in 中文 and English with the rule set's names.

Invariants:
- explaining never changes what was chosen: it runs once the search is over,
  for the chosen combination only (`explain_rest` evaluates combinations too,
  which the count in `debug` includes);
- a wallet coupon not used is listed with the first reason that applies: before the search, its eligibility (`eligibility`), then why it
  failed alone or saves nothing (`choose`); after it, the first chosen benefit
  it conflicts with, the coupon limits, the reason it fails when added, a
  chosen benefit it would make fail (a conflict with that benefit), or
  `no_extra_saving`;
- reasons shared while searching (`stacking.fits` builds each conflict once per
  search) are copied per coupon when the quote is made (`unusable_entry`), and
  the list is sorted by coupon id, so the quote does not depend on the order
  of the wallet.
"""

from __future__ import annotations

from collections.abc import Mapping

from loyalpos.domain.money import yuan
from loyalpos.domain.pricing import benefits, reasons
from loyalpos.domain.pricing.applying import points_allowed
from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.evaluation import Evaluation, extend
from loyalpos.domain.pricing.model import (
    Applied,
    Note,
    Options,
    PointsRequest,
    Unusable,
    WalletCoupon,
)
from loyalpos.domain.pricing.reasons import Ineligible, Reason
from loyalpos.domain.pricing.rules import Benefit
from loyalpos.domain.pricing.stacking import fits

# A wallet coupon that is not used, and why; made into an `Unusable` once the
# search is over (`engine.quote`), so that the search's objects and the quote's
# are not alive together (fewer objects for the garbage collector to see at any
# time).
Unused = tuple[WalletCoupon, Ineligible]


def explain_rest(
    s: SearchContext, best: Evaluation, cands: list[Candidate], unusable: list[Unused]
) -> None:
    """Say why each usable coupon that was not chosen was left out."""
    chosen = {c.key for c in best.combo}
    listed = {coupon.id for coupon, _ in unusable}
    # With unique ids, whether a coupon fits with the chosen ones depends on its
    # template alone (see `stacking.fits`, `stacking.pair_ok`).
    same_reason = len({c.key for c in cands}) == len(cands)
    fit: dict[tuple[int, int | None], Ineligible | None] = {}
    for c in cands:
        if c.coupon is None or c.key in chosen or c.key in listed:
            continue
        template = (id(c.benefit), c.cap)
        if same_reason and template in fit:
            why = fit[template]
        else:
            why = fit[template] = fits(s, best.combo, c)
        if why is None:
            trial = extend(s, best, c)
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


def unusable_entry(coupon: WalletCoupon, why: Ineligible, by_id: Mapping[str, Benefit]) -> Unusable:
    # A reason may be shared by the coupons of a template (see
    # `quick.alone_saving`, `SearchContext.memo`): each coupon gets its own copy
    # of the details.
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


def by_coupon_id(unused: Unused) -> str:
    return unused[0].id


def promotion_note(code: str, b: Benefit, why: Ineligible) -> Note:
    """A promotion that does not apply to this order, and why."""
    label = b.name or b.id
    return Note(
        code,
        f"促销「{label}」不适用：{why.zh}",
        f"promotion {label} does not apply: {why.en}",
        {"promotion": b.id, "reason_code": why.reason.value},
    )


def forced_note(coupon_id: str, label: str, why: Ineligible) -> Note:
    return Note(
        "forced_coupon_unusable",
        f"指定的「{label}」不可用：{why.zh}",
        f"the chosen {label} cannot be used: {why.en}",
        {"coupon_id": coupon_id, "reason_code": why.reason.value},
    )


def forced_unusable(s: SearchContext, coupon_id: str, unusable: list[Unused]) -> Note:
    """A forced coupon that is not a candidate: why (from `unusable`), or that
    the member does not hold it."""
    why = next((w for coupon, w in unusable if coupon.id == coupon_id), None)
    if why is not None:
        return forced_note(coupon_id, _coupon_label(s, coupon_id), why)
    return Note(
        "forced_coupon_unusable",
        f"指定的券 {coupon_id} 不在会员的券包中",
        f"the chosen coupon {coupon_id} is not in the member's wallet",
        {"coupon_id": coupon_id, "reason_code": "not_in_wallet"},
    )


def _coupon_label(s: SearchContext, coupon_id: str) -> str:
    """The name of a wallet coupon's template, or the coupon id."""
    coupon = next((w for w in s.member.wallet if w.id == coupon_id), None)
    b = s.rules.benefit(coupon.template) if coupon is not None else None
    return (b.name or b.id) if b is not None else coupon_id


def member_price(
    tier: str | None, tier_name: str, saving: int, per_line: list[int]
) -> tuple[Applied, Note]:
    """Member prices (会员价) as an applied benefit, and its note."""
    applied = Applied(
        "member_price",
        "member_price",
        saving,
        None,
        tuple(per_line),
        f"会员价（{tier_name}）",
    )
    note = Note(
        "member_price",
        f"会员价（{tier_name}）省 {yuan(saving)} 元",
        f"member price ({tier_name}) saves ¥{yuan(saving)}",
        {"tier": tier, "saving_fen": saving},
    )
    return applied, note


def benefits_applied(
    results: list[tuple[Candidate, benefits.Outcome]], applied: list[Applied], notes: list[Note]
) -> None:
    """Each chosen benefit as an applied benefit, and its note: what it saves, or
    that it saves nothing itself but lets the others save more (`moving`)."""
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


def points_offset_note(best: Evaluation, options: Options) -> Note | None:
    """The points offset taken, or that the chosen coupons rule it out."""
    if best.points:
        return Note(
            "points_offset",
            f"{best.points} 积分抵 {yuan(best.offset)} 元",
            f"{best.points} points pay ¥{yuan(best.offset)}",
            {"points": best.points, "offset_fen": best.offset},
        )
    if options.points != PointsRequest.NONE and not points_allowed(best.combo):
        return Note(
            "points_offset_not_allowed",
            "所选的券不可与积分抵扣同用",
            "points cannot pay together with the chosen coupon(s)",
            {},
        )
    return None


def change_rounding(change: int, per_line: list[int]) -> tuple[Applied, Note]:
    """Rounding off the change (抹零) as an applied benefit, and its note."""
    applied = Applied("change_rounding", "change_rounding", change, None, tuple(per_line), "抹零")
    note = Note(
        "change_rounding",
        f"抹零 {yuan(change)} 元",
        f"rounding off the change: ¥{yuan(change)}",
        {"rounding_fen": change},
    )
    return applied, note
