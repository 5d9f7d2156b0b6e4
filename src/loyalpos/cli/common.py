"""What the commands share: their service context, JSON output, date parsing,
brand lookup, reading a password, and the argument types several groups declare
alike."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from loyalpos.config import get_settings
from loyalpos.service.base.context import Context

BrandOpt = Annotated[str, typer.Option("--brand", "-b", help="brand code")]
InFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
# A rule or simulation document: read by rules/documents.py, so a missing file, a
# directory or an unreadable one answers the documented JSON error, not a usage text.
DocFile = Annotated[Path, typer.Argument(help="YAML or JSON file")]


def service_context() -> Context:
    """The services' context from the settings; a SQLite file's folder is made
    first, so the first command on a fresh checkout does not fail to open it."""
    settings = get_settings()
    if settings.database_url.startswith("sqlite:///") and ":memory:" not in settings.database_url:
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    return Context.from_settings(settings)


def print_json(data: Any) -> None:
    """Print a result as indented JSON for people and scripts alike: Chinese text
    as it is (not \\u escapes), dates and times (which JSON lacks) as their str()."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def parse_date(text: str | None, option: str) -> date | None:
    """A YYYY-MM-DD option as a date (None when not given); anything else is a
    usage error naming the option (exit 2), like Typer's own type errors."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


def brand_id_by_code(ctx: Context, code: str) -> int:
    """The id of the brand an operator names by code (--brand); an unknown code
    is the service's `brand_not_found` error."""
    from loyalpos.service.base import brands

    return brands.brand_by_code(ctx, code).id


def read_secret(label: str, from_stdin: bool) -> str:
    """A password or PIN: the first line of standard input (`--password-stdin`,
    for scripts), or typed twice at a prompt that does not echo it. Never an
    option's value, which would stay in the shell's history and `ps`."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(label, hide_input=True, confirmation_prompt=True))
