"""`loyalpos demo`: the demo brand, and its API keys and accounts printed for a
first try."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from loyalpos.cli.common import service_context
from loyalpos.cli.db import upgrade_to_head
from loyalpos.cli.errors import guarded

if TYPE_CHECKING:  # annotations only: the command line starts without it
    from loyalpos.service.base.context import Context


@guarded
def demo() -> None:
    """Seed the demo brand (two stores, members with points, demo keys and accounts);
    safe to repeat."""
    from loyalpos.service.admin.demo import seed

    ctx = service_context()
    upgrade_to_head(ctx)
    brand = seed(ctx)
    typer.echo(f"demo brand {brand.code!r} (id {brand.id}) ready")
    print_demo_keys(ctx, brand.id)
    print_demo_accounts(ctx, brand.id)


def print_demo_keys(ctx: Context, brand_id: int) -> None:
    """Print the demo keys still live, so `demo` and `serve` show a key to try
    the API with (none in production, where `seed` makes none)."""
    from loyalpos.service.admin.demo import demo_keys

    found = demo_keys(ctx, brand_id)
    if found:
        typer.echo("demo API keys (send as 'Authorization: Bearer <key>'):")
    for name, raw in found:
        typer.echo(f"  {name:<20} {raw}")


def print_demo_accounts(ctx: Context, brand_id: int) -> None:
    """Print the demo users and cashiers still on their demo password or PIN, after
    the keys (none in production, where `seed` makes none)."""
    from loyalpos.service.admin.demo import DEMO_CODE, demo_accounts

    found = demo_accounts(ctx, brand_id)
    if found.users:
        typer.echo(f"demo HQ users (brand {DEMO_CODE!r}; login / password / role):")
    for login, role, password in found.users:
        typer.echo(f"  {login:<20} {password:<16} {role}")
    if found.staff:
        typer.echo("demo cashiers (store / staff number / PIN):")
    for store, number, pin in found.staff:
        typer.echo(f"  {store:<8} {number:<11} {pin}")
