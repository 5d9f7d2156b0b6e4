"""Webhook signatures and the retry schedule: pure, standard library only.

Signature header (the receiver checks it with `verify`):

    X-Loyalpos-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

The timestamp is inside the signed text, so a captured request cannot be
replayed later than `tolerance` seconds by changing `t`. Several `v1=` entries
may appear (e.g. while a secret is rotated); one match is enough.

Where deliveries may go: only to public unicast addresses (`public_address`), unless
the operator allows the private network (an ERP on 10.x in an on-premise chain). An
HQ key chooses the URL; without the check, the worker would fetch whatever it names
on the server's own network (loopback, the cloud's metadata service at
169.254.169.254, the database): server-side request forgery.

Retries: after the n-th failed attempt the next one is due
`min(cap, base * 2**(n-1))` seconds later; after `max_attempts` failures the
delivery is dead (a dead letter an operator can replay).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

SIGNATURE_HEADER = "X-Loyalpos-Signature"
EVENT_ID_HEADER = "X-Loyalpos-Event"
EVENT_TYPE_HEADER = "X-Loyalpos-Event-Type"
DELIVERY_ID_HEADER = "X-Loyalpos-Delivery"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-Loyalpos-Signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},{SIGNATURE_SCHEME}={compute_signature(secret, timestamp, body)}"


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    timestamp: int
    signatures: tuple[str, ...]


def parse_signature_header(header: str) -> ParsedSignature | None:
    """`t` and every `v1` value of a header, or None when it is malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return None
            if len(value) > 12:  # far beyond any real time; keeps int() cheap
                return None
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
        # Unknown schemes are ignored so that a receiver survives a future v2.
    if timestamp is None or not signatures:
        return None
    return ParsedSignature(timestamp, tuple(signatures))


def verify(
    secret: str,
    body: bytes,
    header: str,
    now: int,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when `header` signs exactly `body` with `secret` and its time is
    within `tolerance` seconds of `now` (unix seconds). Never raises."""
    parsed = parse_signature_header(header)
    if parsed is None or abs(now - parsed.timestamp) > tolerance:
        return False
    expected = compute_signature(secret, parsed.timestamp, body)
    # Compare every candidate so the time taken says nothing about which matched.
    matched = False
    for candidate in parsed.signatures:
        matched |= hmac.compare_digest(expected, candidate)
    return matched


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a failing delivery is tried."""

    max_attempts: int = 8
    base_seconds: int = 30
    cap_seconds: int = 3600

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_seconds < 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("need 0 <= base_seconds <= cap_seconds")

    def backoff_seconds(self, attempts: int) -> int:
        """Seconds to wait after the `attempts`-th failed attempt (attempts >= 1)."""
        if attempts < 1:
            raise ValueError("attempts counts from 1")
        # 2**(attempts-1) may be huge; stop doubling once past the cap.
        delay = self.base_seconds
        for _ in range(attempts - 1):
            if delay == 0 or delay >= self.cap_seconds:
                break
            delay *= 2
        return min(delay, self.cap_seconds)

    def exhausted(self, attempts: int) -> bool:
        """True when `attempts` failures mean the delivery is dead."""
        return attempts >= self.max_attempts

    def schedule(self) -> list[int]:
        """The waits between attempts, first to last (max_attempts - 1 of them)."""
        return [self.backoff_seconds(n) for n in range(1, self.max_attempts)]


def is_success(status: int) -> bool:
    """Only a 2xx answer counts as delivered; redirects are not followed."""
    return 200 <= status < 300


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`text` as an IP address (a zone id dropped, an IPv4-mapped IPv6 address as
    its IPv4 address), or None when it is not an address literal."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_address(text: str) -> bool:
    """Whether `text` is an IPv4 or IPv6 literal rather than a host name."""
    return _address(text) is not None


def public_address(address: str) -> bool:
    """Whether `address` (an IPv4 or IPv6 literal) is a public unicast address:
    not loopback, private, link-local, shared (100.64/10), documentation,
    reserved, unspecified or multicast; an IPv4-mapped IPv6 address is judged
    by its IPv4 address."""
    ip = _address(address)
    return ip is not None and ip.is_global and not ip.is_multicast
