"""Dominance between interchangeable candidates: combinations the search need
neither keep nor extend.

Classes (`Classes`): the coupons of one class differ only in expiry and id. A
class is the coupons of one template, or of several templates that pricing and
stacking cannot tell apart: equal in every field pricing reads and in their
stacking traits (`Traits.twin`: kind, priority, scope, every amount and
threshold, the exclusive groups and forbidden pairs that name them), none with
a discount budget (`cap`, which is kept per template id), and none whose
per-order limit can bind (no more candidates of it, forced ones included, than
`per_order` allows). Promotions likewise: one promotion, or several
interchangeable ones without a budget. Applying any member of a class is
applying the same benefit; so is leaving one out.

Invariant: if a combination holds member B of a class and leaves out member A
of the same class that the rank prefers (expires first, or as soon and a
smaller id), swapping B for A gives a combination that is as legal (the same
conflicts, the same number of coupons, no template's limit exceeded),
irreducible and saving, and ranks higher, unless the order of application
changes: benefits are applied in (kind, priority, id) order, so a benefit X of
the same kind and priority whose id lies between A's and B's, and that
touches some of the same lines, is applied between them in one order and not
in the other (benefits on disjoint lines commute; so do two members of one
class, being the same benefit).

The ranking puts the members of a class in the rank's order, so when the
search adds B every such A has been decided. B then needs, on each side, a
benefit X between B and the nearest left-out A: one already held, or one still
to come (a `Constraint`). B is added only while every requirement can still be
met, and a combination with an unmet one does not compete: the combination
that dominates it is visited instead. This needs unique ids (a real wallet has
them); with duplicates it stands aside (`Classes.unique`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any, NamedTuple

from loyalpos.domain.pricing.candidate import Candidate
from loyalpos.domain.pricing.context import SearchContext, place_of
from loyalpos.domain.pricing.lines import touched_mask
from loyalpos.domain.pricing.ranked import Ranked
from loyalpos.domain.pricing.stacking import per_order, traits_of

# A class of interchangeable candidates: (`Traits.twin`, None, True), or
# (id(benefit), cap, False) for the coupons of one template on their own.
_Class = tuple[int, int | None, bool]


class Constraint(NamedTuple):
    """A combination holding a coupon that was preferred over an earlier one of
    its template is dominated unless it also holds one of `satisfiers`."""

    satisfiers: frozenset[int]  # indexes in the ranking
    ordered: tuple[int, ...]  # the same, in order (best standalone saving first)
    last: int  # the last of them
    last_promotion: int  # the last that is a promotion (needs no coupon slot), or -1


def feasible(pending: tuple[Constraint, ...], j: int, coupons_left: int) -> bool:
    """Whether candidates from `j` on may still meet every requirement."""
    if coupons_left > 0:
        return all(k.last >= j for k in pending)
    return all(k.last_promotion >= j for k in pending)


class Classes:
    """The classes of the ranking's candidates, and where each one's members lie."""

    def __init__(
        self,
        s: SearchContext,
        r: Ranked,
        firsts: dict[int, list[Any]],
        allowed: dict[int, int],
    ) -> None:
        """`firsts`: id(benefit) -> [its first candidate in ranking order, how many
        it has] over the ranking; the forced ones are counted in here. `allowed`:
        `per_order` by id(benefit) of the ranked ones."""
        cands, n = r.cands, r.n
        self.keys = r.keys
        for c in r.forced:
            found = firsts.get(id(c.benefit))
            if found is None:
                firsts[id(c.benefit)] = [c, 1]
            else:
                found[1] += 1
        classes: dict[int, _Class] = {}  # by id(benefit)
        self.classes = classes
        for key, (c, count) in firsts.items():
            b = c.benefit
            limit = allowed.get(key)
            if c.cap is None and (
                c.coupon is None or count <= (per_order(s, b) if limit is None else limit)
            ):
                classes[key] = (traits_of(s, b).twin, None, True)
            else:
                classes[key] = (key, c.cap, False)
        self.klass = [classes[id(c.benefit)] for c in cands]
        # The members of each class in ranking order, and j's place among them.
        same_lists: list[list[int]] = []
        place: list[int] = []
        self.place = place
        seen: dict[_Class, list[int]] = {}
        for j in range(n):
            same = seen.setdefault(self.klass[j], [])
            same_lists.append(same)
            place.append(len(same))
            same.append(j)
        # As tuples of ints, which the collector stops tracking.
        frozen = {id(v): tuple(v) for v in seen.values()}
        self.same: list[tuple[int, ...]] = [frozen[id(v)] for v in same_lists]
        keys = [c.key for c in r.forced] + self.keys
        self.unique = len(set(keys)) == len(keys)
        # run_end[j]: where the run of candidates of j's class that starts at j
        # ends (the ranking puts a class's members together unless another
        # class saves exactly as much).
        run_end = self.run_end = list(range(1, n + 1))
        for j in range(n - 2, -1, -1):
            if place[j + 1] and same_lists[j] is same_lists[j + 1]:
                run_end[j] = run_end[j + 1]
        self.sides: list[tuple[list[int], list[int]] | None] = [None] * n

    def earlier(self, j: int) -> tuple[int, ...]:
        """The members of j's class ranked before it."""
        return self.same[j][: self.place[j]]

    def sides_of(self, j: int) -> tuple[list[int], list[int]]:
        """The earlier members of j's class with a smaller id, nearest first,
        and those with a larger id, nearest first."""
        found = self.sides[j]
        if found is None:
            key, keys = self.keys[j], self.keys
            nearer = sorted(self.earlier(j), key=keys.__getitem__)
            found = self.sides[j] = (
                [e for e in reversed(nearer) if keys[e] < key],
                [e for e in nearer if keys[e] > key],
            )
        return found


class Dominance:
    """Which candidates a combination may take without being dominated, and what
    it then still needs (see the module's docstring)."""

    def __init__(self, s: SearchContext, r: Ranked, classes: Classes) -> None:
        self.s, self.cands, self.keys, self.n = s, r.cands, r.keys, r.n
        self.is_coupon, self.traits, self.forced = r.is_coupon, r.traits, r.forced
        self.of = classes
        self.unique = classes.unique
        # Candidates by (kind, priority), then class, when first needed
        # (`_interferers`): only these can come between two others.
        self._groups: dict[tuple[int, int], dict[_Class, list[int]]] | None = None
        self.interfering: dict[tuple[int, int], bool] = {}
        self.interferers: dict[_Class, tuple[list[str], list[tuple[int, bool]]]] = {}
        self.free: dict[_Class, bool] = {}  # `uninterrupted`, by class
        self.free_at: list[bool | None] = [None] * r.n  # the same, by position
        # Worked out when first needed: see `_blockers`, `skip`, `include`.
        self.blockers: list[int | None] = [None] * r.n  # bit masks
        self.earlier_masks: list[int | None] = [None] * r.n  # of `Classes.earlier`
        self.free_from: list[int | None] = [None] * r.n

    def interferes(self, x: Candidate, c: Candidate) -> bool:
        """Whether `x`, held with `c`, may be applied between two members of `c`'s
        class and change the outcome."""
        pair = (id(x.benefit), id(c.benefit))
        found = self.interfering.get(pair)
        if found is None:
            tx, tc = traits_of(self.s, x.benefit), traits_of(self.s, c.benefit)
            classes = self.of.classes
            found = (
                classes[id(x.benefit)] != classes[id(c.benefit)]
                and tx.place == tc.place
                and bool(touched_mask(self.s, x.benefit) & touched_mask(self.s, c.benefit))
                and not tx.against & tc.mine  # compatible
            )
            self.interfering[pair] = found
        return found

    def skip(self, j: int) -> int:
        """Where to go on from a blocked candidate j when the combination holds
        no member of its class: the next of its run that nothing blocks (all
        the others are blocked for the same reason: a left-out earlier coupon)."""
        found = self.free_from[j]
        if found is None:
            k = j + 1
            end = self.of.run_end[j]
            while k < end and self.blocker_mask(k):
                k += 1
            found = self.free_from[j] = k
        return found

    def blocker_mask(self, j: int) -> int:
        mask = self.blockers[j]
        if mask is None:
            mask = 0
            for e in self._blockers(j):
                mask |= 1 << e
            self.blockers[j] = mask
        return mask

    def blocked(self, j: int, held: int) -> bool:
        """Whether candidate j certainly cannot join a combination holding the
        candidates at the bits of `held`: an earlier member of its class is left
        out and no benefit at all could come between the two (`include` would
        say so, at more cost)."""
        if not self.unique:
            return False
        mask = self.blocker_mask(j)
        return held & mask != mask

    def uninterrupted_at(self, j: int) -> bool:
        """`uninterrupted` for candidate j, kept per position."""
        found = self.free_at[j]
        if found is None:
            found = self.free_at[j] = self.uninterrupted(self.cands[j])
        return found

    def uninterrupted(self, c: Candidate) -> bool:
        """Whether no benefit, ranked or forced, can come between two coupons of
        `c`'s class (then every earlier one blocks, see `_blockers`)."""
        klass = self.of.classes[id(c.benefit)]
        found = self.free.get(klass)
        if found is None:
            found = self.free[klass] = not self._interferers(c)[0] and not any(
                self.interferes(x, c) for x in self.forced
            )
        return found

    def _blockers(self, j: int) -> Sequence[int]:
        """The earlier members of j's class with no possible interferer (ranked
        or forced) between their id and j's, nearest first on each side."""
        if not self.of.place[j]:
            return []  # the first of its class
        c, key = self.cands[j], self.keys[j]
        if self.uninterrupted(c):
            return self.of.earlier(j)
        keys = sorted(
            [*self._interferers(c)[0], *(x.key for x in self.forced if self.interferes(x, c))]
        )
        left, right = self.of.sides_of(j)
        found = []
        for e in left:
            if bisect_right(keys, self.keys[e]) != bisect_left(keys, key):
                break
            found.append(e)
        for e in right:
            if bisect_right(keys, key) != bisect_left(keys, self.keys[e]):
                break
            found.append(e)
        return found

    def _interferers(self, c: Candidate) -> tuple[list[str], list[tuple[int, bool]]]:
        """Ranked candidates that interfere with `c`'s class, by id. Whether one
        does depends on its class alone (`interferes`), and so does the answer."""
        klass = self.of.classes[id(c.benefit)]
        found = self.interferers.get(klass)
        if found is None:
            hits: list[tuple[str, int]] = []
            if self._groups is None:
                self._groups = {}
                for j in range(self.n):
                    self._groups.setdefault(self.traits[j].place, {}).setdefault(
                        self.of.klass[j], []
                    ).append(j)
            for members in self._groups.get(place_of(self.s, c), {}).values():
                if self.interferes(self.cands[members[0]], c):
                    hits.extend((self.keys[i], i) for i in members)
            hits.sort()
            found = ([k for k, _ in hits], [(i, self.is_coupon[i]) for _, i in hits])
            self.interferers[klass] = found
        return found

    def include(
        self,
        j: int,
        combo: tuple[Candidate, ...],
        held: int,
        pending: tuple[Constraint, ...],
        coupons_left: int,
    ) -> tuple[Constraint, ...] | None:
        """The requirements once candidate `j` joins `combo` (the candidates at
        the bits of `held`, plus the forced ones), `coupons_left` after it; None if
        they can no longer all be met."""
        if not self.unique:
            return ()
        after = tuple([k for k in pending if j not in k.satisfiers]) if pending else ()
        earlier = self.earlier_masks[j]
        if earlier is None:
            earlier = 0
            for e in self.of.earlier(j):
                earlier |= 1 << e
            self.earlier_masks[j] = earlier
        if held & earlier == earlier:  # no member of the class left out before it
            return after if feasible(after, j + 1, coupons_left) else None
        lower, higher = self.of.sides_of(j)
        left = next((e for e in lower if not held >> e & 1), None)
        right = next((e for e in higher if not held >> e & 1), None)
        if left is None and right is None:
            return after if feasible(after, j + 1, coupons_left) else None
        c, key = self.cands[j], self.keys[j]
        for low, high in (
            (None if left is None else self.keys[left], key),
            (key, None if right is None else self.keys[right]),
        ):
            if low is None or high is None:
                continue
            if any(low < x.key < high and self.interferes(x, c) for x in combo):
                continue
            keys, entries = self._interferers(c)
            found = [
                entries[i]
                for i in range(bisect_right(keys, low), bisect_left(keys, high))
                if entries[i][0] > j
            ]
            if not found:
                return None
            after += (
                Constraint(
                    frozenset(i for i, _ in found),
                    tuple(sorted(i for i, _ in found)),
                    max(i for i, _ in found),
                    max((i for i, coupon in found if not coupon), default=-1),
                ),
            )
        return after if feasible(after, j + 1, coupons_left) else None
