"""`loyalpos user`: HQ users (总部账号) who sign in to the console, with their role.

Passwords are typed at a prompt that does not echo them, or given on standard
input (`--password-stdin`); they are never printed, and only their argon2 hash
is kept. Roles and what each may do: docs/accounts.md."""

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
from loyalpos.domain.accounts import Role

if TYPE_CHECKING:  # annotations only: the command line starts without it
    from loyalpos.service.base.context import Context

group = typer.Typer(
    help="HQ users (总部账号): create, list, disable, reset-password", no_args_is_help=True
)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from standard input")
]


def user_json(u: Any, stores: dict[int, str]) -> dict[str, Any]:
    """A user as printed: its stores by code, never its password hash."""
    return {
        "id": u.id,
        "login": u.login,
        "name": u.display_name,
        "role": u.role.value,
        "stores": sorted(stores.get(s, str(s)) for s in u.store_ids),
        "disabled_at": u.disabled_at,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    }


def store_codes(ctx: Context, brand_id: int) -> dict[int, str]:
    from loyalpos.service.base import brands

    return {s.id: s.code for s in brands.list_stores(ctx, brand_id)}


@group.command("create")
@guarded
def user_create(
    brand: BrandOpt,
    login: Annotated[str, typer.Argument(help="login name: 2-40 of a-z 0-9 . _ @ -")],
    name: Annotated[str, typer.Option(help="the name shown in the console")],
    role: Annotated[Role, typer.Option(help="admin, operator, analyst or store_manager")],
    store: Annotated[
        list[str] | None,
        typer.Option(help="a store a store_manager looks after (code); repeat for more"),
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an HQ user (the password: at least 10 characters, not the login name)."""
    from loyalpos.service.admin import accounts
    from loyalpos.service.base import brands

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    store_ids = [brands.store_by_code(ctx, bid, code).id for code in store or []]
    password = read_secret("Password", password_stdin)
    user = accounts.create_user(ctx, bid, login, name, role, password, store_ids=store_ids)
    print_json(user_json(user, store_codes(ctx, bid)))


@group.command("list")
@guarded
def user_list(brand: BrandOpt) -> None:
    """List a brand's HQ users, disabled ones included."""
    from loyalpos.service.admin import accounts

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    stores = store_codes(ctx, bid)
    print_json([user_json(u, stores) for u in accounts.list_users(ctx, bid)])


@group.command("disable")
@guarded
def user_disable(brand: BrandOpt, login: str) -> None:
    """Disable a user at once: its sessions end and signing in is refused."""
    from loyalpos.service.admin import accounts

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    user = accounts.disable_user(ctx, bid, accounts.user_by_login(ctx, bid, login).id)
    print_json(user_json(user, store_codes(ctx, bid)))


@group.command("reset-password")
@guarded
def user_reset_password(brand: BrandOpt, login: str, password_stdin: PasswordStdin = False) -> None:
    """Give a user a new password; the sessions opened with the old one end."""
    from loyalpos.service.admin import accounts

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    user_id = accounts.user_by_login(ctx, bid, login).id
    password = read_secret("New password", password_stdin)
    user = accounts.reset_password(ctx, bid, user_id, password)
    print_json(user_json(user, store_codes(ctx, bid)))
