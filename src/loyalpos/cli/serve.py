"""`loyalpos serve`: the API server, with the schema upgraded and the demo seeded."""

from __future__ import annotations

from typing import Annotated

import typer

from loyalpos.cli.common import service_context
from loyalpos.cli.db import upgrade_to_head
from loyalpos.cli.demo import print_demo_accounts, print_demo_keys
from loyalpos.cli.errors import guarded


@guarded
def serve(
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="processes; on Linux each gets a fair share of connections")
    ] = 1,
    with_demo: Annotated[bool, typer.Option("--demo/--no-demo")] = True,
    log_level: str = "info",
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log")] = True,
) -> None:
    """Upgrade the database, seed the demo brand, and serve the API."""
    from loyalpos.service.admin.demo import seed

    # Imported here: uvicorn and the API are needed by this command only.
    from loyalpos.serving import Options
    from loyalpos.serving import serve as run_server

    ctx = service_context()
    upgrade_to_head(ctx)
    if with_demo:
        brand_id = seed(ctx).id
        print_demo_keys(ctx, brand_id)
        print_demo_accounts(ctx, brand_id)
    ctx.engine.dispose()
    typer.echo(f"loyalpos on http://{host}:{port}  (API docs: /docs, health: /healthz)")
    try:
        run_server(Options(host, port, workers, log_level, access_log))
    except OSError as exc:  # the port is taken (by another program or loyalpos)
        typer.echo(f"loyalpos: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
