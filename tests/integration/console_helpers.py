"""What the console's operations tests share: the demo brand served with orders booked,
and signing in as an HQ user on the shared client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.db.migrate import upgrade
from loyalpos.domain.pricing.model import CartLine, Options
from loyalpos.service.admin import demo
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members
from loyalpos.service.till import checkout
from tests.conftest import Clock, make_context


@dataclass
class Shop:
    ctx: Context
    client: TestClient
    brand_id: int
    stores: dict[str, int]
    member: int

    def book(self, store: str, order_no: str, *, member: bool = True, qty: int = 2) -> None:
        cart = checkout.CartRequest(
            self.stores[store],
            (CartLine("latte", "coffee", 3200, qty, "拿铁"),),
            checkout.MemberRef(member_id=self.member) if member else None,
            Options(),
        )
        paid = checkout.quote(self.ctx, self.brand_id, cart).as_json()["payable_fen"]
        tender = checkout.Tender("wechat", paid, f"wx-{order_no}")
        req = checkout.ConfirmRequest(order_no, cart, (tender,), "1001", "T1")
        checkout.confirm(self.ctx, self.brand_id, req)

    def sign_in(self, login: str) -> str:
        """Sign `login` in on the shared client; its CSRF token."""
        c = self.client
        c.cookies.clear()
        pre = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/sign-in").text)
        assert pre
        form = {"csrf": pre.group(1), "brand": "demo", "login": login, "password": "demo-password"}
        assert c.post("/console/sign-in", data=form).status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/console").text)
        assert token
        return token.group(1)


def open_shop(db_url: str) -> Iterator[Shop]:
    """The demo brand served, three orders booked (SH-1 and BJ-1 by member 13800138000)."""
    ctx = make_context(db_url, Clock(datetime(2024, 3, 1, 4, 0, tzinfo=UTC)))
    upgrade(ctx.engine)
    brand = demo.seed(ctx)
    stores = {s.code: s.id for s in brands.list_stores(ctx, brand.id)}
    member = members.by_phone(ctx, brand.id, "13800138000").id
    app = create_app(ctx)
    with TestClient(app, raise_server_exceptions=False) as client:
        s = Shop(ctx, client, brand.id, stores, member)
        s.book("SH001", "SH-1")
        s.book("SH001", "SH-2", member=False)
        s.book("BJ001", "BJ-1")
        yield s
    ctx.engine.dispose()
