"""A brand's rule set as the engine sees it: plain frozen data.

The YAML / database form is validated by `loyalpos.rules.schema` (pydantic)
and converted into these classes; the engine never sees unvalidated input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from fractions import Fraction

from loyalpos.domain.pricing.model import CartLine


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Empty sets mean "any". Weekdays are ISO (1 = Monday ... 7 = Sunday)."""

    weekdays: frozenset[int] = frozenset()
    dates: frozenset[date] = frozenset()
    hours: tuple[tuple[time, time], ...] = ()

    def contains(self, local: datetime) -> bool:
        if self.weekdays and local.isoweekday() not in self.weekdays:
            return False
        if self.dates and local.date() not in self.dates:
            return False
        if self.hours:
            now = local.time()
            return any(start <= now < end for start, end in self.hours)
        return True

    @property
    def unrestricted(self) -> bool:
        return not (self.weekdays or self.dates or self.hours)


@dataclass(frozen=True, slots=True)
class Scope:
    """Where, when, for whom and on what a rule or benefit applies."""

    stores: frozenset[str] = frozenset()
    exclude_stores: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    exclude_skus: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    window: TimeWindow = TimeWindow()

    def store_ok(self, store: str) -> bool:
        return (not self.stores or store in self.stores) and store not in self.exclude_stores

    def tier_ok(self, tier: str | None) -> bool:
        return not self.tiers or (tier is not None and tier in self.tiers)

    def line_ok(self, line: CartLine) -> bool:
        if line.sku in self.exclude_skus or line.category in self.exclude_categories:
            return False
        if not self.categories and not self.skus:
            return True
        return line.category in self.categories or line.sku in self.skus


class Kind(StrEnum):
    THRESHOLD = "threshold"  # 满减 (optionally 每满 step)
    PERCENT = "percent"  # 折扣
    CASH = "cash"  # 代金券
    ITEM = "item"  # 兑换券 / 商品券
    BUNDLE = "bundle"  # 套餐券
    NTH_DISCOUNT = "nth_discount"  # 第二件半价
    BUY_N_FREE = "buy_n_free"  # 买 N 免 1


class NthGroup(StrEnum):
    """How `nth_discount` groups the units it counts (第二件半价 vs 任选两件第二件半价)."""

    SKU = "sku"  # the units of one sku, over all its lines
    MIXED = "mixed"  # any units in the scope together, whatever their sku


class ThresholdBase(StrEnum):
    ORIGINAL = "original"
    DISCOUNTED = "discounted"


class ReturnPolicy(StrEnum):
    """When a refund gives a used coupon back to the wallet (退券规则), per template."""

    FULL_REFUND = "full_refund"  # only when the whole order is refunded (the default)
    THRESHOLD_BROKEN = "threshold_broken"  # once what is left no longer meets its condition
    NEVER = "never"  # a used coupon stays used


@dataclass(frozen=True, slots=True)
class MemberLimit:
    per_day: int | None = None
    per_week: int | None = None
    per_month: int | None = None


@dataclass(frozen=True, slots=True)
class Benefit:
    """A coupon template (券模板) or an automatic promotion (促销活动).

    `threshold` is money (满 X 元, order-level kinds); `threshold_items` a count
    (满 N 件, any kind): the units of the cart lines in `scope` priced above 0,
    as the cart came in (`benefits.below_count`). Both must hold when both are set."""

    id: str
    name: str
    kind: Kind
    scope: Scope = Scope()
    promotion: bool = False
    threshold: int = 0
    threshold_items: int = 0
    amount: int = 0
    step: int | None = None
    cap: int | None = None
    percent: int = 10000
    sku: str | None = None
    price: int = 0
    bundle: tuple[str, ...] = ()
    nth: int = 2
    nth_group: NthGroup = NthGroup.SKU
    n: int = 3
    threshold_base: ThresholdBase | None = None
    exclusive: bool = False
    with_points: bool = False
    max_per_order: int = 1
    priority: int = 0
    points_multiplier: Fraction | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    member_limit: MemberLimit = MemberLimit()
    return_policy: ReturnPolicy = ReturnPolicy.FULL_REFUND


@dataclass(frozen=True, slots=True)
class Stacking:
    """Which benefits combine, as data (叠加规则)."""

    max_coupons: int = 1
    threshold_base: ThresholdBase = ThresholdBase.DISCOUNTED
    exclusive_groups: tuple[frozenset[str], ...] = ()
    forbidden_pairs: tuple[tuple[str, str], ...] = ()
    order: tuple[Kind, ...] = (
        Kind.ITEM,
        Kind.BUNDLE,
        Kind.NTH_DISCOUNT,
        Kind.BUY_N_FREE,
        Kind.PERCENT,
        Kind.THRESHOLD,
        Kind.CASH,
    )


@dataclass(frozen=True, slots=True)
class PointsOffset:
    """积分抵扣: `points_per_unit` points are worth `unit_fen` (100 points = 100 分)."""

    enabled: bool = False
    points_per_unit: int = 100
    unit_fen: int = 100
    cap_percent: int = 10000
    min_points: int = 0
    step: int = 100


class ChangeRounding(StrEnum):
    NONE = "none"
    FEN = "fen"  # 抹分: drop the 分
    JIAO = "jiao"  # 抹角: drop the 角 and 分


@dataclass(frozen=True, slots=True)
class MemberPrices:
    """会员价: fixed per-item member prices, or a per-tier percentage in scope."""

    item_prices: dict[str, dict[str, int]] = field(default_factory=dict)
    tier_percent: dict[str, int] = field(default_factory=dict)
    scope: Scope = Scope()


class PointsRounding(StrEnum):
    FLOOR = "floor"
    ROUND = "round"
    CEIL = "ceil"


class EarnKind(StrEnum):
    BASE = "base"
    TIER_MULTIPLIER = "tier_multiplier"
    CATEGORY_RATE = "category_rate"
    EXCLUDE = "exclude"
    TIME_MULTIPLIER = "time_multiplier"
    THRESHOLD_BONUS = "threshold_bonus"
    FIRST_ORDER_BONUS = "first_order_bonus"


@dataclass(frozen=True, slots=True)
class EarnRule:
    """One earning rule (积分规则). `rate` is points per 分; `multiplier` a factor."""

    id: str
    kind: EarnKind
    scope: Scope = Scope()
    rate: Fraction = Fraction(0)
    multiplier: Fraction = Fraction(1)
    tier_multipliers: dict[str, Fraction] = field(default_factory=dict)
    steps: tuple[tuple[int, int], ...] = ()
    points: int = 0
    description: str = ""


@dataclass(frozen=True, slots=True)
class RuleSet:
    earn: tuple[EarnRule, ...] = ()
    points_rounding: PointsRounding = PointsRounding.FLOOR
    benefits: tuple[Benefit, ...] = ()
    stacking: Stacking = Stacking()
    points_offset: PointsOffset = PointsOffset()
    member_prices: MemberPrices = MemberPrices()
    change_rounding: ChangeRounding = ChangeRounding.NONE
    store_change_rounding: dict[str, ChangeRounding] = field(default_factory=dict)
    # Tier id -> the name a cashier and a customer know it by (金卡), for the
    # explanations; a tier not listed is shown by its id.
    tier_names: dict[str, str] = field(default_factory=dict)

    def benefit(self, benefit_id: str) -> Benefit | None:
        return next((b for b in self.benefits if b.id == benefit_id), None)
