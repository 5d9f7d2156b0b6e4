import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain import member_code
from loyalpos.domain.errors import MemberCodeRejected

KEY = member_code.brand_key(b"server-secret", 1)
T0 = 1_700_000_000


def reason(code: str, now: int, key: bytes = KEY) -> str:
    with pytest.raises(MemberCodeRejected) as raised:
        member_code.verify(key, code, now)
    return str(raised.value.detail["reason"])


@given(st.integers(1, 2**40), st.integers(0, 60))
def test_a_fresh_code_names_its_member(member_id: int, age: int) -> None:
    code = member_code.issue(KEY, member_id, T0)
    assert code.startswith("M") and code.isalnum() and code.isupper()
    assert member_code.verify(KEY, code, T0 + age) == member_id


def test_a_screenshot_stops_working_after_the_ttl() -> None:
    code = member_code.issue(KEY, 42, T0)
    assert reason(code, T0 + 61) == "expired"


def test_a_code_from_the_future_is_refused_beyond_clock_skew() -> None:
    code = member_code.issue(KEY, 42, T0 + 30)
    assert reason(code, T0) == "not_yet_valid"
    assert member_code.verify(KEY, code, T0 + 26) == 42


def test_a_code_of_another_brand_or_altered_is_forged() -> None:
    code = member_code.issue(KEY, 42, T0)
    assert reason(code, T0, member_code.brand_key(b"server-secret", 2)) == "forged"
    flipped = code[:5] + ("A" if code[5] != "A" else "B") + code[6:]
    assert reason(flipped, T0) in {"forged", "malformed"}


@pytest.mark.parametrize("text", ["", "hello", "M", "M!!!!", "X" + "A" * 34, "M" + "A" * 200])
def test_garbage_is_malformed(text: str) -> None:
    assert reason(text, T0) == "malformed"


def test_card_numbers_carry_a_luhn_check_digit() -> None:
    card = member_code.card_number_from("800000000000001")
    assert member_code.is_card_number(card)
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert not member_code.is_card_number(wrong)
    assert member_code.luhn_check_digit("7992739871") == "3"
