"""What one scanned or typed string at the till is (扫码识别).

A barcode scanner types like a keyboard and ends with Enter, so the cashier page
has one field for everything: a member code, a phone or card number, an item's
barcode, a scale label, a customer's payment code. `classify` decides which, in
this order (the first rule that matches wins):

1. **Payment code (付款码)**, before anything numeric, so that a customer's
   payment code is never taken for a phone or card number and never stored as
   one. WeChat Pay: 18 digits starting 10, 11, 12, 13, 14 or 15; Alipay: 16 to 24
   digits starting 25 to 30. Sources: WeChat Pay's micropay (付款码支付) API
   documentation, `auth_code` ("18位纯数字，以10、11、12、13、14、15开头"), and
   Alipay's `alipay.trade.pay` documentation ("25~30开头的长度为16~24位的数字"),
   as repeated by the payment aggregators that document both (e.g.
   doc.weidoufu.com/api/micropay.html).
2. **loyalpos member code**: "M" and 34 base32 characters (domain/member_code.py);
   only its shape is read here, the signature and age are the service's to check.
3. **Mainland mobile number**: 11 digits, `1[3-9]` then 9 digits.
4. **Member card number**: 16 digits passing the Luhn check (member_code.py).
   An Alipay code of 16 digits starting 25-30 was taken by rule 1 already;
   loyalpos issues card numbers starting with 8, so none of its own collides.
5. **Scale label** of a layout the brand configured (`ScaleLayout`): 13 digits
   (EAN-13 in-store prefixes 20-29) or 18 digits (Chinese label scales), the
   prefix one of the layout's flags, the check digit(s) right.
6. **GTIN**: EAN-13 and UPC-A (12 digits) must carry a right GS1 check digit,
   otherwise the string is refused (`INVALID`: a mistyped digit, not an unknown
   item); 8 digits with a right check digit are an EAN-8, without one a plain code
   (shops number their own items with 8 digits too).
7. Anything else is a **plain item code**, looked up as a sku or a barcode.

Typed input is forgiving where a person types: full-width digits and letters
(a Chinese input method) are read as ASCII (NFKC), and spaces or hyphens inside
an otherwise numeric string ("138 0013 8000") are dropped. Surrounding blanks are
ignored; an empty string is `EMPTY`.

Check digits (GS1 General Specifications, section 7.9): the GTIN check digit is
the mod-10 digit with weights 3 and 1 from the right; the price (or weight)
verifier digit of a 4-digit field uses weights 2-, 2-, 3, 5- and the units digit
of three times the sum; of a 5-digit field, weights 5+, 2-, 5-, 5+, 2- and the
digit whose 5- product is ten minus the sum's units digit (section 7.9.3-7.9.4;
the tables below are those products' units digits; checked against the
aidc-toolkit's `priceOrWeightCheckDigit`, which gives 9 for "2875"). The 18-digit scale labels'
last digit is the same GS1 mod-10 digit over the first 17, as the label scales
common in China (大华, 顶尖) print it: flag 2 digits, PLU 5, then price and/or
weight fields of 5 digits (e.g. "99" + PLU + weight + amount + check).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from loyalpos.domain import member_code
from loyalpos.domain.errors import InvalidInput

MAX_SCAN_LENGTH = 128
"""Longer input is no barcode a till reads (a pasted paragraph); refused."""


class ScanKind(StrEnum):
    EMPTY = "empty"
    INVALID = "invalid"
    PAYMENT_CODE = "payment_code"
    MEMBER_CODE = "member_code"
    PHONE = "phone"
    CARD = "card"
    SCALE_LABEL = "scale_label"
    GTIN = "gtin"
    CODE = "code"


class Wallet(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"


class Embedded(StrEnum):
    """What the number inside a scale label is."""

    PRICE = "price"  # the line's price in fen
    WEIGHT = "weight"  # the weight in grams


@dataclass(frozen=True, slots=True)
class Scanned:
    """The classification of one scan. `text` is the normalised input; `code` the
    part to look up (the item code of a scale label, the GTIN, the plain code);
    `price_fen`/`weight_g` what a scale label carries; `reason` why `INVALID`."""

    kind: ScanKind
    text: str
    code: str | None = None
    wallet: Wallet | None = None
    layout: str | None = None
    price_fen: int | None = None
    weight_g: int | None = None
    reason: str | None = None

    @property
    def is_item(self) -> bool:
        return self.kind in (ScanKind.SCALE_LABEL, ScanKind.GTIN, ScanKind.CODE)


# --- check digits -------------------------------------------------------------


def gtin_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of `body` (weights 3, 1, 3 ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def is_gtin(text: str) -> bool:
    """8, 12 or 13 ASCII digits ending in their GS1 check digit."""
    return (
        len(text) in (8, 12, 13)
        and text.isascii()
        and text.isdigit()
        and gtin_check_digit(text[:-1]) == text[-1]
    )


# Units digits of the weighted products (GS1 GS 7.9.3), indexed by the digit.
_TWO_MINUS = (0, 2, 4, 6, 8, 9, 1, 3, 5, 7)
_THREE = (0, 3, 6, 9, 2, 5, 8, 1, 4, 7)
_FIVE_PLUS = (0, 5, 1, 6, 2, 7, 3, 8, 4, 9)
_FIVE_MINUS = (0, 5, 9, 4, 8, 3, 7, 2, 6, 1)


def price_check_digit(field: str) -> str:
    """The price/weight verifier digit of a 4- or 5-digit field (GS1 GS 7.9.3-7.9.4)."""
    d = [int(c) for c in field]
    if len(field) == 4:
        total = _TWO_MINUS[d[0]] + _TWO_MINUS[d[1]] + _THREE[d[2]] + _FIVE_MINUS[d[3]]
        return str(total * 3 % 10)
    if len(field) == 5:
        total = (
            _FIVE_PLUS[d[0]]
            + _TWO_MINUS[d[1]]
            + _FIVE_MINUS[d[2]]
            + _FIVE_PLUS[d[3]]
            + _TWO_MINUS[d[4]]
        )
        return str(_FIVE_MINUS.index((10 - total % 10) % 10))
    raise ValueError("a price verifier digit is defined for 4 or 5 digits")


# --- scale label layouts ------------------------------------------------------

LAYOUT_LETTERS = {
    "F": "flag (one of the layout's flags)",
    "I": "item code (PLU, 货号)",
    "P": "price in fen",
    "W": "weight in grams",
    "V": "price verifier digit over P",
    "N": "ignored digit",
    "C": "check digit (GS1 mod-10 over every digit before it)",
}
_RUNS = re.compile(r"(.)\1*")


def _runs(pattern: str) -> list[tuple[str, int, int]]:
    """(letter, start, length) of each run of one letter."""
    return [(m.group(1), m.start(), len(m.group(0))) for m in _RUNS.finditer(pattern)]


@dataclass(frozen=True, slots=True)
class ScaleLayout:
    """How a brand's scale labels are read: which flags mark them, and a pattern
    of one letter per digit (`LAYOUT_LETTERS`), e.g. the EAN-13 layouts

        "FFIIIIIPPPPPC"  flag 2 digits, item 5, price 5 (fen), check
        "FFIIIIIVPPPPC"  flag 2, item 5, price verifier, price 4, check
        "FFIIIIIWWWWWC"  flag 2, item 5, weight 5 (g), check

    and the 18-digit layout of Chinese label scales (flag, PLU, total price,
    weight, check): "FFIIIIIPPPPPWWWWWC". Validated when made, so a stored layout
    that loads is one `classify` can apply."""

    name: str
    flags: tuple[str, ...]
    pattern: str

    def __post_init__(self) -> None:
        def bad(message: str) -> InvalidInput:
            return InvalidInput(
                f"条码秤格式 {self.name!r} 无效 (scale layout {self.name!r}: {message})",
                code="invalid_scale_layout",
                layout=self.name,
            )

        if not self.name or len(self.name) > 40:
            raise bad("a name of 1 to 40 characters is needed")
        length = len(self.pattern)
        if length not in (13, 18):
            raise bad("the pattern has 13 (EAN-13) or 18 (scale) digits")
        unknown = set(self.pattern) - set(LAYOUT_LETTERS)
        if unknown:
            raise bad(f"unknown letters {''.join(sorted(unknown))} (use {''.join(LAYOUT_LETTERS)})")
        runs = _runs(self.pattern)
        letters = [r[0] for r in runs]
        if len(letters) != len(set(letters) - {"N"}) + letters.count("N"):
            raise bad("each letter but N appears in one run")
        if runs[0][0] != "F" or not 1 <= runs[0][2] <= 3:
            raise bad("the pattern starts with 1 to 3 flag digits F")
        if runs[-1] != ("C", length - 1, 1):
            raise bad("the pattern ends with one check digit C")
        counts = {letter: n for letter, _, n in runs if letter != "N"}
        if not 1 <= counts.get("I", 0) <= 8:
            raise bad("1 to 8 item-code digits I are needed")
        if "P" not in counts and "W" not in counts:
            raise bad("a price P or a weight W is needed")
        if "V" in counts and (counts["V"] != 1 or counts.get("P") not in (4, 5)):
            raise bad("a price verifier V is one digit, for a price P of 4 or 5 digits")
        if not self.flags:
            raise bad("at least one flag is needed")
        width = counts["F"]
        for flag in self.flags:
            if len(flag) != width or not (flag.isascii() and flag.isdigit()):
                raise bad(f"flag {flag!r} is not {width} digits")
            if length == 13 and flag[0] != "2":
                raise bad(f"flag {flag!r}: EAN-13 in-store numbers start with 2 (20-29)")
            if length == 18 and _flag_may_be_payment(flag):
                raise bad(f"flag {flag!r}: 18 digits starting so are payment codes (10-15, 25-30)")
        if len(set(self.flags)) != len(self.flags):
            raise bad("a flag is listed twice")

    @property
    def length(self) -> int:
        return len(self.pattern)

    def field(self, letter: str) -> tuple[int, int] | None:
        """(start, end) of the run of `letter`, or None."""
        for found, start, n in _runs(self.pattern):
            if found == letter:
                return start, start + n
        return None

    def matches(self, digits: str) -> bool:
        return len(digits) == self.length and any(digits.startswith(f) for f in self.flags)

    def build(
        self,
        flag: str,
        item: str,
        *,
        price_fen: int | None = None,
        weight_g: int | None = None,
    ) -> str:
        """The label a scale of this layout prints (tests, the demo, docs): the
        item code is left-padded with zeros, ignored digits are zeros."""
        if flag not in self.flags:
            raise ValueError(f"{flag!r} is not a flag of layout {self.name!r}")
        digits = ["0"] * self.length
        values = {"F": flag, "I": item, "P": price_fen, "W": weight_g}
        for letter, start, n in _runs(self.pattern):
            if letter in ("N", "V", "C"):
                continue
            value = values[letter]
            if value is None:
                raise ValueError(f"layout {self.name!r} needs a value for {letter}")
            text = str(value).zfill(n)
            if len(text) != n or not text.isdigit():
                raise ValueError(f"{value!r} does not fit {n} digits ({letter})")
            digits[start : start + n] = text
        verifier = self.field("V")
        price = self.field("P")
        if verifier is not None and price is not None:
            digits[verifier[0]] = price_check_digit("".join(digits[price[0] : price[1]]))
        digits[-1] = gtin_check_digit("".join(digits[:-1]))
        return "".join(digits)

    def read(self, digits: str) -> Scanned:
        """A label of this layout (`matches` is true) read; INVALID on a wrong
        check or verifier digit."""
        if gtin_check_digit(digits[:-1]) != digits[-1]:
            return _invalid(digits, "check_digit")
        verifier = self.field("V")
        price = self.field("P")
        if verifier is not None and price is not None:
            if price_check_digit(digits[price[0] : price[1]]) != digits[verifier[0]]:
                return _invalid(digits, "price_check_digit")
        item = self.field("I")
        weight = self.field("W")
        assert item is not None
        return Scanned(
            ScanKind.SCALE_LABEL,
            digits,
            code=digits[item[0] : item[1]],
            layout=self.name,
            price_fen=int(digits[price[0] : price[1]]) if price else None,
            weight_g=int(digits[weight[0] : weight[1]]) if weight else None,
        )


def _flag_may_be_payment(flag: str) -> bool:
    """Whether an 18-digit label with this flag could start like a payment code."""
    if len(flag) == 1:
        return flag in ("1", "2", "3")
    return 10 <= int(flag[:2]) <= 15 or 25 <= int(flag[:2]) <= 30


def check_layouts(layouts: list[ScaleLayout] | tuple[ScaleLayout, ...]) -> None:
    """A brand's layouts together: names unique, and no label two layouts could
    both read (same length, one flag a prefix of another's)."""
    names: set[str] = set()
    for i, layout in enumerate(layouts):
        if layout.name in names:
            raise InvalidInput(
                f"条码秤格式名称重复 (scale layout {layout.name!r} given twice)",
                code="invalid_scale_layout",
                layout=layout.name,
            )
        names.add(layout.name)
        for other in layouts[:i]:
            if other.length != layout.length:
                continue
            for a in layout.flags:
                for b in other.flags:
                    if a.startswith(b) or b.startswith(a):
                        raise InvalidInput(
                            f"条码秤格式 {layout.name!r} 与 {other.name!r} 的标志 {a}/{b} 冲突 "
                            f"(scale layouts {layout.name!r} and {other.name!r} both read "
                            f"labels starting {a if len(a) > len(b) else b})",
                            code="invalid_scale_layout",
                            layout=layout.name,
                        )


# --- classify -----------------------------------------------------------------

_MEMBER_CODE = re.compile(r"M[A-Z2-7]{34}")
_PHONE = re.compile(r"1[3-9][0-9]{9}")
_SEPARATORS = re.compile(r"[ \-]")


def _invalid(text: str, reason: str) -> Scanned:
    return Scanned(ScanKind.INVALID, text, reason=reason)


def payment_wallet(digits: str) -> Wallet | None:
    """The wallet whose payment code `digits` is shaped like, or None."""
    if not (digits.isascii() and digits.isdigit()) or len(digits) < 2:
        return None
    head = int(digits[:2])
    if len(digits) == 18 and 10 <= head <= 15:
        return Wallet.WECHAT
    if 16 <= len(digits) <= 24 and 25 <= head <= 30:
        return Wallet.ALIPAY
    return None


def normalise(raw: str) -> str:
    """The input as `classify` reads it (see the module's docstring)."""
    text = unicodedata.normalize("NFKC", raw).strip()
    compact = _SEPARATORS.sub("", text)
    if compact and compact.isascii() and compact.isdigit():
        return compact
    return text


def classify(raw: str, layouts: tuple[ScaleLayout, ...] | list[ScaleLayout] = ()) -> Scanned:
    """What `raw` is, by the rules of the module's docstring; `layouts` are the
    brand's scale-label layouts (validated together by `check_layouts`)."""
    text = normalise(raw)
    if not text:
        return Scanned(ScanKind.EMPTY, text)
    if len(text) > MAX_SCAN_LENGTH or not text.isprintable():
        return _invalid(text[:MAX_SCAN_LENGTH], "unreadable")
    digits = text if text.isascii() and text.isdigit() else None
    if digits is None:
        if _MEMBER_CODE.fullmatch(text.upper()):
            return Scanned(ScanKind.MEMBER_CODE, text.upper())
        return Scanned(ScanKind.CODE, text, code=text)
    wallet = payment_wallet(digits)
    if wallet is not None:
        return Scanned(ScanKind.PAYMENT_CODE, digits, wallet=wallet)
    if _PHONE.fullmatch(digits):
        return Scanned(ScanKind.PHONE, digits)
    if len(digits) == 16 and member_code.is_card_number(digits):
        return Scanned(ScanKind.CARD, digits)
    for layout in layouts:
        if layout.matches(digits):
            return layout.read(digits)
    if len(digits) in (12, 13):
        if gtin_check_digit(digits[:-1]) != digits[-1]:
            return _invalid(digits, "check_digit")
        return Scanned(ScanKind.GTIN, digits, code=digits)
    if len(digits) == 8 and gtin_check_digit(digits[:-1]) == digits[-1]:
        return Scanned(ScanKind.GTIN, digits, code=digits)
    return Scanned(ScanKind.CODE, digits, code=digits)


def price_from_weight(weight_g: int, unit_price_fen: int) -> int:
    """A weighed line's price: grams × the price per kilogram, rounded to the fen
    half up (四舍五入, as label scales print it): 333 g at 1,999 fen/kg is
    665.667 -> 666 fen; 500 g at 1,001 fen/kg is 500.5 -> 501 fen."""
    if weight_g < 0 or unit_price_fen < 0:
        raise ValueError("weight and price are not negative")
    return (weight_g * unit_price_fen + 500) // 1000
