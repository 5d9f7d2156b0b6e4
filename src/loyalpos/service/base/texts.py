"""Checks of the free text and JSON a till sends along (a hold's note and cart,
a till event's reason and detail): one rule for each, so two parts of the till
cannot drift apart on what they accept."""

from __future__ import annotations

from typing import Any

from loyalpos.characters import Chars
from loyalpos.domain.errors import InvalidInput


def checked_text(
    value: str, field: str, max_length: int, *, required: bool, rule: Chars | None = None
) -> str:
    """`value` trimmed, 0 (1 when required) to `max_length` characters, held to
    `rule` (without one: no NUL character)."""
    value = value.strip()
    if (required and not value) or len(value) > max_length:
        low = 1 if required else 0
        raise InvalidInput(
            f"{field} 须为 {low}-{max_length} 个字符 ({field} must be {low}-{max_length} characters)",
            field=field,
        )
    if rule is None:
        if "\x00" in value:
            raise InvalidInput(f"{field} must not contain NUL characters", field=field)
        return value
    try:
        rule.check(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from None
    return value


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, without recursion; stops counting once it
    is past `limit` (a deeper value is refused whatever its depth)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > limit:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest
