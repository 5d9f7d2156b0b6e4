"""`loyalpos member`: members (会员): register, find, dynamic codes, CSV import."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loyalpos.cli.common import BrandOpt, InFile, brand_id_by_code, print_json, service_context
from loyalpos.cli.errors import guarded

if TYPE_CHECKING:  # annotations only: the command line starts without it
    from loyalpos.service.loyalty.importer import ImportReport

group = typer.Typer(help="Members (会员)", no_args_is_help=True)


def member_json(m: Any, reveal: bool = False) -> dict[str, Any]:
    """A member as printed: the phone masked unless the operator asks to reveal it,
    so a terminal or a pasted output does not spread members' numbers."""
    return {
        "id": m.id,
        "phone": m.phone if reveal else m.phone_masked,
        "name": m.name,
        "birthday": m.birthday,
        "card_no": m.card_no,
        "tier": m.tier,
        "points_balance": m.points_balance,
    }


@group.command("register")
@guarded
def member_register(
    brand: BrandOpt,
    phone: str,
    name: str,
    birthday: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    claim: Annotated[str | None, typer.Option(help="receipt claim code")] = None,
) -> None:
    """Register a member."""
    from loyalpos.service.loyalty import members

    ctx = service_context()
    try:
        bday = date.fromisoformat(birthday) if birthday else None
        m = members.register(
            ctx,
            brand_id_by_code(ctx, brand),
            phone=phone,
            name=name,
            birthday=bday,
            claim_token=claim,
        )
    except ValueError:
        typer.echo("birthday must be YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None
    print_json(member_json(m))


@group.command("show")
@guarded
def member_show(
    brand: BrandOpt,
    phone: str | None = None,
    card: str | None = None,
    member_id: Annotated[int | None, typer.Option("--id")] = None,
    code: str | None = None,
    reveal_phone: Annotated[bool, typer.Option(help="print the full phone number")] = False,
) -> None:
    """Find a member by phone, card number, id or dynamic code."""
    from loyalpos.service.loyalty import members

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    if phone:
        m = members.by_phone(ctx, bid, phone)
    elif card:
        m = members.by_card(ctx, bid, card)
    elif code:
        m = members.by_code(ctx, bid, code)
    elif member_id:
        m = members.get(ctx, bid, member_id)
    else:
        typer.echo("give --phone, --card, --id or --code", err=True)
        raise typer.Exit(2)
    print_json(member_json(m, reveal_phone))


@group.command("code")
@guarded
def member_code(brand: BrandOpt, member_id: int) -> None:
    """Print a fresh dynamic member code."""
    from loyalpos.service.loyalty import members

    ctx = service_context()
    code, ttl = members.issue_code(ctx, brand_id_by_code(ctx, brand), member_id)
    print_json({"code": code, "expires_in": ttl})


@group.command("import")
@guarded
def member_import(
    brand: BrandOpt,
    file: InFile,
    skip_invalid: Annotated[
        bool, typer.Option(help="import the valid rows and list the rest")
    ] = False,
) -> None:
    """Import members and opening balances from CSV; nothing is half-imported."""
    from loyalpos.rules.documents import read_file
    from loyalpos.service.loyalty.importer import MAX_FILE_BYTES, import_members

    text = read_file(file, MAX_FILE_BYTES)  # not UTF-8, too large: the JSON error
    ctx = service_context()
    report = import_members(ctx, brand_id_by_code(ctx, brand), text, skip_invalid=skip_invalid)
    print_json(import_json(report))
    if not report.committed:
        raise typer.Exit(1)


def import_json(report: ImportReport) -> dict[str, Any]:
    """An import's outcome as printed, every rejected row with its line and field,
    so the operator can fix the file and import it again."""
    return {
        "committed": report.committed,
        "rows": report.rows,
        "members": report.members,
        "lots": report.lots,
        "points": report.points,
        "rejected": [
            {"line": r.line, "field": r.field, "message": r.message} for r in report.rejected
        ],
    }
