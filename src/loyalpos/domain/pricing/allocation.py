"""Splitting an amount over lines: one home for it, exact to the fen.

Largest remainder: each line gets the floor of its proportional share, and the
fen left over go to the lines with the largest remainders (earlier lines win
ties). Parts sum to the total exactly, and no part exceeds its weight when the
total does not exceed the sum of weights, so no line goes below zero.
"""

from __future__ import annotations

from collections.abc import Sequence


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split over `weights` in proportion, summing exactly to `total`."""
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        return [0] * len(weights)
    if total < 0 or min(weights) < 0:
        raise ValueError("allocation needs non-negative amounts")
    scaled = [total * w for w in weights]
    parts = [x // weight_sum for x in scaled]
    left = total - sum(parts)
    if left:
        # The `left` largest remainders get one fen each, earlier lines first among
        # equal ones: all above the `left`-th largest, then the first of those equal.
        remainders = [x % weight_sum for x in scaled]
        cut = sorted(remainders, reverse=True)[left - 1]
        equal = left - sum(1 for r in remainders if r > cut)
        for i, r in enumerate(remainders):
            if r > cut:
                parts[i] += 1
            elif r == cut and equal:
                parts[i] += 1
                equal -= 1
    return parts


def percent_of(amount: int, percent_x100: int) -> int:
    """`amount` × percent, where `percent_x100` is hundredths of a percent
    (9500 = 95%), rounded half up to the fen: the one rounding of discounts."""
    return (amount * percent_x100 + 5000) // 10000
