"""Accounts (账号): HQ users' roles and what each may do, the rules for login names,
passwords and staff PINs, and the policies that slow down guessing them.

All of it is data and pure functions of (attempts, now), so that the service, the
web pages, the docs (docs/accounts.md, checked against `PERMISSIONS` by a test) and
the tests read one definition.

Roles:
- admin: everything;
- operator: rules, campaigns, coupons and members, and reads orders and reports;
- analyst: reads reports, orders and rules, changes nothing;
- store_manager: the stores it looks after, and only those: their orders, holds,
  refunds, reconciliation, staff and reports. An action it may do is allowed only
  when the caller names one of its stores; without a store, or for another store,
  it is refused.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from loyalpos.domain.errors import InvalidInput


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    STORE_MANAGER = "store_manager"


class Action(StrEnum):
    RULES_READ = "rules.read"
    RULES_WRITE = "rules.write"
    CAMPAIGNS_WRITE = "campaigns.write"
    COUPONS_ISSUE = "coupons.issue"
    MEMBERS_READ = "members.read"
    MEMBERS_WRITE = "members.write"
    POINTS_ADJUST = "points.adjust"
    REPORTS_READ = "reports.read"
    ORDERS_READ = "orders.read"
    REFUNDS_CREATE = "refunds.create"
    HOLDS_MANAGE = "holds.manage"
    RECONCILE_RUN = "reconcile.run"
    STAFF_MANAGE = "staff.manage"
    KEYS_MANAGE = "keys.manage"
    WEBHOOKS_MANAGE = "webhooks.manage"
    USERS_MANAGE = "users.manage"
    STORES_MANAGE = "stores.manage"


@dataclass(frozen=True, slots=True)
class Permission:
    """Who may do one action. `per_store`: the action is about one store's business
    (its orders, its staff...), the only kind a store manager may be given."""

    action: Action
    roles: frozenset[Role]
    per_store: bool
    what: str


def _p(action: Action, what: str, *roles: Role, per_store: bool = False) -> Permission:
    return Permission(action, frozenset(roles), per_store, what)


_A, _O, _N, _M = Role.ADMIN, Role.OPERATOR, Role.ANALYST, Role.STORE_MANAGER

# The permission matrix, in the order docs/accounts.md shows it.
PERMISSIONS: tuple[Permission, ...] = (
    _p(Action.RULES_READ, "read rule sets and their versions", _A, _O, _N),
    _p(Action.RULES_WRITE, "draft, import and publish rule sets", _A, _O),
    _p(Action.CAMPAIGNS_WRITE, "create and change triggered campaigns", _A, _O),
    _p(Action.COUPONS_ISSUE, "issue and void members' coupons", _A, _O),
    _p(Action.MEMBERS_READ, "look members up, with their points and coupons", _A, _O),
    _p(Action.MEMBERS_WRITE, "register, change and import members", _A, _O),
    _p(Action.POINTS_ADJUST, "adjust a member's points by hand", _A, _O),
    _p(Action.REPORTS_READ, "dashboards and reports", _A, _O, _N, _M, per_store=True),
    _p(Action.ORDERS_READ, "orders and their receipts", _A, _O, _N, _M, per_store=True),
    _p(Action.REFUNDS_CREATE, "refund an order", _A, _M, per_store=True),
    _p(Action.HOLDS_MANAGE, "see and cancel held carts (挂单)", _A, _M, per_store=True),
    _p(Action.RECONCILE_RUN, "reconcile a day's POS totals (对账)", _A, _M, per_store=True),
    _p(Action.STAFF_MANAGE, "store staff and their PINs", _A, _M, per_store=True),
    _p(Action.KEYS_MANAGE, "API keys", _A),
    _p(Action.WEBHOOKS_MANAGE, "webhook subscriptions", _A),
    _p(Action.USERS_MANAGE, "HQ users and their roles", _A),
    _p(Action.STORES_MANAGE, "the brand's stores: open one, its name, city and format", _A),
)

_BY_ACTION = {p.action: p for p in PERMISSIONS}


def allowed(
    role: Role, action: Action, store_id: int | None = None, stores: Collection[int] = ()
) -> bool:
    """Whether `role` may do `action`; for a store manager, `stores` are the stores
    it looks after and the action must name one of them (`store_id`)."""
    permission = _BY_ACTION[action]
    if role not in permission.roles:
        return False
    if role is Role.STORE_MANAGER:
        return store_id is not None and store_id in stores
    return True


def allowed_somewhere(role: Role, action: Action) -> bool:
    """Whether `role` may do `action` for at least one store or the brand: what
    the console's menu shows (a store manager's pages then list its stores only)."""
    return role in _BY_ACTION[action].roles


# -- login names, passwords, staff numbers and PINs -------------------------------

LOGIN_MAX = 40
_LOGIN = re.compile(r"[a-z0-9][a-z0-9._@-]{1,39}")
PASSWORD_MIN = 10
# argon2 hashes any length, but a megabyte "password" is work for nothing.
PASSWORD_MAX = 128
PIN_MIN, PIN_MAX = 4, 8
_PIN = re.compile(rf"[0-9]{{{PIN_MIN},{PIN_MAX}}}")
_STAFF_NUMBER = re.compile(r"[A-Za-z0-9]{1,16}")
NAME_MAX = 100


def normal_login(text: str) -> str:
    """A login name as stored and looked up: trimmed and lower case, so that
    'Amy' and 'amy ' are one account."""
    return text.strip().lower()


def check_login(text: str) -> str:
    """The login name to store: 2-40 of a-z 0-9 . _ @ - (an e-mail address fits),
    starting with a letter or digit."""
    login = normal_login(text)
    if not _LOGIN.fullmatch(login):
        raise InvalidInput(
            "登录名为 2-40 位小写字母、数字或 . _ @ - "
            "(a login name is 2-40 of a-z, 0-9, '.', '_', '@', '-')",
            code="invalid_login",
            field="login",
        )
    return login


def check_name(text: str, field: str = "name") -> str:
    name = text.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(
            f"名称需 1-{NAME_MAX} 个字符 (a name is 1-{NAME_MAX} characters)",
            code="invalid_name",
            field=field,
        )
    return name


def password_problem(password: str, login: str) -> str | None:
    """What is wrong with a new password, or None. Length is what makes a password
    strong; composition rules only make people write them down. It must not be
    the login name either."""
    if len(password) < PASSWORD_MIN:
        return f"too short: at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"too long: at most {PASSWORD_MAX} characters"
    if not password.strip():
        return "only spaces"
    if password.strip().lower() == normal_login(login):
        return "the same as the login name"
    return None


def check_password(password: str, login: str) -> None:
    problem = password_problem(password, login)
    if problem is not None:
        raise InvalidInput(
            f"密码不符合要求：至少 {PASSWORD_MIN} 个字符且不能与登录名相同 "
            f"(the password is not acceptable: {problem})",
            code="weak_password",
            field="password",
            reason=problem,
        )


def check_pin(pin: str) -> None:
    """A staff PIN is 4-8 ASCII digits (a till's number pad types nothing else)."""
    if not _PIN.fullmatch(pin):
        raise InvalidInput(
            f"PIN 需为 {PIN_MIN}-{PIN_MAX} 位数字 (a PIN is {PIN_MIN}-{PIN_MAX} digits)",
            code="invalid_pin",
            field="pin",
        )


def check_staff_number(text: str) -> str:
    number = text.strip()
    if not _STAFF_NUMBER.fullmatch(number):
        raise InvalidInput(
            "工号为 1-16 位字母或数字 (a staff number is 1-16 letters or digits)",
            code="invalid_staff_number",
            field="number",
        )
    return number


# -- throttling sign-in, locking staff out ------------------------------------------


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    # Refused unchecked while throttled: kept for the record, never counted, so
    # that a guesser hammering a throttled account does not extend its wait.
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Sign-in throttling: at most `per_account` failures for one login name and
    `per_address` for one client address within any `window`. A success clears the
    account's count (the owner is back) but not the address's (one address signing
    in to its own account must not be free to guess at others')."""

    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    per_address: int = 20


THROTTLE = ThrottlePolicy()


def wait_after(
    failures: Iterable[datetime], now: datetime, limit: int, window: timedelta
) -> timedelta:
    """How long until fewer than `limit` of `failures` lie within the `window`
    before that moment (zero: one more attempt may be checked now)."""
    recent = sorted(t for t in failures if now - window < t <= now)
    if len(recent) < limit:
        return timedelta(0)
    # The oldest len - limit + 1 must leave the window; the last of them leaves at:
    return recent[len(recent) - limit] + window - now


def _failures(attempts: Iterable[Attempt], *, since_success: bool) -> list[datetime]:
    ordered = sorted(attempts, key=lambda a: a.at)
    if since_success:
        last_ok = max((i for i, a in enumerate(ordered) if a.outcome is Outcome.OK), default=-1)
        ordered = ordered[last_ok + 1 :]
    return [a.at for a in ordered if a.outcome is Outcome.FAILED]


def sign_in_wait(
    account: Sequence[Attempt],
    address: Sequence[Attempt],
    now: datetime,
    policy: ThrottlePolicy = THROTTLE,
) -> timedelta:
    """How long a sign-in must wait before its password is checked (zero: now):
    `account` are the attempts at this login name, `address` those from this
    client address (empty when it is not known)."""
    return max(
        wait_after(_failures(account, since_success=True), now, policy.per_account, policy.window),
        wait_after(_failures(address, since_success=False), now, policy.per_address, policy.window),
    )


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """A staff member's PIN: after `wrong_pins` wrong ones in a row, signing in is
    refused for `lock`; the count starts again afterwards. A right PIN clears it."""

    wrong_pins: int = 5
    lock: timedelta = timedelta(minutes=15)


LOCKOUT = LockoutPolicy()


@dataclass(frozen=True, slots=True)
class PinState:
    failed: int = 0
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def after_wrong_pin(state: PinState, now: datetime, policy: LockoutPolicy = LOCKOUT) -> PinState:
    """The state after a wrong PIN (never called while locked: then nothing is checked)."""
    failed = state.failed + 1
    if failed >= policy.wrong_pins:
        return PinState(0, now + policy.lock)
    return PinState(failed, None)


def after_right_pin() -> PinState:
    return PinState()
