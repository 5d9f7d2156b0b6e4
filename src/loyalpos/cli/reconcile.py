"""`loyalpos reconcile`: a store day's POS figures against the orders booked (对账)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from loyalpos.cli.common import (
    BrandOpt,
    InFile,
    brand_id_by_code,
    parse_date,
    print_json,
    service_context,
)
from loyalpos.cli.errors import guarded
from loyalpos.domain.errors import InvalidInput


@guarded
def reconcile_day(
    brand: BrandOpt,
    store: Annotated[str, typer.Option("--store", "-s", help="store code")],
    file: InFile,
    day: Annotated[
        str | None, typer.Option("--date", help="local day YYYY-MM-DD (default: the file's)")
    ] = None,
) -> None:
    """Reconcile (对账) a store day: FILE.json holds the POS's figures
    (order_count, amount_fen, tenders, optional orders); prints the differences."""
    # Imported here: the API's request model (and FastAPI with it) is needed by
    # this command only; the file is checked exactly as POST .../reconcile checks it.
    from loyalpos.api.till.schemas import ReconcileIn
    from loyalpos.service.till import reconcile

    data = read_report(file)
    chosen = parse_date(day, "--date")
    if chosen is not None:
        data["date"] = chosen.isoformat()
    elif "date" not in data:
        raise typer.BadParameter('give --date or a "date" in the file', param_hint="--date")
    try:
        report = ReconcileIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None
    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    found = reconcile.reconcile_day(
        ctx, bid, reconcile.store_id_by_code(ctx, bid, store), report.date, report.pos_day()
    )
    print_json(reconcile.as_dict(found))


def read_report(file: Path) -> dict[str, Any]:
    """The POS's JSON object; a file that is not one is the `invalid_file` error,
    before the database is opened."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{file} is not JSON: {exc}", code="invalid_file") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{file} must hold a JSON object", code="invalid_file")
    return data
