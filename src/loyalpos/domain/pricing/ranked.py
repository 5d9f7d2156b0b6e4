"""The candidates of one search in ranking order, and the facts about them.

Invariant: candidates are ranked best standalone saving first, then earliest
expiry, then key (`by_saving`); `ranking` says what relies on which part.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.context import SearchContext
from loyalpos.domain.pricing.stacking import per_order, traits_of


def by_saving(c: Candidate) -> tuple[int, datetime, str]:
    """The ranking's order: best standalone saving first, then earliest expiry, then id."""
    return -c.alone, c.expires, c.key


class Ranked:
    """The optional candidates of one search, best standalone saving first, and
    what the search asks of them again and again, worked out once: by position,
    their keys, whether each is a coupon, what each saves alone, its stacking
    traits and its template's per-order limit. The pieces that reason over the
    ranking (`bounds`, `dominance`, `ties`) read these facts only, so they take a
    `Ranked`; `ranking.Ranking` adds them on top."""

    def __init__(
        self, s: SearchContext, forced: tuple[Candidate, ...], optional: list[Candidate]
    ) -> None:
        cands = self.cands = sorted(optional, key=by_saving)
        self.s = s
        n = self.n = len(cands)
        self.max_coupons = s.rules.stacking.max_coupons
        self.forced = forced
        self.keys = [c.key for c in cands]
        self.is_coupon = [c.coupon is not None for c in cands]
        self.savings = [c.alone for c in cands]
        self.traits = [traits_of(s, c.benefit) for c in cands]
        # Each template's first candidate in ranking order and how many it has,
        # by id(benefit) (`Classes` counts the forced ones in too).
        firsts: dict[int, list[Any]] = {}  # id(benefit) -> [candidate, count]
        self.firsts = firsts
        for c in cands:
            found = firsts.get(id(c.benefit))
            if found is None:
                firsts[id(c.benefit)] = [c, 1]
            else:
                found[1] += 1
        allowed = self.allowed_by_template = {
            key: per_order(s, c.benefit) for key, (c, _) in firsts.items()
        }
        self.allowed = [allowed[id(c.benefit)] for c in cands]
        self.promotions = [i for i in range(n) if not self.is_coupon[i]]
