"""Pure arithmetic of the checkout: tiers and their progress line, the shares a
partial refund takes back, and the fingerprint that tells a replay from a
different request under the same order number."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loyalpos.domain.money import yuan


@dataclass(frozen=True, slots=True)
class Tier:
    id: str
    name: str
    min_spent: int


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the member is from the next tier (距离金卡还需消费 ¥320.00)."""

    next_tier: str
    next_name: str
    shortfall: int

    @property
    def message_zh(self) -> str:
        return f"距离{self.next_name}还需消费 ¥{yuan(self.shortfall)}"

    @property
    def message_en(self) -> str:
        return f"spend ¥{yuan(self.shortfall)} more to reach {self.next_name}"


def tier_for(tiers: Sequence[Tier], spent: int) -> Tier | None:
    """The highest tier whose threshold `spent` reaches; None if tiers are not set."""
    reached = [t for t in tiers if t.min_spent <= spent]
    return max(reached, key=lambda t: (t.min_spent, t.id)) if reached else None


def progress(tiers: Sequence[Tier], spent: int) -> Progress | None:
    """The next tier above what `spent` reaches and the shortfall; None at the top."""
    above = [t for t in tiers if t.min_spent > spent]
    if not above:
        return None
    nxt = min(above, key=lambda t: (t.min_spent, t.id))
    return Progress(nxt.id, nxt.name or nxt.id, nxt.min_spent - spent)


def share(total: int, qty: int, before: int, now: int) -> int:
    """The part of `total` (spread over `qty` units) that `now` more units take,
    after `before` units were taken already.

    Cumulative floors: refunding every unit, in any number of parts, gives back
    exactly `total`, and each part is within one fen of its proportion.
    """
    if not (0 <= before and 0 <= now and before + now <= qty and qty > 0):
        raise ValueError("refund quantities out of range")
    return total * (before + now) // qty - total * before // qty


def fingerprint(data: Any) -> str:
    """SHA-256 of canonical JSON: equal requests, equal fingerprints."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
