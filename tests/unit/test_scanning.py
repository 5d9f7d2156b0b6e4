"""domain/scanning.py: what a scan at the till is, by property and by example."""

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from loyalpos.domain import member_code
from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.scanning import (
    ScaleLayout,
    ScanKind,
    Wallet,
    check_layouts,
    classify,
    gtin_check_digit,
    price_check_digit,
    price_from_weight,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=30)


def digit_string(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@given(digit_string(12))
def test_any_valid_ean13_is_recognised_with_its_check_digit(body: str) -> None:
    code = body + gtin_check_digit(body)
    scanned = classify(code)
    assert scanned.kind is ScanKind.GTIN
    assert scanned.code == code


@given(digit_string(12), st.integers(0, 12), st.integers(1, 9))
def test_a_changed_digit_of_an_ean13_is_refused(body: str, at: int, delta: int) -> None:
    code = body + gtin_check_digit(body)
    changed = code[:at] + str((int(code[at]) + delta) % 10) + code[at + 1 :]
    scanned = classify(changed, LAYOUTS)
    assert scanned.kind is ScanKind.INVALID
    assert scanned.reason == "check_digit"


@given(digit_string(11))
def test_upc_a_and_ean8_with_their_check_digit(body: str) -> None:
    upc = body + gtin_check_digit(body)
    assert classify(upc).kind is ScanKind.GTIN
    ean8 = body[:7] + gtin_check_digit(body[:7])
    assert classify(ean8).kind is ScanKind.GTIN
    wrong = body[:7] + str((int(gtin_check_digit(body[:7])) + 1) % 10)
    assert classify(wrong).kind is ScanKind.CODE  # shops' own 8-digit codes


@given(st.integers(10, 15), digit_string(16))
def test_wechat_payment_codes_are_never_phone_or_card(head: int, rest: str) -> None:
    scanned = classify(f"{head}{rest}", LAYOUTS)
    assert scanned.kind is ScanKind.PAYMENT_CODE
    assert scanned.wallet is Wallet.WECHAT


@given(st.integers(25, 30), st.integers(14, 22).flatmap(digit_string))
def test_alipay_payment_codes_are_never_phone_or_card(head: int, rest: str) -> None:
    scanned = classify(f"{head}{rest}", LAYOUTS)
    assert scanned.kind is ScanKind.PAYMENT_CODE
    assert scanned.wallet is Wallet.ALIPAY


@given(digits)
def test_a_phone_or_card_is_never_a_payment_code_shape(text: str) -> None:
    scanned = classify(text, LAYOUTS)
    if scanned.kind in (ScanKind.PHONE, ScanKind.CARD):
        head = int(text[:2])
        assert not (len(text) == 18 and 10 <= head <= 15)
        assert not (16 <= len(text) <= 24 and 25 <= head <= 30)


def test_a_luhn_card_number_that_looks_like_alipay_is_a_payment_code() -> None:
    card = member_code.card_number_from("280000000000000")
    assert member_code.is_card_number(card)
    assert classify(card).kind is ScanKind.PAYMENT_CODE
    issued = member_code.card_number_from("812345678901234")  # loyalpos cards start with 8
    assert classify(issued).kind is ScanKind.CARD


def test_members_phones_and_codes() -> None:
    code = member_code.issue(b"k" * 32, 7, 1_700_000_000)
    assert classify(code).kind is ScanKind.MEMBER_CODE
    assert classify(" " + code.lower() + "\n").kind is ScanKind.MEMBER_CODE
    assert classify("13800138000").kind is ScanKind.PHONE
    assert classify("138-0013-8000").text == "13800138000"
    assert classify("１３８００１３８０００").kind is ScanKind.PHONE  # full-width digits
    assert classify("12800138000").kind is ScanKind.CODE  # 12x is no mobile prefix
    assert classify("").kind is ScanKind.EMPTY
    assert classify("   ").kind is ScanKind.EMPTY
    assert classify("LATTE-M").kind is ScanKind.CODE
    assert classify("x" * 200).kind is ScanKind.INVALID
    assert classify("a\x00b").kind is ScanKind.INVALID


PRICE13 = ScaleLayout("price", ("21",), "FFIIIIIVPPPPC")
WEIGHT13 = ScaleLayout("weight", ("22", "23"), "FFIIIIIWWWWWC")
SCALE18 = ScaleLayout("scale18", ("20",), "FFIIIIIPPPPPWWWWWC")
LAYOUTS = (PRICE13, WEIGHT13, SCALE18)


@given(digit_string(5), st.integers(0, 9999))
def test_price_labels_round_trip(item: str, price: int) -> None:
    label = PRICE13.build("21", item, price_fen=price)
    scanned = classify(label, LAYOUTS)
    assert scanned.kind is ScanKind.SCALE_LABEL
    assert (scanned.code, scanned.price_fen, scanned.weight_g) == (item, price, None)


@given(digit_string(5), st.integers(0, 99999), st.sampled_from(["22", "23"]))
def test_weight_labels_round_trip(item: str, grams: int, flag: str) -> None:
    scanned = classify(WEIGHT13.build(flag, item, weight_g=grams), LAYOUTS)
    assert (scanned.kind, scanned.code, scanned.weight_g) == (ScanKind.SCALE_LABEL, item, grams)


@given(digit_string(5), st.integers(0, 99999), st.integers(0, 99999))
def test_18_digit_scale_labels_round_trip(item: str, price: int, grams: int) -> None:
    label = SCALE18.build("20", item, price_fen=price, weight_g=grams)
    assert len(label) == 18
    scanned = classify(label, LAYOUTS)
    assert scanned.kind is ScanKind.SCALE_LABEL
    assert (scanned.code, scanned.price_fen, scanned.weight_g) == (item, price, grams)
    assert scanned.layout == "scale18"


@given(digit_string(5), st.integers(0, 9999), st.integers(0, 9))
def test_a_wrong_price_verifier_is_refused(item: str, price: int, verifier: int) -> None:
    label = PRICE13.build("21", item, price_fen=price)
    assume(str(verifier) != label[7])
    body = label[:7] + str(verifier) + label[8:12]
    scanned = classify(body + gtin_check_digit(body), LAYOUTS)
    assert (scanned.kind, scanned.reason) == (ScanKind.INVALID, "price_check_digit")


def test_price_verifier_digits_of_gs1() -> None:
    assert price_check_digit("2875") == "9"  # GS1 General Specifications' example
    assert price_check_digit("14685") == "6"
    with pytest.raises(ValueError):
        price_check_digit("123")


def test_an_in_store_number_without_a_layout_is_an_ordinary_gtin() -> None:
    label = PRICE13.build("21", "00042", price_fen=1234)
    assert classify(label).kind is ScanKind.GTIN
    assert classify(label, LAYOUTS).kind is ScanKind.SCALE_LABEL


@pytest.mark.parametrize(
    ("flags", "pattern", "message"),
    [
        (("21",), "FFIIIIIPPPPC", "13 (EAN-13) or 18"),
        (("21",), "FFIIIIIPPPPPX", "unknown letters"),
        (("21",), "NFFIIIIPPPPPC", "starts with 1 to 3 flag"),
        (("21",), "FFIIIIIPPPPPP", "ends with one check digit"),
        (("21",), "FFIIIIINNNNNC", "a price P or a weight W"),
        (("21",), "FFIIIVIPPPPPC", "each letter but N"),
        (("21",), "FFIIIVPPPPPPC", "price verifier V"),
        (("31",), "FFIIIIIPPPPPC", "start with 2"),
        (("2",), "FFIIIIIPPPPPC", "is not 2 digits"),
        (("27",), "FFIIIIIPPPPPWWWWWC", "payment codes"),
        (("12",), "FFIIIIIPPPPPWWWWWC", "payment codes"),
        ((), "FFIIIIIPPPPPC", "at least one flag"),
        (("21", "21"), "FFIIIIIPPPPPC", "listed twice"),
    ],
)
def test_bad_layouts_are_refused(flags: tuple[str, ...], pattern: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)) as raised:
        ScaleLayout("x", flags, pattern)
    assert raised.value.code == "invalid_scale_layout"


def test_layouts_that_read_the_same_labels_are_refused() -> None:
    check_layouts(LAYOUTS)
    with pytest.raises(InvalidInput, match="both read"):
        check_layouts([PRICE13, ScaleLayout("other", ("2",), "FIIIIIIPPPPPC")])
    with pytest.raises(InvalidInput, match="twice"):
        check_layouts([PRICE13, ScaleLayout("price", ("24",), "FFIIIIIPPPPPC")])
    check_layouts([PRICE13, ScaleLayout("long", ("21",), "FFIIIIIPPPPPWWWWWC")])


def test_price_from_weight_rounds_half_up_to_the_fen() -> None:
    assert price_from_weight(333, 1999) == 666  # 665.667
    assert price_from_weight(500, 1001) == 501  # 500.5
    assert price_from_weight(1000, 2500) == 2500
    assert price_from_weight(0, 2500) == 0
    with pytest.raises(ValueError):
        price_from_weight(-1, 100)
