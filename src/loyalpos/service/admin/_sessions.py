"""What HQ sessions (`accounts`) and till sessions (`staff`) share: one mechanism
over two tables of the same shape (token_hash, csrf_token, last_seen_at,
expires_at, revoked_at), so the two cannot drift apart in how a token is kept,
when a session times out, or how a CSRF token is compared.

The browser holds a random token and the table only its SHA-256, so a copy of the
database opens no session. A session ends when revoked, after
`settings.session_idle_minutes` without a request, or `session_max_hours` after it
began; its last-seen time is written at most once a minute (`TOUCH_EVERY`), not on
every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, select, update

from loyalpos.config import Settings
from loyalpos.domain.errors import Forbidden, Unauthorized
from loyalpos.service.base.context import Context

# last_seen_at is written at most this often per session: the idle timeout is
# this much less exact, and a busy page is not a write per request.
TOUCH_EVERY = timedelta(seconds=60)
# A token longer than this was not made here (`token_urlsafe(32)`: 43 characters).
TOKEN_MAX = 200


@dataclass(frozen=True, slots=True)
class Fresh:
    """A new session's secrets: the browser's token (its hash is what is kept),
    the CSRF token, and when the session ends at the latest."""

    token: str
    token_hash: str
    csrf: str
    expires_at: datetime


def fresh(settings: Settings, at: datetime) -> Fresh:
    token = secrets.token_urlsafe(32)
    ends = at + timedelta(hours=settings.session_max_hours)
    return Fresh(token, token_hash(token), secrets.token_urlsafe(32), ends)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invalid() -> Unauthorized:
    return Unauthorized(
        "会话无效，请重新登录 (unknown session; sign in again)", code="session_invalid"
    )


def find(conn: Connection, table: Table, token: str | None) -> Any:
    """The session row behind a browser's token: Unauthorized `session_required`
    without one, `session_invalid` for one that is not ours."""
    if not token:
        raise Unauthorized("请先登录 (please sign in)", code="session_required")
    if len(token) > TOKEN_MAX:
        raise _invalid()
    row = conn.execute(select(table).where(table.c.token_hash == token_hash(token))).first()
    if row is None:
        raise _invalid()
    return row


def check_live(settings: Settings, row: Any, at: datetime) -> None:
    """Unauthorized `session_ended` for a revoked session, `session_expired` for one
    past its end or idle too long."""
    if row.revoked_at is not None:
        raise Unauthorized("已退出登录 (this session was signed out)", code="session_ended")
    idle_end = row.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if at >= row.expires_at or at >= idle_end:
        raise Unauthorized(
            "登录已超时，请重新登录 (the session timed out; sign in again)",
            code="session_expired",
        )


def touch(ctx: Context, table: Table, row: Any, at: datetime) -> datetime:
    """Move the session's last-seen time to `at` when it is a minute old or more;
    returns the last-seen time now kept."""
    if at - row.last_seen_at < TOUCH_EVERY:
        return row.last_seen_at  # type: ignore[no-any-return]
    s = table.c
    ctx.run(
        lambda conn: conn.execute(
            update(table).where(s.id == row.id, s.last_seen_at < at).values(last_seen_at=at)
        )
    )
    return at


def end(ctx: Context, table: Table, token: str, at: datetime) -> None:
    """Revoke the session behind `token` (an unknown or ended one is left as it is)."""
    s = table.c
    ctx.run(
        lambda conn: conn.execute(
            update(table)
            .where(s.token_hash == token_hash(token), s.revoked_at.is_(None))
            .values(revoked_at=at)
        )
    )


def check_csrf(expected: str, sent: str | None) -> None:
    """A state-changing request must send its session's CSRF token: Forbidden
    `csrf_failed` otherwise. Compared in constant time."""
    if not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden(
            "请求已失效，请刷新页面后重试 (the form is stale or forged; reload the page)",
            code="csrf_failed",
        )
