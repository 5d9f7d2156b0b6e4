"""HQ users, their sign-in, throttling, sessions, CSRF and permissions
(service/admin/accounts.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from loyalpos.db.tables import hq_sessions, login_attempts
from loyalpos.domain.accounts import Action, Role
from loyalpos.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from loyalpos.service.admin import accounts
from loyalpos.service.base.context import Context
from tests.conftest import Clock
from tests.integration.accounts_helpers import Brands, cheap_hashes, two_brands

__all__ = ["cheap_hashes"]
pytestmark = pytest.mark.usefixtures("cheap_hashes")

PASSWORD = "correct horse battery"


@pytest.fixture
def world(ctx: Context) -> Brands:
    return two_brands(ctx)


def make(
    ctx: Context, brand: int, login: str, role: Role = Role.OPERATOR, stores: tuple[int, ...] = ()
) -> accounts.User:
    return accounts.create_user(ctx, brand, login, login.title(), role, PASSWORD, store_ids=stores)


def sign_in(
    ctx: Context, brand: int, login: str, password: str = PASSWORD, address: str | None = "10.0.0.1"
) -> accounts.User:
    return accounts.authenticate(ctx, brand, login, password, address=address)


def code_of(exc: pytest.ExceptionInfo[Exception]) -> str:
    return str(getattr(exc.value, "code", ""))


# -- users --------------------------------------------------------------------------


def test_create_list_and_sign_in(ctx: Context, world: Brands) -> None:
    amy = make(ctx, world.a, "Amy")
    mgr = make(ctx, world.a, "sh.mgr", Role.STORE_MANAGER, (world.a_sh, world.a_bj))
    assert (amy.login, amy.display_name, amy.role, amy.store_ids) == (
        "amy",
        "Amy",
        Role.OPERATOR,
        frozenset(),
    )
    assert mgr.store_ids == {world.a_sh, world.a_bj}
    assert [u.login for u in accounts.list_users(ctx, world.a)] == ["amy", "sh.mgr"]
    assert sign_in(ctx, world.a, " AMY ").id == amy.id  # the name as typed
    assert accounts.user_by_login(ctx, world.a, "Sh.Mgr") == mgr
    with pytest.raises(Unauthorized) as wrong:
        sign_in(ctx, world.a, "amy", "not the password")
    assert code_of(wrong) == "sign_in_failed"
    with pytest.raises(Unauthorized) as nobody:
        sign_in(ctx, world.a, "nobody")
    assert code_of(nobody) == "sign_in_failed" and nobody.value.message == wrong.value.message
    with pytest.raises(Unauthorized):
        sign_in(ctx, world.a, "x" * 300)  # cannot be a login name: the same answer


def test_only_a_hash_of_the_password_is_stored(ctx: Context, world: Brands) -> None:
    from loyalpos.db.tables import hq_users

    make(ctx, world.a, "amy")
    with ctx.transaction() as conn:
        stored = conn.execute(select(hq_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_what_a_user_is_created_with_is_checked(ctx: Context, world: Brands) -> None:
    make(ctx, world.a, "amy")
    with pytest.raises(Conflict) as taken:
        make(ctx, world.a, "AMY")
    assert code_of(taken) == "user_exists"
    cases = [
        (lambda: make(ctx, world.a, "a b"), "invalid_login"),
        (
            lambda: accounts.create_user(ctx, world.a, "bob", "Bob", Role.ADMIN, "short"),
            "weak_password",
        ),
        (lambda: make(ctx, world.a, "mgr", Role.STORE_MANAGER), "stores_required"),
        (lambda: make(ctx, world.a, "op", Role.OPERATOR, (world.a_sh,)), "stores_not_allowed"),
        (
            lambda: accounts.create_user(ctx, world.a, "bob", " ", Role.ADMIN, PASSWORD),
            "invalid_name",
        ),
    ]
    for attempt, code in cases:
        with pytest.raises(InvalidInput) as err:
            attempt()
        assert code_of(err) == code
    with pytest.raises(NotFound) as foreign:  # another brand's store
        make(ctx, world.a, "mgr", Role.STORE_MANAGER, (world.b_store,))
    assert code_of(foreign) == "store_not_found"
    assert [u.login for u in accounts.list_users(ctx, world.a)] == ["amy"]


def test_a_disabled_user_cannot_sign_in_and_its_sessions_end(ctx: Context, world: Brands) -> None:
    amy = make(ctx, world.a, "amy")
    opened = accounts.start_session(ctx, sign_in(ctx, world.a, "amy"))
    disabled = accounts.disable_user(ctx, world.a, amy.id)
    assert disabled.disabled and not accounts.can(disabled, Action.RULES_READ)
    assert accounts.disable_user(ctx, world.a, amy.id).disabled_at == disabled.disabled_at
    with pytest.raises(Unauthorized) as refused:
        sign_in(ctx, world.a, "amy")
    assert code_of(refused) == "account_disabled"
    with pytest.raises(Unauthorized) as wrong:  # a wrong password says nothing more
        sign_in(ctx, world.a, "amy", "wrong password")
    assert code_of(wrong) == "sign_in_failed"
    with pytest.raises(Unauthorized) as ended:
        accounts.check_session(ctx, opened.token)
    assert code_of(ended) == "session_ended"
    with pytest.raises(Unauthorized):
        accounts.start_session(ctx, amy)
    accounts.enable_user(ctx, world.a, amy.id)
    assert sign_in(ctx, world.a, "amy").id == amy.id


def test_a_new_password_replaces_the_old_and_ends_sessions(ctx: Context, world: Brands) -> None:
    amy = make(ctx, world.a, "amy")
    opened = accounts.start_session(ctx, amy)
    with pytest.raises(InvalidInput):
        accounts.reset_password(ctx, world.a, amy.id, "amy")
    accounts.reset_password(ctx, world.a, amy.id, "another long secret")
    with pytest.raises(Unauthorized):
        sign_in(ctx, world.a, "amy")
    assert sign_in(ctx, world.a, "amy", "another long secret").id == amy.id
    with pytest.raises(Unauthorized):
        accounts.check_session(ctx, opened.token)


# -- throttling -----------------------------------------------------------------------


def test_five_wrong_passwords_throttle_the_account_for_fifteen_minutes(
    ctx: Context, world: Brands, clock: Clock
) -> None:
    amy = make(ctx, world.a, "amy")
    for i in range(5):
        with pytest.raises(Unauthorized):
            sign_in(ctx, world.a, "amy", f"guess number {i}", address=f"10.0.1.{i}")
        clock.advance(seconds=10)
    # The sixth, even with the right password, from another address, is not checked.
    with pytest.raises(TooManyAttempts) as throttled:
        sign_in(ctx, world.a, "amy", address="10.9.9.9")
    assert code_of(throttled) == "sign_in_throttled"
    wait = throttled.value.retry_after_seconds
    assert wait == 15 * 60 - 50  # the first failure, 50 s ago, leaves the window then
    assert throttled.value.detail["retry_after_seconds"] == wait
    assert throttled.value.until == clock.now + timedelta(seconds=wait)
    # Hammering while throttled does not lengthen the wait.
    clock.advance(seconds=wait - 1)
    with pytest.raises(TooManyAttempts):
        sign_in(ctx, world.a, "amy")
    clock.advance(seconds=1)
    assert sign_in(ctx, world.a, "amy").id == amy.id
    # Other accounts were never throttled.
    make(ctx, world.a, "bob")
    assert sign_in(ctx, world.a, "bob").login == "bob"


def test_a_success_clears_the_account_count(ctx: Context, world: Brands, clock: Clock) -> None:
    make(ctx, world.a, "amy")
    for _ in range(2):
        for _ in range(4):
            with pytest.raises(Unauthorized):
                sign_in(ctx, world.a, "amy", "a wrong guess")
            clock.advance(seconds=1)
        sign_in(ctx, world.a, "amy")


def test_an_unknown_name_is_throttled_like_a_known_one(ctx: Context, world: Brands) -> None:
    for _ in range(5):
        with pytest.raises(Unauthorized):
            sign_in(ctx, world.a, "ghost", "whatever it is")
    with pytest.raises(TooManyAttempts):
        sign_in(ctx, world.a, "ghost", "whatever it is")


def test_twenty_failures_from_one_address_throttle_that_address(
    ctx: Context, world: Brands, clock: Clock
) -> None:
    make(ctx, world.a, "amy")
    for i in range(20):  # spread over names, so no account is throttled
        with pytest.raises(Unauthorized):
            sign_in(ctx, world.a, f"name{i % 5}-{i}", address="203.0.113.7")
        clock.advance(seconds=1)
    with pytest.raises(TooManyAttempts) as throttled:
        sign_in(ctx, world.a, "amy", address="203.0.113.7")
    assert throttled.value.retry_after_seconds == 15 * 60 - 20
    assert sign_in(ctx, world.a, "amy", address="203.0.113.8").login == "amy"
    assert sign_in(ctx, world.a, "amy", address=None).login == "amy"
    with ctx.transaction() as conn:
        outcomes = conn.execute(
            select(login_attempts.c.outcome).order_by(login_attempts.c.id)
        ).scalars()
        assert list(outcomes) == ["failed"] * 20 + ["throttled", "ok", "ok"]


def test_throttling_is_per_brand(ctx: Context, world: Brands) -> None:
    make(ctx, world.a, "amy")
    make(ctx, world.b, "amy")
    for _ in range(5):
        with pytest.raises(Unauthorized):
            sign_in(ctx, world.a, "amy", "a wrong guess")
    with pytest.raises(TooManyAttempts):
        sign_in(ctx, world.a, "amy")
    assert sign_in(ctx, world.b, "amy").brand_id == world.b


def test_prune_deletes_old_attempts_and_sessions(ctx: Context, world: Brands, clock: Clock) -> None:
    amy = make(ctx, world.a, "amy")
    sign_in(ctx, world.a, "amy")
    accounts.start_session(ctx, amy)
    clock.advance(days=31)
    fresh = accounts.start_session(ctx, sign_in(ctx, world.a, "amy"))
    assert accounts.prune(ctx) == 2
    assert accounts.check_session(ctx, fresh.token).user.id == amy.id


# -- sessions and CSRF ------------------------------------------------------------------


def test_a_session_lives_while_used_and_ends_when_idle(
    ctx: Context, world: Brands, clock: Clock
) -> None:
    amy = make(ctx, world.a, "amy")
    opened = accounts.start_session(ctx, sign_in(ctx, world.a, "amy"), address="10.0.0.1")
    assert opened.token and opened.session.csrf_token and opened.token != opened.session.csrf_token
    with ctx.transaction() as conn:
        stored = conn.execute(select(hq_sessions)).one()
    assert opened.token not in (stored.token_hash, stored.csrf_token)
    for _ in range(5):  # 2.5 hours, a request every 29 minutes
        clock.advance(minutes=29)
        checked = accounts.check_session(ctx, opened.token)
        assert (checked.user.id, checked.brand_id) == (amy.id, world.a)
        assert checked.last_seen_at == clock.now
    clock.advance(minutes=30)
    with pytest.raises(Unauthorized) as idle:
        accounts.check_session(ctx, opened.token)
    assert code_of(idle) == "session_expired"


def test_last_seen_is_written_at_most_once_a_minute(
    ctx: Context, world: Brands, clock: Clock
) -> None:
    opened = accounts.start_session(ctx, make(ctx, world.a, "amy"))
    started = clock.now
    clock.advance(seconds=59)
    assert accounts.check_session(ctx, opened.token).last_seen_at == started
    clock.advance(seconds=1)
    assert accounts.check_session(ctx, opened.token).last_seen_at == clock.now


def test_a_busy_session_still_ends_after_its_maximum(
    ctx: Context, world: Brands, clock: Clock
) -> None:
    opened = accounts.start_session(ctx, make(ctx, world.a, "amy"))
    assert opened.session.expires_at == clock.now + timedelta(hours=12)
    for _ in range(24):  # 11 h 36 min, a request every 29 minutes
        clock.advance(minutes=29)
        accounts.check_session(ctx, opened.token)
    clock.advance(minutes=25)  # 12 h 1 min after signing in, 25 idle minutes
    with pytest.raises(Unauthorized) as over:
        accounts.check_session(ctx, opened.token)
    assert code_of(over) == "session_expired"


def test_signing_out_ends_the_session_only(ctx: Context, world: Brands) -> None:
    amy = make(ctx, world.a, "amy")
    laptop = accounts.start_session(ctx, amy)
    phone = accounts.start_session(ctx, amy)
    accounts.end_session(ctx, laptop.token)
    accounts.end_session(ctx, laptop.token)  # twice: harmless
    accounts.end_session(ctx, "no such token")
    with pytest.raises(Unauthorized) as ended:
        accounts.check_session(ctx, laptop.token)
    assert code_of(ended) == "session_ended"
    assert accounts.check_session(ctx, phone.token).user.id == amy.id


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "session_required"),
        ("", "session_required"),
        ("nope", "session_invalid"),
        ("x" * 500, "session_invalid"),
    ],
)
def test_no_session_or_an_unknown_one(ctx: Context, token: str | None, code: str) -> None:
    with pytest.raises(Unauthorized) as err:
        accounts.check_session(ctx, token)
    assert code_of(err) == code


def test_the_csrf_token_must_be_the_sessions(ctx: Context, world: Brands) -> None:
    amy = make(ctx, world.a, "amy")
    one = accounts.start_session(ctx, amy)
    other = accounts.start_session(ctx, amy)
    session = accounts.check_session(ctx, one.token)
    accounts.check_csrf(session, one.session.csrf_token)
    for wrong in (
        None,
        "",
        other.session.csrf_token,
        one.token,
        "令牌",
        one.session.csrf_token[:-1],
    ):
        with pytest.raises(Forbidden) as err:
            accounts.check_csrf(session, wrong)
        assert code_of(err) == "csrf_failed"


# -- permissions ------------------------------------------------------------------------


def test_can_follows_the_matrix_and_the_managers_stores(ctx: Context, world: Brands) -> None:
    admin = make(ctx, world.a, "root", Role.ADMIN)
    analyst = make(ctx, world.a, "ana", Role.ANALYST)
    mgr = make(ctx, world.a, "mgr", Role.STORE_MANAGER, (world.a_sh,))
    assert accounts.can(admin, Action.USERS_MANAGE)
    assert accounts.can(analyst, Action.REPORTS_READ)
    assert not accounts.can(analyst, Action.RULES_WRITE)
    assert accounts.can(mgr, Action.REFUNDS_CREATE, world.a_sh)
    assert not accounts.can(mgr, Action.REFUNDS_CREATE, world.a_bj)
    assert not accounts.can(mgr, Action.REPORTS_READ)  # the whole brand
    accounts.require(mgr, Action.STAFF_MANAGE, world.a_sh)
    with pytest.raises(Forbidden) as denied:
        accounts.require(mgr, Action.STAFF_MANAGE, world.a_bj)
    assert code_of(denied) == "permission_denied"
    assert denied.value.detail["action"] == "staff.manage"


# -- tenancy ------------------------------------------------------------------------------


def test_a_user_of_brand_b_is_not_found_from_brand_a(ctx: Context, world: Brands) -> None:
    bob = make(ctx, world.b, "bob")
    with pytest.raises(Unauthorized):
        sign_in(ctx, world.a, "bob")
    for act in (
        lambda: accounts.get_user(ctx, world.a, bob.id),
        lambda: accounts.user_by_login(ctx, world.a, "bob"),
        lambda: accounts.disable_user(ctx, world.a, bob.id),
        lambda: accounts.enable_user(ctx, world.a, bob.id),
        lambda: accounts.reset_password(ctx, world.a, bob.id, "a brand new secret"),
    ):
        with pytest.raises(NotFound) as err:
            act()
        assert code_of(err) == "user_not_found"
    assert accounts.list_users(ctx, world.a) == []
    assert accounts.get_user(ctx, world.b, bob.id) == bob  # unchanged
    assert sign_in(ctx, world.b, "bob").id == bob.id
    # The same login name in two brands is two accounts.
    a_bob = make(ctx, world.a, "bob")
    assert a_bob.id != bob.id and sign_in(ctx, world.a, "bob").id == a_bob.id


def test_guesses_sent_in_parallel_count_as_they_arrive(ctx: Context, world: Brands) -> None:
    from concurrent.futures import ThreadPoolExecutor

    make(ctx, world.a, "amy")

    def guess(i: int) -> str:
        try:
            sign_in(ctx, world.a, "amy", f"parallel guess {i}", address=f"10.1.0.{i}")
        except (Unauthorized, TooManyAttempts) as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(guess, range(12)))
    assert answers == ["sign_in_failed"] * 5 + ["sign_in_throttled"] * 7
