"""The `loyalpos` command line (Typer): serve, database, demo, members, points."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from loyalpos.config import get_settings
from loyalpos.db.outage import outage
from loyalpos.domain.calendar import Period
from loyalpos.domain.errors import DatabaseUnavailable, DomainError
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context

app = typer.Typer(help="loyalpos: member-aware checkout and loyalty engine", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic)", no_args_is_help=True)
brand_app = typer.Typer(help="Brands (品牌) and stores (门店)", no_args_is_help=True)
member_app = typer.Typer(help="Members (会员)", no_args_is_help=True)
points_app = typer.Typer(help="Points ledger (积分)", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(brand_app, name="brand")
app.add_typer(member_app, name="member")
app.add_typer(points_app, name="points")
rules_app = typer.Typer(help="Rule sets (规则): import, export, publish", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
key_app = typer.Typer(help="API keys (接口密钥): create, list, revoke", no_args_is_help=True)
app.add_typer(key_app, name="key")

F = TypeVar("F", bound=Callable[..., Any])
BrandOpt = Annotated[str, typer.Option("--brand", "-b", help="brand code")]
InFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
# A rule or simulation document: read by rules/documents.py, so a missing file, a
# directory or an unreadable one answers the documented JSON error, not a usage text.
DocFile = Annotated[Path, typer.Argument(help="YAML or JSON file")]


def _ctx() -> Context:
    settings = get_settings()
    if settings.database_url.startswith("sqlite:///") and ":memory:" not in settings.database_url:
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    return Context.from_settings(settings)


def _out(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _fail(exc: DomainError) -> NoReturn:
    typer.echo(
        json.dumps(
            {"error": {"code": exc.code, "message": exc.message, "detail": exc.detail}},
            ensure_ascii=False,
            default=str,
        ),
        err=True,
    )
    raise typer.Exit(1)


def _fail_unavailable(down: DatabaseUnavailable) -> NoReturn:
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


def _command(group: typer.Typer, *args: Any, **kwargs: Any) -> Callable[[F], F]:
    """Register a command whose domain errors print the error shape and exit 1,
    so no command can end in a traceback for input an operator typed; a database
    that cannot be reached is one line in the same shape, not a traceback."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def run(*a: Any, **k: Any) -> Any:
            try:
                return fn(*a, **k)
            except DomainError as exc:
                _fail(exc)
            except Exception as exc:
                down = outage(exc)
                if down is None:
                    raise
                _fail_unavailable(down)

        group.command(*args, **kwargs)(run)
        return fn

    return register


def _parse_date(text: str | None, option: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


def _brand_id(ctx: Context, code: str) -> int:
    from loyalpos.service.base import brands

    return brands.brand_by_code(ctx, code).id


def _upgrade(ctx: Context) -> None:
    from loyalpos.db.migrate import upgrade

    upgrade(ctx.engine)


@_command(db_app, "upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from loyalpos.db.migrate import upgrade

    upgrade(_ctx().engine, revision)
    typer.echo(f"database at {revision}")


@_command(app)
def demo() -> None:
    """Seed the demo brand (two stores, members with points); safe to repeat."""
    from loyalpos.service.admin.demo import seed

    ctx = _ctx()
    _upgrade(ctx)
    brand = seed(ctx)
    typer.echo(f"demo brand {brand.code!r} (id {brand.id}) ready")
    _print_demo_keys(ctx, brand.id)


def _print_demo_keys(ctx: Context, brand_id: int) -> None:
    from loyalpos.service.admin.demo import demo_keys

    found = demo_keys(ctx, brand_id)
    if found:
        typer.echo("demo API keys (send as 'Authorization: Bearer <key>'):")
    for name, raw in found:
        typer.echo(f"  {name:<20} {raw}")


@_command(app)
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
    from loyalpos.serving import Options
    from loyalpos.serving import serve as run_server

    ctx = _ctx()
    _upgrade(ctx)
    if with_demo:
        from loyalpos.service.admin.demo import seed

        _print_demo_keys(ctx, seed(ctx).id)
    ctx.engine.dispose()
    typer.echo(f"loyalpos on http://{host}:{port}  (API docs: /docs, health: /healthz)")
    try:
        run_server(Options(host, port, workers, log_level, access_log))
    except OSError as exc:  # the port is taken (by another program or loyalpos)
        typer.echo(f"loyalpos: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None


@_command(brand_app, "create")
def brand_create(
    code: str,
    name: str,
    timezone: str = "Asia/Shanghai",
    expiry: Annotated[ExpiryMode, typer.Option(help="none, fixed or rolling")] = ExpiryMode.NONE,
    months: int | None = None,
    period: Period | None = None,
    periods_later: int = 0,
    birthday_months: int = 0,
    pending_days: int = 0,
    allow_negative: bool = False,
) -> None:
    """Create a brand with its points policy."""
    from loyalpos.service.base import brands

    ctx = _ctx()
    policy = ExpiryPolicy(expiry, months, period, periods_later, birthday_months)
    b = brands.create_brand(
        ctx,
        code,
        name,
        timezone=timezone,
        policy=policy,
        pending_days=pending_days,
        allow_negative_balance=allow_negative,
    )
    _out({"id": b.id, "code": b.code, "name": b.name})


@_command(brand_app, "list")
def brand_list() -> None:
    """List brands and their stores."""
    from loyalpos.service.base import brands

    ctx = _ctx()
    _out(
        [
            {
                "id": b.id,
                "code": b.code,
                "name": b.name,
                "timezone": b.timezone,
                "expiry": b.policy.mode.value,
                "stores": [
                    {"id": s.id, "code": s.code, "name": s.name}
                    for s in brands.list_stores(ctx, b.id)
                ],
            }
            for b in brands.list_brands(ctx)
        ]
    )


@_command(brand_app, "add-store")
def store_create(brand: BrandOpt, code: str, name: str) -> None:
    """Add a store to a brand."""
    from loyalpos.service.base import brands

    ctx = _ctx()
    s = brands.create_store(ctx, _brand_id(ctx, brand), code, name)
    _out({"id": s.id, "code": s.code, "name": s.name})


def _member_json(m: Any, reveal: bool = False) -> dict[str, Any]:
    return {
        "id": m.id,
        "phone": m.phone if reveal else m.phone_masked,
        "name": m.name,
        "birthday": m.birthday,
        "card_no": m.card_no,
        "tier": m.tier,
        "points_balance": m.points_balance,
    }


@_command(member_app, "register")
def member_register(
    brand: BrandOpt,
    phone: str,
    name: str,
    birthday: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    claim: Annotated[str | None, typer.Option(help="receipt claim code")] = None,
) -> None:
    """Register a member."""
    from loyalpos.service.loyalty import members

    ctx = _ctx()
    try:
        bday = date.fromisoformat(birthday) if birthday else None
        m = members.register(
            ctx, _brand_id(ctx, brand), phone=phone, name=name, birthday=bday, claim_token=claim
        )
    except ValueError:
        typer.echo("birthday must be YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None
    _out(_member_json(m))


@_command(member_app, "show")
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

    ctx = _ctx()
    bid = _brand_id(ctx, brand)
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
    _out(_member_json(m, reveal_phone))


@_command(member_app, "code")
def member_code(brand: BrandOpt, member_id: int) -> None:
    """Print a fresh dynamic member code."""
    from loyalpos.service.loyalty import members

    ctx = _ctx()
    code, ttl = members.issue_code(ctx, _brand_id(ctx, brand), member_id)
    _out({"code": code, "expires_in": ttl})


@_command(member_app, "import")
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
    ctx = _ctx()
    report = import_members(ctx, _brand_id(ctx, brand), text, skip_invalid=skip_invalid)
    _out(
        {
            "committed": report.committed,
            "rows": report.rows,
            "members": report.members,
            "lots": report.lots,
            "points": report.points,
            "rejected": [
                {"line": r.line, "field": r.field, "message": r.message} for r in report.rejected
            ],
        }
    )
    if not report.committed:
        raise typer.Exit(1)


@_command(points_app, "balance")
def points_balance(brand: BrandOpt, member_id: int) -> None:
    """Balance and points by lapse date."""
    from loyalpos.service.loyalty import points

    ctx = _ctx()
    bid = _brand_id(ctx, brand)
    b = points.balance(ctx, bid, member_id)
    schedule = points.expiry_schedule(ctx, bid, member_id)
    _out(
        {
            "total": b.total,
            "available": b.available,
            "pending": b.pending,
            "expiring": [{"expires_on": d, "points": n} for d, n in schedule],
        }
    )


@_command(points_app, "history")
def points_history(brand: BrandOpt, member_id: int, limit: int = 20) -> None:
    """Latest ledger entries of a member."""
    from loyalpos.service.loyalty import points

    ctx = _ctx()
    rows = points.history(ctx, _brand_id(ctx, brand), member_id, limit=limit)
    _out(
        [
            {
                "id": e.id,
                "at": e.created_at,
                "kind": e.kind,
                "points": e.points,
                "source": f"{e.source_type}:{e.source_ref or ''}",
                "description": e.description,
                # An order's entries: the earning rules behind its points, in 中文.
                **({"rules": [r["zh"] for r in e.points_rules]} if e.points_rules else {}),
            }
            for e in rows
        ]
    )


# ignore_unknown_options: a negative POINTS such as -200 is an argument, not a
# cluster of unknown short options.
@_command(points_app, "adjust", context_settings={"ignore_unknown_options": True})
def points_adjust(
    brand: BrandOpt,
    member_id: int,
    points_delta: Annotated[int, typer.Argument(metavar="POINTS")],
    operator: Annotated[str, typer.Option()],
    reason: Annotated[str, typer.Option()],
) -> None:
    """An operator's adjustment (positive or negative) with a reason."""
    from loyalpos.service.loyalty import points

    ctx = _ctx()
    e = points.adjust(
        ctx,
        _brand_id(ctx, brand),
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
    _out({"entry_id": e.id, "points": e.points})


@_command(points_app, "reverse")
def points_reverse(
    brand: BrandOpt,
    entry_id: int,
    operator: Annotated[str, typer.Option()],
    reason: Annotated[str, typer.Option()],
    amount: int | None = None,
) -> None:
    """Reverse all or part of a ledger entry."""
    from loyalpos.service.loyalty import points

    ctx = _ctx()
    e = points.reverse(
        ctx,
        _brand_id(ctx, brand),
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
    _out({"entry_id": e.id, "points": e.points})


@_command(points_app, "expire")
def points_expire(
    as_of: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD")] = None,
    brand: Annotated[str | None, typer.Option("--brand", "-b")] = None,
) -> None:
    """Expire lapsed points (set-based, idempotent per date). Without --date: today
    in each brand's time zone; a date after that is refused."""
    from loyalpos.service.loyalty import jobs

    ctx = _ctx()
    day = _parse_date(as_of, "--date")
    bid = _brand_id(ctx, brand) if brand else None
    run = jobs.expire_points(ctx, day, brand_id=bid)
    _out({"as_of": run.as_of, "lots": run.lots, "points": run.points, "members": run.members})


@_command(points_app, "birthday")
def points_birthday(as_of: Annotated[str | None, typer.Option("--date")] = None) -> None:
    """Extend the expiry of members whose birthday month it is (once a year)."""
    from loyalpos.service.loyalty import jobs

    ctx = _ctx()
    day = _parse_date(as_of, "--date") or ctx.now().date()
    _out({"members_extended": jobs.extend_birthdays(ctx, day)})


@_command(rules_app, "import")
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
    ctx = _ctx()
    try:
        bid = _brand_id(ctx, brand)
        v = rulesets.save_draft(ctx, bid, text, author=author, comment=comment)
        if publish_now or effective_from:
            start = datetime.fromisoformat(effective_from) if effective_from else None
            v = rulesets.publish(ctx, bid, v.version, effective_from=start, by=author)
    except ValueError as exc:
        typer.echo(f"bad --effective-from: {exc}", err=True)
        raise typer.Exit(2) from None
    _out({"version": v.version, "status": v.status.value, "effective_from": v.effective_from})


@_command(rules_app, "publish")
def rules_publish(
    brand: BrandOpt,
    version: int,
    effective_from: Annotated[str | None, typer.Option(help="ISO time with zone")] = None,
    by: str | None = None,
) -> None:
    """Publish a draft version, in force from --effective-from (default: now)."""
    from loyalpos.service.rulebook import rulesets

    ctx = _ctx()
    try:
        start = datetime.fromisoformat(effective_from) if effective_from else None
        v = rulesets.publish(ctx, _brand_id(ctx, brand), version, effective_from=start, by=by)
    except ValueError as exc:
        typer.echo(f"bad --effective-from: {exc}", err=True)
        raise typer.Exit(2) from None
    _out({"version": v.version, "status": v.status.value, "effective_from": v.effective_from})


@_command(rules_app, "list")
def rules_list(brand: BrandOpt) -> None:
    """List a brand's rule set versions."""
    from loyalpos.service.rulebook import rulesets

    ctx = _ctx()
    found = rulesets.versions(ctx, _brand_id(ctx, brand))
    _out(
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


@_command(rules_app, "export")
def rules_export(
    brand: BrandOpt,
    version: Annotated[int | None, typer.Option(help="default: the version in force now")] = None,
) -> None:
    """Print a rule set version as YAML."""
    from loyalpos.service.rulebook import rulesets

    ctx = _ctx()
    bid = _brand_id(ctx, brand)
    number = version if version is not None else rulesets.in_force(ctx, bid)[0]
    if number == 0:
        typer.echo("no rule set is in force for this brand", err=True)
        raise typer.Exit(1)
    typer.echo(rulesets.export_yaml(ctx, bid, number), nl=False)


def _key_json(k: Any, stores: dict[int, str]) -> dict[str, Any]:
    return {
        "id": k.id,
        "scope": k.scope.value,
        "store": stores.get(k.store_id) if k.store_id is not None else None,
        "name": k.name,
        "prefix": k.prefix,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    }


def _store_codes(ctx: Context, brand_id: int) -> dict[int, str]:
    from loyalpos.service.base import brands

    return {s.id: s.code for s in brands.list_stores(ctx, brand_id)}


@_command(key_app, "create")
def key_create(
    brand: BrandOpt,
    scope: Annotated[Scope, typer.Option(help="cashier (one store) or hq (the whole brand)")],
    name: Annotated[str, typer.Option(help="who or what uses it, e.g. 'SH001 till 1'")],
    store: Annotated[str | None, typer.Option(help="store code; required for cashier")] = None,
) -> None:
    """Create an API key and print it; it is shown this once (only its hash is kept)."""
    from loyalpos.service.admin import apikeys
    from loyalpos.service.base import brands

    ctx = _ctx()
    bid = _brand_id(ctx, brand)
    codes = _store_codes(ctx, bid)
    store_id = None if store is None else brands.store_by_code(ctx, bid, store).id
    new = apikeys.create_key(ctx, bid, scope, name, store_id=store_id)
    _out({**_key_json(new.key, codes), "key": new.secret})
    typer.echo("store this key now: it cannot be shown again", err=True)


@_command(key_app, "list")
def key_list(brand: BrandOpt) -> None:
    """List a brand's API keys (never their secrets), revoked ones included."""
    from loyalpos.service.admin import apikeys

    ctx = _ctx()
    bid = _brand_id(ctx, brand)
    stores = _store_codes(ctx, bid)
    _out([_key_json(k, stores) for k in apikeys.list_keys(ctx, bid)])


@_command(key_app, "revoke")
def key_revoke(brand: BrandOpt, key_id: int) -> None:
    """Revoke an API key at once; requests with it then answer 401."""
    from loyalpos.service.admin import apikeys

    ctx = _ctx()
    bid = _brand_id(ctx, brand)
    _out(_key_json(apikeys.revoke_key(ctx, bid, key_id), _store_codes(ctx, bid)))


@_command(app, "reconcile")
def reconcile_day(
    brand: BrandOpt,
    store: Annotated[str, typer.Option("--store", "-s", help="store code")],
    file: InFile,
    day: Annotated[
        str | None, typer.Option("--date", help="local day YYYY-MM-DD (default: the file's)")
    ] = None,
) -> None:
    """Reconcile (对账) a store day: FILE.json holds the POS's figures
    (order_count, amount_fen, tenders, optional orders); prints the differences."""
    from pydantic import ValidationError

    from loyalpos.api.till.schemas import ReconcileIn
    from loyalpos.domain.errors import InvalidInput
    from loyalpos.service.till import reconcile

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{file} is not JSON: {exc}", code="invalid_file") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{file} must hold a JSON object", code="invalid_file")
    chosen = _parse_date(day, "--date")
    if chosen is not None:
        data["date"] = chosen.isoformat()
    elif "date" not in data:
        raise typer.BadParameter('give --date or a "date" in the file', param_hint="--date")
    try:
        report = ReconcileIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None
    ctx = _ctx()
    bid = _brand_id(ctx, brand)
    found = reconcile.reconcile_day(
        ctx, bid, reconcile.store_id_by_code(ctx, bid, store), report.date, report.pos_day()
    )
    _out(reconcile.as_dict(found))


@_command(app)
def simulate(file: DocFile) -> None:
    """Price one cart under a rule set (YAML or JSON) and print the quote as JSON."""
    from loyalpos.rules.documents import read_file
    from loyalpos.rules.simulate import simulate_text

    _out(simulate_text(read_file(file)))


webhook_app = typer.Typer(
    help="Webhooks (回调): subscriptions, deliveries, dead letters, replay",
    no_args_is_help=True,
)
app.add_typer(webhook_app, name="webhook")


def _subscription_json(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "url": s.url,
        "event_types": list(s.event_types),
        "active": s.active,
        "created_at": s.created_at,
        "after_event_id": s.after_event_id,
    }


def _delivery_json(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "subscription_id": d.subscription_id,
        "event_id": d.outbox_id,
        "event_type": d.event_type,
        "subject": d.subject,
        "status": d.status.value,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
    }


@_command(app)
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="work until nothing is due, then exit")
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, help="seconds between idle polls")
    ] = 1.0,
) -> None:
    """Run the background worker: outbox events → handlers and signed webhooks."""
    import logging
    import signal
    import threading

    from loyalpos.service.events.worker import run_worker

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx = _ctx()
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    # SIGTERM / Ctrl-C finish the current pass, then stop (no half-recorded sends).
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _stop)
    if not once:
        typer.echo(f"loyalpos worker polling every {poll}s (Ctrl-C to stop)", err=True)
    try:
        stats = run_worker(ctx, once=once, poll_seconds=poll, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        ctx.engine.dispose()
    _out(
        {
            "events": stats.events,
            "deliveries_created": stats.deliveries_created,
            "delivered": stats.delivered,
            "retrying": stats.retrying,
            "dead": stats.dead,
            "errors": stats.errors,
        }
    )


@_command(webhook_app, "subscribe")
def webhook_subscribe(
    brand: BrandOpt,
    url: str,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="event type, repeatable; default * (all)"),
    ] = None,
) -> None:
    """Subscribe URL to events; prints the signing secret (shown this once)."""
    from loyalpos.service.events import webhooks

    ctx = _ctx()
    new = webhooks.subscribe(ctx, _brand_id(ctx, brand), url, event or ["*"])
    _out({**_subscription_json(new.subscription), "secret": new.secret})
    typer.echo("store this secret now: it cannot be shown again", err=True)


@_command(webhook_app, "list")
def webhook_list(brand: BrandOpt) -> None:
    """List a brand's webhook subscriptions (never their secrets)."""
    from loyalpos.service.events import webhooks

    ctx = _ctx()
    _out([_subscription_json(s) for s in webhooks.list_subscriptions(ctx, _brand_id(ctx, brand))])


@_command(webhook_app, "deactivate")
def webhook_deactivate(brand: BrandOpt, subscription_id: int) -> None:
    """Stop a subscription; its pending deliveries become dead letters."""
    from loyalpos.service.events import webhooks

    ctx = _ctx()
    _out(_subscription_json(webhooks.deactivate(ctx, _brand_id(ctx, brand), subscription_id)))


@_command(webhook_app, "deliveries")
def webhook_deliveries(
    brand: BrandOpt,
    status: Annotated[
        str | None, typer.Option(help="pending, delivered or dead (the dead letters)")
    ] = None,
    after: Annotated[int, typer.Option(help="show ids after this one (paging)")] = 0,
    limit: int = 100,
) -> None:
    """List deliveries, oldest first; --status dead is the dead-letter list."""
    from loyalpos.service.events import webhooks

    ctx = _ctx()
    found = webhooks.list_deliveries(
        ctx, _brand_id(ctx, brand), status=status, after_id=after, limit=limit
    )
    _out([_delivery_json(d) for d in found])


@_command(webhook_app, "replay")
def webhook_replay(brand: BrandOpt, delivery_id: int) -> None:
    """Send a dead or delivered delivery again (pending, due now, attempts reset)."""
    from loyalpos.service.events import webhooks

    ctx = _ctx()
    _out(_delivery_json(webhooks.replay(ctx, _brand_id(ctx, brand), delivery_id)))


@_command(webhook_app, "backfill")
def webhook_backfill(
    brand: BrandOpt,
    subscription_id: int,
    after: Annotated[int, typer.Option(help="send events with an id above this one")] = 0,
    limit: int = 1000,
) -> None:
    """Send a subscription the events from before it was made, oldest first."""
    from loyalpos.service.events import webhooks

    ctx = _ctx()
    done = webhooks.backfill(
        ctx, _brand_id(ctx, brand), subscription_id, after_event_id=after, limit=limit
    )
    _out(
        {
            "subscription_id": done.subscription_id,
            "created": done.created,
            "last_event_id": done.last_event_id,
            "more": done.more,
        }
    )


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app(prog_name="loyalpos")


if __name__ == "__main__":
    main()
    sys.exit(0)
