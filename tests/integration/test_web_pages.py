"""The sign-in pages over HTTP in process (tests/e2e/test_web_browser.py drives
them in a real browser): sessions, CSRF, errors next to the field, languages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.service.admin import demo
from loyalpos.service.base.context import Context


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    demo.seed(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _till_sign_in(client: TestClient, pin: str = "1234", **extra: str) -> httpx.Response:
    page = client.get("/till/sign-in")
    form = {"csrf": _csrf(page.text), "brand": "demo", "store": "SH001", "number": "1001"}
    form.update(pin=pin, **extra)
    return client.post("/till/sign-in", data=form, follow_redirects=False)


def test_root_redirects_to_the_till_sign_in(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/till/sign-in"


def test_pages_are_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith(("/till", "/console", "/static"))]


def test_a_cashier_signs_in_sees_the_till_and_signs_out(client: TestClient) -> None:
    answer = _till_sign_in(client)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/till"
    cookie = answer.headers["set-cookie"]
    assert "lp_till=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    till = client.get("/till")
    assert till.status_code == 200
    assert "1001" in till.text and "SH001" in till.text and 'id="scan"' in till.text
    assert client.post("/till/sign-out", data={}).status_code == 403  # no CSRF token
    out = client.post("/till/sign-out", data={"csrf": _csrf(till.text)}, follow_redirects=False)
    assert out.headers["location"] == "/till/sign-in"
    assert client.get("/till", follow_redirects=False).status_code == 303


def test_a_sign_in_without_the_csrf_token_is_refused_in_the_users_language(
    client: TestClient,
) -> None:
    client.get("/till/sign-in?lang=en")
    form = {"brand": "demo", "store": "SH001", "number": "1001", "pin": "1234"}
    answer = client.post("/till/sign-in", data=form)
    assert answer.status_code == 403
    assert "Request refused" in answer.text
    forged = client.post("/till/sign-in", data={**form, "csrf": "made-up"})
    assert forged.status_code == 403
    client.cookies.clear()
    assert "请求被拒绝" in client.post("/console/sign-in", data=form).text


def test_wrong_pins_say_how_many_are_left_then_until_when_it_is_locked(
    client: TestClient,
) -> None:
    first = _till_sign_in(client, pin="0000")
    assert first.status_code == 401
    assert "还可尝试 4 次" in first.text
    for _ in range(4):
        last = _till_sign_in(client, pin="0000")
    assert last.status_code == 429
    # The test clock is 04:00 UTC: locked 15 minutes, shown in Shanghai time.
    assert "已锁定至 12:15" in last.text
    assert "已锁定至 12:15" in _till_sign_in(client).text


def test_unknown_store_and_staff_number_are_said_next_to_the_field(client: TestClient) -> None:
    client.get("/till/sign-in?lang=en")
    page = _till_sign_in(client, store="XX999")
    assert 'id="store-error"' in page.text
    assert "no store with this code" in page.text
    page = _till_sign_in(client, number="9999")
    assert "no staff member with this number" in page.text
    page = _till_sign_in(client, number="2001")  # BJ001's cashier, not SH001's
    assert "no staff member with this number" in page.text


def test_english_on_request_remembered_or_from_accept_language(client: TestClient) -> None:
    assert "收银台登录" in client.get("/till/sign-in").text
    english = client.get("/till/sign-in?lang=en")
    assert "Till sign-in" in english.text and 'lang="en"' in english.text
    assert "Till sign-in" in client.get("/till/sign-in").text  # the cookie remembers
    client.cookies.clear()
    asked = client.get("/console/sign-in", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "HQ console sign-in" in asked.text


def test_hq_sign_in_shows_the_role_and_wrong_passwords_are_refused(client: TestClient) -> None:
    page = client.get("/console/sign-in")
    form = {"csrf": _csrf(page.text), "brand": "demo", "login": "analyst"}
    wrong = client.post("/console/sign-in", data={**form, "password": "not-the-password"})
    assert wrong.status_code == 401 and "登录名或密码错误" in wrong.text
    answer = client.post(
        "/console/sign-in", data={**form, "password": "demo-password"}, follow_redirects=False
    )
    assert answer.headers["location"] == "/console"
    console = client.get("/console")
    assert "分析师 (analyst)" in console.text
    out = client.post("/console/sign-out", data={"csrf": _csrf(console.text)})
    assert "总部后台登录" in out.text


def test_static_files_are_cached_by_their_content_hash(client: TestClient) -> None:
    page = client.get("/till/sign-in").text
    css = re.search(r'href="(/static/[0-9a-f]+/site\.css)"', page)
    assert css
    answer = client.get(css.group(1))
    assert answer.status_code == 200 and "immutable" in answer.headers["cache-control"]
    assert answer.headers["etag"]
    assert client.get("/static/0/site.css").headers["cache-control"] == "no-cache"
