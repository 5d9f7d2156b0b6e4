"""`loyalpos staff`: store staff (门店员工) who sign in at a store's tills with their
staff number (工号) and PIN.

PINs are typed at a prompt that does not echo them, or given on standard input
(`--pin-stdin`); they are never printed, and only their argon2 hash is kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from loyalpos.cli.common import (
    BrandOpt,
    brand_id_by_code,
    print_json,
    read_secret,
    service_context,
)
from loyalpos.cli.errors import guarded

if TYPE_CHECKING:  # annotations only: the command line starts without it
    from loyalpos.service.base.context import Context

group = typer.Typer(
    help="Store staff (门店员工): create, list, disable, reset-pin", no_args_is_help=True
)

StoreOpt = Annotated[str, typer.Option("--store", "-s", help="store code")]
PinStdin = Annotated[bool, typer.Option("--pin-stdin", help="read the PIN from standard input")]


def staff_json(p: Any, stores: dict[int, str]) -> dict[str, Any]:
    """A staff member as printed: the store by code, never the PIN or its hash."""
    return {
        "id": p.id,
        "store": stores.get(p.store_id, str(p.store_id)),
        "number": p.number,
        "name": p.name,
        "disabled_at": p.disabled_at,
        "locked_until": p.locked_until,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def _stores(ctx: Context, brand_id: int) -> dict[int, str]:
    from loyalpos.service.base import brands

    return {s.id: s.code for s in brands.list_stores(ctx, brand_id)}


def _staff_id(ctx: Context, brand_id: int, store: str, number: str) -> int:
    from loyalpos.service.admin import staff
    from loyalpos.service.base import brands

    store_id = brands.store_by_code(ctx, brand_id, store).id
    return staff.staff_by_number(ctx, brand_id, store_id, number).id


@group.command("create")
@guarded
def staff_create(
    brand: BrandOpt,
    store: StoreOpt,
    number: Annotated[str, typer.Argument(help="staff number (工号): 1-16 letters or digits")],
    name: Annotated[str, typer.Option(help="the staff member's name")],
    pin_stdin: PinStdin = False,
) -> None:
    """Add a staff member to a store (the PIN: 4-8 digits)."""
    from loyalpos.service.admin import staff
    from loyalpos.service.base import brands

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    store_id = brands.store_by_code(ctx, bid, store).id
    pin = read_secret("PIN", pin_stdin)
    made = staff.create_staff(ctx, bid, store_id, number, name, pin)
    print_json(staff_json(made, _stores(ctx, bid)))


@group.command("list")
@guarded
def staff_list(
    brand: BrandOpt,
    store: Annotated[str | None, typer.Option("--store", "-s", help="one store's only")] = None,
) -> None:
    """List the brand's staff (or one store's), disabled ones included."""
    from loyalpos.service.admin import staff
    from loyalpos.service.base import brands

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    store_id = None if store is None else brands.store_by_code(ctx, bid, store).id
    stores = _stores(ctx, bid)
    print_json([staff_json(p, stores) for p in staff.list_staff(ctx, bid, store_id)])


@group.command("disable")
@guarded
def staff_disable(brand: BrandOpt, store: StoreOpt, number: str) -> None:
    """Disable a staff member: signing in at a till is refused from now on."""
    from loyalpos.service.admin import staff

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    done = staff.disable_staff(ctx, bid, _staff_id(ctx, bid, store, number))
    print_json(staff_json(done, _stores(ctx, bid)))


@group.command("reset-pin")
@guarded
def staff_reset_pin(
    brand: BrandOpt, store: StoreOpt, number: str, pin_stdin: PinStdin = False
) -> None:
    """Give a staff member a new PIN; a lockout for wrong PINs ends with it."""
    from loyalpos.service.admin import staff

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    staff_id = _staff_id(ctx, bid, store, number)
    pin = read_secret("New PIN", pin_stdin)
    done = staff.reset_pin(ctx, bid, staff_id, pin)
    print_json(staff_json(done, _stores(ctx, bid)))
