"""Names the pages show for the service's codes, as message ids: the service
keeps its Chinese labels for the API and the reports it writes; a page says
them in its own language."""

from __future__ import annotations

from collections.abc import Callable

# Why a cart was parked (service/till/holds.HoldReason).
HOLD_REASONS: dict[str, str] = {
    "call": "Phone call",
    "more_items": "Picking more items",
    "payment_issue": "Payment problem",
    "customer_left": "Customer stepped away",
    "other": "Other",
}


def hold_reasons(gettext: Callable[[str], str]) -> dict[str, str]:
    """Every hold reason's code and its name in the page's language."""
    return {code: gettext(msgid) for code, msgid in HOLD_REASONS.items()}
