"""How a command's domain errors and a lost database are printed: one JSON line
on stderr in the API's error shape, `{"error": {"code", "message", "detail"}}`,
and exit 1, so operators and scripts read the same codes the API answers and a
typo in a brand code or a database that is down never ends in a traceback.
Usage errors stay Typer's (its usage text, exit 2).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

import typer

from loyalpos.db.outage import outage
from loyalpos.domain.errors import DatabaseUnavailable, DomainError

F = TypeVar("F", bound=Callable[..., Any])


def fail(exc: DomainError) -> NoReturn:
    """Print a domain error in the error shape and exit 1."""
    typer.echo(
        json.dumps(
            {"error": {"code": exc.code, "message": exc.message, "detail": exc.detail}},
            ensure_ascii=False,
            default=str,
        ),
        err=True,
    )
    raise typer.Exit(1)


def fail_unavailable(down: DatabaseUnavailable) -> NoReturn:
    """Print a lost database in the error shape and exit 1, the driver's first
    line as the reason: at a terminal there is no client to retry, so the
    operator is told why (the API's 503 says when to retry instead)."""
    typer.echo(
        json.dumps(
            {
                "error": {
                    "code": down.code,
                    "message": down.message,
                    "detail": {"reason": down.reason},
                }
            },
            ensure_ascii=False,
        ),
        err=True,
    )
    raise typer.Exit(1)


def guarded(fn: F) -> F:
    """Wrap a command so its domain errors print the error shape and exit 1, so no
    command can end in a traceback for input an operator typed; a database that
    cannot be reached is one line in the same shape, not a traceback. Every
    command is registered through it (beneath `@group.command(...)`)."""

    @functools.wraps(fn)
    def run(*a: Any, **k: Any) -> Any:
        try:
            return fn(*a, **k)
        except DomainError as exc:
            fail(exc)
        except Exception as exc:
            down = outage(exc)
            if down is None:
                raise
            fail_unavailable(down)

    return cast(F, run)
