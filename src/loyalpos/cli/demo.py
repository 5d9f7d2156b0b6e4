"""`loyalpos demo`: the demo brand, and its API keys printed for a first try."""

from __future__ import annotations

import typer

from loyalpos.cli.common import service_context
from loyalpos.cli.db import upgrade_to_head
from loyalpos.cli.errors import guarded
from loyalpos.service.context import Context
from loyalpos.service.demo import demo_keys, seed


@guarded
def demo() -> None:
    """Seed the demo brand (two stores, members with points); safe to repeat."""
    ctx = service_context()
    upgrade_to_head(ctx)
    brand = seed(ctx)
    typer.echo(f"demo brand {brand.code!r} (id {brand.id}) ready")
    print_demo_keys(ctx, brand.id)


def print_demo_keys(ctx: Context, brand_id: int) -> None:
    """Print the demo keys still live, so `demo` and `serve` show a key to try
    the API with (none in production, where `seed` makes none)."""
    found = demo_keys(ctx, brand_id)
    if found:
        typer.echo("demo API keys (send as 'Authorization: Bearer <key>'):")
    for name, raw in found:
        typer.echo(f"  {name:<20} {raw}")
