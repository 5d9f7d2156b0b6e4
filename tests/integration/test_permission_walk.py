"""The web layer's permission matrix (docs/accounts.md, "Pages and till actions"),
walked cell by cell against the app: every route of web/pages.py, till.py and
receipts.py, asked by every principal (not signed in, a cashier of SH001, a cashier
of BJ001, each HQ role), every POST with and without its CSRF token.

`MATRIX` below is the documented table as data. Each row makes, for each cell, a
fresh request (a new order number, a new held cart...) and a probe: what the cell
must have done (a write: the change it makes) or must not have; a refusal must
leave everything as it was. The cashier of another store is pointed at SH001's own
things (an order and a held cart made through the till by cashier 1001, and a
quote's hold of its coupons and points): refused with 404, and afterwards the order
is not refunded, the cart still held, the quote's hold still on.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from loyalpos.api.app import create_app
from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.migrate import upgrade
from loyalpos.db.tables import hq_users, reservations, store_staff
from loyalpos.domain.accounts import Role
from loyalpos.domain.errors import DomainError, NotFound
from loyalpos.domain.webhooks import RetryPolicy
from loyalpos.service.admin import accounts, apikeys, demo, staff
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.events import webhooks, worker
from loyalpos.service.loyalty import coupon_lists, coupons, members, points
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import holds, receipts
from loyalpos.web.render import CONSOLE_COOKIE, TILL_COOKIE
from tests.conftest import TEST_SECRET, Clock, make_context

DOC = Path(__file__).resolve().parents[2] / "docs" / "accounts.md"
BEGIN = "<!-- web permission matrix: every route of web/pages.py, till.py and receipts.py -->"
END = "<!-- end of web permission matrix -->"

# -- who asks ----------------------------------------------------------------------

ANON = "not signed in"
CASHIER = "cashier of the store"  # 1001 at SH001
OTHER = "cashier of another store"  # 2001 at BJ001, asking for SH001's things
ADMIN, OPERATOR, ANALYST, MANAGER = "admin", "operator", "analyst", "store_manager"
HQ = (ADMIN, OPERATOR, ANALYST, MANAGER)
PRINCIPALS = (ANON, CASHIER, OTHER, *HQ)
CASHIERS = {CASHIER: ("SH001", "1001"), OTHER: ("BJ001", "2001")}
LOGINS = {ADMIN: "admin", OPERATOR: "operator", ANALYST: "analyst", MANAGER: "manager.sh001"}
REFUSED_PAGE = "请求被拒绝"  # the 403 page of a form sent without its token


# -- what each cell answers --------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """A cell's answer: the status; the JSON error code of a refused call, or where a
    redirect goes, or a text the page shows; and `probe`: whether the request did
    (for a write) or showed (for a read) what the row's probe looks for."""

    status: int
    code: str | None = None
    location: str | None = None
    text: str | None = None
    probe: bool = False


def ok(status: int = 200, text: str | None = None) -> Expect:
    return Expect(status, text=text, probe=True)


def to(location: str, *, probe: bool = False) -> Expect:
    return Expect(303, location=location, probe=probe)


TO_TILL_SIGN_IN = to("/till/sign-in")
TO_CONSOLE_SIGN_IN = to("/console/sign-in")
SIGNED_OUT = Expect(401, code="signed_out")
CSRF_FAILED = Expect(403, code="csrf_failed")
FORM_REFUSED = Expect(403, text=REFUSED_PAGE)
DENIED = Expect(403, text="没有权限")  # the console's page for what a role may not do


def not_found(code: str) -> Expect:
    return Expect(404, code=code)


@dataclass(frozen=True)
class Call:
    """One request of one cell, made fresh for it; `probe` reads the outcome."""

    path: str
    json: Any = None
    form: dict[str, str] | None = None
    probe: Callable[[httpx.Response], bool] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None  # a form's uploads


Token = Literal["none", "header", "form", "pre-session"]


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # the path as the app declares it and the doc names it
    make: Callable[[World, str], Call]
    expect: Mapping[str, Expect]
    # How a POST carries its CSRF token, and whose absent token refuses it (403):
    # the till API's header and the sign-out forms, for who holds that session;
    # the sign-in forms' pre-session token, for everyone.
    token: Token = "none"
    token_holders: tuple[str, ...] = ()
    fresh_session: bool = False  # a sign-out: not the shared session

    def without_token(self, principal: str) -> Expect:
        if principal not in self.token_holders:
            return self.expect[principal]
        return CSRF_FAILED if self.token == "header" else FORM_REFUSED


def row(
    method: str,
    route: str,
    make: Callable[[World, str], Call],
    *,
    anon: Expect,
    cashier: Expect,
    other: Expect | None = None,
    hq: Expect | Mapping[str, Expect],
    token: Token = "none",
    holders: tuple[str, ...] = (),
    fresh_session: bool = False,
) -> Row:
    """A row; `other` is the cashier's answer unless said, `hq` one for all roles."""
    each = hq if isinstance(hq, Mapping) else dict.fromkeys(HQ, hq)
    expect = {ANON: anon, CASHIER: cashier, OTHER: other or cashier, **each}
    return Row(method, route, make, expect, token, holders, fresh_session)


# -- the world the cells act in ----------------------------------------------------

LATTE = {"sku": "latte", "category": "coffee", "unit_price_fen": 3200, "qty": 1, "name": "拿铁"}


@dataclass
class World:
    """The demo brand, a signed-in browser per principal, and SH001's own things
    that the cashier of BJ001 asks for."""

    ctx: Context
    app: FastAPI
    brand_id: int
    stores: dict[str, int]
    member_id: int  # a demo member with points (13800138000)
    cookies: dict[str, dict[str, str]] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)
    sh_order: str = ""
    sh_hold: int = 0
    sh_quote: str = ""
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def client(self, cookies: Mapping[str, str] | None = None) -> TestClient:
        return TestClient(self.app, raise_server_exceptions=False, cookies=dict(cookies or {}))

    def next_no(self, prefix: str) -> str:
        return f"{prefix}-{next(self.numbers)}"

    # signing in, as a browser does

    def sign_in(self, principal: str) -> tuple[dict[str, str], str]:
        """A new session of `principal`: its cookies and its CSRF token."""
        if principal == ANON:
            return {}, ""
        c = self.client()
        if principal in CASHIERS:
            store, number = CASHIERS[principal]
            form = {"brand": "demo", "store": store, "terminal": "T1", "number": number}
            answer = c.post(
                "/till/sign-in", data={**self.pre(c, "/till/sign-in"), **form, "pin": "1234"}
            )
            page = c.get("/till")
            token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        else:
            form = {"brand": "demo", "login": LOGINS[principal], "password": "demo-password"}
            answer = c.post("/console/sign-in", data={**self.pre(c, "/console/sign-in"), **form})
            page = c.get("/console")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert answer.status_code == 200 and page.status_code == 200, answer.text
        assert token is not None
        cookies = {k: v for k, v in c.cookies.items() if k in (TILL_COOKIE, CONSOLE_COOKIE)}
        return cookies, token.group(1)

    @staticmethod
    def pre(c: TestClient, page: str) -> dict[str, str]:
        """The pre-session token of a sign-in page (its cookie is now in `c`)."""
        found = re.search(r'name="csrf" value="([^"]+)"', c.get(page).text)
        assert found
        return {"csrf": found.group(1)}

    # SH001's things, made through the till by its cashier

    def till(self, path: str, body: Any, principal: str = CASHIER) -> dict[str, Any]:
        headers = {"X-CSRF-Token": self.csrf[principal]}
        answer = self.client(self.cookies[principal]).post(path, json=body, headers=headers)
        assert answer.status_code in (200, 201), answer.text
        found: dict[str, Any] = answer.json()
        return found

    def book(self) -> str:
        order_no = self.next_no("SH")
        self.till("/till/api/orders", order_body(order_no))
        return order_no

    def park(self) -> int:
        return int(self.till("/till/api/holds", hold_body(self.next_no("park")))["id"])

    def hold_quote(self) -> str:
        """A member's quote at SH001: it holds the member's points for the till."""
        cart = {"lines": [LATTE], "member_id": self.member_id, "points": "max"}
        token = self.till("/till/api/quote", cart)["quote_token"]
        assert isinstance(token, str) and self.quote_live(token)
        return token

    # probes of the state

    def order_at(self, order_no: str) -> receipts.Receipt | None:
        for store in self.stores.values():
            try:
                return receipts.receipt(self.ctx, self.brand_id, store, order_no)
            except NotFound:
                continue
        return None

    def refunded(self, order_no: str) -> bool:
        found = self.order_at(order_no)
        assert found is not None
        return found.refunded > 0

    def hold_status(self, hold_id: int) -> str:
        return holds.get(self.ctx, self.brand_id, hold_id).status.value

    def parked_with(self, note: str) -> bool:
        return any(
            h.note == note
            for store in self.stores.values()
            for h in holds.list_active(self.ctx, self.brand_id, store)
        )

    def quote_live(self, token: str) -> bool:
        query = select(reservations.c.released_at).where(reservations.c.token == token)
        with self.ctx.transaction(read_only=True) as conn:
            return conn.execute(query).one().released_at is None

    def session_ended(self, cookies: Mapping[str, str]) -> bool:
        """Whether a session of this browser (till or console) no longer opens."""
        ended = False
        for cookie, check in (
            (TILL_COOKIE, staff.check_session),
            (CONSOLE_COOKIE, accounts.check_session),
        ):
            if cookie in cookies:
                try:
                    check(self.ctx, cookies[cookie])
                except DomainError:
                    ended = True
        return ended


def order_body(order_no: str, **extra: Any) -> dict[str, Any]:
    return {
        "order_no": order_no,
        "lines": [LATTE],
        "points": "none",
        "tenders": [{"method": "cash", "amount_fen": 3200}],
        "skip_reason": "顾客不愿提供",
        **extra,
    }


def hold_body(note: str) -> dict[str, Any]:
    return {"reason": "call", "note": note, "cart": {"lines": [LATTE]}}


def refund_body(order_no: str, refund_no: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"order_no": order_no, "lines": [{"line_no": 1, "qty": 1}]}
    if refund_no is not None:
        found["refund_no"] = refund_no
    return found


# -- the cells' requests: SH001's own things for its cashier, and for every other
# principal the ones the cashier of BJ001 must not reach ------------------------------


def own(w: World, principal: str, fresh: Callable[[], Any], shared: Any) -> Any:
    """A new thing of SH001 for its cashier to act on; SH001's shared one for anyone
    else, who must be refused it."""
    return fresh() if principal == CASHIER else shared


def call_receipt(w: World, p: str) -> Call:
    order_no = w.sh_order
    return Call(
        f"/till/receipts/{order_no}", probe=lambda r: r.status_code == 200 and order_no in r.text
    )


def call_order(w: World, p: str) -> Call:
    order_no = w.sh_order
    return Call(
        f"/till/api/orders/{order_no}", probe=lambda r: r.json().get("order_no") == order_no
    )


def call_holds(w: World, p: str) -> Call:
    hold_id = w.sh_hold
    return Call(
        "/till/api/holds", probe=lambda r: hold_id in [h["id"] for h in r.json().get("data", [])]
    )


def call_release(w: World, p: str) -> Call:
    token = own(w, p, w.hold_quote, w.sh_quote)
    return Call("/till/api/release", {"token": token}, probe=lambda _: not w.quote_live(token))


def call_confirm(w: World, p: str) -> Call:
    order_no = w.next_no("O")
    return Call(
        "/till/api/orders", order_body(order_no), probe=lambda _: w.order_at(order_no) is not None
    )


def call_late(w: World, p: str) -> Call:
    order_no = w.next_no("L")
    late = order_body(order_no, ordered_at="2024-01-01T03:00:00+00:00")
    return Call(
        "/till/api/late-orders",
        {"orders": [late]},
        probe=lambda _: w.order_at(order_no) is not None,
    )


def call_hold(w: World, p: str) -> Call:
    note = w.next_no("note")
    return Call("/till/api/holds", hold_body(note), probe=lambda _: w.parked_with(note))


def call_resume(w: World, p: str) -> Call:
    hold_id = own(w, p, w.park, w.sh_hold)
    path = f"/till/api/holds/{hold_id}/resume"
    return Call(path, {}, probe=lambda _: w.hold_status(hold_id) == "resumed")


def call_cancel(w: World, p: str) -> Call:
    hold_id = own(w, p, w.park, w.sh_hold)
    path = f"/till/api/holds/{hold_id}/cancel"
    return Call(path, {}, probe=lambda _: w.hold_status(hold_id) == "cancelled")


def call_preview(w: World, p: str) -> Call:
    order_no = w.sh_order
    return Call(
        "/till/api/refunds/preview",
        refund_body(order_no),
        probe=lambda r: r.status_code == 200 and not w.refunded(order_no),
    )


def call_refund(w: World, p: str) -> Call:
    order_no = own(w, p, w.book, w.sh_order)
    body = refund_body(order_no, w.next_no("RF"))
    return Call("/till/api/refunds", body, probe=lambda _: w.refunded(order_no))


def call_sign_in(page: str) -> Callable[[World, str], Call]:
    if page == "/till/sign-in":
        form = {"brand": "demo", "store": "SH001", "terminal": "T9", "number": "1001"}
        form["pin"] = "1234"
        cookie = TILL_COOKIE
    else:
        form = {"brand": "demo", "login": "analyst", "password": "demo-password"}
        cookie = CONSOLE_COOKIE

    def make(w: World, p: str) -> Call:
        return Call(
            page, form=form, probe=lambda r: f"{cookie}=" in r.headers.get("set-cookie", "")
        )

    return make


def call_sign_out(path: str) -> Callable[[World, str], Call]:
    def make(w: World, p: str) -> Call:
        return Call(path, form={}, probe=None)  # the probe is the session's: see send()

    return make


def store_with(w: World, code: str | None = None, city: str | None = None) -> bool:
    return any(
        (code is None or s.code == code) and (city is None or s.city == city)
        for s in brands.list_stores(w.ctx, w.brand_id)
    )


def call_open_store(w: World, _: str) -> Call:
    code = w.next_no("NEW").replace("-", "")
    form = {"code": code, "name": "新店", "city": "杭州", "format": "mall", "timezone": ""}
    return Call("/console/stores/new", form=form, probe=lambda _: store_with(w, code=code))


def call_change_store(w: World, _: str) -> Call:
    city = w.next_no("城")
    form = {"name": "北京三里屯店", "city": city, "format": "mall", "timezone": ""}
    path = f"/console/stores/{w.stores['BJ001']}"
    return Call(path, form=form, probe=lambda _: store_with(w, city=city))


# The console's operations (web/console/orders.py, webhooks.py, reconcile.py, holds.py)


def per_store(
    method: str,
    route: str,
    make: Callable[[World, str], Call],
    allowed: Expect,
    roles: tuple[str, ...],
    manager: Expect | None = None,
) -> Row:
    """A console page or form of `roles` (the store manager for SH001, its store:
    `manager` when it sees less); a post sends the session's CSRF token in its form,
    checked after the permission."""
    writes = method == "POST"
    return row(
        method,
        route,
        make,
        anon=TO_CONSOLE_SIGN_IN,
        cashier=TO_CONSOLE_SIGN_IN,
        hq={
            role: (manager or allowed)
            if role == MANAGER and role in roles
            else allowed
            if role in roles
            else DENIED
            for role in HQ
        },
        token="form" if writes else "none",
        holders=tuple(r for r in roles) if writes else (),
    )


def sh_order_path(w: World, suffix: str = "") -> str:
    return f"/console/orders/{w.stores['SH001']}/{w.sh_order}{suffix}"


def call_console_preview(w: World, _: str) -> Call:
    order_no = w.book()
    path = f"/console/orders/{w.stores['SH001']}/{order_no}/refund-preview"
    form = {"qty_1": "1", "reason": "顾客退货"}
    return Call(path, form=form, probe=lambda r: "refund-preview" in r.text)


def call_console_refund(w: World, _: str) -> Call:
    order_no = w.book()
    path = f"/console/orders/{w.stores['SH001']}/{order_no}/refund"
    form = {"qty_1": "1", "reason": "顾客退货"}
    return Call(path, form=form, probe=lambda _: w.refunded(order_no))


def call_subscribe(w: World, _: str) -> Call:
    url = f"https://hooks.example.com/{w.next_no('h')}"
    form = {"url": url, "events": "*"}
    subscribed = lambda _: any(s.url == url for s in webhooks.list_subscriptions(w.ctx, w.brand_id))  # noqa: E731
    return Call("/console/webhooks", form=form, probe=subscribed)


def call_unsubscribe(w: World, _: str) -> Call:
    url = f"https://hooks.example.com/{w.next_no('h')}"
    sub = webhooks.subscribe(w.ctx, w.brand_id, url, ["order.paid"]).subscription
    stopped = lambda _: not webhooks.get_subscription(w.ctx, w.brand_id, sub.id).active  # noqa: E731
    return Call(f"/console/webhooks/{sub.id}/disable", form={}, probe=stopped)


def call_replay(w: World, _: str) -> Call:
    """A dead delivery of its own: an order.paid to an address nobody answers."""
    url = f"http://127.0.0.1:9/{w.next_no('dead')}"
    sub = webhooks.subscribe(w.ctx, w.brand_id, url, ["order.paid"]).subscription
    w.book()
    worker.dispatch_outbox(w.ctx)
    with httpx.Client(timeout=2) as client:
        worker.deliver_due(w.ctx, None, client, policy=RetryPolicy(max_attempts=1))
    (dead,) = webhooks.list_deliveries(w.ctx, w.brand_id, status="dead", subscription_id=sub.id)
    pending = lambda _: webhooks.get_delivery(w.ctx, w.brand_id, dead.id).status.value == "pending"  # noqa: E731
    return Call(f"/console/webhooks/deliveries/{dead.id}/replay", form={}, probe=pending)


def call_reconcile(w: World, _: str) -> Call:
    pos = {"date": "2024-01-01", "order_count": 0, "amount_fen": 0}
    files = {"file": ("pos.json", json.dumps(pos).encode(), "application/json")}
    form = {"store": str(w.stores["SH001"])}
    return Call(
        "/console/reconcile", form=form, files=files, probe=lambda r: "reconcile-status" in r.text
    )


def admin_only(method: str, route: str, make: Callable[[World, str], Call], allowed: Expect) -> Row:
    """A console page or form only an administrator may use; a post sends the
    session's CSRF token in its form."""
    return row(
        method,
        route,
        make,
        anon=TO_CONSOLE_SIGN_IN,
        cashier=TO_CONSOLE_SIGN_IN,
        hq={role: allowed if role == ADMIN else DENIED for role in HQ},
        token="form" if method == "POST" else "none",
        holders=(ADMIN,) if method == "POST" else (),
    )


def members_staff(
    method: str, route: str, make: Callable[[World, str], Call], allowed: Expect
) -> Row:
    """A console page or form of the members part: administrators and operators
    (members.read, points.adjust, coupons.issue); analysts and store managers are
    denied; a post sends the session's CSRF token in its form."""
    return row(
        method,
        route,
        make,
        anon=TO_CONSOLE_SIGN_IN,
        cashier=TO_CONSOLE_SIGN_IN,
        hq={role: allowed if role in (ADMIN, OPERATOR) else DENIED for role in HQ},
        token="form" if method == "POST" else "none",
        holders=(ADMIN, OPERATOR) if method == "POST" else (),
    )


def coupons_of(w: World, template: str, source_ref: str | None = None) -> int:
    found = coupons.of_member(w.ctx, w.brand_id, w.member_id, limit=500)
    return sum(1 for c in found if c.template == template and source_ref in (None, c.source_ref))


def call_adjust(w: World, _: str) -> Call:
    reason = w.next_no("walk")
    form = {"points": "1", "reason": reason}
    path = f"/console/members/{w.member_id}/points"
    return Call(
        path,
        form=form,
        probe=lambda _: any(
            e.reason == reason for e in points.history(w.ctx, w.brand_id, w.member_id, limit=20)
        ),
    )


def call_issue_one(w: World, _: str) -> Call:
    before = coupons_of(w, "cash10")
    form = {"template": "cash10", "nonce": w.next_no("walk")}
    path = f"/console/members/{w.member_id}/coupons"
    return Call(path, form=form, probe=lambda _: coupons_of(w, "cash10") == before + 1)


def call_issue_list(w: World, _: str) -> Call:
    content = f"member_id\n{w.member_id}\n".encode() + b"\n" * next(w.numbers)  # a new file
    ref = coupon_lists.source_ref_of(content)
    return Call(
        "/console/members/issue",
        form={"template": "free-latte"},
        files={"file": ("list.csv", content, "text/csv")},
        probe=lambda _: coupons_of(w, "free-latte", ref) == 1,
    )


# -- the console's rules (rules.read: admin, operator, analyst; rules.write: admin, operator)

RULE_READERS = (ADMIN, OPERATOR, ANALYST)
RULE_WRITERS = (ADMIN, OPERATOR)


def rules_row(
    method: str, route: str, make: Callable[[World, str], Call], allowed: Expect, *, write: bool
) -> Row:
    """A console page or form of the rule set: read by who may read rules, written
    by who may write them; a post sends the session's CSRF token in its form."""
    may = RULE_WRITERS if write else RULE_READERS
    return row(
        method,
        route,
        make,
        anon=TO_CONSOLE_SIGN_IN,
        cashier=TO_CONSOLE_SIGN_IN,
        hq={role: allowed if role in may else DENIED for role in HQ},
        token="form" if method == "POST" else "none",
        holders=may if method == "POST" else (),
    )


def versions_of(w: World) -> int:
    return len(rulesets.versions(w.ctx, w.brand_id))


def call_new_draft(w: World, _: str) -> Call:
    before = versions_of(w)
    return Call("/console/rules/drafts", form={}, probe=lambda _: versions_of(w) == before + 1)


def call_publish(w: World, _: str) -> Call:
    v = rulesets.draft_from(w.ctx, w.brand_id).version
    form = {"effective_from": "2030-01-01T00:00"}

    def published(_: httpx.Response) -> bool:
        return rulesets.get(w.ctx, w.brand_id, v).status is rulesets.Status.PUBLISHED

    return Call(f"/console/rules/{v}/publish", form=form, probe=published)


def call_put_promotion(w: World, _: str) -> Call:
    v = rulesets.draft_from(w.ctx, w.brand_id).version
    form = {"id": "walk-promo", "kind": "cash", "amount_fen": "100"}

    def saved(_: httpx.Response) -> bool:
        doc = rulesets.get(w.ctx, w.brand_id, v).document
        return "walk-promo" in [p.id for p in doc.promotions]

    return Call(f"/console/rules/{v}/promotions", form=form, probe=saved)


def call_put_tier(w: World, _: str) -> Call:
    v = rulesets.draft_from(w.ctx, w.brand_id).version
    form = {"id": "walk-tier", "name": "走查", "min_spent_fen": "5000000"}

    def saved(_: httpx.Response) -> bool:
        return "walk-tier" in [t.id for t in rulesets.get(w.ctx, w.brand_id, v).document.tiers]

    return Call(f"/console/rules/{v}/parts/tiers", form=form, probe=saved)


def a_draft(path: str) -> Callable[[World, str], Call]:
    """`path` with {v}: a new draft of the version in force, made for the cell."""
    return lambda w, p: Call(path.format(v=rulesets.draft_from(w.ctx, w.brand_id).version))


# -- the console's admin pages: users, staff, API keys ---------------------------------


def _user(w: World, *, disabled: bool = False) -> int:
    """A fresh analyst of the demo brand (its password never used: no hashing)."""
    login = w.next_no("walker")
    made = accounts.insert_user(
        w.ctx, w.brand_id, login, login, Role.ANALYST, "unused", frozenset(), w.ctx.now()
    )
    if disabled:
        accounts.disable_user(w.ctx, w.brand_id, made.id)
    return made.id


def _hash_of(w: World, table: Any, row_id: int, column: str) -> str:
    with w.ctx.transaction(read_only=True) as conn:
        value = conn.execute(select(table.c[column]).where(table.c.id == row_id)).scalar_one()
    return str(value)


def call_create_user(w: World, _: str) -> Call:
    login = w.next_no("new.user")
    form = {
        "login": login,
        "display_name": "新用户",
        "role": "analyst",
        "password": "a-long-password",
    }

    def made(_: httpx.Response) -> bool:
        return any(u.login == login for u in accounts.list_users(w.ctx, w.brand_id))

    return Call("/console/users/new", form=form, probe=made)


def call_switch_user(action: str) -> Callable[[World, str], Call]:
    def make(w: World, _: str) -> Call:
        user_id = _user(w, disabled=action == "enable")
        path = f"/console/users/{user_id}/{action}"
        wanted = action == "disable"
        return Call(
            path,
            form={},
            probe=lambda _: accounts.get_user(w.ctx, w.brand_id, user_id).disabled is wanted,
        )

    return make


def call_reset_password(w: World, _: str) -> Call:
    user_id = _user(w)
    before = _hash_of(w, hq_users, user_id, "password_hash")
    return Call(
        f"/console/users/{user_id}/password",
        form={"password": "a-new-long-password"},
        probe=lambda _: _hash_of(w, hq_users, user_id, "password_hash") != before,
    )


def _staff_member(w: World, *, disabled: bool = False) -> int:
    """A fresh staff member of SH001 (the store manager's store; no PIN hashing)."""
    number = w.next_no("9").replace("-", "")
    made = staff.insert_staff(
        w.ctx, w.brand_id, w.stores["SH001"], number, "临时工", "unused", w.ctx.now()
    )
    if disabled:
        staff.disable_staff(w.ctx, w.brand_id, made.id)
    return made.id


def call_create_staff(w: World, _: str) -> Call:
    number = w.next_no("8").replace("-", "")
    form = {"store": str(w.stores["SH001"]), "number": number, "name": "新员工", "pin": "2468"}

    def made(_: httpx.Response) -> bool:
        return any(s.number == number for s in staff.list_staff(w.ctx, w.brand_id))

    return Call("/console/staff/new", form=form, probe=made)


def call_switch_staff(action: str) -> Callable[[World, str], Call]:
    def make(w: World, _: str) -> Call:
        staff_id = _staff_member(w, disabled=action == "enable")
        wanted = action == "disable"
        return Call(
            f"/console/staff/{staff_id}/{action}",
            form={},
            probe=lambda _: staff.get_staff(w.ctx, w.brand_id, staff_id).disabled is wanted,
        )

    return make


def call_reset_pin(w: World, _: str) -> Call:
    staff_id = _staff_member(w)
    before = _hash_of(w, store_staff, staff_id, "pin_hash")
    return Call(
        f"/console/staff/{staff_id}/pin",
        form={"pin": "135790"},
        probe=lambda _: _hash_of(w, store_staff, staff_id, "pin_hash") != before,
    )


def sh_cashier(w: World) -> int:
    return staff.staff_by_number(w.ctx, w.brand_id, w.stores["SH001"], "1001").id


def call_create_key(w: World, _: str) -> Call:
    name = w.next_no("key")
    form = {"name": name, "scope": "cashier", "store": str(w.stores["SH001"])}

    def made(_: httpx.Response) -> bool:
        return any(k.name == name for k in apikeys.list_keys(w.ctx, w.brand_id))

    return Call("/console/keys/new", form=form, probe=made)


def call_revoke_key(w: World, _: str) -> Call:
    key_id = apikeys.create_key(w.ctx, w.brand_id, apikeys.Scope.HQ, w.next_no("old")).key.id

    def revoked(_: httpx.Response) -> bool:
        return any(k.id == key_id and k.revoked_at for k in apikeys.list_keys(w.ctx, w.brand_id))

    return Call(f"/console/keys/{key_id}/revoke", form={}, probe=revoked)


def staff_managers(
    method: str, route: str, make: Callable[[World, str], Call], allowed: Expect
) -> Row:
    """A console page or form of staff.manage: an administrator, and a store manager
    for its own store (SH001, the one these rows act on)."""
    return row(
        method,
        route,
        make,
        anon=TO_CONSOLE_SIGN_IN,
        cashier=TO_CONSOLE_SIGN_IN,
        hq={role: allowed if role in (ADMIN, MANAGER) else DENIED for role in HQ},
        token="form" if method == "POST" else "none",
        holders=(ADMIN, MANAGER) if method == "POST" else (),
    )


def get(path: str, probe: Callable[[httpx.Response], bool] | None = None) -> Callable[..., Call]:
    return lambda w, p: Call(path, probe=probe)


def post(path: str, body: Any) -> Callable[..., Call]:
    return lambda w, p: Call(path, body)


def till_get(
    route: str, make: Callable[[World, str], Call], *, cashier: Expect, other: Expect | None = None
) -> Row:
    """A read of the till's script: only a till session opens it."""
    return row("GET", route, make, anon=SIGNED_OUT, cashier=cashier, other=other, hq=SIGNED_OUT)


def till_post(
    route: str, make: Callable[[World, str], Call], *, cashier: Expect, other: Expect | None = None
) -> Row:
    """A write of the till's script: a till session and its token in X-CSRF-Token."""
    return row(
        "POST",
        route,
        make,
        anon=SIGNED_OUT,
        cashier=cashier,
        other=other,
        hq=SIGNED_OUT,
        token="header",
        holders=(CASHIER, OTHER),
    )


SCAN = {"text": "6901234567890"}
QUOTE = {"lines": [LATTE], "points": "none"}

MATRIX: tuple[Row, ...] = (
    row("GET", "/", get("/"), anon=TO_TILL_SIGN_IN, cashier=TO_TILL_SIGN_IN, hq=TO_TILL_SIGN_IN),
    row("GET", "/till/sign-in", get("/till/sign-in"), anon=ok(), cashier=ok(), hq=ok()),
    row(
        "POST",
        "/till/sign-in",
        call_sign_in("/till/sign-in"),
        anon=to("/till", probe=True),
        cashier=to("/till", probe=True),
        hq=to("/till", probe=True),
        token="pre-session",
        holders=PRINCIPALS,
    ),
    row(
        "POST",
        "/till/sign-out",
        call_sign_out("/till/sign-out"),
        anon=TO_TILL_SIGN_IN,
        cashier=to("/till/sign-in", probe=True),
        hq=TO_TILL_SIGN_IN,  # nothing to end: the console session stays
        token="form",
        holders=(CASHIER, OTHER),
        fresh_session=True,
    ),
    row("GET", "/till", get("/till"), anon=TO_TILL_SIGN_IN, cashier=ok(), hq=TO_TILL_SIGN_IN),
    row("GET", "/till-sw.js", get("/till-sw.js"), anon=ok(), cashier=ok(), hq=ok()),
    row(
        "GET",
        "/till/receipts/{order_no}",
        call_receipt,
        anon=TO_TILL_SIGN_IN,
        cashier=ok(),
        other=Expect(404, text="本店没有单号为"),
        hq=TO_TILL_SIGN_IN,
    ),
    till_get(
        "/till/api/products",
        get("/till/api/products?q=lat", lambda r: "latte" in r.text),
        cashier=ok(),
    ),
    till_get(
        "/till/api/holds",
        call_holds,
        cashier=ok(),
        other=Expect(200),  # its own store's: SH001's held cart is not in it
    ),
    till_get(
        "/till/api/orders/{order_no}",
        call_order,
        cashier=ok(),
        other=not_found("order_not_found"),
    ),
    till_post(
        "/till/api/scan",
        post("/till/api/scan", SCAN),
        cashier=Expect(200),
    ),
    till_post(
        "/till/api/members/{member_id}",
        lambda w, p: Call(f"/till/api/members/{w.member_id}", {}),
        cashier=Expect(200),
    ),
    till_post(
        "/till/api/quote",
        post("/till/api/quote", QUOTE),
        cashier=Expect(200),
    ),
    till_post(
        "/till/api/release",
        call_release,
        cashier=ok(),
        other=Expect(200),  # another store's quote: not found, nothing released
    ),
    till_post(
        "/till/api/orders",
        call_confirm,
        cashier=ok(201),
    ),
    till_post(
        "/till/api/late-orders",
        call_late,
        cashier=ok(text='"outcome":"booked"'),
    ),
    till_post(
        "/till/api/holds",
        call_hold,
        cashier=ok(201),
    ),
    till_post(
        "/till/api/holds/{hold_id}/resume",
        call_resume,
        cashier=ok(),
        other=not_found("hold_not_found"),
    ),
    till_post(
        "/till/api/holds/{hold_id}/cancel",
        call_cancel,
        cashier=ok(),
        other=not_found("hold_not_found"),
    ),
    till_post(
        "/till/api/refunds/preview",
        call_preview,
        cashier=ok(),
        other=not_found("order_not_found"),
    ),
    till_post(
        "/till/api/refunds",
        call_refund,
        cashier=ok(201),
        other=not_found("order_not_found"),
    ),
    row("GET", "/console/sign-in", get("/console/sign-in"), anon=ok(), cashier=ok(), hq=ok()),
    row(
        "POST",
        "/console/sign-in",
        call_sign_in("/console/sign-in"),
        anon=to("/console", probe=True),
        cashier=to("/console", probe=True),
        hq=to("/console", probe=True),
        token="pre-session",
        holders=PRINCIPALS,
    ),
    row(
        "GET",
        "/console",
        get("/console"),
        anon=TO_CONSOLE_SIGN_IN,
        cashier=TO_CONSOLE_SIGN_IN,
        hq={role: Expect(200, text=f"({role})") for role in HQ},
    ),
    row(
        "GET",
        "/console/stores",
        get("/console/stores", probe=lambda r: "BJ001" in r.text),
        anon=TO_CONSOLE_SIGN_IN,
        cashier=TO_CONSOLE_SIGN_IN,
        hq={
            role: ok(text="SH001") if role != MANAGER else Expect(200, text="SH001") for role in HQ
        },
    ),
    admin_only("GET", "/console/stores/new", get("/console/stores/new"), Expect(200)),
    admin_only("POST", "/console/stores/new", call_open_store, to("/console/stores", probe=True)),
    admin_only(
        "GET",
        "/console/stores/{store_id}",
        lambda w, p: Call(f"/console/stores/{w.stores['BJ001']}"),
        Expect(200),
    ),
    admin_only(
        "POST", "/console/stores/{store_id}", call_change_store, to("/console/stores", probe=True)
    ),
    per_store(
        "GET",
        "/console/orders",
        get("/console/orders", probe=lambda r: "BJ001" in r.text),
        ok(),
        (ADMIN, OPERATOR, ANALYST, MANAGER),
        manager=Expect(200, text="SH001"),
    ),
    per_store(
        "GET",
        "/console/orders/{store_id}/{order_no}",
        lambda w, p: Call(sh_order_path(w), probe=lambda r: w.sh_order in r.text),
        ok(),
        (ADMIN, OPERATOR, ANALYST, MANAGER),
    ),
    per_store(
        "POST",
        "/console/orders/{store_id}/{order_no}/refund-preview",
        call_console_preview,
        ok(),
        (ADMIN, MANAGER),
    ),
    per_store(
        "POST",
        "/console/orders/{store_id}/{order_no}/refund",
        call_console_refund,
        Expect(303, probe=True),
        (ADMIN, MANAGER),
    ),
    per_store(
        "GET",
        "/console/reconcile",
        get("/console/reconcile", probe=lambda r: "BJ001" in r.text),
        ok(),
        (ADMIN, MANAGER),
        manager=Expect(200, text="SH001"),
    ),
    per_store("POST", "/console/reconcile", call_reconcile, ok(), (ADMIN, MANAGER)),
    per_store(
        "GET",
        "/console/holds",
        get("/console/holds", probe=lambda r: "BJ001" in r.text),
        ok(),
        (ADMIN, OPERATOR, ANALYST, MANAGER),
        manager=Expect(200, text="SH001"),
    ),
    admin_only("GET", "/console/webhooks", get("/console/webhooks"), Expect(200)),
    admin_only("POST", "/console/webhooks", call_subscribe, ok()),
    admin_only(
        "POST",
        "/console/webhooks/{sub_id}/disable",
        call_unsubscribe,
        to("/console/webhooks", probe=True),
    ),
    admin_only(
        "POST",
        "/console/webhooks/deliveries/{delivery_id}/replay",
        call_replay,
        Expect(303, probe=True),
    ),
    members_staff(
        "GET",
        "/console/members",
        get("/console/members?q=13800138000", probe=lambda r: "张伟" in r.text),
        ok(),
    ),
    members_staff("GET", "/console/members/issue", get("/console/members/issue"), Expect(200)),
    members_staff("POST", "/console/members/issue", call_issue_list, ok(text='id="report"')),
    members_staff(
        "GET",
        "/console/members/{member_id}",
        lambda w, p: Call(f"/console/members/{w.member_id}", probe=lambda r: "张伟" in r.text),
        ok(),
    ),
    members_staff(
        "POST", "/console/members/{member_id}/points", call_adjust, Expect(303, probe=True)
    ),
    members_staff(
        "POST", "/console/members/{member_id}/coupons", call_issue_one, Expect(303, probe=True)
    ),
    rules_row("GET", "/console/rules", get("/console/rules"), Expect(200), write=False),
    rules_row(
        "GET",
        "/console/rules/compare",
        get("/console/rules/compare?old=1&new=1"),
        Expect(200),
        write=False,
    ),
    rules_row("POST", "/console/rules/drafts", call_new_draft, Expect(303, probe=True), write=True),
    rules_row(
        "POST",
        "/console/rules/import",
        lambda w, p: Call("/console/rules/import", form={}),
        Expect(400, text='id="file-error"'),
        write=True,
    ),
    rules_row(
        "GET",
        "/console/rules/{version}/parts/{part}",
        a_draft("/console/rules/{v}/parts/offset"),
        Expect(200),
        write=True,
    ),
    rules_row(
        "POST",
        "/console/rules/{version}/parts/{part}",
        call_put_tier,
        Expect(303, probe=True),
        write=True,
    ),
    rules_row("GET", "/console/rules/{version}", get("/console/rules/1"), Expect(200), write=False),
    rules_row(
        "GET",
        "/console/rules/{version}/export",
        get("/console/rules/1/export"),
        Expect(200),
        write=False,
    ),
    rules_row(
        "GET",
        "/console/rules/{version}/try",
        get("/console/rules/1/try?store=BJ001&lines=latte+3200+1+coffee"),
        Expect(200, text='id="tried"'),
        write=False,
    ),
    rules_row(
        "POST",
        "/console/rules/{version}/publish",
        call_publish,
        to("/console/rules", probe=True),
        write=True,
    ),
    rules_row(
        "GET",
        "/console/rules/{version}/{section}/new",
        a_draft("/console/rules/{v}/coupons/new"),
        Expect(200),
        write=True,
    ),
    rules_row(
        "GET",
        "/console/rules/{version}/{section}/{benefit_id}",
        a_draft("/console/rules/{v}/promotions/second-half"),
        Expect(200, text="second-half"),
        write=True,
    ),
    rules_row(
        "POST",
        "/console/rules/{version}/{section}",
        call_put_promotion,
        Expect(303, probe=True),
        write=True,
    ),
    admin_only("GET", "/console/users", get("/console/users"), Expect(200, text="admin")),
    admin_only("GET", "/console/users/new", get("/console/users/new"), Expect(200)),
    admin_only(
        "POST",
        "/console/users/new",
        call_create_user,
        to("/console/users?done=created", probe=True),
    ),
    admin_only(
        "POST",
        "/console/users/{user_id}/disable",
        call_switch_user("disable"),
        to("/console/users?done=disabled", probe=True),
    ),
    admin_only(
        "POST",
        "/console/users/{user_id}/enable",
        call_switch_user("enable"),
        to("/console/users?done=enabled", probe=True),
    ),
    admin_only(
        "GET",
        "/console/users/{user_id}/password",
        lambda w, p: Call(f"/console/users/{_user(w)}/password"),
        Expect(200),
    ),
    admin_only(
        "POST",
        "/console/users/{user_id}/password",
        call_reset_password,
        to("/console/users?done=password", probe=True),
    ),
    staff_managers(
        "GET", "/console/staff", get("/console/staff", probe=lambda r: "1001" in r.text), ok()
    ),
    staff_managers("GET", "/console/staff/new", get("/console/staff/new"), Expect(200)),
    staff_managers("POST", "/console/staff/new", call_create_staff, Expect(303, probe=True)),
    staff_managers(
        "POST",
        "/console/staff/{staff_id}/disable",
        call_switch_staff("disable"),
        Expect(303, probe=True),
    ),
    staff_managers(
        "POST",
        "/console/staff/{staff_id}/enable",
        call_switch_staff("enable"),
        Expect(303, probe=True),
    ),
    staff_managers(
        "GET",
        "/console/staff/{staff_id}/pin",
        lambda w, p: Call(f"/console/staff/{sh_cashier(w)}/pin"),
        Expect(200),
    ),
    staff_managers(
        "POST", "/console/staff/{staff_id}/pin", call_reset_pin, Expect(303, probe=True)
    ),
    admin_only("GET", "/console/keys", get("/console/keys"), Expect(200)),
    admin_only("GET", "/console/keys/new", get("/console/keys/new"), Expect(200)),
    admin_only("POST", "/console/keys/new", call_create_key, ok(200, text='id="secret"')),
    admin_only(
        "POST",
        "/console/keys/{key_id}/revoke",
        call_revoke_key,
        to("/console/keys?done=revoked", probe=True),
    ),
    row(
        "POST",
        "/console/sign-out",
        call_sign_out("/console/sign-out"),
        anon=TO_CONSOLE_SIGN_IN,
        cashier=TO_CONSOLE_SIGN_IN,  # nothing to end: the till session stays
        hq=to("/console/sign-in", probe=True),
        token="form",
        holders=HQ,
        fresh_session=True,
    ),
)


# -- the walk ----------------------------------------------------------------------


def _world(url: str) -> Iterator[World]:
    ctx = make_context(url, Clock(datetime(2024, 1, 1, 4, 0, tzinfo=UTC)))
    upgrade(ctx.engine)
    brand = demo.seed(ctx)
    stores = {s.code: s.id for s in brands.list_stores(ctx, brand.id)}
    zhang = members.by_phone(ctx, brand.id, "13800138000").id
    app = create_app(ctx)
    with TestClient(app, raise_server_exceptions=False):  # the app started, as served
        w = World(ctx, app, brand.id, stores, zhang)
        for principal in PRINCIPALS:
            w.cookies[principal], w.csrf[principal] = w.sign_in(principal)
        w.sh_order, w.sh_hold, w.sh_quote = w.book(), w.park(), w.hold_quote()
        yield w
    ctx.engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One world per database for the whole walk: every cell makes its own things,
    and SH001's that the other store's cashier is refused stay as they were."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("walk") / "walk.db"
        yield from _world(f"sqlite:///{path}")
        return
    from tests.e2e.live import scratch_pg_database

    with scratch_pg_database() as url:
        yield from _world(url)


def send(
    w: World, row: Row, principal: str, *, with_token: bool
) -> tuple[Call, httpx.Response, bool | None]:
    """One cell: the request as that principal's browser makes it; the probe's reading."""
    cookies, csrf = (
        w.sign_in(principal) if row.fresh_session else (w.cookies[principal], w.csrf[principal])
    )
    c = w.client(cookies)
    call = row.make(w, principal)
    if row.method == "GET":
        answer = c.get(call.path, follow_redirects=False)
    elif row.token == "header":
        headers = {"X-CSRF-Token": csrf} if with_token else {}
        answer = c.post(call.path, json=call.json, headers=headers, follow_redirects=False)
    else:
        form = dict(call.form or {})
        if row.token == "pre-session":
            pre = w.pre(c, call.path)
            form.update(pre if with_token else {})
        elif with_token and csrf:
            form["csrf"] = csrf
        answer = c.post(call.path, data=form, files=call.files, follow_redirects=False)
    if row.fresh_session:
        return call, answer, w.session_ended(cookies)
    return call, answer, None if call.probe is None else call.probe(answer)


def wrong(expect: Expect, answer: httpx.Response, probed: bool | None) -> str | None:
    """What is not as expected in an answer, or None."""
    said = f"{answer.status_code} {answer.text[:200]}"
    if answer.status_code != expect.status:
        return f"answered {said}, not {expect.status}"
    if expect.code is not None:
        code = answer.json().get("error", {}).get("code")
        if code != expect.code:
            return f"error code {code!r}, not {expect.code!r}"
    if expect.location is not None and answer.headers.get("location") != expect.location:
        return f"redirected to {answer.headers.get('location')!r}, not {expect.location!r}"
    if expect.text is not None and expect.text not in answer.text:
        return f"no {expect.text!r} in {said}"
    if probed is not None and probed is not expect.probe:
        return "it took effect" if probed else "it did not take effect"
    return None


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.route}")
def test_every_principal_is_allowed_or_refused_as_documented(world: World, row: Row) -> None:
    problems = []  # every cell is walked, and all that is wrong said at once
    for principal in PRINCIPALS:
        variants = [(True, row.expect[principal])]
        if row.method == "POST":
            variants.append((False, row.without_token(principal)))
        for with_token, expect in variants:
            _, answer, probed = send(world, row, principal, with_token=with_token)
            problem = wrong(expect, answer, probed)
            if problem is not None:
                token = "" if with_token else " without its CSRF token"
                problems.append(f"{row.method} {row.route} as {principal}{token}: {problem}")
    assert not problems, "\n".join(problems)
    # What the cashier of BJ001 was pointed at is as it was.
    assert world.hold_status(world.sh_hold) == "held"
    sh_order = world.order_at(world.sh_order)
    assert sh_order is not None and sh_order.status == "paid" and sh_order.refunded == 0
    assert world.quote_live(world.sh_quote)


def test_another_stores_quote_token_is_not_found_and_keeps_its_hold(world: World) -> None:
    """Besides releasing it (a row of the matrix): booking with SH001's quote token,
    or re-quoting in its place, at BJ001."""
    token = world.sh_quote
    order_no = world.next_no("BJ")
    member = {"member_id": world.member_id}
    calls = [
        ("/till/api/orders", order_body(order_no, quote_token=token, **member)),
        ("/till/api/quote", {"lines": [LATTE], "points": "max", "replaces": token, **member}),
    ]
    c = world.client(world.cookies[OTHER])
    for path, body in calls:
        answer = c.post(path, json=body, headers={"X-CSRF-Token": world.csrf[OTHER]})
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "quote_not_found"
    assert world.order_at(order_no) is None
    assert world.quote_live(token)


# -- the documented table names every route ---------------------------------------


def flat(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route, through the routers included in the app."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router (FastAPI 0.16x)
        if inner is not None:
            yield from flat(inner.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, set(getattr(route, "methods", None) or ())


NOT_WEB = ("/v1/", "/docs", "/redoc", "/openapi.json", "/healthz", "/static/")


def web_routes(app: FastAPI) -> set[str]:
    """`METHOD path` of every route of the web layer (not the API, docs, health, static)."""
    return {
        f"{method} {path}"
        for path, methods in flat(app.routes)
        if not path.startswith(NOT_WEB)
        for method in methods - {"HEAD"}
    }


def documented_rows() -> dict[str, dict[str, str]]:
    """The documented table: `METHOD path` -> principal (the column's title) -> cell."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip().splitlines()
    rows = [line.strip() for line in table if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in rows]
    titles = cells[0][2:]
    assert titles == list(PRINCIPALS), titles
    found: dict[str, dict[str, str]] = {}
    for route, _what, *answers in cells[2:]:
        key = route.strip("`")
        assert key not in found, f"{key} has two rows in docs/accounts.md"
        found[key] = dict(zip(titles, answers, strict=True))
    return found


SIGN_IN_PAGES = {"till sign-in": "/till/sign-in", "console sign-in": "/console/sign-in"}


def documented(cell: str) -> tuple[int, str | None, str | None]:
    """(status, error code, redirect) a documented cell says: "401 `signed_out`",
    "→ till sign-in" (303 to that page), "303 → `/till`", "200, released"..."""
    number = re.search(r"\b\d{3}\b", cell)
    status = int(number.group(0)) if number else 303 if cell.startswith("→") else 0
    code = re.search(r"`([a-z_]+)`", cell)
    to = re.search(r"→ `(/[^`]*)`", cell)
    location = to.group(1) if to else next((v for k, v in SIGN_IN_PAGES.items() if k in cell), None)
    return status, code.group(1) if code else None, location


def test_the_documented_table_has_a_row_for_every_route_and_the_walk_covers_it() -> None:
    settings = Settings(env="test", database_url="sqlite://", secret_key=TEST_SECRET)
    app = create_app(Context(make_engine("sqlite://"), settings))  # never opened
    routes = web_routes(app)
    documented = list(documented_rows())
    assert routes - set(documented) == set(), "routes without a row in docs/accounts.md"
    assert set(documented) - routes == set(), "rows of docs/accounts.md for no route"
    walked = [f"{r.method} {r.route}" for r in MATRIX]
    assert walked == documented, "the walk's MATRIX and the documented table differ"


def test_the_documented_cells_are_the_walked_ones() -> None:
    """Each cell of the documented table says the status, error code and redirect
    that the walk expects of it (and so finds)."""
    differ = []
    for (route, cells), r in zip(documented_rows().items(), MATRIX, strict=True):
        assert route == f"{r.method} {r.route}", "the walk and the doc list the routes apart"
        for principal, cell in cells.items():
            expect = r.expect[principal]
            status, code, location = documented(cell)
            said = (status, code, location if location is not None else expect.location)
            if said != (expect.status, expect.code, expect.location):
                differ.append(f"{route} as {principal}: the doc says {cell!r}, the walk {expect}")
    assert not differ, "\n".join(differ)
