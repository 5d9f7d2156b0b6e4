"""Phone numbers: parsed, validated and normalised to E.164 with `phonenumbers`.

China is the default region, so a cashier types 13812345678 and gets
+8613812345678; numbers with a country code work everywhere.
"""

from __future__ import annotations

import phonenumbers

from loyalpos.domain.errors import InvalidInput


def normalise_phone(raw: str, region: str = "CN") -> str:
    text = raw.strip()
    if not text or len(text) > 32:
        raise InvalidInput("请输入有效的手机号 (enter a valid phone number)", field="phone")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(
            "手机号格式不正确 (phone number not recognised)", field="phone"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("手机号无效 (phone number is not valid)", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
