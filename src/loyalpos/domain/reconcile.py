"""Reconciliation (对账): what the POS says it sold in a day against what we booked.

Pure comparison, standard library only. The POS side is its day totals (order
count, amount, amount per tender method) and optionally its list of orders; our
side is the booked orders of the same store and local day, each with its amount
and tenders. Every difference is `pos - ours`, in integer fen.

When the POS sends its order list, every order number of either side lands in
exactly one of:

- `matched`: on both sides (`diff` is the amount difference, 0 when they agree);
- `missing_here`: the POS has it, we do not (never booked, or booked elsewhere);
- `missing_at_pos`: we have it, the POS does not.

and the amount differences add up: the sum of `matched` diffs, plus what is
`missing_here`, minus what is `missing_at_pos`, is the POS list's amount minus
ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from loyalpos.domain.errors import InvalidInput

# Larger than any real day of one store, small enough that sums stay exact anywhere.
MAX_FEN = 10**13
MAX_COUNT = 10**7


@dataclass(frozen=True, slots=True)
class PosOrder:
    """One order as the POS recorded it."""

    order_no: str
    amount: int


@dataclass(frozen=True, slots=True)
class PosDay:
    """The POS's report of one store day: totals, tenders, and optionally its orders."""

    count: int
    amount: int
    tenders: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    orders: tuple[PosOrder, ...] | None = None


@dataclass(frozen=True, slots=True)
class BookedOrder:
    """One order as we booked it: the amount paid at checkout and how it was paid."""

    order_no: str
    amount: int
    tenders: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    late: bool = False


@dataclass(frozen=True, slots=True)
class Figures:
    count: int
    amount: int


@dataclass(frozen=True, slots=True)
class TotalsDiff:
    pos: Figures
    ours: Figures

    @property
    def count_diff(self) -> int:
        return self.pos.count - self.ours.count

    @property
    def amount_diff(self) -> int:
        return self.pos.amount - self.ours.amount

    @property
    def agrees(self) -> bool:
        return self.count_diff == 0 and self.amount_diff == 0


@dataclass(frozen=True, slots=True)
class TenderDiff:
    method: str
    pos: int
    ours: int

    @property
    def diff(self) -> int:
        return self.pos - self.ours


@dataclass(frozen=True, slots=True)
class MatchedOrder:
    order_no: str
    pos_amount: int
    our_amount: int
    late: bool = False

    @property
    def diff(self) -> int:
        return self.pos_amount - self.our_amount


@dataclass(frozen=True, slots=True)
class OrderComparison:
    """The order-by-order part; only when the POS sent its list."""

    matched: tuple[MatchedOrder, ...]
    missing_here: tuple[PosOrder, ...]
    missing_at_pos: tuple[BookedOrder, ...]
    # The sum of the POS's own list, and whether it equals the totals it sent.
    listed: Figures
    list_matches_totals: bool

    @property
    def amount_differences(self) -> tuple[MatchedOrder, ...]:
        return tuple(m for m in self.matched if m.diff != 0)

    @property
    def agrees(self) -> bool:
        return (
            not self.missing_here
            and not self.missing_at_pos
            and not self.amount_differences
            and self.list_matches_totals
        )


@dataclass(frozen=True, slots=True)
class Reconciliation:
    totals: TotalsDiff
    tenders: tuple[TenderDiff, ...]
    orders: OrderComparison | None

    @property
    def balanced(self) -> bool:
        return (
            self.totals.agrees
            and all(t.diff == 0 for t in self.tenders)
            and (self.orders is None or self.orders.agrees)
        )


def _check_amount(value: int, field_name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("金额须为整数分 (amounts are integer fen)", field=field_name)
    if not 0 <= value <= MAX_FEN:
        raise InvalidInput(
            f"金额超出范围 (amount must be between 0 and {MAX_FEN} fen)", field=field_name
        )


def _check_key(text: str, field_name: str, max_length: int) -> None:
    if not isinstance(text, str) or not text.strip() or len(text) > max_length:
        raise InvalidInput(
            f"须为 1-{max_length} 个字符 (must be 1-{max_length} characters)", field=field_name
        )


def check_pos_day(pos: PosDay) -> None:
    """Refuse a POS report that cannot be compared (negative, duplicate, not fen)."""
    if isinstance(pos.count, bool) or not isinstance(pos.count, int):
        raise InvalidInput("订单数须为整数 (order count must be an integer)", field="order_count")
    if not 0 <= pos.count <= MAX_COUNT:
        raise InvalidInput("订单数超出范围 (order count out of range)", field="order_count")
    _check_amount(pos.amount, "amount_fen")
    for method, amount in pos.tenders.items():
        _check_key(method, "tenders", 32)
        _check_amount(amount, f"tenders.{method}")
    if pos.orders is None:
        return
    if len(pos.orders) > MAX_COUNT:
        raise InvalidInput("订单列表过长 (too many orders)", field="orders")
    seen: set[str] = set()
    for i, order in enumerate(pos.orders):
        _check_key(order.order_no, f"orders.{i}.order_no", 64)
        _check_amount(order.amount, f"orders.{i}.amount_fen")
        if order.order_no in seen:
            raise InvalidInput(
                f"订单号重复: {order.order_no} (order number listed twice)",
                code="duplicate_order_no",
                field=f"orders.{i}.order_no",
                order_no=order.order_no,
            )
        seen.add(order.order_no)


def _tender_sums(orders: Iterable[BookedOrder]) -> dict[str, int]:
    sums: dict[str, int] = {}
    for order in orders:
        for method, amount in order.tenders.items():
            sums[method] = sums.get(method, 0) + amount
    return sums


def compare_orders(
    pos_orders: Iterable[PosOrder], ours: Iterable[BookedOrder], pos_totals: Figures
) -> OrderComparison:
    pos_by_no = {o.order_no: o for o in pos_orders}
    our_by_no = {o.order_no: o for o in ours}
    matched = tuple(
        MatchedOrder(no, pos_by_no[no].amount, our_by_no[no].amount, our_by_no[no].late)
        for no in sorted(pos_by_no.keys() & our_by_no.keys())
    )
    missing_here = tuple(pos_by_no[no] for no in sorted(pos_by_no.keys() - our_by_no.keys()))
    missing_at_pos = tuple(our_by_no[no] for no in sorted(our_by_no.keys() - pos_by_no.keys()))
    listed = Figures(len(pos_by_no), sum(o.amount for o in pos_by_no.values()))
    return OrderComparison(
        matched, missing_here, missing_at_pos, listed, list_matches_totals=listed == pos_totals
    )


def reconcile(pos: PosDay, ours: Iterable[BookedOrder]) -> Reconciliation:
    """Compare the POS's day with our booked orders of the same store and day.

    `ours` must have distinct order numbers (they are unique per store).
    """
    check_pos_day(pos)
    booked = list(ours)
    pos_figures = Figures(pos.count, pos.amount)
    totals = TotalsDiff(pos_figures, Figures(len(booked), sum(o.amount for o in booked)))
    our_tenders = _tender_sums(booked)
    tenders = tuple(
        TenderDiff(method, pos.tenders.get(method, 0), our_tenders.get(method, 0))
        for method in sorted(pos.tenders.keys() | our_tenders.keys())
    )
    orders = None if pos.orders is None else compare_orders(pos.orders, booked, pos_figures)
    return Reconciliation(totals, tenders, orders)
