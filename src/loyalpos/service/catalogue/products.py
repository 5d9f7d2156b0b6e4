"""Products of a brand and the brand's scale-label layouts.

A product is named in its brand by its sku; its barcode, when it has one, is
unique in the brand too (a partial unique index). Every read and write filters on
the brand, so a product of another brand is "not found", never shown. Prices are
integer fen: per piece, or per kilogram for a product sold by weight (`unit`
"kg"), priced at the till from a scale label (scan.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from loyalpos.characters import SINGLE_LINE
from loyalpos.db.tables import products, scale_layouts
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.scanning import ScaleLayout, check_layouts
from loyalpos.service.base.brands import load_brand
from loyalpos.service.base.context import Context

MAX_PRICE_FEN = 100_000_000
"""¥1,000,000: more is a typing slip (an extra zero or two), not a product."""
MAX_SEARCH = 200
LENGTHS = {"sku": 64, "name": 200, "category": 64, "barcode": 64}


class Unit(StrEnum):
    PIECE = "piece"
    KG = "kg"


@dataclass(frozen=True, slots=True)
class ProductInput:
    """A product as given (the CSV, the CLI, the HQ console); `check` tells what
    is wrong with it, by field, before anything is written."""

    sku: str
    name: str
    price_fen: int
    category: str = ""
    barcode: str | None = None
    unit: Unit = Unit.PIECE
    active: bool = True

    def check(self) -> None:
        for column in ("sku", "name", "category", "barcode"):
            value = getattr(self, column)
            if value is None:
                continue
            if column in ("sku", "name") and not value:
                raise _bad(column, "required")
            if len(value) > LENGTHS[column]:
                raise _bad(column, f"longer than {LENGTHS[column]} characters")
            if value != value.strip():
                raise _bad(column, "surrounding spaces")
            try:
                SINGLE_LINE.check(value)
            except ValueError as exc:
                raise _bad(column, str(exc)) from None
        if self.barcode is not None and (not self.barcode or " " in self.barcode):
            raise _bad("barcode", "a barcode has no spaces")
        if not 0 <= self.price_fen <= MAX_PRICE_FEN:
            raise _bad("price_fen", f"between 0 and {MAX_PRICE_FEN} fen")


def _bad(column: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"商品字段 {column} 无效 (product {column}: {message})",
        code="invalid_product",
        field=column,
        reason=message,
    )


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    brand_id: int
    sku: str
    name: str
    category: str
    price_fen: int
    barcode: str | None
    unit: Unit
    active: bool
    updated_at: datetime

    def as_input(self) -> ProductInput:
        return ProductInput(
            self.sku,
            self.name,
            self.price_fen,
            self.category,
            self.barcode,
            self.unit,
            self.active,
        )


def _product(row: Any) -> Product:
    return Product(
        id=row.id,
        brand_id=row.brand_id,
        sku=row.sku,
        name=row.name,
        category=row.category,
        price_fen=row.price_fen,
        barcode=row.barcode,
        unit=Unit(row.unit),
        active=bool(row.active),
        updated_at=row.updated_at,
    )


def _values(item: ProductInput) -> dict[str, Any]:
    return {
        "sku": item.sku,
        "name": item.name,
        "category": item.category,
        "price_fen": item.price_fen,
        "barcode": item.barcode,
        "unit": item.unit.value,
        "active": item.active,
    }


def _by(conn: Connection, brand_id: int, *where: Any) -> Product | None:
    row = conn.execute(select(products).where(products.c.brand_id == brand_id, *where)).first()
    return _product(row) if row is not None else None


def _not_found(what: str) -> NotFound:
    return NotFound(f"未找到商品 (no product with this {what})", code="product_not_found", key=what)


def upsert(ctx: Context, brand_id: int, item: ProductInput, now: datetime | None = None) -> Product:
    """Create the product of this sku or change it to `item`; `updated_at` moves
    only when something changed. A barcode another sku holds is a conflict."""
    item.check()
    at = ctx.now(now)
    try:
        with ctx.transaction() as conn:
            load_brand(conn, brand_id)
            return write(conn, brand_id, item, at)
    except IntegrityError:
        raise changed_meanwhile() from None


def changed_meanwhile() -> Conflict:
    """Another writer took the sku or the barcode between our check and our write
    (the unique indexes caught it): nothing was written, trying again is safe."""
    return Conflict(
        "商品目录刚被修改，请重试 (the catalogue changed meanwhile; nothing was written, try again)",
        code="catalogue_changed",
    )


def write(conn: Connection, brand_id: int, item: ProductInput, now: datetime) -> Product:
    """`upsert` inside the caller's transaction (the importer's), `item` checked."""
    if item.barcode is not None:
        holder = _by(conn, brand_id, products.c.barcode == item.barcode)
        if holder is not None and holder.sku != item.sku:
            raise Conflict(
                f"条码 {item.barcode} 已属于商品 {holder.sku} "
                f"(barcode {item.barcode} belongs to product {holder.sku})",
                code="barcode_taken",
                barcode=item.barcode,
                sku=holder.sku,
            )
    found = _by(conn, brand_id, products.c.sku == item.sku)
    if found is None:
        conn.execute(insert(products).values(brand_id=brand_id, updated_at=now, **_values(item)))
    elif found.as_input() != item:
        conn.execute(
            update(products)
            .where(products.c.id == found.id)
            .values(updated_at=now, **_values(item))
        )
    else:
        return found
    product = _by(conn, brand_id, products.c.sku == item.sku)
    assert product is not None
    return product


def by_sku(ctx: Context, brand_id: int, sku: str) -> Product:
    with ctx.transaction(read_only=True) as conn:
        found = _by(conn, brand_id, products.c.sku == sku)
    if found is None:
        raise _not_found("sku")
    return found


def by_barcode(ctx: Context, brand_id: int, barcode: str) -> Product:
    with ctx.transaction(read_only=True) as conn:
        found = _by(conn, brand_id, products.c.barcode == barcode)
    if found is None:
        raise _not_found("barcode")
    return found


def find_code(conn: Connection, brand_id: int, code: str, *, active_only: bool) -> Product | None:
    """The product a scanned or typed code names: its barcode first, then its sku
    (a shop's own short codes are often the sku)."""
    live = (products.c.active.is_(True),) if active_only else ()
    return _by(conn, brand_id, products.c.barcode == code, *live) or _by(
        conn, brand_id, products.c.sku == code, *live
    )


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search(
    ctx: Context,
    brand_id: int,
    prefix: str = "",
    *,
    limit: int = 20,
    include_inactive: bool = False,
) -> list[Product]:
    """Products whose name or sku starts with `prefix` (the sku without regard to
    case), by sku, at most `limit` (1 to MAX_SEARCH); all of them for ''."""
    if not 1 <= limit <= MAX_SEARCH:
        raise InvalidInput(
            f"limit 须在 1 到 {MAX_SEARCH} 之间 (limit is 1 to {MAX_SEARCH})",
            code="invalid_limit",
        )
    query = select(products).where(products.c.brand_id == brand_id)
    if prefix:
        pattern = _like_prefix(prefix)
        query = query.where(
            or_(
                products.c.name.like(pattern, escape="\\"),
                func.lower(products.c.sku).like(pattern.lower(), escape="\\"),
            )
        )
    if not include_inactive:
        query = query.where(products.c.active.is_(True))
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(query.order_by(products.c.sku).limit(limit)).all()
    return [_product(r) for r in rows]


def all_products(conn: Connection, brand_id: int) -> dict[str, Product]:
    """The brand's products by sku (the importer compares a file with them)."""
    rows = conn.execute(select(products).where(products.c.brand_id == brand_id)).all()
    return {r.sku: _product(r) for r in rows}


# --- scale-label layouts ------------------------------------------------------


def _layout(row: Any) -> ScaleLayout:
    return ScaleLayout(row.name, tuple(row.flags.split(",")), row.pattern)


def layouts_in(conn: Connection, brand_id: int) -> tuple[ScaleLayout, ...]:
    rows = conn.execute(
        select(scale_layouts)
        .where(scale_layouts.c.brand_id == brand_id)
        .order_by(scale_layouts.c.name)
    ).all()
    return tuple(_layout(r) for r in rows)


def layouts(ctx: Context, brand_id: int) -> tuple[ScaleLayout, ...]:
    """The brand's scale-label layouts, by name."""
    with ctx.transaction(read_only=True) as conn:
        return layouts_in(conn, brand_id)


def set_layouts(
    ctx: Context, brand_id: int, new: list[ScaleLayout], now: datetime | None = None
) -> tuple[ScaleLayout, ...]:
    """Replace the brand's layouts with `new`, checked together first (names
    unique, no label two layouts both read)."""
    check_layouts(new)
    at = ctx.now(now)
    with ctx.transaction() as conn:
        load_brand(conn, brand_id)
        conn.execute(delete(scale_layouts).where(scale_layouts.c.brand_id == brand_id))
        for layout in new:
            conn.execute(
                insert(scale_layouts).values(
                    brand_id=brand_id,
                    name=layout.name,
                    flags=",".join(layout.flags),
                    pattern=layout.pattern,
                    updated_at=at,
                )
            )
        return layouts_in(conn, brand_id)


def layouts_from_data(data: Any) -> list[ScaleLayout]:
    """Layouts from a document's `layouts:` list of {name, flags, pattern} (the
    CLI's file, the demo), each validated; flags a list or a comma-separated text."""
    items = data.get("layouts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InvalidInput(
            "需要 layouts 列表 (a `layouts:` list of {name, flags, pattern} is needed)",
            code="invalid_scale_layout",
        )
    found: list[ScaleLayout] = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"name", "flags", "pattern"}:
            raise InvalidInput(
                "每个格式须有且仅有 name, flags, pattern "
                "(each layout has exactly name, flags and pattern)",
                code="invalid_scale_layout",
            )
        flags = item["flags"]
        if isinstance(flags, str):
            flags = [f.strip() for f in flags.split(",")]
        if not isinstance(flags, list) or not all(isinstance(f, str | int) for f in flags):
            raise InvalidInput("flags 须为列表 (flags is a list)", code="invalid_scale_layout")
        name, pattern = item["name"], item["pattern"]
        if not isinstance(name, str) or not isinstance(pattern, str):
            raise InvalidInput(
                "name 与 pattern 须为文本 (name and pattern are text)",
                code="invalid_scale_layout",
            )
        found.append(ScaleLayout(name, tuple(str(f) for f in flags), pattern))
    return found
