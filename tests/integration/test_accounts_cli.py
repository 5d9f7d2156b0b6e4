"""`loyalpos user ...`, `loyalpos staff ...` and the demo accounts, through Typer's
CliRunner against the test database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from loyalpos.cli import app
from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.domain.errors import TooManyAttempts, Unauthorized
from loyalpos.service.admin import accounts, demo, staff
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from tests.conftest import TEST_SECRET
from tests.integration.accounts_helpers import cheap_hashes

__all__ = ["cheap_hashes"]
pytestmark = pytest.mark.usefixtures("cheap_hashes")

SECRET = "a long enough secret"


class Cli:
    def __init__(self, runner: CliRunner) -> None:
        self.runner = runner

    def run(self, *args: str, code: int = 0, input: str | None = None) -> Result:
        result = self.runner.invoke(app, list(args), input=input)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        return json.loads(self.run(*args, input=input).stdout)

    def error(self, *args: str, input: str | None = None) -> str:
        result = self.run(*args, code=1, input=input)
        return str(json.loads(result.stderr)["error"]["code"])


@pytest.fixture
def cli(runner: CliRunner) -> Cli:
    return Cli(runner)


def test_user_commands(cli: Cli, ctx: Context) -> None:
    cli.run("demo")
    made = cli.json(
        "user", "create", "-b", "demo", "Amy", "--name", "Amy Li", "--role", "operator",
        "--password-stdin", input=SECRET + "\n",
    )  # fmt: skip
    assert (made["login"], made["name"], made["role"], made["stores"]) == (
        "amy",
        "Amy Li",
        "operator",
        [],
    )
    mgr = cli.json(
        "user", "create", "-b", "demo", "mgr2", "--name", "两店店长", "--role", "store_manager",
        "--store", "SH001", "--store", "BJ001", "--password-stdin", input=SECRET + "\n",
    )  # fmt: skip
    assert mgr["stores"] == ["BJ001", "SH001"]
    listed = cli.run("user", "list", "-b", "demo").stdout
    assert SECRET not in listed and "argon2" not in listed
    logins = [u["login"] for u in json.loads(listed)]
    assert logins == ["admin", "operator", "analyst", "manager.sh001", "amy", "mgr2"]
    brand = brands.brand_by_code(ctx, "demo").id
    assert accounts.authenticate(ctx, brand, "amy", SECRET).login == "amy"

    cli.json(
        "user", "reset-password", "-b", "demo", "amy", "--password-stdin", input="new secret 1234\n"
    )
    assert accounts.authenticate(ctx, brand, "amy", "new secret 1234").login == "amy"
    disabled = cli.json("user", "disable", "-b", "demo", "AMY")
    assert disabled["disabled_at"] is not None
    with pytest.raises(Unauthorized):
        accounts.authenticate(ctx, brand, "amy", "new secret 1234")

    # Typed errors, exit 1; usage errors exit 2.
    create = ["user", "create", "-b", "demo", "bob", "--name", "Bob", "--password-stdin"]
    assert cli.error(*create, "--role", "admin", input="short\n") == "weak_password"
    assert cli.error(*create, "--role", "store_manager", input=SECRET + "\n") == "stores_required"
    assert cli.error(*create[:4], "amy", *create[5:], "--role", "admin", input=SECRET + "\n") == (
        "user_exists"
    )
    assert cli.error(*create, "--role", "store_manager", "--store", "NOPE", input=SECRET) == (
        "store_not_found"
    )
    assert cli.error("user", "disable", "-b", "demo", "nobody") == "user_not_found"
    assert cli.error("user", "list", "-b", "nope") == "brand_not_found"
    cli.run(*create, "--role", "root", code=2, input=SECRET)


def test_a_typed_password_is_asked_twice_and_never_shown(cli: Cli, ctx: Context) -> None:
    cli.run("demo")
    args = ["user", "create", "-b", "demo", "eve", "--name", "Eve", "--role", "analyst"]
    result = cli.run(*args, input=f"{SECRET}\n{SECRET}\n")
    assert SECRET not in result.output and "Password" in result.output
    brand = brands.brand_by_code(ctx, "demo").id
    assert accounts.authenticate(ctx, brand, "eve", SECRET).role.value == "analyst"
    # Two different entries: asked again; nothing is made until they agree.
    result = cli.run(
        *args[:4], "zoe", *args[5:], input=f"{SECRET}\nanother one!\n{SECRET}\n{SECRET}\n"
    )
    assert SECRET not in result.output
    assert accounts.user_by_login(ctx, brand, "zoe").login == "zoe"


def test_staff_commands(cli: Cli, ctx: Context) -> None:
    cli.run("demo")
    brand = brands.brand_by_code(ctx, "demo").id
    sh = brands.store_by_code(ctx, brand, "SH001").id
    made = cli.json(
        "staff", "create", "-b", "demo", "--store", "SH001", "1003", "--name", "张敏",
        "--pin-stdin", input="2468\n",
    )  # fmt: skip
    assert (made["store"], made["number"], made["name"]) == ("SH001", "1003", "张敏")
    assert staff.sign_in(ctx, brand, sh, "1003", "2468").name == "张敏"
    listed = cli.run("staff", "list", "-b", "demo", "-s", "SH001").stdout
    assert [p["number"] for p in json.loads(listed)] == ["1001", "1003"]
    assert "2468" not in listed and "argon2" not in listed
    assert len(cli.json("staff", "list", "-b", "demo")) == 3

    for _ in range(5):
        with pytest.raises((Unauthorized, TooManyAttempts)):
            staff.sign_in(ctx, brand, sh, "1003", "0000")
    locked = cli.json("staff", "list", "-b", "demo", "-s", "SH001")[1]
    assert locked["locked_until"] is not None
    reset = cli.json(
        "staff", "reset-pin", "-b", "demo", "-s", "SH001", "1003", "--pin-stdin", input="1357\n"
    )
    assert reset["locked_until"] is None
    assert staff.sign_in(ctx, brand, sh, "1003", "1357").number == "1003"
    assert cli.json("staff", "disable", "-b", "demo", "-s", "SH001", "1003")["disabled_at"]
    with pytest.raises(Unauthorized):
        staff.sign_in(ctx, brand, sh, "1003", "1357")

    base = ["staff", "create", "-b", "demo", "--store", "SH001", "--name", "x", "--pin-stdin"]
    assert cli.error(*base, "1004", input="12\n") == "invalid_pin"
    assert cli.error(*base, "1001", input="1234\n") == "staff_exists"
    assert cli.error("staff", "disable", "-b", "demo", "-s", "BJ001", "1001") == "staff_not_found"
    assert cli.error("staff", "list", "-b", "demo", "-s", "NOPE") == "store_not_found"


def test_demo_seeds_and_prints_an_account_per_role_and_two_cashiers(cli: Cli, ctx: Context) -> None:
    first = cli.run("demo").stdout
    for line in ("admin", "operator", "analyst", "manager.sh001", "1001", "2001"):
        assert line in first
    assert first.count(demo.DEMO_PASSWORD) == 4 and first.count(demo.DEMO_PIN) == 2
    assert cli.run("demo").stdout == first  # idempotent
    brand = brands.brand_by_code(ctx, "demo").id
    stores = {s.code: s.id for s in brands.list_stores(ctx, brand)}
    roles = {u.login: (u.role.value, sorted(u.store_ids)) for u in accounts.list_users(ctx, brand)}
    assert roles == {
        "admin": ("admin", []),
        "operator": ("operator", []),
        "analyst": ("analyst", []),
        "manager.sh001": ("store_manager", [stores["SH001"]]),
    }
    for login in roles:
        assert accounts.authenticate(ctx, brand, login, demo.DEMO_PASSWORD).login == login
    assert staff.sign_in(ctx, brand, stores["SH001"], "1001", demo.DEMO_PIN).number == "1001"
    assert staff.sign_in(ctx, brand, stores["BJ001"], "2001", demo.DEMO_PIN).number == "2001"

    # One given a new password, one disabled: neither printed, neither re-made.
    analyst = accounts.user_by_login(ctx, brand, "analyst")
    accounts.reset_password(ctx, brand, analyst.id, "not the demo one")
    cli.run("user", "disable", "-b", "demo", "operator")
    cli.run("staff", "disable", "-b", "demo", "-s", "BJ001", "2001")
    again = cli.run("demo").stdout
    assert "analyst" not in again and "operator" not in again and "2001" not in again
    assert "manager.sh001" in again and "1001" in again
    assert len(accounts.list_users(ctx, brand)) == 4
    assert accounts.authenticate(ctx, brand, "analyst", "not the demo one").login == "analyst"


def test_no_demo_accounts_in_production(db_url: str) -> None:
    settings = Settings(env="production", database_url=db_url, secret_key=TEST_SECRET)
    ctx = Context(make_engine(db_url), settings)
    try:
        brand = demo.seed(ctx)
        assert accounts.list_users(ctx, brand.id) == []
        assert staff.list_staff(ctx, brand.id) == []
        found = demo.demo_accounts(ctx, brand.id)
        assert (found.users, found.staff) == ([], [])
    finally:
        ctx.engine.dispose()
