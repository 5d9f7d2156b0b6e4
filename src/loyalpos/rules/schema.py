"""The rule-set document: what HQ writes, validated field by field.

Money is integer 分 (fields end in `_fen`); money, points, counts and limits are
integers by type (a YAML/JSON integer: `1250.0`, `"1250"` and `true` are
refused, loyalpos/integers.py); percentages are "pay N%" with up to
two decimals (`percent: 95` is 95折, `88.5` is 88.5%). A wrong rule is refused
with pydantic's message naming the field (e.g. `coupons.0.threshold_fen`).
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from loyalpos import integers as whole
from loyalpos.characters import SINGLE_LINE, check_tree

Fen = Annotated[int, whole.fen(ge=0, le=100_000_000)]
PositiveFen = Annotated[int, whole.fen(gt=0, le=100_000_000)]
BonusPoints = Annotated[int, whole.points(gt=0, le=10_000_000)]
Limit = Annotated[int, whole.count(gt=0)]
Percent = Annotated[Decimal, Field(gt=0, le=100, decimal_places=2)]
Multiplier = Annotated[Decimal, Field(gt=0, le=100, decimal_places=4)]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\-.:]+$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _no_control(cls, value: Any) -> Any:
        # Names, descriptions and tags end up in ledger entries, coupons and
        # receipts: no NUL (PostgreSQL refuses it at the worker, forever), no
        # other control character, no lone surrogate, anywhere in the document.
        return check_tree(value)


class ScopeDoc(Model):
    stores: list[str] = []
    exclude_stores: list[str] = []
    categories: list[str] = []
    exclude_categories: list[str] = []
    skus: list[str] = []
    exclude_skus: list[str] = []
    tiers: list[str] = []
    weekdays: list[Annotated[int, whole.count(ge=1, le=7)]] = Field(
        default=[], description="ISO weekdays: 1 = Monday ... 7 = Sunday"
    )
    dates: list[date] = []
    hours: list[str] = Field(default=[], description='["10:00-14:00", ...], local time')

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_hours(text)
        return value


def parse_hours(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"hours must look like 10:00-14:00, not {text!r}") from None
    if end <= start:
        raise ValueError(f"hours {text!r} end before they start")
    return start, end


class BaseEarn(Model):
    id: Ident
    kind: Literal["base"]
    points_per_yuan: Multiplier | None = None
    yuan_per_point: Multiplier | None = None
    scope: ScopeDoc = ScopeDoc()
    description: str = ""

    @model_validator(mode="after")
    def _one_rate(self) -> BaseEarn:
        if (self.points_per_yuan is None) == (self.yuan_per_point is None):
            raise ValueError("give exactly one of points_per_yuan or yuan_per_point")
        return self


class TierMultiplierEarn(Model):
    id: Ident
    kind: Literal["tier_multiplier"]
    multipliers: dict[str, Multiplier]
    scope: ScopeDoc = ScopeDoc()
    description: str = ""


class CategoryRateEarn(Model):
    """Per category or item: its own rate, or a multiplier of the base rate."""

    id: Ident
    kind: Literal["category_rate"]
    scope: ScopeDoc
    points_per_yuan: Multiplier | None = None
    yuan_per_point: Multiplier | None = None
    multiplier: Multiplier | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_rate(self) -> CategoryRateEarn:
        given = [x for x in (self.points_per_yuan, self.yuan_per_point, self.multiplier) if x]
        if len(given) != 1:
            raise ValueError("give exactly one of points_per_yuan, yuan_per_point, multiplier")
        if not (self.scope.categories or self.scope.skus):
            raise ValueError("a category rate needs scope.categories or scope.skus")
        return self


class ExcludeEarn(Model):
    id: Ident
    kind: Literal["exclude"]
    scope: ScopeDoc
    description: str = ""


class TimeMultiplierEarn(Model):
    id: Ident
    kind: Literal["time_multiplier"]
    multiplier: Multiplier
    scope: ScopeDoc
    description: str = ""


class Step(Model):
    spend_fen: PositiveFen
    points: BonusPoints


class ThresholdBonusEarn(Model):
    id: Ident
    kind: Literal["threshold_bonus"]
    steps: Annotated[list[Step], Field(min_length=1, max_length=20)]
    scope: ScopeDoc = ScopeDoc()
    description: str = ""


class FirstOrderEarn(Model):
    id: Ident
    kind: Literal["first_order_bonus"]
    points: BonusPoints
    scope: ScopeDoc = ScopeDoc()
    description: str = ""


EarnDoc = Annotated[
    BaseEarn
    | TierMultiplierEarn
    | CategoryRateEarn
    | ExcludeEarn
    | TimeMultiplierEarn
    | ThresholdBonusEarn
    | FirstOrderEarn,
    Field(discriminator="kind"),
]


class OffsetDoc(Model):
    enabled: StrictBool = True
    points_per_yuan: Annotated[int, whole.points(gt=0, le=100_000)] = 100
    cap_percent: Percent = Decimal(100)
    min_points: Annotated[int, whole.points(ge=0)] = 0
    step: Annotated[int, whole.points(gt=0)] = 100

    @model_validator(mode="after")
    def _whole_fen(self) -> OffsetDoc:
        if (self.step * 100) % self.points_per_yuan:
            raise ValueError(
                "step must be worth a whole number of fen (step × 100 / points_per_yuan)"
            )
        return self


class PointsDoc(Model):
    rounding: Literal["floor", "round", "ceil"] = "floor"
    earn: list[EarnDoc] = []
    offset: OffsetDoc | None = None


class LimitsDoc(Model):
    per_member_day: Limit | None = None
    per_member_week: Limit | None = None
    per_member_month: Limit | None = None
    total_uses: Limit | None = None
    total_discount_fen: PositiveFen | None = None


Kind = Literal["threshold", "percent", "cash", "item", "bundle", "nth_discount", "buy_n_free"]

ReturnPolicy = Literal["full_refund", "threshold_broken", "never"]


class BenefitDoc(Model):
    """A coupon template or a promotion; which fields matter depends on `kind`."""

    id: Ident
    name: str = ""
    kind: Kind
    scope: ScopeDoc = ScopeDoc()
    threshold_fen: Fen = 0
    threshold_items: Annotated[int, whole.count(ge=0, le=10_000)] = Field(
        default=0,
        description="满 N 件: units in scope (priced above 0) the cart must hold; 0 = none",
    )
    amount_fen: Fen = 0
    step_fen: PositiveFen | None = None
    cap_fen: PositiveFen | None = None
    percent: Percent | None = None
    sku: str | None = None
    price_fen: Fen = 0
    bundle: list[str] = []
    nth: Annotated[int, whole.count(ge=2, le=20)] = 2
    nth_group: Literal["sku", "mixed"] = Field(
        default="sku",
        description="nth_discount: group the units of one sku (第二件半价) or any in scope (任选)",
    )
    n: Annotated[int, whole.count(ge=2, le=50)] = 3
    threshold_base: Literal["original", "discounted"] | None = None
    exclusive: StrictBool = False
    with_points: StrictBool = False
    max_per_order: Annotated[int, whole.count(ge=1, le=50)] = 1
    priority: Annotated[int, whole.count()] = 0
    points_multiplier: Multiplier | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    valid_days: Annotated[int, whole.count(gt=0, le=3650)] | None = None
    limits: LimitsDoc = LimitsDoc()
    return_policy: ReturnPolicy = Field(
        default="full_refund",
        description=(
            "when a refund gives a used coupon back (退券): full_refund (only when the whole "
            "order is refunded), threshold_broken (as soon as the order's remaining lines no "
            "longer meet the coupon's condition, e.g. its threshold), never; coupons only"
        ),
    )

    @model_validator(mode="after")
    def _kind_fields(self) -> BenefitDoc:
        k = self.kind
        if k == "threshold" and (
            (self.threshold_fen <= 0 and self.threshold_items <= 0) or self.amount_fen <= 0
        ):
            raise ValueError(
                "a threshold benefit needs amount_fen and threshold_fen or threshold_items"
            )
        if (
            k == "threshold"
            and self.threshold_fen > 0
            and self.amount_fen > self.threshold_fen
            and not self.step_fen
        ):
            raise ValueError("amount_fen cannot exceed threshold_fen")
        if k == "cash" and self.amount_fen <= 0:
            raise ValueError("a cash voucher needs amount_fen")
        if k in ("percent", "nth_discount") and self.percent is None:
            raise ValueError(f"a {k} benefit needs percent (pay N%)")
        if k == "item" and not (self.sku or self.scope.skus or self.scope.categories):
            raise ValueError("an item coupon needs sku (or scope.skus / scope.categories)")
        if k == "bundle" and (len(self.bundle) < 2 or self.price_fen <= 0):
            raise ValueError("a bundle needs at least two skus in bundle and price_fen")
        # Compared as wall-clock times, as the engine reads them (one may carry an offset).
        if (
            self.valid_from
            and self.valid_to
            and self.valid_to.replace(tzinfo=None) <= self.valid_from.replace(tzinfo=None)
        ):
            raise ValueError("valid_to must be after valid_from")
        return self


class StackingDoc(Model):
    max_coupons: Annotated[int, whole.count(ge=0, le=20)] = 1
    threshold_base: Literal["original", "discounted"] = "discounted"
    exclusive_groups: list[list[str]] = []
    forbidden_pairs: list[Annotated[list[str], Field(min_length=2, max_length=2)]] = []
    order: list[Kind] | None = None

    @field_validator("order")
    @classmethod
    def _complete(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each kind may appear once in order")
        return value


class MemberPricesDoc(Model):
    tiers: dict[str, Percent] = {}
    items: dict[str, dict[str, Fen]] = {}
    scope: ScopeDoc = ScopeDoc()


class ChangeRoundingDoc(Model):
    default: Literal["none", "fen", "jiao"] = "none"
    stores: dict[str, Literal["none", "fen", "jiao"]] = {}


DEFAULT_SKIP_REASONS: tuple[str, ...] = ("顾客未携带会员码", "顾客不愿注册", "系统无法识别", "其他")
MAX_SKIP_REASONS = 20
SkipReason = Annotated[str, Field(min_length=1, max_length=40)]


class CheckoutDoc(Model):
    """How the brand's tills check out (收银台).

    `require_member`: the till must identify a member before payment (必须扫码识别，
    禁止跳过); a cashier may still skip, but only with one of `skip_reasons`, and
    the skip is recorded (a till event). `skip_reasons`: the reasons the till
    offers (其他 among them, for anything else), each 1-40 characters on one line,
    1 to 20 of them, no repeats."""

    require_member: StrictBool = False
    skip_reasons: Annotated[list[SkipReason], Field(min_length=1, max_length=MAX_SKIP_REASONS)] = (
        list(DEFAULT_SKIP_REASONS)
    )

    @field_validator("skip_reasons")
    @classmethod
    def _reasons(cls, value: list[str]) -> list[str]:
        for reason in value:
            SINGLE_LINE.check(reason)
            if reason != reason.strip() or not reason:
                raise ValueError(f"skip reason {reason!r}: no blank or surrounding spaces")
        if len(set(value)) != len(value):
            raise ValueError("each skip reason may appear once")
        return value


class TierDoc(Model):
    """A member tier (会员等级), reached by growth: what the member has paid in
    total, net of refunds. The lowest tier should start at 0."""

    id: Ident
    name: str = ""
    min_spent_fen: Fen


Trigger = Literal["spend", "category", "first_order", "tier_upgrade", "reactivated"]


class OnRefundDoc(Model):
    """What a full refund of the order does to an order-triggered campaign.

    `skip_if_refunded`: an order fully refunded before the worker came to it
    fires nothing (the firing is recorded as skipped). `revoke_unused`: when the
    order is fully refunded after the firing, its coupons still unused are
    voided and its points reversed, within what the member holds (never a
    negative balance unless the brand allows one); used coupons and tags stay.
    Partial refunds change nothing."""

    skip_if_refunded: StrictBool = True
    revoke_unused: StrictBool = True


class CampaignDoc(Model):
    """A triggered campaign (消费后触发), run by the worker after the payment.

    Triggers: `spend` (paid ≥ min_paid_fen), `category` (bought in `category`),
    `first_order` (the member's first order), `tier_upgrade` (to `to_tier`, or
    to any higher tier), `reactivated` (no purchase for `dormant_days`, then an
    order). Actions: issue coupon templates, give points, tag the member.
    `on_refund`: what a full refund of the order does (order triggers).
    """

    id: Ident
    name: str = ""
    trigger: Trigger
    min_paid_fen: Fen = 0
    category: str | None = None
    to_tier: str | None = None
    dormant_days: Annotated[int, whole.count(ge=1, le=3650)] = 90
    stores: list[str] = []
    issue: list[Ident] = []
    points: Annotated[int, whole.points(ge=0, le=1_000_000)] = 0
    tag: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    on_refund: OnRefundDoc | None = Field(
        default=None,
        description="order triggers: skip an order refunded before firing, take back "
        "unused gifts when it is refunded later (not given: both on)",
    )

    @model_validator(mode="after")
    def _complete(self) -> CampaignDoc:
        if not (self.issue or self.points or self.tag):
            raise ValueError("a campaign needs an action: issue, points or tag")
        if self.trigger == "tier_upgrade" and self.on_refund is not None:
            raise ValueError(
                "on_refund applies to order triggers; a refund does not lower the tier, "
                "so a tier_upgrade gift stands"
            )
        if self.trigger == "spend" and self.min_paid_fen <= 0:
            raise ValueError("a spend campaign needs min_paid_fen")
        if self.trigger == "category" and not self.category:
            raise ValueError("a category campaign needs category")
        return self

    @property
    def refund_policy(self) -> OnRefundDoc:
        """`on_refund`, or the defaults when it is not given."""
        return self.on_refund or OnRefundDoc()


class RuleSetDoc(Model):
    """A brand's whole rule set, as one document."""

    version: Literal[1] = 1
    points: PointsDoc = PointsDoc()
    member_prices: MemberPricesDoc = MemberPricesDoc()
    coupons: list[BenefitDoc] = []
    promotions: list[BenefitDoc] = []
    stacking: StackingDoc = StackingDoc()
    change_rounding: ChangeRoundingDoc = ChangeRoundingDoc()
    tiers: list[TierDoc] = []
    campaigns: list[CampaignDoc] = []
    checkout: CheckoutDoc = CheckoutDoc()

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSetDoc:
        ids = [b.id for b in [*self.coupons, *self.promotions]]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"coupon and promotion ids must be unique: {', '.join(dupes)}")
        earn_ids = [r.id for r in self.points.earn]
        if len(set(earn_ids)) != len(earn_ids):
            raise ValueError("earning rule ids must be unique")
        tier_ids = [t.id for t in self.tiers]
        if len(set(tier_ids)) != len(tier_ids):
            raise ValueError("tier ids must be unique")
        for promotion in self.promotions:
            if promotion.return_policy != "full_refund":
                raise ValueError(
                    f"promotion {promotion.id}: return_policy is for coupons "
                    "(a promotion has nothing to give back)"
                )
        coupon_ids = {c.id for c in self.coupons}
        for campaign in self.campaigns:
            unknown = [t for t in campaign.issue if t not in coupon_ids]
            if unknown:
                raise ValueError(
                    f"campaign {campaign.id} issues unknown coupon templates: {', '.join(unknown)}"
                )
            if campaign.to_tier and campaign.to_tier not in tier_ids:
                raise ValueError(f"campaign {campaign.id}: unknown tier {campaign.to_tier}")
        return self
