"""Issuing a coupon to a list of members uploaded as CSV (名单发券), once per list.

The file has one member a line: a phone number or a member id in the first
column (other columns are ignored; a header line such as `phone` or `member_id`
is skipped). Every coupon it issues carries `source_ref` = "csv:" + the SHA-256
of the file's bytes, so uploading the same file again (to the same template)
issues nothing new: each member who already has that coupon is counted as
skipped. A member named twice in one file gets one coupon. Lines that name no
member of the brand are rejected with their line number and the reason; the
others are issued, all in one transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, select

from loyalpos.db.tables import members
from loyalpos.domain.errors import InvalidInput
from loyalpos.service.base.brands import load_brand
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty.coupons import issue_once_in, template_of
from loyalpos.service.loyalty.phones import normalise_phone
from loyalpos.service.rulebook.rulesets import rules_at

MAX_FILE_BYTES = 1_000_000
MAX_ROWS = 20_000
HEADERS = frozenset({"phone", "member_id", "id", "mobile", "手机号", "手机", "会员id", "会员编号"})


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    value: str
    code: str  # not_a_member_key, member_not_found
    message: str


@dataclass
class ListReport:
    source_ref: str
    rows: int = 0
    issued: list[int] = field(default_factory=list)  # member ids given a coupon now
    skipped: list[int] = field(default_factory=list)  # had it from an earlier upload
    duplicates: int = 0  # lines naming a member an earlier line named
    rejected: list[Rejected] = field(default_factory=list)


def source_ref_of(content: bytes) -> str:
    return "csv:" + hashlib.sha256(content).hexdigest()


def _lines(content: bytes) -> list[tuple[int, str]]:
    if not content.strip():
        raise InvalidInput("文件是空的 (the file is empty)", code="list_empty", field="file")
    if len(content) > MAX_FILE_BYTES:
        raise InvalidInput(
            "文件太大 (the file is larger than 1 MB)", code="list_too_large", field="file"
        )
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            "文件不是 UTF-8 编码 (the file is not UTF-8 text)", code="list_not_utf8", field="file"
        ) from None
    found: list[tuple[int, str]] = []
    for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        value = cells[0].strip() if cells else ""
        if not value or (number == 1 and value.lower() in HEADERS):
            continue
        found.append((number, value))
    if len(found) > MAX_ROWS:
        raise InvalidInput(
            f"一次最多 {MAX_ROWS} 行 (at most {MAX_ROWS} lines per file)",
            code="list_too_long",
            field="file",
        )
    return found


def _resolve(
    conn: Connection, ctx: Context, brand_id: int, rows: list[tuple[int, str]], report: ListReport
) -> list[int]:
    """The member ids the lines name, in the file's order; the rest rejected."""
    wanted: list[tuple[int, str, str, str | int]] = []  # line, value, kind, key
    for line, value in rows:
        if value.isascii() and value.isdigit() and len(value) <= 10:
            wanted.append((line, value, "id", int(value)))
            continue
        try:
            wanted.append(
                (line, value, "phone", normalise_phone(value, ctx.settings.default_region))
            )
        except InvalidInput:
            report.rejected.append(
                Rejected(
                    line,
                    value,
                    "not_a_member_key",
                    "既不是手机号也不是会员编号 (neither a phone number nor a member id)",
                )
            )
    ids = [k for _, _, kind, k in wanted if kind == "id"]
    phones = [k for _, _, kind, k in wanted if kind == "phone"]
    known_ids: set[int] = set()
    by_phone: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        known_ids.update(
            int(r.id)
            for r in conn.execute(
                select(members.c.id).where(members.c.brand_id == brand_id, members.c.id.in_(chunk))
            )
        )
    for start in range(0, len(phones), 500):
        chunk_p = phones[start : start + 500]
        by_phone.update(
            (str(r.phone), int(r.id))
            for r in conn.execute(
                select(members.c.id, members.c.phone).where(
                    members.c.brand_id == brand_id, members.c.phone.in_(chunk_p)
                )
            )
        )
    found: list[int] = []
    for line, value, kind, key in wanted:
        member_id = (key if key in known_ids else None) if kind == "id" else by_phone.get(str(key))
        if member_id is None:
            report.rejected.append(
                Rejected(line, value, "member_not_found", "没有这个会员 (no such member)")
            )
            continue
        found.append(int(member_id))
    report.rejected.sort(key=lambda r: r.line)
    return found


def issue_to_list(
    ctx: Context,
    brand_id: int,
    template: str,
    content: bytes,
    *,
    now: datetime | None = None,
) -> ListReport:
    """Issue one coupon of `template` (rules in force) to each member the CSV
    names, once per file's content: see the module's notes."""
    rows = _lines(content)
    ref = source_ref_of(content)
    at = ctx.now(now)

    def run(conn: Connection) -> ListReport:
        report = ListReport(ref, rows=len(rows))  # afresh if the transaction is retried
        brand = load_brand(conn, brand_id)
        doc = template_of(rules_at(conn, ctx, brand_id, at).document, template)
        seen: set[int] = set()
        for member_id in _resolve(conn, ctx, brand_id, rows, report):
            if member_id in seen:
                report.duplicates += 1
                continue
            seen.add(member_id)
            done = issue_once_in(conn, brand_id, member_id, doc, report.source_ref, at, brand.zone)
            (report.issued if done.new else report.skipped).append(member_id)
        return report

    return ctx.run(run)
