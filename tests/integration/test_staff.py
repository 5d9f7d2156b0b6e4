"""Store staff and their sign-in at a till (service/admin/staff.py): the store
binding, the PIN lockout, tenancy; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from loyalpos.db.tables import staff_sessions, store_staff
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound, TooManyAttempts, Unauthorized
from loyalpos.service.admin import staff
from loyalpos.service.base.context import Context
from tests.conftest import Clock
from tests.integration.accounts_helpers import Brands, cheap_hashes, two_brands

__all__ = ["cheap_hashes"]
pytestmark = pytest.mark.usefixtures("cheap_hashes")

PIN = "482916"


@pytest.fixture
def world(ctx: Context) -> Brands:
    return two_brands(ctx)


def code_of(exc: pytest.ExceptionInfo[Exception]) -> str:
    return str(getattr(exc.value, "code", ""))


def test_create_list_and_sign_in_at_the_own_store(ctx: Context, world: Brands) -> None:
    wang = staff.create_staff(ctx, world.a, world.a_sh, " 1001 ", "小王", PIN)
    li = staff.create_staff(ctx, world.a, world.a_bj, "1001", "小李", "0000")  # same number
    assert (wang.number, wang.name, wang.store_id) == ("1001", "小王", world.a_sh)
    assert staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN).id == wang.id
    assert staff.sign_in(ctx, world.a, world.a_bj, "1001", "0000").id == li.id
    assert [p.id for p in staff.list_staff(ctx, world.a)] == [wang.id, li.id]
    assert [p.id for p in staff.list_staff(ctx, world.a, world.a_bj)] == [li.id]
    with ctx.transaction() as conn:
        hashes = conn.execute(select(store_staff.c.pin_hash)).scalars().all()
    assert all(h.startswith("$argon2id$") and PIN not in h for h in hashes)


def test_a_staff_member_signs_in_only_at_its_store(ctx: Context, world: Brands) -> None:
    staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    with pytest.raises(NotFound) as elsewhere:
        staff.sign_in(ctx, world.a, world.a_bj, "1001", PIN)
    assert code_of(elsewhere) == "staff_not_found"
    with pytest.raises(NotFound) as nobody:
        staff.sign_in(ctx, world.a, world.a_sh, "9999", PIN)
    assert code_of(nobody) == "staff_not_found"


def test_what_staff_is_created_with_is_checked(ctx: Context, world: Brands) -> None:
    staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    with pytest.raises(Conflict) as taken:
        staff.create_staff(ctx, world.a, world.a_sh, "1001", "another", PIN)
    assert code_of(taken) == "staff_exists"
    for number, name, pin, code in [
        ("10 01", "x", PIN, "invalid_staff_number"),
        ("1002", "", PIN, "invalid_name"),
        ("1002", "x", "12a4", "invalid_pin"),
        ("1002", "x", "123", "invalid_pin"),
    ]:
        with pytest.raises(InvalidInput) as err:
            staff.create_staff(ctx, world.a, world.a_sh, number, name, pin)
        assert code_of(err) == code


def test_five_wrong_pins_lock_the_staff_member_for_fifteen_minutes(
    ctx: Context, world: Brands, clock: Clock
) -> None:
    wang = staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    for left in (4, 3, 2, 1):
        with pytest.raises(Unauthorized) as wrong:
            staff.sign_in(ctx, world.a, world.a_sh, "1001", "000000")
        assert code_of(wrong) == "wrong_pin" and wrong.value.detail["attempts_left"] == left
        clock.advance(seconds=5)
    with pytest.raises(TooManyAttempts) as locked:
        staff.sign_in(ctx, world.a, world.a_sh, "1001", "000000")
    assert code_of(locked) == "staff_locked"
    until = clock.now + timedelta(minutes=15)
    assert locked.value.until == until and locked.value.retry_after_seconds == 15 * 60
    # The right PIN is refused while locked, and does not extend it.
    clock.advance(minutes=14, seconds=59)
    with pytest.raises(TooManyAttempts) as still:
        staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN)
    assert still.value.until == until and still.value.retry_after_seconds == 1
    assert staff.get_staff(ctx, world.a, wang.id).locked_until == until
    clock.advance(seconds=1)
    assert staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN).failed_pins == 0


def test_a_right_pin_clears_the_count(ctx: Context, world: Brands) -> None:
    staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    for _ in range(3):
        for _ in range(4):
            with pytest.raises(Unauthorized):
                staff.sign_in(ctx, world.a, world.a_sh, "1001", "1111")
        assert staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN).failed_pins == 0


def test_a_new_pin_ends_a_lockout(ctx: Context, world: Brands) -> None:
    wang = staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    for _ in range(5):
        with pytest.raises((Unauthorized, TooManyAttempts)):
            staff.sign_in(ctx, world.a, world.a_sh, "1001", "1111")
    with pytest.raises(TooManyAttempts):
        staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN)
    reset = staff.reset_pin(ctx, world.a, wang.id, "7777")
    assert (reset.failed_pins, reset.locked_until) == (0, None)
    with pytest.raises(Unauthorized):
        staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN)  # the old PIN
    assert staff.sign_in(ctx, world.a, world.a_sh, "1001", "7777").id == wang.id


def test_a_disabled_staff_member_cannot_sign_in(ctx: Context, world: Brands) -> None:
    wang = staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    first = staff.disable_staff(ctx, world.a, wang.id)
    assert first.disabled
    assert staff.disable_staff(ctx, world.a, wang.id).disabled_at == first.disabled_at
    with pytest.raises(Unauthorized) as refused:
        staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN)
    assert code_of(refused) == "staff_disabled"
    staff.enable_staff(ctx, world.a, wang.id)
    assert staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN).id == wang.id


def test_staff_of_brand_b_is_not_found_from_brand_a(ctx: Context, world: Brands) -> None:
    zhao = staff.create_staff(ctx, world.b, world.b_store, "1001", "小赵", PIN)
    with pytest.raises(NotFound) as foreign_store:
        staff.sign_in(ctx, world.a, world.b_store, "1001", PIN)
    assert code_of(foreign_store) == "store_not_found"
    for act in (
        lambda: staff.get_staff(ctx, world.a, zhao.id),
        lambda: staff.disable_staff(ctx, world.a, zhao.id),
        lambda: staff.enable_staff(ctx, world.a, zhao.id),
        lambda: staff.reset_pin(ctx, world.a, zhao.id, "5555"),
        lambda: staff.staff_by_number(ctx, world.a, world.a_sh, "1001"),
    ):
        with pytest.raises(NotFound) as err:
            act()
        assert code_of(err) == "staff_not_found"
    with pytest.raises(NotFound):
        staff.list_staff(ctx, world.a, world.b_store)
    with pytest.raises(NotFound):
        staff.create_staff(ctx, world.a, world.b_store, "1002", "x", PIN)
    assert staff.list_staff(ctx, world.a) == []
    assert staff.sign_in(ctx, world.b, world.b_store, "1001", PIN).id == zhao.id  # unchanged


def test_wrong_pins_sent_in_parallel_all_count(ctx: Context, world: Brands) -> None:
    from concurrent.futures import ThreadPoolExecutor

    staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)

    def attempt(_: int) -> str:
        try:
            staff.sign_in(ctx, world.a, world.a_sh, "1001", "000000")
        except (Unauthorized, TooManyAttempts) as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(attempt, range(12)))
    assert answers == ["staff_locked"] * 8 + ["wrong_pin"] * 4


def test_a_new_pin_or_disabling_signs_the_staff_member_out_everywhere(
    ctx: Context, world: Brands
) -> None:
    wang = staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    li = staff.create_staff(ctx, world.a, world.a_sh, "1002", "小李", PIN)
    first = staff.start_session(ctx, staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN))
    second = staff.start_session(ctx, staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN))
    other = staff.start_session(ctx, staff.sign_in(ctx, world.a, world.a_sh, "1002", PIN))
    staff.reset_pin(ctx, world.a, wang.id, "7777")
    for ended in (first, second):
        with pytest.raises(Unauthorized) as exc:
            staff.check_session(ctx, ended.token)
        assert code_of(exc) == "session_ended"
    assert staff.check_session(ctx, other.token).staff.id == li.id
    staff.disable_staff(ctx, world.a, li.id)
    with pytest.raises(Unauthorized) as exc:
        staff.check_session(ctx, other.token)
    assert code_of(exc) == "session_ended"


def test_a_session_keeps_the_terminal_it_was_started_at(ctx: Context, world: Brands) -> None:
    staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    wang = staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN)
    at_till = staff.start_session(ctx, wang, terminal=" 前台1号 ")
    assert at_till.session.terminal == "前台1号"
    assert staff.check_session(ctx, at_till.token).terminal == "前台1号"
    without = staff.start_session(ctx, wang)  # callers that send none keep working
    assert without.session.terminal == ""
    assert staff.check_session(ctx, without.token).terminal == ""
    longest = "T" * staff.MAX_TERMINAL
    assert (
        staff.check_session(ctx, staff.start_session(ctx, wang, terminal=longest).token).terminal
        == longest
    )


@pytest.mark.parametrize(
    "terminal", ["T" * 33, "POS\n2", "POS\t2", "POS\x002", "POS\x1b", "\ud800", "a\u2028b"]
)
def test_a_bad_terminal_is_refused_and_no_session_starts(
    ctx: Context, world: Brands, terminal: str
) -> None:
    staff.create_staff(ctx, world.a, world.a_sh, "1001", "小王", PIN)
    wang = staff.sign_in(ctx, world.a, world.a_sh, "1001", PIN)
    with pytest.raises(InvalidInput) as exc:
        staff.start_session(ctx, wang, terminal=terminal)
    assert code_of(exc) == "bad_terminal"
    with ctx.transaction() as conn:
        assert conn.execute(select(staff_sessions.c.id)).first() is None
