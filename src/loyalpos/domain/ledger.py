"""The points ledger's arithmetic: lots, draws, and the order they are used in.

The ledger is a list of immutable entries (earn, spend, expire, adjust,
reverse). Points live in *lots*: every credit opens a lot with its own expiry,
every debit *draws* from lots, and the draws are recorded so that a refund can
put points back where they came from and keep expiry exact.

Invariant: a member's balance = the sum of the entries = the sum of the open
lots' remaining points. A lot's remaining is never negative, except a *debt
lot*: when a brand lets a reversal take a member below zero, the shortfall is
kept as a lot with negative remaining that later earnings pay off first.

The functions here only plan; the service layer books the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from loyalpos.domain.errors import InsufficientPoints, InvalidInput


class EntryKind(StrEnum):
    EARN = "earn"
    SPEND = "spend"
    EXPIRE = "expire"
    ADJUST = "adjust"
    REVERSE = "reverse"


@dataclass(frozen=True, slots=True)
class Lot:
    """An open lot as the planner sees it."""

    id: int
    remaining: int
    expires_on: date | None
    available_at: datetime

    def spendable_at(self, now: datetime, today: date) -> bool:
        """Past its pending window and not lapsed (even if the expiry job is late)."""
        return (
            self.remaining > 0
            and self.available_at <= now
            and (self.expires_on is None or self.expires_on > today)
        )


@dataclass(frozen=True, slots=True)
class Draw:
    """`points` (always positive) moved out of or back into lot `lot_id`."""

    lot_id: int
    points: int


def spend_order(lot: Lot) -> tuple[bool, date, int]:
    """Lots that expire first are used first; lots that never expire come last."""
    return (lot.expires_on is None, lot.expires_on or date.max, lot.id)


def require_positive(points: int, what: str = "points") -> None:
    if points <= 0:
        raise InvalidInput(f"{what} must be a positive whole number", field=what, value=points)


def plan_spend(lots: Iterable[Lot], points: int, now: datetime, today: date) -> list[Draw]:
    """Draws covering `points` from the spendable lots, earliest expiry first.

    `today` is the brand's local date: lots lapsing on or before it are not
    spendable even before the expiry job has run.
    """
    require_positive(points)
    usable = sorted((lot for lot in lots if lot.spendable_at(now, today)), key=spend_order)
    draws: list[Draw] = []
    left = points
    for lot in usable:
        if left == 0:
            break
        take = min(left, lot.remaining)
        draws.append(Draw(lot.id, take))
        left -= take
    if left:
        raise InsufficientPoints(points, points - left)
    return draws


def plan_give_back(outstanding: Sequence[tuple[Lot, int]], points: int) -> list[Draw]:
    """Draws returning `points` to the lots a debit took them from.

    `outstanding` pairs each lot with what the debit drew from it and has not yet
    been given back. A partial give-back fills the lots that expire *last* first,
    which is the customer's side of the choice.
    """
    require_positive(points)
    total = sum(n for _, n in outstanding)
    if points > total:
        raise InvalidInput(
            f"only {total} points of this entry are left to reverse",
            field="points",
            requested=points,
            reversible=total,
        )
    draws: list[Draw] = []
    left = points
    for lot, n in sorted(outstanding, key=lambda pair: spend_order(pair[0]), reverse=True):
        if left == 0:
            break
        give = min(left, n)
        if give:
            draws.append(Draw(lot.id, give))
            left -= give
    return draws


@dataclass(frozen=True, slots=True)
class ClawbackPlan:
    """How a reversal of credited points is taken back."""

    draws: list[Draw]
    shortfall: int


def plan_clawback(origin: Lot | None, others: Iterable[Lot], points: int) -> ClawbackPlan:
    """Take back credited points: from their own lot first, then from any other
    lots earliest expiry first (the member already spent the originals), and
    report what is still missing as `shortfall`."""
    require_positive(points)
    draws: list[Draw] = []
    left = points
    if origin is not None and origin.remaining > 0:
        take = min(left, origin.remaining)
        draws.append(Draw(origin.id, take))
        left -= take
    rest = sorted(
        (lot for lot in others if lot.remaining > 0 and (origin is None or lot.id != origin.id)),
        key=spend_order,
    )
    for lot in rest:
        if left == 0:
            break
        take = min(left, lot.remaining)
        draws.append(Draw(lot.id, take))
        left -= take
    return ClawbackPlan(draws, left)


def plan_debt_settlement(debt_lots: Iterable[Lot], points: int) -> tuple[list[Draw], int]:
    """New credit pays off debt lots (oldest first); returns the draws and the rest."""
    draws: list[Draw] = []
    left = points
    for lot in sorted((lot for lot in debt_lots if lot.remaining < 0), key=lambda x: x.id):
        if left == 0:
            break
        pay = min(left, -lot.remaining)
        draws.append(Draw(lot.id, pay))
        left -= pay
    return draws, left


def reclaimable(wanted: int, held: int, allow_negative: bool) -> int:
    """How much of `wanted` points a reversal takes back (a refund's, a revoked
    campaign's): all of it where the brand allows a negative balance (the rest
    becomes a debt lot), otherwise at most what the member holds, `held`."""
    if wanted <= 0:
        return 0
    return wanted if allow_negative else min(wanted, max(held, 0))
