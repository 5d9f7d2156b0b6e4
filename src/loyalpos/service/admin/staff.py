"""Store staff (门店员工): cashiers who sign in at a till with their staff number
(工号) and PIN.

A staff member belongs to one store and signs in only at that store's tills: the
same number at another store is another person, or nobody ("not found"). PINs are
short, so guessing is stopped by a lockout (domain/accounts.py: 5 wrong PINs in a
row lock the staff member for 15 minutes); the count is updated under the staff
row's lock, so wrong PINs sent in parallel all count.

A signed-in cashier has a server-side session (`staff_sessions`) with the rules
of an HQ user's (service/admin/accounts.py): the browser holds a random token,
the table its SHA-256 and a CSRF token; it ends at sign-out, when the staff
member is disabled, after `settings.session_idle_minutes` without a request or
`session_max_hours` after signing in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from loyalpos.db.tables import inserted_id, staff_sessions, store_staff
from loyalpos.domain.accounts import (
    LOCKOUT,
    PinState,
    after_right_pin,
    after_wrong_pin,
    check_name,
    check_pin,
    check_staff_number,
)
from loyalpos.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from loyalpos.service.admin import _passwords, _sessions
from loyalpos.service.base.brands import load_brand, store_in_brand
from loyalpos.service.base.context import Context


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    brand_id: int
    store_id: int
    number: str
    name: str
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None
    # Wrong PINs in a row, and the lockout they led to (past once it is over).
    failed_pins: int
    locked_until: datetime | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


def _staff(row: Any) -> Staff:
    return Staff(
        row.id,
        row.brand_id,
        row.store_id,
        row.number,
        row.name,
        row.created_at,
        row.updated_at,
        row.disabled_at,
        row.failed_pins,
        row.locked_until,
    )


def _not_found(number: str) -> NotFound:
    return NotFound(
        f"工号 {number} 不存在 (no staff member {number!r} at this store)",
        code="staff_not_found",
        number=number,
    )


def _load(conn: Connection, brand_id: int, staff_id: int, *, lock: bool = False) -> Any:
    query = select(store_staff).where(
        store_staff.c.id == staff_id, store_staff.c.brand_id == brand_id
    )
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(
            f"员工 {staff_id} 不存在 (staff member {staff_id} not found)",
            code="staff_not_found",
            staff_id=staff_id,
        )
    return row


def create_staff(
    ctx: Context,
    brand_id: int,
    store_id: int,
    number: str,
    name: str,
    pin: str,
    *,
    now: datetime | None = None,
) -> Staff:
    """A staff member of one of the brand's stores; the number is unique per store."""
    num = check_staff_number(number)
    person = check_name(name)
    check_pin(pin)
    return insert_staff(
        ctx, brand_id, store_id, num, person, _passwords.hash_secret(pin), ctx.now(now)
    )


def insert_staff(
    ctx: Context,
    brand_id: int,
    store_id: int,
    number: str,
    name: str,
    pin_hash: str,
    now: datetime,
) -> Staff:
    """Store a staff member whose fields are checked and PIN hashed (`create_staff`;
    the demo gives a hash made in advance)."""
    try:
        with ctx.transaction() as conn:
            load_brand(conn, brand_id)
            store_in_brand(conn, brand_id, store_id)
            staff_id = inserted_id(
                conn.execute(
                    insert(store_staff).values(
                        brand_id=brand_id,
                        store_id=store_id,
                        number=number,
                        name=name,
                        pin_hash=pin_hash,
                        created_at=now,
                        updated_at=now,
                    )
                )
            )
            return _staff(_load(conn, brand_id, staff_id))
    except IntegrityError:
        raise Conflict(
            f"工号 {number} 已存在 (staff number {number!r} is taken at this store)",
            code="staff_exists",
            number=number,
        ) from None


def list_staff(ctx: Context, brand_id: int, store_id: int | None = None) -> list[Staff]:
    """The brand's staff, or one store's (a store of the brand)."""
    with ctx.transaction(read_only=True) as conn:
        query = select(store_staff).where(store_staff.c.brand_id == brand_id)
        if store_id is not None:
            store_in_brand(conn, brand_id, store_id)
            query = query.where(store_staff.c.store_id == store_id)
        rows = conn.execute(query.order_by(store_staff.c.store_id, store_staff.c.number))
        return [_staff(r) for r in rows]


def get_staff(ctx: Context, brand_id: int, staff_id: int) -> Staff:
    with ctx.transaction(read_only=True) as conn:
        return _staff(_load(conn, brand_id, staff_id))


def staff_by_number(ctx: Context, brand_id: int, store_id: int, number: str) -> Staff:
    with ctx.transaction(read_only=True) as conn:
        store_in_brand(conn, brand_id, store_id)
        row = conn.execute(
            select(store_staff).where(
                store_staff.c.store_id == store_id, store_staff.c.number == number.strip()
            )
        ).first()
    if row is None:
        raise _not_found(number.strip())
    return _staff(row)


def _set(
    ctx: Context,
    brand_id: int,
    staff_id: int,
    now: datetime,
    *,
    end_sessions: bool = False,
    **values: Any,
) -> Staff:
    """Change a staff member's row; `end_sessions` also signs them out at every
    till (a new PIN or a disabled member must not stay signed in)."""

    def run(conn: Connection) -> Staff:
        _load(conn, brand_id, staff_id, lock=True)
        conn.execute(
            update(store_staff).where(store_staff.c.id == staff_id).values(updated_at=now, **values)
        )
        if end_sessions:
            s = staff_sessions.c
            conn.execute(
                update(staff_sessions)
                .where(s.staff_id == staff_id, s.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return _staff(_load(conn, brand_id, staff_id))

    return ctx.run(run)


def disable_staff(
    ctx: Context, brand_id: int, staff_id: int, *, now: datetime | None = None
) -> Staff:
    """Disable a staff member: signing in is refused from now on and their open
    sessions end. Disabling a disabled one keeps its first date."""
    at = ctx.now(now)
    current = get_staff(ctx, brand_id, staff_id)
    if current.disabled:
        return current
    return _set(ctx, brand_id, staff_id, at, end_sessions=True, disabled_at=at)


def enable_staff(
    ctx: Context, brand_id: int, staff_id: int, *, now: datetime | None = None
) -> Staff:
    return _set(ctx, brand_id, staff_id, ctx.now(now), disabled_at=None)


def reset_pin(
    ctx: Context, brand_id: int, staff_id: int, pin: str, *, now: datetime | None = None
) -> Staff:
    """Give a staff member a new PIN; a lockout and the wrong PINs so far are cleared
    (a manager resetting the PIN is how a locked-out cashier gets back sooner), and
    the sessions signed in with the old PIN end."""
    check_pin(pin)
    hashed = _passwords.hash_secret(pin)
    return _set(
        ctx,
        brand_id,
        staff_id,
        ctx.now(now),
        end_sessions=True,
        pin_hash=hashed,
        failed_pins=0,
        locked_until=None,
    )


def _locked(row: Any, now: datetime) -> TooManyAttempts:
    return TooManyAttempts(
        "密码错误次数过多，已暂时锁定，请稍后再试或请店长重置 "
        "(too many wrong PINs: locked for a while; wait, or ask the manager to reset the PIN)",
        code="staff_locked",
        until=row.locked_until,
        now=now,
        number=row.number,
    )


def sign_in(
    ctx: Context,
    brand_id: int,
    store_id: int,
    number: str,
    pin: str,
    *,
    now: datetime | None = None,
) -> Staff:
    """The staff member signing in at a till of `store_id` with number and PIN.

    NotFound `staff_not_found` for a number this store does not have (another
    store's staff included); Unauthorized `staff_disabled`, or `wrong_pin` with
    `attempts_left`; TooManyAttempts `staff_locked` (with `until`) while locked,
    the PIN unchecked, and for the wrong PIN that locks it.
    """
    at = ctx.now(now)
    person = staff_by_number(ctx, brand_id, store_id, number)
    if person.disabled:
        raise Unauthorized(
            f"员工 {person.number} 已停用 (staff member {person.number} is disabled)",
            code="staff_disabled",
            number=person.number,
        )
    if PinState(person.failed_pins, person.locked_until).locked(at):
        raise _locked(person, at)
    with ctx.transaction(read_only=True) as conn:
        hashed = _load(conn, brand_id, person.id).pin_hash
    right = _passwords.verify(hashed, pin)

    def record(conn: Connection) -> tuple[Staff, TooManyAttempts | None]:
        row = _load(conn, brand_id, person.id, lock=True)
        state = PinState(row.failed_pins, row.locked_until)
        if state.locked(at):  # another wrong PIN locked it meanwhile
            return _staff(row), _locked(row, at)
        after = after_right_pin() if right else after_wrong_pin(state, at)
        conn.execute(
            update(store_staff)
            .where(store_staff.c.id == row.id)
            .values(failed_pins=after.failed, locked_until=after.locked_until)
        )
        fresh = _load(conn, brand_id, row.id)
        return _staff(fresh), (_locked(fresh, at) if after.locked(at) else None)

    staff, locked = ctx.run(record)
    if locked is not None:
        raise locked
    if not right:
        left = LOCKOUT.wrong_pins - staff.failed_pins
        raise Unauthorized(
            f"密码错误，还可尝试 {left} 次 (wrong PIN; {left} tries left before a lockout)",
            code="wrong_pin",
            attempts_left=left,
        )
    return staff


# -- sessions at the till -----------------------------------------------------------


MAX_TERMINAL = 32


@dataclass(frozen=True, slots=True)
class StaffSession:
    id: int
    staff: Staff
    csrf_token: str
    expires_at: datetime
    # The till signed in at, as the page sent it ("" when none was given, and for
    # sessions started before terminals were kept).
    terminal: str = ""


@dataclass(frozen=True, slots=True)
class NewStaffSession:
    session: StaffSession
    token: str  # for the browser's cookie; only its hash is kept


def check_terminal(terminal: str) -> str:
    """A till's name as a session keeps it: surrounding spaces trimmed, at most
    `MAX_TERMINAL` characters on one line, printable; InvalidInput `bad_terminal`
    otherwise. "" (no terminal given) is allowed."""
    value = terminal.strip()
    if len(value) > MAX_TERMINAL or not value.isprintable():
        raise InvalidInput(
            f"终端名须为不超过 {MAX_TERMINAL} 个可打印字符的单行文字 "
            f"(terminal must be at most {MAX_TERMINAL} printable characters on one line)",
            code="bad_terminal",
            field="terminal",
        )
    return value


def start_session(
    ctx: Context, staff: Staff, *, terminal: str = "", now: datetime | None = None
) -> NewStaffSession:
    """A session for a staff member `sign_in` returned (`_sessions`: the same rules
    as HQ sessions), at the till named `terminal` (`check_terminal`)."""
    till = check_terminal(terminal)
    at = ctx.now(now)
    new = _sessions.fresh(ctx.settings, at)

    def run(conn: Connection) -> int:
        return inserted_id(
            conn.execute(
                insert(staff_sessions).values(
                    brand_id=staff.brand_id,
                    staff_id=staff.id,
                    token_hash=new.token_hash,
                    csrf_token=new.csrf,
                    created_at=at,
                    last_seen_at=at,
                    expires_at=new.expires_at,
                    terminal=till or None,
                )
            )
        )

    session = StaffSession(ctx.run(run), staff, new.csrf, new.expires_at, till)
    return NewStaffSession(session, new.token)


def check_session(ctx: Context, token: str | None, *, now: datetime | None = None) -> StaffSession:
    """The live session behind a till's token, its last-seen time refreshed;
    Unauthorized with the codes of HQ sessions otherwise (`session_required`,
    `session_invalid`, `session_ended`, `session_expired`, `staff_disabled`)."""
    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        row = _sessions.find(conn, staff_sessions, token)
        person = _staff(_load(conn, row.brand_id, row.staff_id))
    _sessions.check_live(ctx.settings, row, at)
    if person.disabled:
        raise Unauthorized(
            f"员工 {person.number} 已停用 (staff member {person.number} is disabled)",
            code="staff_disabled",
        )
    _sessions.touch(ctx, staff_sessions, row, at)
    return StaffSession(row.id, person, row.csrf_token, row.expires_at, row.terminal or "")


def end_session(ctx: Context, token: str, *, now: datetime | None = None) -> None:
    """Sign out at the till: the session behind `token` ends at once."""
    _sessions.end(ctx, staff_sessions, token, ctx.now(now))


def check_csrf(session: StaffSession, token: str | None) -> None:
    """Forbidden `csrf_failed` unless `token` is the session's CSRF token."""
    _sessions.check_csrf(session.csrf_token, token)
