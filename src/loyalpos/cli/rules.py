"""`loyalpos rules`: rule sets (规则) as versioned YAML/JSON documents: import a
draft, publish it from a time, list the versions, export one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from loyalpos.cli.common import BrandOpt, DocFile, brand_id_by_code, print_json, service_context
from loyalpos.cli.errors import guarded

group = typer.Typer(help="Rule sets (规则): import, export, publish", no_args_is_help=True)


def version_json(v: Any) -> dict[str, Any]:
    """What `import` and `publish` print of the version they made or published."""
    return {"version": v.version, "status": v.status.value, "effective_from": v.effective_from}


@group.command("import")
@guarded
def rules_import(
    brand: BrandOpt,
    file: DocFile,
    comment: str = "",
    author: str | None = None,
    publish_now: Annotated[bool, typer.Option("--publish", help="publish it at once")] = False,
    effective_from: Annotated[
        str | None, typer.Option(help="ISO time with zone, e.g. 2025-01-01T00:00:00+08:00")
    ] = None,
) -> None:
    """Save a YAML/JSON rule set as a new draft version (and optionally publish it)."""
    from loyalpos.rules.documents import read_file
    from loyalpos.service.rulebook import rulesets

    text = read_file(file)
    ctx = service_context()
    try:
        bid = brand_id_by_code(ctx, brand)
        v = rulesets.save_draft(ctx, bid, text, author=author, comment=comment)
        if publish_now or effective_from:
            start = datetime.fromisoformat(effective_from) if effective_from else None
            v = rulesets.publish(ctx, bid, v.version, effective_from=start, by=author)
    except ValueError as exc:
        typer.echo(f"bad --effective-from: {exc}", err=True)
        raise typer.Exit(2) from None
    print_json(version_json(v))


@group.command("publish")
@guarded
def rules_publish(
    brand: BrandOpt,
    version: int,
    effective_from: Annotated[str | None, typer.Option(help="ISO time with zone")] = None,
    by: str | None = None,
) -> None:
    """Publish a draft version, in force from --effective-from (default: now)."""
    from loyalpos.service.rulebook import rulesets

    ctx = service_context()
    try:
        start = datetime.fromisoformat(effective_from) if effective_from else None
        v = rulesets.publish(
            ctx, brand_id_by_code(ctx, brand), version, effective_from=start, by=by
        )
    except ValueError as exc:
        typer.echo(f"bad --effective-from: {exc}", err=True)
        raise typer.Exit(2) from None
    print_json(version_json(v))


@group.command("list")
@guarded
def rules_list(brand: BrandOpt) -> None:
    """List a brand's rule set versions."""
    from loyalpos.service.rulebook import rulesets

    ctx = service_context()
    found = rulesets.versions(ctx, brand_id_by_code(ctx, brand))
    print_json(
        [
            {
                "version": v.version,
                "status": v.status.value,
                "effective_from": v.effective_from,
                "comment": v.comment,
                "created_at": v.created_at,
            }
            for v in found
        ]
    )


@group.command("export")
@guarded
def rules_export(
    brand: BrandOpt,
    version: Annotated[int | None, typer.Option(help="default: the version in force now")] = None,
) -> None:
    """Print a rule set version as YAML."""
    from loyalpos.service.rulebook import rulesets

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    number = version if version is not None else rulesets.in_force(ctx, bid)[0]
    if number == 0:
        typer.echo("no rule set is in force for this brand", err=True)
        raise typer.Exit(1)
    typer.echo(rulesets.export_yaml(ctx, bid, number), nl=False)
