"""`loyalpos db`: the database schema, by Alembic's migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from loyalpos.cli.common import service_context
from loyalpos.cli.errors import guarded

if TYPE_CHECKING:  # annotations only: the command line starts without it
    from loyalpos.service.base.context import Context

group = typer.Typer(help="Database schema (Alembic)", no_args_is_help=True)


@group.command("upgrade")
@guarded
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from loyalpos.db.migrate import upgrade

    upgrade(service_context().engine, revision)
    typer.echo(f"database at {revision}")


def upgrade_to_head(ctx: Context) -> None:
    """Bring the schema up to date before `demo` and `serve` use it, so neither
    needs a `db upgrade` first. Alembic is imported here, when it is needed, not
    by every command."""
    from loyalpos.db.migrate import upgrade

    upgrade(ctx.engine)
