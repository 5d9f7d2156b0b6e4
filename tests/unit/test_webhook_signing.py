"""Webhook signatures and the retry schedule (pure, no I/O)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain.webhooks import (
    RetryPolicy,
    compute_signature,
    is_success,
    parse_signature_header,
    public_address,
    sign,
    verify,
)

SECRET = "whsec_test"
T = 1_700_000_000

secrets_ = st.text(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)
times = st.integers(min_value=0, max_value=2**33)


def test_worked_example_matches_a_plain_hmac() -> None:
    body = b'{"type":"order.paid"}'
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, T, body) == expected
    assert sign(SECRET, body, T) == f"t=1700000000,v1={expected}"


@given(secret=secrets_, body=bodies, t=times, skew=st.integers(-300, 300))
def test_verify_accepts_what_sign_made(secret: str, body: bytes, t: int, skew: int) -> None:
    assert verify(secret, body, sign(secret, body, t), t + skew)


@given(secret=secrets_, body=bodies, t=times, data=st.data())
def test_any_tampering_is_refused(secret: str, body: bytes, t: int, data: st.DataObject) -> None:
    header = sign(secret, body, t)
    other_body = data.draw(bodies.filter(lambda b: b != body), label="other body")
    assert not verify(secret, other_body, header, t)
    other_secret = data.draw(secrets_.filter(lambda s: s != secret), label="other secret")
    assert not verify(other_secret, body, header, t)
    # Moving the timestamp (to dodge the tolerance) breaks the signature.
    shifted = data.draw(times.filter(lambda x: x != t), label="other t")
    forged = header.replace(f"t={t},", f"t={shifted},")
    assert not verify(secret, body, forged, shifted)
    # Flipping one hex digit of the signature.
    digest = header.split("v1=")[1]
    i = data.draw(st.integers(0, len(digest) - 1), label="position")
    flipped = digest[:i] + ("0" if digest[i] != "0" else "1") + digest[i + 1 :]
    assert not verify(secret, body, f"t={t},v1={flipped}", t)


def test_old_or_future_timestamps_are_refused() -> None:
    header = sign(SECRET, b"{}", T)
    assert verify(SECRET, b"{}", header, T + 300)
    assert not verify(SECRET, b"{}", header, T + 301)
    assert not verify(SECRET, b"{}", header, T - 301)
    assert verify(SECRET, b"{}", header, T + 3000, tolerance=3600)


def test_one_matching_signature_of_several_is_enough() -> None:
    good = compute_signature(SECRET, T, b"x")
    assert verify(SECRET, b"x", f"t={T},v1={'0' * 64},v1={good}", T)
    assert verify(SECRET, b"x", f"t={T},v0=abc,v1={good}", T)  # unknown scheme ignored


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=abc",
        "t=12a,v1=abc",
        f"t={T}",
        "v1=abc",
        f"t={T},t={T},v1=abc",
        f"t=-{T},v1=abc",
        "t=١٢٣,v1=abc",  # non-ASCII digits
        "t=" + "9" * 40 + ",v1=abc",
        f"t={T},v1",
    ],
)
def test_malformed_headers_are_refused_without_raising(header: str) -> None:
    assert not verify(SECRET, b"{}", header, T)


@given(st.text(max_size=200))
def test_verify_never_raises(header: str) -> None:
    verify(SECRET, b"{}", header, T)
    parse_signature_header(header)


def test_default_schedule() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 8
    assert policy.schedule() == [30, 60, 120, 240, 480, 960, 1920]
    assert not policy.exhausted(7)
    assert policy.exhausted(8)


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=30, base_seconds=2, cap_seconds=3600)
    assert [policy.backoff_seconds(n) for n in range(1, 6)] == [2, 4, 8, 16, 32]
    assert policy.backoff_seconds(12) == 3600  # 2 * 2**11 = 4096, capped
    assert policy.backoff_seconds(10_000) == 3600  # no huge powers computed
    assert RetryPolicy(base_seconds=0, cap_seconds=0).backoff_seconds(10**6) == 0


@given(
    base=st.integers(0, 600),
    extra=st.integers(0, 10_000),
    n=st.integers(1, 200),
)
def test_backoff_grows_and_never_passes_the_cap(base: int, extra: int, n: int) -> None:
    policy = RetryPolicy(max_attempts=n + 1, base_seconds=base, cap_seconds=base + extra)
    waits = [policy.backoff_seconds(k) for k in range(1, n + 1)]
    assert waits == sorted(waits)
    assert all(base <= w <= base + extra for w in waits)
    assert waits[0] == base


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_seconds": -1}, {"base_seconds": 10, "cap_seconds": 5}]
)
def test_bad_policies_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_backoff_counts_from_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().backoff_seconds(0)


def test_only_2xx_is_success() -> None:
    assert [s for s in (199, 200, 204, 299, 300, 301, 404, 503) if is_success(s)] == [200, 204, 299]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("203.0.113.9", False),  # documentation
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.8.9.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),  # the cloud's metadata service
        ("100.64.1.1", False),  # shared address space (carrier NAT)
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped: judged as IPv4
        ("::ffff:8.8.8.8", True),
        ("ff02::1", False),
        ("not an address", False),
    ],
)
def test_only_public_unicast_addresses_receive_webhooks(address: str, public: bool) -> None:
    assert public_address(address) is public
