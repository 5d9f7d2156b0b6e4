"""Member import (loyalpos.service.loyalty.importer): every bad row reported with its
line, nothing half-imported, and one lot per row with its own expiry date.

The `clock` fixture says 2024-01-01 12:00 in Shanghai, so "today" is 2024-01-01."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from loyalpos.db.tables import member_identities, members, point_entries, point_lots
from loyalpos.domain import member_code
from loyalpos.service.base import brands
from loyalpos.service.base.brands import Brand
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members as member_service
from loyalpos.service.loyalty import points
from loyalpos.service.loyalty.importer import ImportReport, import_members
from loyalpos.service.loyalty.members import Identity
from tests.conftest import Clock

HEADER = "phone,name,birthday,card_no,tier,points,expires_on,wechat_openid\n"
CARD_A = member_code.card_number_from("800000000000001")
CARD_B = member_code.card_number_from("800000000000002")


def new_brand(ctx: Context, code: str = "imp") -> Brand:
    return brands.create_brand(ctx, code, "Import Brand")


def counts(ctx: Context) -> tuple[int, ...]:
    with ctx.transaction() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (members, point_entries, point_lots, member_identities)
        )


def rejected(report: ImportReport) -> list[tuple[int, str]]:
    return [(r.line, r.field) for r in report.rejected]


def test_every_bad_row_is_reported_with_its_line_and_field(ctx: Context) -> None:
    brand = new_brand(ctx)
    member_service.register(ctx, brand.id, phone="13900000009", name="老会员")
    text = HEADER + "\n".join(
        [
            f"13600000001,赵一,1990-01-01,{CARD_A},gold,100,2024-06-30,",  # 2 good
            "12345,钱二,,,,10,,",  # 3 bad phone
            "13600000003,孙三,1990-13-01,,,10,,",  # 4 bad date
            "13600000004,李四,,,,10,2024-01-01,",  # 5 expires today: already lapsed
            f"13600000005,周五,,{CARD_A},,10,,",  # 6 card of line 2
            "13900000009,老会员,,,,10,,",  # 7 already a member
            "13600000001,赵壹,,,,10,2024-12-31,",  # 8 same phone as line 2, other name
            "13600000008,吴八,,,,ten,,",  # 9 points not a number
            "13600000009,,,,,10,,",  # 10 no name
            "13600000010,郑十,,8000000000000001,,10,,",  # 11 card check digit wrong
            "13600000011,王十一,2099-01-01,,,10,,",  # 12 birthday in the future
            "13600000012,冯十二,,,,10,01/02/2025,",  # 13 expiry not ISO
        ]
    )
    before = counts(ctx)
    report = import_members(ctx, brand.id, text)
    assert report.committed is False
    assert report.rows == 12
    assert rejected(report) == [
        (3, "phone"),
        (4, "birthday"),
        (5, "expires_on"),
        (6, "card_no"),
        (7, "phone"),
        (8, "name"),
        (9, "points"),
        (10, "name"),
        (11, "card_no"),
        (12, "birthday"),
        (13, "expires_on"),
    ]
    messages = {r.line: r.message for r in report.rejected}
    assert "1990-13-01" in messages[4]
    assert "2024-01-01" in messages[5]
    assert "already a member" in messages[7]
    assert "line 2" in messages[8]
    assert (report.members, report.lots, report.points) == (0, 0, 0)
    assert counts(ctx) == before


def test_one_bad_row_refuses_the_whole_file(ctx: Context) -> None:
    brand = new_brand(ctx)
    old = member_service.register(ctx, brand.id, phone="13900000009", name="老会员")
    points.earn(ctx, brand.id, old.id, 40, points.Source("order", "A"))
    text = HEADER + (
        "13600000001,赵一,,,,100,,o-1\n"
        "13600000002,钱二,,,,200,2030-01-01,\n"
        "13600000003,孙三,,,,300,2023-12-31,\n"  # lapsed
        "13600000001,赵一,,,,50,2031-01-01,\n"
    )
    before = counts(ctx)
    report = import_members(ctx, brand.id, text)
    assert report.committed is False
    assert rejected(report) == [(4, "expires_on")]
    assert counts(ctx) == before
    assert points.balance(ctx, brand.id, old.id).total == 40
    for phone in ("13600000001", "13600000002"):
        with ctx.transaction() as conn:
            found = conn.execute(
                select(members.c.id).where(members.c.phone == "+86" + phone)
            ).first()
        assert found is None


def test_skip_invalid_imports_the_good_rows_in_one_go_and_lists_the_rest(ctx: Context) -> None:
    brand = new_brand(ctx)
    text = HEADER + (
        "13600000001,赵一,,,,100,,o-1\n"
        "13600000002,钱二,,,,abc,,\n"
        "13600000003,孙三,,,,300,2030-01-01,\n"
    )
    before = counts(ctx)
    report = import_members(ctx, brand.id, text, skip_invalid=True)
    assert report.committed is True
    assert rejected(report) == [(3, "points")]
    assert (report.rows, report.members, report.lots, report.points) == (3, 2, 2, 400)
    assert counts(ctx) == (before[0] + 2, before[1] + 2, before[2] + 2, before[3] + 1)
    zhao = member_service.by_phone(ctx, brand.id, "13600000001")
    assert member_service.by_identity(ctx, brand.id, Identity("wechat", "openid", "o-1")) == zhao
    assert points.balance(ctx, brand.id, zhao.id).total == 100


def test_several_rows_for_one_phone_open_one_lot_each_with_its_own_expiry(ctx: Context) -> None:
    brand = new_brand(ctx)
    text = HEADER + (
        f"13600000001,赵一,1990-05-20,{CARD_A},gold,500,2025-06-30,o-1\n"
        "13600000002,钱二,,,,70,,\n"
        "13600000001,赵一,,,,300,2024-12-31,\n"
        "13600000001,赵一,,,,0,2026-01-01,\n"  # no points: no lot
        "13600000001,赵一,,,,20,,\n"  # no date: the brand's policy (never lapses)
    )
    report = import_members(ctx, brand.id, text)
    assert report.committed is True, report.rejected
    assert report.rejected == []
    assert (report.rows, report.members, report.lots, report.points) == (5, 2, 4, 890)
    zhao = member_service.by_phone(ctx, brand.id, "13600000001")
    assert (zhao.name, zhao.card_no, zhao.tier, zhao.birthday) == (
        "赵一",
        CARD_A,
        "gold",
        date(1990, 5, 20),
    )
    assert zhao.points_balance == 820
    assert points.expiry_schedule(ctx, brand.id, zhao.id) == [
        (date(2024, 12, 31), 300),
        (date(2025, 6, 30), 500),
        (None, 20),
    ]
    history = points.history(ctx, brand.id, zhao.id)
    assert sorted(e.points for e in history) == [20, 300, 500]
    assert {(e.kind, e.source_type, e.operator) for e in history} == {
        ("adjust", "import", "import")
    }
    assert {e.source_ref for e in history} == {"import:line2", "import:line4", "import:line6"}
    qian = member_service.by_phone(ctx, brand.id, "13600000002")
    assert points.expiry_schedule(ctx, brand.id, qian.id) == [(None, 70)]
    # Imported opening balances are spendable at once, earliest expiry first.
    points.spend(ctx, brand.id, zhao.id, 350, points.Source("order", "S1"))
    assert points.expiry_schedule(ctx, brand.id, zhao.id) == [
        (date(2025, 6, 30), 450),
        (None, 20),
    ]


def test_duplicate_cards_within_the_file_and_against_the_database(ctx: Context) -> None:
    brand = new_brand(ctx)
    first = import_members(ctx, brand.id, HEADER + f"13600000001,赵一,,{CARD_A},,,,\n")
    assert first.committed and first.members == 1
    text = HEADER + (
        f"13600000002,钱二,,{CARD_A},,,,\n"  # card already in the brand
        f"13600000003,孙三,,{CARD_B},,,,\n"
        f"13600000004,李四,,{CARD_B},,,,\n"  # card of line 3
        f"13600000003,孙三,,{CARD_B},,5,,\n"  # same member, same card: fine
    )
    report = import_members(ctx, brand.id, text)
    assert rejected(report) == [(2, "card_no"), (4, "card_no")]
    assert "already in use" in report.rejected[0].message
    assert "another row" in report.rejected[1].message
    # The card belongs to this brand only: another brand may import it.
    other = new_brand(ctx, "other")
    assert import_members(ctx, other.id, HEADER + f"13600000002,钱二,,{CARD_A},,,,\n").committed


def test_header_problems_and_loose_formatting(ctx: Context) -> None:
    brand = new_brand(ctx)
    missing = import_members(ctx, brand.id, "phone,birthday\n13600000001,1990-01-01\n")
    assert missing.committed is False
    assert rejected(missing) == [(1, "name")]
    assert counts(ctx)[0] == 0
    # A BOM, upper-case headers with spaces, columns in another order, extra
    # columns, and a phone with +86 and spaces all go in.
    text = "\ufeff Name , PHONE ,Notes,points\n赵一,+86 136 0000 0001,vip,15\n"
    report = import_members(ctx, brand.id, text)
    assert report.committed is True, report.rejected
    member = member_service.by_phone(ctx, brand.id, "13600000001")
    assert (member.name, member.points_balance) == ("赵一", 15)


def test_a_number_that_only_looks_like_digits_is_reported_not_a_crash(ctx: Context) -> None:
    brand = new_brand(ctx)
    text = HEADER + "13600000001,赵一,,,,²,,\n13600000002,钱二,,,,１２,,\n"
    report = import_members(ctx, brand.id, text, skip_invalid=True)
    assert rejected(report) == [(2, "points")]
    qian = member_service.by_phone(ctx, brand.id, "13600000002")
    assert qian.points_balance == 12


def test_the_lapse_check_uses_the_brands_local_date(ctx: Context, clock: Clock) -> None:
    # 2024-01-01 20:00 UTC is already 2024-01-02 in Shanghai: a file saying
    # "expires 2024-01-02" is lapsed there.
    brand = new_brand(ctx)
    clock.advance(hours=16)
    report = import_members(ctx, brand.id, HEADER + "13600000001,赵一,,,,5,2024-01-02,\n")
    assert rejected(report) == [(2, "expires_on")]
    ok = import_members(ctx, brand.id, HEADER + "13600000001,赵一,,,,5,2024-01-03,\n")
    assert ok.committed is True


def test_nul_characters_and_absurdly_long_numbers_are_reported_per_row(ctx: Context) -> None:
    brand = new_brand(ctx)
    text = HEADER + (
        "13600000001,赵\x00一,,,,1,,\n"
        f"13600000002,钱二,,,,{'9' * 5000},,\n"
        "13600000003,孙三,,,,00000000000000000007,,\n"
        "13600000004,李四,,,,1000000001,,\n"
    )
    report = import_members(ctx, brand.id, text, skip_invalid=True)
    assert rejected(report) == [(2, "name"), (3, "points"), (5, "points")]
    assert report.committed is True
    sun = member_service.by_phone(ctx, brand.id, "13600000003")
    assert sun.points_balance == 7
