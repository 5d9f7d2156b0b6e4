"""Webhook signatures and the retry schedule: pure, standard library only.

Signature header (the receiver checks it with `verify`):

    X-Loyalpos-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

The timestamp is inside the signed text, so a captured request cannot be
replayed later than `tolerance` seconds by changing `t`. Several `v1=` entries
may appear (e.g. while a secret is rotated); one match is enough.

Where deliveries may go: only to public unicast addresses (`public_address`; an IPv6
form that embeds an IPv4 address counts as that IPv4 address), unless
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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose addresses carry an IPv4 address (see `embedded_ipv4`).
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")  # IPv4-mapped (RFC 4291)
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # IPv4-translated (SIIT, RFC 2765)
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # IPv4-compatible (deprecated, RFC 4291)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # 6to4 (RFC 3056)
_TEREDO = ipaddress.IPv6Network("2001::/32")  # Teredo (RFC 4380)
_LOW32 = (_MAPPED, _TRANSLATED, _COMPATIBLE, _NAT64)


def _rfc6052_layouts(x: int) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 address a local-use NAT64 address carries under each RFC 6052
    layout its operator may use inside 64:ff9b:1::/48: a /48 (bits 48-63 and
    72-87, skipping the u octet), /56 (56-63 and 72-95), /64 (72-103) or /96
    prefix (the last 32 bits). The address alone does not say which one the
    network uses, so each is a candidate and every one must be public."""
    return tuple(
        ipaddress.IPv4Address(v)
        for v in (
            ((x >> 64) & 0xFFFF) << 16 | (x >> 40) & 0xFFFF,
            ((x >> 64) & 0xFF) << 24 | (x >> 32) & 0xFFFFFF,
            (x >> 24) & 0xFFFFFFFF,
            x & 0xFFFFFFFF,
        )
    )


def embedded_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address stands for, or () when it embeds none.

    A packet to any of these forms ends up at (or is translated to) the IPv4
    address inside it, by the host's own stack (mapped, compatible), a NAT64
    gateway on its network, or a 6to4/Teredo relay; so the address is only as
    public as that IPv4 address. The IPv4 is the last 32 bits for the mapped,
    translated, compatible and well-known NAT64 forms; the local-use NAT64 prefix
    `64:ff9b:1::/48` gives one candidate per layout (`_rfc6052_layouts`); bits
    16-48 for 6to4; Teredo carries two: its server
    (bits 32-64) and its client (the last 32 bits, inverted), and both count.
    An IPv4 address embeds nothing (it is itself)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return ()
    if any(ip in net for net in _LOW32):
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    if ip in _NAT64_LOCAL:
        return _rfc6052_layouts(int(ip))
    if ip in _SIX_TO_FOUR:
        return (ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF),)
    if ip in _TEREDO:
        server = ipaddress.IPv4Address((int(ip) >> 64) & 0xFFFFFFFF)
        client = ipaddress.IPv4Address(~int(ip) & 0xFFFFFFFF)
        return (server, client)
    return ()


def _address(text: str) -> IPAddress | None:
    """`text` as an IP address (a zone id dropped), or None when it is not an
    address literal."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def is_address(text: str) -> bool:
    """Whether `text` is an IPv4 or IPv6 literal rather than a host name."""
    return _address(text) is not None


# IANA's IPv4 special-purpose blocks that are not globally reachable, named
# here as well as left to `is_global`, whose list depends on the Python version
# (3.11 still calls 192.0.0.8, the IPv4 dummy address, global).
_NOT_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)


# The same for IPv6, where `is_global` on Python 3.11 still calls the old
# site-local block, the documentation block of RFC 9637 and SRv6's block global.
_NOT_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",
        "::1/128",
        "100::/64",
        "2001:2::/48",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


def _public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        if any(ip in net for net in _NOT_PUBLIC_V4):
            return False
    elif any(ip in net for net in _NOT_PUBLIC_V6):
        return False
    return ip.is_global and not ip.is_multicast


def public_address(address: str) -> bool:
    """Whether `address` (an IPv4 or IPv6 literal) is a public unicast address:
    not loopback, private, link-local, shared (100.64/10), documentation,
    reserved, unspecified or multicast. An IPv6 address that embeds IPv4
    addresses (`embedded_ipv4`: mapped, compatible, NAT64, 6to4, Teredo) is
    judged by them alone, so `[64:ff9b::a00:1]` is 10.0.0.1 and `[::127.0.0.1]`
    is loopback. The same function judges the URL at subscribe and every DNS
    answer at delivery (`service/events/worker.py` `pinned`)."""
    ip = _address(address)
    if ip is None:
        return False
    inner = embedded_ipv4(ip)
    if inner:
        return all(_public(v4) for v4 in inner)
    return _public(ip)
