"""`loyalpos brand`: brands (品牌) with their points policy, and their stores (门店)."""

from __future__ import annotations

from typing import Annotated

import typer

from loyalpos.cli.common import BrandOpt, brand_id_by_code, print_json, service_context
from loyalpos.cli.errors import guarded
from loyalpos.domain.calendar import Period
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy

group = typer.Typer(help="Brands (品牌) and stores (门店)", no_args_is_help=True)


@group.command("create")
@guarded
def brand_create(
    code: str,
    name: str,
    timezone: str = "Asia/Shanghai",
    expiry: Annotated[ExpiryMode, typer.Option(help="none, fixed or rolling")] = ExpiryMode.NONE,
    months: int | None = None,
    period: Period | None = None,
    periods_later: int = 0,
    birthday_months: int = 0,
    pending_days: int = 0,
    allow_negative: bool = False,
) -> None:
    """Create a brand with its points policy."""
    from loyalpos.service.base import brands

    ctx = service_context()
    policy = ExpiryPolicy(expiry, months, period, periods_later, birthday_months)
    b = brands.create_brand(
        ctx,
        code,
        name,
        timezone=timezone,
        policy=policy,
        pending_days=pending_days,
        allow_negative_balance=allow_negative,
    )
    print_json({"id": b.id, "code": b.code, "name": b.name})


@group.command("list")
@guarded
def brand_list() -> None:
    """List brands and their stores."""
    from loyalpos.service.base import brands

    ctx = service_context()
    print_json(
        [
            {
                "id": b.id,
                "code": b.code,
                "name": b.name,
                "timezone": b.timezone,
                "expiry": b.policy.mode.value,
                "stores": [
                    {"id": s.id, "code": s.code, "name": s.name}
                    for s in brands.list_stores(ctx, b.id)
                ],
            }
            for b in brands.list_brands(ctx)
        ]
    )


@group.command("add-store")
@guarded
def store_create(brand: BrandOpt, code: str, name: str) -> None:
    """Add a store to a brand."""
    from loyalpos.service.base import brands

    ctx = service_context()
    s = brands.create_store(ctx, brand_id_by_code(ctx, brand), code, name)
    print_json({"id": s.id, "code": s.code, "name": s.name})
