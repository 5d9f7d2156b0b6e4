"""`loyalpos product`: the brand's catalogue (商品): CSV import, list, find, what a
scan is, and the scale-label layouts. Output is JSON, like every command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loyalpos.cli.common import BrandOpt, brand_id_by_code, print_json, service_context
from loyalpos.cli.errors import guarded

if TYPE_CHECKING:  # annotations only: the command line starts without them
    from loyalpos.domain.scanning import ScaleLayout
    from loyalpos.service.catalogue.importer import ImportReport
    from loyalpos.service.catalogue.products import Product
    from loyalpos.service.catalogue.scan import ScanResult

group = typer.Typer(
    help="Products (商品): import, list, find, scan, scale layouts", no_args_is_help=True
)

CsvFile = Annotated[Path, typer.Argument(help="CSV file: sku,name,category,price_fen,barcode,unit")]


def product_json(p: Product) -> dict[str, Any]:
    return {
        "sku": p.sku,
        "name": p.name,
        "category": p.category,
        "price_fen": p.price_fen,
        "barcode": p.barcode,
        "unit": p.unit.value,
        "active": p.active,
        "updated_at": p.updated_at,
    }


def import_json(report: ImportReport) -> dict[str, Any]:
    """An import's outcome: counts, and every rejected row with its line and field."""
    return {
        "committed": report.committed,
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": [
            {"line": r.line, "field": r.field, "message": r.message} for r in report.rejected
        ],
    }


def layout_json(layout: ScaleLayout) -> dict[str, Any]:
    return {"name": layout.name, "flags": list(layout.flags), "pattern": layout.pattern}


def scan_json(result: ScanResult) -> dict[str, Any]:
    s = result.scanned
    found: dict[str, Any] = {"kind": s.kind.value, "text": s.text}
    for name in ("code", "wallet", "layout", "reason"):
        value = getattr(s, name)
        if value is not None:
            found[name] = str(value)
    if s.is_item:
        found["product"] = product_json(result.product) if result.product else None
        found["price_fen"] = result.price_fen
        found["weight_g"] = result.weight_g
    return found


@group.command("import")
@guarded
def product_import(brand: BrandOpt, file: CsvFile) -> None:
    """Import products from CSV: the whole file or nothing; the same file again changes nothing."""
    from loyalpos.rules.documents import read_file
    from loyalpos.service.catalogue.importer import MAX_FILE_BYTES, import_products

    text = read_file(file, MAX_FILE_BYTES)  # missing, not UTF-8, too large: the JSON error
    ctx = service_context()
    report = import_products(ctx, brand_id_by_code(ctx, brand), text)
    print_json(import_json(report))
    if not report.committed:
        raise typer.Exit(1)


@group.command("list")
@guarded
def product_list(
    brand: BrandOpt,
    prefix: Annotated[str, typer.Argument(help="start of a name or sku")] = "",
    limit: Annotated[int, typer.Option(help="at most this many (1-200)")] = 50,
    inactive: Annotated[bool, typer.Option(help="include inactive products")] = False,
) -> None:
    """List products by sku, optionally those whose name or sku starts with PREFIX."""
    from loyalpos.service.catalogue import products

    ctx = service_context()
    found = products.search(
        ctx, brand_id_by_code(ctx, brand), prefix, limit=limit, include_inactive=inactive
    )
    print_json([product_json(p) for p in found])


@group.command("find")
@guarded
def product_find(
    brand: BrandOpt,
    sku: Annotated[str | None, typer.Option(help="the product's sku")] = None,
    barcode: Annotated[str | None, typer.Option(help="the product's barcode")] = None,
) -> None:
    """Find one product by --sku or --barcode."""
    from loyalpos.service.catalogue import products

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    if sku is not None and barcode is None:
        print_json(product_json(products.by_sku(ctx, bid, sku)))
    elif barcode is not None and sku is None:
        print_json(product_json(products.by_barcode(ctx, bid, barcode)))
    else:
        typer.echo("give --sku or --barcode", err=True)
        raise typer.Exit(2)


@group.command("scan")
@guarded
def product_scan(
    brand: BrandOpt, text: Annotated[str, typer.Argument(help="what was scanned or typed")]
) -> None:
    """What a scan at the till is (payment code, member, phone, card, item, scale label)."""
    from loyalpos.service.catalogue.scan import scan

    ctx = service_context()
    print_json(scan_json(scan(ctx, brand_id_by_code(ctx, brand), text)))


@group.command("layouts")
@guarded
def product_layouts(
    brand: BrandOpt,
    set_file: Annotated[
        Path | None,
        typer.Option("--set", help="replace them with the `layouts:` of this YAML/JSON file"),
    ] = None,
) -> None:
    """Show the brand's scale-label layouts, or replace them (--set FILE)."""
    from loyalpos.rules.documents import load_text, read_file
    from loyalpos.service.catalogue import products

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    if set_file is None:
        found = products.layouts(ctx, bid)
    else:
        found = products.set_layouts(
            ctx, bid, products.layouts_from_data(load_text(read_file(set_file)))
        )
    print_json([layout_json(layout) for layout in found])
