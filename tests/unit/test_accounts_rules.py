"""domain/accounts.py: the permission matrix, login name / password / PIN rules, the
sign-in throttle and the staff lockout, as pure functions of (attempts, now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain.accounts import (
    LOCKOUT,
    PERMISSIONS,
    THROTTLE,
    Action,
    Attempt,
    Outcome,
    PinState,
    Role,
    after_right_pin,
    after_wrong_pin,
    allowed,
    check_login,
    check_pin,
    check_staff_number,
    password_problem,
    sign_in_wait,
    wait_after,
)
from loyalpos.domain.errors import InvalidInput

NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
ZERO = timedelta(0)

roles = st.sampled_from(list(Role))
actions = st.sampled_from(list(Action))
store_ids = st.one_of(st.none(), st.integers(1, 6))
store_sets = st.frozensets(st.integers(1, 6), max_size=4)


# -- the permission matrix ----------------------------------------------------------


def test_every_action_has_exactly_one_row() -> None:
    assert sorted(p.action for p in PERMISSIONS) == sorted(Action)


def test_a_store_manager_is_given_only_actions_about_one_store() -> None:
    for p in PERMISSIONS:
        if Role.STORE_MANAGER in p.roles:
            assert p.per_store, p.action


@given(actions, store_ids, store_sets)
def test_an_admin_may_do_everything_anywhere(
    action: Action, store: int | None, stores: frozenset[int]
) -> None:
    assert allowed(Role.ADMIN, action, store, stores)


@given(actions, store_ids)
def test_an_analyst_only_reads(action: Action, store: int | None) -> None:
    if allowed(Role.ANALYST, action, store):
        assert action.value.endswith(".read")


@given(actions, store_ids, store_sets)
def test_a_store_manager_acts_only_for_a_store_it_looks_after(
    action: Action, store: int | None, stores: frozenset[int]
) -> None:
    if allowed(Role.STORE_MANAGER, action, store, stores):
        assert store is not None and store in stores


@given(roles, actions, st.integers(1, 6), store_sets)
def test_the_store_named_matters_to_the_store_manager_only(
    role: Role, action: Action, store: int, stores: frozenset[int]
) -> None:
    if role is not Role.STORE_MANAGER:
        assert allowed(role, action, store, stores) == allowed(role, action, None, ())


def test_the_roles_of_the_issue() -> None:
    # operator: rules, campaigns, coupons, members; not keys, users, refunds
    for action in (Action.RULES_WRITE, Action.CAMPAIGNS_WRITE, Action.COUPONS_ISSUE):
        assert allowed(Role.OPERATOR, action)
    assert allowed(Role.OPERATOR, Action.MEMBERS_WRITE)
    for action in (Action.KEYS_MANAGE, Action.USERS_MANAGE, Action.REFUNDS_CREATE):
        assert not allowed(Role.OPERATOR, action, 1)
    # store manager: its stores' orders, holds, refunds, reconciliation, staff
    for action in (
        Action.ORDERS_READ,
        Action.HOLDS_MANAGE,
        Action.REFUNDS_CREATE,
        Action.RECONCILE_RUN,
        Action.STAFF_MANAGE,
    ):
        assert allowed(Role.STORE_MANAGER, action, 1, {1, 2})
        assert not allowed(Role.STORE_MANAGER, action, 3, {1, 2})
        assert not allowed(Role.STORE_MANAGER, action, None, {1, 2})
    assert not allowed(Role.STORE_MANAGER, Action.RULES_WRITE, 1, {1})
    assert not allowed(Role.ANALYST, Action.POINTS_ADJUST)


# -- login names, passwords, PINs -------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "stored"),
    [("Amy", "amy"), (" amy.li@example.com ", "amy.li@example.com"), ("sh001-mgr", "sh001-mgr")],
)
def test_login_names_are_stored_lower_case(given_: str, stored: str) -> None:
    assert check_login(given_) == stored


@pytest.mark.parametrize("bad", ["", "a", "-amy", "amy li", "张三", "a" * 41, "amy\tli"])
def test_bad_login_names(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_login(bad)
    assert err.value.code == "invalid_login"


def test_password_rules() -> None:
    assert password_problem("correct horse", "amy") is None
    assert password_problem("123456789", "amy") is not None  # 9 characters
    assert password_problem(" " * 12, "amy") is not None
    assert password_problem("x" * 129, "amy") is not None
    assert password_problem("amy.li.1234", "Amy.Li.1234") is not None  # the login name
    assert password_problem("密码是十个汉字长的吗对", "amy") is None  # characters, not bytes


@given(st.text(alphabet="0123456789", min_size=4, max_size=8))
def test_pins_of_4_to_8_digits_are_accepted(pin: str) -> None:
    check_pin(pin)


@pytest.mark.parametrize("bad", ["", "123", "123456789", "12a4", "١٢٣٤", " 1234", "12.4"])
def test_other_pins_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_pin(bad)
    assert err.value.code == "invalid_pin"


def test_staff_numbers() -> None:
    assert check_staff_number(" 1001 ") == "1001"
    for bad in ("", "10 01", "x" * 17, "工号"):
        with pytest.raises(InvalidInput):
            check_staff_number(bad)


# -- the sign-in throttle -----------------------------------------------------------

offsets = st.lists(st.integers(0, 3600), max_size=40)


def _failures(seconds_ago: list[int]) -> list[datetime]:
    return [NOW - timedelta(seconds=s) for s in seconds_ago]


@given(offsets, st.integers(1, 25))
def test_the_wait_ends_exactly_when_the_window_holds_fewer_than_the_limit(
    seconds_ago: list[int], limit: int
) -> None:
    window = timedelta(minutes=15)
    failures = _failures(seconds_ago)

    def in_window(at: datetime) -> int:
        return sum(1 for t in failures if at - window < t <= at)

    wait = wait_after(failures, NOW, limit, window)
    assert wait >= ZERO
    if wait == ZERO:
        assert in_window(NOW) < limit
    else:
        assert in_window(NOW) >= limit
        assert in_window(NOW + wait) < limit
        assert in_window(NOW + wait - timedelta(microseconds=1)) >= limit
        assert wait <= window


def _attempts(*spec: tuple[int, Outcome]) -> list[Attempt]:
    return [Attempt(NOW - timedelta(seconds=s), o) for s, o in spec]


F, OK, T = Outcome.FAILED, Outcome.OK, Outcome.THROTTLED


def test_five_failures_for_an_account_throttle_it_for_fifteen_minutes() -> None:
    four = _attempts(*[(60 * i, F) for i in range(1, 5)])
    assert sign_in_wait(four, [], NOW) == ZERO
    five = _attempts((0, F), *[(60 * i, F) for i in range(1, 5)])
    # the oldest failure (4 minutes ago) leaves the window in 11 minutes
    assert sign_in_wait(five, [], NOW) == timedelta(minutes=11)


def test_a_success_clears_the_account_but_not_the_address() -> None:
    attempts = _attempts((50, F), (40, F), (30, F), (20, OK), (10, F), (5, F))
    assert sign_in_wait(attempts, [], NOW) == ZERO
    many = _attempts(*[(i, F) for i in range(1, 20)], (0, OK))
    assert sign_in_wait([], many, NOW) == ZERO  # 19 failures
    many = _attempts(*[(i, F) for i in range(1, 21)], (0, OK))
    assert sign_in_wait([], many, NOW) > ZERO  # 20 failures, the success does not count


def test_throttled_attempts_do_not_extend_the_wait() -> None:
    failed = [(600 + i, F) for i in range(5)]
    hammering = [(i, T) for i in range(0, 600, 10)]
    assert sign_in_wait(_attempts(*failed, *hammering), [], NOW) == sign_in_wait(
        _attempts(*failed), [], NOW
    )


def test_twenty_failures_from_one_address_throttle_it() -> None:
    assert THROTTLE.per_address == 20
    nineteen = _attempts(*[(i * 30, F) for i in range(19)])
    assert sign_in_wait([], nineteen, NOW) == ZERO
    twenty = _attempts(*[(i * 30, F) for i in range(20)])
    assert sign_in_wait([], twenty, NOW) == timedelta(minutes=15) - timedelta(seconds=19 * 30)


@given(st.lists(st.tuples(st.integers(0, 2000), st.sampled_from(list(Outcome))), max_size=30))
def test_the_wait_is_the_longer_of_the_two(spec: list[tuple[int, Outcome]]) -> None:
    attempts = _attempts(*spec)
    both = sign_in_wait(attempts, attempts, NOW)
    assert both == max(sign_in_wait(attempts, [], NOW), sign_in_wait([], attempts, NOW))
    assert ZERO <= both <= THROTTLE.window


# -- the staff lockout --------------------------------------------------------------


@given(st.integers(0, 12))
def test_five_wrong_pins_in_a_row_lock_for_fifteen_minutes(wrong: int) -> None:
    state = PinState()
    locked_at: list[int] = []
    for i in range(wrong):
        assert not state.locked(NOW)
        state = after_wrong_pin(state, NOW)
        if state.locked(NOW):
            locked_at.append(i + 1)
            break
    assert locked_at == ([LOCKOUT.wrong_pins] if wrong >= LOCKOUT.wrong_pins else [])
    if locked_at:
        assert state.locked_until == NOW + timedelta(minutes=15)
        assert state.locked(NOW + timedelta(minutes=15) - timedelta(microseconds=1))
        assert not state.locked(NOW + timedelta(minutes=15))


def test_a_right_pin_clears_the_count_and_a_lock_over_starts_again() -> None:
    state = PinState()
    for _ in range(4):
        state = after_wrong_pin(state, NOW)
    assert state == PinState(4, None)
    assert after_right_pin() == PinState()
    locked = after_wrong_pin(state, NOW)
    later = NOW + timedelta(minutes=16)
    assert not locked.locked(later)
    assert after_wrong_pin(locked, later) == PinState(1, None)
