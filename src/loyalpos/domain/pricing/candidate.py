"""A candidate: one benefit the member may use in this quote, a wallet coupon or
a promotion, as the search sees it.

Invariant: a candidate is not changed once made, except for the numbers a
search gives it (`owner`/`step`, `keyed`/`sort_key`, see `context.info`) and its
standalone saving (`alone`, set by `choose` once it is known to be usable). The
numbers are marked with the search that gave them, so a candidate that another
search looks at is numbered afresh there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from loyalpos.domain.pricing.model import WalletCoupon
from loyalpos.domain.pricing.rules import Benefit

FAR_FUTURE = datetime.max

# One step of a sequence: a number for (the benefit by identity, its budget cap,
# whether a coupon rather than a promotion brings it, which decides points
# offset), given out per search (`context.info`).
Step = int


@dataclass(slots=True)
class Candidate:
    """A usable benefit: a wallet coupon, or a promotion (coupon None). Not
    changed once made (not frozen only because building frozen dataclasses took
    a tenth of the time of a quote's candidates)."""

    benefit: Benefit
    coupon: WalletCoupon | None
    expires: datetime
    cap: int | None
    # The coupon id, or `promotion:<id>`: what the ranking and the quote name it by.
    key: str = field(init=False, repr=False, compare=False)
    # Its step in the search numbered `owner`, and its `sort_key` in the search
    # numbered `keyed`, given out when first asked for (see `context.info`).
    owner: int = field(default=-1, init=False, repr=False, compare=False)
    step: Step = field(default=-1, init=False, repr=False, compare=False)
    keyed: int = field(default=-1, init=False, repr=False, compare=False)
    sort_key: tuple[int, int, str] = field(
        default=(0, 0, ""), init=False, repr=False, compare=False
    )
    # What it saves alone (`quick.alone_saving`), once it is known to be usable.
    alone: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = self.coupon.id if self.coupon else f"promotion:{self.benefit.id}"

    @property
    def label(self) -> str:
        return self.benefit.name or self.benefit.id
