"""HQ users (总部账号): who they are, their role, how they sign in, their sessions.

Passwords are kept as argon2id hashes (`_passwords`). Signing in is throttled per
login name and per client address (domain/accounts.sign_in_wait): the attempt is
written as a failure *before* the password is checked and turned into a success
after, in a transaction that holds a per-brand lock on PostgreSQL (SQLite
serialises writers anyway), so that guesses sent in parallel count as they are
made, not once each has been checked.

A session lives on the server: the browser holds a random token, the table only
its SHA-256, so a copy of the database opens no session. It ends when revoked
(sign-out, the user disabled or given a new password), after
`settings.session_idle_minutes` without a request, or `session_max_hours` after
it began. Each session has its own CSRF token, which every state-changing form
and fetch sends back (`check_csrf`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from loyalpos.db.tables import (
    hq_sessions,
    hq_user_stores,
    hq_users,
    inserted_id,
    login_attempts,
)
from loyalpos.domain.accounts import (
    LOGIN_MAX,
    PASSWORD_MAX,
    THROTTLE,
    Action,
    Attempt,
    Outcome,
    Role,
    allowed,
    allowed_somewhere,
    check_login,
    check_name,
    check_password,
    normal_login,
    sign_in_wait,
)
from loyalpos.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from loyalpos.service.admin import _passwords, _sessions
from loyalpos.service.base.brands import load_brand, store_in_brand
from loyalpos.service.base.context import Context

ADDRESS_MAX = 64
# The first key of PostgreSQL's two-key advisory lock taken while a sign-in is
# counted (the second is the brand): b"LP" as an integer, unused elsewhere.
_SIGN_IN_LOCK = 0x4C50


@dataclass(frozen=True, slots=True)
class User:
    id: int
    brand_id: int
    login: str
    display_name: str
    role: Role
    # The stores a store manager looks after; empty for the other roles.
    store_ids: frozenset[int]
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    brand_id: int
    user: User
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    session: Session
    token: str  # for the browser's cookie; only its hash is kept


# -- users ----------------------------------------------------------------------


def _user(row: Any, stores: Iterable[int]) -> User:
    return User(
        row.id,
        row.brand_id,
        row.login,
        row.display_name,
        Role(row.role),
        frozenset(stores),
        row.created_at,
        row.updated_at,
        row.disabled_at,
    )


def _stores_of(conn: Connection, user_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {i: [] for i in user_ids}
    if user_ids:
        rows = conn.execute(
            select(hq_user_stores.c.user_id, hq_user_stores.c.store_id).where(
                hq_user_stores.c.user_id.in_(user_ids)
            )
        )
        for r in rows:
            found[r.user_id].append(r.store_id)
    return found


def _load_user(conn: Connection, brand_id: int, user_id: int) -> User:
    row = conn.execute(
        select(hq_users).where(hq_users.c.id == user_id, hq_users.c.brand_id == brand_id)
    ).first()
    if row is None:
        raise NotFound(
            f"用户 {user_id} 不存在 (user {user_id} not found)",
            code="user_not_found",
            user_id=user_id,
        )
    return _user(row, _stores_of(conn, [row.id])[row.id])


def _check_stores(role: Role, store_ids: Iterable[int]) -> frozenset[int]:
    stores = frozenset(store_ids)
    if role is Role.STORE_MANAGER and not stores:
        raise InvalidInput(
            "门店经理需指定门店 (a store manager needs at least one store)",
            code="stores_required",
            field="stores",
        )
    if role is not Role.STORE_MANAGER and stores:
        raise InvalidInput(
            "只有门店经理关联门店 (only a store manager has stores)",
            code="stores_not_allowed",
            field="stores",
        )
    return stores


def create_user(
    ctx: Context,
    brand_id: int,
    login: str,
    display_name: str,
    role: Role,
    password: str,
    *,
    store_ids: Iterable[int] = (),
    now: datetime | None = None,
) -> User:
    """A new HQ user of the brand; a store manager with the stores it looks after
    (of this brand: another brand's store is not found)."""
    name = check_login(login)
    display = check_name(display_name, "display_name")
    stores = _check_stores(role, store_ids)
    check_password(password, name)
    hashed = _passwords.hash_secret(password)
    return insert_user(ctx, brand_id, name, display, role, hashed, stores, ctx.now(now))


def insert_user(
    ctx: Context,
    brand_id: int,
    login: str,
    display_name: str,
    role: Role,
    password_hash: str,
    store_ids: frozenset[int],
    now: datetime,
) -> User:
    """Store a user whose fields are checked and password hashed (`create_user`;
    the demo gives a hash made in advance)."""
    try:
        with ctx.transaction() as conn:
            load_brand(conn, brand_id)
            for store_id in sorted(store_ids):
                store_in_brand(conn, brand_id, store_id)
            user_id = inserted_id(
                conn.execute(
                    insert(hq_users).values(
                        brand_id=brand_id,
                        login=login,
                        display_name=display_name,
                        role=role.value,
                        password_hash=password_hash,
                        created_at=now,
                        updated_at=now,
                    )
                )
            )
            for store_id in sorted(store_ids):
                conn.execute(
                    insert(hq_user_stores).values(
                        user_id=user_id, store_id=store_id, brand_id=brand_id
                    )
                )
            return _load_user(conn, brand_id, user_id)
    except IntegrityError:
        raise Conflict(
            f"登录名 {login} 已存在 (login name {login!r} is taken)",
            code="user_exists",
            login=login,
        ) from None


def list_users(ctx: Context, brand_id: int) -> list[User]:
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(hq_users).where(hq_users.c.brand_id == brand_id).order_by(hq_users.c.id)
        ).all()
        stores = _stores_of(conn, [r.id for r in rows])
        return [_user(r, stores[r.id]) for r in rows]


def get_user(ctx: Context, brand_id: int, user_id: int) -> User:
    with ctx.transaction(read_only=True) as conn:
        return _load_user(conn, brand_id, user_id)


def user_by_login(ctx: Context, brand_id: int, login: str) -> User:
    name = normal_login(login)
    with ctx.transaction(read_only=True) as conn:
        row = conn.execute(
            select(hq_users.c.id).where(hq_users.c.brand_id == brand_id, hq_users.c.login == name)
        ).first()
        if row is None:
            raise NotFound(
                f"用户 {name} 不存在 (user {name!r} not found)", code="user_not_found", login=name
            )
        return _load_user(conn, brand_id, row.id)


def _end_sessions(conn: Connection, user_id: int, now: datetime) -> None:
    conn.execute(
        update(hq_sessions)
        .where(hq_sessions.c.user_id == user_id, hq_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def disable_user(ctx: Context, brand_id: int, user_id: int, *, now: datetime | None = None) -> User:
    """Disable a user at once: its sessions end, signing in is refused. Disabling
    a disabled user changes nothing."""
    at = ctx.now(now)

    def run(conn: Connection) -> User:
        user = _load_user(conn, brand_id, user_id)
        if user.disabled_at is None:
            conn.execute(
                update(hq_users)
                .where(hq_users.c.id == user_id)
                .values(disabled_at=at, updated_at=at)
            )
        _end_sessions(conn, user_id, at)
        return _load_user(conn, brand_id, user_id)

    return ctx.run(run)


def enable_user(ctx: Context, brand_id: int, user_id: int, *, now: datetime | None = None) -> User:
    at = ctx.now(now)

    def run(conn: Connection) -> User:
        user = _load_user(conn, brand_id, user_id)
        if user.disabled_at is not None:
            conn.execute(
                update(hq_users)
                .where(hq_users.c.id == user_id)
                .values(disabled_at=None, updated_at=at)
            )
        return _load_user(conn, brand_id, user_id)

    return ctx.run(run)


def reset_password(
    ctx: Context, brand_id: int, user_id: int, password: str, *, now: datetime | None = None
) -> User:
    """Give a user a new password; the sessions opened with the old one end."""
    at = ctx.now(now)
    user = get_user(ctx, brand_id, user_id)
    check_password(password, user.login)
    hashed = _passwords.hash_secret(password)

    def run(conn: Connection) -> User:
        _load_user(conn, brand_id, user_id)
        conn.execute(
            update(hq_users)
            .where(hq_users.c.id == user_id)
            .values(password_hash=hashed, updated_at=at)
        )
        _end_sessions(conn, user_id, at)
        return _load_user(conn, brand_id, user_id)

    return ctx.run(run)


# -- signing in -------------------------------------------------------------------


def authenticate(
    ctx: Context,
    brand_id: int,
    login: str,
    password: str,
    *,
    address: str | None = None,
    now: datetime | None = None,
) -> User:
    """The user whose login name and password these are.

    Unauthorized `sign_in_failed` for an unknown name and a wrong password alike
    (the same answer, after the same argon2 work); `account_disabled` for a
    disabled user's right password; TooManyAttempts `sign_in_throttled` while
    the name or the address (the client's IP, when known) has had too many
    failures lately, without checking the password.
    """
    at = ctx.now(now)
    name = normal_login(login)[:LOGIN_MAX]
    addr = address[:ADDRESS_MAX] if address else None
    try:
        valid: str | None = check_login(name)
    except InvalidInput:
        valid = None

    def count(conn: Connection) -> tuple[int | None, Any, timedelta]:
        """(the attempt's row, the user's row, the wait), the attempt written
        as a failure unless throttled."""
        load_brand(conn, brand_id)
        if ctx.dialect == "postgresql":
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:k, :b)"),
                {"k": _SIGN_IN_LOCK, "b": brand_id % 2**31},
            )
        since = at - THROTTLE.window
        a = login_attempts.c
        by_name = conn.execute(
            select(a.at, a.outcome).where(a.brand_id == brand_id, a.login == name, a.at > since)
        ).all()
        by_address = (
            conn.execute(
                select(a.at, a.outcome).where(
                    a.brand_id == brand_id, a.address == addr, a.at > since
                )
            ).all()
            if addr is not None
            else []
        )
        wait = sign_in_wait(
            [Attempt(r.at, Outcome(r.outcome)) for r in by_name],
            [Attempt(r.at, Outcome(r.outcome)) for r in by_address],
            at,
        )
        outcome = Outcome.THROTTLED if wait > timedelta(0) else Outcome.FAILED
        attempt_id = inserted_id(
            conn.execute(
                insert(login_attempts).values(
                    brand_id=brand_id, login=name, address=addr, at=at, outcome=outcome.value
                )
            )
        )
        user = None
        if valid is not None and outcome is Outcome.FAILED:
            user = conn.execute(
                select(hq_users).where(hq_users.c.brand_id == brand_id, hq_users.c.login == valid)
            ).first()
        return (attempt_id if outcome is Outcome.FAILED else None), user, wait

    attempt_id, row, wait = ctx.run(count)
    if attempt_id is None:
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        raise TooManyAttempts(
            f"登录失败次数过多，请 {minutes} 分钟后再试 "
            f"(too many failed sign-ins; try again in {minutes} min)",
            code="sign_in_throttled",
            until=at + wait,
            now=at,
        )
    fits = len(password) <= PASSWORD_MAX
    right = _passwords.verify(row.password_hash if row is not None and fits else None, password)
    if not right:
        raise Unauthorized("登录名或密码错误 (wrong login name or password)", code="sign_in_failed")
    if row.disabled_at is not None:
        raise Unauthorized("账号已停用 (this account is disabled)", code="account_disabled")

    def succeed(conn: Connection) -> User:
        conn.execute(
            update(login_attempts)
            .where(login_attempts.c.id == attempt_id)
            .values(outcome=Outcome.OK.value)
        )
        return _load_user(conn, brand_id, row.id)

    return ctx.run(succeed)


def start_session(
    ctx: Context, user: User, *, address: str | None = None, now: datetime | None = None
) -> NewSession:
    """A session for a user `authenticate` returned: the token for the browser
    (shown this once) and the session with its CSRF token."""
    at = ctx.now(now)
    new = _sessions.fresh(ctx.settings, at)

    def run(conn: Connection) -> Session:
        current = _load_user(conn, user.brand_id, user.id)
        if current.disabled:
            raise Unauthorized("账号已停用 (this account is disabled)", code="account_disabled")
        session_id = inserted_id(
            conn.execute(
                insert(hq_sessions).values(
                    brand_id=user.brand_id,
                    user_id=user.id,
                    token_hash=new.token_hash,
                    csrf_token=new.csrf,
                    address=address[:ADDRESS_MAX] if address else None,
                    created_at=at,
                    last_seen_at=at,
                    expires_at=new.expires_at,
                )
            )
        )
        return Session(session_id, user.brand_id, current, new.csrf, at, at, new.expires_at)

    return NewSession(ctx.run(run), new.token)


def check_session(ctx: Context, token: str | None, *, now: datetime | None = None) -> Session:
    """The live session behind a browser's token, its last-seen time refreshed;
    Unauthorized saying why otherwise (`session_required`, `session_invalid`,
    `session_ended`, `session_expired`, `account_disabled`)."""
    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        row = _sessions.find(conn, hq_sessions, token)
        user = _load_user(conn, row.brand_id, row.user_id)
    _sessions.check_live(ctx.settings, row, at)
    if user.disabled:
        raise Unauthorized("账号已停用 (this account is disabled)", code="account_disabled")
    seen = _sessions.touch(ctx, hq_sessions, row, at)
    return Session(row.id, row.brand_id, user, row.csrf_token, row.created_at, seen, row.expires_at)


def end_session(ctx: Context, token: str, *, now: datetime | None = None) -> None:
    """Sign out: the session behind `token` ends at once (an unknown or ended
    one is left as it is)."""
    _sessions.end(ctx, hq_sessions, token, ctx.now(now))


def check_csrf(session: Session, token: str | None) -> None:
    """A state-changing request must send its session's CSRF token: Forbidden
    `csrf_failed` otherwise. Compared in constant time."""
    _sessions.check_csrf(session.csrf_token, token)


def prune(
    ctx: Context, *, keep: timedelta = timedelta(days=30), now: datetime | None = None
) -> int:
    """Delete sign-in attempts and ended sessions older than `keep` (only the last
    15 minutes count for throttling); the number of rows deleted."""
    before = ctx.now(now) - keep

    def run(conn: Connection) -> int:
        gone = conn.execute(delete(login_attempts).where(login_attempts.c.at < before)).rowcount
        s = hq_sessions.c
        gone += conn.execute(
            delete(hq_sessions).where(
                or_(s.expires_at < before, s.revoked_at < before, s.last_seen_at < before)
            )
        ).rowcount
        return int(gone)

    return ctx.run(run)


# -- permissions --------------------------------------------------------------------


def can(user: User, action: Action, store_id: int | None = None) -> bool:
    """Whether the user may do `action` (for `store_id`, when it is about one
    store): the matrix of domain/accounts.py; a disabled user may do nothing."""
    return not user.disabled and allowed(user.role, action, store_id, user.store_ids)


def can_somewhere(user: User, action: Action) -> bool:
    """Whether the user may do `action` for some store or the brand (the menu)."""
    return not user.disabled and allowed_somewhere(user.role, action)


def require(user: User, action: Action, store_id: int | None = None) -> None:
    """Forbidden `permission_denied` unless `can(user, action, store_id)`."""
    if not can(user, action, store_id):
        raise Forbidden(
            f"没有权限 (your role may not do this: {action.value})",
            code="permission_denied",
            action=action.value,
            role=user.role.value,
            store_id=store_id,
        )
