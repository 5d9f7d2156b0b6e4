"""Import a brand's products from CSV.

Columns (header row required, UTF-8, a byte-order mark allowed, extra columns
ignored): `sku,name,category,price_fen,barcode,unit`; sku, name and price_fen are
required, unit is `piece` (the default) or `kg` (price_fen is then per
kilogram). Limits in the style of rules/documents.py, checked before the work:
at most `MAX_FILE_BYTES` bytes (the CLI reads no more) and `MAX_ROWS` rows.

The whole file or nothing: every row is checked first, against the file (a sku
or a barcode twice) and against the brand's catalogue (a barcode another
product holds), and every problem is reported with its line number; one bad row
refuses the file. A good file creates the new skus and changes the changed ones
in one transaction, each row's product active; products the file does not name
are left as they are.
Importing the same file again changes nothing (`unchanged` counts them), so a
re-import after a fix, or a nightly export from the ERP, is safe.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from loyalpos.db.tables import products
from loyalpos.domain.errors import DomainError, InvalidInput
from loyalpos.service.base.brands import load_brand
from loyalpos.service.base.context import Context
from loyalpos.service.catalogue.products import (
    ProductInput,
    Unit,
    all_products,
    changed_meanwhile,
    write,
)

COLUMNS = ("sku", "name", "category", "price_fen", "barcode", "unit")
REQUIRED = ("sku", "name", "price_fen")
MAX_FILE_BYTES = 20_000_000
"""The largest CSV `loyalpos product import` reads (~200,000 products)."""
MAX_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    field: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    committed: bool = False


class _RowError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _parse(raw: dict[str | None, str | list[str] | None]) -> ProductInput:
    values: dict[str, str] = {}
    for key, value in raw.items():
        if key is None:  # more cells than the header names
            raise _RowError("", "more cells than columns")
        values[key.strip().lower()] = value.strip() if isinstance(value, str) else ""
    for column in REQUIRED:
        if not values.get(column):
            raise _RowError(column, "required")
    price_text = values["price_fen"]
    if not price_text.isdecimal() or not price_text.isascii() or len(price_text) > 12:
        raise _RowError("price_fen", f"not a whole number of fen: {price_text!r}")
    unit_text = values.get("unit") or Unit.PIECE.value
    try:
        unit = Unit(unit_text.lower())
    except ValueError:
        raise _RowError("unit", f"piece or kg, not {unit_text!r}") from None
    item = ProductInput(
        sku=values["sku"],
        name=values["name"],
        price_fen=int(price_text),
        category=values.get("category", ""),
        barcode=values.get("barcode") or None,
        unit=unit,
    )
    try:
        item.check()
    except DomainError as exc:
        raise _RowError(str(exc.detail.get("field", "")), str(exc.detail.get("reason"))) from None
    return item


def import_products(
    ctx: Context, brand_id: int, text: str, now: datetime | None = None
) -> ImportReport:
    """Check every row of `text`, then write all of them or none (module docstring)."""
    if len(text) > MAX_FILE_BYTES and len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise InvalidInput(
            f"文件超过 {MAX_FILE_BYTES} 字节 (larger than {MAX_FILE_BYTES} bytes)",
            code="too_large",
            limit="bytes",
            max=MAX_FILE_BYTES,
        )
    at = ctx.now(now)
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [f.strip().lower() for f in reader.fieldnames or []]
    except csv.Error as exc:
        report.rejected.append(Rejected(1, "", f"not CSV: {exc}"))
        return report
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        report.rejected.append(Rejected(1, ",".join(missing), "missing column in header"))
        return report
    parsed: list[tuple[int, ProductInput]] = []
    try:
        for raw in reader:
            line = reader.line_num
            report.rows += 1
            if report.rows > MAX_ROWS:
                raise InvalidInput(
                    f"超过 {MAX_ROWS} 行 (more than {MAX_ROWS} rows); 请分批导入 (split the file)",
                    code="too_large",
                    limit="rows",
                    max=MAX_ROWS,
                )
            try:
                parsed.append((line, _parse(raw)))
            except _RowError as exc:
                report.rejected.append(Rejected(line, exc.column, exc.message))
    except csv.Error as exc:
        report.rejected.append(Rejected(reader.line_num, "", f"not CSV: {exc}"))
        return report
    _check_file(parsed, report)
    try:
        _write(ctx, brand_id, parsed, report, at)
    except IntegrityError:
        raise changed_meanwhile() from None
    return report


def _write(
    ctx: Context,
    brand_id: int,
    parsed: list[tuple[int, ProductInput]],
    report: ImportReport,
    at: datetime,
) -> None:
    with ctx.transaction() as conn:
        load_brand(conn, brand_id)
        existing = all_products(conn, brand_id)
        in_file = {item.sku for _, item in parsed}
        holders = {p.barcode: p for p in existing.values() if p.barcode is not None}
        for line, item in parsed:
            if item.barcode is None:
                continue
            holder = holders.get(item.barcode)
            if holder is not None and holder.sku != item.sku and holder.sku not in in_file:
                report.rejected.append(
                    Rejected(line, "barcode", f"already the barcode of product {holder.sku}")
                )
        report.rejected.sort(key=lambda r: r.line)
        if report.rejected:
            return
        # Barcodes moving between skus of the file: free them all first, so the
        # unique index never sees one barcode on two rows mid-way.
        moving = [
            existing[item.sku].id
            for _, item in parsed
            if item.sku in existing and existing[item.sku].barcode != item.barcode
        ]
        for chunk in range(0, len(moving), 500):
            conn.execute(
                update(products)
                .where(products.c.id.in_(moving[chunk : chunk + 500]))
                .values(barcode=None)
            )
        for _, item in parsed:
            before = existing.get(item.sku)
            write(conn, brand_id, item, at)
            if before is None:
                report.created += 1
            elif before.as_input() == item:
                report.unchanged += 1
            else:
                report.updated += 1
        report.committed = True


def _check_file(parsed: list[tuple[int, ProductInput]], report: ImportReport) -> None:
    skus: dict[str, int] = {}
    barcodes: dict[str, int] = {}
    for line, item in parsed:
        if item.sku in skus:
            report.rejected.append(Rejected(line, "sku", f"also on line {skus[item.sku]}"))
        skus.setdefault(item.sku, line)
        if item.barcode is not None:
            if item.barcode in barcodes:
                report.rejected.append(
                    Rejected(line, "barcode", f"also on line {barcodes[item.barcode]}")
                )
            barcodes.setdefault(item.barcode, line)
