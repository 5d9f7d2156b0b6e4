"""`loyalpos key`: API keys (接口密钥) for a store's tills (cashier) or for HQ.

A key's secret is printed once, when it is made; only its hash is kept, so
`list` and `revoke` show the key's prefix and never the secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from loyalpos.cli.common import BrandOpt, brand_id_by_code, print_json, service_context
from loyalpos.cli.errors import guarded
from loyalpos.service.admin.apikeys import Scope

if TYPE_CHECKING:  # annotations only: the command line starts without it
    from loyalpos.service.base.context import Context

group = typer.Typer(help="API keys (接口密钥): create, list, revoke", no_args_is_help=True)


def key_json(k: Any, stores: dict[int, str]) -> dict[str, Any]:
    """A key as printed, its store by code (as the operator named it), not by id."""
    return {
        "id": k.id,
        "scope": k.scope.value,
        "store": stores.get(k.store_id) if k.store_id is not None else None,
        "name": k.name,
        "prefix": k.prefix,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    }


def store_codes(ctx: Context, brand_id: int) -> dict[int, str]:
    """A brand's store codes by id, for `key_json`."""
    from loyalpos.service.base import brands

    return {s.id: s.code for s in brands.list_stores(ctx, brand_id)}


@group.command("create")
@guarded
def key_create(
    brand: BrandOpt,
    scope: Annotated[Scope, typer.Option(help="cashier (one store) or hq (the whole brand)")],
    name: Annotated[str, typer.Option(help="who or what uses it, e.g. 'SH001 till 1'")],
    store: Annotated[str | None, typer.Option(help="store code; required for cashier")] = None,
) -> None:
    """Create an API key and print it; it is shown this once (only its hash is kept)."""
    from loyalpos.service.admin import apikeys
    from loyalpos.service.base import brands

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    codes = store_codes(ctx, bid)
    store_id = None if store is None else brands.store_by_code(ctx, bid, store).id
    new = apikeys.create_key(ctx, bid, scope, name, store_id=store_id)
    print_json({**key_json(new.key, codes), "key": new.secret})
    typer.echo("store this key now: it cannot be shown again", err=True)


@group.command("list")
@guarded
def key_list(brand: BrandOpt) -> None:
    """List a brand's API keys (never their secrets), revoked ones included."""
    from loyalpos.service.admin import apikeys

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    stores = store_codes(ctx, bid)
    print_json([key_json(k, stores) for k in apikeys.list_keys(ctx, bid)])


@group.command("revoke")
@guarded
def key_revoke(brand: BrandOpt, key_id: int) -> None:
    """Revoke an API key at once; requests with it then answer 401."""
    from loyalpos.service.admin import apikeys

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    print_json(key_json(apikeys.revoke_key(ctx, bid, key_id), store_codes(ctx, bid)))
