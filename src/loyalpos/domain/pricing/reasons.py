"""Why a coupon cannot be used: a code an integrator switches on, and a message
in 简体中文 and English that a cashier can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from loyalpos.domain.money import yuan


class Reason(StrEnum):
    BELOW_THRESHOLD = "below_threshold"
    BELOW_COUNT_THRESHOLD = "below_count_threshold"
    STORE_NOT_ELIGIBLE = "store_not_eligible"
    NO_ELIGIBLE_ITEMS = "no_eligible_items"
    TIER_NOT_ELIGIBLE = "tier_not_eligible"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    OUTSIDE_TIME_WINDOW = "outside_time_window"
    CONFLICT = "conflicts_with_chosen"
    LIMIT_REACHED = "limit_reached"
    EXCLUDED = "excluded_by_cashier"
    SKIPPED = "benefits_skipped"
    UNKNOWN_TEMPLATE = "unknown_template"
    NO_EXTRA_SAVING = "no_extra_saving"


@dataclass(frozen=True, slots=True)
class Ineligible:
    reason: Reason
    zh: str
    en: str
    detail: dict[str, object] = field(default_factory=dict)


def below_threshold(shortfall: int, threshold: int) -> Ineligible:
    return Ineligible(
        Reason.BELOW_THRESHOLD,
        f"未满 {yuan(threshold)} 元，还差 {yuan(shortfall)} 元",
        f"spend {yuan(shortfall)} more to reach {yuan(threshold)}",
        {"shortfall_fen": shortfall, "threshold_fen": threshold},
    )


def below_count_threshold(shortfall: int, threshold: int) -> Ineligible:
    """满 N 件: `shortfall` more units in the benefit's scope would make it usable."""
    items = "item" if shortfall == 1 else "items"
    return Ineligible(
        Reason.BELOW_COUNT_THRESHOLD,
        f"未满 {threshold} 件，还差 {shortfall} 件",
        f"add {shortfall} more {items} to reach {threshold}",
        {"shortfall_items": shortfall, "threshold_items": threshold},
    )


def conflict(other_name: str, other_id: str) -> Ineligible:
    return Ineligible(
        Reason.CONFLICT,
        f"与已选优惠「{other_name}」不可同时使用",
        f"cannot be combined with the chosen {other_name!r}",
        {"conflicts_with": other_id},
    )


def limit(what_zh: str, what_en: str, **detail: object) -> Ineligible:
    return Ineligible(
        Reason.LIMIT_REACHED, f"已达使用上限：{what_zh}", f"limit reached: {what_en}", dict(detail)
    )


SIMPLE: dict[Reason, tuple[str, str]] = {
    Reason.STORE_NOT_ELIGIBLE: ("本门店不可使用此券", "not valid in this store"),
    Reason.NO_ELIGIBLE_ITEMS: ("购物车中没有可用此券的商品", "no items in the cart qualify"),
    Reason.TIER_NOT_ELIGIBLE: ("会员等级不符", "not for this member's tier"),
    Reason.EXPIRED: ("券已过期", "coupon has expired"),
    Reason.NOT_YET_VALID: ("券尚未生效", "coupon is not valid yet"),
    Reason.OUTSIDE_TIME_WINDOW: ("不在可用时段内", "not usable at this day or time"),
    Reason.EXCLUDED: ("收银员已取消使用此券", "excluded by the cashier"),
    Reason.SKIPPED: ("本单暂不使用权益", "benefits skipped for this order"),
    Reason.UNKNOWN_TEMPLATE: ("券模板不存在或已停用", "coupon template not found"),
    Reason.NO_EXTRA_SAVING: ("与已选优惠同用不再多省", "adds no saving to the chosen benefits"),
}


def simple(reason: Reason, **detail: object) -> Ineligible:
    zh, en = SIMPLE[reason]
    return Ineligible(reason, zh, en, dict(detail))
