"""Import members and opening balances from a previous system (CSV).

Columns (header row required, UTF-8, extra columns ignored):
`phone,name,birthday,card_no,tier,points,expires_on,wechat_openid`; only phone
and name are required. A phone may appear on several rows: the first row makes
the member, each row with points opens one lot with its own expiry date.

Every row is checked first and every problem is reported with its line number.
Nothing is half-imported: by default one bad row refuses the whole file; with
`skip_invalid` the good rows go in, in one transaction, and the bad ones are
listed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Connection, select

from loyalpos.db.tables import members
from loyalpos.domain import member_code
from loyalpos.domain.errors import DomainError
from loyalpos.domain.ledger import EntryKind
from loyalpos.service.base.brands import Brand, load_brand
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty.members import Identity, _bind, insert_member
from loyalpos.service.loyalty.phones import normalise_phone
from loyalpos.service.loyalty.points import MAX_POINTS_PER_ENTRY, Source, credit

REQUIRED = ("phone", "name")
MAX_FILE_BYTES = 100_000_000
"""The largest CSV `loyalpos member import` reads (about a million members); a larger
file is refused before it is read, as a split into several imports is."""


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    field: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    members: int = 0
    lots: int = 0
    points: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    committed: bool = False


@dataclass
class _Row:
    line: int
    phone: str
    name: str
    birthday: date | None
    card_no: str | None
    tier: str
    points: int
    expires_on: date | None
    openid: str | None


class _RowError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _date(raw: str, column: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _RowError(column, f"not a date (YYYY-MM-DD): {raw!r}") from None


def _parse(line: int, raw: dict[str, str], ctx: Context, today: date) -> _Row:
    values = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
    for column, value in values.items():
        if "\x00" in value:
            raise _RowError(column, "contains a NUL character")
    for column in REQUIRED:
        if not values.get(column):
            raise _RowError(column, "required")
    try:
        phone = normalise_phone(values["phone"], ctx.settings.default_region)
    except DomainError as exc:
        raise _RowError("phone", exc.message) from None
    points_text = values.get("points", "") or "0"
    if not points_text.isdecimal():  # isdigit() lets "²" through to int()
        raise _RowError("points", f"not a whole number of points: {points_text!r}")
    if len(points_text.lstrip("0")) > len(str(MAX_POINTS_PER_ENTRY)):
        raise _RowError("points", "too large")  # before int(), which refuses 4300+ digits
    points = int(points_text)
    if points > MAX_POINTS_PER_ENTRY:
        raise _RowError("points", "too large")
    birthday = _date(values.get("birthday", ""), "birthday")
    if birthday is not None and not date(1900, 1, 1) <= birthday <= today:
        raise _RowError("birthday", "not a plausible birthday")
    expires_on = _date(values.get("expires_on", ""), "expires_on")
    if expires_on is not None and expires_on <= today:
        raise _RowError("expires_on", f"already lapsed on {expires_on.isoformat()}")
    card_no = values.get("card_no") or None
    if card_no is not None and not member_code.is_card_number(card_no):
        raise _RowError("card_no", "not a 16-digit card number with a valid check digit")
    name = values["name"]
    if len(name) > 100:
        raise _RowError("name", "longer than 100 characters")
    return _Row(
        line,
        phone,
        name,
        birthday,
        card_no,
        values.get("tier") or "normal",
        points,
        expires_on,
        values.get("wechat_openid") or None,
    )


def _check_against_db(
    conn: Connection, brand_id: int, rows: list[_Row], report: ImportReport
) -> list[_Row]:
    good: list[_Row] = []
    first_of: dict[str, _Row] = {}
    cards: dict[str, str] = {}
    for row in rows:
        problem: tuple[str, str] | None = None
        first = first_of.get(row.phone)
        if (
            first is None
            and conn.execute(
                select(members.c.id).where(
                    members.c.brand_id == brand_id, members.c.phone == row.phone
                )
            ).first()
        ):
            problem = ("phone", "already a member in this brand")
        elif first is not None and row.name != first.name:
            problem = ("name", f"differs from line {first.line} for the same phone")
        elif row.card_no and cards.get(row.card_no, row.phone) != row.phone:
            problem = ("card_no", "used by another row")
        elif (
            row.card_no
            and first is None
            and conn.execute(
                select(members.c.id).where(
                    members.c.brand_id == brand_id, members.c.card_no == row.card_no
                )
            ).first()
        ):
            problem = ("card_no", "already in use in this brand")
        if problem:
            report.rejected.append(Rejected(row.line, *problem))
            continue
        first_of.setdefault(row.phone, row)
        if row.card_no:
            cards[row.card_no] = row.phone
        good.append(row)
    return good


def import_members(
    ctx: Context,
    brand_id: int,
    text: str,
    *,
    skip_invalid: bool = False,
    operator: str = "import",
    now: datetime | None = None,
) -> ImportReport:
    at = ctx.now(now)
    report = ImportReport()
    with ctx.transaction() as conn:
        brand = load_brand(conn, brand_id)
        today = brand.local_date(at)
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        missing = [
            c for c in REQUIRED if c not in [f.strip().lower() for f in reader.fieldnames or []]
        ]
        if missing:
            report.rejected.append(Rejected(1, ",".join(missing), "missing column in header"))
            return report
        parsed: list[_Row] = []
        for line, raw in enumerate(reader, start=2):
            report.rows += 1
            try:
                parsed.append(_parse(line, raw, ctx, today))
            except _RowError as exc:
                report.rejected.append(Rejected(line, exc.column, exc.message))
        good = _check_against_db(conn, brand_id, parsed, report)
        report.rejected.sort(key=lambda r: r.line)
        if report.rejected and not skip_invalid:
            return report
        _write(conn, brand, good, operator, at, report)
        report.committed = True
    return report


def _write(
    conn: Connection,
    brand: Brand,
    rows: list[_Row],
    operator: str,
    now: datetime,
    report: ImportReport,
) -> None:
    member_ids: dict[str, int] = {}
    for row in rows:
        if row.phone not in member_ids:
            member = insert_member(
                conn,
                brand.id,
                phone=row.phone,
                name=row.name,
                now=now,
                birthday=row.birthday,
                tier=row.tier,
                card_no=row.card_no,
            )
            member_ids[row.phone] = member.id
            report.members += 1
            if row.openid:
                _bind(conn, brand.id, member.id, Identity("wechat", "openid", row.openid), now)
        if row.points:
            source = Source(
                "import",
                f"import:line{row.line}",
                "期初积分导入 (opening balance from previous system)",
                operator=operator,
                reason="opening balance",
            )
            credit(
                conn,
                brand,
                member_ids[row.phone],
                row.points,
                EntryKind.ADJUST,
                source,
                now,
                expires_on=row.expires_on,
                pending=False,
            )
            report.lots += 1
            report.points += row.points
