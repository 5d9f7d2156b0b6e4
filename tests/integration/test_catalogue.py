"""The product catalogue (service/catalogue) on SQLite and PostgreSQL: CSV import
whole or nothing, re-import, brand isolation, scale layouts, scan of each kind,
the demo's catalogue and `loyalpos product`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from loyalpos.cli import app
from loyalpos.db.tables import products as products_table
from loyalpos.domain import member_code
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.scanning import ScaleLayout, ScanKind, Wallet
from loyalpos.service.admin import demo
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.catalogue import products
from loyalpos.service.catalogue.importer import ImportReport, import_products
from loyalpos.service.catalogue.products import ProductInput, Unit
from loyalpos.service.catalogue.scan import scan
from tests.conftest import Clock

HEADER = "sku,name,category,price_fen,barcode,unit\n"
CSV = (
    HEADER + "latte,拿铁,coffee,3200,6901234000016,piece\n"
    "croissant,牛角包,bakery,1800,6901234000047,\n"
    "cookies,散装曲奇,bakery,16800,00101,kg\n"
    "ham,火腿,deli,5000,,kg\n"
    "TEA-1,红茶,tea,1500,,piece\n"
)
PRICE13 = ScaleLayout("price", ("21",), "FFIIIIIVPPPPC")
WEIGHT13 = ScaleLayout("weight", ("22",), "FFIIIIIWWWWWC")
SCALE18 = ScaleLayout("scale18", ("20",), "FFIIIIIPPPPPWWWWWC")


def brand_id(ctx: Context, code: str = "cat") -> int:
    return brands.create_brand(ctx, code, f"Brand {code}").id


def rejected(report: ImportReport) -> list[tuple[int, str]]:
    return [(r.line, r.field) for r in report.rejected]


def product_count(ctx: Context) -> int:
    with ctx.transaction() as conn:
        return int(conn.execute(select(func.count()).select_from(products_table)).scalar_one())


def test_import_then_reimport_changes_nothing(ctx: Context, clock: Clock) -> None:
    b = brand_id(ctx)
    first = import_products(ctx, b, CSV)
    assert first.committed and (first.rows, first.created, first.updated) == (5, 5, 0)
    latte = products.by_sku(ctx, b, "latte")
    assert (latte.name, latte.price_fen, latte.unit, latte.category) == (
        "拿铁",
        3200,
        Unit.PIECE,
        "coffee",
    )
    assert products.by_barcode(ctx, b, "00101").unit is Unit.KG
    clock.now += timedelta(hours=1)
    again = import_products(ctx, b, "\ufeff" + CSV)  # a BOM from Excel changes nothing
    assert again.committed and (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert products.by_sku(ctx, b, "latte").updated_at == latte.updated_at
    changed = import_products(ctx, b, HEADER + "latte,拿铁,coffee,3300,6901234000016,piece\n")
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 0)
    moved = products.by_sku(ctx, b, "latte")
    assert moved.price_fen == 3300 and moved.updated_at > latte.updated_at
    assert product_count(ctx) == 5  # skus the file does not name stay


def test_one_bad_row_refuses_the_whole_file_with_every_problem(ctx: Context) -> None:
    b = brand_id(ctx)
    bad = (
        HEADER + "latte,拿铁,coffee,3200,6901234000016,piece\n"  # 2 fine
        "mocha,,coffee,3200,,piece\n"  # 3 no name
        "flat,馥芮白,coffee,-5,,piece\n"  # 4 negative price
        "flat2,馥芮白,coffee,12.5,,piece\n"  # 5 not fen
        "tea,茶,tea,100,,litre\n"  # 6 unit
        "latte,拿铁2,coffee,3200,,piece\n"  # 7 sku twice
        "milk,牛奶,dairy,900,6901234000016,piece\n"  # 8 barcode twice
        "x\x00y,坏,bad,1,,piece\n"  # 9 control character
        "long,长,x,1,,piece,extra\n"  # 10 more cells than columns
    )
    report = import_products(ctx, b, bad)
    assert not report.committed
    assert rejected(report) == [
        (3, "name"),
        (4, "price_fen"),
        (5, "price_fen"),
        (6, "unit"),
        (7, "sku"),
        (8, "barcode"),
        (9, "sku"),
        (10, ""),
    ]
    assert product_count(ctx) == 0
    missing = import_products(ctx, b, "sku,name\nlatte,拿铁\n")
    assert rejected(missing) == [(1, "price_fen")]


def test_a_barcode_held_by_a_product_outside_the_file_is_refused(ctx: Context) -> None:
    b = brand_id(ctx)
    assert import_products(ctx, b, CSV).committed
    report = import_products(ctx, b, HEADER + "milk,牛奶,dairy,900,6901234000016,piece\n")
    assert rejected(report) == [(2, "barcode")]
    # Two skus of the file swapping barcodes is fine.
    swap = import_products(
        ctx,
        b,
        HEADER + "latte,拿铁,coffee,3200,6901234000047,piece\n"
        "croissant,牛角包,bakery,1800,6901234000016,piece\n",
    )
    assert swap.committed and swap.updated == 2
    assert products.by_barcode(ctx, b, "6901234000016").sku == "croissant"


def test_upsert_and_search(ctx: Context) -> None:
    b = brand_id(ctx)
    assert import_products(ctx, b, CSV).committed
    made = products.upsert(ctx, b, ProductInput("latte-l", "拿铁 大杯", 3600, "coffee"))
    assert made.barcode is None
    with pytest.raises(Conflict) as taken:
        products.upsert(ctx, b, ProductInput("milk", "牛奶", 900, barcode="00101"))
    assert taken.value.code == "barcode_taken"
    with pytest.raises(InvalidInput):
        products.upsert(ctx, b, ProductInput("milk", "牛奶", -1))
    assert [p.sku for p in products.search(ctx, b, "lat")] == ["latte", "latte-l"]
    assert [p.sku for p in products.search(ctx, b, "拿铁")] == ["latte", "latte-l"]
    assert [p.sku for p in products.search(ctx, b, "tea")] == ["TEA-1"]  # sku without case
    assert [p.sku for p in products.search(ctx, b, "%")] == []  # no wildcards
    assert len(products.search(ctx, b, "", limit=2)) == 2
    products.upsert(ctx, b, ProductInput("latte-l", "拿铁 大杯", 3600, "coffee", active=False))
    assert [p.sku for p in products.search(ctx, b, "lat")] == ["latte"]
    assert len(products.search(ctx, b, "lat", include_inactive=True)) == 2
    with pytest.raises(InvalidInput):
        products.search(ctx, b, "", limit=0)


def test_brand_b_products_are_never_found_from_brand_a(ctx: Context) -> None:
    a, b = brand_id(ctx, "a"), brand_id(ctx, "b")
    assert import_products(ctx, b, CSV).committed
    products.set_layouts(ctx, b, [WEIGHT13])
    with pytest.raises(NotFound):
        products.by_sku(ctx, a, "latte")
    with pytest.raises(NotFound):
        products.by_barcode(ctx, a, "6901234000016")
    assert products.search(ctx, a, "") == []
    assert products.layouts(ctx, a) == ()
    found = scan(ctx, a, "6901234000016")
    assert found.kind is ScanKind.GTIN and found.product is None
    label = WEIGHT13.build("22", "00101", weight_g=500)
    assert scan(ctx, a, label).kind is ScanKind.GTIN  # brand A reads no layout
    # The same sku and barcode in brand A are brand A's own.
    assert import_products(ctx, a, CSV).committed
    assert products.by_sku(ctx, a, "latte").brand_id == a


def test_scan_of_each_kind(ctx: Context) -> None:
    b = brand_id(ctx)
    assert import_products(ctx, b, CSV).committed
    products.set_layouts(ctx, b, [PRICE13, WEIGHT13, SCALE18])

    item = scan(ctx, b, "6901234000016\r\n")
    assert (item.kind, item.product and item.product.sku, item.price_fen) == (
        ScanKind.GTIN,
        "latte",
        3200,
    )
    assert scan(ctx, b, "6901234000017").scanned.reason == "check_digit"
    plain = scan(ctx, b, "TEA-1")
    assert (plain.kind, plain.product and plain.product.sku) == (ScanKind.CODE, "TEA-1")
    unknown = scan(ctx, b, "NOPE")
    assert (unknown.kind, unknown.product, unknown.price_fen) == (ScanKind.CODE, None, None)

    weighed = scan(ctx, b, WEIGHT13.build("22", "00101", weight_g=333))
    assert weighed.kind is ScanKind.SCALE_LABEL
    assert weighed.product is not None and weighed.product.sku == "cookies"
    assert (weighed.weight_g, weighed.price_fen) == (333, 5594)  # 333 g × 168.00/kg = 55.944
    priced = scan(ctx, b, PRICE13.build("21", "00101", price_fen=4321))
    assert (priced.product and priced.product.sku, priced.price_fen) == ("cookies", 4321)
    long = scan(ctx, b, SCALE18.build("20", "00101", price_fen=8400, weight_g=500))
    assert (long.kind, long.price_fen, long.weight_g) == (ScanKind.SCALE_LABEL, 8400, 500)
    unknown_label = scan(ctx, b, PRICE13.build("21", "99999", price_fen=1200))
    assert (unknown_label.product, unknown_label.price_fen) == (None, 1200)
    no_weight = scan(ctx, b, "00101")  # a weighed product without a weight: no price
    assert no_weight.product is not None and no_weight.price_fen is None

    assert scan(ctx, b, "134567890123456789").scanned.wallet is Wallet.WECHAT
    assert scan(ctx, b, "2812345678901234").kind is ScanKind.PAYMENT_CODE
    assert scan(ctx, b, "13800138000").kind is ScanKind.PHONE
    card = member_code.card_number_from("812345678901234")
    assert scan(ctx, b, card).kind is ScanKind.CARD
    code = member_code.issue(b"k" * 32, 1, 1_700_000_000)
    assert scan(ctx, b, code).kind is ScanKind.MEMBER_CODE
    assert scan(ctx, b, "").kind is ScanKind.EMPTY


def test_a_scale_label_plu_finds_the_sku_without_leading_zeros(ctx: Context) -> None:
    b = brand_id(ctx)
    products.upsert(ctx, b, ProductInput("42", "散装糖果", 3000, unit=Unit.KG))
    products.set_layouts(ctx, b, [WEIGHT13])
    found = scan(ctx, b, WEIGHT13.build("22", "00042", weight_g=1000))
    assert found.product is not None and found.product.sku == "42"
    assert found.price_fen == 3000


def test_layouts_are_checked_together_and_replaced(ctx: Context) -> None:
    b = brand_id(ctx)
    products.set_layouts(ctx, b, [PRICE13, WEIGHT13])
    with pytest.raises(InvalidInput):
        products.set_layouts(ctx, b, [PRICE13, ScaleLayout("all", ("2",), "FIIIIIIPPPPPC")])
    assert [x.name for x in products.layouts(ctx, b)] == ["price", "weight"]
    assert products.set_layouts(ctx, b, [SCALE18]) == (SCALE18,)
    with pytest.raises(InvalidInput):
        products.layouts_from_data({"layouts": [{"name": "x", "flags": "21"}]})
    assert products.layouts_from_data(
        {"layouts": [{"name": "w", "flags": "22, 23", "pattern": "FFIIIIIWWWWWC"}]}
    ) == [ScaleLayout("w", ("22", "23"), "FFIIIIIWWWWWC")]


def test_the_demo_catalogue_matches_its_rules_and_seeding_stays_idempotent(ctx: Context) -> None:
    brand = demo.seed(ctx)
    skus = {p.sku: p for p in products.search(ctx, brand.id, "", limit=200)}
    assert {"latte", "croissant", "beans", "gift-card", "cookies"} <= set(skus)
    assert {p.category for p in skus.values()} >= {"coffee", "beans", "gift-card"}
    assert skus["cookies"].unit is Unit.KG
    assert len(products.layouts(ctx, brand.id)) == 3
    before = product_count(ctx)
    demo.seed(ctx)
    assert product_count(ctx) == before
    label = demo.DEMO_LAYOUTS[1].build("22", "00101", weight_g=250)
    found = scan(ctx, brand.id, label)
    assert found.product is not None and found.price_fen == 4200


def run(runner: CliRunner, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output, result.exception)
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_cli(runner: CliRunner, ctx: Context, tmp_path: Path) -> None:
    brand_id(ctx, "shop")
    path = tmp_path / "products.csv"
    path.write_text(CSV, encoding="utf-8")
    first = run(runner, "product", "import", "-b", "shop", str(path))
    assert first["committed"] and first["created"] == 5
    again = run(runner, "product", "import", "-b", "shop", str(path))
    assert (again["created"], again["unchanged"]) == (0, 5)
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "x,,c,1,,piece\n", encoding="utf-8")
    refused = run(runner, "product", "import", "-b", "shop", str(bad), code=1)
    assert refused["rejected"] == [{"line": 2, "field": "name", "message": "required"}]
    missing = runner.invoke(app, ["product", "import", "-b", "shop", str(tmp_path / "no.csv")])
    assert missing.exit_code == 1 and "unreadable" in missing.output

    listed = run(runner, "product", "list", "-b", "shop", "lat")
    assert [p["sku"] for p in listed] == ["latte"]
    assert run(runner, "product", "find", "-b", "shop", "--barcode", "00101")["sku"] == "cookies"
    assert run(runner, "product", "find", "-b", "shop", "--sku", "latte")["price_fen"] == 3200
    assert (
        "product_not_found"
        in runner.invoke(app, ["product", "find", "-b", "shop", "--sku", "nope"]).output
    )
    assert runner.invoke(app, ["product", "find", "-b", "shop"]).exit_code == 2

    layouts = tmp_path / "layouts.yaml"
    layouts.write_text(
        "layouts:\n  - {name: weight, flags: ['22'], pattern: FFIIIIIWWWWWC}\n", encoding="utf-8"
    )
    shown = run(runner, "product", "layouts", "-b", "shop", "--set", str(layouts))
    assert shown == [{"name": "weight", "flags": ["22"], "pattern": "FFIIIIIWWWWWC"}]
    assert run(runner, "product", "layouts", "-b", "shop") == shown
    label = WEIGHT13.build("22", "00101", weight_g=1000)
    scanned = run(runner, "product", "scan", "-b", "shop", label)
    assert scanned["kind"] == "scale_label" and scanned["price_fen"] == 16800
    assert run(runner, "product", "scan", "-b", "shop", "134567890123456789") == {
        "kind": "payment_code",
        "text": "134567890123456789",
        "wallet": "wechat",
    }


def test_limits_and_a_concurrent_writer(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    from loyalpos.service.catalogue import importer

    b = brand_id(ctx)
    monkeypatch.setattr(importer, "MAX_ROWS", 2)
    with pytest.raises(InvalidInput) as too_many:
        import_products(ctx, b, CSV)
    assert (too_many.value.code, too_many.value.detail["limit"]) == ("too_large", "rows")
    monkeypatch.undo()
    assert import_products(ctx, b, CSV).committed
    # A sku another writer made after our look (an INSERT that does not look
    # first plays the race): the unique index refuses it, the whole file is rolled
    # back and the caller told why.

    def blind_insert(conn: Any, brand: int, item: ProductInput, now: Any) -> None:
        conn.execute(
            products_table.insert().values(
                brand_id=brand, sku=item.sku, name=item.name, price_fen=1, updated_at=now
            )
        )

    monkeypatch.setattr(importer, "write", blind_insert)
    with pytest.raises(Conflict) as changed:
        import_products(ctx, b, HEADER + "new,新品,x,1,,piece\nlatte,拿铁,coffee,1,,piece\n")
    assert changed.value.code == "catalogue_changed"
    with pytest.raises(NotFound):
        products.by_sku(ctx, b, "new")
