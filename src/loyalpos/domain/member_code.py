"""Member codes (会员码).

A *dynamic* code is what a customer's phone shows at the till: it names the
member and the second it was made, signed with a key of the brand, so a
screenshot stops working after `ttl` seconds and a code cannot be forged or
moved to another brand. It is upper-case base32 (QR alphanumeric mode friendly):

    "M" + base32( version:1 | member_id:6 | issued_at:4 | mac:10 )

A *static* card number (for stores without scanners, or printed cards) is 16
digits ending in a Luhn check digit, so a mistyped digit is caught at the till.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from enum import StrEnum

from loyalpos.domain.errors import MemberCodeRejected

PREFIX = "M"
VERSION = 1
_BODY = struct.Struct(">B6sI")
_MAC_BYTES = 10
DEFAULT_TTL_SECONDS = 60
CLOCK_SKEW_SECONDS = 5


class RejectReason(StrEnum):
    MALFORMED = "malformed"
    FORGED = "forged"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


_MESSAGES = {
    RejectReason.MALFORMED: "会员码无法识别，请重新扫码 (member code not recognised, scan again)",
    RejectReason.FORGED: "会员码无效，请顾客刷新会员码 (member code is not genuine; ask for a fresh one)",
    RejectReason.EXPIRED: "会员码已过期，请顾客刷新后再扫 (member code expired; ask the customer to refresh)",
    RejectReason.NOT_YET_VALID: "会员码时间异常，请检查收银机时间 (member code is from the future; check the clock)",
}


def brand_key(secret: bytes, brand_id: int) -> bytes:
    """A key per brand, so a code signed for one brand never verifies in another."""
    return hmac.new(secret, f"member-code:{brand_id}".encode(), hashlib.sha256).digest()


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(key: bytes, member_id: int, issued_at: int) -> str:
    """The dynamic code for `member_id`, made at unix time `issued_at`."""
    body = _BODY.pack(VERSION, member_id.to_bytes(6, "big"), issued_at)
    raw = body + _mac(key, body)
    return PREFIX + base64.b32encode(raw).decode().rstrip("=")


def _reject(reason: RejectReason, **detail: int) -> MemberCodeRejected:
    error = MemberCodeRejected(_MESSAGES[reason], reason=reason.value)
    error.detail.update(detail)
    return error


def verify(key: bytes, code: str, now: int, ttl: int = DEFAULT_TTL_SECONDS) -> int:
    """The member id in a genuine, fresh code; otherwise `MemberCodeRejected`."""
    text = code.strip().upper()
    if not text.startswith(PREFIX) or len(text) > 64:
        raise _reject(RejectReason.MALFORMED)
    encoded = text[len(PREFIX) :]
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except (binascii.Error, ValueError):
        raise _reject(RejectReason.MALFORMED) from None
    if len(raw) != _BODY.size + _MAC_BYTES:
        raise _reject(RejectReason.MALFORMED)
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    version, member_bytes, issued_at = _BODY.unpack(body)
    if version != VERSION:
        raise _reject(RejectReason.MALFORMED)
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise _reject(RejectReason.FORGED)
    age = now - issued_at
    if age < -CLOCK_SKEW_SECONDS:
        raise _reject(RejectReason.NOT_YET_VALID, seconds_ahead=-age)
    if age > ttl:
        raise _reject(RejectReason.EXPIRED, seconds_old=age, ttl=ttl)
    return int.from_bytes(member_bytes, "big")


def luhn_check_digit(digits: str) -> str:
    """The digit that makes `digits + it` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


CARD_LENGTH = 16


def is_card_number(text: str) -> bool:
    return (
        len(text) == CARD_LENGTH
        and text.isascii()
        and text.isdigit()
        and luhn_check_digit(text[:-1]) == text[-1]
    )


def card_number_from(body15: str) -> str:
    """A card number from 15 digits (the service supplies random ones)."""
    if len(body15) != CARD_LENGTH - 1 or not body15.isdigit():
        raise ValueError("a card number body is 15 digits")
    return body15 + luhn_check_digit(body15)
