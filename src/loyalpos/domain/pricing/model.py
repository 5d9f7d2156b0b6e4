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


@dataclass(frozen=True, slots=True)
class Unusable:
    coupon_id: str
    template: str
    reason_code: str
    message_zh: str
    message_en: str
    detail: dict[str, object] = field(default_factory=dict)


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
    explanation: tuple[str, ...]
