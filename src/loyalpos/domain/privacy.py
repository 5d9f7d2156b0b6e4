"""Personal data at rest in the domain: how a phone number is shown.

Phone numbers are shown masked (138****5678) everywhere but where the full
number is needed; `mask_phone` is the one place that decides what masked means.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d")


def mask_phone(phone: str) -> str:
    """Keep the first 3 and last 4 digits of the national number: 138****5678."""
    national = phone
    if phone.startswith("+86"):
        national = phone[3:]
    elif phone.startswith("+"):
        national = phone[1:]
    digits = "".join(_DIGITS.findall(national))
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


# A mainland mobile number (optionally +86) or any number in E.164 form.
PHONE_LIKE = re.compile(r"(?<![\d+])(?:\+?86)?1[3-9]\d{9}(?!\d)|\+\d{8,15}(?!\d)")


def redact_phones(text: str) -> str:
    """Mask anything that looks like a phone number; used to scrub log lines."""
    return PHONE_LIKE.sub(lambda m: mask_phone(m.group(0)), text)
