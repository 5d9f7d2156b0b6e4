"""Money is an integer number of 分 (fen).

There is one constructor, `fen`, that refuses anything but an int (a float or
Decimal near money is a bug), and one formatter for people, `yuan`.
"""

from __future__ import annotations

from typing import NewType

Fen = NewType("Fen", int)


def fen(value: int) -> Fen:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"money is an integer number of fen, not {type(value).__name__}")
    return Fen(value)


def yuan(amount: int) -> str:
    """12345 -> '123.45' (no currency sign; the page adds ¥ where it wants it)."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d}"
