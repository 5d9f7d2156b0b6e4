"""The console's admin pages: users (users.manage), staff (staff.manage, a store
manager for its stores), API keys (keys.manage): lists, forms with errors next to
their fields, the changes they make, and who is refused."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient

from loyalpos.domain.accounts import Role
from loyalpos.domain.errors import Unauthorized
from loyalpos.service.admin import accounts, apikeys, staff
from loyalpos.service.base.context import Context
from tests.integration.accounts_helpers import Brands, cheap_hashes, two_brands  # noqa: F401
from tests.integration.console_users import PASSWORD, browser, csrf_of

pytestmark = pytest.mark.usefixtures("cheap_hashes")


def _error(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error" role="alert">([^<]*)</p>', html)
    assert found is not None, f"no error next to {field}"
    return found.group(1)


def _post(client: TestClient, path: str, form: dict[str, str]) -> httpx.Response:
    page = client.get("/console")
    return client.post(path, data={"csrf": csrf_of(page.text), **form}, follow_redirects=False)


# -- users ---------------------------------------------------------------------------


def test_an_admin_creates_a_store_manager_with_errors_next_to_the_fields(ctx: Context) -> None:
    b = two_brands(ctx)
    admin = browser(ctx, b.a, "boss", Role.ADMIN)
    assert "新建用户" in admin.get("/console/users").text
    csrf = csrf_of(admin.get("/console/users/new").text)
    form = {
        "csrf": csrf,
        "login": "X",
        "display_name": "",
        "role": "store_manager",
        "password": "short",
    }
    bad = admin.post("/console/users/new", data=form)
    assert bad.status_code == 400
    assert _error(bad.text, "login") == "登录名为 2-40 位小写字母、数字或 . _ @ -。"
    form.update(login="mgr.sh", display_name="上海店长")
    bad = admin.post("/console/users/new", data=form)
    assert bad.status_code == 400 and _error(bad.text, "stores") == "店长至少需要一个门店。"
    form["stores"] = [str(b.a_sh)]  # type: ignore[assignment]
    bad = admin.post("/console/users/new", data=form)
    assert _error(bad.text, "password") == "至少 10 个字符，且不能与登录名相同。"
    assert "checked" in bad.text  # the chosen store stays chosen
    form["password"] = "a-good-long-password"
    done = admin.post("/console/users/new", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/console/users?done=created"
    made = accounts.user_by_login(ctx, b.a, "mgr.sh")
    assert (made.role, made.store_ids, made.display_name) == (
        Role.STORE_MANAGER,
        frozenset({b.a_sh}),
        "上海店长",
    )
    again = admin.post("/console/users/new", data=form)
    assert _error(again.text, "login") == "此登录名已被其他用户使用。"
    other_brand = admin.post(
        "/console/users/new", data={**form, "login": "x2", "stores": [str(b.b_store)]}
    )
    assert other_brand.status_code == 400 and _error(other_brand.text, "stores")
    listed = admin.get("/console/users").text
    assert re.search(r'data-login="mgr.sh">.*?SH001', listed, re.S)


def test_an_admin_disables_enables_and_resets_a_password(ctx: Context) -> None:
    b = two_brands(ctx)
    admin = browser(ctx, b.a, "boss", Role.ADMIN)
    user = accounts.create_user(ctx, b.a, "ana", "Ana", Role.ANALYST, PASSWORD)
    token = accounts.start_session(ctx, user).token
    assert _post(admin, f"/console/users/{user.id}/disable", {}).status_code == 303
    assert accounts.get_user(ctx, b.a, user.id).disabled
    with pytest.raises(Unauthorized):
        accounts.check_session(ctx, token)
    _post(admin, f"/console/users/{user.id}/enable", {})
    assert not accounts.get_user(ctx, b.a, user.id).disabled
    page = admin.get(f"/console/users/{user.id}/password")
    assert "Ana（ana）" in page.text
    bad = admin.post(
        f"/console/users/{user.id}/password", data={"csrf": csrf_of(page.text), "password": "ana"}
    )
    assert bad.status_code == 400 and _error(bad.text, "password")
    ok = admin.post(
        f"/console/users/{user.id}/password",
        data={"csrf": csrf_of(page.text), "password": "a-brand-new-password"},
        follow_redirects=False,
    )
    assert ok.headers["location"] == "/console/users?done=password"
    assert accounts.authenticate(ctx, b.a, "ana", "a-brand-new-password").id == user.id
    # Another brand's user is not there.
    theirs = accounts.create_user(ctx, b.b, "them", "Them", Role.ANALYST, PASSWORD)
    _post(admin, f"/console/users/{theirs.id}/disable", {})
    assert not accounts.get_user(ctx, b.b, theirs.id).disabled


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ANALYST, Role.STORE_MANAGER])
def test_only_an_admin_manages_users_and_keys(ctx: Context, role: Role) -> None:
    b = two_brands(ctx)
    stores = [b.a_sh] if role is Role.STORE_MANAGER else []
    client = browser(ctx, b.a, "someone", role, stores=stores)
    target = accounts.create_user(ctx, b.a, "ana", "Ana", Role.ANALYST, PASSWORD)
    key = apikeys.create_key(ctx, b.a, apikeys.Scope.HQ, "hq")
    for path in ("/console/users", "/console/users/new", "/console/keys", "/console/keys/new"):
        answer = client.get(path)
        assert answer.status_code == 403 and "没有权限" in answer.text, path
    for path in (f"/console/users/{target.id}/disable", f"/console/keys/{key.key.id}/revoke"):
        assert _post(client, path, {}).status_code == 403
    assert not accounts.get_user(ctx, b.a, target.id).disabled
    assert apikeys.list_keys(ctx, b.a)[0].revoked_at is None
    menu = client.get("/console").text
    assert 'href="/console/users"' not in menu and 'href="/console/keys"' not in menu


# -- staff ---------------------------------------------------------------------------


def test_a_store_manager_manages_its_stores_staff_only(ctx: Context) -> None:
    b = two_brands(ctx)
    mgr = browser(ctx, b.a, "mgr", Role.STORE_MANAGER, stores=[b.a_sh])
    theirs = staff.create_staff(ctx, b.a, b.a_bj, "2001", "北京收银", "1234")
    page = mgr.get("/console/staff")
    assert page.status_code == 200 and "SH001" in page.text and "BJ001" not in page.text
    assert mgr.get(f"/console/staff?store={b.a_bj}").status_code == 404
    csrf = csrf_of(page.text)
    form = {"csrf": csrf, "store": str(b.a_sh), "number": "10-01", "name": "", "pin": "12"}
    bad = mgr.post("/console/staff/new", data=form)
    assert bad.status_code == 400 and _error(bad.text, "number") == "工号为 1-16 位字母或数字。"
    form["number"] = "1001"
    assert _error(mgr.post("/console/staff/new", data=form).text, "name")
    form["name"] = "小王"
    assert _error(mgr.post("/console/staff/new", data=form).text, "pin") == "PIN 为 4-8 位数字。"
    elsewhere = mgr.post("/console/staff/new", data={**form, "store": str(b.a_bj), "pin": "1234"})
    assert _error(elsewhere.text, "store") == "请选择您负责的门店。"
    form["pin"] = "1234"
    done = mgr.post("/console/staff/new", data=form, follow_redirects=False)
    assert done.headers["location"] == f"/console/staff?store={b.a_sh}&done=created"
    wang = staff.staff_by_number(ctx, b.a, b.a_sh, "1001")
    assert wang.name == "小王"
    again = mgr.post("/console/staff/new", data=form)
    assert _error(again.text, "number") == "本门店已有员工使用此工号。"
    assert 'data-number="1001"' in mgr.get("/console/staff").text
    # disable, enable, a new PIN
    assert mgr.post(f"/console/staff/{wang.id}/disable", data={"csrf": csrf}).status_code == 200
    assert staff.get_staff(ctx, b.a, wang.id).disabled
    mgr.post(f"/console/staff/{wang.id}/enable", data={"csrf": csrf})
    assert not staff.get_staff(ctx, b.a, wang.id).disabled
    bad_pin = mgr.post(f"/console/staff/{wang.id}/pin", data={"csrf": csrf, "pin": "12ab"})
    assert bad_pin.status_code == 400 and _error(bad_pin.text, "pin")
    mgr.post(f"/console/staff/{wang.id}/pin", data={"csrf": csrf, "pin": "987654"})
    assert staff.sign_in(ctx, b.a, b.a_sh, "1001", "987654").id == wang.id
    # another store's staff member: not there, and unchanged
    for path in (f"/console/staff/{theirs.id}/disable", f"/console/staff/{theirs.id}/pin"):
        assert mgr.post(path, data={"csrf": csrf, "pin": "5555"}).status_code == 404
    assert mgr.get(f"/console/staff/{theirs.id}/pin").status_code == 404
    assert not staff.get_staff(ctx, b.a, theirs.id).disabled


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ANALYST])
def test_operators_and_analysts_do_not_manage_staff(ctx: Context, role: Role) -> None:
    b = two_brands(ctx)
    client = browser(ctx, b.a, "someone", role)
    person = staff.create_staff(ctx, b.a, b.a_sh, "1001", "小王", "1234")
    assert client.get("/console/staff").status_code == 403
    assert _post(client, f"/console/staff/{person.id}/disable", {}).status_code == 403
    assert not staff.get_staff(ctx, b.a, person.id).disabled


def test_an_admin_sees_every_stores_staff(ctx: Context) -> None:
    b = two_brands(ctx)
    admin = browser(ctx, b.a, "boss", Role.ADMIN)
    staff.create_staff(ctx, b.a, b.a_bj, "2001", "北京收银", "1234")
    page = admin.get(f"/console/staff?store={b.a_bj}")
    assert 'data-number="2001"' in page.text
    assert admin.get(f"/console/staff?store={b.b_store}").status_code == 404


# -- keys ----------------------------------------------------------------------------


def test_an_admin_creates_a_key_sees_its_secret_once_and_revokes_it(ctx: Context) -> None:
    b = two_brands(ctx)
    admin = browser(ctx, b.a, "boss", Role.ADMIN)
    csrf = csrf_of(admin.get("/console/keys/new").text)
    bad = admin.post("/console/keys/new", data={"csrf": csrf, "name": " ", "scope": "cashier"})
    assert bad.status_code == 400 and _error(bad.text, "name") == "请输入 1-100 个字符的名称。"
    bad = admin.post(
        "/console/keys/new", data={"csrf": csrf, "name": "SH 收银", "scope": "cashier"}
    )
    assert _error(bad.text, "store") == "收银密钥需要选择门店。"
    bad = admin.post(
        "/console/keys/new",
        data={"csrf": csrf, "name": "总部", "scope": "hq", "store": str(b.a_sh)},
    )
    assert _error(bad.text, "store") == "总部密钥不属于门店，请留空。"
    bad = admin.post(
        "/console/keys/new",
        data={"csrf": csrf, "name": "x", "scope": "cashier", "store": str(b.b_store)},
    )
    assert _error(bad.text, "store") == "请选择一个门店。"
    assert _error(
        admin.post("/console/keys/new", data={"csrf": csrf, "name": "x", "scope": "root"}).text,
        "scope",
    )
    made = admin.post(
        "/console/keys/new",
        data={"csrf": csrf, "name": "SH 收银", "scope": "cashier", "store": str(b.a_sh)},
    )
    assert made.status_code == 200
    secret = re.search(r'<p class="secret" id="secret">([^<]+)</p>', made.text)
    assert secret is not None
    who = apikeys.authenticate(ctx, secret.group(1))
    assert (who.scope, who.store_id) == (apikeys.Scope.CASHIER, b.a_sh)
    listed = admin.get("/console/keys").text
    assert "SH 收银" in listed and secret.group(1) not in listed
    done = admin.post(
        f"/console/keys/{who.key_id}/revoke", data={"csrf": csrf}, follow_redirects=False
    )
    assert done.headers["location"] == "/console/keys?done=revoked"
    assert apikeys.list_keys(ctx, b.a)[0].revoked_at is not None
    assert "已吊销" in admin.get("/console/keys").text


def test_a_form_without_its_token_changes_nothing(ctx: Context) -> None:
    b = two_brands(ctx)
    admin = browser(ctx, b.a, "boss", Role.ADMIN)
    user = accounts.create_user(ctx, b.a, "ana", "Ana", Role.ANALYST, PASSWORD)
    key = apikeys.create_key(ctx, b.a, apikeys.Scope.HQ, "hq")
    person = staff.create_staff(ctx, b.a, b.a_sh, "1001", "小王", "1234")
    for path in (
        f"/console/users/{user.id}/disable",
        f"/console/keys/{key.key.id}/revoke",
        f"/console/staff/{person.id}/disable",
    ):
        assert admin.post(path, data={"csrf": "forged"}).status_code == 403
    assert not accounts.get_user(ctx, b.a, user.id).disabled
    assert apikeys.list_keys(ctx, b.a)[0].revoked_at is None
    assert not staff.get_staff(ctx, b.a, person.id).disabled
