"""Typed domain errors.

Each error carries a stable machine `code` (what an integrator switches on), a
`message` a cashier or operator can act on, and a `detail` mapping with the
facts behind it. The API maps the error *category* (the base class) to an HTTP
status in exactly one place; the domain never speaks HTTP.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any


class DomainError(Exception):
    """Base of every error a user's input can cause."""

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail: dict[str, Any] = detail


class InvalidInput(DomainError):
    """The request is well formed but its values are not acceptable."""

    code = "invalid_input"


class NotFound(DomainError):
    """The thing named does not exist within the caller's brand."""

    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate, already used, ...)."""

    code = "conflict"


class InsufficientPoints(Conflict):
    """A spend or reversal would take the member's points below what is allowed."""

    code = "insufficient_points"

    def __init__(self, requested: int, available: int) -> None:
        super().__init__(
            f"积分不足：需要 {requested}，可用 {available} "
            f"(not enough points: {requested} requested, {available} available)",
            requested=requested,
            available=available,
        )


class MemberCodeRejected(InvalidInput):
    """A dynamic member code failed verification; `reason` says which check."""

    code = "member_code_rejected"


class Unauthorized(DomainError):
    """Who is calling is not established: no API key, an unknown or revoked key, a
    wrong login name or password, a wrong PIN, a session that ended."""

    code = "unauthorized"


class Forbidden(DomainError):
    """A known caller that may not do this (a key's scope or store, a user's role
    or stores, a missing CSRF token)."""

    code = "forbidden"


class TooManyAttempts(DomainError):
    """Too many wrong passwords or PINs lately (sign-in throttled, a staff member
    locked out): nothing was checked, so a right one is refused too until `until`,
    `retry_after_seconds` from now (both in `detail`)."""

    code = "too_many_attempts"

    def __init__(
        self,
        message: str,
        *,
        until: datetime,
        now: datetime,
        code: str | None = None,
        **detail: Any,
    ) -> None:
        seconds = max(1, math.ceil((until - now).total_seconds()))
        super().__init__(message, code=code, until=until, retry_after_seconds=seconds, **detail)
        self.until = until
        self.retry_after_seconds = seconds


class DatabaseUnavailable(Exception):
    """The database could not be reached, or dropped the connection, while a
    request ran (a restart, a failover, a network cut): nothing is wrong with the
    request itself.

    Before the commit was sent nothing took effect, and the request may be sent
    again as is. Lost while committing (`committing`), the server may have
    committed: a request that carries its own number (confirm, refund, late
    orders) or an idempotency key replays its first result when sent again;
    any other write must be checked before it is sent again, and the answer
    says so (`may_have_applied`).

    Deliberately not a `DomainError`: code that answers a request's domain
    errors one by one (a late-order batch rejecting one order) must not turn an
    outage into a refusal of the order; the whole request fails, to be sent
    again. `db.outage` recognises the drivers' errors as this one; the API
    answers it with 503 and `Retry-After`."""

    code = "database_unavailable"

    def __init__(self, reason: str = "", *, committing: bool = False) -> None:
        self.committing = committing
        super().__init__(reason or self.message)
        self.reason = reason

    @property
    def message(self) -> str:
        if self.committing:
            return (
                "数据库在提交时断开，本次操作可能已生效：带单号或幂等键的请求可原样重发，"
                "其他请求请先查询结果再决定 (the database dropped while committing, so this "
                "request may have taken effect: resend it as is only if it carries an order "
                "number or idempotency key; otherwise check first)"
            )
        return "数据库暂时不可用，请稍后重试 (database temporarily unavailable; please retry)"
