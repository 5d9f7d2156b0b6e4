"""Why a coupon cannot be used: a code an integrator switches on, and a message
in 简体中文 and English that a cashier can act on: it says what would make the
coupon usable (the tiers it is for, the stores where it is valid, when it
expired or starts, how much more to spend) with the names from the rule set."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
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


# At most this many stores, tiers, categories ... are named in a message (all
# of them are in the detail): a cashier reads a line, not a list.
NAMED = 5

WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _listed(names: Iterable[str], zh: bool) -> str:
    """Names joined for a message: the first few, then how many more."""
    items = list(names)
    shown = items[:NAMED]
    more = len(items) - len(shown)
    if zh:
        text = "、".join(shown)
        return f"{text} 等 {len(items)} 项" if more else text
    text = ", ".join(shown)
    return f"{text} and {more} more" if more else text


def when(at: datetime) -> str:
    """A local wall-clock time as a cashier reads it: 2024-05-31 23:59."""
    return at.strftime("%Y-%m-%d %H:%M")


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


def limit(
    what_zh: str, what_en: str, *, hint: tuple[str, str] | None = None, **detail: object
) -> Ineligible:
    """A usage limit reached; `hint`: (中文, English) of when it is usable again."""
    zh, en = f"已达使用上限：{what_zh}", f"limit reached: {what_en}"
    if hint is not None:
        zh, en = f"{zh}，{hint[0]}", f"{en}; {hint[1]}"
    return Ineligible(Reason.LIMIT_REACHED, zh, en, dict(detail))


def store_not_eligible(
    store: str, stores: frozenset[str], exclude_stores: frozenset[str]
) -> Ineligible:
    """Not valid at `store`: where it is valid, or that this store is left out."""
    detail: dict[str, object] = {"store": store}
    if stores and store not in stores:
        valid = sorted(stores)
        detail["stores"] = valid
        return Ineligible(
            Reason.STORE_NOT_ELIGIBLE,
            f"本门店不可用，仅限门店 {_listed(valid, True)} 使用",
            f"not valid in this store; valid at store(s) {_listed(valid, False)}",
            detail,
        )
    detail["exclude_stores"] = sorted(exclude_stores)
    return Ineligible(
        Reason.STORE_NOT_ELIGIBLE,
        f"本门店（{store}）不可使用此券",
        f"not valid at store {store}",
        detail,
    )


def tier_not_eligible(
    tier: str | None, tiers: frozenset[str], names: Mapping[str, str]
) -> Ineligible:
    """Not for the member's tier (or for a customer who is not a member): the
    tiers it is for, by name."""
    needed = sorted(tiers)
    shown = [names.get(t, t) for t in needed]
    return Ineligible(
        Reason.TIER_NOT_ELIGIBLE,
        f"会员等级不符，仅限 {_listed(shown, True)} 使用",
        f"not for this member's tier; for {_listed(shown, False)} members only",
        {"tier": tier, "tiers": needed},
    )


def expired(at: datetime) -> Ineligible:
    return Ineligible(
        Reason.EXPIRED,
        f"券已于 {when(at)} 过期",
        f"coupon expired on {when(at)}",
        {"expired_at": at.isoformat()},
    )


def not_yet_valid(at: datetime) -> Ineligible:
    return Ineligible(
        Reason.NOT_YET_VALID,
        f"券尚未生效，{when(at)} 起可用",
        f"coupon is not valid yet; usable from {when(at)}",
        {"valid_from": at.isoformat()},
    )


def outside_time_window(
    weekdays: frozenset[int], dates: frozenset[date], hours: tuple[tuple[time, time], ...]
) -> Ineligible:
    """Not at this day or time: the days and hours it is usable (local time)."""
    zh: list[str] = []
    en: list[str] = []
    detail: dict[str, object] = {}
    if weekdays:
        days = sorted(weekdays)
        zh.append("每" + "、".join(WEEKDAYS_ZH[d - 1] for d in days))
        en.append("on " + ", ".join(WEEKDAYS_EN[d - 1] for d in days))
        detail["weekdays"] = days
    if dates:
        on = [d.isoformat() for d in sorted(dates)]
        zh.append(_listed(on, True))
        en.append("on " + _listed(on, False))
        detail["dates"] = on
    if hours:
        spans = [f"{a.strftime('%H:%M')}-{b.strftime('%H:%M')}" for a, b in hours]
        zh.append("、".join(spans))
        en.append("at " + ", ".join(spans))
        detail["hours"] = spans
    return Ineligible(
        Reason.OUTSIDE_TIME_WINDOW,
        f"不在可用时段内，仅限 {' '.join(zh)} 使用",
        f"not usable at this day or time; usable {' '.join(en)}",
        detail,
    )


def with_scope(why: Ineligible, categories: frozenset[str], skus: frozenset[str]) -> Ineligible:
    """`no_eligible_items` naming the items that would qualify (a scope's
    categories and skus), when the reason does not name them already."""
    if why.reason is not Reason.NO_ELIGIBLE_ITEMS or not (categories or skus):
        return why
    if any(why.detail.values()):
        return why
    named = [*sorted(categories), *sorted(skus)]
    return replace(
        why,
        zh=f"{why.zh}（适用：{_listed(named, True)}）",
        en=f"{why.en} (valid for: {_listed(named, False)})",
        detail={**why.detail, "categories": sorted(categories), "skus": sorted(skus)},
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


def _no_items(detail: Mapping[str, object]) -> tuple[str, str] | None:
    """What a benefit kind said it misses (its detail), as a message."""
    if detail.get("missing"):
        missing = detail["missing"]
        return f"套餐缺少 {missing}", f"the bundle needs {missing} in the cart"
    if detail.get("sku"):
        sku = detail["sku"]
        return f"购物车中没有 {sku}", f"needs {sku} in the cart"
    if detail.get("needed_units"):
        n = detail["needed_units"]
        return f"适用商品不足 {n} 件", f"needs {n} units of the eligible items"
    return None


def simple(reason: Reason, **detail: object) -> Ineligible:
    zh, en = SIMPLE[reason]
    if reason is Reason.NO_ELIGIBLE_ITEMS:
        said = _no_items(detail)
        if said is not None:
            zh, en = said
    return Ineligible(reason, zh, en, dict(detail))
