"""Hashing and checking passwords and PINs (argon2id), for accounts.py and staff.py.

A check against an account that does not exist (or a malformed login name) still
runs one argon2 verification, against a hash made once per process with the same
parameters, so that the time a failure takes does not say whether the account
exists.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults (RFC 9106's low-memory choice: 64 MiB, 3 passes, 4 lanes):
# about 0.1 s a check on one core. Tests swap in a cheaper hasher.
HASHER = PasswordHasher()

_dummy: dict[tuple[int, int, int], str] = {}


def hash_secret(secret: str) -> str:
    return HASHER.hash(secret)


def verify(hashed: str | None, secret: str) -> bool:
    """Whether `secret` matches `hashed`; with `hashed` None, the same work against
    a dummy hash and False."""
    if hashed is None:
        _check(_dummy_hash(), secret)
        return False
    return _check(hashed, secret)


def _check(hashed: str, secret: str) -> bool:
    try:
        return HASHER.verify(hashed, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    key = (HASHER.time_cost, HASHER.memory_cost, HASHER.parallelism)
    if key not in _dummy:
        _dummy[key] = HASHER.hash("not a password of anyone's")
    return _dummy[key]
