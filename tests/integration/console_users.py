"""What the console's home and admin page tests share: a browser signed in as a new HQ user."""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.domain.accounts import Role
from loyalpos.service.admin import accounts
from loyalpos.service.base.context import Context
from loyalpos.web.render import CONSOLE_COOKIE

PASSWORD = "a-long-password"


def browser(
    ctx: Context,
    brand_id: int,
    login: str,
    role: Role,
    *,
    stores: Iterable[int] = (),
) -> TestClient:
    """A browser signed in to the console as a new user `login` of `role`."""
    user = accounts.create_user(ctx, brand_id, login, login, role, PASSWORD, store_ids=stores)
    new = accounts.start_session(ctx, user)
    client = TestClient(create_app(ctx), raise_server_exceptions=False)
    client.cookies.set(CONSOLE_COOKIE, new.token)
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def figure(html: str, name: str, code: str | None = None) -> str:
    """The text of `data-figure=name`: the total card, or the store row `code`."""
    if code is not None:
        row = re.search(rf'<tr data-code="{re.escape(code)}">(.*?)</tr>', html, re.S)
        assert row is not None, code
        html = row.group(1)
    found = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert found is not None, name
    return found.group(1).strip()
