"""`loyalpos points`: the points ledger (积分): balances, history, an operator's
adjustments and reversals, and the expiry and birthday jobs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from loyalpos.cli.common import BrandOpt, brand_id_by_code, parse_date, print_json, service_context
from loyalpos.cli.errors import guarded

group = typer.Typer(help="Points ledger (积分)", no_args_is_help=True)


@group.command("balance")
@guarded
def points_balance(brand: BrandOpt, member_id: int) -> None:
    """Balance and points by lapse date."""
    from loyalpos.service.loyalty import points

    ctx = service_context()
    bid = brand_id_by_code(ctx, brand)
    b = points.balance(ctx, bid, member_id)
    schedule = points.expiry_schedule(ctx, bid, member_id)
    print_json(
        {
            "total": b.total,
            "available": b.available,
            "pending": b.pending,
            "expiring": [{"expires_on": d, "points": n} for d, n in schedule],
        }
    )


@group.command("history")
@guarded
def points_history(brand: BrandOpt, member_id: int, limit: int = 20) -> None:
    """Latest ledger entries of a member."""
    from loyalpos.service.loyalty import points

    ctx = service_context()
    rows = points.history(ctx, brand_id_by_code(ctx, brand), member_id, limit=limit)
    print_json([entry_json(e) for e in rows])


def entry_json(e: Any) -> dict[str, Any]:
    """A ledger entry as printed; an order's entries also name the earning rules
    behind their points, in 中文, so an operator can answer "why this many"."""
    return {
        "id": e.id,
        "at": e.created_at,
        "kind": e.kind,
        "points": e.points,
        "source": f"{e.source_type}:{e.source_ref or ''}",
        "description": e.description,
        **({"rules": [r["zh"] for r in e.points_rules]} if e.points_rules else {}),
    }


# ignore_unknown_options: a negative POINTS such as -200 is an argument, not a
# cluster of unknown short options.
@group.command("adjust", context_settings={"ignore_unknown_options": True})
@guarded
def points_adjust(
    brand: BrandOpt,
    member_id: int,
    points_delta: Annotated[int, typer.Argument(metavar="POINTS")],
    operator: Annotated[str, typer.Option()],
    reason: Annotated[str, typer.Option()],
) -> None:
    """An operator's adjustment (positive or negative) with a reason."""
    from loyalpos.service.loyalty import points

    ctx = service_context()
    e = points.adjust(
        ctx,
        brand_id_by_code(ctx, brand),
        member_id,
        points_delta,
        points.Source(
            "operator",
            None,
            f"人工调整 (adjustment): {reason}",
            operator=operator,
            reason=reason,
        ),
    )
    print_json({"entry_id": e.id, "points": e.points})


@group.command("reverse")
@guarded
def points_reverse(
    brand: BrandOpt,
    entry_id: int,
    operator: Annotated[str, typer.Option()],
    reason: Annotated[str, typer.Option()],
    amount: int | None = None,
) -> None:
    """Reverse all or part of a ledger entry."""
    from loyalpos.service.loyalty import points

    ctx = service_context()
    e = points.reverse(
        ctx,
        brand_id_by_code(ctx, brand),
        entry_id,
        points.Source(
            "reversal",
            None,
            f"冲正流水 #{entry_id} (reversal)",
            operator=operator,
            reason=reason,
        ),
        points=amount,
    )
    print_json({"entry_id": e.id, "points": e.points})


@group.command("expire")
@guarded
def points_expire(
    as_of: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD")] = None,
    brand: Annotated[str | None, typer.Option("--brand", "-b")] = None,
) -> None:
    """Expire lapsed points (set-based, idempotent per date). Without --date: today
    in each brand's time zone; a date after that is refused."""
    from loyalpos.service.loyalty import jobs

    ctx = service_context()
    day = parse_date(as_of, "--date")
    bid = brand_id_by_code(ctx, brand) if brand else None
    run = jobs.expire_points(ctx, day, brand_id=bid)
    print_json({"as_of": run.as_of, "lots": run.lots, "points": run.points, "members": run.members})


@group.command("birthday")
@guarded
def points_birthday(as_of: Annotated[str | None, typer.Option("--date")] = None) -> None:
    """Extend the expiry of members whose birthday month it is (once a year)."""
    from loyalpos.service.loyalty import jobs

    ctx = service_context()
    day = parse_date(as_of, "--date") or ctx.now().date()
    print_json({"members_extended": jobs.extend_birthdays(ctx, day)})
