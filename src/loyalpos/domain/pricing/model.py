"""What goes into a quote and what comes out. Money in 分, points in ints."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    category: str
    unit_price: int
    qty: int
    name: str = ""

    @property
    def subtotal(self) -> int:
        return self.unit_price * self.qty


@dataclass(frozen=True, slots=True)
class Cart:
    """`local_time` is the store's wall-clock time (naive), where 会员日 etc. are judged."""

    store: str
    local_time: datetime
    lines: tuple[CartLine, ...]


@dataclass(frozen=True, slots=True)
class WalletCoupon:
    id: str
    template: str
    expires_at: datetime | None = None
    valid_from: datetime | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """How often the member used a template in the current day / week / month."""

    day: int = 0
    week: int = 0
    month: int = 0


@dataclass(frozen=True, slots=True)
class Remaining:
    """What is left of a template's or campaign's budget."""

    uses: int | None = None
    discount: int | None = None


@dataclass(frozen=True, slots=True)
class MemberContext:
    tier: str | None = None
    points: int = 0
    first_order: bool = False
    wallet: tuple[WalletCoupon, ...] = ()
    usage: dict[str, Usage] = field(default_factory=dict)


class PointsRequest(StrEnum):
    NONE = "none"
    MAX = "max"


class Strategy(StrEnum):
    MAX_SAVING = "max_saving"
    EARLIEST_EXPIRY = "earliest_expiry"


@dataclass(frozen=True, slots=True)
class Options:
    points: PointsRequest | int = PointsRequest.NONE
    strategy: Strategy = Strategy.MAX_SAVING
    force: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    skip_all: bool = False
    budgets: dict[str, Remaining] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Applied:
    """One benefit in the chosen combination. `coupon_id` is None for promotions
    and member prices, which name themselves in `benefit`."""

    benefit: str
    kind: str
    saving: int
    coupon_id: str | None = None
    per_line: tuple[int, ...] = ()
    name: str = ""  # what the cashier and the customer know it by (the template's name)


@dataclass(frozen=True, slots=True)
class Unusable:
    coupon_id: str
    template: str
    reason_code: str
    message_zh: str
    message_en: str
    detail: dict[str, object] = field(default_factory=dict)
    name: str = ""  # the template's name (its id when the template is unknown)


@dataclass(frozen=True, slots=True)
class Note:
    """One step of a quote's explanation, for the cashier and the customer: the
    sentence in 简体中文 and in English, built from the names in the rule set
    ("8折券 省 64.00 元"), a `code` an integrator can switch on, which never
    changes with the wording, and the figures the sentence names (`detail`)."""

    code: str
    zh: str
    en: str
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PointsRule:
    """One earning rule or multiplier that produced an order's points, so that
    "why did I get 36 points?" has an answer that can be stored with the order.

    `kind`: an `EarnKind` value, or `coupon_multiplier`. `factor` (exact, as
    text: "1.5", "1/3") is points per 元 for a rate (`base`, `category_rate`,
    `exclude`, which is "0") and the multiplier for a multiplier. `points` is
    what the rule gave: for a rate, the points of the lines it priced (with
    every multiplier, the one rounding shared out over the rates by largest
    remainder), `paid` what those lines paid; for a bonus, the bonus. The
    `points` of a quote's rules add up to its `points_earned`."""

    rule: str
    kind: str
    description: str
    zh: str
    en: str
    factor: str | None = None
    points: int | None = None
    paid: int | None = None


@dataclass(frozen=True, slots=True)
class LineQuote:
    sku: str
    qty: int
    subtotal: int
    discount: int
    points_offset: int
    payable: int
    points_earned: int


@dataclass(frozen=True, slots=True)
class Quote:
    subtotal: int
    discount: int
    points_redeemed: int
    points_offset: int
    rounding: int
    payable: int
    points_earned: int
    applied: tuple[Applied, ...]
    unusable: tuple[Unusable, ...]
    lines: tuple[LineQuote, ...]
    explanation: tuple[Note, ...]
    # The earning rules behind `points_earned` (see `PointsRule`).
    points_rules: tuple[PointsRule, ...] = ()
    # For developers, not for the till: how the search went (combinations
    # evaluated; `search_complete: False` only when it stopped at its budget).
    debug: dict[str, int | bool] = field(default_factory=dict)
