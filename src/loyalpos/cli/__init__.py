"""The `loyalpos` command line (Typer): serve, database, demo, members, points, products.

One module per command group, each holding its Typer `group` (`db`, `brand`,
`member`, `points`, `product`, `rules`, `key`, `webhook`, `user`, `staff`), and one per top-level command
(`demo`, `serve`, `reconcile`, `simulate`, `worker`); `errors` is how
commands fail (the JSON error shape, exit 1) and `common` what the commands
share. This module assembles them into `app`; `main` is the console script.

Each command imports the service modules it calls inside its body, so that
`loyalpos --help`, and any one command, loads only what it uses: starting the
command line costs what the single-file CLI of 0.1 did. Only what Typer reads
when the app is built (an option's type, e.g. `Scope`) is imported at the top.
"""

from __future__ import annotations

import os

import typer

from loyalpos.cli import (
    brand,
    db,
    demo,
    key,
    member,
    points,
    product,
    reconcile,
    rules,
    serve,
    simulate,
    staff,
    user,
    webhook,
    worker,
)

__all__ = ["app", "main"]

app = typer.Typer(help="loyalpos: member-aware checkout and loyalty engine", no_args_is_help=True)

# `--help` lists the commands, then the groups, each in the order added here.
app.command()(demo.demo)
app.command()(serve.serve)
app.command("reconcile")(reconcile.reconcile_day)
app.command()(simulate.simulate)
app.command()(worker.worker)
app.add_typer(db.group, name="db")
app.add_typer(brand.group, name="brand")
app.add_typer(member.group, name="member")
app.add_typer(points.group, name="points")
app.add_typer(product.group, name="product")
app.add_typer(rules.group, name="rules")
app.add_typer(key.group, name="key")
app.add_typer(webhook.group, name="webhook")
app.add_typer(user.group, name="user")
app.add_typer(staff.group, name="staff")


def main() -> None:
    """The console script `loyalpos` (pyproject.toml), named so in usage lines.
    PYTHONIOENCODING, unless set, makes the processes it starts (serve's spawned
    workers) write UTF-8 whatever the locale."""
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app(prog_name="loyalpos")
