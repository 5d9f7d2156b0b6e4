"""The `loyalpos` command line through Typer's CliRunner, against the test database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from loyalpos.cli import app
from loyalpos.config import get_settings
from loyalpos.db.tables import members, point_entries
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context

PHONE = "13800138000"  # a demo member: 张伟, 1200 points


class Cli:
    def __init__(self, runner: CliRunner) -> None:
        self.runner = runner

    def run(self, *args: str, exit_code: int = 0) -> Result:
        result = self.runner.invoke(app, list(args))
        assert result.exit_code == exit_code, (args, result.output, result.exception)
        if exit_code == 0:
            assert result.exception is None, result.exception
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)


@pytest.fixture
def cli(runner: CliRunner) -> Cli:
    return Cli(runner)


def count(ctx: Context, table: Any, brand_id: int | None = None) -> int:
    query = select(func.count()).select_from(table)
    if brand_id is not None:
        query = query.where(table.c.brand_id == brand_id)
    with ctx.transaction() as conn:
        return int(conn.execute(query).scalar_one())


def test_demo_twice_is_idempotent(cli: Cli, ctx: Context) -> None:
    first = cli.run("demo").stdout
    assert "demo brand 'demo'" in first
    after_first = (count(ctx, members), count(ctx, point_entries))
    assert after_first == (5, 4)
    second = cli.run("demo").stdout
    assert second == first
    assert (count(ctx, members), count(ctx, point_entries)) == after_first
    assert [b.code for b in brands.list_brands(ctx)] == ["demo"]


def test_member_show_masks_the_phone_unless_asked_to_reveal_it(cli: Cli) -> None:
    cli.run("demo")
    shown = cli.run("member", "show", "--brand", "demo", "--phone", PHONE).stdout
    assert PHONE not in shown
    member = json.loads(shown)
    assert member["phone"] == "138****8000"
    assert (member["name"], member["points_balance"]) == ("张伟", 1200)
    revealed = cli.json("member", "show", "-b", "demo", "--phone", PHONE, "--reveal-phone")
    assert revealed["phone"] == "+86" + PHONE
    by_card = cli.json("member", "show", "-b", "demo", "--card", member["card_no"])
    assert by_card["id"] == member["id"] and by_card["phone"] == "138****8000"
    by_id = cli.json("member", "show", "-b", "demo", "--id", str(member["id"]))
    assert by_id["card_no"] == member["card_no"]


def test_member_show_and_code_round_trip(cli: Cli) -> None:
    cli.run("demo")
    member = cli.json("member", "show", "-b", "demo", "--phone", PHONE)
    code = cli.json("member", "code", "-b", "demo", str(member["id"]))
    assert code["expires_in"] == 60
    assert cli.json("member", "show", "-b", "demo", "--code", code["code"])["id"] == member["id"]


def test_member_show_failures_exit_non_zero_with_the_error_shape(cli: Cli) -> None:
    cli.run("demo")
    missing = cli.run("member", "show", "-b", "demo", "--phone", "13600000000", exit_code=1)
    assert json.loads(missing.stderr)["error"]["code"] == "member_not_found"
    assert "13600000000" not in missing.output
    unknown_brand = cli.run("member", "show", "-b", "nope", "--phone", PHONE, exit_code=1)
    assert json.loads(unknown_brand.stderr)["error"]["code"] == "brand_not_found"
    no_key = cli.run("member", "show", "-b", "demo", exit_code=2)
    assert "--phone" in no_key.output


def test_member_register_prints_the_phone_masked(cli: Cli) -> None:
    cli.run("demo")
    out = cli.run("member", "register", "-b", "demo", "13600000001", "赵六").stdout
    assert "13600000001" not in out
    assert json.loads(out)["phone"] == "136****0001"
    again = cli.run("member", "register", "-b", "demo", "13600000001", "赵六", exit_code=1)
    assert json.loads(again.stderr)["error"]["code"] == "member_exists"


def test_points_balance_adjust_and_history(cli: Cli) -> None:
    cli.run("demo")
    member_id = str(cli.json("member", "show", "-b", "demo", "--phone", PHONE)["id"])
    balance = cli.json("points", "balance", "-b", "demo", member_id)
    assert (balance["total"], balance["available"], balance["pending"]) == (1200, 1200, 0)
    assert [line["points"] for line in balance["expiring"]] == [1200]
    adjusted = cli.json(
        "points", "adjust", "-b", "demo", member_id, "-200", "--operator", "ops", "--reason", "fix"
    )
    assert adjusted["points"] == -200
    assert cli.json("points", "balance", "-b", "demo", member_id)["total"] == 1000
    history = cli.json("points", "history", "-b", "demo", member_id)
    assert [(e["kind"], e["points"]) for e in history] == [("adjust", -200), ("earn", 1200)]
    missing = cli.run("points", "balance", "-b", "demo", "999999", exit_code=1)
    assert json.loads(missing.stderr)["error"]["code"] == "member_not_found"


def test_points_adjust_without_a_reason_fails_and_books_nothing(cli: Cli, ctx: Context) -> None:
    cli.run("demo")
    member_id = str(cli.json("member", "show", "-b", "demo", "--phone", PHONE)["id"])
    entries = count(ctx, point_entries)
    no_option = cli.run(
        "points", "adjust", "-b", "demo", member_id, "50", "--operator", "ops", exit_code=2
    )
    assert "--reason" in no_option.output
    blank = cli.run(
        "points",
        "adjust",
        "-b",
        "demo",
        member_id,
        "50",
        "--operator",
        "ops",
        "--reason",
        "  ",
        exit_code=1,
    )
    error = json.loads(blank.stderr)["error"]
    assert (error["code"], error["detail"]["field"]) == ("invalid_input", "reason")
    too_much = cli.run(
        "points",
        "adjust",
        "-b",
        "demo",
        member_id,
        "-5000",
        "--operator",
        "o",
        "--reason",
        "r",
        exit_code=1,
    )
    assert json.loads(too_much.stderr)["error"]["detail"] == {"requested": 5000, "available": 1200}
    assert count(ctx, point_entries) == entries
    assert cli.json("points", "balance", "-b", "demo", member_id)["total"] == 1200


CSV_ONE_BAD_ROW = """phone,name,birthday,points,expires_on
13600000001,赵一,1990-01-01,100,2099-01-01
13600000002,钱二,not-a-date,50,
13600000003,孙三,,20,
"""


def _import_brand(ctx: Context) -> int:
    return brands.create_brand(ctx, "imp", "Import Brand").id


def test_member_import_with_a_bad_row_exits_1_and_imports_nothing(
    cli: Cli, ctx: Context, tmp_path: Path
) -> None:
    brand_id = _import_brand(ctx)
    file = tmp_path / "members.csv"
    file.write_text(CSV_ONE_BAD_ROW, encoding="utf-8")
    result = cli.run("member", "import", "-b", "imp", str(file), exit_code=1)
    report = json.loads(result.stdout)
    assert report["committed"] is False
    assert (report["rows"], report["members"], report["lots"], report["points"]) == (3, 0, 0, 0)
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [(3, "birthday")]
    assert count(ctx, members, brand_id) == 0
    assert count(ctx, point_entries, brand_id) == 0


def test_member_import_skip_invalid_imports_the_good_rows_and_lists_the_bad_one(
    cli: Cli, ctx: Context, tmp_path: Path
) -> None:
    brand_id = _import_brand(ctx)
    file = tmp_path / "members.csv"
    file.write_text(CSV_ONE_BAD_ROW, encoding="utf-8")
    result = cli.run("member", "import", "-b", "imp", str(file), "--skip-invalid")
    report = json.loads(result.stdout)
    assert report["committed"] is True
    assert (report["rows"], report["members"], report["lots"], report["points"]) == (3, 2, 2, 120)
    assert len(report["rejected"]) == 1
    assert report["rejected"][0]["line"] == 3
    assert report["rejected"][0]["field"] == "birthday"
    assert "not-a-date" in report["rejected"][0]["message"]
    assert count(ctx, members, brand_id) == 2
    first = cli.json("member", "show", "-b", "imp", "--phone", "13600000001")
    assert (first["name"], first["points_balance"], first["birthday"]) == (
        "赵一",
        100,
        "1990-01-01",
    )
    balance = cli.json("points", "balance", "-b", "imp", str(first["id"]))
    assert balance["expiring"] == [{"expires_on": "2099-01-01", "points": 100}]
    missing = cli.run("member", "show", "-b", "imp", "--phone", "13600000002", exit_code=1)
    assert json.loads(missing.stderr)["error"]["code"] == "member_not_found"
    # The same file again: every row is now an existing member, nothing changes.
    again = cli.run("member", "import", "-b", "imp", str(file), exit_code=1)
    assert {r["line"] for r in json.loads(again.stdout)["rejected"]} == {2, 3, 4}
    assert count(ctx, members, brand_id) == 2


def test_member_import_of_a_file_that_is_not_utf8_is_one_json_error(
    cli: Cli, ctx: Context, tmp_path: Path
) -> None:
    """A CSV saved as GBK by a spreadsheet used to end in a UnicodeDecodeError traceback."""
    brand_id = _import_brand(ctx)
    file = tmp_path / "members.csv"
    file.write_bytes(CSV_ONE_BAD_ROW.encode("gbk"))
    result = cli.run("member", "import", "-b", "imp", str(file), exit_code=1)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "unparseable" and "UTF-8" in error["message"]
    assert "Traceback" not in result.output
    assert count(ctx, members, brand_id) == 0


def test_a_command_on_a_database_that_cannot_be_reached_is_one_json_error() -> None:
    """No traceback when the database is down: the error shape and exit 1."""
    from typer.testing import CliRunner

    get_settings.cache_clear()
    from tests.e2e.test_server import free_port

    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing_listens"
    runner = CliRunner(env={"LOYALPOS_DATABASE_URL": unreachable, "LOYALPOS_ENV": "test"})
    try:
        result = runner.invoke(app, ["points", "balance", "-b", "demo", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert json.loads(result.stderr)["error"]["code"] == "database_unavailable"


def test_every_command_answers_domain_errors_and_bad_dates_without_a_traceback(
    db_url: str,
) -> None:
    """Commands that had no error handling of their own now share the one in `_command`."""
    from typer.testing import CliRunner

    from loyalpos.cli import app as cli_app

    runner = CliRunner()
    env = {"LOYALPOS_DATABASE_URL": db_url}
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli_app, ["points", "expire", "-b", "no-such-brand"], env=env)
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert '"code": "brand_not_found"' in result.output
        result = runner.invoke(cli_app, ["points", "expire", "--date", "2024-13-01"], env=env)
        assert result.exit_code == 2
        assert "not a date" in result.output
    finally:
        get_settings.cache_clear()


def test_points_expire_refuses_a_date_after_today_and_expires_nothing(
    cli: Cli, ctx: Context
) -> None:
    # Issue 11 item 9: the CLI door of the expiry job, like the API's.
    from datetime import date

    from loyalpos.service.loyalty import members as member_service
    from loyalpos.service.loyalty import points

    brand = brands.create_brand(ctx, "exp", "Expiry")
    m = member_service.register(ctx, brand.id, phone="13600000001", name="会员").id
    source = points.Source("operator", None, "x", operator="op", reason="opening balance")
    points.adjust(ctx, brand.id, m, 100, source, expires_on=date(2098, 1, 1))
    for args in (("-b", "exp"), ()):
        result = cli.run("points", "expire", "--date", "2099-01-01", *args, exit_code=1)
        error = json.loads(result.stderr)["error"]
        assert error["code"] == "expiry_date_in_future", error
        assert error["detail"]["as_of"] == "2099-01-01"
    assert points.balance(ctx, brand.id, m).total == 100
    done = cli.json("points", "expire", "-b", "exp")
    assert done["points"] == 0
    assert points.balance(ctx, brand.id, m).total == 100
